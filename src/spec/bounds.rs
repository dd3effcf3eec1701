//! Every number a spec, plan or device list can carry, bounded before anything is sized
//! by it. The limits are named constants of [`crate::limits`]; what depends on the
//! machine (bus numbers, USB ports of a model) is checked against the catalog when the
//! spec is normalized.

use super::{DeviceEntry, Spec, Tunables};
use crate::error::{Error, Result};
use crate::limits::*;
use crate::topology::{Address, ControllerEntry};

/// Where a number sits in the input (`devices[3].address.bus`): written only for an
/// error, so that checking a valid spec formats nothing.
type At<'a> = &'a dyn Fn() -> String;

/// Refuse a number above `max` at `at`.
fn at_most(at: At, what: &str, value: u32, max: u32) -> Result<()> {
    if value > max {
        return Err(Error::input(
            at(),
            format!("{what} {value} is out of range; expected 0-{max}"),
        )
        .with_code(crate::Code::OutOfRange));
    }
    Ok(())
}

fn numa_node(at: At, n: u32) -> Result<()> {
    if n >= MAX_NUMA_NODES {
        return Err(Error::input(
            at(),
            format!(
                "NUMA node {n} is out of range; expected 0-{} (at most {MAX_NUMA_NODES} \
                 NUMA nodes are supported)",
                MAX_NUMA_NODES - 1
            ),
        )
        .with_code(crate::Code::OutOfRange));
    }
    Ok(())
}

/// The numbers of an address.
fn address(at: At, a: &Address) -> Result<()> {
    match a {
        Address::Pci(p) => {
            at_most(
                &|| format!("{}.domain", at()),
                "PCI domain",
                p.domain,
                MAX_PCI_DOMAIN,
            )?;
            at_most(&|| format!("{}.bus", at()), "PCI bus", p.bus, MAX_BUS_NR)?;
            at_most(
                &|| format!("{}.slot", at()),
                "PCI slot",
                p.slot.into(),
                MAX_PCI_SLOT.into(),
            )?;
            at_most(
                &|| format!("{}.function", at()),
                "PCI function",
                p.function.into(),
                MAX_PCI_FUNCTION.into(),
            )
        }
        Address::Usb(u) => {
            at_most(
                &|| format!("{}.bus", at()),
                "USB controller index",
                u.bus,
                MAX_STORAGE_INDEX,
            )?;
            let parts: Vec<&str> = u.port.split('.').collect();
            let ok = parts.len() <= MAX_USB_PORT_DEPTH
                && parts.iter().all(|p| {
                    !p.is_empty()
                        && p.bytes().all(|b| b.is_ascii_digit())
                        && p.parse::<u32>()
                            .is_ok_and(|n| (1..=MAX_USB_PORT_NUMBER).contains(&n))
                });
            if !ok {
                return Err(Error::input(
                    format!("{}.port", at()),
                    format!(
                        "USB port `{}` is not valid; expected port numbers 1-{MAX_USB_PORT_NUMBER} \
                         joined by `.`, at most {MAX_USB_PORT_DEPTH} of them",
                        u.port
                    ),
                ));
            }
            Ok(())
        }
        Address::Drive(d) => {
            at_most(
                &|| format!("{}.controller", at()),
                "drive controller index",
                d.controller,
                MAX_STORAGE_INDEX,
            )?;
            at_most(
                &|| format!("{}.bus", at()),
                "drive bus",
                d.bus,
                MAX_DRIVE_BUS,
            )?;
            at_most(
                &|| format!("{}.target", at()),
                "drive target",
                d.target,
                MAX_DRIVE_TARGET,
            )?;
            at_most(
                &|| format!("{}.unit", at()),
                "drive unit",
                d.unit,
                MAX_DRIVE_UNIT,
            )
        }
    }
}

/// The numbers of one device entry at `path` (`devices[3]`).
pub(crate) fn device(path: &str, d: &DeviceEntry) -> Result<()> {
    device_at(&|| path.to_string(), d)
}

fn device_at(at: At, d: &DeviceEntry) -> Result<()> {
    if let Some(n) = d.numa_node {
        numa_node(&|| format!("{}.numa_node", at()), n)?;
    }
    if let Some(a) = &d.address {
        address(&|| format!("{}.address", at()), a)?;
    }
    if let Some(h) = &d.host {
        host_address(&|| format!("{}.host", at()), h)?;
    }
    // `ports` is bounded by the controller model's max_ports (catalog) in normalize;
    // `order` only sorts and sizes nothing.
    Ok(())
}

