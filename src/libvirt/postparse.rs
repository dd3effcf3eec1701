//! What libvirt does to a domain before it assigns addresses: controller indexes,
//! the machine's default devices, default models, drive addresses from target names,
//! and the implicit controllers disks, consoles and smartcards need.

use super::domain::{Addr, Dev};
use super::policy::Policy;
use super::{fail, Machine};
use crate::vocab::ControllerType;
use crate::Error;

pub fn run(policy: &Policy, m: &Machine, devs: &mut Vec<Dev>, file: &str) -> Result<(), Error> {
    super::validate::address_types(policy, devs, file)?;
    check_consoles(devs, file)?;
    written_addresses_libvirt_replaces(devs);
    // An aliased console's own address is replaced by serial[0]'s (set at the end).
    if let Some((console, _)) = super::aliased_console(devs) {
        if devs[console].addr != Addr::None {
            let own = std::mem::replace(&mut devs[console].addr, Addr::None);
            devs[console].written_addr = Some(own);
        }
    }
    controller_list(devs);
    duplicate_indexes(devs, file)?;
    // Drive addresses come with the parse, and so do the SCSI controllers host devices
    // need: before unindexed controllers get their indexes and before libvirt's machine
    // defaults (disks get theirs later).
    drive_addresses(devs, file)?;
    check_drive_controllers(devs, file)?;
    let overflow = hostdev_scsi_controllers(devs);
    assign_indexes(policy, devs);
    // libvirt validates PCI controllers after the post-parse step has given every
    // controller its index: a second `pcie-root` without an index gets index 1 and is
    // refused, a `pcie-root` without an index on a pci-root machine gets index 0 and is
    // refused as the wrong root.
    check_pci_controllers(policy, m, devs, file)?;
    check_usb_controllers(policy, devs, file)?;
    super::validate::usb_none_alone(m, devs, file)?;
    super::validate::duplicate_host_devices(devs, file)?;
    add_defaults(m, devs, file)?;
    if m.rule.is_some() {
        super::validate::usb_devices_without_usb(devs, file)?;
    }
    default_models(m, devs);
    super::ports::ccid(devs);
    implicit_controllers(m, devs, overflow);
    check_ide_controllers(m, devs, file)?;
    Ok(())
}

