//! The addressed topology as one tree of things to show, shared by the pictures (tree,
//! dot, svg): the root bus, each controller, device and built-in function at its slot
//! and function, the guest bus numbers the firmware assigns (from
//! [`BusNumbering`](crate::topology::BusNumbering)), NUMA nodes, hotplug and the free
//! hotplug places. USB and drive devices hang below the controller they sit on.

use crate::catalog::{Catalog, ReserveKind};
use crate::topology::{Address, BusNumbering, Plan};
use crate::vocab::ControllerType;
use std::collections::BTreeMap;

/// What a node is; the pictures colour by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The machine's root bus or an expander bus (a root bus of its own).
    RootBus,
    /// A PCI controller providing a bus (port, bridge, switch port) or a USB/storage
    /// controller.
    Controller,
    /// An empty hotpluggable PCIe port: a free hotplug place.
    FreePort,
    /// Empty hotpluggable slots of a conventional PCI bus.
    FreeSlots,
    /// A device of the plan.
    Device,
    /// A function the machine provides itself (host bridge, LPC bridge).
    Builtin,
}

/// One thing to show.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Slot and function on its PCI bus.
    pub slot: Option<(u8, u8)>,
    /// Where it sits on its parent: `01.0` (PCI), `port 1` (USB), `0:0:0` (drive).
    pub at: String,
    /// Guest bus numbers it provides, lspci style: `[01]`, `[01-03]` (bridge with buses
    /// below), `[0000:fd]` (a root bus).
    pub buses: String,
    /// The plan id (`pci.3`, `net0`), or what a built-in function is.
    pub id: String,
    /// Model or kind (`pcie-root-port`, `virtio-net`); empty for built-ins.
    pub what: String,
    /// Notes: `node 1`, `bus_nr 253`, `hotplug`, `hotplug off`, `builtin`, `empty`.
    pub tags: Vec<String>,
    /// The NUMA node of an expander bus (the cluster it heads).
    pub numa: Option<u32>,
    pub children: Vec<usize>,
}

impl Node {
    /// `id what`, or just the id.
    pub fn name(&self) -> String {
        if self.what.is_empty() {
            self.id.clone()
        } else {
            format!("{} {}", self.id, self.what)
        }
    }
}

/// The topology to show: node 0 is the root bus.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// `q35 (x86_64)` plus the guest name.
    pub title: String,
    pub nodes: Vec<Node>,
    /// Devices whose address names no controller of the plan (shown apart).
    pub loose: Vec<usize>,
    /// The plan's free-capacity summary, one item per entry.
    pub free: Vec<String>,
    /// The NUMA cluster of each node.
    cluster: Vec<Option<u32>>,
}

fn hex_range(lo: u32, hi: u32) -> String {
    if hi > lo {
        format!("{lo:02x}-{hi:02x}")
    } else {
        format!("{lo:02x}")
    }
}

