//! Device addresses: PCI, USB port, drive unit.

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// An address as in libvirt: `bus` of a PCI address is the *index* of the controller
/// providing that bus, not the guest bus number.
///
/// Read from a map (`{type: pci, bus: 3, slot: 0, function: 0}`, `{type: usb, …}`,
/// `{type: drive, …}`) or, for PCI, from a string in the lspci/KubeVirt notation
/// (`"0000:03:00.0"` or `"03:00.0"`, hex; see [`PciAddress::from_str`]). Always written
/// as a map, in decimal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[schemars(transform = with_pci_string)]
pub enum Address {
    /// `type: pci`: a PCI function.
    Pci(PciAddress),
    /// `type: usb`: a USB port.
    Usb(UsbAddress),
    /// `type: drive`: a unit of a disk controller.
    Drive(DriveAddress),
}

/// The map forms of an address, as serde reads them (`type:` says which).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Tagged {
    Pci(PciAddress),
    Usb(UsbAddress),
    Drive(DriveAddress),
}

/// The forms an address may take, for messages about a malformed one (the one place
/// they are written).
pub const ADDRESS_FORMS: &str = "an address: \"0000:03:00.0\" or \"03:00.0\" \
     (domain:bus:slot.function, hex, as lspci and KubeVirt write them; bus is the index of \
     the controller providing the bus), or a mapping like {type: pci, bus: 3, slot: 0, \
     function: 0}, {type: usb, bus: 0, port: 1} or {type: drive, controller: 0, unit: 0}";

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Address;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(ADDRESS_FORMS)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Address, E> {
                s.parse::<PciAddress>().map(Address::Pci).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Address, A::Error> {
                Ok(
                    match Tagged::deserialize(de::value::MapAccessDeserializer::new(map))? {
                        Tagged::Pci(p) => Address::Pci(p),
                        Tagged::Usb(u) => Address::Usb(u),
                        Tagged::Drive(d) => Address::Drive(d),
                    },
                )
            }
        }
        d.deserialize_any(V)
    }
}

/// The pattern of a PCI address string ([`PciAddress::from_str`]), for the schema.
const PCI_STRING_PATTERN: &str =
    "^([0-9A-Fa-f]{1,4}:)?[0-9A-Fa-f]{1,2}:(0?[0-9A-Fa-f]|1[0-9A-Fa-f])\\.[0-7]$";

