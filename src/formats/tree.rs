//! A tree view of the topology, like `lspci -tv`: the bus hierarchy with NUMA nodes,
//! hotplug settings and empty hotpluggable slots visible, and USB/drive devices below
//! their controllers.

use crate::catalog::Catalog;
use crate::topology::{Address, Plan};
use std::collections::BTreeMap;
use std::fmt::Write;

enum Node {
    Ctl(usize),
    Dev(usize),
    Builtin(String),
}

/// Render the plan as a tree.
pub fn render(plan: &Plan, cat: &Catalog) -> String {
    let mut out = String::new();
    let Some(machine) = cat.machine(&plan.machine) else {
        return out;
    };
    // Children of each PCI bus, keyed by (slot, function).
    let mut children: BTreeMap<u32, BTreeMap<(u8, u8), Node>> = BTreeMap::new();
    for b in &machine.builtin {
        for f in &b.functions {
            children
                .entry(0)
                .or_default()
                .insert((b.slot.get(), f.get()), Node::Builtin(b.what.clone()));
        }
    }
    for (i, c) in plan.controllers.iter().enumerate() {
        if let Some(Address::Pci(a)) = &c.address {
            children
                .entry(a.bus)
                .or_default()
                .insert((a.slot, a.function), Node::Ctl(i));
        }
    }
    for (i, d) in plan.devices.iter().enumerate() {
        if let Some(Address::Pci(a)) = &d.address {
            children
                .entry(a.bus)
                .or_default()
                .insert((a.slot, a.function), Node::Dev(i));
        }
    }
    let _ = writeln!(
        out,
        "{} ({}) {} [{}]",
        plan.machine, machine.arch, machine.root_bus_name, machine.root
    );
    bus(plan, cat, &children, 0, "", &mut out);
    // Non-PCI devices by controller.
    for (i, d) in plan.devices.iter().enumerate() {
        let _ = i;
        match &d.address {
            Some(Address::Usb(u)) => {
                let _ = writeln!(
                    out,
                    "usb bus {} port {:<4} {} {}",
                    u.bus, u.port, d.id, d.kind
                );
            }
            Some(Address::Drive(a)) => {
                let _ = writeln!(
                    out,
                    "drive {} {}:{}:{}:{:<3} {} {}",
                    cat.kind(&d.kind)
                        .and_then(|k| k.drive_bus)
                        .map_or("", crate::vocab::ControllerType::name),
                    a.controller,
                    a.bus,
                    a.target,
                    a.unit,
                    d.id,
                    d.kind
                );
            }
            _ => {}
        }
    }
    let f = &plan.free;
    let mut free = Vec::new();
    for (k, v) in f.hotplug_pcie_ports.iter() {
        free.push(format!("{k}: {v} hotplug PCIe port(s)"));
    }
    for (k, v) in f.hotplug_pci_slots.iter() {
        free.push(format!("{k}: {v} hotplug PCI slot(s)"));
    }
    free.push(format!("{} USB port(s)", f.usb_ports));
    free.push(format!("{} bus number(s)", f.bus_numbers));
    let _ = writeln!(out, "free: {}", free.join(", "));
    out
}

fn bus(
    plan: &Plan,
    cat: &Catalog,
    children: &BTreeMap<u32, BTreeMap<(u8, u8), Node>>,
    index: u32,
    prefix: &str,
    out: &mut String,
) {
    let Some(kids) = children.get(&index) else {
        return;
    };
    let n = kids.len();
    for (k, ((slot, func), node)) in kids.iter().enumerate() {
        let last = k + 1 == n;
        let branch = if last { "\\-" } else { "+-" };
        let label = match node {
            Node::Builtin(what) => what.to_string(),
            Node::Dev(i) => {
                let d = &plan.devices[*i];
                let mut s = format!("{} {}", d.id, d.kind);
                if d.hotplug == Some(true) {
                    s.push_str(" [hotplug]");
                }
                if let Some(nn) = d.numa_node {
                    s.push_str(&format!(" [node {nn}]"));
                }
                s
            }
            Node::Ctl(i) => {
                let c = &plan.controllers[*i];
                let mut s = format!("{} {}", c.id, c.model);
                let mut tags = Vec::new();
                if let Some(nn) = c.numa_node {
                    tags.push(format!("node {nn}"));
                }
                if let Some(b) = c.bus_nr {
                    tags.push(format!("bus_nr {b}"));
                }
                if c.hotplug == Some(false) {
                    tags.push("hotplug off".into());
                }
                if c.builtin == Some(true) {
                    tags.push("builtin".into());
                }
                let is_bus = cat.pci.contains_key(&c.model);
                if is_bus && !children.contains_key(&c.index) {
                    let hp = cat.pci[&c.model].bus.hotplug && c.hotplug != Some(false);
                    tags.push(if hp {
                        "empty, hotplug".into()
                    } else {
                        "empty".into()
                    });
                }
                if !tags.is_empty() {
                    s.push_str(&format!(" [{}]", tags.join(", ")));
                }
                s
            }
        };
        let _ = writeln!(out, "{prefix}{branch}{slot:02x}.{func} {label}");
        if let Node::Ctl(i) = node {
            let c = &plan.controllers[*i];
            if cat.pci.contains_key(&c.model) {
                let sub = format!("{prefix}{}", if last { "   " } else { "|  " });
                bus(plan, cat, children, c.index, &sub, out);
            }
        }
    }
}
