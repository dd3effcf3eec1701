//! USB, SATA, SCSI and IDE controllers: the builtin ones, those the spec names, and the
//! implicit ones the devices need.

use super::Dev;
use crate::catalog::{Catalog, Family, FixedControllerSlot, MachineModel};
use crate::error::{Error, Result};
use crate::spec::Spec;
use crate::topology::{Address, PciAddress};
use crate::vocab::ControllerType;
use std::collections::BTreeSet;

/// A controller of a non-PCI bus.
#[derive(Debug, Clone)]
pub(crate) struct StorageCtl {
    pub id: String,
    /// Model (a storage model and a device kind of the same name).
    pub model: String,
    /// The bus it provides.
    pub provides: ControllerType,
    /// Index among controllers of the same `provides`.
    pub index: u32,
    /// USB ports, when the model has a settable port count.
    pub ports: Option<u32>,
    /// Devices it can take.
    pub capacity: u32,
    /// Its PCI address once known.
    pub address: Option<PciAddress>,
    /// Created by the machine (QEMU makes it; the plan lists it).
    pub builtin: bool,
    /// Added by devaddr or given under `controllers:`: listed in the plan's controllers.
    pub implicit: bool,
    /// It is a spec device (by position).
    pub device: Option<usize>,
    /// A root-bus function the machine reserves for it.
    pub fixed: Option<FixedControllerSlot>,
    /// Where it came from, for error messages.
    pub at: String,
}