/// USB controllers libvirt refuses: more ports than the model has, and an ICH9 USB1
/// companion (UHCI1-3) without a USB2 master (EHCI1) of its index.
fn check_usb_controllers(policy: &Policy, devs: &[Dev], file: &str) -> Result<(), Error> {
    let rule = |d: &Dev| policy.usb.get(d.model.as_deref()?);
    for d in devs.iter().filter(|d| d.is("controller", "usb")) {
        let Some(r) = rule(d) else { continue };
        if let (Some(p), Some(max)) = (d.ports.filter(|_| r.ports_attr), r.max_ports) {
            if p > max {
                return Err(fail(
                    file,
                    d.line,
                    &d.describe(),
                    format!(
                        "'{}' controller only supports up to '{max}' ports; found ports='{p}'",
                        d.model.as_deref().unwrap_or("")
                    ),
                ));
            }
        }
        let companion = r.usb2.is_some() && r.ports == 0;
        let has_master = devs.iter().any(|o| {
            o.is("controller", "usb")
                && o.index == d.index
                && rule(o).is_some_and(|m| m.usb2.is_some() && m.ports > 0)
        });
        if companion && !has_master {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                "No master USB controller specified: a USB1 companion needs an ich9-ehci1 \
                 controller with the same index"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Only console[0] may stand for a serial port (`virDomainDefAddConsoleCompat`).
/// Addresses libvirt drops as it reads the domain, to assign its own: a hub's that is no
/// USB address, a virtio channel's that is no virtio-serial one. (A hub's virtio-serial
/// address is dropped later, once its port is held: `ports::virtio_serial`.)
fn written_addresses_libvirt_replaces(devs: &mut [Dev]) {
    for d in devs.iter_mut() {
        // A USB device (not a usb-net NIC, which 9.0 sends to the PCI pass) written
        // with an all-zero PCI address gets no port and no slot: libvirt writes the
        // address back as `<address type='pci'/>`.
        let no_pci_pass = d.tag != "interface" && d.tag != "hub";
        if d.empty_pci_address && no_pci_pass && super::ports::usb_kind(d) {
            d.addr = Addr::Other("pci".into());
            continue;
        }
        let keeps = match (d.tag.as_str(), d.ty.as_deref()) {
            ("hub", _) => "usb",
            ("channel", Some("virtio")) => "virtio-serial",
            _ => continue,
        };
        let held = d.tag == "hub" && matches!(d.addr, Addr::VirtioSerial { .. });
        if !held && d.addr_type.as_deref().is_some_and(|t| t != keeps) {
            d.addr = Addr::None;
            d.empty_pci_address = false;
            d.addr_new = true;
        }
    }
}

fn check_consoles(devs: &[Dev], file: &str) -> Result<(), Error> {
    let later = devs
        .iter()
        .filter(|d| d.tag == "console")
        .skip(1)
        .find(|d| d.ty.as_deref() == Some("serial"));
    match later {
        Some(d) => Err(fail(
            file,
            d.line,
            "<console>",
            "Only the first console can be a serial port".into(),
        )),
        None => Ok(()),
    }
}

fn check_pci_controllers(
    policy: &Policy,
    m: &Machine,
    devs: &[Dev],
    file: &str,
) -> Result<(), Error> {
    for d in devs.iter().filter(|d| d.is("controller", "pci")) {
        let model = d.model.as_deref().unwrap_or("");
        // A PCI controller plugs into a PCI bus. libvirt keeps another kind of address as
        // written and QEMU then cannot start the guest; devaddr refuses it (a deliberate
        // difference from `virsh define`).
        if !matches!(d.addr, Addr::None | Addr::Pci(_)) && d.index.unwrap_or(0) != 0 {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                "a PCI controller needs a PCI address (or none, to get one); found another \
                 type of <address> (libvirt keeps it as written, and QEMU cannot start the \
                 guest)"
                    .into(),
            ));
        }
        // Only the root bus gets a model by default (its machine's root model).
        if d.model.is_none() && d.index.unwrap_or(0) != 0 {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                "PCI controller model was not set correctly (a PCI controller other than \
                 index 0 needs model='…'; libvirt refuses it)"
                    .into(),
            ));
        }
        let rule = policy.controllers.get(model);
        if m.rule.is_none() {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                format!("Machine type '{}' does not support PCI", m.name),
            ));
        }
        let root = m.root().unwrap_or_default();
        if rule.is_some_and(|r| r.root.is_some()) && d.index.unwrap_or(0) != 0 {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                "pci-root and pcie-root controllers should have index 0".into(),
            ));
        }
        if d.index == Some(0) && model != root {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                format!("The PCI controller with index='0' must be model='{root}' for this machine type, but model='{model}' was found instead"),
            ));
        }
        if let Some(need) = rule.and_then(|r| r.needs_root.as_deref()) {
            if need != root {
                return Err(fail(
                    file,
                    d.line,
                    &d.describe(),
                    format!("{model} controllers are not supported with this machine type"),
                ));
            }
        }
        if rule.is_none() && !model.is_empty() {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                format!("unknown PCI controller model '{model}'"),
            ));
        }
    }
    Ok(())
}

/// The order in which libvirt's parser keeps the controllers written in the domain
/// (`virDomainControllerInsertPreAlloced`, one controller at a time in document order):
/// a controller of a type not seen yet goes to the end; one without `index` right after
/// the last controller of its type; otherwise before the first controller of its type
/// with a higher index (a USB2 master before its companions of the same index), else
/// after the last controller of its type. The result is stored in `Dev::seq`.
fn controller_list(devs: &mut [Dev]) {
    let mut list: Vec<usize> = Vec::new();
    for i in 0..devs.len() {
        if devs[i].tag != "controller" {
            continue;
        }
        let new = &devs[i];
        let mut at: Option<usize> = None;
        for p in (0..list.len()).rev() {
            let old = &devs[list[p]];
            if old.ty != new.ty {
                continue;
            }
            let Some(ni) = new.index else {
                at = Some(p + 1);
                break;
            };
            let master_first =
                old.index == Some(ni) && new.is("controller", "usb") && !new.master && old.master;
            if old.index.is_some_and(|oi| oi > ni) || master_first {
                at = Some(p);
            } else if at.is_none() {
                at = Some(p + 1);
            }
        }
        list.insert(at.unwrap_or(list.len()), i);
    }
    for (seq, i) in list.into_iter().enumerate() {
        devs[i].seq = seq;
    }
}

