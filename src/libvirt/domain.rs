//! The devices of a libvirt domain as devaddr sees them: tag, type/model/bus facets,
//! controller index and the address, read from (and later written back into) the
//! `<devices>` element of the document.

use super::fail;
use crate::xml::Element;
use crate::Error;

/// A PCI address (`bus` is the index of the controller providing the bus).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pci {
    pub bus: u32,
    pub slot: u8,
    pub function: u8,
    pub multifunction: Option<bool>,
}

/// A device's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    None,
    Pci(Pci),
    Drive {
        controller: u32,
        bus: u32,
        target: u32,
        unit: u32,
    },
    VirtioSerial {
        controller: u32,
        bus: u32,
        port: u32,
    },
    Usb {
        bus: u32,
        port: Vec<u32>,
    },
    Ccid {
        controller: u32,
        slot: u32,
    },
    /// A memory module's DIMM slot.
    Dimm {
        slot: u32,
    },
    /// Any other address type (virtio-mmio, ccw, isa, spapr-vio, unassigned…): kept.
    Other(String),
}

/// One device element under `<devices>`.
#[derive(Clone, Debug)]
pub struct Dev {
    /// Position among the element children of `<devices>` (None: added by devaddr).
    pub pos: Option<usize>,
    pub line: usize,
    pub tag: String,
    pub ty: Option<String>,
    pub model: Option<String>,
    /// Disk target bus, input bus; the source address type of an `<interface
    /// type='hostdev'>` (`pci`, `usb`).
    pub bus: Option<String>,
    /// Controller index; disk target name index.
    pub index: Option<u32>,
    /// Disk target name (`vda`), channel target name.
    pub target: Option<String>,
    pub addr: Addr,
    /// devaddr assigned `addr` (it must be written back).
    pub addr_new: bool,
    /// devaddr filled in the controller's index / model.
    pub index_new: bool,
    pub model_new: bool,
    /// Video marked `primary='yes'`.
    pub primary: bool,
    /// virtio-serial controller `ports`, xHCI `ports`.
    pub ports: Option<u32>,
    /// Graphics/console/etc. elements that matter only to defaults.
    pub passive: bool,
    /// A USB companion controller's `<master startport>`.
    pub master: bool,
    /// Written with an all-zero PCI address (`domain`, `bus` and `slot` 0): libvirt
    /// assigns it an address, as if it had none, except in the chipset steps that test
    /// for a missing `<address>` element.
    pub empty_pci_address: bool,
    /// The type of the `<address>` written in the domain, if any (`pci`, `usb`, …).
    pub addr_type: Option<String>,
    /// What a host device (or `<interface type='hostdev'>`) passes through: its
    /// subsystem type and `<source>` identity, numbers normalised.
    pub source: Option<String>,
    /// The address written on a console that stands for serial[0] (libvirt replaces it
    /// with serial[0]'s; `None`: none written).
    pub written_addr: Option<Addr>,
    /// A PCI controller with `<target hotplug='off'/>`.
    pub hotplug_off: bool,
    /// Being hot-added to a running guest: it needs a hotpluggable slot (libvirt's
    /// `VIR_PCI_CONNECT_HOTPLUGGABLE` for `attach-device --live`).
    pub hot: bool,
    /// A controller written in the domain: its place in libvirt's controller list
    /// (`def->controllers`) after parsing. Controllers libvirt adds come after all of
    /// these, in the order they are added (their order in the device list).
    pub seq: usize,
}

impl Dev {
    pub fn new(tag: &str) -> Dev {
        Dev {
            pos: None,
            line: 0,
            tag: tag.to_string(),
            ty: None,
            model: None,
            bus: None,
            index: None,
            target: None,
            addr: Addr::None,
            addr_new: false,
            index_new: false,
            model_new: false,
            primary: false,
            ports: None,
            passive: false,
            master: false,
            empty_pci_address: false,
            addr_type: None,
            source: None,
            written_addr: None,
            hotplug_off: false,
            hot: false,
            seq: 0,
        }
    }

