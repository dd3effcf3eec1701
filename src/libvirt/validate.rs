//! The checks libvirt runs on a domain once its addresses are assigned (the domain
//! validation step of `virsh define`): configurations libvirt refuses even though every
//! device got an address.

use super::domain::{Addr, Dev};
use super::fail;
use super::policy::Policy;
use crate::Error;

/// A drive address: controller, bus, target, unit.
type Drive = (u32, u32, u32, u32);

pub fn run(policy: &Policy, arch: &str, devs: &[Dev], file: &str) -> Result<(), Error> {
    single_devices(policy, devs, file)?;
    smartcard_at_the_first_ccid_slot(policy, devs, file)?;
    pci_controller_below_its_bus(policy, devs, file)?;
    serial_address_types(arch, devs, file)?;
    virtio_serial_controllers(devs, file)?;
    duplicate_drive_addresses(devs, file)
}

/// A second element of a kind libvirt takes once (`single` in models/libvirt.yaml):
/// "only a single vsock device is supported".
fn single_devices(policy: &Policy, devs: &[Dev], file: &str) -> Result<(), Error> {
    for (tag, refusal) in &policy.single {
        let mut given = devs.iter().filter(|d| &d.tag == tag && d.pos.is_some());
        if let (Some(_), Some(second)) = (given.next(), given.next()) {
            return Err(fail(file, second.line, &second.describe(), refusal.clone()));
        }
    }
    Ok(())
}

/// The one smartcard QEMU takes sits in slot 0 of CCID controller 0: libvirt refuses any
/// other CCID address (or none) with the words it uses for a second smartcard.
fn smartcard_at_the_first_ccid_slot(
    policy: &Policy,
    devs: &[Dev],
    file: &str,
) -> Result<(), Error> {
    let first_slot = |d: &Dev| {
        matches!(
            d.addr,
            Addr::Ccid {
                controller: 0,
                slot: 0
            }
        )
    };
    match devs.iter().find(|d| d.tag == "smartcard" && !first_slot(d)) {
        Some(d) => Err(fail(
            file,
            d.line,
            &d.describe(),
            policy.single.get("smartcard").cloned().unwrap_or_default(),
        )),
        None => Ok(()),
    }
}

/// A device written with an address type libvirt refuses for it (`address_types` in
/// models/libvirt.yaml): "USB host device must use 'usb' address type". Runs on the
/// devices as written, before anything is assigned, as libvirt's parse and validation do.
pub fn address_types(policy: &Policy, devs: &[Dev], file: &str) -> Result<(), Error> {
    for d in devs.iter().filter(|d| d.pos.is_some()) {
        let Some(ty) = d.addr_type.as_deref() else {
            continue;
        };
        let Some(rule) = policy.address_rule(
            &d.tag,
            d.ty.as_deref(),
            d.model.as_deref(),
            d.bus.as_deref(),
        ) else {
            continue;
        };
        if !rule.allow.iter().any(|a| a == ty) {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                rule.refusal.replace("{type}", ty),
            ));
        }
    }
    Ok(())
}

/// The same host device passed through twice (two `<hostdev>`, or a `<hostdev>` and an
/// `<interface type='hostdev'>`, with the same source): "Hostdev already exists in the
/// domain configuration".
pub fn duplicate_host_devices(devs: &[Dev], file: &str) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for d in devs {
        if let Some(key) = &d.source {
            if !seen.insert(key) {
                return Err(fail(
                    file,
                    d.line,
                    &d.describe(),
                    "Hostdev already exists in the domain configuration (its <source> names \
                     a host device passed through before)"
                        .into(),
                ));
            }
        }
    }
    Ok(())
}

