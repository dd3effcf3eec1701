//! formulate → solve → decode, and the explanation of infeasible requests.

pub mod backend;
pub(crate) mod decode;
pub(crate) mod formulate;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::normalize::Problem;
use backend::{Backend, Outcome};
use decode::Placement;
use formulate::{formulate, Relax};

pub(crate) fn solve_with(p: &Problem, cat: &Catalog, backend: &dyn Backend) -> Result<Placement> {
    let f = formulate(p, cat, Relax::default());
    match run(backend, &f.ilp)? {
        Some(values) => Ok(decode::decode(p, cat, &f, &values)),
        None => Err(explain(p, cat, backend)),
    }
}

/// Which units with a previous slot keep it: the program with the objective "fewest
/// moves" (every other requirement still holds). Returns the kept units.
pub(crate) fn keep_set(
    p: &Problem,
    cat: &Catalog,
    backend: &dyn Backend,
) -> Result<std::collections::BTreeSet<usize>> {
    let mut f = formulate(p, cat, Relax::default());
    f.ilp.objective = f.keep.values().map(|&v| (v, -1.0)).collect();
    match run(backend, &f.ilp)? {
        Some(values) => Ok(f
            .keep
            .iter()
            .filter(|(_, &v)| values[v] > 0)
            .map(|(&u, _)| u)
            .collect()),
        None => Err(explain(p, cat, backend)),
    }
}

/// How many more units of the problem's capacity question fit: the program with the
/// objective "as many as possible".
pub(crate) fn max_extra(p: &Problem, cat: &Catalog, backend: &dyn Backend) -> Result<u32> {
    let mut f = formulate(p, cat, Relax::default());
    let Some(m) = f.extra else { return Ok(0) };
    f.ilp.objective = vec![(m, -1.0)];
    match run(backend, &f.ilp)? {
        Some(values) => Ok(values[m].max(0) as u32),
        None => Err(explain(p, cat, backend)),
    }
}

fn run(backend: &dyn Backend, ilp: &backend::Ilp) -> Result<Option<Vec<i64>>> {
    match backend.solve(ilp) {
        Ok(Outcome::Optimal(v)) => Ok(Some(v)),
        Ok(Outcome::Infeasible) => Ok(None),
        Err(e) => Err(Error::Infeasible {
            requirement: format!("the solver failed: {e}"),
            fix: "report this spec as a bug".into(),
        }),
    }
}

/// Find the requirement that makes the program infeasible by dropping one at a time.
fn explain(p: &Problem, cat: &Catalog, backend: &dyn Backend) -> Error {
    let limit = p.machine.limits.bus_numbers;
    let try_relax = |relax: Relax| {
        let f = formulate(p, cat, relax);
        run(backend, &f.ilp).ok().flatten().map(|v| (f, v))
    };
    let bus_need = |f: &formulate::Formulation, v: &[i64]| -> u32 {
        let added: u32 =
            f.n.iter()
                .map(|(&t, &var)| f.buses[t].bus_numbers * v[var].max(0) as u32)
                .sum();
        f.existing_bus_numbers + added
    };
    let bus_error = |need: u32| Error::Infeasible {
        requirement: format!(
            "needs {need} bus numbers, a PCI domain has {limit} (every root port, bridge, \
             switch port and expander bus uses one; a pxb uses two)"
        ),
        fix: format!(
            "remove {} bus number(s) of demand: fewer devices that each need their own port, \
             `multifunction: pack` to share ports among devices that need no hotplug, or a \
             smaller hotplug_reserve",
            need.saturating_sub(limit)
        ),
    };
    // The bus-number need with the root bus unlimited is a lower bound: report it first.
    let unlimited_root = try_relax(Relax {
        bus_numbers: true,
        root_slots: true,
        ..Default::default()
    });
    if let Some((f, v)) = &unlimited_root {
        let need = bus_need(f, v);
        if need > limit {
            return bus_error(need);
        }
    }
    if let Some((f, v)) = try_relax(Relax {
        bus_numbers: true,
        ..Default::default()
    }) {
        let need = bus_need(&f, &v);
        if need <= limit {
            return Error::Infeasible {
                requirement: "the bus numbers between the expander buses are used up: each \
                              NUMA expander keeps its bus_nr, and the buses below it must fit \
                              between it and the next expander's (the root hierarchy below \
                              the lowest)"
                    .into(),
                fix: "plan the guest afresh (new bus_nr ranges; guest-visible bus numbers \
                      below the expanders change), or pack devices that need no hotplug \
                      (`multifunction: pack`)"
                    .into(),
            };
        }
        return bus_error(need);
    }
    if unlimited_root.is_some() {
        return Error::Infeasible {
            requirement: format!(
                "the root bus {} has too few free slots for the ports and expanders needed",
                p.machine.root_bus_name
            ),
            fix: "unpin devices from the root bus, or pack devices that need no hotplug \
                  (`multifunction: pack`)"
                .into(),
        };
    }
    if let Some((f, v)) = try_relax(Relax {
        io_windows: true,
        ..Default::default()
    }) {
        let _ = (&f, &v);
        return Error::Infeasible {
            requirement: format!(
                "more than {} bridges/ports would hold devices with I/O BARs, and the x86 \
                 firmware has I/O space for only that many 4 KiB windows",
                p.machine.limits.io_windows.unwrap_or(0)
            ),
            fix: "use virtio devices (no I/O BAR on PCIe ports) instead of e1000e/rtl8139/\
                  e1000, or put conventional-PCI devices behind a shared bridge"
                .into(),
        };
    }
    if try_relax(Relax {
        reserve: true,
        ..Default::default()
    })
    .is_some()
    {
        return Error::Infeasible {
            requirement: format!(
                "the hotplug reserve (total {}, per NUMA node {}) does not fit",
                p.eff.hotplug_reserve, p.eff.hotplug_reserve_per_node
            ),
            fix: "lower policy.hotplug_reserve / hotplug_reserve_per_node, or free bus \
                  numbers by packing devices that need no hotplug"
                .into(),
        };
    }
    if try_relax(Relax {
        bus_numbers: true,
        io_windows: true,
        reserve: true,
        ..Default::default()
    })
    .is_some()
    {
        return Error::Infeasible {
            requirement: "bus numbers, I/O windows and the hotplug reserve together do \
                          not fit"
                .into(),
            fix: "reduce devices or the hotplug reserve".into(),
        };
    }
    // Nothing but the structure itself: some unit has no bus that could ever take it.
    Error::Infeasible {
        requirement: "some devices have no compatible bus: with the pinned controllers and \
                      the machine's growth models no slot accepts them (check hotplug, \
                      NUMA node and bus type)"
            .into(),
        fix: "unpin controllers or relax the device's hotplug/bus/numa_node requirements".into(),
    }
}
