//! The input: a minimal description of the guest (DESIGN §4). A plan is also a valid spec.

pub(crate) mod bounds;
pub(crate) mod order;
pub(crate) mod placement;
mod size;
mod tunables;

pub use size::ByteSize;
pub use tunables::*;

use crate::error::{Error, Result};
use crate::topology::{Address, ControllerEntry, PlanHeader};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A planning request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Present when the input is a plan written by devaddr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devaddr: Option<PlanHeader>,
    /// Guest name (used for whole-domain outputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Machine type: `q35`, `pc-i440fx` (alias `pc`), `virt`, or a versioned name.
    pub machine: String,
    /// Guest architecture; inferred from the machine when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Global placement tunables (`policy:`); all optional, defaults from the preset.
    #[serde(default)]
    pub policy: Tunables,
    /// PCI devices (by id) whose addresses must ascend in this order (NIC names follow
    /// PCI order in most guests). Per-device `order:` numbers do the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    /// Sets of PCI devices (by id) that share no upstream link below the root complex:
    /// each sits on the root bus, or below a port or bridge of its own plugged into a
    /// root bus (the machine's or a NUMA expander's), or in a `together` set no other
    /// member of the set is in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apart: Vec<Vec<String>>,
    /// Sets of PCI devices (by id) that sit below one common PCIe switch, PCI bridge or
    /// NUMA expander (peer-to-peer traffic stays off the root complex). Sets that share
    /// a device (or a multifunction group) are one set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub together: Vec<Vec<String>>,
    /// Controllers that already exist (with their index and usually their address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<ControllerEntry>,
    /// The devices wanted, each with optional pins and per-device tunables.
    pub devices: Vec<DeviceEntry>,
    /// What a plan reports as left over; ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<serde_json::Value>,
    /// What a plan states about 64-bit MMIO; ignored on input (computed again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmio64: Option<serde_json::Value>,
}

/// One device wanted (spec) or placed (plan).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// Unique name; the plan refers to devices by id.
    pub id: String,
    /// A kind from the catalog (`devaddr models`).
    pub kind: String,
    /// Guest NUMA node the device belongs to (0-based, below `policy.numa_nodes`): it is
    /// placed below that node's expander bus (QEMU pxb/pxb-pcie `numa_node`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::limits::MAX_NUMA_NODES - 1))]
    pub numa_node: Option<u32>,
    /// Must sit in a hotpluggable slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotplug: Option<bool>,
    /// Force conventional PCI or PCIe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<BusType>,
    /// Devices sharing a group become functions of one slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// USB controller ports (USB controller kinds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<u32>,
    /// Host PCI device for vfio-pci (`0000:01:00.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Position in the PCI ordering: devices with an `order` get ascending addresses in
    /// ascending `order` (ties keep spec order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// `root`: an integrated endpoint on the root bus (pcie.0 / pci.0), no port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Size of the device's 64-bit prefetchable BAR (`128G` for a GPU passed through
    /// with vfio-pci): counted in the 64-bit MMIO space the plan states and the firmware
    /// and QEMU settings it emits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bar64: Option<ByteSize>,
    /// Pinned (spec) or assigned (plan) address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// `placement:` of a device.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Placement {
    /// On the root bus itself (pcie.0 / pci.0) as an integrated endpoint, no port.
    Root,
}

/// `bus:` override of a device.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BusType {
    /// Conventional PCI: a slot of a conventional bus (pci-root, pci-bridge,
    /// pcie-to-pci-bridge) — transitional virtio on a PCIe machine.
    Pci,
    /// PCI Express: a PCIe port (or the PCIe root bus as an integrated endpoint).
    Pcie,
}

impl Spec {
    /// Parse a YAML or JSON spec (or plan). `file` names the input in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Spec> {
        let spec = crate::yaml::from_str_all::<Spec>(text, |v| entry_errors(text, v))
            .map_err(|e| e.in_file(file))?;
        bounds::check(&spec).map_err(|e| e.in_source(file, text))?;
        Ok(spec)
    }

    /// The policy tunables with every default filled in (NUMA nodes default to the
    /// highest node any device or controller names, plus one).
    pub fn effective_policy(&self) -> Effective {
        let max_node = self
            .devices
            .iter()
            .filter_map(|d| d.numa_node)
            .chain(self.controllers.iter().filter_map(|c| c.numa_node))
            .max();
        self.policy.effective(max_node)
    }

    /// Each device's position in `devices`, by id (the last of a repeated id).
    pub(crate) fn positions(&self) -> std::collections::BTreeMap<&str, usize> {
        self.devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.as_str(), i))
            .collect()
    }

    /// Serialize as YAML.
    pub fn to_yaml(&self) -> String {
        crate::yaml::to_string(self)
    }
}