/// A controller written without `index` gets the lowest unused index of its type
/// (`virDomainAssignControllerIndexes`, in controller-list order). The exception: an
/// ICH9 USB2 controller whose previous USB controller in the list is also ICH9 USB2 joins
/// that controller's index, unless a controller of its own model already has it.
fn assign_indexes(policy: &Policy, devs: &mut [Dev]) {
    use std::collections::{BTreeMap, BTreeSet, HashSet};
    let usb2 = |d: &Dev| super::pci::usb2_function(policy, d).is_some();
    let mut list: Vec<usize> = (0..devs.len())
        .filter(|&i| devs[i].tag == "controller")
        .collect();
    list.sort_by_key(|&i| devs[i].seq);
    // The indexes in use per type, the lowest index per type not yet known to be in use
    // (indexes are only ever added, so it never goes down), and the (index, model) pairs
    // of USB controllers: one pass over the list, not one per controller.
    let mut used: BTreeMap<Option<String>, BTreeSet<u32>> = BTreeMap::new();
    let mut usb_models: HashSet<(u32, Option<String>)> = HashSet::new();
    for &i in &list {
        let d = &devs[i];
        if let Some(n) = d.index {
            used.entry(d.ty.clone()).or_default().insert(n);
            if d.is("controller", "usb") {
                usb_models.insert((n, d.model.clone()));
            }
        }
    }
    let mut lowest: BTreeMap<Option<String>, u32> = BTreeMap::new();
    let mut prev_usb: Option<usize> = None;
    for &i in &list {
        if devs[i].index.is_none() {
            let join = prev_usb
                .filter(|&p| usb2(&devs[i]) && usb2(&devs[p]))
                .and_then(|p| devs[p].index)
                .filter(|&group| !usb_models.contains(&(group, devs[i].model.clone())));
            let ty = devs[i].ty.clone();
            let taken = used.entry(ty.clone()).or_default();
            let idx = join.unwrap_or_else(|| {
                let n = lowest.entry(ty).or_insert(0);
                while taken.contains(n) {
                    *n += 1;
                }
                *n
            });
            taken.insert(idx);
            if devs[i].is("controller", "usb") {
                usb_models.insert((idx, devs[i].model.clone()));
            }
            devs[i].index = Some(idx);
            devs[i].index_new = true;
        }
        if devs[i].is("controller", "usb") {
            prev_usb = Some(i);
        }
    }
}

fn has_controller(devs: &[Dev], ty: &str, index: u32) -> bool {
    devs.iter()
        .any(|d| d.is("controller", ty) && d.index == Some(index))
}

fn new_controller(ty: &str, index: u32, model: Option<&str>) -> Dev {
    let mut c = Dev::new("controller");
    c.ty = Some(ty.into());
    c.index = Some(index);
    c.model = model.map(str::to_string);
    c.index_new = true;
    c.model_new = model.is_some();
    c
}

/// `qemuDomainDefAddDefaultDevices`: USB, SATA, the PCI root, the memballoon.
fn add_defaults(m: &Machine, devs: &mut Vec<Dev>, _file: &str) -> Result<(), Error> {
    let Some(rule) = m.rule else { return Ok(()) };
    if let Some(usb) = &rule.default_usb {
        if !has_controller(devs, "usb", 0) {
            devs.push(new_controller("usb", 0, Some(usb)));
        }
    }
    if rule.sata && !has_controller(devs, "sata", 0) {
        devs.push(new_controller("sata", 0, None));
    }
    if !has_controller(devs, "pci", 0) {
        devs.push(new_controller("pci", 0, Some(&rule.root)));
    }
    if rule.memballoon && !devs.iter().any(|d| d.tag == "memballoon") {
        let mut b = Dev::new("memballoon");
        b.model = Some("virtio".into());
        devs.push(b);
    }
    Ok(())
}

fn default_models(m: &Machine, devs: &mut [Dev]) {
    let Some(rule) = m.rule else { return };
    for d in devs.iter_mut() {
        let default = match (d.tag.as_str(), d.ty.as_deref()) {
            ("interface", Some(t)) if t != "hostdev" => Some(&rule.nic),
            ("video", _) => Some(&rule.video),
            ("controller", Some("usb")) => Some(&rule.explicit_usb),
            ("controller", Some("scsi")) => Some(&rule.scsi),
            ("panic", _) => Some(&rule.panic),
            (tag, _) => Policy::get().default_models.get(tag),
        };
        let missing =
            d.model.is_none() || (d.is("controller", "scsi") && d.model.as_deref() == Some("auto"));
        if let (Some(model), true) = (default, missing) {
            d.model = Some(model.clone());
            d.model_new = true;
        }
    }
}

