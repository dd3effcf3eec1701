//! Serde types of the catalog files.

pub use crate::vocab::{Attr, ConnectFlags, ConnectKind, ControllerType, Function, Slot};
use serde::{Deserialize, Serialize};

/// A machine type (`models/machines/*.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub arch: String,
    pub qemu_binary: String,
    pub qemu_machine: String,
    #[serde(default)]
    pub qemu_extra: Vec<String>,
    pub firmware: String,
    /// Model of the root bus (controller index 0).
    pub root: String,
    /// QEMU's name for the root bus (`pcie.0`, `pci.0`).
    pub root_bus_name: String,
    /// Whether PCIe endpoints exist here (false: every device is conventional PCI).
    pub pcie: bool,
    /// Root-bus functions occupied by the chipset.
    #[serde(default)]
    pub builtin: Vec<BuiltinSlot>,
    /// Storage/USB controllers that exist with the machine.
    #[serde(default)]
    pub builtin_controllers: Vec<BuiltinController>,
    /// Root-bus functions reserved for a controller model if the plan uses one.
    #[serde(default)]
    pub fixed_controller_slots: Vec<FixedControllerSlot>,
    /// Slot of the first (primary) video device.
    #[serde(default)]
    pub primary_video: Option<SlotRef>,
    pub grow: Grow,
    pub defaults: Defaults,
    pub limits: Limits,
    /// What counts as a reserved hotplug slot: a PCIe port or a conventional PCI slot.
    pub reserve_kind: ReserveKind,
    /// Kinds `devaddr capacity` reports when none is asked for.
    #[serde(default)]
    pub capacity_kinds: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReserveKind {
    PciePort,
    PciSlot,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinSlot {
    pub slot: Slot,
    pub functions: Vec<Function>,
    pub what: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinController {
    pub id: String,
    pub model: String,
    pub index: u32,
    pub slot: Slot,
    pub function: Function,
    /// QEMU names this controller's buses `<prefix>.N`.
    pub qemu_bus_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedControllerSlot {
    pub model: String,
    pub slot: Slot,
    pub function: Function,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRef {
    pub slot: Slot,
}

/// Controller models the planner adds, by role.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grow {
    /// Port for a PCIe endpoint (pcie-root-port).
    #[serde(default)]
    pub pcie_port: Option<String>,
    /// First conventional-PCI bus on a PCIe machine (pcie-to-pci-bridge).
    #[serde(default)]
    pub pci_bridge_first: Option<String>,
    /// Further conventional-PCI buses (pci-bridge).
    #[serde(default)]
    pub pci_bridge: Option<String>,
    /// PCIe switch (upstream port on a root port, downstream ports on it).
    #[serde(default)]
    pub pcie_switch_upstream: Option<String>,
    #[serde(default)]
    pub pcie_switch_downstream: Option<String>,
    /// Expander bus carrying a NUMA node.
    #[serde(default)]
    pub numa_expander: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub usb_controller: String,
    pub sata_controller: String,
    pub scsi_controller: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub bus_numbers: u32,
    /// 4 KiB I/O windows the firmware can hand to bridges (x86 only).
    #[serde(default)]
    pub io_windows: Option<u32>,
}

/// `models/controllers.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllersFile {
    pub pci: Vec<PciModel>,
    pub storage: Vec<StorageModel>,
}

/// A PCI controller model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PciModel {
    pub model: String,
    /// QEMU device name; None for the machine's root bus.
    pub qemu: Option<String>,
    /// The connect kind of the slot it plugs into (its own type); None for roots.
    pub connect: Option<ConnectKind>,
    /// Several share one slot as functions (pcie-root-port).
    #[serde(default)]
    pub aggregate: bool,
    /// Carries a NUMA node (expander buses).
    #[serde(default)]
    pub numa: bool,
    /// Bus numbers it consumes.
    pub bus_numbers: u32,
    /// Hotplug of its bus can be switched off.
    #[serde(default)]
    pub hotplug_settable: bool,
    /// Extra attributes the plan fills in (chassis, port, chassis_nr, bus_nr).
    #[serde(default)]
    pub attrs: Vec<Attr>,
    /// Relative cost of adding one (objective weight).
    #[serde(default = "one")]
    pub cost: u32,
    pub bus: BusSpec,
}

fn one() -> u32 {
    1
}

/// What a controller's bus provides downstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusSpec {
    /// Inclusive slot range.
    pub slots: [u8; 2],
    pub hotplug: bool,
    /// PCIe bus (endpoints on it are PCIe) or conventional.
    pub express: bool,
    /// Connect kinds it accepts.
    pub accepts: ConnectFlags,
}

impl BusSpec {
    pub fn slot_count(&self) -> u32 {
        u32::from(self.slots[1]) - u32::from(self.slots[0]) + 1
    }
    /// Whether a `kind` may plug into this bus.
    pub fn accepts(&self, kind: ConnectKind) -> bool {
        self.accepts.contains(kind)
    }
}

/// A controller of a non-PCI bus (USB, SATA, IDE, SCSI).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageModel {
    pub model: String,
    /// The bus it provides to the devices plugged into it.
    pub provides: ControllerType,
    /// USB: root ports (default and maximum).
    #[serde(default)]
    pub ports: Option<u32>,
    #[serde(default)]
    pub max_ports: Option<u32>,
    /// Drive controllers: buses and units per bus.
    #[serde(default)]
    pub buses: Option<u32>,
    #[serde(default)]
    pub units: Option<u32>,
}

impl StorageModel {
    /// How many devices one controller of this model takes.
    pub fn capacity(&self, ports: Option<u32>) -> u32 {
        match self.provides {
            ControllerType::Usb => ports.or(self.ports).unwrap_or(0),
            _ => self.buses.unwrap_or(1) * self.units.unwrap_or(1),
        }
    }
}

/// `models/devices.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesFile {
    pub kinds: Vec<Kind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Pci,
    Usb,
    Drive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PciType {
    Pci,
    Pcie,
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoBar {
    None,
    Always,
    Legacy,
}

/// A device kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kind {
    pub kind: String,
    pub qemu: String,
    /// libvirt element it corresponds to.
    pub element: String,
    pub family: Family,
    #[serde(default)]
    pub pci: Option<PciType>,
    #[serde(default = "no_io")]
    pub io_bar: IoBar,
    #[serde(default)]
    pub backend: Option<String>,
    /// It is also a controller of a non-PCI bus (model in controllers.yaml `storage`).
    #[serde(default)]
    pub controller: Option<String>,
    #[serde(default)]
    pub drive_bus: Option<ControllerType>,
    #[serde(default)]
    pub video: bool,
    /// QEMU needs a `serial=` property.
    #[serde(default)]
    pub serial: bool,
    /// QEMU device used in place of this one when no host device is named.
    #[serde(default)]
    pub standin: Option<String>,
    /// At most this many per guest (QEMU refuses more).
    #[serde(default)]
    pub max_per_guest: Option<u32>,
    /// Whether it can be hot-plugged.
    #[serde(default = "yes")]
    pub hotplug: bool,
    /// Whether it can be added to a running guest (libvirt's `attach-device --live`
    /// accepts it): libvirt attaches disks, NICs, hostdevs, inputs, RNGs, watchdogs and
    /// serial ports live, but of the controllers only SCSI ones.
    #[serde(default = "yes")]
    pub attach: bool,
}

fn no_io() -> IoBar {
    IoBar::None
}
fn yes() -> bool {
    true
}
