//! Write addresses, defaulted indexes/models and added devices back into the domain
//! document, in libvirt's notation (`bus='0x05'`), touching nothing else.

use super::domain::{Addr, Dev};
use super::policy::Policy;
use crate::xml::{Element, Node};

/// A PCI `<address>` in libvirt's notation (`bus='0x05'`).
pub fn pci_address(bus: u32, slot: u8, function: u8, multifunction: Option<bool>) -> Element {
    let e = Element::new("address")
        .with_attr("type", "pci")
        .with_attr("domain", "0x0000")
        .with_attr("bus", &format!("{bus:#04x}"))
        .with_attr("slot", &format!("{slot:#04x}"))
        .with_attr("function", &format!("{function:#x}"));
    match multifunction {
        Some(m) => e.with_attr("multifunction", if m { "on" } else { "off" }),
        None => e,
    }
}

/// A drive `<address>`.
pub fn drive_address(controller: u32, bus: u32, target: u32, unit: u32) -> Element {
    Element::new("address")
        .with_attr("type", "drive")
        .with_attr("controller", &controller.to_string())
        .with_attr("bus", &bus.to_string())
        .with_attr("target", &target.to_string())
        .with_attr("unit", &unit.to_string())
}

/// libvirt's text of an address element's attributes.
fn addr_element(a: &Addr) -> Option<Element> {
    let e = Element::new("address");
    Some(match a {
        Addr::Pci(p) => pci_address(p.bus, p.slot, p.function, p.multifunction),
        Addr::Drive {
            controller,
            bus,
            target,
            unit,
        } => drive_address(*controller, *bus, *target, *unit),
        Addr::VirtioSerial {
            controller,
            bus,
            port,
        } => e
            .with_attr("type", "virtio-serial")
            .with_attr("controller", &controller.to_string())
            .with_attr("bus", &bus.to_string())
            .with_attr("port", &port.to_string()),
        Addr::Usb { bus, port } => e
            .with_attr("type", "usb")
            .with_attr("bus", &bus.to_string())
            .with_attr(
                "port",
                &port
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("."),
            ),
        Addr::Ccid { controller, slot } => e
            .with_attr("type", "ccid")
            .with_attr("controller", &controller.to_string())
            .with_attr("slot", &slot.to_string()),
        // Written back only when devaddr changed it (an all-zero PCI address libvirt
        // keeps as a bare `<address type='pci'/>`); otherwise kept as written.
        Addr::Dimm { slot } => e
            .with_attr("type", "dimm")
            .with_attr("slot", &slot.to_string()),
        Addr::Other(t) => e.with_attr("type", t),
        Addr::None => return None,
    })
}

/// An address as one line of text (for messages).
pub fn addr_text(a: &Addr) -> String {
    match addr_element(a) {
        Some(e) => {
            let mut s = String::from("<address");
            for a in &e.attrs {
                s.push_str(&format!(" {}='{}'", a.name, a.value()));
            }
            s + "/>"
        }
        None => "no address".into(),
    }
}

/// The attributes libvirt fills on a PCI controller: `<model name>` and `<target>`.
fn pci_controller_details(
    policy: &Policy,
    d: &Dev,
    devs: &[Dev],
) -> (Option<String>, Vec<(String, String)>) {
    let Some(model) = d.model.as_deref() else {
        return (None, Vec::new());
    };
    let Some(rule) = policy.controllers.get(model) else {
        return (None, Vec::new());
    };
    let index = d.index.unwrap_or(0);
    let mut target = Vec::new();
    match (rule.target.as_deref(), d.pci()) {
        (Some("chassisNr"), _) => target.push(("chassisNr".into(), index.to_string())),
        (Some("chassis-port"), Some(a)) => {
            target.push(("chassis".into(), index.to_string()));
            target.push((
                "port".into(),
                format!("{:#x}", a.slot as u32 * 8 + a.function as u32),
            ));
        }
        (Some("chassis-slot"), Some(a)) => {
            target.push(("chassis".into(), index.to_string()));
            target.push(("port".into(), format!("{:#x}", a.slot)));
        }
        (Some("busNr"), _) => {
            // Expander buses count down from 254 in index order, two numbers each.
            let before = devs
                .iter()
                .filter(|o| {
                    o.is("controller", "pci")
                        && o.index < d.index
                        && o.model
                            .as_deref()
                            .and_then(|m| policy.controllers.get(m))
                            .and_then(|r| r.target.as_deref())
                            == Some("busNr")
                })
                .count() as u32;
            target.push(("busNr".into(), (254 - 2 * before).to_string()));
        }
        _ => {}
    }
    (rule.name.clone(), target)
}