/// A `<controller type='usb' model='none'/>` beside another USB controller as written:
/// "Can't add another USB controller: USB is disabled for this domain". And one at an
/// index other than 0 on a machine with a default USB controller: libvirt 9.0 defines it,
/// adds its default controller as index 0 beside it, and then refuses its own definition
/// with that message; devaddr refuses it at once (a deliberate difference: the domain
/// libvirt stores could not be defined again).
pub fn usb_none_alone(m: &super::Machine, devs: &[Dev], file: &str) -> Result<(), Error> {
    const REFUSAL: &str = "Can't add another USB controller: USB is disabled for this domain";
    let usb: Vec<&Dev> = devs
        .iter()
        .filter(|d| d.pos.is_some() && d.is("controller", "usb"))
        .collect();
    let none = usb.iter().find(|d| d.model.as_deref() == Some("none"));
    if usb.len() > 1 && none.is_some() {
        return Err(fail(file, usb[1].line, &usb[1].describe(), REFUSAL.into()));
    }
    let default_usb = m.rule.is_some_and(|r| r.default_usb.is_some());
    if let Some(d) = none.filter(|d| default_usb && d.index.is_some_and(|i| i != 0)) {
        return Err(fail(
            file,
            d.line,
            &d.describe(),
            format!(
                "{REFUSAL} (libvirt 9.0 adds its default USB controller as index 0 beside a \
                 model='none' one at index {}, and refuses the result when it reads it \
                 again; to turn USB off write model='none' at index 0)",
                d.index.unwrap_or(0)
            ),
        ));
    }
    Ok(())
}

/// USB devices on a domain without USB (after libvirt's defaults: `model='none'`, or
/// aarch64 virt with no USB controller written): refused, each kind with libvirt's
/// message ("Can't add USB input device. USB bus is disabled").
pub fn usb_devices_without_usb(devs: &[Dev], file: &str) -> Result<(), Error> {
    let usb = |d: &&Dev| d.is("controller", "usb");
    if devs
        .iter()
        .filter(usb)
        .any(|d| d.model.as_deref() != Some("none"))
    {
        return Ok(());
    }
    let none = devs.iter().any(|d| usb(&d));
    // A smartcard sits on the CCID controller libvirt adds, a USB device.
    let on_usb: Vec<&Dev> = devs
        .iter()
        .filter(|d| d.pos.is_some() && (super::ports::usb_kind(d) || d.tag == "smartcard"))
        .collect();
    // libvirt's parse names three kinds when USB was turned off in writing.
    let named = [
        ("input", "Can't add USB input device. USB bus is disabled"),
        (
            "hostdev",
            "Can't add host USB device: USB is disabled in this host",
        ),
        ("hub", "Can't add USB hub: USB is disabled for this domain"),
    ];
    for (tag, message) in named.iter().filter(|_| none) {
        if let Some(d) = on_usb.iter().find(|d| d.tag == *tag) {
            return Err(fail(file, d.line, &d.describe(), (*message).into()));
        }
    }
    match on_usb.first() {
        Some(d) => Err(fail(
            file,
            d.line,
            &d.describe(),
            "USB is disabled for this domain, but USB devices are present in the domain XML".into(),
        )),
        None => Ok(()),
    }
}