/// Build the view of `plan`; None when the catalog does not know the plan's machine.
pub(crate) fn build(plan: &Plan, cat: &Catalog) -> Option<View> {
    let machine = cat.machine(&plan.machine)?;
    let numbering = BusNumbering::of_controllers(&plan.controllers, cat);
    let mut nodes: Vec<Node> = Vec::new();
    let new = |nodes: &mut Vec<Node>, n: Node| {
        nodes.push(n);
        nodes.len() - 1
    };
    let blank = |kind, id: String, what: String| Node {
        kind,
        slot: None,
        at: String::new(),
        buses: String::new(),
        id,
        what,
        tags: Vec::new(),
        numa: None,
        children: Vec::new(),
    };
    let root_id = plan
        .controllers
        .iter()
        .find(|c| c.index == 0 && cat.pci.contains_key(&c.model))
        .map_or(machine.root_bus_name.clone(), |c| c.id.clone());
    let mut root = blank(Kind::RootBus, root_id, machine.root.clone());
    root.buses = "[0000:00]".into();
    let root = new(&mut nodes, root);
    // PCI children of each bus index, by (slot, function).
    let mut on_bus: BTreeMap<u32, BTreeMap<(u8, u8), usize>> = BTreeMap::new();
    for b in &machine.builtin {
        for f in &b.functions {
            let mut n = blank(Kind::Builtin, b.what.clone(), String::new());
            n.slot = Some((b.slot.get(), f.get()));
            n.at = format!("{:02x}.{}", b.slot.get(), f.get());
            let i = new(&mut nodes, n);
            on_bus
                .entry(0)
                .or_default()
                .insert((b.slot.get(), f.get()), i);
        }
    }
    // The node of each PCI bus index, and of each USB/drive controller (type, index).
    let mut bus_node: BTreeMap<u32, usize> = BTreeMap::from([(0, root)]);
    let mut ctl_node: BTreeMap<(ControllerType, u32), usize> = BTreeMap::new();
    let mut loose = Vec::new();
    let mut unplaced = Vec::new();
    for c in &plan.controllers {
        let pci = cat.pci.get(&c.model);
        if pci.is_some() && c.index == 0 {
            continue;
        }
        let kind = if pci.is_some_and(|m| m.numa) {
            Kind::RootBus
        } else {
            Kind::Controller
        };
        let mut n = blank(kind, c.id.clone(), c.model.clone());
        if let Some(nn) = c.numa_node {
            n.tags.push(format!("node {nn}"));
            n.numa = pci.is_some_and(|m| m.numa).then_some(nn);
        }
        if let Some(b) = c.bus_nr {
            n.tags.push(format!("bus_nr {b}"));
        }
        if c.hotplug == Some(false) {
            n.tags.push("hotplug off".into());
        }
        if c.builtin == Some(true) {
            n.tags.push("builtin".into());
        }
        let i = new(&mut nodes, n);
        if pci.is_some() {
            bus_node.insert(c.index, i);
        } else if let Some(s) = cat.storage.get(&c.model) {
            ctl_node.insert((s.provides, c.index), i);
        }
        place(
            c.address.as_ref(),
            i,
            &mut nodes,
            &mut on_bus,
            &mut unplaced,
        );
    }
    let provided = [
        ControllerType::Usb,
        ControllerType::Sata,
        ControllerType::Scsi,
        ControllerType::Ide,
    ];
    let mut dev_ctl: BTreeMap<String, (ControllerType, u32)> = BTreeMap::new();
    for t in provided {
        for (idx, id) in crate::topology::storage_device_indexes(plan, cat, t) {
            dev_ctl.insert(id, (t, idx));
        }
    }
    let mut below_ctl: Vec<((ControllerType, u32), String, usize)> = Vec::new();
    for d in &plan.devices {
        let mut n = blank(Kind::Device, d.id.clone(), d.kind.clone());
        if d.hotplug == Some(true) {
            n.tags.push("hotplug".into());
        }
        if let Some(nn) = d.numa_node {
            n.tags.push(format!("node {nn}"));
        }
        let i = new(&mut nodes, n);
        if let Some(&key) = dev_ctl.get(&d.id) {
            ctl_node.insert(key, i);
        }
        match &d.address {
            Some(Address::Usb(u)) => {
                nodes[i].at = format!("port {}", u.port);
                below_ctl.push(((ControllerType::Usb, u.bus), u.port.clone(), i));
            }
            Some(Address::Drive(a)) => {
                let t = cat.kind(&d.kind).and_then(|k| k.drive_bus);
                nodes[i].at = format!("{}:{}:{}", a.bus, a.target, a.unit);
                match t {
                    Some(t) => below_ctl.push((
                        (t, a.controller),
                        format!("{:>3}:{:>3}:{:>3}", a.bus, a.target, a.unit),
                        i,
                    )),
                    None => loose.push(i),
                }
            }
            a => place(a.as_ref(), i, &mut nodes, &mut on_bus, &mut unplaced),
        }
    }
    // Attach PCI children, numbering the buses.
    for (&bus, kids) in &on_bus {
        let Some(&parent) = bus_node.get(&bus) else {
            loose.extend(kids.values());
            continue;
        };
        nodes[parent].children.extend(kids.values());
    }
    loose.extend(unplaced);
    // USB and drive devices below their controller, in port / unit order.
    below_ctl.sort_by_key(|a| (a.0, port_key(&a.1)));
    for (key, _, i) in below_ctl {
        match ctl_node.get(&key) {
            Some(&p) => nodes[p].children.push(i),
            None => loose.push(i),
        }
    }
    // Bus numbers, lspci style: a bridge shows its secondary (and the subordinate bus when
    // it has buses below); a root bus shows its domain and number.
    fn highest(nodes: &[Node], guest_of: &BTreeMap<usize, u32>, i: usize) -> Option<u32> {
        let own = guest_of.get(&i).copied();
        nodes[i]
            .children
            .iter()
            .filter(|&&c| nodes[c].kind != Kind::RootBus)
            .filter_map(|&c| highest(nodes, guest_of, c))
            .chain(own)
            .max()
    }
    let guest_of: BTreeMap<usize, u32> = bus_node
        .iter()
        .filter_map(|(idx, &n)| Some((n, *numbering.guest.get(idx)?)))
        .collect();
    for c in &plan.controllers {
        let (Some(m), Some(&n)) = (cat.pci.get(&c.model), bus_node.get(&c.index)) else {
            continue;
        };
        if c.index == 0 {
            continue;
        }
        let Some(&g) = guest_of.get(&n) else {
            continue;
        };
        let hi = highest(&nodes, &guest_of, n).unwrap_or(g);
        nodes[n].buses = if m.numa {
            let first = c.bus_nr.unwrap_or(g);
            if g > first {
                // The expander's own root bus, then the bridge its devices sit behind.
                format!("[0000:{first:02x}]-00.0-[{}]", hex_range(g, hi))
            } else {
                format!("[0000:{}]", hex_range(g, hi))
            }
        } else {
            format!("[{}]", hex_range(g, hi))
        };
        // Free hotplug places.
        let hotplug = m.bus.hotplug && c.hotplug != Some(false);
        let used = nodes[n]
            .children
            .iter()
            .filter(|&&k| nodes[k].slot.is_some())
            .count();
        if hotplug && used == 0 {
            nodes[n].tags.push("empty, hotplug".into());
        } else if used == 0 {
            nodes[n].tags.push("empty".into());
        }
    }
    // Free hotplug places of the machine's reserve kind: empty PCIe ports are drawn as
    // free ports; conventional buses get a node counting their empty slots.
    let reserve = machine.reserve_kind;
    let mut bus_models: Vec<(usize, &crate::catalog::PciModel, Option<bool>)> = Vec::new();
    for c in &plan.controllers {
        if let (Some(m), Some(&n)) = (cat.pci.get(&c.model), bus_node.get(&c.index)) {
            bus_models.push((n, m, c.hotplug));
        }
    }
    if !plan.controllers.iter().any(|c| c.index == 0) {
        if let Some(m) = cat.pci.get(&machine.root) {
            bus_models.push((root, m, None));
        }
    }
    for (n, m, hp) in bus_models {
        if !m.bus.hotplug || hp == Some(false) {
            continue;
        }
        let slots_used: std::collections::BTreeSet<u8> = nodes[n]
            .children
            .iter()
            .filter_map(|&k| Some(nodes[k].slot?.0))
            .collect();
        let empty = (m.bus.slots[0]..=m.bus.slots[1])
            .filter(|s| !slots_used.contains(s))
            .count() as u32;
        match reserve {
            ReserveKind::PciePort if m.bus.express && m.bus.slot_count() == 1 && empty == 1 => {
                nodes[n].kind = Kind::FreePort;
            }
            ReserveKind::PciSlot if !m.bus.express && empty > 0 => {
                let f = blank(
                    Kind::FreeSlots,
                    format!(
                        "{empty} free hotplug slot{}",
                        if empty == 1 { "" } else { "s" }
                    ),
                    String::new(),
                );
                let i = new(&mut nodes, f);
                nodes[n].children.push(i);
            }
            _ => {}
        }
    }
    let mut free = Vec::new();
    for (k, v) in &plan.free.hotplug_pcie_ports {
        free.push(format!("{k}: {v} hotplug PCIe port(s)"));
    }
    for (k, v) in &plan.free.hotplug_pci_slots {
        free.push(format!("{k}: {v} hotplug PCI slot(s)"));
    }
    free.push(format!("{} USB port(s)", plan.free.usb_ports));
    free.push(format!("{} bus number(s)", plan.free.bus_numbers));
    let mut title = format!("{} ({})", plan.machine, machine.arch);
    if let Some(name) = &plan.name {
        title = format!("{name}: {title}");
    }
    let mut v = View {
        title,
        nodes,
        loose,
        free,
        cluster: Vec::new(),
    };
    v.cluster = vec![None; v.nodes.len()];
    for (node, members) in v.clusters() {
        for m in members {
            v.cluster[m] = Some(node);
        }
    }
    Some(v)
}

