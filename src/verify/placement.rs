//! The placement constraints, checked on the bus tree the plan describes: `placement:
//! root` devices on bus 0; the devices of an `apart` set each below a different link
//! (the controller plugged into a root bus — the machine's or a NUMA expander's — above
//! it, or none when the device sits on a root bus itself); the devices of a `together`
//! set below one common controller whose bus has several slots (a switch, a bridge or an
//! expander), the root bus excepted.

use super::{Rule, Subject, World};
use crate::error::Result;
use crate::spec::Spec;
use crate::topology::Address;

impl World<'_> {
    /// Bus `index` and the buses above it, up to and including bus 0 (nearest first).
    fn path_up(&self, index: u32) -> Vec<u32> {
        let mut out = vec![index];
        let mut cur = index;
        while let Some(p) = self.parent(cur) {
            if out.contains(&p) {
                break;
            }
            out.push(p);
            cur = p;
        }
        out
    }
    /// A root bus: bus 0, or a NUMA expander's bus.
    fn is_root_bus(&self, index: u32) -> bool {
        index == 0 || self.bus(index).is_some_and(|(_, m)| m.numa)
    }
    /// The link of a device on bus `index`: the controller plugged into a root bus above
    /// it, None when the bus is a root bus itself.
    fn link_of(&self, index: u32) -> Option<u32> {
        self.path_up(index)
            .into_iter()
            .take_while(|&b| !self.is_root_bus(b))
            .last()
    }
}

pub(super) fn check(w: &mut World, spec: &Spec) -> Result<()> {
    let c = crate::spec::placement::read(spec)?;
    let bus = |i: usize| match &spec.devices[i].address {
        Some(Address::Pci(a)) => Some(a.bus),
        _ => None,
    };
    for &i in &c.root {
        let id = &spec.devices[i].id;
        if let Some(b) = bus(i).filter(|&b| b != 0) {
            let msg = format!(
                "{} has placement: root but sits on bus {b}, not on the root bus",
                w.device(id)
            );
            w.bad(Rule::RootPlacement, Subject::device(id), msg);
        }
    }
    for (s, set) in c.apart.iter().enumerate() {
        let mut seen: Vec<(u32, usize)> = Vec::new();
        for &i in set {
            let Some(link) = bus(i).and_then(|b| w.link_of(b)) else {
                continue;
            };
            if let Some(&(_, o)) = seen.iter().find(|(l, _)| *l == link) {
                let (a, b) = (&spec.devices[o].id, &spec.devices[i].id);
                let msg = format!(
                    "apart[{s}]: {} and {} share the upstream link of bus {link}",
                    w.device(a),
                    w.device(b)
                );
                w.bad(Rule::Apart, Subject::device(b), msg);
            }
            seen.push((link, i));
        }
    }
    for comp in &c.together {
        let paths: Vec<Vec<u32>> = comp
            .iter()
            .filter_map(|&i| bus(i).map(|b| w.path_up(b)))
            .collect();
        let Some(first) = paths.first() else { continue };
        let shared = first.iter().any(|&b| {
            b != 0
                && w.bus(b).is_some_and(|(_, m)| m.bus.slot_count() > 1)
                && paths.iter().all(|p| p.contains(&b))
        });
        if !shared {
            let ids: Vec<String> = comp
                .iter()
                .map(|&i| w.device(&spec.devices[i].id).to_string())
                .collect();
            let msg = format!(
                "together: {} are not below one switch, bridge or expander",
                ids.join(", ")
            );
            let subject = Subject::device(&spec.devices[comp[0]].id);
            w.bad(Rule::Together, subject, msg);
        }
    }
    Ok(())
}
