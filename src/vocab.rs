//! The hardware vocabulary shared by the catalog, the planner, the verifier and the libvirt
//! policy: how a PCI device or controller connects to a bus ([`ConnectKind`], sets of them
//! as [`ConnectFlags`]), what a non-PCI controller provides ([`ControllerType`]), the attributes a
//! plan fills in for a PCI controller ([`Attr`]), checked slot and function numbers
//! ([`Slot`], [`Function`]) and the fixed facts of PCI ([`pci`]) and SCSI ([`scsi`]).
//!
//! The YAML spelling of every name is the one `models/` has always used; a name that is not
//! part of the vocabulary is refused when the file is read.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Facts of the PCI architecture (not of a machine: those are in `models/machines`).
pub mod pci {
    /// Functions in one PCI slot (function numbers 0 to 7, three bits).
    pub const FUNCTIONS_PER_SLOT: u8 = 8;
    /// Slots (device numbers) on one PCI bus (0 to 31, five bits).
    pub const SLOTS_PER_BUS: u8 = 32;
    /// Highest slot number on a bus.
    pub const MAX_SLOT: u8 = SLOTS_PER_BUS - 1;
    /// Highest function number in a slot.
    pub const MAX_FUNCTION: u8 = FUNCTIONS_PER_SLOT - 1;
    /// Bus numbers of one PCI domain (0 to 255, eight bits). A machine's own budget is
    /// its catalog entry's `limits.bus_numbers`; this is the architecture's ceiling.
    pub const BUS_NUMBERS: u32 = 256;
    /// Highest guest bus number (`bus_nr` of an expander bus).
    pub const MAX_BUS_NUMBER: u32 = BUS_NUMBERS - 1;
    /// Highest value of QEMU's 8-bit `chassis`, `port` and `chassis_nr` properties of
    /// PCI(e) ports and bridges.
    pub const MAX_CHASSIS: u32 = u8::MAX as u32;
}

/// SCSI addressing limits of virtio-scsi (QEMU's): the one SCSI controller devaddr plans.
pub mod scsi {
    /// Highest SCSI target.
    pub const MAX_TARGET: u32 = 255;
    /// Highest logical unit (LUN).
    pub const MAX_UNIT: u32 = 16383;
}

/// How a PCI device or controller plugs into a bus: libvirt's connect kinds (its
/// `VIR_PCI_CONNECT_TYPE_*` set). A bus accepts a set of them ([`ConnectFlags`]).
///
/// The variants are declared (and so ordered) as their names sort, which keeps every map
/// keyed by them in the order the planner has always used; [`ConnectKind::ALL`] is the
/// order sets of them are listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ConnectKind {
    /// A DMI-to-PCI bridge (`dmi-to-pci-bridge`).
    DmiToPciBridge,
    /// A PCI-to-PCI bridge (`pci-bridge`).
    PciBridge,
    /// A conventional PCI endpoint.
    PciDevice,
    /// A conventional PCI expander bus (`pxb`).
    PciExpanderBus,
    /// A PCI Express endpoint.
    PcieDevice,
    /// A PCI Express expander bus (`pxb-pcie`).
    PcieExpanderBus,
    /// A PCIe root port (`pcie-root-port`).
    PcieRootPort,
    /// A downstream port of a PCIe switch.
    PcieSwitchDownstreamPort,
    /// The upstream port of a PCIe switch.
    PcieSwitchUpstreamPort,
    /// A PCIe-to-PCI bridge (`pcie-to-pci-bridge`).
    PcieToPciBridge,
}

impl ConnectKind {
    /// Every kind, in the order sets of them are listed.
    pub const ALL: [ConnectKind; 10] = [
        ConnectKind::PciDevice,
        ConnectKind::PcieDevice,
        ConnectKind::PcieRootPort,
        ConnectKind::PcieSwitchUpstreamPort,
        ConnectKind::PcieSwitchDownstreamPort,
        ConnectKind::PciBridge,
        ConnectKind::PcieToPciBridge,
        ConnectKind::DmiToPciBridge,
        ConnectKind::PciExpanderBus,
        ConnectKind::PcieExpanderBus,
    ];