/// Drive addresses from the target name (`virDomainDiskDefAssignAddress`).
fn drive_addresses(devs: &mut [Dev], file: &str) -> Result<(), Error> {
    for d in devs.iter_mut().filter(|d| d.tag == "disk") {
        if !matches!(d.addr, Addr::None) {
            continue;
        }
        let Some(idx) = d.index else {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                format!(
                    "Unknown disk name '{}' and no address specified",
                    d.target.as_deref().unwrap_or("")
                ),
            ));
        };
        let (per, buses) = match d.bus.as_deref() {
            Some("scsi") => (7, 1),
            Some("ide") => (4, 2),
            Some("sata") => (6, 1),
            Some("fdc") => (2, 1),
            _ => continue,
        };
        let units = per / buses;
        d.addr = Addr::Drive {
            controller: idx / per,
            bus: (idx % per) / units,
            target: 0,
            unit: idx % units,
        };
        d.addr_new = true;
    }
    scsi_hostdev_addresses(devs);
    Ok(())
}

/// Units libvirt hands out on one SCSI controller to a host device without an address
/// (its narrow-bus count: units 0-6).
const SCSI_HOSTDEV_UNITS: u32 = 7;

/// Drive addresses for SCSI host devices written without one
/// (`virDomainHostdevAssignAddress`), in document order after the disks have theirs: the
/// first controller, bus 0, target 0, with a unit no SCSI disk or host device uses.
fn scsi_hostdev_addresses(devs: &mut [Dev]) {
    let scsi = |d: &Dev| {
        (d.tag == "disk" && d.bus.as_deref() == Some("scsi"))
            || (d.tag == "hostdev" && d.ty.as_deref() == Some("scsi"))
    };
    let used: std::collections::HashSet<(u32, u32)> = devs
        .iter()
        .filter(|d| scsi(d))
        .filter_map(|d| match d.addr {
            Addr::Drive {
                controller,
                bus: 0,
                target: 0,
                unit,
            } => Some((controller, unit)),
            _ => None,
        })
        .collect();
    // The lowest free unit only moves up as units are taken: one cursor for all.
    let mut free = (0u32..)
        .flat_map(|c| (0..SCSI_HOSTDEV_UNITS).map(move |u| (c, u)))
        .filter(|k| !used.contains(k));
    for d in devs.iter_mut() {
        if !(d.tag == "hostdev" && d.ty.as_deref() == Some("scsi") && d.addr == Addr::None) {
            continue;
        }
        let Some((controller, unit)) = free.next() else {
            break;
        };
        d.addr = Addr::Drive {
            controller,
            bus: 0,
            target: 0,
            unit,
        };
        d.addr_new = true;
    }
}

/// The SCSI controllers 0..N for SCSI host devices whose drive addresses name controller
/// N at most, added as libvirt reads the host devices
/// (`virDomainDefMaybeAddHostdevSCSIcontroller`): ahead of the machine's defaults in
/// libvirt's controller list, which decides which gets a PCI slot first. Returned, not
/// added: the controllers past 0 that only host devices without a written address reach
/// (controller 0 is full), which libvirt 9.0 adds with its implicit controllers, after
/// the virtio-serial and CCID ones (measured: `wide-cases/scsi-hostdev-overflow`).
fn hostdev_scsi_controllers(devs: &mut Vec<Dev>) -> Vec<Dev> {
    // Host devices in document order: one that names a higher controller than any
    // before takes that controller's model, if it exists with one, for the controllers
    // added from then on (libvirt keeps one model for all of them).
    let mut added: Vec<(u32, Option<String>)> = Vec::new();
    let written = |devs: &[Dev], i: u32| {
        devs.iter()
            .find(|c| c.is("controller", "scsi") && c.index == Some(i) && !c.index_new)
            .map(|c| c.model.clone().filter(|m| m != "auto"))
    };
    let mut max: Option<u32> = None;
    let mut model: Option<String> = None;
    let mut named: Option<u32> = None;
    for d in devs.iter().filter(|d| d.is("hostdev", "scsi")) {
        let Addr::Drive { controller, .. } = d.addr else {
            continue;
        };
        if !d.addr_new {
            named = named.max(Some(controller));
        }
        if max.is_some_and(|m| controller <= m) {
            continue;
        }
        max = Some(controller);
        let own = written(devs, controller).or_else(|| {
            added
                .iter()
                .find(|(i, _)| *i == controller)
                .map(|(_, m)| m.clone())
        });
        if let Some(Some(m)) = own {
            model = Some(m);
        }
        for i in 0..=controller {
            let known = written(devs, i).is_some() || added.iter().any(|(j, _)| *j == i);
            if !known {
                added.push((i, model.clone()));
            }
        }
    }
    let mut overflow = Vec::new();
    for (i, m) in added {
        let c = new_controller("scsi", i, m.as_deref());
        if i == 0 || named.is_some_and(|n| i <= n) {
            devs.push(c);
        } else {
            overflow.push(c);
        }
    }
    overflow
}

