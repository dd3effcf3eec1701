//! Build the [`Plan`] from the decoded placement: controller attributes (chassis, port,
//! bus_nr), USB and drive addresses, multifunction flags, and what is left free.

use crate::catalog::{Catalog, Family, ReserveKind};
use crate::error::Result;
use crate::normalize::{counts_for_reserve_model, Problem};
use crate::solve::backend::Status;
use crate::solve::decode::Placement;
use crate::spec::Tunables;
use crate::topology::{
    Address, ControllerEntry, DriveAddress, Free, FreeZone, Gap, Plan, PlanHeader, SolverReport,
    SolverStatus, UsbAddress,
};
use crate::vocab::{pci, Attr, ControllerType};
use std::collections::BTreeSet;

/// Version of the placement rules; recorded in every plan.
pub const POLICY_VERSION: u32 = 1;

pub(crate) fn assemble(p: &Problem, cat: &Catalog, pl: &Placement) -> Result<Plan> {
    let mut controllers = pci_controllers(p, cat, pl);
    // The PCI model of each controller, looked up once (storage controllers appended
    // below look theirs up there).
    let mut models = crate::topology::pci_models(&controllers, cat);
    assign_bus_nr(
        &mut controllers,
        &models,
        p.eff.preset != crate::spec::Preset::Libvirt,
        p.machine.limits.bus_numbers,
    );
    for (si, s) in p.storage.iter().enumerate() {
        if s.device.is_some() {
            continue;
        }
        let address = s.address.or_else(|| pl.storage.get(&si).copied());
        controllers.push(ControllerEntry {
            id: s.id.clone(),
            model: s.model.clone(),
            index: s.index,
            ports: s.ports,
            builtin: s.builtin.then_some(true),
            address: address.map(Address::Pci),
            ..Default::default()
        });
        models.push(cat.pci.get(&s.model));
    }
    let mut devices = p.spec.devices.clone();
    // The solver's addresses, then the pins (a pin wins).
    for (i, a) in pl.placed().chain(p.pinned.iter().map(|(&i, a)| (i, a))) {
        if let Some(d) = devices.get_mut(i) {
            d.address = Some(Address::Pci(*a));
        }
    }
    assign_usb(p, &mut devices)?;
    assign_drives(p, cat, &mut devices)?;
    set_multifunction(&mut controllers, &mut devices, p);
    let eff = &p.eff;
    reserve_bar64(p, &models, &mut controllers, &devices)?;
    give_up_io_padding(p, cat, &models, &mut controllers, &devices);
    let free = free_capacity(p, cat, pl, &models, &devices);
    let mut plan = Plan {
        devaddr: PlanHeader {
            version: env!("CARGO_PKG_VERSION").to_string(),
            policy: preset_name(eff.preset).to_string(),
            policy_version: POLICY_VERSION,
            solver: Some(match pl.status {
                Status::Optimal => SolverReport {
                    status: SolverStatus::Optimal,
                    gap: None,
                },
                Status::Feasible { gap } => SolverReport {
                    status: SolverStatus::Feasible,
                    gap: Some(Gap::of(gap)),
                },
            }),
        },
        name: p.spec.name.clone(),
        machine: p.spec.machine.clone(),
        policy: Tunables {
            preset: Some(eff.preset),
            hotplug_reserve: Some(eff.hotplug_reserve),
            hotplug_reserve_per_node: Some(eff.hotplug_reserve_per_node),
            numa_nodes: Some(eff.numa_nodes),
            prefer: Some(eff.prefer),
            multifunction: Some(eff.multifunction),
            root_port_hotplug: Some(eff.root_port_hotplug),
            // A plan from before plans recorded the firmware stays so (its budgets).
            firmware: (!crate::catalog::legacy_plan(p.spec)).then_some(eff.firmware),
            hotplug_reserve_bar64: p.spec.policy.hotplug_reserve_bar64,
            phys_bits: p.spec.policy.phys_bits,
        },
        order: p.spec.order.clone(),
        apart: p.spec.apart.clone(),
        together: p.spec.together.clone(),
        controllers,
        devices,
        free,
        mmio64: None,
    };
    plan.mmio64 = crate::topology::mmio64::state(&plan, cat, &p.machine, p.spec.policy.phys_bits)
        .map_err(|e| crate::Error::Infeasible {
        explanation: Box::new(e),
    })?;
    Ok(plan)
}

