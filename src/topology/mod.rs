//! The output: a fully addressed topology (DESIGN §5).

mod address;
mod bus_numbers;
mod indexes;
pub(crate) mod io_padding;
pub mod mmio64;
mod models;

pub use address::*;
pub(crate) use bus_numbers::{
    needs as bus_needs, needs_of_controllers as bus_needs_of_controllers,
};
pub use bus_numbers::{BusNumbering, PciBuses};
pub use indexes::storage_device_indexes;
pub use mmio64::Mmio64;
pub(crate) use models::{kinds as catalog_kinds, pci_models, ByIndex, Memo};

use crate::spec::{DeviceEntry, Tunables};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `devaddr:` header of a plan: which devaddr and which policy produced it, so that later
/// releases can reproduce it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PlanHeader {
    /// Version of the devaddr that wrote the plan (`0.1.0`).
    pub version: String,
    /// Name of the policy preset the plan was made with (`libvirt`, `hotplug-ready`,
    /// `numa`, `dense`).
    pub policy: String,
    /// Version of that policy's placement rules; it changes when the same spec would be
    /// placed differently.
    pub policy_version: u32,
    /// How far the integer program's search went (absent in plans of older versions
    /// and of the libvirt domain path, which replays libvirt's own order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<SolverReport>,
}

/// The search's result: `optimal`, or `feasible` with the relative gap to the best
/// proven bound when the work limit stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SolverReport {
    /// `optimal` or `feasible`.
    pub status: SolverStatus,
    /// `(objective - bound) / objective` of the first objective that was not proven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<Gap>,
}

/// Whether optimality was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SolverStatus {
    /// Proven optimal.
    Optimal,
    /// Feasible and verified; the work limit stopped the proof.
    Feasible,
}

/// A relative gap, kept in ten-thousandths so that plans compare exactly; written as a
/// fraction (`0.0125` = 1.25 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gap(pub u32);

impl Gap {
    /// Ten-thousandths per whole.
    const SCALE: f64 = 10_000.0;
    /// The gap of a fraction (clamped to 0..=1; rounded up so that it is never zero
    /// for an unproven search).
    pub fn of(fraction: f64) -> Gap {
        let f = if fraction.is_finite() { fraction } else { 1.0 };
        Gap(((f.clamp(0.0, 1.0) * Self::SCALE).ceil() as u32).max(1))
    }
}

impl JsonSchema for Gap {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Gap".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A relative gap: a fraction from 0 to 1 (0.0125 = 1.25 %).",
            "type": "number",
            "minimum": 0,
            "maximum": 1
        })
    }
}

impl Serialize for Gap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0 as f64 / Self::SCALE)
    }
}

impl<'de> Deserialize<'de> for Gap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Gap, D::Error> {
        let f = f64::deserialize(d)?;
        if !(0.0..=1.0).contains(&f) {
            return Err(serde::de::Error::custom(format!(
                "a gap is a fraction from 0 to 1, found {f}"
            )));
        }
        Ok(Gap((f * Self::SCALE).round() as u32))
    }
}