/// The errors of each controller and device entry of a spec or plan document, each
/// parsed on its own (for [`crate::yaml::from_str_all`]).
pub(crate) fn entry_errors(text: &str, v: &serde_yaml::Value) -> Vec<Error> {
    let mut errors = crate::yaml::entry_errors::<ControllerEntry>(text, Some("controllers"), v);
    errors.extend(crate::yaml::entry_errors::<DeviceEntry>(
        text,
        Some("devices"),
        v,
    ));
    errors
}

/// Devices to add to a running guest (`devaddr hotplug --add`), with the `apart` and
/// `together` sets they join (their ids may name devices of the guest and new ones).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Additions {
    /// The new devices.
    pub devices: Vec<DeviceEntry>,
    /// Sets added to the guest's `apart:` sets.
    pub apart: Vec<Vec<String>>,
    /// Sets added to the guest's `together:` sets.
    pub together: Vec<Vec<String>>,
}

impl Additions {
    /// New devices that join no set.
    pub fn devices(devices: Vec<DeviceEntry>) -> Self {
        Additions {
            devices,
            ..Default::default()
        }
    }
}

/// Parse a list of devices (`devaddr hotplug --add`): a YAML/JSON list of device entries,
/// or a mapping with `devices:`. `file` names the input in errors. Sets (`apart:`,
/// `together:`) are refused here: see [`parse_additions`].
pub fn parse_devices(text: &str, file: &str) -> Result<Vec<DeviceEntry>> {
    let a = parse_additions(text, file)?;
    if !a.apart.is_empty() || !a.together.is_empty() {
        return Err(Error::Input {
            location: Box::new(crate::error::Location {
                file: Some(file.into()),
                path: Some(
                    if a.apart.is_empty() {
                        "together"
                    } else {
                        "apart"
                    }
                    .into(),
                ),
                ..Default::default()
            }),
            message: "sets apply to a devaddr plan (`hotplug PLAN --add`); expected device \
                      entries only"
                .into(),
            code: crate::Code::UnknownField,
        });
    }
    Ok(a.devices)
}

/// Parse what `devaddr hotplug PLAN --add` takes: a YAML/JSON list of device entries, or
/// a mapping with `devices:` and optionally `apart:` and `together:` sets the new devices
/// join. `file` names the input in errors.
///
/// ```
/// let a = devaddr::spec::parse_additions(
///     "devices: [{id: net2, kind: virtio-net}]\napart: [[net0, net2]]\n",
///     "add.yaml",
/// )?;
/// assert_eq!(a.apart, vec![vec!["net0".to_string(), "net2".to_string()]]);
/// # Ok::<(), devaddr::Error>(())
/// ```
pub fn parse_additions(text: &str, file: &str) -> Result<Additions> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DeviceList {
        devices: Vec<DeviceEntry>,
        #[serde(default)]
        apart: Vec<Vec<String>>,
        #[serde(default)]
        together: Vec<Vec<String>>,
    }
    let t = text.trim_start();
    let list = t.starts_with('-') || t.starts_with('[');
    let r = if list {
        crate::yaml::from_str_all::<Vec<DeviceEntry>>(text, |v| {
            crate::yaml::entry_errors::<DeviceEntry>(text, None, v)
        })
        .map(Additions::devices)
    } else {
        crate::yaml::from_str_all::<DeviceList>(text, |v| {
            crate::yaml::entry_errors::<DeviceEntry>(text, Some("devices"), v)
        })
        .map(|w| Additions {
            devices: w.devices,
            apart: w.apart,
            together: w.together,
        })
    };
    let additions = r.map_err(|e| e.in_file(file))?;
    let errors = additions.devices.iter().enumerate().filter_map(|(i, d)| {
        let path = if list {
            format!("[{i}]")
        } else {
            format!("devices[{i}]")
        };
        bounds::device(&path, d).err()
    });
    Error::collect(errors.collect()).map_err(|e| e.in_source(file, text))?;
    if additions.devices.is_empty() {
        return Err(Error::Input {
            location: Box::new(crate::error::Location {
                file: Some(file.into()),
                ..Default::default()
            }),
            message: "no devices to add; expected a list of devices".into(),
            code: crate::Code::MissingField,
        });
    }
    Ok(additions)
}