/// Put node `i` on its PCI bus, or among the unplaced.
fn place(
    a: Option<&Address>,
    i: usize,
    nodes: &mut [Node],
    on_bus: &mut BTreeMap<u32, BTreeMap<(u8, u8), usize>>,
    unplaced: &mut Vec<usize>,
) {
    match a {
        Some(Address::Pci(a)) => {
            nodes[i].slot = Some((a.slot, a.function));
            nodes[i].at = format!("{:02x}.{}", a.slot, a.function);
            on_bus
                .entry(a.bus)
                .or_default()
                .insert((a.slot, a.function), i);
        }
        _ => unplaced.push(i),
    }
}

/// USB ports (`1`, `1.2`) in numeric order.
fn port_key(p: &str) -> Vec<u32> {
    p.split(['.', ':'])
        .map(|s| s.trim().parse().unwrap_or(0))
        .collect()
}

impl Kind {
    /// Fill and stroke colours of the kind (both pictures use them).
    pub fn colours(self) -> (&'static str, &'static str) {
        match self {
            Kind::RootBus => ("#9ecae1", "#2b6ca3"),
            Kind::Controller => ("#deebf7", "#4a90c8"),
            Kind::FreePort | Kind::FreeSlots => ("#ffffff", "#e6550d"),
            Kind::Device => ("#e5f5e0", "#31a354"),
            Kind::Builtin => ("#f0f0f0", "#9e9e9e"),
        }
    }
    /// What the legend calls it.
    pub fn legend(self) -> &'static str {
        match self {
            Kind::RootBus => "root / expander bus",
            Kind::Controller => "port, bridge, controller",
            Kind::FreePort | Kind::FreeSlots => "free hotplug port / slots",
            Kind::Device => "device",
            Kind::Builtin => "built into the machine",
        }
    }
    /// The kinds the legend lists, in its order.
    pub const LEGEND: [Kind; 5] = [
        Kind::RootBus,
        Kind::Controller,
        Kind::Device,
        Kind::FreePort,
        Kind::Builtin,
    ];
}