/// A drive address naming a controller past [`crate::limits::MAX_DRIVE_CONTROLLER`]:
/// libvirt would add every controller of that bus up to it, more than PCI can hold.
fn check_drive_controllers(devs: &[Dev], file: &str) -> Result<(), Error> {
    let max = crate::limits::MAX_DRIVE_CONTROLLER;
    for d in devs {
        let Addr::Drive { controller, .. } = d.addr else {
            continue;
        };
        // The devices `implicit_controllers` counts.
        let bus = match d.tag.as_str() {
            "hostdev" => "scsi",
            "disk" => match d.bus.as_deref() {
                Some(b @ ("scsi" | "fdc" | "ide" | "sata")) => b,
                _ => continue,
            },
            _ => continue,
        };
        if controller > max {
            let whence = if d.addr_new && d.tag == "disk" {
                format!(
                    " (derived from target dev='{}')",
                    d.target.as_deref().unwrap_or("")
                )
            } else {
                String::new()
            };
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                format!(
                    "drive address controller='{controller}'{whence} is out of range; expected \
                     0-{max}: libvirt adds every {bus} controller up to the index a drive \
                     address names, each in a PCI slot of its own, and a PCI domain has no \
                     more than {} slots",
                    max as u64 + 1
                ),
            ));
        }
    }
    Ok(())
}

/// `virDomainDefAddImplicitDevices`: disk controllers 0..max per bus, virtio-serial for
/// virtio consoles and channels, CCID for smartcards, a video for graphics.
fn implicit_controllers(m: &Machine, devs: &mut Vec<Dev>, hostdev_overflow: Vec<Dev>) {
    const SCSI: &str = ControllerType::Scsi.name();
    let overflow = |c: u32| hostdev_overflow.iter().any(|o| o.index == Some(c));
    for bus in ["scsi", "fdc", "ide", "sata"] {
        let mut max: Option<u32> = None;
        for d in devs.iter() {
            let c = match (&d.addr, d.tag.as_str()) {
                (Addr::Drive { controller, .. }, "disk") if d.bus.as_deref() == Some(bus) => {
                    *controller
                }
                (Addr::Drive { controller, .. }, "hostdev")
                    if bus == SCSI && !overflow(*controller) =>
                {
                    *controller
                }
                _ => continue,
            };
            max = Some(max.map_or(c, |m| m.max(c)));
        }
        if let Some(max) = max {
            // One pass over the devices for the indexes present, then one per index
            // added: linear in the number of controllers (bounded by
            // `MAX_DRIVE_CONTROLLER`), not quadratic.
            let present: std::collections::HashSet<u32> = devs
                .iter()
                .filter(|d| d.is("controller", bus))
                .filter_map(|d| d.index)
                .collect();
            let model = (bus == SCSI)
                .then(|| m.rule.map(|r| r.scsi.clone()))
                .flatten();
            for i in (0..=max).filter(|i| !present.contains(i)) {
                devs.push(new_controller(bus, i, model.as_deref()));
            }
        }
    }
    let mut serial: Vec<u32> = Vec::new();
    for d in devs.iter() {
        if (d.tag == "channel" || d.tag == "console") && d.ty.as_deref() == Some("virtio") {
            let c = match d.addr {
                Addr::VirtioSerial { controller, .. } => controller,
                _ => 0,
            };
            if !serial.contains(&c) {
                serial.push(c);
            }
        }
    }
    for c in serial {
        if !has_controller(devs, "virtio-serial", c) {
            devs.push(new_controller("virtio-serial", c, None));
        }
    }
    let cards: Vec<u32> = devs
        .iter()
        .filter(|d| d.tag == "smartcard")
        .map(|d| match d.addr {
            Addr::Ccid { controller, .. } => controller,
            _ => 0,
        })
        .collect();
    for c in cards {
        if !has_controller(devs, "ccid", c) {
            devs.push(new_controller("ccid", c, None));
        }
    }
    // Added after the machine's default models: without one of its own, the machine's.
    let scsi_model = m.rule.map(|r| r.scsi.clone());
    for c in hostdev_overflow {
        let i = c.index.unwrap_or(0);
        if !has_controller(devs, SCSI, i) {
            let model = c.model.or_else(|| scsi_model.clone());
            devs.push(new_controller(SCSI, i, model.as_deref()));
        }
    }
    if devs.iter().any(|d| d.tag == "graphics") && !devs.iter().any(|d| d.tag == "video") {
        if let Some(rule) = m.rule {
            let mut v = Dev::new("video");
            v.model = Some(rule.video.clone());
            v.model_new = true;
            devs.push(v);
        }
    }
}