    /// `controller type='pci' index='3'`, `disk vda`… for messages.
    pub fn describe(&self) -> String {
        match self.tag.as_str() {
            "controller" => format!(
                "<controller type='{}' index='{}'{}>",
                self.ty.as_deref().unwrap_or("?"),
                self.index
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "?".into()),
                self.model
                    .as_ref()
                    .map(|m| format!(" model='{m}'"))
                    .unwrap_or_default()
            ),
            "disk" => format!(
                "<disk> with target dev='{}'",
                self.target.as_deref().unwrap_or("?")
            ),
            t => match &self.model {
                Some(m) => format!("<{t}> model '{m}'"),
                None => format!("<{t}>"),
            },
        }
    }

    pub fn is(&self, tag: &str, ty: &str) -> bool {
        self.tag == tag && self.ty.as_deref() == Some(ty)
    }

    pub fn pci(&self) -> Option<Pci> {
        match self.addr {
            Addr::Pci(p) => Some(p),
            _ => None,
        }
    }
}

/// Parse a number the way libvirt does (`0x` hex, leading `0` octal, else decimal).
pub fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// A numeric attribute, bounded as libvirt bounds it (a C `int`, see
/// [`crate::limits::MAX_XML_INT`]).
fn num_attr(el: &Element, name: &str, file: &str) -> Result<Option<u32>, Error> {
    let Some(v) = el.attr(name) else {
        return Ok(None);
    };
    let at = format!("<{}>", el.name);
    let n = number(&v).ok_or_else(|| {
        fail(
            file,
            el.line,
            &at,
            format!("cannot parse {name}='{v}': expected a non-negative number"),
        )
    })?;
    if n > crate::limits::MAX_XML_INT {
        return Err(fail(
            file,
            el.line,
            &at,
            format!(
                "Invalid value for attribute '{name}' in element '{}': '{v}'. Expected integer \
                 value (0-{})",
                el.name,
                crate::limits::MAX_XML_INT
            ),
        ));
    }
    Ok(Some(n as u32))
}

fn parse_address(el: &Element, file: &str) -> Result<Addr, Error> {
    let ty = el.attr("type").unwrap_or_default();
    let n = |name: &str| -> Result<u32, Error> { Ok(num_attr(el, name, file)?.unwrap_or(0)) };
    Ok(match ty.as_str() {
        "pci" => {
            let domain = n("domain")?;
            let bus = n("bus")?;
            let slot = n("slot")?;
            let function = n("function")?;
            if domain != 0 {
                return Err(fail(
                    file,
                    el.line,
                    "<address type='pci'>",
                    format!("Invalid PCI address domain={domain:#06x}: only domain 0 exists"),
                ));
            }
            if bus > 0xff {
                return Err(fail(
                    file,
                    el.line,
                    "<address type='pci'>",
                    format!("Invalid PCI address bus={bus:#x}, must be <= 0xFF"),
                ));
            }
            if slot > 0x1f {
                return Err(fail(
                    file,
                    el.line,
                    "<address type='pci'>",
                    format!("Invalid PCI address slot={slot:#04x}, must be <= 0x1F"),
                ));
            }
            if function > 7 {
                return Err(fail(
                    file,
                    el.line,
                    "<address type='pci'>",
                    format!("Invalid PCI address function={function:#x}, must be <= 7"),
                ));
            }
            let multifunction = el.attr("multifunction").map(|m| m == "on");
            // domain, bus and slot all zero means "assign one" (libvirt's rule).
            if bus == 0 && slot == 0 {
                Addr::None
            } else {
                Addr::Pci(Pci {
                    bus,
                    slot: slot as u8,
                    function: function as u8,
                    multifunction,
                })
            }
        }
        "drive" => Addr::Drive {
            controller: n("controller")?,
            bus: n("bus")?,
            target: n("target")?,
            unit: n("unit")?,
        },
        "virtio-serial" => Addr::VirtioSerial {
            controller: n("controller")?,
            bus: n("bus")?,
            port: n("port")?,
        },
        "ccid" => Addr::Ccid {
            controller: n("controller")?,
            slot: n("slot")?,
        },
        "dimm" => Addr::Dimm { slot: n("slot")? },
        "usb" => {
            let port = el.attr("port").unwrap_or_default();
            let parts: Option<Vec<u32>> = if port.is_empty() {
                Some(Vec::new())
            } else {
                port.split('.').map(|p| p.parse().ok()).collect()
            }
            .filter(|p: &Vec<u32>| p.len() <= crate::limits::MAX_USB_PORT_DEPTH);
            Addr::Usb {
                bus: n("bus")?,
                port: parts.ok_or_else(|| {
                    fail(
                        file,
                        el.line,
                        "<address type='usb'>",
                        format!(
                            "cannot parse USB port '{port}': expected at most {} numbers joined \
                             by '.'",
                            crate::limits::MAX_USB_PORT_DEPTH
                        ),
                    )
                })?,
            }
        }
        "" => {
            return Err(fail(
                file,
                el.line,
                "<address>",
                "no type specified for device address (libvirt refuses it)".into(),
            ))
        }
        other if OTHER_ADDRESS_TYPES.contains(&other) => Addr::Other(other.to_string()),
        other => {
            return Err(fail(
                file,
                el.line,
                "<address>",
                format!(
                    "unknown address type '{other}'; expected one of pci, drive, \
                     virtio-serial, ccid, usb, dimm, {}",
                    OTHER_ADDRESS_TYPES.join(", ")
                ),
            ))
        }
    })
}

