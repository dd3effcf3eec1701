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
    pci_controller_below_its_bus(policy, devs, file)?;
    pci_controllers_reach_the_root(devs, file)?;
    serial_address_types(arch, devs, file)?;
    duplicate_drive_addresses(devs, file)
}

/// A second element of a kind libvirt takes once (`single` in models/libvirt.yaml):
/// "only a single watchdog device is supported".
fn single_devices(policy: &Policy, devs: &[Dev], file: &str) -> Result<(), Error> {
    for (tag, word) in &policy.single {
        let mut given = devs.iter().filter(|d| &d.tag == tag && d.pos.is_some());
        if let (Some(_), Some(second)) = (given.next(), given.next()) {
            return Err(fail(
                file,
                second.line,
                &second.describe(),
                format!("only a single {word} device is supported"),
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
        let has = match d.addr {
            Addr::Pci(_) => "pci",
            Addr::Usb { .. } => "usb",
            _ => continue,
        };
        if has != wants {
            return Err(fail(
                file,
                d.line,
                &d.describe(),
                format!("Target type '{target}' requires address type '{wants}'"),
            ));
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

/// Every PCI controller's chain of parent buses reaches the root bus. libvirt's own
/// addressing can plug a controller written without an index into a bus below itself (an
/// upstream port into one of its own downstream ports) and defines the domain; QEMU
/// cannot build that topology, so devaddr refuses it with the loop (a deliberate
/// difference from `virsh define`).
fn pci_controllers_reach_the_root(devs: &[Dev], file: &str) -> Result<(), Error> {
    let parent: std::collections::BTreeMap<u32, u32> = devs
        .iter()
        .filter(|d| d.is("controller", "pci"))
        .filter_map(|d| Some((d.index?, d.pci()?.bus)))
        .collect();
    for d in devs.iter().filter(|d| d.is("controller", "pci")) {
        let Some(start) = d.index.filter(|&i| i != 0) else {
            continue;
        };
        let mut cur = start;
        for _ in 0..=parent.len() {
            match parent.get(&cur) {
                Some(&0) => break,
                Some(&p) if p == start => {
                    return Err(fail(
                        file,
                        d.line,
                        &d.describe(),
                        format!(
                            "libvirt's addressing plugs PCI controller index {start} into a \
                             bus below itself (bus {cur} sits on it): a loop QEMU cannot build; \
                             give the controllers indexes and addresses in parent-first order"
                        ),
                    ))
                }
                Some(&p) => cur = p,
                None => break,
            }
        }
    }
    Ok(())
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