/// A controller of the plan: PCI buses (index = bus number used in addresses) and
/// USB/SATA/SCSI/IDE controllers (index per controller type).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControllerEntry {
    /// Unique id, shared with devices' ids; also QEMU's `id=`. PCI buses are `pci.N`
    /// (N = index), so a bus's QEMU name matches libvirt's.
    pub id: String,
    /// Controller model from the catalog: a PCI model (`pcie-root-port`) or a USB/drive
    /// controller model (`qemu-xhci`, `ich9-ahci`).
    pub model: String,
    /// libvirt's controller `index`. For a PCI controller it is the bus it provides, the
    /// number a device's [`PciAddress::bus`] names (0 = root bus); for USB/SATA/SCSI/IDE
    /// controllers it counts per controller type and is what USB and drive addresses name.
    #[schemars(range(max = crate::limits::MAX_BUS_NR))]
    pub index: u32,
    /// The guest NUMA node of an expander bus (QEMU `numa_node`), 0-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::limits::MAX_NUMA_NODES - 1))]
    pub numa_node: Option<u32>,
    /// Whether the bus of a PCIe root or downstream port accepts hot-plugged devices
    /// (false = QEMU `hotplug=off`, libvirt `<target hotplug='off'/>`); absent for models
    /// whose hotplug cannot be switched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotplug: Option<bool>,
    /// PCIe port chassis number (QEMU `chassis`, 0-255; devaddr uses the index); with
    /// `port` it must be unique among ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::limits::MAX_CHASSIS))]
    pub chassis: Option<u32>,
    /// PCIe port number (QEMU `port`, 0-255): slot × 8 + function for root ports, as
    /// libvirt writes it; the slot for switch downstream ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::limits::MAX_PCIE_PORT))]
    pub port: Option<u32>,
    /// A pci-bridge's chassis number (QEMU `chassis_nr`, 1-255; devaddr uses the index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::limits::MAX_CHASSIS))]
    pub chassis_nr: Option<u32>,
    /// First guest bus number of an expander bus (QEMU `bus_nr`, 8-bit): the firmware
    /// numbers the buses behind it from `bus_nr + 1`. Expanders get ranges from the top
    /// down (254, 252…, as libvirt does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::limits::MAX_BUS_NR))]
    pub bus_nr: Option<u32>,
    /// USB root ports of a USB controller (QEMU `p2`/`p3` of qemu-xhci); the model's
    /// default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<u32>,
    /// Part of the machine: QEMU creates it, the plan only names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<bool>,
    /// 64-bit prefetchable MMIO a hotplug port keeps for a big device added later
    /// (QEMU `pref64-reserve`, `policy.hotplug_reserve_bar64`); both firmwares honour it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pref64_reserve: Option<crate::spec::ByteSize>,
    /// I/O a hotplug port keeps for a device hot-added later (QEMU `io-reserve`, bytes).
    /// Plans write `0` on the ports whose firmware padding would not fit the I/O budget
    /// (UEFI: OVMF pads every port without the hint with an I/O window); ports that keep
    /// 64-bit room have no I/O reserve either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_reserve: Option<u64>,
    /// Its own PCI address (where it plugs in); absent for the root bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// Where free hotplug capacity lies: the root hierarchy (not below an expander bus) or
/// the expander of a NUMA node. Written `root` and `node<N>` (`node0`, `node12`), and
/// ordered as those names sort, so plans list them as they always have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FreeZone {
    /// Not below an expander bus.
    Root,
    /// Below the expander bus of this NUMA node.
    Node(u32),
}

impl FreeZone {
    /// The zone of a bus: its NUMA node, if any.
    pub fn of(node: Option<u32>) -> FreeZone {
        node.map_or(FreeZone::Root, FreeZone::Node)
    }
}

impl std::fmt::Display for FreeZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FreeZone::Root => f.write_str("root"),
            FreeZone::Node(n) => write!(f, "node{n}"),
        }
    }
}

impl Ord for FreeZone {
    /// By written name: `node0` < `node10` < `node2` < `root` (compared without writing
    /// the names out: plans build maps keyed by zone for every bus).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (FreeZone::Root, FreeZone::Root) => Ordering::Equal,
            (FreeZone::Root, FreeZone::Node(_)) => Ordering::Greater,
            (FreeZone::Node(_), FreeZone::Root) => Ordering::Less,
            (FreeZone::Node(a), FreeZone::Node(b)) => {
                let (mut x, mut y) = ([0u8; 10], [0u8; 10]);
                decimal(*a, &mut x).cmp(decimal(*b, &mut y))
            }
        }
    }
}

/// The decimal digits of `n`, written into the end of `buf`.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