/// Devices that want a PCI address libvirt cannot give: on a machine without PCI
/// (`no_pci_machines` in models/libvirt.yaml) any device that takes a PCI slot ("No PCI
/// buses available"); and a `usb-net` NIC written without a USB address, which libvirt
/// 9.0 sends to the PCI pass with no connect flags ("Cannot automatically add a new PCI
/// bus for a device with connect flags 00").
pub fn pci_wanted(
    policy: &Policy,
    cat: &crate::catalog::Catalog,
    m: &super::Machine,
    devs: &[Dev],
    file: &str,
) -> Result<(), Error> {
    let no_pci = m.rule.is_none()
        && policy
            .no_pci_machines
            .iter()
            .any(|n| n == &m.name && matches!(m.arch.as_str(), "x86_64" | "i686"));
    for d in devs.iter().filter(|d| d.pos.is_some()) {
        let (flags, _) = super::pci::device_flags(policy, cat, m, d);
        let unaddressed = d.addr == Addr::None;
        // A USB controller without a model gets the x86 default, a PCI one.
        let usb_default = d.is("controller", "usb") && d.model.is_none();
        if no_pci && (d.pci().is_some() || ((flags != 0 || usb_default) && unaddressed)) {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                format!(
                    "No PCI buses available (machine '{}' has no PCI bus)",
                    m.name
                ),
            ));
        }
        let usb_net = d.tag == "interface" && d.model.as_deref() == Some("usb-net");
        if m.rule.is_some() && usb_net && unaddressed {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                "Cannot automatically add a new PCI bus for a device with connect flags 00 \
                 (libvirt 9.0 gives a usb-net interface no USB port: write its \
                 <address type='usb' bus='…' port='…'/>)"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// A device other than a channel or console (libvirt adds the controllers those need)
/// written with a virtio-serial address on a controller the domain does not have:
/// "virtio serial controller 1 is missing".
fn virtio_serial_controllers(devs: &[Dev], file: &str) -> Result<(), Error> {
    for d in devs
        .iter()
        .filter(|d| d.tag != "channel" && d.tag != "console")
    {
        let Addr::VirtioSerial { controller, .. } = d.addr else {
            continue;
        };
        let present = devs
            .iter()
            .any(|c| c.is("controller", "virtio-serial") && c.index == Some(controller));
        if !present {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                format!("virtio serial controller {controller} is missing"),
            ));
        }
    }
    Ok(())
}

/// A serial port's target type and the address type it takes (libvirt's chardev
/// validation); without `<target type>` an x86 serial port is an ISA one.
const SERIAL_ADDRESS: &[(&str, &str)] = &[
    ("isa-serial", "isa"),
    ("pci-serial", "pci"),
    ("usb-serial", "usb"),
];

/// A serial port with a PCI or USB address its target type cannot take:
/// "Target type 'isa-serial' requires address type 'isa'".
fn serial_address_types(arch: &str, devs: &[Dev], file: &str) -> Result<(), Error> {
    let x86 = matches!(arch, "x86_64" | "i686");
    for d in devs.iter().filter(|d| d.tag == "serial") {
        let target = match d.ty.as_deref() {
            Some(t) => t,
            None if x86 => "isa-serial",
            None => continue,
        };
        let Some(&(_, wants)) = SERIAL_ADDRESS.iter().find(|(t, _)| *t == target) else {
            continue;
        };
        let Some(has) = d.addr_type.as_deref() else {
            continue;
        };
        if has != wants {
            let message = if target == "usb-serial" {
                "usb-serial requires address of usb type".to_string()
            } else {
                format!("Target type '{target}' requires address type '{wants}'")
            };
            return Err(fail(file, d.line, &d.describe(), message));
        }
    }
    Ok(())
}

/// A pci-bridge (`index_above_bus` in models/libvirt.yaml) must sit on a bus with a
/// lower index than its own. (A q35 domain whose only free place for a pci-bridge is the
/// bridge itself ends up here: libvirt's address assignment puts it there and
/// validation refuses it.)
fn pci_controller_below_its_bus(policy: &Policy, devs: &[Dev], file: &str) -> Result<(), Error> {
    for d in devs.iter().filter(|d| d.is("controller", "pci")) {
        let model = d.model.as_deref().unwrap_or("");
        if !policy
            .controllers
            .get(model)
            .is_some_and(|r| r.index_above_bus)
        {
            continue;
        }
        let (Some(index), Some(a)) = (d.index, d.pci()) else {
            continue;
        };
        if index > 0 && index <= a.bus {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                format!(
                    "PCI controller at index {index} ({index:#04x}) has bus='{:#04x}', but index must be larger than bus",
                    a.bus
                ),
            ));
        }
    }
    Ok(())
}