pub(super) fn controllers(
    spec: &Spec,
    cat: &Catalog,
    machine: &MachineModel,
    devs: &[Dev],
) -> Result<Vec<StorageCtl>> {
    let mut out: Vec<StorageCtl> = Vec::new();
    // Ids of the spec, searched only when an implicit controller is named (rarely).
    let taken_ids = |id: &str| {
        spec.devices.iter().any(|d| d.id == id) || spec.controllers.iter().any(|c| c.id == id)
    };
    for b in &machine.builtin_controllers {
        let m = &cat.storage[&b.model];
        out.push(StorageCtl {
            id: b.id.clone(),
            model: b.model.clone(),
            provides: m.provides,
            index: b.index,
            ports: None,
            capacity: m.capacity(None),
            address: Some(PciAddress::new(0, b.slot.get(), b.function.get())),
            builtin: true,
            implicit: false,
            device: None,
            fixed: None,
            at: format!("machine {}", machine.name),
        });
    }
    // Controllers listed in the spec (typically from a previous plan).
    for (i, c) in spec.controllers.iter().enumerate() {
        let Some(m) = cat.storage.get(&c.model) else {
            continue;
        };
        let at = format!("controllers[{i}]");
        if c.builtin == Some(true) {
            // The machine's own controller: it must match.
            let builtin = out
                .iter()
                .find(|s| s.builtin && s.id == c.id && s.model == c.model && s.index == c.index);
            if let (Some(b), Some(given)) = (builtin, &c.address) {
                let home = b.address.map(Address::Pci);
                if home.as_ref().is_some_and(|h| !same_pci(h, given)) {
                    return Err(Error::input(
                        format!("{at}.address"),
                        format!(
                            "controller `{}` is built into machine `{}` at {}; found {given}, \
                             and a builtin controller cannot move",
                            c.id,
                            machine.name,
                            home.map(|h| h.to_string()).unwrap_or_default()
                        ),
                    ));
                }
            }
            if builtin.is_none() {
                return Err(Error::input(
                    at,
                    format!(
                        "controller `{}` is marked builtin, but machine `{}` has no such controller",
                        c.id, machine.name
                    ),
                ));
            }
            continue;
        }
        if out
            .iter()
            .any(|s| s.provides == m.provides && s.index == c.index)
        {
            return Err(Error::input(
                format!("{at}.index"),
                format!("two {} controllers have index {}", m.provides, c.index),
            ));
        }
        let address = match &c.address {
            None => None,
            Some(Address::Pci(a)) => Some(*a),
            Some(other) => {
                return Err(Error::input(
                    format!("{at}.address"),
                    format!("controller `{}` needs a pci address; found {other}", c.id),
                ))
            }
        };
        out.push(StorageCtl {
            id: c.id.clone(),
            model: c.model.clone(),
            provides: m.provides,
            index: c.index,
            ports: c.ports.or(m.ports),
            capacity: m.capacity(c.ports),
            address,
            builtin: false,
            implicit: true,
            device: None,
            fixed: None,
            at: format!("{at}.address"),
        });
    }
    // Spec devices that are controllers, in spec order.
    for (i, d) in spec.devices.iter().enumerate() {
        let Some(model) = &devs[i].kind.controller else {
            continue;
        };
        let m = &cat.storage[model];
        let index = next_index(&out, m.provides);
        if let Some(p) = d.ports {
            if p == 0 || m.max_ports.is_some_and(|mx| p > mx) {
                return Err(Error::input(
                    format!("devices[{i}].ports"),
                    format!(
                        "device `{}`: {p} ports; expected 1-{}",
                        d.id,
                        m.max_ports.unwrap_or(1)
                    ),
                ));
            }
        }
        out.push(StorageCtl {
            id: d.id.clone(),
            model: model.clone(),
            provides: m.provides,
            index,
            ports: d
                .ports
                .or(m.ports)
                .filter(|_| m.provides == ControllerType::Usb),
            capacity: m.capacity(d.ports),
            address: None,
            builtin: false,
            implicit: false,
            device: Some(i),
            fixed: None,
            at: format!("devices[{i}]"),
        });
    }
    // Implicit controllers for the devices that need them.
    for (provides, default) in [
        (
            ControllerType::Usb,
            machine.defaults.usb_controller.as_str(),
        ),
        (
            ControllerType::Sata,
            machine.defaults.sata_controller.as_str(),
        ),
        (
            ControllerType::Scsi,
            machine.defaults.scsi_controller.as_str(),
        ),
        (ControllerType::Ide, ""),
    ] {
        let demand = devs
            .iter()
            .filter(|d| match d.kind.family {
                Family::Usb => provides == ControllerType::Usb,
                Family::Drive => d.kind.drive_bus == Some(provides),
                Family::Pci => false,
            })
            .count() as u32;
        let mut capacity: u32 = out
            .iter()
            .filter(|s| s.provides == provides)
            .map(|s| s.capacity)
            .sum();
        while capacity < demand {
            if default.is_empty() {
                let first = spec
                    .devices
                    .iter()
                    .position(|d| {
                        cat.kind(&d.kind)
                            .is_some_and(|k| k.drive_bus == Some(provides))
                    })
                    .unwrap_or(0);
                return Err(Error::input(
                    format!("devices[{first}]"),
                    format!(
                        "{demand} {provides} disk(s), but machine `{}` has room for {capacity}; \
                         {provides} controllers cannot be added{}",
                        machine.name,
                        if capacity == 0 {
                            " (use sata-disk, scsi-disk or virtio-blk)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            let remaining = demand - capacity;
            let mut model = default.to_string();
            let dm = &cat.storage[&model];
            if provides == ControllerType::Usb && dm.max_ports.unwrap_or(0) < remaining {
                // The default (e.g. a 2-port UHCI) is too small: use an xHCI controller.
                if let Some(x) = cat
                    .storage
                    .values()
                    .filter(|s| s.provides == ControllerType::Usb)
                    .max_by_key(|s| (s.max_ports.unwrap_or(0), s.model.clone()))
                {
                    model = x.model.clone();
                }
            }
            let m = &cat.storage[&model];
            let ports = m
                .ports
                .map(|p| p.max(remaining.min(m.max_ports.unwrap_or(p))));
            let index = next_index(&out, provides);
            let mut id = format!("{provides}{index}");
            while taken_ids(&id) || out.iter().any(|s| s.id == id) {
                id.push('_');
            }
            let fixed = machine
                .fixed_controller_slots
                .iter()
                .find(|f| f.model == model)
                .filter(|_| !out.iter().any(|s| s.model == model))
                .cloned();
            capacity += m.capacity(ports);
            out.push(StorageCtl {
                id: id.clone(),
                model: model.clone(),
                provides,
                index,
                ports: if provides == ControllerType::Usb {
                    ports
                } else {
                    None
                },
                capacity: m.capacity(ports),
                address: None,
                builtin: false,
                implicit: true,
                device: None,
                fixed,
                at: format!("implicit {provides} controller"),
            });
        }
    }
    Ok(out)
}

/// The same PCI address, whatever the multifunction flag says.
fn same_pci(a: &Address, b: &Address) -> bool {
    match (a, b) {
        (Address::Pci(x), Address::Pci(y)) => x.key() == y.key(),
        _ => a == b,
    }
}

fn next_index(out: &[StorageCtl], provides: ControllerType) -> u32 {
    let used: BTreeSet<u32> = out
        .iter()
        .filter(|s| s.provides == provides)
        .map(|s| s.index)
        .collect();
    (0..).find(|i| !used.contains(i)).unwrap_or(0)
}

/// A running guest: every controller the devices need must exist already, unless libvirt
/// can attach one of its model live.
pub(super) fn check_live(spec: &Spec, cat: &Catalog, storage: &[StorageCtl]) -> Result<()> {
    for s in storage {
        let added = s.implicit && s.address.is_none() && s.device.is_none();
        let listed = spec.controllers.iter().any(|c| c.id == s.id);
        if !added || listed {
            continue;
        }
        if cat.kind(&s.model).is_some_and(|k| k.attach && k.hotplug) {
            continue;
        }
        let what = match s.provides {
            ControllerType::Usb => "USB port",
            _ => "drive unit",
        };
        return Err(Error::from(crate::Explanation::new(
            crate::Binding::LiveCapacity,
            format!(
                "the running guest has no free {} {what} left, and a {} controller cannot \
                 be added to a running guest (libvirt attaches only SCSI controllers live)",
                s.provides, s.model
            ),
            format!(
                "at next boot: `devaddr plan SPEC --previous PLAN` with the new devices adds \
                 {} controller `{}`",
                s.model, s.id
            ),
        )));
    }
    Ok(())
}
