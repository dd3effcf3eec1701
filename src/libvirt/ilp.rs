//! The integer program of the libvirt policy: how many controllers libvirt's first pass
//! adds. Unaddressed devices form classes by connect flags; existing buses (after the
//! configuration's addresses and the chipset's fixed slots are reserved) offer their free
//! slots; new pcie-root-ports, pcie-to-pci-bridge pairs (the bridge with a root port of its
//! own) and pci-bridges offer theirs and need slots themselves (root ports eight to a slot
//! on the root bus, pci-bridges on a bus that takes bridges). libvirt's rules are
//! constraints: conventional PCI grows a pcie-to-pci-bridge only while no bus takes a
//! pci-bridge, and on q35 one spare root port follows any growth. The objective is
//! libvirt's: fewest controllers. The counts bound the first pass's growth; libvirt's
//! placement order (the replay) decides which device goes where and the new indexes.

use super::pci::{flag, AddrSet};
use crate::backend::{Ilp, Outcome, Status};
use crate::solve::Solver;
use std::collections::BTreeMap;

/// Controllers the first pass may add, by model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Growth {
    pub root_ports: usize,
    pub pcie_pci_bridges: usize,
    pub pci_bridges: usize,
}

impl Growth {
    /// As a budget keyed by model.
    pub fn budget(&self) -> BTreeMap<String, usize> {
        BTreeMap::from([
            ("pcie-root-port".to_string(), self.root_ports),
            ("pcie-to-pci-bridge".to_string(), self.pcie_pci_bridges),
            ("pci-bridge".to_string(), self.pci_bridges),
        ])
    }
}

/// libvirt's spare root port on q35: not applicable, owed only if anything is added, or
/// owed already (buses were added before this point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparePort {
    None,
    IfGrown,
    Owed,
}

const SPARE_FLAGS: u32 = flag::PCIE | flag::AUTOASSIGN;

/// Upper bound of every count variable and the big-M of the "only while" rows: far more
/// controllers than a domain can hold (a PCI domain has 256 bus numbers).
const BIG_M: f64 = 4096.0;

/// Objective weight of each added controller: libvirt minimises their plain count.
const CONTROLLER_WEIGHT: f64 = 1.0;

/// Root ports share a slot as its functions.
const PORTS_PER_SLOT: f64 = crate::vocab::pci::FUNCTIONS_PER_SLOT as f64;