    /// The name used in `models/` (`pcie-root-port`).
    pub const fn name(self) -> &'static str {
        match self {
            ConnectKind::PciDevice => "pci-device",
            ConnectKind::PcieDevice => "pcie-device",
            ConnectKind::PcieRootPort => "pcie-root-port",
            ConnectKind::PcieSwitchUpstreamPort => "pcie-switch-upstream-port",
            ConnectKind::PcieSwitchDownstreamPort => "pcie-switch-downstream-port",
            ConnectKind::PciBridge => "pci-bridge",
            ConnectKind::PcieToPciBridge => "pcie-to-pci-bridge",
            ConnectKind::DmiToPciBridge => "dmi-to-pci-bridge",
            ConnectKind::PciExpanderBus => "pci-expander-bus",
            ConnectKind::PcieExpanderBus => "pcie-expander-bus",
        }
    }

    /// The endpoint kind of a device placed as PCI Express (`true`) or conventional PCI.
    pub const fn endpoint(pcie: bool) -> ConnectKind {
        if pcie {
            ConnectKind::PcieDevice
        } else {
            ConnectKind::PciDevice
        }
    }

    /// Whether it is an endpoint (a device, not a controller).
    pub const fn is_endpoint(self) -> bool {
        matches!(self, ConnectKind::PciDevice | ConnectKind::PcieDevice)
    }

    /// The one-kind set.
    pub const fn flag(self) -> ConnectFlags {
        ConnectFlags(1 << self as u16)
    }
}

impl fmt::Display for ConnectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not part of the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What was looked for (`connect kind`, `bus type`).
    pub what: &'static str,
    /// The name given.
    pub name: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} `{}`", self.what, self.name)
    }
}

impl std::error::Error for UnknownName {}

impl FromStr for ConnectKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnectKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownName {
                what: "connect kind",
                name: s.to_string(),
            })
    }
}

/// A set of connect kinds: what a bus accepts, or what may plug in somewhere.
/// Serialized as the list of kind names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ConnectFlags(u16);

impl ConnectFlags {
    /// The empty set.
    pub const NONE: ConnectFlags = ConnectFlags(0);
    /// Both endpoint kinds (conventional PCI and PCI Express devices).
    pub const ENDPOINTS: ConnectFlags = ConnectKind::PciDevice
        .flag()
        .union(ConnectKind::PcieDevice.flag());