/// The address types libvirt knows besides those devaddr assigns (kept as they are).
const OTHER_ADDRESS_TYPES: [&str; 7] = [
    "spapr-vio",
    "virtio-s390",
    "ccw",
    "virtio-mmio",
    "isa",
    "unassigned",
    "none",
];

/// The index of a disk target name (`vda` → 0, `sdh` → 7, `hdaa` → 26), as libvirt counts.
pub fn disk_name_index(name: &str) -> Option<u32> {
    let rest = ["fd", "hd", "vd", "sd", "xvd", "ubd"]
        .iter()
        .find_map(|p| name.strip_prefix(p))?;
    let letters: String = rest
        .chars()
        .take_while(|c| c.is_ascii_lowercase())
        .collect();
    let tail = &rest[letters.len()..];
    if letters.is_empty() || !tail.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut idx: i64 = -1;
    for c in letters.chars() {
        idx = (idx + 1) * 26 + (c as i64 - 'a' as i64);
        if idx > i32::MAX as i64 / 26 {
            return None;
        }
    }
    Some(idx as u32)
}

/// Disk bus from the target name when `bus` is absent (libvirt's inference).
fn disk_bus_from_name(name: &str) -> &'static str {
    if name.starts_with("hd") {
        "ide"
    } else if name.starts_with("sd") {
        "scsi"
    } else if name.starts_with("vd") {
        "virtio"
    } else if name.starts_with("xvd") {
        "xen"
    } else if name.starts_with("ubd") {
        "uml"
    } else if name.starts_with("nvme") {
        "nvme"
    } else if name == "fda" || name == "fdb" {
        "fdc"
    } else {
        "ide"
    }
}

/// Elements under `<devices>` that take part in addressing (or in defaults).
const DEVICE_TAGS: &[&str] = &[
    "disk",
    "controller",
    "filesystem",
    "interface",
    "hostdev",
    "video",
    "sound",
    "input",
    "watchdog",
    "rng",
    "memballoon",
    "serial",
    "console",
    "channel",
    "parallel",
    "iommu",
    "vsock",
    "memory",
    "crypto",
    "panic",
    "shmem",
    "redirdev",
    "smartcard",
    "tpm",
    "hub",
    "graphics",
];

/// Whether libvirt reads `name` under `<devices>` as a device devaddr takes part in
/// (it ignores elements it does not know, and so does devaddr).
pub fn is_device_tag(name: &str) -> bool {
    DEVICE_TAGS.contains(&name)
}

/// A host device names what it passes through in `<source>`; for an `<interface
/// type='hostdev'>` the type of the host device is that of `<source><address>`. libvirt
/// refuses either without it, and so does devaddr.
fn hostdev_source(el: &Element, d: &Dev, file: &str) -> Result<(), Error> {
    let source = el.child("source");
    let message = if el.name == "interface" {
        let typed = source
            .and_then(|s| s.child("address"))
            .is_some_and(|a| a.attr("type").is_some());
        (!typed).then_some("missing source address type (<source><address type='pci'…/>)")
    } else {
        source
            .is_none()
            .then_some("Missing <source> element in hostdev device")
    };
    match message {
        Some(m) => Err(fail(file, el.line, &d.describe(), m.to_string())),
        None => Ok(()),
    }
}

