//! The placement constraints against the catalog and the pins: members must be PCI
//! devices, a root device must fit the root bus, pinned members must already agree with
//! their sets, and a together component whose devices are pinned keeps the switch or
//! bridge they share (its *anchor*): new members go below it.

use super::{Bus, Dev, Problem, SetInfo, What};
use crate::catalog::{Catalog, Family, MachineModel};
use crate::error::{Error, Result};
use crate::explanation::{Binding, Explanation};
use crate::spec::placement::Constraints;
use crate::spec::Spec;
use crate::vocab::ConnectKind;
use std::collections::BTreeMap;

/// Read the constraints and check them against the devices' kinds and the root bus.
pub(super) fn validate(
    spec: &Spec,
    cat: &Catalog,
    machine: &MachineModel,
    devs: &[Dev],
) -> Result<Constraints> {
    let c = crate::spec::placement::resolve(spec)?;
    let not_pci = |path: String, i: usize| {
        Error::input(
            path,
            format!(
                "`{}` is a {} device; placement constraints apply to PCI devices",
                spec.devices[i].id,
                super::family_name(devs[i].kind.family)
            ),
        )
    };
    let mut errors = Vec::new();
    for (name, lists) in [("apart", &spec.apart), ("together", &spec.together)] {
        for (s, ids) in lists.iter().enumerate() {
            for (k, id) in ids.iter().enumerate() {
                if let Some(i) = spec.devices.iter().position(|d| &d.id == id) {
                    if devs[i].kind.family != Family::Pci {
                        errors.push(not_pci(format!("{name}[{s}][{k}]"), i));
                    }
                }
            }
        }
    }
    for &i in &c.root {
        if devs[i].kind.family != Family::Pci {
            errors.push(not_pci(format!("devices[{i}].placement"), i));
        }
    }
    Error::collect(errors)?;
    let root = cat.pci_model(&machine.root);
    for &i in &c.root {
        let (d, dev) = (&spec.devices[i], &devs[i]);
        if !root.bus.accepts(ConnectKind::endpoint(dev.pcie)) {
            return Err(Explanation::new(
                Binding::Contradiction,
                format!(
                    "device `{}`: devices[{i}].placement: root asks for the root bus `{}`, which \
                     takes no {} device (kind `{}`{})",
                    d.id,
                    machine.root_bus_name,
                    if dev.pcie { "PCIe" } else { "conventional PCI" },
                    d.kind,
                    if d.bus.is_some() {
                        ", devices[].bus"
                    } else {
                        ""
                    }
                ),
                "drop placement: root, or use a kind (or bus:) the root bus takes",
            )
            .devices([d.id.clone()])
            .into());
        }
        if dev.hotplug && !root.bus.hotplug {
            return Err(Explanation::new(
                Binding::Contradiction,
                format!(
                    "device `{}`: devices[{i}].placement: root asks for the root bus `{}`, but \
                     the device needs hotplug and the root bus has no hotpluggable slot",
                    d.id, machine.root_bus_name
                ),
                "drop placement: root or hotplug: true",
            )
            .devices([d.id.clone()])
            .into());
        }
    }
    Ok(c)
}

/// A together component outside the NUMA nodes, below `anchor` (None: one is added).
fn component(anchor: Option<u32>) -> SetInfo {
    SetInfo {
        anchor,
        zone: None,
        private: false,
    }
}

/// Apart units that neither a root bus nor a lane can take (a conventional PCI device on
/// a PCIe machine: root ports take PCIe only; a hotplug device of a node whose expander
/// bus has no hotplug) get a private bridge: a set of their own whose entry plugs into a
/// root bus or a lane, so their link is still theirs alone.
pub(super) fn private_sets(p: &mut Problem, cat: &Catalog) {
    let mut next = p.constraints.together.len();
    for ui in 0..p.units.len() {
        let u = &p.units[ui];
        if !u.apart || u.set.is_some() || u.root || !matches!(u.what, What::Devices(_)) {
            continue;
        }
        let Some(connect) = u.connect else { continue };
        let takes = |model: &str| {
            let m = cat.pci_model(model);
            m.bus.accepts(connect) && (!u.hotplug || m.bus.hotplug)
        };
        let root_bus = match u.zone {
            None => {
                let root = cat.pci_model(&p.machine.root);
                takes(&p.machine.root) && (!root.bus.express || p.endpoints_on_pcie_root)
            }
            Some(_) => p.machine.grow.numa_expander.as_deref().is_some_and(takes),
        };
        let lane = p
            .machine
            .grow
            .pcie_port
            .as_deref()
            .is_some_and(|m| cat.pci_model(m).bus.slot_count() == 1 && takes(m));
        if root_bus || lane {
            continue;
        }
        p.sets.insert(
            next,
            SetInfo {
                anchor: None,
                zone: u.zone,
                private: true,
            },
        );
        p.units[ui].set = Some(next);
        next += 1;
    }
}

/// The bus tree of the existing buses, by index.
struct Tree<'a> {
    buses: &'a [Bus],
    cat: &'a Catalog,
}

