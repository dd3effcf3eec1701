//! Non-PCI addresses libvirt assigns: virtio-serial ports, USB ports (with hubs), CCID
//! slots. Drive addresses come from target names at parse time (postparse.rs).

use super::domain::{Addr, Dev};
use super::policy::Policy;
use crate::Error;
use std::collections::BTreeMap;

/// virtio-serial: consoles first (port 0 is theirs), then channels; the first controller
/// (by index) with a free port wins; a full set adds a controller. A port given twice
/// is refused, as libvirt does when it reserves the given ports.
pub fn virtio_serial(devs: &mut Vec<Dev>, file: &str) -> Result<(), Error> {
    let mut used: Vec<(u32, u32)> = Vec::new();
    // Channels and consoles first, then any other element written with a virtio-serial
    // address (a hub, whose address libvirt replaces by a USB port only afterwards):
    // libvirt holds its port too, on a controller that must exist.
    let serial_first = |d: &&Dev| d.tag == "channel" || d.tag == "console";
    let order = devs
        .iter()
        .filter(serial_first)
        .chain(devs.iter().filter(|d| !serial_first(d)));
    for d in order {
        if let Addr::VirtioSerial {
            controller, port, ..
        } = d.addr
        {
            if !serial_first(&d)
                && !devs
                    .iter()
                    .any(|c| c.is("controller", "virtio-serial") && c.index == Some(controller))
            {
                return Err(super::fail(
                    file,
                    d.line,
                    &d.describe(),
                    format!("virtio serial controller {controller} is missing"),
                ));
            }
            // Port 0 means "any port on this controller".
            if port == 0 {
                continue;
            }
            if used.contains(&(controller, port)) {
                return Err(super::fail(
                    file,
                    d.line,
                    &format!("<{}>", d.tag),
                    format!(
                        "virtio serial port {port} on controller {controller} is already occupied"
                    ),
                ));
            }
            used.push((controller, port));
        }
    }
    for tag in ["console", "channel"] {
        for i in 0..devs.len() {
            let d = &devs[i];
            if d.tag != tag || d.ty.as_deref() != Some("virtio") {
                continue;
            }
            let want = match d.addr {
                Addr::None => None,
                Addr::VirtioSerial {
                    controller,
                    port: 0,
                    ..
                } => Some(controller),
                _ => continue,
            };
            let first_port = if tag == "console" { 0 } else { 1 };
            let mut ctls: Vec<(u32, u32)> = devs
                .iter()
                .filter(|c| c.is("controller", "virtio-serial"))
                .map(|c| (c.index.unwrap_or(0), c.ports.unwrap_or(31)))
                .filter(|(i, _)| want.is_none_or(|w| w == *i))
                .collect();
            ctls.sort();
            let mut found = None;
            for (ci, ports) in &ctls {
                if let Some(p) = (first_port..*ports).find(|p| !used.contains(&(*ci, *p))) {
                    found = Some((*ci, p));
                    break;
                }
            }
            let (ci, p) = match found {
                Some(x) => x,
                None => {
                    let next = (0..)
                        .find(|n| {
                            !devs
                                .iter()
                                .any(|c| c.is("controller", "virtio-serial") && c.index == Some(*n))
                        })
                        .unwrap_or(0);
                    let mut c = Dev::new("controller");
                    c.ty = Some("virtio-serial".into());
                    c.index = Some(next);
                    c.index_new = true;
                    devs.push(c);
                    (next, first_port)
                }
            };
            // A virtio console's port is neither written nor held in the saved definition.
            if tag == "channel" {
                used.push((ci, p));
                devs[i].addr = Addr::VirtioSerial {
                    controller: ci,
                    bus: 0,
                    port: p,
                };
                devs[i].addr_new = true;
            }
        }
    }
    for d in devs.iter_mut().filter(|d| d.tag == "hub") {
        if matches!(d.addr, Addr::VirtioSerial { .. }) {
            d.addr = Addr::None;
            d.addr_new = true;
        }
    }
    Ok(())
}