/// `policy.hotplug_reserve_bar64`: that many empty hotpluggable ports with QEMU's
/// resource reservation keep a 64-bit window of the size (`pref64_reserve`); ports that
/// kept it in the spec (a replanned plan) first, then by index. The reserve made the
/// planner leave at least that many empty hotpluggable ports; only root ports can keep
/// the room.
fn reserve_bar64(
    p: &Problem,
    models: &[Option<&crate::catalog::PciModel>],
    controllers: &mut [ControllerEntry],
    devices: &[crate::spec::DeviceEntry],
) -> Result<()> {
    let Some(r) = p.spec.policy.hotplug_reserve_bar64.filter(|r| r.ports > 0) else {
        return Ok(());
    };
    let parent = |a: &Option<Address>| match a {
        Some(Address::Pci(a)) => Some(a.bus),
        _ => None,
    };
    let occupied: BTreeSet<u32> = devices
        .iter()
        .map(|d| parent(&d.address))
        .chain(controllers.iter().map(|c| parent(&c.address)))
        .flatten()
        .collect();
    let kept: BTreeSet<u32> = p
        .spec
        .controllers
        .iter()
        .filter(|c| c.pref64_reserve.is_some())
        .map(|c| c.index)
        .collect();
    let mut empty: Vec<usize> = (0..controllers.len())
        .filter(|&i| {
            let c = &controllers[i];
            models[i].is_some_and(|m| m.resource_reserve)
                && c.hotplug != Some(false)
                && !occupied.contains(&c.index)
        })
        .collect();
    empty.sort_by_key(|&i| (!kept.contains(&controllers[i].index), controllers[i].index));
    if empty.len() < r.ports as usize {
        let mut e = crate::Explanation::new(
            crate::Binding::HotplugReserve,
            format!(
                "policy.hotplug_reserve_bar64 asks for {} empty hotpluggable root ports with \
                 {} of 64-bit room, and the plan has {} (switch downstream ports and bridges \
                 cannot keep the room)",
                r.ports,
                r.size,
                empty.len()
            ),
            "lower hotplug_reserve_bar64.ports, or free root ports (fewer devices pinned to \
             switch ports, no hotplug: off)",
        );
        e.needed = Some(r.ports.into());
        e.available = Some(empty.len() as u64);
        return Err(crate::Error::Infeasible {
            explanation: Box::new(e),
        });
    }
    for &i in empty.iter().take(r.ports as usize) {
        controllers[i].pref64_reserve = Some(r.size);
    }
    Ok(())
}

/// OVMF's I/O padding of hotplug ports ([`crate::topology::io_padding`]): where the
/// padded windows would pass the I/O budget, as many ports without I/O-BAR devices as it
/// is short of give it up (`io_reserve: 0`), ports new to the plan before the spec's
/// (a replan's kept ones). Ports that say so already (a replanned plan) keep it.
fn give_up_io_padding(
    p: &Problem,
    cat: &Catalog,
    models: &[Option<&crate::catalog::PciModel>],
    controllers: &mut [ControllerEntry],
    devices: &[crate::spec::DeviceEntry],
) {
    use crate::topology::io_padding;
    let Some(limit) = p.machine.limits.io_windows else {
        return;
    };
    let uefi = io_padding::padding_firmware(&p.machine, p.spec, p.eff.firmware);
    let pads = uefi.is_some_and(|u| u.hotplug_io_padding.is_some());
    let io = io_padding::io_buses(controllers, models, devices, cat);
    // The bridges the firmware pads for good take windows like I/O devices' bridges.
    let bridges = uefi.map_or(0, |u| {
        io_padding::padded_bridges(controllers, models, &io, u).len()
    });
    let windows = io.iter().filter(|&&b| b != 0).count() + bridges;
    let padded = io_padding::padded_ports(controllers, models, &io);
    if io_padding::padding_overflows(pads, windows, padded.len(), limit) {
        let kept = |c: &ControllerEntry| p.spec.controllers.iter().any(|s| s.id == c.id);
        for i in io_padding::giving_up(controllers, &padded, windows, limit, kept) {
            controllers[i].io_reserve = Some(0);
        }
    }
}

pub(crate) fn preset_name(p: crate::spec::Preset) -> &'static str {
    use crate::spec::Preset::*;
    match p {
        Libvirt => "libvirt",
        HotplugReady => "hotplug-ready",
        Numa => "numa",
        Dense => "dense",
    }
}