/// The identity of what a host device passes through: the subsystem type (for an
/// interface, its source address type) and every attribute under `<source>`, numbers
/// normalised (`0x06` and `6` are the same bus).
fn source_identity(el: &Element, ty: &str) -> Option<String> {
    fn walk(e: &Element, out: &mut String) {
        let mut attrs: Vec<(String, String)> = e
            .attrs
            .iter()
            .filter(|a| a.name != "type") // the key's prefix says it
            .map(|a| {
                let v = a.value();
                let v = number(&v).map_or(v, |n| n.to_string());
                (a.name.clone(), v)
            })
            .collect();
        attrs.sort();
        out.push_str(&format!("<{} {attrs:?}>", e.name));
        for c in e.elements() {
            walk(c, out);
        }
    }
    let source = el.child("source")?;
    let mut key = ty.to_string();
    walk(source, &mut key);
    Some(key)
}

/// Read one element of `<devices>`.
pub fn read_device(el: &Element, pos: usize, file: &str) -> Result<Option<Dev>, Error> {
    if !is_device_tag(&el.name) {
        return Ok(None);
    }
    let mut d = Dev::new(&el.name);
    d.pos = Some(pos);
    d.line = el.line;
    let child_attr = |c: &str, a: &str| el.child(c).and_then(|x| x.attr(a));
    match el.name.as_str() {
        "controller" => {
            // libvirt reads a controller without `type` as an IDE controller.
            let ty = el.attr("type").unwrap_or_else(|| "ide".into());
            if !CONTROLLER_TYPES.contains(&ty.as_str()) {
                return Err(fail(
                    file,
                    el.line,
                    "<controller>",
                    format!(
                        "Invalid value for attribute 'type' in element 'controller': '{ty}'; \
                         expected one of {}",
                        CONTROLLER_TYPES.join(", ")
                    ),
                ));
            }
            d.ty = Some(ty);
            d.model = el.attr("model");
            d.index = num_attr(el, "index", file)?;
            d.ports = num_attr(el, "ports", file)?;
            if d.is("controller", "pci") {
                let max = crate::limits::MAX_PCI_CONTROLLER_INDEX;
                if let Some(i) = d.index.filter(|&i| i > max) {
                    return Err(fail(
                        file,
                        el.line,
                        &d.describe(),
                        format!(
                            "PCI controller index {i} is out of range; expected 0-{max} (the \
                             index is the guest's bus number)"
                        ),
                    ));
                }
            }
            d.master = el.child("master").is_some();
            d.hotplug_off = child_attr("target", "hotplug").as_deref() == Some("off");
            if d.ty.as_deref() == Some("pci") {
                target_ranges(el, file)?;
            }
        }
        "disk" => {
            let target = el.child("target");
            let dev = target.and_then(|t| t.attr("dev")).unwrap_or_default();
            d.ty = el.attr("device");
            d.bus = Some(
                target
                    .and_then(|t| t.attr("bus"))
                    .unwrap_or_else(|| disk_bus_from_name(&dev).to_string()),
            );
            d.model = el.attr("model");
            d.index = disk_name_index(&dev);
            d.target = Some(dev);
        }
        "interface" => {
            d.ty = el.attr("type");
            d.model = child_attr("model", "type");
            if d.ty.as_deref() == Some("hostdev") {
                hostdev_source(el, &d, file)?;
                // What it passes through decides its bus: `pci` or `usb`.
                d.bus = el
                    .child("source")
                    .and_then(|s| s.child("address"))
                    .and_then(|a| a.attr("type"));
                d.source = d.bus.as_deref().and_then(|b| source_identity(el, b));
            }
        }
        "hostdev" => {
            d.ty = el.attr("type");
            d.model = el.attr("model");
            hostdev_source(el, &d, file)?;
            d.source = d.ty.as_deref().and_then(|t| source_identity(el, t));
        }
        "video" => {
            d.model = child_attr("model", "type");
            d.primary = child_attr("model", "primary").as_deref() == Some("yes");
        }
        "input" => {
            d.ty = el.attr("type");
            d.bus = el.attr("bus");
            d.model = el.attr("model");
        }
        "serial" | "console" | "channel" | "parallel" => {
            d.ty = child_attr("target", "type");
            d.target = child_attr("target", "name");
        }
        "filesystem" => {
            d.ty = Some(el.attr("type").unwrap_or_else(|| "mount".into()));
            d.model = el.attr("model");
        }
        "shmem" => {
            d.model = child_attr("model", "type");
        }
        "graphics" => {
            d.passive = true;
            d.ty = el.attr("type");
        }
        _ => {
            d.ty = el.attr("type");
            d.model = el.attr("model");
        }
    }
    if let Some(a) = el.child("address") {
        d.addr = parse_address(a, file)?;
        d.empty_pci_address = d.addr == Addr::None && a.attr("type").as_deref() == Some("pci");
        d.addr_type = a.attr("type");
        // libvirt writes every address in full; one written partially is rewritten.
        let need: &[&str] = match d.addr {
            Addr::Pci(_) => &["domain", "bus", "slot", "function"],
            Addr::Drive { .. } => &["controller", "bus", "target", "unit"],
            Addr::VirtioSerial { .. } => &["controller", "bus", "port"],
            Addr::Ccid { .. } => &["controller", "slot"],
            Addr::Dimm { .. } => &["slot"],
            _ => &[],
        };
        // An all-zero PCI address is written back bare (`<address type='pci'/>`) or
        // replaced by the one libvirt assigns.
        let zeros = d.empty_pci_address && a.attrs.len() > 1;
        if zeros || need.iter().any(|n| a.attr(n).is_none()) {
            d.addr_new = true;
        }
        if d.tag == "disk" {
            disk_address_type(&d, &a.attr("type").unwrap_or_default(), file)?;
        }
    }
    Ok(Some(d))
}