/// Whether a device sits on USB.
pub fn is_usb(d: &Dev) -> bool {
    // Written with an empty PCI address (`<address type='pci'/>`), libvirt keeps it as
    // written and gives it no port.
    !d.empty_pci_address && usb_kind(d)
}

/// Whether a device is of a kind that sits on USB (whatever its address).
pub fn usb_kind(d: &Dev) -> bool {
    match d.tag.as_str() {
        "input" => d.bus.as_deref() == Some("usb"),
        "hub" | "redirdev" => d.ty.as_deref() == Some("usb") || d.tag == "redirdev",
        "hostdev" => d.ty.as_deref() == Some("usb"),
        "disk" => d.bus.as_deref() == Some("usb"),
        "controller" => d.ty.as_deref() == Some("ccid"),
        "sound" => d.model.as_deref() == Some("usb"),
        "serial" => d.ty.as_deref() == Some("usb-serial"),
        // A usb-net NIC is not one of the devices libvirt walks for USB ports: its
        // address is neither checked nor reserved, and it gets none.
        "interface" => d.ty.as_deref() == Some("hostdev") && d.bus.as_deref() == Some("usb"),
        _ => false,
    }
}

/// Order in which libvirt walks USB devices (`virDomainUSBDeviceDefForeach`; live 9.0:
/// hub, host device, disk, CCID, input, usb-serial, usb sound, redirdev); a USB hostdev
/// interface walks with the host devices.
const USB_ORDER: &[&str] = &[
    "hub",
    "hostdev",
    "disk",
    "controller",
    "input",
    "serial",
    "sound",
    "redirdev",
];

struct Hub {
    /// Which port path this hub sits at (empty: a controller's root hub).
    path: Vec<u32>,
    bus: u32,
    ports: u32,
    used: Vec<bool>,
}

/// USB ports for a newly defined domain: hubs added when the ports run out, the given
/// addresses reserved (with libvirt's checks: the port must exist, no port used twice),
/// hubs placed first, then every other USB device, each at the lowest free port (depth
/// first).
pub fn usb(policy: &Policy, devs: &mut Vec<Dev>, file: &str) -> Result<(), Error> {
    let mut hubs: Vec<Hub> = Vec::new();
    let mut ctls: Vec<(u32, u32)> = Vec::new();
    for d in devs.iter().filter(|d| d.is("controller", "usb")) {
        let model = d.model.as_deref().unwrap_or("");
        let Some(rule) = policy.usb.get(model) else {
            continue;
        };
        let ports = if rule.ports_attr {
            d.ports.unwrap_or(rule.ports)
        } else {
            rule.ports
        };
        if ports == 0 {
            continue; // an ICH9 companion: its master holds the ports
        }
        let index = d.index.unwrap_or(0);
        if ctls.iter().any(|(i, _)| *i == index) {
            return Err(super::fail(
                file,
                d.line,
                &d.describe(),
                format!("Duplicate USB controllers with index {index}"),
            ));
        }
        ctls.push((index, ports));
    }
    if ctls.is_empty() {
        return Ok(());
    }
    ctls.sort();
    for (i, p) in &ctls {
        hubs.push(Hub {
            path: Vec::new(),
            bus: *i,
            ports: *p,
            used: vec![false; *p as usize],
        });
    }
    // Hubs to add.
    let count = devs.iter().filter(|d| is_usb(d)).count() as u32;
    let existing_hubs = devs.iter().filter(|d| d.tag == "hub").count() as u32;
    let available: u32 = ctls.iter().map(|(_, p)| p).sum::<u32>() + 8 * existing_hubs;
    if count > available {
        // libvirt: one more port than missing, seven per hub (a hub takes one port).
        let add = (count - available + 1).div_ceil(7);
        for _ in 0..add {
            let mut h = Dev::new("hub");
            h.ty = Some("usb".into());
            devs.push(h);
        }
    }
    let mut order: Vec<usize> = (0..devs.len()).filter(|&i| is_usb(&devs[i])).collect();
    // Within a kind, document order; disks as libvirt keeps them (by target name).
    order.sort_by_key(|&i| {
        let d = &devs[i];
        // A USB `<interface type='hostdev'>` is one of libvirt's host devices, listed
        // before the `<hostdev>` elements (it joins the list when the NIC is read).
        let tag = if d.tag == "interface" && d.ty.as_deref() == Some("hostdev") {
            "hostdev"
        } else {
            d.tag.as_str()
        };
        (
            USB_ORDER
                .iter()
                .position(|t| *t == tag)
                .unwrap_or(USB_ORDER.len()),
            d.tag != "interface",
            if d.tag == "disk" { d.index } else { None },
            i,
        )
    });
    // Reserve the given addresses in walk order; a hub with an address adds its ports.
    for &i in &order {
        let d = &devs[i];
        let Addr::Usb { bus, port } = &d.addr else {
            continue;
        };
        if port.is_empty() {
            continue;
        }
        reserve(&mut hubs, *bus, port)
            .map_err(|msg| super::fail(file, d.line, &d.describe(), msg))?;
        if d.tag == "hub" {
            hubs.push(Hub {
                path: port.clone(),
                bus: *bus,
                ports: 8,
                used: vec![false; 8],
            });
        }
    }
    for i in order {
        // A USB address without a port (`<address type='usb' bus='0'/>`) gets one on its bus.
        let on_bus = match &devs[i].addr {
            Addr::Usb { bus, port } if port.is_empty() => Some(*bus),
            Addr::None => None,
            _ => continue,
        };
        if let Some(bus) = on_bus.filter(|b| !hubs.iter().any(|h| h.bus == *b)) {
            let d = &devs[i];
            return Err(super::fail(
                file,
                d.line,
                &d.describe(),
                format!("USB bus {bus} requested but no controller with that index is present"),
            ));
        }
        let Some((bus, path)) = next_port(&hubs, on_bus) else {
            let d = &devs[i];
            return Err(super::fail(
                file,
                d.line,
                &d.describe(),
                "No free USB ports".to_string(),
            ));
        };
        mark(&mut hubs, bus, &path);
        if devs[i].tag == "hub" {
            hubs.push(Hub {
                path: path.clone(),
                bus,
                ports: 8,
                used: vec![false; 8],
            });
        }
        devs[i].addr = Addr::Usb { bus, port: path };
        devs[i].addr_new = true;
    }
    Ok(())
}