/// The schema of an address: the map forms serde derives, or a PCI address string.
fn with_pci_string(schema: &mut schemars::Schema) {
    let string = schemars::json_schema!({
        "type": "string",
        "description": "A PCI address as lspci and KubeVirt write it, hex: \"0000:03:00.0\" \
                        (domain:bus:slot.function) or \"03:00.0\" (domain 0). The bus is the \
                        index of the controller providing the bus (libvirt's convention).",
        "pattern": PCI_STRING_PATTERN
    });
    if let Some(one_of) = schema.get_mut("oneOf").and_then(|v| v.as_array_mut()) {
        one_of.push(string.to_value());
    }
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

/// Why a PCI address string is malformed, with the accepted forms.
fn bad_pci(s: &str, why: &str) -> String {
    format!("\"{s}\" is not a PCI address: {why}; expected {ADDRESS_FORMS}")
}

impl FromStr for PciAddress {
    type Err = String;

    /// `DDDD:BB:SS.F` or `BB:SS.F` in hex, as lspci and KubeVirt write a PCI address
    /// (`0000:03:00.0`, `03:1f.2`): domain up to 4 digits, bus up to 2, slot up to 2
    /// (at most `1f`), function one digit 0-7; upper or lower case. The bus is the
    /// index of the controller providing the bus. A slot without its function
    /// (`03:00`, which lspci's `-s` reads as every function of the slot) is refused
    /// rather than read as function 0.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = |part: &str, max_digits: usize, what: &str| -> Result<u32, String> {
            if part.is_empty()
                || part.len() > max_digits
                || !part.chars().all(|c| c.is_ascii_hexdigit())
            {
                let digits = if max_digits == 1 {
                    "one hex digit".to_string()
                } else {
                    format!("1 to {max_digits} hex digits")
                };
                return Err(bad_pci(
                    s,
                    &format!("the {what} must be {digits}, not \"{part}\""),
                ));
            }
            u32::from_str_radix(part, 16).map_err(|e| bad_pci(s, &e.to_string()))
        };
        let Some((head, function)) = s.rsplit_once('.') else {
            let fix = if s.split(':').count() >= 2 {
                format!("no function: write \"{s}.0\" for function 0")
            } else {
                "no function".to_string()
            };
            return Err(bad_pci(s, &fix));
        };
        let parts: Vec<&str> = head.split(':').collect();
        let (domain, bus, slot) = match parts.as_slice() {
            [d, b, sl] => (hex(d, 4, "domain")?, hex(b, 2, "bus")?, hex(sl, 2, "slot")?),
            [b, sl] => (0, hex(b, 2, "bus")?, hex(sl, 2, "slot")?),
            _ => {
                return Err(bad_pci(
                    s,
                    &format!("{} colon-separated parts before the function", parts.len()),
                ))
            }
        };
        let function = hex(function, 1, "function")?;
        if slot > u32::from(crate::limits::MAX_PCI_SLOT) {
            return Err(bad_pci(s, &format!("slot {slot:#x} is above 0x1f")));
        }
        if function > u32::from(crate::limits::MAX_PCI_FUNCTION) {
            return Err(bad_pci(s, &format!("function {function} is above 7")));
        }
        Ok(PciAddress {
            domain,
            bus,
            slot: slot as u8,
            function: function as u8,
            multifunction: None,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(text: &str) -> Result<Address, String> {
        crate::yaml::from_str::<Address>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn pci_strings_read_as_lspci_writes_them() {
        let want = Address::Pci(PciAddress::new(3, 0, 0));
        for text in [
            "'0000:03:00.0'",
            "\"03:00.0\"",
            "3:0.0",
            "{type: pci, bus: 3, slot: 0, function: 0}",
            "{type: pci, bus: 3, slot: 0}",
        ] {
            assert_eq!(pin(text), Ok(want.clone()), "{text}");
        }
        let p: PciAddress = "0001:FF:1f.7".parse().unwrap();
        assert_eq!((p.domain, p.bus, p.slot, p.function), (1, 255, 31, 7));
        assert_eq!(p.multifunction, None);
        // Display writes the same notation back.
        assert_eq!(p.to_string().parse::<PciAddress>(), Ok(p));
    }

    #[test]
    fn malformed_pci_strings_say_why_and_what_is_accepted() {
        for (text, why) in [
            ("03:00", "write \"03:00.0\" for function 0"),
            ("0000:03:20.0", "slot 0x20 is above 0x1f"),
            ("03:1f.8", "function 8 is above 7"),
            ("zz:00.0", "the bus must be 1 to 2 hex digits, not \"zz\""),
            ("00000:03:00.0", "the domain must be 1 to 4 hex digits"),
            ("0:0:0:0.0", "4 colon-separated parts"),
            ("net0", "no function"),
            ("03:00.", "the function must be one hex digit"),
            ("", "no function"),
        ] {
            let e = text.parse::<PciAddress>().unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
            assert!(e.contains("\"0000:03:00.0\" or \"03:00.0\""), "{text}: {e}");
            assert!(
                e.contains("{type: pci, bus: 3, slot: 0, function: 0}"),
                "{e}"
            );
        }
        // Not a string or a map: the accepted forms too.
        let e = pin("3").unwrap_err();
        assert!(e.contains("expected an address: \"0000:03:00.0\""), "{e}");
        // The map forms keep their own errors.
        assert!(pin("{bus: 3, slot: 0}").is_err());
        assert!(pin("{type: pci, bus: 3, slot: 0, port: 1}").is_err());
    }

    #[test]
    fn addresses_are_written_as_maps() {
        let a: Address = pin("'0000:03:1f.2'").unwrap();
        let yaml = crate::yaml::to_string(&a);
        assert_eq!(
            yaml, "type: pci\ndomain: 0\nbus: 3\nslot: 31\nfunction: 2\n",
            "{yaml}"
        );
    }
}