/// A host PCI address as QEMU's `vfio-pci,host=` and libvirt's `<source><address>` take
/// it: `[DDDD:]BB:SS.F` in hex (domain up to ffff, bus up to ff, slot up to 1f, function
/// up to 7).
fn host_address(at: At, h: &str) -> Result<()> {
    let field = |s: &str, digits: usize, max: u32| {
        (1..=digits).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_hexdigit())
            && u32::from_str_radix(s, 16).is_ok_and(|v| v <= max)
    };
    let ok = match h.split_once('.') {
        Some((head, func)) if field(func, 1, 7) => match head.split(':').collect::<Vec<_>>()[..] {
            [dom, bus, slot] => {
                field(dom, 4, 0xffff) && field(bus, 2, 0xff) && field(slot, 2, 0x1f)
            }
            [bus, slot] => field(bus, 2, 0xff) && field(slot, 2, 0x1f),
            _ => false,
        },
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let shown: String = h.chars().take(40).collect();
    let more = if h.chars().count() > 40 { "…" } else { "" };
    Err(Error::input(
        at(),
        format!(
            "host address `{shown}{more}`: expected the host's PCI address as DDDD:BB:SS.F or \
             BB:SS.F in hex (e.g. 0000:65:00.0)"
        ),
    ))
}

fn controller(at: At, c: &ControllerEntry) -> Result<()> {
    // PCI controller indexes are bus numbers; other controllers are addressed by index.
    at_most(
        &|| format!("{}.index", at()),
        "controller index",
        c.index,
        MAX_BUS_NR,
    )?;
    if let Some(n) = c.numa_node {
        numa_node(&|| format!("{}.numa_node", at()), n)?;
    }
    if let Some(v) = c.chassis {
        at_most(&|| format!("{}.chassis", at()), "chassis", v, MAX_CHASSIS)?;
    }
    if let Some(v) = c.chassis_nr {
        at_most(
            &|| format!("{}.chassis_nr", at()),
            "chassis_nr",
            v,
            MAX_CHASSIS,
        )?;
    }
    if let Some(v) = c.port {
        at_most(&|| format!("{}.port", at()), "PCIe port", v, MAX_PCIE_PORT)?;
    }
    if let Some(v) = c.bus_nr {
        at_most(&|| format!("{}.bus_nr", at()), "bus_nr", v, MAX_BUS_NR)?;
    }
    if let Some(a) = &c.address {
        address(&|| format!("{}.address", at()), a)?;
    }
    Ok(())
}

fn policy(t: &Tunables) -> Result<()> {
    if let Some(n) = t.numa_nodes {
        if n > MAX_NUMA_NODES {
            return Err(Error::input(
                "policy.numa_nodes",
                format!("{n} NUMA nodes requested; expected 0-{MAX_NUMA_NODES}"),
            ));
        }
    }
    Ok(())
}

/// The numbers whose bound depends on the machine (its catalog entry).
pub(crate) fn against_machine(spec: &Spec, machine: &crate::catalog::MachineModel) -> Result<()> {
    let bus_numbers = machine.limits.bus_numbers;
    for (field, value) in [
        ("hotplug_reserve", spec.policy.hotplug_reserve),
        (
            "hotplug_reserve_per_node",
            spec.policy.hotplug_reserve_per_node,
        ),
        (
            "hotplug_reserve_bar64.ports",
            spec.policy.hotplug_reserve_bar64.map(|r| r.ports),
        ),
    ] {
        // Every reserved port takes a bus number of its own.
        if let Some(v) = value.filter(|&v| v >= bus_numbers) {
            return Err(Error::input(
                format!("policy.{field}"),
                format!(
                    "{v} spare ports requested; machine `{}` has {bus_numbers} PCI bus \
                     numbers, so expected 0-{}",
                    machine.name,
                    bus_numbers.saturating_sub(1)
                ),
            ));
        }
    }
    Ok(())
}

/// Every number of a spec or plan, bounded (see [`crate::limits`]).
/// Each entry is checked on its own: every entry out of range is reported at once.
pub(crate) fn check(spec: &Spec) -> Result<()> {
    let mut errors: Vec<Error> = policy(&spec.policy).err().into_iter().collect();
    for (i, c) in spec.controllers.iter().enumerate() {
        errors.extend(controller(&|| format!("controllers[{i}]"), c).err());
    }
    for (i, d) in spec.devices.iter().enumerate() {
        errors.extend(device_at(&|| format!("devices[{i}]"), d).err());
    }
    Error::collect(errors)
}
