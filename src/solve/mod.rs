//! formulate → solve → decode, and the explanation of infeasible requests.

pub mod backend;
pub(crate) mod decode;
pub(crate) mod formulate;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::normalize::Problem;
use backend::{Backend, Ilp, Outcome, Status, WorkLimit};
use decode::Placement;
use formulate::{formulate, Relax};

/// The solver and its budget, as the stages pass them on.
#[derive(Clone, Copy)]
pub(crate) struct Solver<'a> {
    pub backend: &'a dyn Backend,
    pub limit: WorkLimit,
}

pub(crate) fn solve_with(p: &Problem, cat: &Catalog, s: Solver<'_>) -> Result<Placement> {
    let f = formulate(p, cat, Relax::default());
    match lexicographic(s, &f.ilp, &f.objectives)? {
        Some((values, status)) => {
            let mut placement = decode::decode(p, cat, &f, &values);
            placement.status = status;
            Ok(placement)
        }
        None => Err(explain(p, cat, s)),
    }
}

/// Which units with a previous slot keep it: the program with the objective "fewest
/// moves" (every other requirement still holds). Returns the kept units.
pub(crate) fn keep_set(
    p: &Problem,
    cat: &Catalog,
    s: Solver<'_>,
) -> Result<std::collections::BTreeSet<usize>> {
    let f = formulate(p, cat, Relax::default());
    let most_kept: Vec<(usize, f64)> = f.keep.values().map(|&v| (v, -1.0)).collect();
    match lexicographic(s, &f.ilp, &[most_kept])? {
        Some((values, _)) => Ok(f
            .keep
            .iter()
            .filter(|(_, &v)| values[v] > 0)
            .map(|(&u, _)| u)
            .collect()),
        None => Err(explain(p, cat, s)),
    }
}

/// How many more units of the problem's capacity question fit: the program with the
/// objective "as many as possible".
pub(crate) fn max_extra(p: &Problem, cat: &Catalog, s: Solver<'_>) -> Result<u32> {
    let f = formulate(p, cat, Relax::default());
    let Some(m) = f.extra else { return Ok(0) };
    match lexicographic(s, &f.ilp, &[vec![(m, -1.0)]])? {
        Some((values, _)) => Ok(values[m].max(0) as u32),
        None => Err(explain(p, cat, s)),
    }
}

/// Minimise the objectives one after another, each within the optimum of the ones
/// before it. `None` = infeasible (proven). The status is the first phase that stopped
/// at its work limit, with its gap; later phases keep what it found.
fn lexicographic(
    s: Solver<'_>,
    ilp: &Ilp,
    objectives: &[Vec<(usize, f64)>],
) -> Result<Option<(Vec<i64>, Status)>> {
    let mut program = ilp.clone();
    let mut best: Option<(Vec<i64>, Status)> = None;
    for (phase, objective) in objectives.iter().enumerate() {
        program.objective = objective.clone();
        let start = best.as_ref().map(|b| b.0.as_slice());
        let (values, status) = match s.backend.solve(&program, s.limit, start) {
            Ok(Outcome::Solved { values, status }) => (values, status),
            Ok(Outcome::Infeasible) if phase == 0 => return Ok(None),
            Ok(Outcome::LimitReached) if phase == 0 => return Err(limit_reached(s.limit)),
            // A later phase always has the earlier phase's assignment: keep it.
            Ok(_) => break,
            Err(e) => {
                return Err(Error::Infeasible {
                    requirement: format!("the solver failed: {e}"),
                    fix: "report this spec as a bug".into(),
                })
            }
        };
        // What this phase counted is settled first when searching the next phases.
        for &(v, _) in objective {
            program.vars[v].branch_first = true;
        }
        let reached = Ilp::value(objective, &values);
        program.row(
            format!("objective {phase} kept"),
            objective.clone(),
            f64::NEG_INFINITY,
            reached + 1e-6 * reached.abs().max(1.0),
        );
        let status = match best.as_ref().map(|b| b.1) {
            Some(earlier @ Status::Feasible { .. }) => earlier,
            _ => status,
        };
        best = Some((values, status));
    }
    Ok(best)
}

/// Share (1/n) of the work limit each relaxed program of an explanation gets.
const EXPLAIN_SHARE: u64 = 8;

fn limit_reached(limit: WorkLimit) -> Error {
    Error::Infeasible {
        requirement: format!(
            "the search reached its work limit ({}) before it found a plan or proved \
             that none exists",
            limit.0
        ),
        fix: format!(
            "raise the limit with --work-limit (e.g. --work-limit {}), or simplify the \
             spec (fewer NUMA nodes or a smaller hotplug reserve)",
            limit.0.saturating_mul(10)
        ),
    }
}

/// Find the requirement that makes the program infeasible by dropping one at a time.
fn explain(p: &Problem, cat: &Catalog, s: Solver<'_>) -> Error {
    let limit = p.machine.limits.bus_numbers;
    // Relaxations whose search ran out of work: feasibility unknown.
    let unknown = std::cell::Cell::new(0u32);
    let small = Solver {
        limit: WorkLimit((s.limit.0 / EXPLAIN_SHARE).max(1)),
        ..s
    };
    let try_relax = |relax: Relax| {
        let f = formulate(p, cat, relax);
        // Feasibility is the question: the first objective suffices.
        match lexicographic(small, &f.ilp, &f.objectives[..1]) {
            Ok(Some((v, _))) => Some((f, v)),
            Ok(None) => None,
            Err(_) => {
                unknown.set(unknown.get() + 1);
                None
            }
        }
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
    // Ordered devices placed in order need their own buses and slots: when that is all
    // that stands in the way, say so.
    if !p.sequence.is_empty()
        && try_relax(Relax {
            order: true,
            ..Default::default()
        })
        .is_some()
    {
        return Error::Infeasible {
            requirement: format!(
                "order: the {} ordered devices cannot get ascending PCI addresses within the \
                 machine's limits (each bus holds one unbroken stretch of the order, and a \
                 bus is numbered before the buses below it, so placing them in order needs \
                 more buses, slots or I/O windows than there are)",
                p.sequence.len()
            ),
            fix: "order fewer devices, order devices with the same bus type, hotplug and \
                  NUMA node next to each other, or pin them in order"
                .into(),
        };
    }
    // The order is not all that stands in the way: explain without it (smaller programs).
    let without_order = Relax {
        order: true,
        ..Default::default()
    };
    // The bus-number need with the root bus unlimited is a lower bound: report it first.
    let unlimited_root = try_relax(Relax {
        bus_numbers: true,
        root_slots: true,
        ..without_order
    });
    if let Some((f, v)) = &unlimited_root {
        let need = bus_need(f, v);
        if need > limit {
            return bus_error(need);
        }
    }
    if let Some((f, v)) = try_relax(Relax {
        bus_numbers: true,
        ..without_order
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
        ..without_order
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
        ..without_order
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
        ..without_order
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
    if unknown.get() > 0 {
        return Error::Infeasible {
            requirement: "no topology satisfies the spec (proven), and the search could not \
                          single out the binding requirement within its work limit"
                .into(),
            fix: format!(
                "raise --work-limit (now {}) for a precise explanation, or relax hotplug \
                 reserves, NUMA placement or I/O-BAR devices",
                s.limit.0
            ),
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
