//! Device addresses: PCI, USB port, drive unit.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// An address as in libvirt: `bus` of a PCI address is the *index* of the controller
/// providing that bus, not the guest bus number.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Address {
    /// `type: pci`: a PCI function.
    Pci(PciAddress),
    /// `type: usb`: a USB port.
    Usb(UsbAddress),
    /// `type: drive`: a unit of a disk controller.
    Drive(DriveAddress),
}

/// A PCI address as libvirt writes it (`<address type='pci' domain= bus= slot= function=/>`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct PciAddress {
    /// PCI domain (segment); 0 by default, the only one devaddr plans.
    #[serde(default)]
    #[schemars(range(max = crate::limits::MAX_PCI_DOMAIN))]
    pub domain: u32,
    /// Index of the PCI controller providing the bus (libvirt's convention), not the
    /// guest's bus number: 0 is the root bus.
    #[schemars(range(max = crate::limits::MAX_BUS_NR))]
    pub bus: u32,
    /// Slot (device number) on that bus, 0-31.
    #[schemars(range(max = crate::limits::MAX_PCI_SLOT))]
    pub slot: u8,
    /// Function in the slot, 0-7; 0 by default.
    #[serde(default)]
    #[schemars(range(max = crate::limits::MAX_PCI_FUNCTION))]
    pub function: u8,
    /// Set on function 0 of a slot whose other functions are used (QEMU
    /// `multifunction=on`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multifunction: Option<bool>,
}

impl PciAddress {
    /// Function `function` of slot `slot` on bus `bus` (controller index), domain 0,
    /// no multifunction flag.
    pub fn new(bus: u32, slot: u8, function: u8) -> Self {
        PciAddress {
            domain: 0,
            bus,
            slot,
            function,
            multifunction: None,
        }
    }
    /// The slot this address lies in, for uniqueness checks.
    pub fn key(&self) -> (u32, u32, u8, u8) {
        (self.domain, self.bus, self.slot, self.function)
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{}",
            self.domain, self.bus, self.slot, self.function
        )
    }
}

/// A USB port (`<address type='usb' bus= port=/>`).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct UsbAddress {
    /// Index of the USB controller.
    #[schemars(range(max = crate::limits::MAX_STORAGE_INDEX))]
    pub bus: u32,
    /// Port path: `1`, or `1.3` behind a hub.
    #[serde(deserialize_with = "port_string")]
    #[schemars(schema_with = "port_schema")]
    pub port: String,
}

/// What [`port_string`] and the bounds check accept: a port number (1-31), or port
/// numbers joined by `.` (at most 4), as a string.
fn port_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": crate::limits::MAX_USB_PORT_NUMBER},
            {"type": "string", "pattern": "^0*([1-9]|[12][0-9]|3[01])(\\.0*([1-9]|[12][0-9]|3[01])){0,3}$"}
        ]
    })
}

fn port_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum UsbPort {
        N(u64),
        S(String),
    }
    Ok(match UsbPort::deserialize(d)? {
        UsbPort::N(n) => n.to_string(),
        UsbPort::S(s) => s,
    })
}

/// A disk's place on a SATA, SCSI or IDE controller (`<address type='drive'
/// controller= bus= target= unit=/>`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct DriveAddress {
    /// Index of the disk controller (of the disk's bus type).
    #[schemars(range(max = crate::limits::MAX_STORAGE_INDEX))]
    pub controller: u32,
    /// Bus of the controller (IDE: 0 primary, 1 secondary; SATA and SCSI: 0); 0 by
    /// default.
    #[serde(default)]
    #[schemars(range(max = crate::limits::MAX_DRIVE_BUS))]
    pub bus: u32,
    /// SCSI target (0-255); 0 for SATA and IDE and by default.
    #[serde(default)]
    #[schemars(range(max = crate::limits::MAX_DRIVE_TARGET))]
    pub target: u32,
    /// Unit on the bus: the AHCI port (SATA, 0-5), master/slave (IDE, 0-1) or the SCSI
    /// LUN; 0 by default.
    #[serde(default)]
    #[schemars(range(max = crate::limits::MAX_DRIVE_UNIT))]
    pub unit: u32,
}

impl Address {
    /// The place it names, without the multifunction flag: two addresses with the same
    /// place are the same PCI function, USB port or drive unit.
    pub fn place(&self) -> Address {
        match self {
            Address::Pci(p) => Address::Pci(PciAddress {
                multifunction: None,
                ..*p
            }),
            other => other.clone(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Pci(p) => write!(f, "pci {p}"),
            Address::Usb(u) => write!(f, "usb bus {} port {}", u.bus, u.port),
            Address::Drive(d) => write!(
                f,
                "drive controller {} bus {} target {} unit {}",
                d.controller, d.bus, d.target, d.unit
            ),
        }
    }
}