/// The PCI controllers whose chain of parent buses comes back to themselves: libvirt's
/// own addressing can plug a controller written without an index into a bus below
/// itself (an upstream port into one of its own downstream ports) and `virsh define`
/// accepts the domain. devaddr plans it as libvirt does; QEMU cannot build the loop, so
/// each one is a warning (one per loop, naming the controller of the lowest index in
/// it). The walk stops after as many steps as there are controllers, so a loop that
/// does not pass through the starting controller ends too.
pub(super) fn controller_loops(devs: &[Dev]) -> Vec<String> {
    let parent: std::collections::BTreeMap<u32, u32> = devs
        .iter()
        .filter(|d| d.is("controller", "pci"))
        .filter_map(|d| Some((d.index?, d.pci()?.bus)))
        .collect();
    let mut warnings = Vec::new();
    for d in devs.iter().filter(|d| d.is("controller", "pci")) {
        let Some(start) = d.index.filter(|&i| i != 0) else {
            continue;
        };
        let mut cur = start;
        let mut lowest = true;
        for _ in 0..=parent.len() {
            match parent.get(&cur) {
                Some(&p) if p == start => {
                    if lowest {
                        warnings.push(format!(
                            "{} (line {}): libvirt's addressing plugs PCI controller index \
                             {start} into a bus below itself (bus {cur} sits on it) and libvirt \
                             defines the domain so, but QEMU cannot build the loop; give the \
                             controllers indexes and addresses in parent-first order",
                            d.describe(),
                            d.line
                        ));
                    }
                    break;
                }
                Some(&0) | None => break,
                Some(&p) => {
                    lowest &= p > start;
                    cur = p;
                }
            }
        }
    }
    warnings
}

/// Two disks on the same bus, or two SCSI host devices, or a SCSI host device and a SCSI
/// disk, at one drive address. Disks are compared in libvirt's disk order (per bus, by
/// target name), so the message names the disk with the lower target name.
fn duplicate_drive_addresses(devs: &[Dev], file: &str) -> Result<(), Error> {
    let drive = |d: &Dev| match d.addr {
        Addr::Drive {
            controller,
            bus,
            target,
            unit,
        } => Some((controller, bus, target, unit)),
        _ => None,
    };
    let mut disks: Vec<(&Dev, Drive)> = devs
        .iter()
        .filter(|d| d.tag == "disk")
        .filter_map(|d| Some((d, drive(d)?)))
        .collect();
    disks.sort_by_key(|(d, _)| (d.bus.clone(), d.index));
    for (i, (a, at)) in disks.iter().enumerate() {
        if disks[i + 1..]
            .iter()
            .any(|(b, bt)| b.bus == a.bus && bt == at)
        {
            return Err(fail(
                file,
                a.line,
                &a.describe(),
                format!(
                    "Found duplicate drive address for disk with target name '{}' controller='{}' bus='{}' target='{}' unit='{}'",
                    a.target.as_deref().unwrap_or(""),
                    at.0,
                    at.1,
                    at.2,
                    at.3
                ),
            ));
        }
    }
    let hostdevs: Vec<(&Dev, Drive)> = devs
        .iter()
        .filter(|d| d.is("hostdev", "scsi"))
        .filter_map(|d| Some((d, drive(d)?)))
        .collect();
    for (i, (h, at)) in hostdevs.iter().enumerate() {
        let text = format!(
            "SCSI host address controller='{}' bus='{}' target='{}' unit='{}'",
            at.0, at.1, at.2, at.3
        );
        if hostdevs[i + 1..].iter().any(|(_, bt)| bt == at) {
            return Err(fail(
                file,
                h.line,
                &h.describe(),
                format!("{text} in use by another SCSI host device"),
            ));
        }
        if disks
            .iter()
            .any(|(d, dt)| d.bus.as_deref() == Some("scsi") && dt == at)
        {
            return Err(fail(
                file,
                h.line,
                &h.describe(),
                format!("{text} in use by another SCSI disk"),
            ));
        }
    }
    Ok(())
}