fn pci_controllers(p: &Problem, cat: &Catalog, pl: &Placement) -> Vec<ControllerEntry> {
    let mut out = Vec::with_capacity(pl.buses.len() + p.storage.len());
    let mut models = crate::topology::Memo::default();
    for inst in pl.buses.values() {
        let m = models.get(&inst.model, |n| cat.pci_model(n));
        let given = inst
            .existing
            .and_then(|e| p.buses[e].entry)
            .map(|i| p.spec.controllers[i].clone());
        let mut c = given.unwrap_or_else(|| ControllerEntry {
            id: crate::topology::pci_bus_id(inst.index),
            model: inst.model.clone(),
            index: inst.index,
            ..Default::default()
        });
        if c.address.is_none() {
            c.address = inst.address.map(Address::Pci);
        }
        if m.numa && c.numa_node.is_none() {
            c.numa_node = inst.zone;
        }
        if m.hotplug_settable && c.hotplug.is_none() {
            c.hotplug = Some(inst.hotplug);
        }
        let a = inst.address;
        for attr in &m.attrs {
            match attr {
                Attr::Chassis if c.chassis.is_none() => c.chassis = Some(inst.index),
                Attr::Port if c.port.is_none() => {
                    c.port = a.map(|a| {
                        if m.aggregate {
                            u32::from(a.slot) * u32::from(pci::FUNCTIONS_PER_SLOT)
                                + u32::from(a.function)
                        } else {
                            u32::from(a.slot)
                        }
                    })
                }
                Attr::ChassisNr if c.chassis_nr.is_none() => c.chassis_nr = Some(inst.index),
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// Expander buses get bus-number ranges from the top down (the first expander highest, as
/// libvirt's 254, 252, …), below any expander that keeps its own, each sized for the buses
/// below it: the firmware numbers the buses under an expander from its bus_nr+1 upward and
/// hangs if that wraps past 255. `spread`: share the free bus numbers evenly between the root hierarchy and each new
/// expander, so every NUMA node can grow at next boot without its expander's bus_nr (and
/// the guest-visible bus numbers below it) changing; otherwise pack them (libvirt's way).
/// `bus_numbers`: the machine's bus numbers (the ranges end below it).
fn assign_bus_nr(
    ctls: &mut [ControllerEntry],
    models: &[Option<&crate::catalog::PciModel>],
    spread: bool,
    bus_numbers: u32,
) {
    let (root_need, need) = crate::topology::bus_needs_of_controllers(ctls, models);
    // Which controllers are expanders.
    let numa: Vec<bool> = models.iter().map(|m| m.is_some_and(|m| m.numa)).collect();
    let expanders = || ctls.iter().zip(&numa).filter(|(_, &n)| n).map(|(c, _)| c);
    let mut top = expanders()
        .filter_map(|c| c.bus_nr)
        .min()
        .unwrap_or(bus_numbers);
    let new: Vec<u32> = expanders()
        .filter(|c| c.bus_nr.is_none())
        .map(|c| c.index)
        .collect();
    let share = if spread && !new.is_empty() {
        let new_need: u32 = new.iter().map(|i| need.get(i).copied().unwrap_or(1)).sum();
        top.saturating_sub(root_need + new_need) / (new.len() as u32 + 1)
    } else {
        0
    };
    for (c, numa) in ctls.iter_mut().zip(numa) {
        if numa && c.bus_nr.is_none() {
            let n = need.get(&c.index).copied().unwrap_or(1) + share;
            let nr = top.saturating_sub(n);
            c.bus_nr = Some(nr);
            top = nr;
        }
    }
}

fn assign_usb(p: &Problem, devices: &mut [crate::spec::DeviceEntry]) -> Result<()> {
    let ctls = crate::normalize::ports::usb_ports(p);
    // Given addresses were checked before solving (normalize::ports).
    let mut used: BTreeSet<(u32, u32)> = devices
        .iter()
        .filter_map(|d| match &d.address {
            Some(Address::Usb(u)) => Some((u.bus, u.port.parse().ok()?)),
            _ => None,
        })
        .collect();
    for (i, d) in devices.iter_mut().enumerate() {
        if p.devs[i].kind.family != Family::Usb || d.address.is_some() {
            continue;
        }
        let slot = ctls
            .iter()
            .flat_map(|(&b, &n)| (1..=n).map(move |port| (b, port)))
            .find(|k| !used.contains(k));
        if let Some((bus, port)) = slot {
            used.insert((bus, port));
            d.address = Some(Address::Usb(UsbAddress {
                bus,
                port: port.to_string(),
            }));
        }
    }
    Ok(())
}

fn assign_drives(
    p: &Problem,
    cat: &Catalog,
    devices: &mut [crate::spec::DeviceEntry],
) -> Result<()> {
    // (provides, controller) -> (buses, units)
    let shape = crate::normalize::ports::drive_shapes(p, cat);
    // Given addresses were checked before solving (normalize::ports).
    let mut used: BTreeSet<(ControllerType, u32, u32, u32, u32)> = devices
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match &d.address {
            Some(Address::Drive(a)) => Some((
                p.devs[i].kind.drive_bus?,
                a.controller,
                a.bus,
                a.target,
                a.unit,
            )),
            _ => None,
        })
        .collect();
    for (i, d) in devices.iter_mut().enumerate() {
        let Some(bus_type) = p.devs[i].kind.drive_bus else {
            continue;
        };
        if d.address.is_some() {
            continue;
        }
        let free = shape
            .iter()
            .filter(|((t, _), _)| *t == bus_type)
            .flat_map(|((_, c), &(buses, units))| {
                (0..buses).flat_map(move |b| (0..units).map(move |u| (*c, b, u)))
            })
            .find(|&(c, b, u)| !used.contains(&(bus_type, c, b, 0, u)));
        if let Some((controller, bus, unit)) = free {
            used.insert((bus_type, controller, bus, 0, unit));
            d.address = Some(Address::Drive(DriveAddress {
                controller,
                bus,
                target: 0,
                unit,
            }));
        }
    }
    Ok(())
}

/// Function 0 of every slot with more than one function in use gets multifunction on.
fn set_multifunction(
    ctls: &mut [ControllerEntry],
    devices: &mut [crate::spec::DeviceEntry],
    p: &Problem,
) {
    // The (bus, slot) of every PCI function in use, sorted: a slot with more than one
    // function appears more than once.
    let mut slots: Vec<(u32, u8)> = ctls
        .iter()
        .map(|c| &c.address)
        .chain(devices.iter().map(|d| &d.address))
        .filter_map(|a| match a {
            Some(Address::Pci(x)) => Some((x.bus, x.slot)),
            _ => None,
        })
        .collect();
    slots.sort_unstable();
    let shared = |k: (u32, u8)| {
        let first = slots.partition_point(|&s| s < k);
        slots.get(first + 1) == Some(&k)
    };
    let builtin =
        |(bus, slot): (u32, u8)| bus == 0 && p.machine.builtin.iter().any(|b| b.slot.get() == slot);
    let fix = |a: &mut Option<Address>| {
        if let Some(Address::Pci(x)) = a {
            if x.function == 0
                && x.multifunction.is_none()
                && shared((x.bus, x.slot))
                && !builtin((x.bus, x.slot))
            {
                x.multifunction = Some(true);
            }
        }
    };
    for c in ctls.iter_mut() {
        fix(&mut c.address);
    }
    for d in devices.iter_mut() {
        fix(&mut d.address);
    }
}

fn free_capacity(
    p: &Problem,
    cat: &Catalog,
    pl: &Placement,
    models: &[Option<&crate::catalog::PciModel>],
    devices: &[crate::spec::DeviceEntry],
) -> Free {
    let mut free = Free::default();
    let mut inst_models = crate::topology::Memo::default();
    for inst in pl.buses.values() {
        let m = inst_models.get(&inst.model, |n| cat.pci_model(n));
        if !inst.hotplug || !counts_for_reserve_model(m, &p.machine) {
            continue;
        }
        let n = (m.bus.slots[0]..=m.bus.slots[1])
            .filter(|&s| inst.slot_used(s) == 0)
            .count() as u32;
        let key = FreeZone::of(inst.zone);
        let map = match p.machine.reserve_kind {
            ReserveKind::PciePort => &mut free.hotplug_pcie_ports,
            ReserveKind::PciSlot => &mut free.hotplug_pci_slots,
        };
        *map.entry(key).or_default() += n;
    }
    let usb_cap: u32 = p
        .storage
        .iter()
        .filter(|s| s.provides == ControllerType::Usb)
        .map(|s| s.capacity)
        .sum();
    let usb_used = devices
        .iter()
        .filter(|d| matches!(d.address, Some(Address::Usb(_))))
        .count() as u32;
    free.usb_ports = usb_cap.saturating_sub(usb_used);
    let used: u32 = models.iter().flatten().map(|m| m.bus_numbers).sum();
    free.bus_numbers = p.machine.limits.bus_numbers.saturating_sub(used);
    free
}