/// Background and border of NUMA node `n`'s cluster.
pub(crate) fn numa_colours(n: u32) -> (&'static str, &'static str) {
    const PALETTE: [(&str, &str); 6] = [
        ("#fff4cc", "#c9a227"),
        ("#fbe3ef", "#c2528b"),
        ("#e6e1f5", "#7b68b5"),
        ("#dcf1f3", "#3b9aa5"),
        ("#f6e7d8", "#b9783c"),
        ("#e3f0d8", "#6a9a3b"),
    ];
    PALETTE[n as usize % PALETTE.len()]
}

impl View {
    /// The nodes below `i` (itself included), depth-first in child order.
    pub fn subtree(&self, i: usize) -> Vec<usize> {
        let mut out = vec![i];
        let mut k = 0;
        while k < out.len() {
            let n = out[k];
            out.splice(k + 1..k + 1, self.nodes[n].children.iter().copied());
            k += 1;
        }
        out
    }
    /// The NUMA clusters: each expander bus with a node and the nodes below it.
    pub fn clusters(&self) -> Vec<(u32, Vec<usize>)> {
        self.subtree(0)
            .into_iter()
            .filter_map(|i| Some((self.nodes[i].numa?, self.subtree(i))))
            .collect()
    }
    /// The NUMA node whose cluster holds node `i`.
    pub fn cluster_of(&self, i: usize) -> Option<u32> {
        self.cluster.get(i).copied().flatten()
    }
    /// Counts for a caption: devices, controllers.
    pub fn counts(&self) -> (usize, usize) {
        let count = |k: &[Kind]| self.nodes.iter().filter(|n| k.contains(&n.kind)).count();
        (
            count(&[Kind::Device]),
            count(&[Kind::Controller, Kind::FreePort, Kind::RootBus]),
        )
    }
}