    /// The set of both.
    pub const fn union(self, other: ConnectFlags) -> ConnectFlags {
        ConnectFlags(self.0 | other.0)
    }
    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: ConnectKind) -> bool {
        self.0 & kind.flag().0 != 0
    }
    /// Whether the sets share a kind.
    pub const fn intersects(self, other: ConnectFlags) -> bool {
        self.0 & other.0 != 0
    }
    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The kinds in the set, in [`ConnectKind::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = ConnectKind> {
        ConnectKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

impl FromIterator<ConnectKind> for ConnectFlags {
    fn from_iter<I: IntoIterator<Item = ConnectKind>>(iter: I) -> Self {
        iter.into_iter()
            .fold(ConnectFlags::NONE, |s, k| s.union(k.flag()))
    }
}

impl From<ConnectKind> for ConnectFlags {
    fn from(k: ConnectKind) -> Self {
        k.flag()
    }
}

impl fmt::Display for ConnectFlags {
    /// The kind names joined with `, `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(k.name())?;
        }
        Ok(())
    }
}

impl Serialize for ConnectFlags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ConnectFlags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<ConnectKind>::deserialize(d)?.into_iter().collect())
    }
}

/// The type of a controller of a non-PCI bus (libvirt's `<controller type>`): what a USB
/// or storage controller provides, and what a USB device or a drive plugs into. Declared
/// (and so ordered) as the names sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ControllerType {
    /// IDE buses and units.
    Ide,
    /// SATA (AHCI) ports.
    Sata,
    /// SCSI targets and units.
    Scsi,
    /// USB ports.
    Usb,
}

impl ControllerType {
    /// Every bus type.
    pub const ALL: [ControllerType; 4] = [
        ControllerType::Ide,
        ControllerType::Sata,
        ControllerType::Scsi,
        ControllerType::Usb,
    ];

    /// The name used in `models/`, plans and libvirt (`usb`, `sata`, `scsi`, `ide`).
    pub const fn name(self) -> &'static str {
        match self {
            ControllerType::Usb => "usb",
            ControllerType::Sata => "sata",
            ControllerType::Scsi => "scsi",
            ControllerType::Ide => "ide",
        }
    }
}

impl fmt::Display for ControllerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ControllerType {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ControllerType::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownName {
                what: "controller type",
                name: s.to_string(),
            })
    }
}

/// An attribute the plan fills in for a PCI controller (QEMU properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Attr {
    /// `chassis` of a PCIe port.
    Chassis,
    /// `port` (port number) of a PCIe port.
    Port,
    /// `chassis_nr` of a pci-bridge.
    ChassisNr,
    /// `bus_nr` (first guest bus number) of an expander bus.
    BusNr,
}

impl Attr {
    /// The name used in `models/` and plans.
    pub const fn name(self) -> &'static str {
        match self {
            Attr::Chassis => "chassis",
            Attr::Port => "port",
            Attr::ChassisNr => "chassis_nr",
            Attr::BusNr => "bus_nr",
        }
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A PCI slot number, 0 to [`pci::MAX_SLOT`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct Slot(u8);

impl Slot {
    /// The slot, if `n` is one.
    pub const fn new(n: u8) -> Option<Slot> {
        if n <= pci::MAX_SLOT {
            Some(Slot(n))
        } else {
            None
        }
    }
    /// Its number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Slot {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        Slot::new(n).ok_or_else(|| format!("slot {n} is out of range 0-{}", pci::MAX_SLOT))
    }
}

impl PartialEq<u8> for Slot {
    fn eq(&self, n: &u8) -> bool {
        self.0 == *n
    }
}

impl From<Slot> for u8 {
    fn from(s: Slot) -> u8 {
        s.0
    }
}

/// A PCI function number, 0 to [`pci::MAX_FUNCTION`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct Function(u8);

impl Function {
    /// The function, if `n` is one.
    pub const fn new(n: u8) -> Option<Function> {
        if n <= pci::MAX_FUNCTION {
            Some(Function(n))
        } else {
            None
        }
    }
    /// Its number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Function {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        Function::new(n)
            .ok_or_else(|| format!("function {n} is out of range 0-{}", pci::MAX_FUNCTION))
    }
}

impl PartialEq<u8> for Function {
    fn eq(&self, n: &u8) -> bool {
        self.0 == *n
    }
}

impl From<Function> for u8 {
    fn from(f: Function) -> u8 {
        f.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_name_order() {
        let mut kinds = ConnectKind::ALL;
        kinds.sort();
        let names: Vec<_> = kinds.iter().map(|k| k.name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let names: Vec<_> = ControllerType::ALL.iter().map(|k| k.name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn names_round_trip() {
        for k in ConnectKind::ALL {
            assert_eq!(k.name().parse::<ConnectKind>(), Ok(k));
            let yaml = serde_yaml::to_string(&k).unwrap();
            assert_eq!(yaml.trim(), k.name());
        }
        for b in ControllerType::ALL {
            assert_eq!(b.name().parse::<ControllerType>(), Ok(b));
        }
        assert!("pcie-devce".parse::<ConnectKind>().is_err());
    }

    #[test]
    fn flag_sets_list_in_kind_order() {
        let s: ConnectFlags = [ConnectKind::PciBridge, ConnectKind::PciDevice]
            .into_iter()
            .collect();
        assert_eq!(s.to_string(), "pci-device, pci-bridge");
        assert!(s.contains(ConnectKind::PciBridge));
        assert!(!s.contains(ConnectKind::PcieDevice));
        assert!(s.intersects(ConnectFlags::ENDPOINTS));
    }

    #[test]
    fn slots_and_functions_are_checked() {
        assert_eq!(Slot::new(31).map(Slot::get), Some(31));
        assert!(Slot::new(32).is_none());
        assert!(Function::new(8).is_none());
        assert!(serde_yaml::from_str::<Slot>("40").is_err());
    }
}