/// Reserve a given USB address: the port must exist on its hub and be free.
fn reserve(hubs: &mut [Hub], bus: u32, port: &[u32]) -> Result<(), String> {
    let Some((last, parent)) = port.split_last() else {
        return Ok(());
    };
    let text = port
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".");
    if !hubs.iter().any(|h| h.bus == bus) {
        return Err(format!(
            "USB bus {bus} requested but no controller with that index is present"
        ));
    }
    // Every hub on the way must exist: "there is no hub at port 1 in USB address bus: 0
    // port: 1.2.3".
    if let Some(k) =
        (1..=parent.len()).find(|&k| !hubs.iter().any(|h| h.bus == bus && h.path == port[..k]))
    {
        let missing = port[..k]
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".");
        return Err(format!(
            "there is no hub at port {missing} in USB address bus: {bus} port: {text}"
        ));
    }
    let Some(h) = hubs.iter_mut().find(|h| h.bus == bus && h.path == parent) else {
        return Ok(());
    };
    let Some(used) = (*last as usize)
        .checked_sub(1)
        .and_then(|p| h.used.get_mut(p))
    else {
        return Err(format!(
            "requested USB port {text} not present on USB bus {bus}"
        ));
    };
    if *used {
        return Err(format!("Duplicate USB address bus {bus} port {text}"));
    }
    *used = true;
    Ok(())
}

fn mark(hubs: &mut [Hub], bus: u32, port: &[u32]) {
    let Some((last, parent)) = port.split_last() else {
        return;
    };
    if let Some(h) = hubs.iter_mut().find(|h| h.bus == bus && h.path == parent) {
        if let Some(u) = h.used.get_mut(*last as usize - 1) {
            *u = true;
        }
    }
}