impl Tree<'_> {
    fn bus(&self, index: u32) -> Option<&Bus> {
        self.buses.iter().find(|b| b.index == index)
    }
    /// A root bus: the machine's, or a NUMA expander's.
    fn root_like(&self, index: u32) -> bool {
        self.bus(index)
            .is_none_or(|b| b.index == 0 || self.cat.pci_model(&b.model).numa)
    }
    /// The bus and its ancestors up to (not including) a root bus, nearest first.
    fn chain(&self, index: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = index;
        while !self.root_like(cur) && !out.contains(&cur) {
            out.push(cur);
            match self.bus(cur).and_then(|b| b.address) {
                Some(a) => cur = a.bus,
                None => break,
            }
        }
        out
    }
    /// The upstream link of a device on bus `index`: the controller plugged into a root
    /// bus above it (None: the device sits on a root bus, a link of its own).
    fn link(&self, index: u32) -> Option<u32> {
        self.chain(index).last().copied()
    }
    fn multi_slot(&self, index: u32) -> bool {
        self.bus(index)
            .is_some_and(|b| self.cat.pci_model(&b.model).bus.slot_count() > 1)
    }
}

fn pci_bus(p: &Problem, d: usize) -> Option<u32> {
    p.pinned.get(&d).map(|a| a.bus)
}

/// Check the pinned members of every constraint and find the anchors of the together
/// components outside NUMA nodes (marking the buses below each with its component).
/// Returns the components that need a switch or bridge: component → its anchor bus.
pub(super) fn anchors(p: &mut Problem, cat: &Catalog) -> Result<BTreeMap<usize, SetInfo>> {
    let spec = p.spec;
    let buses = p.buses.clone();
    let c = &p.constraints;
    let tree = Tree { buses: &buses, cat };
    let id = |i: usize| spec.devices[i].id.clone();
    for &i in &c.root {
        if let Some(bus) = pci_bus(p, i).filter(|&b| b != 0) {
            return Err(Explanation::new(
                Binding::RootPlacement,
                format!(
                    "device `{}` has placement: root, but its address pins it to bus {bus}",
                    id(i)
                ),
                "pin it to bus 0 or drop placement: root",
            )
            .devices([id(i)])
            .into());
        }
    }
    for (s, set) in c.apart.iter().enumerate() {
        let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
        for &i in set {
            let Some(link) = pci_bus(p, i).and_then(|b| tree.link(b)) else {
                continue;
            };
            if let Some(&other) = seen.get(&link) {
                return Err(Explanation::new(
                    Binding::Apart,
                    format!(
                        "apart[{s}]: `{}` and `{}` are pinned below the same link (controller \
                         index {link} on the root bus)",
                        id(other),
                        id(i)
                    ),
                    "pin one of them below another root port, or take it out of the set",
                )
                .devices([id(other), id(i)])
                .into());
            }
            seen.insert(link, i);
        }
    }
    let mut sets = BTreeMap::new();
    let mut marks: Vec<(u32, usize)> = Vec::new();
    for (j, comp) in c.together.iter().enumerate() {
        if p.devs[comp[0]].zone.is_some() {
            // Below the node's expander already.
            continue;
        }
        let pinned: Vec<(usize, u32)> = comp
            .iter()
            .filter_map(|&i| pci_bus(p, i).map(|b| (i, b)))
            .collect();
        let Some(&(first, bus)) = pinned.first() else {
            sets.insert(j, component(None));
            continue;
        };
        // The shallowest switch or bridge above the first pinned member that is above
        // every other one too.
        let anchor = tree.chain(bus).into_iter().rev().find(|&a| {
            tree.multi_slot(a) && pinned.iter().all(|&(_, b)| tree.chain(b).contains(&a))
        });
        let Some(anchor) = anchor else {
            let other = pinned.iter().map(|&(i, _)| i).find(|&i| i != first);
            let ids: Vec<String> = std::iter::once(first).chain(other).map(id).collect();
            let new: Vec<String> = comp
                .iter()
                .filter(|&&i| pci_bus(p, i).is_none())
                .map(|&i| id(i))
                .collect();
            return Err(Explanation::new(
                Binding::Together,
                format!(
                    "together: `{}` {} kept where no switch or bridge is above {}{}",
                    ids.join("` and `"),
                    if ids.len() == 1 { "is" } else { "are" },
                    if ids.len() == 1 { "it" } else { "them all" },
                    if new.is_empty() {
                        String::new()
                    } else {
                        format!(", so `{}` cannot sit below one with it", new.join("`, `"))
                    }
                ),
                "pin the set's devices below one switch or bridge (or unpin them and plan \
                 afresh), or take the device out of the together set",
            )
            .devices(ids)
            .into());
        };
        sets.insert(j, component(Some(anchor)));
        marks.push((anchor, j));
    }
    // An apart member placed below an anchor must not share it with a pinned one.
    for (s, set) in c.apart.iter().enumerate() {
        for &i in set {
            let Some(SetInfo {
                anchor: Some(anchor),
                ..
            }) = c.together_of(i).and_then(|j| sets.get(&j))
            else {
                continue;
            };
            if pci_bus(p, i).is_some() {
                continue;
            }
            let link = tree.link(*anchor);
            if let Some(&o) = set
                .iter()
                .find(|&&o| o != i && pci_bus(p, o).is_some_and(|b| tree.link(b) == link))
            {
                return Err(Explanation::new(
                    Binding::Apart,
                    format!(
                        "apart[{s}]: `{}` must go below the switch or bridge of its together set, \
                         which shares its link with `{}`",
                        id(i),
                        id(o)
                    ),
                    "take one of them out of the apart set",
                )
                .devices([id(i), id(o)])
                .into());
            }
        }
    }
    // Every bus below an anchor is its component's.
    let mut below: Vec<(usize, usize)> = Vec::new();
    for &(anchor, j) in &marks {
        for (k, b) in p.buses.iter().enumerate() {
            if b.index == anchor || tree.chain(b.index).contains(&anchor) {
                below.push((k, j));
            }
        }
    }
    for (k, j) in below {
        p.buses[k].set = Some(j);
    }
    Ok(sets)
}