impl PartialOrd for FreeZone {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::str::FromStr for FreeZone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "root" {
            return Ok(FreeZone::Root);
        }
        s.strip_prefix("node")
            .and_then(|n| n.parse::<u32>().ok().filter(|v| v.to_string() == n))
            .map(FreeZone::Node)
            .ok_or_else(|| format!("unknown zone `{s}`; expected `root` or `node<N>`"))
    }
}

impl JsonSchema for FreeZone {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FreeZone".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`root` (not below an expander bus) or `node<N>` (below NUMA node N's expander).",
            "type": "string",
            "pattern": "^(root|node(0|[1-9][0-9]*))$"
        })
    }
}

impl Serialize for FreeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FreeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FreeZone, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What is left for later: spare capacity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Free {
    /// Empty hotpluggable PCIe ports, by NUMA node (`root` = not below an expander).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hotplug_pcie_ports: BTreeMap<FreeZone, u32>,
    /// Empty hotpluggable conventional-PCI slots, by NUMA node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hotplug_pci_slots: BTreeMap<FreeZone, u32>,
    /// Free USB ports on all USB controllers.
    pub usb_ports: u32,
    /// PCI bus numbers not yet used, of the machine's [`bus_numbers`](crate::catalog::Limits::bus_numbers)
    /// (256): room for more ports and bridges.
    pub bus_numbers: u32,
}

/// A complete plan. Also a valid [`crate::Spec`] (feed it back to replan or check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Which devaddr and policy made the plan, and how far the search went.
    pub devaddr: PlanHeader,
    /// Guest name, from the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The machine type as the spec named it (`q35`, `pc-q35-9.2`).
    pub machine: String,
    /// The tunables with every default filled in, so that replanning the plan uses the
    /// same policy even if the defaults change.
    pub policy: Tunables,
    /// The spec's `order:` list, kept so that replans keep honouring it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    /// The spec's `apart:` sets, kept so that replans keep honouring them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apart: Vec<Vec<String>>,
    /// The spec's `together:` sets, kept so that replans keep honouring them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub together: Vec<Vec<String>>,
    /// Every controller, built in and added, PCI buses first in index order.
    pub controllers: Vec<ControllerEntry>,
    /// Every device of the spec, in spec order, each with its address.
    pub devices: Vec<DeviceEntry>,
    /// Spare capacity left for later.
    #[serde(default)]
    pub free: Free,
    /// The 64-bit MMIO the plan's big BARs and reserves need, and the aperture asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmio64: Option<Mmio64>,
}

impl Plan {
    /// Parse a plan written by devaddr (YAML or JSON). `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> crate::Result<Plan> {
        let plan = crate::yaml::from_str_all::<Plan>(text, |v| crate::spec::entry_errors(text, v))
            .map_err(|e| not_a_plan(e, text).in_file(file))?;
        crate::spec::bounds::check(&plan.to_spec()).map_err(|e| e.in_source(file, text))?;
        Ok(plan)
    }
    /// YAML text of the plan.
    pub fn to_yaml(&self) -> String {
        crate::yaml::to_string_sized(self, self.text_size())
    }
    /// JSON text of the plan (same structure as YAML).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
    /// About how long the plan's YAML text is (a little more, rarely less): the buffer
    /// [`Plan::to_yaml`] writes into at once.
    fn text_size(&self) -> usize {
        /// Bytes of YAML per controller or device, most of them (numbers measured on the
        /// plans of benches/specs: 120-158).
        const PER_ENTRY: usize = 160;
        let lists: usize = [&self.apart, &self.together]
            .into_iter()
            .flatten()
            .chain([&self.order])
            .flatten()
            .map(|id| id.len() + 8)
            .sum();
        1024 + lists + PER_ENTRY * (self.controllers.len() + self.devices.len())
    }
    /// [`Plan::to_spec`] without copying: the spec and what it has no room for (the
    /// header, the free capacity, the 64-bit MMIO accounting), for [`Plan::from_spec`].
    pub(crate) fn into_spec(self) -> (crate::Spec, PlanRest) {
        let rest = PlanRest {
            devaddr: self.devaddr.clone(),
            free: self.free,
            mmio64: self.mmio64,
        };
        let spec = crate::Spec {
            devaddr: Some(self.devaddr),
            name: self.name,
            machine: self.machine,
            arch: None,
            policy: self.policy,
            order: self.order,
            apart: self.apart,
            together: self.together,
            controllers: self.controllers,
            devices: self.devices,
            free: None,
            mmio64: None,
        };
        (spec, rest)
    }

    /// The plan [`Plan::into_spec`] took apart.
    pub(crate) fn from_spec(spec: crate::Spec, rest: PlanRest) -> Plan {
        Plan {
            devaddr: rest.devaddr,
            name: spec.name,
            machine: spec.machine,
            policy: spec.policy,
            order: spec.order,
            apart: spec.apart,
            together: spec.together,
            controllers: spec.controllers,
            devices: spec.devices,
            free: rest.free,
            mmio64: rest.mmio64,
        }
    }

    /// The plan as a spec (every address and controller pinned).
    pub fn to_spec(&self) -> crate::Spec {
        crate::Spec {
            devaddr: Some(self.devaddr.clone()),
            name: self.name.clone(),
            machine: self.machine.clone(),
            arch: None,
            policy: self.policy.clone(),
            order: self.order.clone(),
            apart: self.apart.clone(),
            together: self.together.clone(),
            controllers: self.controllers.clone(),
            devices: self.devices.clone(),
            free: None,
            mmio64: None,
        }
    }
}

