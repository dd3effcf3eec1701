//! Existing buses and pinned addresses: everything the plan must keep exactly.

use super::{Bus, Dev, StorageCtl, Zone};
use crate::catalog::{Catalog, Family, MachineModel};
use crate::error::{Error, Result};
use crate::spec::{Effective, Spec};
use crate::topology::{Address, PciAddress};
use crate::vocab::{pci, ConnectFlags, ConnectKind};
use std::collections::{BTreeMap, BTreeSet};

/// The root bus, every PCI controller of the spec, and gap controllers for every bus
/// index up to the highest pinned or given one that has none.
pub(super) fn existing_buses(
    spec: &Spec,
    cat: &Catalog,
    machine: &MachineModel,
    eff: &Effective,
) -> Result<Vec<Bus>> {
    let root = cat.pci_model(&machine.root);
    let mut buses = vec![Bus {
        index: 0,
        model: machine.root.clone(),
        zone: None,
        hotplug: root.bus.hotplug,
        address: None,
        used: BTreeMap::new(),
        aggregate_slots: BTreeSet::new(),
        entry: None,
        set: None,
    }];
    for b in &machine.builtin {
        for f in &b.functions {
            *buses[0].used.entry(b.slot.get()).or_default() |= 1 << f.get();
        }
    }
    // The machine's own controllers (q35 sata0, pc ide0) are there before any pin.
    for b in &machine.builtin_controllers {
        *buses[0].used.entry(b.slot.get()).or_default() |= 1 << b.function.get();
    }
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in spec.controllers.iter().enumerate() {
        let at = |f: &str| format!("controllers[{i}].{f}");
        if let Some(prev) = ids.insert(c.id.as_str(), i) {
            return Err(Error::input(
                at("id"),
                format!(
                    "duplicate controller id `{}` (also controllers[{prev}])",
                    c.id
                ),
            ));
        }
        if cat.storage.contains_key(&c.model) {
            continue;
        }
        let Some(model) = cat.pci.get(&c.model) else {
            let near = crate::catalog::did_you_mean(
                &c.model,
                cat.pci.keys().chain(cat.storage.keys()).map(String::as_str),
            );
            return Err(Error::input(
                at("model"),
                format!(
                    "unknown controller model `{}`{}",
                    c.model,
                    if near.is_empty() {
                        "; run `devaddr models` for the list"
                    } else {
                        &near
                    }
                ),
            )
            .with_code(crate::Code::UnknownName));
        };
        if model.connect.is_none() {
            if c.index != 0 || c.model != machine.root {
                return Err(Error::input(
                    at("model"),
                    format!(
                        "machine `{}` has root bus `{}` at index 0; found `{}` at index {}",
                        machine.name, machine.root, c.model, c.index
                    ),
                ));
            }
            if let Some(prev) = buses[0].entry {
                return Err(Error::input(
                    at("model"),
                    format!(
                        "a second root bus: controllers[{prev}] is already the root bus `{}` \
                         at index 0",
                        machine.root
                    ),
                ));
            }
            if c.address.is_some() {
                return Err(Error::input(
                    at("address"),
                    format!(
                        "the root bus `{}` plugs into nothing: it has no address",
                        c.model
                    ),
                ));
            }
            // The spec names the root bus (with any id): the plan keeps its entry.
            buses[0].entry = Some(i);
            continue;
        }
        if c.index == 0 {
            return Err(Error::input(
                at("index"),
                format!(
                    "index 0 is the root bus `{}`; found `{}`",
                    machine.root, c.model
                ),
            ));
        }
        if buses.iter().any(|b| b.index == c.index) {
            return Err(Error::input(
                at("index"),
                format!("two PCI controllers have index {}", c.index),
            ));
        }
        let zone = if model.numa {
            let n = c.numa_node.ok_or_else(|| {
                Error::input(
                    at("numa_node"),
                    format!("expander bus `{}` needs a numa_node", c.id),
                )
            })?;
            if n >= eff.numa_nodes {
                return Err(Error::input(
                    at("numa_node"),
                    format!(
                        "controller `{}` names NUMA node {n}, but the guest has {} NUMA nodes; \
                         raise policy.numa_nodes",
                        c.id, eff.numa_nodes
                    ),
                ));
            }
            Some(n)
        } else {
            None
        };
        let address = match &c.address {
            None => None,
            Some(Address::Pci(a)) => Some(*a),
            Some(other) => {
                return Err(Error::input(
                    at("address"),
                    format!("a PCI controller needs a pci address; found {other}"),
                ))
            }
        };
        buses.push(Bus {
            index: c.index,
            model: c.model.clone(),
            zone,
            hotplug: model.bus.hotplug && c.hotplug.unwrap_or(true),
            address,
            used: BTreeMap::new(),
            aggregate_slots: BTreeSet::new(),
            entry: Some(i),
            set: None,
        });
    }
    // Gap controllers for pins on bus indexes with no controller.
    let gap_model = machine
        .grow
        .pcie_port
        .clone()
        .or(machine.grow.pci_bridge.clone())
        .unwrap_or_else(|| machine.root.clone());
    let mut wanted: BTreeSet<u32> = BTreeSet::new();
    for d in &spec.devices {
        if let Some(Address::Pci(a)) = &d.address {
            wanted.insert(a.bus);
        }
    }
    for c in &spec.controllers {
        if let Some(Address::Pci(a)) = &c.address {
            wanted.insert(a.bus);
        }
    }
    // As libvirt does, every index below the highest one in use gets a controller: a
    // domain with pci.3 and no pci.1 or pci.2 is completed by libvirt with two more.
    let highest = wanted
        .iter()
        .chain(buses.iter().map(|b| &b.index))
        .max()
        .copied()
        .unwrap_or(0);
    for idx in 1..=highest {
        if buses.iter().all(|b| b.index != idx) {
            let gm = cat.pci_model(&gap_model);
            buses.push(Bus {
                index: idx,
                model: gap_model.clone(),
                zone: None,
                hotplug: gm.bus.hotplug,
                address: None,
                used: BTreeMap::new(),
                aggregate_slots: BTreeSet::new(),
                entry: None,
                set: None,
            });
        }
    }
    buses.sort_by_key(|b| b.index);
    // Controllers occupy their parent's slot; zones flow down from expanders.
    let placed: Vec<(u32, PciAddress, String, Option<usize>)> = buses
        .iter()
        .filter_map(|b| b.address.map(|a| (b.index, a, b.model.clone(), b.entry)))
        .collect();
    for (index, a, model, entry) in placed {
        let at = entry.map_or(crate::topology::pci_bus_id(index), |i| {
            format!("controllers[{i}].address")
        });
        let m = cat.pci_model(&model);
        occupy(
            &mut buses,
            cat,
            &a,
            &at,
            &format!("controller pci.{index}"),
            m.connect,
            m.aggregate,
        )?;
        if a.bus == index {
            return Err(Error::input(
                at,
                format!("controller {index} plugs into itself"),
            ));
        }
    }
    // Resolve zones by walking parents (and reject cycles).
    for i in 0..buses.len() {
        let mut seen = BTreeSet::new();
        let mut cur = i;
        let zone: Zone = loop {
            if buses[cur].zone.is_some() || buses[cur].index == 0 {
                break buses[cur].zone;
            }
            if !seen.insert(cur) {
                return Err(Error::input(
                    format!("controllers (index {})", buses[i].index),
                    "controllers plug into each other in a cycle",
                ));
            }
            match buses[cur].address {
                Some(a) => match buses.iter().position(|b| b.index == a.bus) {
                    Some(p) => cur = p,
                    None => break None,
                },
                None => break None,
            }
        };
        buses[i].zone = zone;
    }
    Ok(buses)
}