/// Two controllers of one type with the same given index: libvirt refuses the domain when
/// it parses it ("Multiple 'sata' controllers with index '1'"). USB controllers have
/// their own rule (a companion shares its master's index).
fn duplicate_indexes(devs: &[Dev], file: &str) -> Result<(), Error> {
    let mut seen: std::collections::BTreeSet<(&str, u32)> = std::collections::BTreeSet::new();
    for d in devs.iter().filter(|d| d.tag == "controller") {
        let (Some(ty), Some(index)) = (d.ty.as_deref(), d.index) else {
            continue;
        };
        let usb = ty.parse::<ControllerType>().ok() == Some(ControllerType::Usb);
        if usb || d.index_new {
            continue;
        }
        if !seen.insert((ty, index)) {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                format!("Multiple '{ty}' controllers with index '{index}'"),
            ));
        }
    }
    Ok(())
}

/// IDE controllers, written or implied by IDE disks: a machine with a built-in IDE
/// controller (pc) has that one only, index 0; the others known here take none
/// (libvirt's QEMU validation refuses both).
fn check_ide_controllers(m: &Machine, devs: &[Dev], file: &str) -> Result<(), Error> {
    let Some(rule) = m.rule else { return Ok(()) };
    for d in devs.iter().filter(|d| d.is("controller", "ide")) {
        let message = if !rule.builtin_ide {
            "IDE controllers are unsupported for this QEMU binary or machine type"
        } else if d.index.unwrap_or(0) != 0 {
            "Only a single IDE controller is supported for this machine type"
        } else {
            continue;
        };
        return Err(fail(file, d.line, &d.describe(), message.into()));
    }
    Ok(())
}

/// Whether a device is one of the virtio devices libvirt gives virtio-mmio addresses on
/// ARM machines (`qemuDomainPrimeVirtioDeviceAddresses`): virtio disks, NICs, videos and
/// inputs, virtio-serial and SCSI controllers, vhost-scsi host devices, the memballoon,
/// RNGs and virtio memory devices.
fn primed_virtio(d: &Dev) -> bool {
    let model = d.model.as_deref().unwrap_or("");
    match d.tag.as_str() {
        "disk" | "input" => d.bus.as_deref() == Some("virtio"),
        "interface" => model.starts_with("virtio"),
        "video" => model == "virtio",
        "controller" => matches!(d.ty.as_deref(), Some("virtio-serial" | "scsi")),
        "hostdev" => d.ty.as_deref() == Some("scsi_host"),
        "memballoon" => model != "none",
        "rng" => true,
        "memory" => matches!(model, "virtio-pmem" | "virtio-mem"),
        _ => false,
    }
}

/// virtio-mmio on ARM (`qemuDomainAssignVirtioMMIOAddresses`): on `virt` and
/// `vexpress-*` machines, when the machine has no PCIe root or a device was written with a
/// virtio-mmio address, every virtio device without an address gets a virtio-mmio one
/// (and no PCI slot).
pub fn virtio_mmio(m: &Machine, devs: &mut [Dev]) {
    let arm = matches!(m.arch.as_str(), "aarch64" | "armv7l" | "armv6l");
    let virt = m.rule.is_some_and(|r| r.name == "virt");
    if !arm || !(virt || m.name.starts_with("vexpress-")) {
        return;
    }
    let mmio = |d: &Dev| matches!(&d.addr, Addr::Other(t) if t == "virtio-mmio");
    if m.pcie_root && !devs.iter().any(mmio) {
        return;
    }
    for d in devs.iter_mut() {
        if d.addr == Addr::None && !d.empty_pci_address && primed_virtio(d) {
            d.addr = Addr::Other("virtio-mmio".into());
            d.addr_new = true;
        }
    }
}
