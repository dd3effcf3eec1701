//! The placement constraints checked on a plan's bus tree, written here and not through
//! the library's verifier: `placement: root` devices on bus 0; the devices of an apart
//! set below different links (the controller plugged into a root bus — the machine's or
//! an expander's — or none for a device on a root bus); the devices of a together set
//! below one common controller with a bus of several slots (a switch, a bridge or an
//! expander), bus 0 excepted.

#![allow(dead_code)] // each test crate uses its own subset

use devaddr::{Address, Catalog, Plan, Spec};
use std::collections::{BTreeMap, BTreeSet};

/// The bus tree of a plan: each PCI bus index with its model and parent bus index.
pub struct Tree {
    parent: BTreeMap<u32, (String, Option<u32>)>,
}

impl Tree {
    pub fn of(plan: &Plan) -> Tree {
        let cat = Catalog::embedded();
        let parent = plan
            .controllers
            .iter()
            .filter(|c| cat.pci.contains_key(&c.model))
            .map(|c| {
                let up = match &c.address {
                    Some(Address::Pci(a)) => Some(a.bus),
                    _ => None,
                };
                (c.index, (c.model.clone(), up))
            })
            .collect();
        Tree { parent }
    }
    fn root_like(&self, b: u32) -> bool {
        let cat = Catalog::embedded();
        b == 0
            || self
                .parent
                .get(&b)
                .is_some_and(|(m, _)| cat.pci_model(m).numa)
    }
    /// Bus `b` and the buses above it, up to bus 0.
    pub fn up(&self, b: u32) -> Vec<u32> {
        let mut out = vec![b];
        let mut cur = b;
        while let Some((_, Some(p))) = self.parent.get(&cur) {
            if out.contains(p) {
                break;
            }
            out.push(*p);
            cur = *p;
        }
        out
    }
    /// The link of a device on bus `b` (None: it sits on a root bus).
    pub fn link(&self, b: u32) -> Option<u32> {
        self.up(b)
            .into_iter()
            .take_while(|&x| !self.root_like(x))
            .last()
    }
    /// The model of bus `b` (a PCI controller of the plan).
    pub fn model(&self, b: u32) -> &str {
        self.parent.get(&b).map_or("", |(m, _)| m.as_str())
    }
    /// A bus of several slots other than bus 0: a switch, a bridge or an expander.
    pub fn multi_slot(&self, b: u32) -> bool {
        let cat = Catalog::embedded();
        b != 0
            && self
                .parent
                .get(&b)
                .is_some_and(|(m, _)| cat.pci_model(m).bus.slot_count() > 1)
    }
}

/// The PCI bus index of device `id` in `plan`.
pub fn bus_of(plan: &Plan, id: &str) -> u32 {
    let d = plan
        .devices
        .iter()
        .find(|d| d.id == id)
        .unwrap_or_else(|| panic!("{id} missing"));
    match &d.address {
        Some(Address::Pci(a)) => a.bus,
        other => panic!("{id}: not a PCI address: {other:?}"),
    }
}

/// Panic unless `plan` meets the constraints `spec` states.
pub fn holds(plan: &Plan, spec: &Spec) {
    let root: Vec<String> = spec
        .devices
        .iter()
        .filter(|d| d.placement.is_some())
        .map(|d| d.id.clone())
        .collect();
    holds_for(plan, &root, &spec.apart, &spec.together);
}

/// Panic unless `plan` has the devices of `root` on bus 0, every `apart` set below
/// different links and every `together` set below one common switch, bridge or expander.
pub fn holds_for(plan: &Plan, root: &[String], apart: &[Vec<String>], together: &[Vec<String>]) {
    let tree = Tree::of(plan);
    for id in root {
        assert_eq!(bus_of(plan, id), 0, "{id} has placement: root");
    }
    for set in apart {
        let mut links = BTreeSet::new();
        for id in set {
            if let Some(l) = tree.link(bus_of(plan, id)) {
                assert!(links.insert(l), "apart {set:?}: {id} shares link {l}");
            }
        }
    }
    for set in together {
        let paths: Vec<Vec<u32>> = set.iter().map(|id| tree.up(bus_of(plan, id))).collect();
        let common = paths[0]
            .iter()
            .any(|&b| tree.multi_slot(b) && paths.iter().all(|p| p.contains(&b)));
        assert!(
            common,
            "together {set:?}: no common switch, bridge or expander: {paths:?}"
        );
    }
}