/// Solve for the growth on `solver` (the backend and work limit of the run's
/// [`crate::Options`]). `demands`: connect flags → how many devices still need a slot.
/// `None` when no growth satisfies them, or none is proven fewest within the work limit
/// (libvirt's own growth then stands, and its error comes from the replay).
pub fn growth(
    set: &AddrSet,
    demands: &BTreeMap<u32, usize>,
    spare: SparePort,
    solver: Solver<'_>,
) -> Option<Growth> {
    let mut demands = demands.clone();
    if spare != SparePort::None {
        demands.entry(SPARE_FLAGS).or_insert(0);
    }
    let mut ilp = Ilp::default();
    let big = BIG_M;
    let n_rp = ilp.var("root ports", 0.0, big);
    let bridge_host = (0..set.buses.len()).any(|b| set.takes(b, flag::PCI_BRIDGE));
    let n_pp = ilp.var(
        "pcie-to-pci pairs",
        0.0,
        if set.pcie_root() && !bridge_host {
            1.0
        } else {
            0.0
        },
    );
    let n_pb = ilp.var("pci-bridges", 0.0, big);
    let templates = [
        ("pcie-root-port", n_rp),
        ("pcie-to-pci-bridge", n_pp),
        ("pci-bridge", n_pb),
    ];
    // pci-bridges need somewhere to hang: a bus that takes them, or the new pair.
    if !bridge_host {
        ilp.row(
            "pci-bridges need a host",
            vec![(n_pb, 1.0), (n_pp, -big)],
            f64::NEG_INFINITY,
            0.0,
        );
    }
    // Slots of existing buses used, per bus; root-port functions per aggregating bus.
    let nb = set.buses.len();
    let mut whole: Vec<Vec<(usize, f64)>> = vec![Vec::new(); nb];
    let mut template_use: Vec<Vec<(usize, f64)>> = vec![Vec::new(); templates.len()];
    // Aggregating demand (root ports from the configuration) joins the new root ports.
    let mut ports_needed: Vec<(usize, f64)> = vec![(n_rp, 1.0), (n_pp, 1.0)];
    let mut ports_const = 0.0;
    // The spare port's demand: a variable (owed only if anything is added) or a constant.
    let spare: Option<(Option<usize>, f64)> = match spare {
        SparePort::IfGrown => {
            let s = ilp.var("spare root port", 0.0, 1.0);
            let grown = vec![(n_rp, 1.0), (n_pp, 1.0), (n_pb, 1.0)];
            let mut row = grown.clone();
            row.push((s, -big));
            ilp.row("spare if grown", row, f64::NEG_INFINITY, 0.0);
            let mut row: Vec<(usize, f64)> = grown.iter().map(|&(v, c)| (v, -c)).collect();
            row.push((s, 1.0));
            ilp.row("spare only if grown", row, f64::NEG_INFINITY, 0.0);
            Some((Some(s), 0.0))
        }
        SparePort::Owed => Some((None, 1.0)),
        SparePort::None => None,
    };
    for (&flags, &count) in &demands {
        let mut terms: Vec<(usize, f64)> = Vec::new();
        let mut lo = count as f64;
        if flags == SPARE_FLAGS {
            match spare {
                Some((Some(s), _)) => terms.push((s, -1.0)),
                Some((None, c)) => lo += c,
                None => {}
            }
        }
        if flags & flag::AGGREGATE != 0 {
            ports_const += lo;
            continue;
        }
        for (b, w) in whole.iter_mut().enumerate() {
            if set.takes(b, flags) {
                let x = ilp.var(format!("x[{flags:#x},{b}]"), 0.0, big);
                w.push((x, 1.0));
                terms.push((x, 1.0));
            }
        }
        for (t, &(model, _)) in templates.iter().enumerate() {
            if set.takes_on_new(model, flags) {
                let y = ilp.var(format!("y[{flags:#x},{model}]"), 0.0, big);
                template_use[t].push((y, 1.0));
                terms.push((y, 1.0));
            }
        }
        ilp.row(format!("demand {flags:#x}"), terms, lo, lo);
    }
    // New pci-bridges need bridge slots: on existing buses, on the new pair's bridge, or
    // on other new pci-bridges (not all of them: one must hang from elsewhere).
    let pb_flags = flag::PCI_BRIDGE;
    let mut pb_terms: Vec<(usize, f64)> = vec![(n_pb, -1.0)];
    let mut pb_outside: Vec<(usize, f64)> = Vec::new();
    for (b, w) in whole.iter_mut().enumerate() {
        if set.takes(b, pb_flags) {
            let x = ilp.var(format!("pb on {b}"), 0.0, big);
            w.push((x, 1.0));
            pb_terms.push((x, 1.0));
            pb_outside.push((x, 1.0));
        }
    }
    for (t, &(model, _)) in templates.iter().enumerate() {
        if model != "pcie-root-port" && set.takes_on_new(model, pb_flags) {
            let y = ilp.var(format!("pb on {model}"), 0.0, big);
            template_use[t].push((y, 1.0));
            pb_terms.push((y, 1.0));
            if model != "pci-bridge" {
                pb_outside.push((y, 1.0));
            }
        }
    }
    ilp.row("place pci-bridges", pb_terms, 0.0, 0.0);
    let h = ilp.var("any pci-bridge", 0.0, 1.0);
    ilp.row(
        "any pci-bridge",
        vec![(n_pb, 1.0), (h, -big)],
        f64::NEG_INFINITY,
        0.0,
    );
    let mut row = pb_outside;
    row.push((h, -1.0));
    ilp.row("a pci-bridge hangs from outside", row, 0.0, f64::INFINITY);
    // Root ports: eight functions to a slot on buses that take them.
    let mut port_terms: Vec<(usize, f64)> = Vec::new();
    for (b, w) in whole.iter_mut().enumerate() {
        if set.takes(b, flag::ROOT_PORT | flag::AGGREGATE) {
            let p = ilp.var(format!("ports on {b}"), 0.0, big);
            let slots = ilp.var(format!("port slots on {b}"), 0.0, big);
            ilp.row(
                format!("port functions on {b}"),
                vec![(p, 1.0), (slots, -PORTS_PER_SLOT)],
                f64::NEG_INFINITY,
                set.buses[b].aggregate_free() as f64,
            );
            w.push((slots, 1.0));
            port_terms.push((p, 1.0));
        }
    }
    let mut row = port_terms;
    row.extend(ports_needed.drain(..).map(|(v, c)| (v, -c)));
    ilp.row("place root ports", row, ports_const, ports_const);
    for (b, w) in whole.into_iter().enumerate() {
        if !w.is_empty() {
            ilp.row(
                format!("slots of bus {b}"),
                w,
                f64::NEG_INFINITY,
                set.buses[b].free_slots() as f64,
            );
        }
    }
    for (t, &(model, n)) in templates.iter().enumerate() {
        let mut row = std::mem::take(&mut template_use[t]);
        if row.is_empty() {
            continue;
        }
        row.push((n, -(set.slots_of_new(model) as f64)));
        ilp.row(format!("slots of new {model}"), row, f64::NEG_INFINITY, 0.0);
    }
    ilp.objective = vec![
        (n_rp, CONTROLLER_WEIGHT),
        (n_pp, CONTROLLER_WEIGHT),
        (n_pb, CONTROLLER_WEIGHT),
    ];
    match solver.backend.solve(&ilp, solver.limit, None) {
        Ok(Outcome::Solved {
            values: v,
            status: Status::Optimal,
        }) => Some(Growth {
            root_ports: v[n_rp].max(0) as usize,
            pcie_pci_bridges: v[n_pp].max(0) as usize,
            pci_bridges: v[n_pb].max(0) as usize,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::pci::Bus;
    use crate::libvirt::policy::Policy;

    fn q35() -> AddrSet<'static> {
        let p = Policy::get();
        let cat = crate::Catalog::embedded();
        let mut set = AddrSet::new(p, cat, true, true);
        set.buses.push(Bus::new(p, cat, "pcie-root", false));
        set
    }

    fn growth(set: &AddrSet, d: &BTreeMap<u32, usize>, spare: SparePort) -> Option<Growth> {
        super::growth(set, d, spare, crate::Options::default().solver())
    }

    const PCIE: u32 = flag::PCIE | flag::AUTOASSIGN;
    const PCI: u32 = flag::PCI | flag::AUTOASSIGN;

    #[test]
    fn pcie_endpoints_get_a_root_port_each_plus_the_spare() {
        let d = BTreeMap::from([(PCIE, 3)]);
        let g = growth(&q35(), &d, SparePort::IfGrown).unwrap();
        assert_eq!((g.root_ports, g.pcie_pci_bridges, g.pci_bridges), (4, 0, 0));
        // Nothing to place: nothing added, no spare owed.
        let g = growth(&q35(), &BTreeMap::new(), SparePort::IfGrown).unwrap();
        assert_eq!(g, Growth::default());
    }

    #[test]
    fn conventional_pci_grows_one_pair_then_pci_bridges() {
        let d = BTreeMap::from([(PCI, 40)]);
        let g = growth(&q35(), &d, SparePort::None).unwrap();
        // 31 slots on the pcie-to-pci-bridge; one holds a pci-bridge for the other 10.
        assert_eq!((g.root_ports, g.pcie_pci_bridges, g.pci_bridges), (0, 1, 1));
    }
}
