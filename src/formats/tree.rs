//! A tree view of the topology, like `lspci -tv`: the bus hierarchy with NUMA nodes,
//! hotplug settings and empty hotpluggable slots visible, and USB/drive devices below
//! their controllers.

use super::view::{self, Kind, View};
use crate::catalog::Catalog;
use crate::topology::{Address, Plan};
use std::fmt::Write;

/// Render the plan as a tree. Each bus shows the guest bus number the firmware gives it,
/// as `lspci -tv` does: `-[01]` after a port or bridge (`-[01-03]` with buses below it),
/// `-[0000:fd]` for a root bus (the machine's, or an expander bus's).
pub fn render(plan: &Plan, cat: &Catalog) -> String {
    let mut out = String::new();
    let Some(v) = view::build(plan, cat) else {
        return out;
    };
    let root = &v.nodes[0];
    let _ = writeln!(
        out,
        "{} -{} {}{}",
        v.title.rsplit(": ").next().unwrap_or(&v.title),
        root.buses,
        root.name(),
        tags(&v, 0)
    );
    bus(&v, 0, "", &mut out);
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
    let _ = writeln!(out, "free: {}", v.free.join(", "));
    out
}

/// ` [a, b]`: the node's tags, with the free hotplug slots of its bus.
fn tags(v: &View, i: usize) -> String {
    let n = &v.nodes[i];
    let mut t = n.tags.clone();
    for &k in &n.children {
        if v.nodes[k].kind == Kind::FreeSlots {
            t.push(v.nodes[k].id.clone());
        }
    }
    if t.is_empty() {
        String::new()
    } else {
        format!(" [{}]", t.join(", "))
    }
}

fn bus(v: &View, i: usize, prefix: &str, out: &mut String) {
    let kids: Vec<usize> = v.nodes[i]
        .children
        .iter()
        .copied()
        .filter(|&k| v.nodes[k].slot.is_some())
        .collect();
    for (k, &c) in kids.iter().enumerate() {
        let last = k + 1 == kids.len();
        let branch = if last { "\\-" } else { "+-" };
        let n = &v.nodes[c];
        let buses = if n.buses.is_empty() {
            String::new()
        } else {
            format!("-{}", n.buses)
        };
        let _ = writeln!(
            out,
            "{prefix}{branch}{}{buses} {}{}",
            n.at,
            n.name(),
            tags(v, c)
        );
        let sub = format!("{prefix}{}", if last { "   " } else { "|  " });
        bus(v, c, &sub, out);
    }
}