/// The lowest free port: controllers in index order, root hub first, then hubs below
/// it depth first.
fn next_port(hubs: &[Hub], only: Option<u32>) -> Option<(u32, Vec<u32>)> {
    let mut buses: Vec<u32> = hubs
        .iter()
        .filter(|h| h.path.is_empty() && only.is_none_or(|b| b == h.bus))
        .map(|h| h.bus)
        .collect();
    buses.sort();
    buses.dedup();
    // Hubs by (bus, path), and the ports of each hub that hold another hub: the walk
    // visits hubs only (a guest with thousands of USB devices has hundreds of hubs).
    let by_place: BTreeMap<(u32, &[u32]), &Hub> = hubs
        .iter()
        .map(|h| ((h.bus, h.path.as_slice()), h))
        .collect();
    let mut below: BTreeMap<(u32, &[u32]), Vec<u32>> = BTreeMap::new();
    for h in hubs {
        if let Some((&port, parent)) = h.path.split_last() {
            below.entry((h.bus, parent)).or_default().push(port);
        }
    }
    for ports in below.values_mut() {
        ports.sort_unstable();
    }
    let walk = Walk { by_place, below };
    for bus in buses {
        if let Some(p) = walk.free_below(bus, &[]) {
            return Some((bus, p));
        }
    }
    None
}

/// The hub tree of [`next_port`], indexed for its depth-first walk.
struct Walk<'a> {
    by_place: BTreeMap<(u32, &'a [u32]), &'a Hub>,
    below: BTreeMap<(u32, &'a [u32]), Vec<u32>>,
}

impl Walk<'_> {
    /// The first free port at or below the hub at `path`: its own ports first, then the
    /// hubs on its ports in port order, down to port paths of
    /// [`crate::limits::MAX_USB_PORT_DEPTH`] numbers (libvirt's limit).
    fn free_below(&self, bus: u32, path: &[u32]) -> Option<Vec<u32>> {
        let h = self.by_place.get(&(bus, path))?;
        if let Some(p) = h.used.iter().position(|u| !u) {
            let mut v = path.to_vec();
            v.push(p as u32 + 1);
            return Some(v);
        }
        // libvirt looks no deeper than port paths of MAX_USB_PORT_DEPTH numbers.
        if path.len() + 1 >= crate::limits::MAX_USB_PORT_DEPTH {
            return None;
        }
        for &port in self.below.get(&(bus, path)).into_iter().flatten() {
            if port > h.ports {
                continue;
            }
            let mut v = path.to_vec();
            v.push(port);
            if let Some(found) = self.free_below(bus, &v) {
                return Some(found);
            }
        }
        None
    }
}

/// CCID: an unaddressed smartcard takes slot 0 of the controller after the highest one
/// other smartcards use.
pub fn ccid(devs: &mut [Dev]) {
    let mut next = 0;
    for d in devs.iter() {
        if let Addr::Ccid { controller, .. } = d.addr {
            next = next.max(controller + 1);
        }
    }
    for d in devs.iter_mut().filter(|d| d.tag == "smartcard") {
        if matches!(d.addr, Addr::None) {
            d.addr = Addr::Ccid {
                controller: next,
                slot: 0,
            };
            d.addr_new = true;
            next += 1;
        }
    }
}

/// DIMM slots for memory modules (`<memory model='dimm'|'nvdimm'>`) written without an
/// address: each takes the lowest slot no module holds, in document order, as libvirt
/// does when it defines the domain (its slot map starts from the slots written).
pub fn dimm_slots(devs: &mut [Dev]) {
    let mut used: std::collections::BTreeSet<u32> = devs
        .iter()
        .filter_map(|d| match d.addr {
            Addr::Dimm { slot } => Some(slot),
            _ => None,
        })
        .collect();
    for d in devs.iter_mut().filter(|d| {
        d.tag == "memory"
            && matches!(d.model.as_deref(), Some("dimm" | "nvdimm"))
            && d.addr == Addr::None
    }) {
        let slot = (0..).find(|s| !used.contains(s)).unwrap_or(0);
        used.insert(slot);
        d.addr = Addr::Dimm { slot };
        d.addr_new = true;
    }
}