/// What of the machine itself sits at `a` (a chipset function or a builtin controller).
pub(super) fn builtin_at(machine: &MachineModel, a: &PciAddress) -> Option<String> {
    if a.domain != 0 || a.bus != 0 {
        return None;
    }
    if let Some(b) = machine
        .builtin
        .iter()
        .find(|b| b.slot == a.slot && b.functions.iter().any(|f| *f == a.function))
    {
        return Some(format!("the {}", b.what));
    }
    machine
        .builtin_controllers
        .iter()
        .find(|b| b.slot == a.slot && b.function == a.function)
        .map(|b| format!("builtin controller `{}` ({})", b.id, b.model))
}

/// Mark a PCI address used, checking it exists and is free.
pub(super) fn occupy(
    buses: &mut [Bus],
    cat: &Catalog,
    a: &PciAddress,
    at: &str,
    who: &str,
    connect: Option<ConnectKind>,
    aggregate: bool,
) -> Result<()> {
    if a.domain != 0 {
        return Err(Error::input(
            at,
            format!(
                "{who}: PCI domain {} does not exist; only domain 0",
                a.domain
            ),
        ));
    }
    let Some(bus) = buses.iter_mut().find(|b| b.index == a.bus) else {
        return Err(Error::input(
            at,
            format!("{who}: bus {} has no PCI controller", a.bus),
        ));
    };
    let m = cat.pci_model(&bus.model);
    if a.slot < m.bus.slots[0] || a.slot > m.bus.slots[1] || a.slot > pci::MAX_SLOT {
        return Err(Error::input(
            at,
            format!(
                "{who}: slot {} is outside bus {} ({}), which has slots {}-{}",
                a.slot, a.bus, bus.model, m.bus.slots[0], m.bus.slots[1]
            ),
        ));
    }
    if a.function > pci::MAX_FUNCTION {
        return Err(Error::input(
            at,
            format!(
                "{who}: function {} is out of range 0-{}",
                a.function,
                pci::MAX_FUNCTION
            ),
        ));
    }
    if let Some(c) = connect {
        // A given endpoint address may put a PCIe device on a conventional bus or the
        // other way round (the device then works as the bus's type).
        let ok = m.bus.accepts(c)
            || (c.is_endpoint() && m.bus.accepts.intersects(ConnectFlags::ENDPOINTS));
        if !ok {
            return Err(Error::input(
                at,
                format!(
                    "{who} ({c}) cannot be plugged into bus {} ({}), which accepts {}",
                    a.bus, bus.model, m.bus.accepts
                ),
            ));
        }
    }
    let used = bus.used.entry(a.slot).or_default();
    if *used & (1 << a.function) != 0 {
        return Err(Error::input(
            at,
            format!("{who}: address {a} is already in use (pinned twice or builtin)"),
        ));
    }
    if *used == 0 && aggregate {
        bus.aggregate_slots.insert(a.slot);
    }
    *used |= 1 << a.function;
    Ok(())
}