/// The address types a disk on each bus may be written with (libvirt's disk validation;
/// the virtio row is its QEMU driver's, the USB row its QEMU validation). A bus not
/// listed takes any address.
const DISK_ADDRESS_TYPES: &[(&str, &[&str])] = &[
    ("ide", &["drive"]),
    ("fdc", &["drive"]),
    ("scsi", &["drive"]),
    ("sata", &["drive"]),
    ("usb", &["usb"]),
    ("virtio", &["pci", "ccw", "virtio-s390", "virtio-mmio"]),
];

/// A disk written with an address its bus cannot take: libvirt refuses the domain ("Invalid
/// address type 'pci' for the disk 'hdc' with the bus type 'ide'"), so does devaddr, rather
/// than give an IDE disk a PCI slot.
fn disk_address_type(d: &Dev, ty: &str, file: &str) -> Result<(), Error> {
    let bus = d.bus.as_deref().unwrap_or_default();
    let Some((_, allowed)) = DISK_ADDRESS_TYPES.iter().find(|(b, _)| *b == bus) else {
        return Ok(());
    };
    if ty == "none" || allowed.contains(&ty) {
        return Ok(());
    }
    let dst = d.target.as_deref().unwrap_or_default();
    let message = match bus {
        "virtio" => format!("virtio disk cannot have an address of type '{ty}'"),
        "usb" => format!(
            "unexpected address type '{ty}' for usb disk '{dst}' (libvirt takes only a usb \
             address)"
        ),
        _ => format!("Invalid address type '{ty}' for the disk '{dst}' with the bus type '{bus}'"),
    };
    Err(fail(file, d.line, &d.describe(), message))
}

/// The ranges libvirt allows for a PCI controller's `<target>` numbers (it refuses the
/// domain otherwise: "PCI controller chassis '256' out of range - must be 0-255").
const TARGET_RANGES: [(&str, u64, u64); 4] = [
    ("chassisNr", 1, 255),
    ("chassis", 0, 255),
    ("port", 0, 255),
    ("busNr", 1, 254),
];

fn target_ranges(el: &Element, file: &str) -> Result<(), Error> {
    let Some(target) = el.child("target") else {
        return Ok(());
    };
    for (name, lo, hi) in TARGET_RANGES {
        let Some(v) = num_attr(target, name, file)? else {
            continue;
        };
        if !(lo..=hi).contains(&u64::from(v)) {
            return Err(fail(
                file,
                target.line,
                "<controller type='pci'><target>",
                format!("PCI controller {name} '{v}' out of range - must be {lo}-{hi}"),
            ));
        }
    }
    Ok(())
}

/// The controller types libvirt knows.
const CONTROLLER_TYPES: [&str; 10] = [
    "ide",
    "fdc",
    "scsi",
    "sata",
    "virtio-serial",
    "ccid",
    "usb",
    "pci",
    "xenbus",
    "isa",
];