/// What [`Plan::into_spec`] keeps aside: the parts of a plan a spec has no field for.
pub(crate) struct PlanRest {
    devaddr: PlanHeader,
    free: Free,
    mmio64: Option<Mmio64>,
}

/// A spec handed where a plan is expected (it lacks the `devaddr:` header a plan starts
/// with, and may lack `policy:` and `controllers:` or have `arch:`): say what it is and
/// what to do instead of naming the first field a plan has and it lacks.
fn not_a_plan(e: crate::Error, text: &str) -> crate::Error {
    use crate::error::{Code, Error};
    match crate::yaml::from_str::<crate::Spec>(text) {
        Ok(spec) if spec.devaddr.is_none() => Error::Input {
            location: Box::new(crate::Location::default()),
            message: "this is a spec, not a plan: plan it first with `devaddr plan` and pass \
                      the plan it writes"
                .into(),
            code: Code::NotAPlan,
        },
        _ => e,
    }
}

/// The id of the PCI bus of index `index` in every plan: `pci.N` (written digit by digit:
/// the assembler names every bus it adds).
pub(crate) fn pci_bus_id(index: u32) -> String {
    let mut buf = [0u8; 40];
    let digits = crate::digits::decimal(index.into(), false, &mut buf);
    let mut id = String::with_capacity(4 + digits.len());
    id.push_str("pci.");
    id.push_str(digits);
    id
}

#[cfg(test)]
mod pci_bus_id_tests {
    #[test]
    fn is_pci_dot_the_index() {
        for i in [0, 1, 9, 10, 99, 100, 255, 256, 4095, 1_000_000, u32::MAX] {
            assert_eq!(super::pci_bus_id(i), format!("pci.{i}"));
        }
    }
}

#[cfg(test)]
mod free_zone_tests {
    use super::FreeZone;

    #[test]
    fn zones_order_as_their_names_sort() {
        let mut zones: Vec<FreeZone> = [0, 1, 2, 9, 10, 11, 19, 20, 100, 63, u32::MAX]
            .into_iter()
            .map(FreeZone::Node)
            .chain([FreeZone::Root])
            .collect();
        for a in &zones {
            for b in &zones {
                assert_eq!(a.cmp(b), a.to_string().cmp(&b.to_string()), "{a} vs {b}");
            }
        }
        zones.sort();
        assert_eq!(zones.last(), Some(&FreeZone::Root));
    }
}