/// Validate and reserve the PCI pins of spec devices; pin the primary video device.
pub(super) fn pin_devices(
    spec: &Spec,
    cat: &Catalog,
    machine: &MachineModel,
    devs: &[Dev],
    buses: &mut [Bus],
    ctx: &super::Context,
) -> Result<BTreeMap<usize, PciAddress>> {
    let mut pinned = BTreeMap::new();
    for (i, d) in spec.devices.iter().enumerate() {
        let Some(addr) = &d.address else { continue };
        let at = format!("devices[{i}].address");
        let dev = &devs[i];
        let ok_type = matches!(
            (dev.kind.family, addr),
            (Family::Pci, Address::Pci(_))
                | (Family::Usb, Address::Usb(_))
                | (Family::Drive, Address::Drive(_))
        );
        if !ok_type {
            return Err(Error::device_input(
                i,
                "address",
                format!(
                    "device `{}` is a {} device; found address {addr}",
                    d.id,
                    super::family_name(dev.kind.family)
                ),
            ));
        }
        let Address::Pci(a) = addr else { continue };
        if let Some(what) = builtin_at(machine, a) {
            return Err(Error::device_input(
                i,
                "address",
                format!(
                    "device `{}`: address {a} is already in use by {what} of machine `{}`; \
                     expected a free address",
                    d.id, machine.name
                ),
            ));
        }
        occupy(
            buses,
            cat,
            a,
            &at,
            &format!("device `{}`", d.id),
            Some(ConnectKind::endpoint(dev.pcie)),
            false,
        )
        .map_err(|e| e.about_device(i))?;
        let bus = buses.iter().find(|b| b.index == a.bus).expect("occupied");
        // An explicit `bus:` type must match the bus the pin names.
        let express = cat.pci_model(&bus.model).bus.express;
        let asked = match d.bus {
            Some(crate::spec::BusType::Pci) if express => Some("conventional PCI (`bus: pci`)"),
            Some(crate::spec::BusType::Pcie) if !express => Some("PCIe (`bus: pcie`)"),
            _ => None,
        };
        if let Some(asked) = asked {
            return Err(Error::device_input(
                i,
                "address",
                format!(
                    "device `{}` asks for {asked} but is pinned on bus {} ({}); expected a \
                     bus of that type, or no `bus:`",
                    d.id, a.bus, bus.model
                ),
            ));
        }
        let pcie_only = machine.pcie && dev.kind.pci == Some(crate::catalog::PciType::Pcie);
        if pcie_only && !cat.pci_model(&bus.model).bus.express {
            return Err(Error::device_input(
                i,
                "address",
                format!(
                    "device `{}`: {} is a PCIe-only device kind and cannot sit on conventional \
                     PCI bus {} ({})",
                    d.id, d.kind, a.bus, bus.model
                ),
            ));
        }
        if dev.hotplug && !bus.hotplug {
            return Err(Error::device_input(
                i,
                "address",
                format!(
                    "device `{}` needs hotplug, but bus {} ({}) is not hotpluggable",
                    d.id, a.bus, bus.model
                ),
            ));
        }
        if dev.zone.is_some() && bus.zone != dev.zone {
            return Err(Error::device_input(
                i,
                "address",
                format!(
                    "device `{}` names NUMA node {}, but bus {} is {}",
                    d.id,
                    dev.zone.unwrap_or_default(),
                    a.bus,
                    bus.zone
                        .map_or("not below an expander bus".to_string(), |z| format!(
                            "on NUMA node {z}"
                        ))
                ),
            ));
        }
        pinned.insert(i, *a);
    }
    // Groups are pinned all together or not at all.
    let mut groups: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, d) in spec.devices.iter().enumerate() {
        if let Some(g) = &d.group {
            let e = groups.entry(g).or_default();
            e.0 += 1;
            e.1 += usize::from(pinned.contains_key(&i));
        }
    }
    for (g, (n, p)) in groups {
        if p != 0 && p != n {
            return Err(Error::input(
                "devices",
                format!("group `{g}`: {p} of its {n} devices are pinned; pin all or none"),
            ));
        }
    }
    // The primary video device takes the machine's video slot when it is free. When a
    // replan may move devices, only a video device that was there (it stays), and not a
    // slot another device may keep: the replan decides what stays elsewhere, and a move
    // to (or out of) the video slot is a move all the same.
    if let Some(pv) = &machine.primary_video {
        let first_video = (0..spec.devices.len()).find(|&i| devs[i].kind.video);
        if let Some(i) = first_video {
            let d = &devs[i];
            let slot = pv.slot.get();
            // A slot another device may keep from the previous plan is not free either;
            // a video device that may keep another slot is not pinned here.
            let free = buses[0].used.get(&slot).copied().unwrap_or(0) == 0
                && !ctx
                    .previous
                    .iter()
                    .any(|(&j, a)| j != i && a.bus == 0 && a.slot == slot);
            let was_here = ctx
                .previous
                .get(&i)
                .is_none_or(|a| (a.bus, a.slot, a.function) == (0, slot, 0));
            let root_hotplug = buses[0].hotplug;
            // Only a video device of the root bus's type (`bus: pci` asks for a
            // conventional slot, which a PCIe root bus does not have).
            let fits = cat
                .pci_model(&buses[0].model)
                .bus
                .accepts(ConnectKind::endpoint(d.pcie));
            // A controller the spec pins there keeps the slot.
            let held = spec.controllers.iter().any(
                |c| matches!(&c.address, Some(Address::Pci(a)) if a.bus == 0 && a.slot == slot),
            );
            if !pinned.contains_key(&i)
                && was_here
                && fits
                && !held
                && spec.devices[i].group.is_none()
                && d.zone.is_none()
                && (!d.hotplug || root_hotplug)
                && free
            {
                let a = PciAddress::new(0, slot, 0);
                *buses[0].used.entry(slot).or_default() |= 1;
                pinned.insert(i, a);
            }
        }
    }
    Ok(pinned)
}