fn update(el: &mut Element, d: &Dev, devs: &[Dev], indent: &str) {
    let policy = Policy::get();
    if d.tag == "controller" {
        if d.index_new {
            el.set_attr("index", &d.index.unwrap_or(0).to_string());
        }
        if d.model_new {
            if let Some(m) = &d.model {
                el.set_attr("model", m);
            }
        }
        if d.ty.as_deref() == Some("pci") {
            let (name, target) = pci_controller_details(policy, d, devs);
            if let Some(name) = name {
                if el.child("model").is_none() {
                    let at = el.elements().count().min(
                        el.elements()
                            .take_while(|e| e.name != "target" && e.name != "address")
                            .count(),
                    );
                    el.insert_element(at, Element::new("model").with_attr("name", &name), indent);
                }
            }
            if !target.is_empty() {
                let fresh = el.child("target").is_none();
                let mut t = el
                    .child("target")
                    .cloned()
                    .unwrap_or_else(|| Element::new("target"));
                for (k, v) in &target {
                    if t.attr(k).is_none() {
                        t.set_attr(k, v);
                    }
                }
                if fresh {
                    let at = el.elements().take_while(|e| e.name != "address").count();
                    el.insert_element(at, t, indent);
                } else if let Some(slot) = el.child_mut("target") {
                    *slot = t;
                }
            }
        }
    } else if d.model_new {
        if let Some(m) = &d.model {
            match d.tag.as_str() {
                "interface" | "video" => {
                    if let Some(me) = el.child_mut("model") {
                        me.set_attr("type", m);
                    } else {
                        let at = if d.tag == "video" {
                            0
                        } else {
                            el.elements().take_while(|e| e.name != "address").count()
                        };
                        el.insert_element(at, Element::new("model").with_attr("type", m), indent);
                    }
                }
                _ => el.set_attr("model", m),
            }
        }
    }
    if d.addr_new {
        match addr_element(&d.addr) {
            Some(a) => el.replace_or_append(a, indent),
            // An all-zero PCI address nothing was assigned to: libvirt's bare form.
            None if d.empty_pci_address => {
                el.replace_or_append(Element::new("address").with_attr("type", "pci"), indent)
            }
            // An address libvirt drops (a console standing for an ISA serial port).
            None => {
                el.remove_first("address");
            }
        }
    }
}

/// A new element for a device devaddr added.
fn fresh(d: &Dev) -> Element {
    let mut e = Element::new(&d.tag);
    if let Some(t) = &d.ty {
        e.set_attr("type", t);
    }
    if d.tag == "controller" {
        e.set_attr("index", &d.index.unwrap_or(0).to_string());
    }
    if let (Some(m), true) = (&d.model, d.tag != "video") {
        e.set_attr("model", m);
    }
    e
}

/// Where libvirt writes a device kind inside `<devices>` (its formatting order).
const FORMAT_ORDER: &[&str] = &[
    "emulator",
    "disk",
    "controller",
    "lease",
    "filesystem",
    "interface",
    "smartcard",
    "serial",
    "parallel",
    "console",
    "channel",
    "input",
    "tpm",
    "graphics",
    "sound",
    "audio",
    "video",
    "hostdev",
    "redirdev",
    "redirfilter",
    "hub",
    "watchdog",
    "memballoon",
    "rng",
    "panic",
    "shmem",
    "memory",
    "iommu",
    "vsock",
    "crypto",
];

pub(super) fn rank(tag: &str) -> usize {
    FORMAT_ORDER
        .iter()
        .position(|t| *t == tag)
        .unwrap_or(FORMAT_ORDER.len())
}

/// Write every change back into `<domain>`.
/// An iSCSI host device's source names its LUN: libvirt writes a `name` without one
/// (`iqn.1992-01.com.example`) with LUN 0 (`iqn.1992-01.com.example/0`).
fn iscsi_lun(el: &mut Element) {
    if el.name != "hostdev" || el.attr("type").as_deref() != Some("scsi") {
        return;
    }
    if let Some(src) = el.child_mut("source") {
        if src.attr("protocol").as_deref() == Some("iscsi") {
            if let Some(name) = src.attr("name").filter(|n| !n.contains('/')) {
                src.set_attr("name", &format!("{name}/0"));
            }
        }
    }
}

pub fn write_back(root: &mut Element, devs: &[Dev]) {
    let dom_indent = "";
    if root.child("devices").is_none() {
        root.insert_element(usize::MAX, Element::new("devices"), dom_indent);
    }
    let dev_indent = "  ".to_string();
    let Some(devices) = root.child_mut("devices") else {
        return;
    };
    let item_indent = format!("{dev_indent}  ");
    // Update existing elements in place.
    let mut pos = 0;
    for node in devices.children.iter_mut() {
        if let Node::Element(el) = node {
            if let Some(d) = devs.iter().find(|d| d.pos == Some(pos)) {
                update(el, d, devs, &item_indent);
            }
            iscsi_lun(el);
            pos += 1;
        }
    }
    // Insert added devices after the last element of the same or an earlier kind.
    for d in devs.iter().filter(|d| d.pos.is_none()) {
        let mut el = fresh(d);
        update(&mut el, d, devs, &item_indent);
        if d.tag == "video" {
            if let Some(m) = &d.model {
                el.insert_element(0, Element::new("model").with_attr("type", m), &item_indent);
            }
        }
        let r = rank(&d.tag);
        let at = devices
            .elements()
            .enumerate()
            .filter(|(_, e)| {
                rank(&e.name) < r
                    || (rank(&e.name) == r && (d.tag != "controller" || controller_before(e, d)))
            })
            .map(|(i, _)| i + 1)
            .max()
            .unwrap_or(0);
        devices.insert_element(at, el, &dev_indent);
    }
}

/// Whether an existing controller element sorts before the added controller `d`
/// (same type: lower index; other types: always, as libvirt appends new types).
fn controller_before(e: &Element, d: &Dev) -> bool {
    if e.attr("type") == d.ty {
        e.attr("index")
            .and_then(|i| super::domain::number(&i))
            .is_none_or(|i| i <= d.index.unwrap_or(0) as u64)
    } else {
        true
    }
}
