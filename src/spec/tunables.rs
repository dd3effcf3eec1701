//! Global placement tunables (`policy:` in a spec) and presets.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// Policy presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Preset {
    /// libvirt's conventions: one PCIe endpoint per root port, bridges for conventional PCI.
    #[default]
    Libvirt,
    /// Every device hotpluggable and four spare hotpluggable ports.
    HotplugReady,
    /// One spare hotpluggable port under every NUMA node's expander.
    Numa,
    /// Fewest controllers: pack devices that need no hotplug 8 to a slot.
    Dense,
}

/// `prefer:` for devices that can be either conventional PCI or PCIe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Prefer {
    /// PCI Express (the default): modern virtio on a PCIe port.
    Pcie,
    /// Conventional PCI: transitional virtio on a conventional bus.
    Pci,
}

/// `multifunction:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Multifunction {
    /// One device per slot.
    Off,
    /// Only explicit `group:`s share a slot.
    Group,
    /// Devices that need no hotplug may be packed 8 to a slot.
    Pack,
}

/// `firmware:`: which firmware the guest boots, and so which measured budgets (I/O
/// windows, bus numbers, 64-bit MMIO aperture) the plan must stay within
/// ([`crate::catalog::MachineModel::limits_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Firmware {
    /// Legacy BIOS (SeaBIOS) on x86.
    Bios,
    /// UEFI: OVMF on x86, AAVMF on aarch64 `virt`.
    Uefi,
    /// Within the tighter budget of every firmware the machine boots, so the plan boots
    /// either way (the default).
    #[default]
    Any,
}

impl Firmware {
    /// The spec word (`bios`, `uefi`, `any`).
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
            Firmware::Any => "any",
        }
    }
}

/// `hotplug_reserve_bar64:` of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bar64Reserve {
    /// How many empty hotpluggable root ports keep the room (each takes a bus number).
    #[schemars(range(max = 255))]
    pub ports: u32,
    /// The 64-bit prefetchable window each of them keeps (the BAR of the device to come).
    pub size: super::ByteSize,
}

/// The `policy:` section. Every field is optional; [`Tunables::effective`] fills defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tunables {
    /// The preset whose defaults fill every field left out (`libvirt` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// Empty hotpluggable ports (PCIe machines) or slots (PCI machines) to leave, in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotplug_reserve: Option<u32>,
    /// Empty hotpluggable ports to leave under each NUMA node's expander bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotplug_reserve_per_node: Option<u32>,
    /// Guest NUMA nodes that devices may name (0..numa_nodes-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::limits::MAX_NUMA_NODES))]
    pub numa_nodes: Option<u32>,
    /// Bus type for devices that can be either (virtio); `pcie` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer: Option<Prefer>,
    /// Which devices may share a slot as functions; `group` by default, `pack` in the
    /// `dense` preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multifunction: Option<Multifunction>,
    /// Hotplug setting of added root ports (`on`/`off` or `true`/`false`); on by
    /// default.
    #[serde(
        default,
        deserialize_with = "on_off",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "on_off_schema")]
    pub root_port_hotplug: Option<bool>,
    /// The firmware the guest boots: `bios`, `uefi` or `any` (the default: within both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<Firmware>,
    /// Empty hotpluggable root ports that keep 64-bit room for a big device added later
    /// (`{ports: 2, size: 128G}`: QEMU `pref64-reserve`); they count toward
    /// `hotplug_reserve`, which is raised to `ports` when lower.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotplug_reserve_bar64: Option<Bar64Reserve>,
    /// Guest physical address bits (the CPU's `phys-bits`); QEMU's default for the
    /// machine's CPU when absent. The 64-bit MMIO aperture must fit below half of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 32, max = 57))]
    pub phys_bits: Option<u32>,
}

/// Tunables with every default filled in from the preset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Effective {
    /// The preset the defaults came from.
    pub preset: Preset,
    /// Empty hotpluggable ports (PCIe machines) or slots (PCI machines) to leave in total.
    pub hotplug_reserve: u32,
    /// Empty hotpluggable ports to leave under each NUMA node's expander bus.
    pub hotplug_reserve_per_node: u32,
    /// Guest NUMA nodes devices may name: the spec's value, else the highest node named
    /// plus one (0 when none is).
    pub numa_nodes: u32,
    /// Bus type for devices that can be either.
    pub prefer: Prefer,
    /// Which devices may share a slot.
    pub multifunction: Multifunction,
    /// Hotplug setting of the PCIe ports the planner adds.
    pub root_port_hotplug: bool,
    /// Devices default to `hotplug: true`.
    pub hotplug_by_default: bool,
    /// The firmware whose budgets apply.
    pub firmware: Firmware,
}

impl Tunables {
    /// Resolve defaults. `max_node` is the highest `numa_node` any device names.
    pub fn effective(&self, max_node: Option<u32>) -> Effective {
        let preset = self.preset.unwrap_or_default();
        let (reserve, per_node, mf, hp) = match preset {
            Preset::Libvirt => (0, 0, Multifunction::Group, false),
            Preset::HotplugReady => (4, 0, Multifunction::Group, true),
            Preset::Numa => (0, 1, Multifunction::Group, false),
            Preset::Dense => (0, 0, Multifunction::Pack, false),
        };
        Effective {
            preset,
            hotplug_reserve: self
                .hotplug_reserve
                .unwrap_or(reserve)
                .max(self.hotplug_reserve_bar64.map_or(0, |r| r.ports)),
            hotplug_reserve_per_node: self.hotplug_reserve_per_node.unwrap_or(per_node),
            numa_nodes: self
                .numa_nodes
                .unwrap_or_else(|| max_node.map_or(0, |n| n.saturating_add(1))),
            prefer: self.prefer.unwrap_or(Prefer::Pcie),
            multifunction: self.multifunction.unwrap_or(mf),
            root_port_hotplug: self.root_port_hotplug.unwrap_or(true),
            hotplug_by_default: hp,
            firmware: self.firmware.unwrap_or_default(),
        }
    }
}

/// What [`on_off`] accepts: a boolean or one of its words (or nothing).
fn on_off_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "oneOf": [
            {"type": ["boolean", "null"]},
            {"enum": ["on", "yes", "true", "off", "no", "false"]}
        ]
    })
}

fn on_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OnOff {
        B(bool),
        S(String),
    }
    match Option::<OnOff>::deserialize(d)? {
        None => Ok(None),
        Some(OnOff::B(b)) => Ok(Some(b)),
        Some(OnOff::S(s)) => match s.as_str() {
            "on" | "yes" | "true" => Ok(Some(true)),
            "off" | "no" | "false" => Ok(Some(false)),
            other => Err(serde::de::Error::custom(format!(
                "expected on or off, found `{other}`"
            ))),
        },
    }
}