/// A slot whose functions are pinned must have function 0 pinned too: a guest finds
/// the other functions of a slot only through function 0, and nothing the planner adds
/// goes into a slot that is partly taken. (When replanning, a device that had function 0
/// in the previous plan holds it: the replan keeps or moves the slot as a whole.)
pub(super) fn function_zero(spec: &Spec, buses: &[Bus], ctx: &super::Context) -> Result<()> {
    let previous: BTreeSet<(u32, u8)> = ctx
        .previous
        .values()
        .filter(|a| a.function == 0)
        .map(|a| (a.bus, a.slot))
        .collect();
    // (list, kind, position, id, address): named only in the error.
    let pins = spec
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| ("devices", "device", i, &d.id, &d.address))
        .chain(
            spec.controllers
                .iter()
                .enumerate()
                .map(|(i, c)| ("controllers", "controller", i, &c.id, &c.address)),
        );
    for (list, kind, i, id, addr) in pins {
        let Some(Address::Pci(a)) = addr else {
            continue;
        };
        let used = buses
            .iter()
            .find(|b| b.index == a.bus)
            .and_then(|b| b.used.get(&a.slot).copied())
            .unwrap_or(0);
        if a.function != 0 && used & 1 == 0 && !previous.contains(&(a.bus, a.slot)) {
            return Err(Error::input(
                format!("{list}[{i}].address"),
                format!(
                    "{kind} `{id}` is pinned at function {} of bus {} slot {}, but nothing is at \
                     function 0 of that slot; expected function 0, or another device pinned \
                     at function 0 of the slot",
                    a.function, a.bus, a.slot
                ),
            ));
        }
    }
    Ok(())
}

/// Reserve the root-bus functions of builtin and fixed-slot storage/USB controllers.
pub(super) fn pin_storage(
    cat: &Catalog,
    _machine: &MachineModel,
    storage: &mut [StorageCtl],
    buses: &mut [Bus],
) -> Result<()> {
    for s in storage.iter_mut() {
        if s.device.is_some() || s.builtin {
            continue; // builtin ones are reserved with the root bus
        }
        if let Some(a) = s.address {
            let at = s.at.clone();
            occupy(
                buses,
                cat,
                &a,
                &at,
                &format!("controller `{}`", s.id),
                None,
                false,
            )?;
        } else if let Some(f) = s.fixed.take() {
            let (slot, function) = (f.slot.get(), f.function.get());
            let used = buses[0].used.get(&slot).copied().unwrap_or(0);
            if used & (1 << function) == 0 {
                *buses[0].used.entry(slot).or_default() |= 1 << function;
                s.address = Some(PciAddress::new(0, slot, function));
            }
        }
    }
    Ok(())
}
