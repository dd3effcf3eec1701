//! Why an infeasible program has no solution: drop one requirement at a time (bus
//! numbers, root-bus slots, I/O windows, the hotplug reserve, the order) and name the
//! first whose absence makes it feasible, as an [`Explanation`].

use super::formulate::{formulate, Formulation, Placements, Relax};
use super::{lexicographic, Solver};
use crate::catalog::Catalog;
use crate::explanation::{Binding, Explanation};
use crate::normalize::Problem;
use crate::WorkLimit;
use std::cell::Cell;

/// Share (1/n) of the work limit each relaxed program of an explanation gets.
const EXPLAIN_SHARE: u64 = 8;

/// The relaxed programs of one explanation, with what their searches left undecided.
struct Trials<'a> {
    p: &'a Problem<'a>,
    cat: &'a Catalog,
    solver: Solver<'a>,
    /// Relaxations whose search ran out of work: feasibility unknown.
    unknown: Cell<u32>,
}

impl Trials<'_> {
    /// The relaxed program and a solution of it (None: infeasible or undecided).
    fn feasible(&self, relax: Relax) -> Option<(Formulation, Vec<i64>)> {
        let f = formulate(self.p, self.cat, relax);
        // Feasibility is the question: the first objective suffices.
        match lexicographic(self.solver, &f.ilp, &f.objectives[..1], None) {
            Ok(Some((v, _))) => Some((f, v)),
            Ok(None) => None,
            Err(_) => {
                self.unknown.set(self.unknown.get() + 1);
                None
            }
        }
    }

    /// Bus numbers a solution of a relaxed program uses.
    fn bus_need(&self, f: &Formulation, v: &[i64]) -> u32 {
        let added: u32 =
            f.n.iter()
                .map(|(&t, &var)| f.buses[t].bus_numbers * v[var].max(0) as u32)
                .sum();
        f.existing_bus_numbers + added
    }
}

/// Find the requirement that makes the program infeasible by dropping one at a time.
pub(super) fn explain(p: &Problem, cat: &Catalog, s: Solver<'_>) -> Explanation {
    let trials = Trials {
        p,
        cat,
        solver: Solver {
            limit: WorkLimit((s.limit.0 / EXPLAIN_SHARE).max(1)),
            ..s
        },
        unknown: Cell::new(0),
    };
    if let Some(e) = placement_alone(&trials) {
        return e;
    }
    if let Some(e) = order_alone(&trials) {
        return e;
    }
    if let Some(e) = budgets(&trials) {
        return e;
    }
    if trials.unknown.get() > 0 {
        return Explanation::new(
            Binding::Undecided,
            "no topology satisfies the spec (proven), and the search could not single out \
             the binding requirement within its work limit",
            format!(
                "raise --work-limit (now {}) for a precise explanation, or relax hotplug \
                 reserves, NUMA placement or I/O-BAR devices",
                s.limit.0
            ),
        );
    }
    // Nothing but the structure itself: some unit has no bus that could ever take it.
    Explanation::new(
        Binding::NoCompatibleBus,
        "some devices have no compatible bus: with the pinned controllers and the machine's \
         growth models no slot accepts them (check hotplug, NUMA node and bus type)",
        "unpin controllers or relax the device's hotplug/bus/numa_node requirements",
    )
}

/// When the placement constraints are all that stands in the way, name the family
/// (root, apart, together) whose absence alone makes the program feasible, and its
/// devices.
fn placement_alone(t: &Trials<'_>) -> Option<Explanation> {
    let c = &t.p.constraints;
    if c.root.is_empty() && c.apart.is_empty() && c.together.is_empty() {
        return None;
    }
    t.feasible(Relax {
        placement: Placements::ALL,
        ..Default::default()
    })?;
    let (binding, requirement, fix, devices) = which_placement(t);
    Some(Explanation::new(binding, requirement, fix).devices(devices))
}

/// The placement family whose absence alone makes the program feasible: its binding, the
/// sentence, the fix and its devices (all three together when none does alone).
fn which_placement(t: &Trials<'_>) -> (Binding, String, &'static str, Vec<String>) {
    let (p, c) = (t.p, &t.p.constraints);
    let alone = |placement| {
        t.feasible(Relax {
            placement,
            ..Default::default()
        })
        .is_some()
    };
    let ids = |devs: &mut dyn Iterator<Item = usize>| -> Vec<String> {
        let mut v: Vec<usize> = devs.collect();
        v.sort_unstable();
        v.dedup();
        v.into_iter()
            .map(|i| p.spec.devices[i].id.clone())
            .collect()
    };
    let root_bus = &p.machine.root_bus_name;
    if !c.root.is_empty()
        && alone(Placements {
            root: true,
            ..Default::default()
        })
    {
        (
            Binding::RootPlacement,
            format!(
                "placement: root: the root bus {root_bus} has too few free slots for the \
                 devices placed on it and the ports and expanders the rest need"
            ),
            "place fewer devices on the root bus, or pack devices that need no hotplug \
             (`multifunction: pack`)",
            ids(&mut c.root.iter().copied()),
        )
    } else if !c.apart.is_empty()
        && alone(Placements {
            apart: true,
            ..Default::default()
        })
    {
        (
            Binding::Apart,
            format!(
                "apart: each device of an apart set needs a link of its own — the root bus \
                 {root_bus}, a root port on a root bus (with a bridge of its own below it \
                 when it is conventional PCI), or its together set's switch — and there \
                 are not enough of them"
            ),
            "keep fewer devices apart, use PCIe devices (`bus: pcie`), or free root-bus slots",
            ids(&mut c.apart.iter().flatten().copied()),
        )
    } else if !c.together.is_empty()
        && alone(Placements {
            together: true,
            ..Default::default()
        })
    {
        (
            Binding::Together,
            "together: the devices of a together set do not fit below one switch or bridge \
             (a switch has 32 downstream ports, a bridge 31 slots; hotplug, bus type and \
             the budgets count)"
                .to_string(),
            "split the set, or drop hotplug or bus-type requirements of its devices",
            ids(&mut c.together.iter().flatten().copied()),
        )
    } else {
        (
            Binding::Apart,
            "root placement, apart and together sets together do not fit".to_string(),
            "drop one of the placement constraints",
            ids(&mut c
                .root
                .iter()
                .chain(c.apart.iter().flatten())
                .chain(c.together.iter().flatten())
                .copied()),
        )
    }
}

/// Ordered devices placed in order need their own buses and slots: when that is all that
/// stands in the way, say so.
fn order_alone(t: &Trials<'_>) -> Option<Explanation> {
    let p = t.p;
    if p.sequence.is_empty() {
        return None;
    }
    t.feasible(Relax {
        order: true,
        ..Default::default()
    })?;
    let ids = p.sequence.iter().map(|&i| p.spec.devices[i].id.clone());
    Some(
        Explanation::new(
            Binding::Order,
            format!(
                "order: the {} ordered devices cannot get ascending PCI addresses within the \
                 machine's limits (each bus holds one unbroken stretch of the order, and a \
                 bus is numbered before the buses below it, so placing them in order needs \
                 more buses, slots or I/O windows than there are)",
                p.sequence.len()
            ),
            "order fewer devices, order devices with the same bus type, hotplug and NUMA \
             node next to each other, or pin them in order",
        )
        .devices(ids),
    )
}

/// The budgets, one at a time (the order is not all that stands in the way, so each is
/// tried without it: smaller programs).
fn budgets(t: &Trials<'_>) -> Option<Explanation> {
    let without_order = Relax {
        order: true,
        ..Default::default()
    };
    // The bus-number need with the root bus unlimited is a lower bound: report it first.
    let unlimited_root = t.feasible(Relax {
        bus_numbers: true,
        root_slots: true,
        ..without_order
    });
    if let Some((f, v)) = &unlimited_root {
        let need = t.bus_need(f, v);
        if need > t.p.machine.limits.bus_numbers {
            return Some(bus_numbers(t.p, need));
        }
    }
    if let Some((f, v)) = t.feasible(Relax {
        bus_numbers: true,
        ..without_order
    }) {
        let need = t.bus_need(&f, &v);
        if need <= t.p.machine.limits.bus_numbers {
            return Some(expander_ranges());
        }
        return Some(bus_numbers(t.p, need));
    }
    if unlimited_root.is_some() {
        return Some(root_slots(t.p));
    }
    let io = Relax {
        io_windows: true,
        ..without_order
    };
    if t.feasible(io).is_some() {
        return Some(io_windows(t.p));
    }
    let reserve = Relax {
        reserve: true,
        ..without_order
    };
    if t.feasible(reserve).is_some() {
        return Some(hotplug_reserve(t.p));
    }
    let all = Relax {
        bus_numbers: true,
        io_windows: true,
        reserve: true,
        ..without_order
    };
    t.feasible(all).map(|_| {
        Explanation::new(
            Binding::CombinedBudgets,
            "bus numbers, I/O windows and the hotplug reserve together do not fit",
            "reduce devices or the hotplug reserve",
        )
    })
}

fn bus_numbers(p: &Problem, need: u32) -> Explanation {
    let limit = p.machine.limits.bus_numbers;
    Explanation::new(
        Binding::BusNumbers,
        format!(
            "needs {need} bus numbers, a PCI domain has {limit} (every root port, bridge, \
             switch port and expander bus uses one; a pxb uses two)"
        ),
        format!(
            "remove {} bus number(s) of demand: fewer devices that each need their own port, \
             `multifunction: pack` to share ports among devices that need no hotplug, or a \
             smaller hotplug_reserve",
            need.saturating_sub(limit)
        ),
    )
    .amounts(need.into(), limit.into())
}

fn expander_ranges() -> Explanation {
    Explanation::new(
        Binding::ExpanderBusRanges,
        "the bus numbers between the expander buses are used up: each NUMA expander keeps \
         its bus_nr, and the buses below it must fit between it and the next expander's (the \
         root hierarchy below the lowest)",
        "plan the guest afresh (new bus_nr ranges; guest-visible bus numbers below the \
         expanders change), or pack devices that need no hotplug (`multifunction: pack`)",
    )
}

fn root_slots(p: &Problem) -> Explanation {
    Explanation::new(
        Binding::RootBusSlots,
        format!(
            "the root bus {} has too few free slots for the ports and expanders needed",
            p.machine.root_bus_name
        ),
        "unpin devices from the root bus, or pack devices that need no hotplug \
         (`multifunction: pack`)",
    )
}

fn io_windows(p: &Problem) -> Explanation {
    let windows = p.machine.limits.io_windows.unwrap_or(0);
    let (firmware, other) = &p.firmware_words;
    // Bridges the UEFI firmware gives a window whatever is below them count too.
    let padded = crate::topology::io_padding::padding_firmware(&p.machine, p.spec, p.eff.firmware)
        .map(|u| u.io_padded_bridges.join(", "))
        .filter(|m| !m.is_empty())
        .map_or_else(String::new, |m| {
            format!(
                " (counting each {m} with hotplug on, which the UEFI firmware gives a window \
                 of its own even with nothing below it that needs I/O)"
            )
        });
    let fewer = if padded.is_empty() {
        ""
    } else {
        " (fewer bridges: the conventional-PCI devices on one bridge)"
    };
    let mut e = Explanation::new(
        Binding::IoWindows,
        format!(
            "more than {windows} bridges/ports would hold devices with I/O BARs{padded}, and \
             {firmware} has I/O space for only that many 4 KiB windows"
        ),
        format!(
            "use virtio devices (no I/O BAR on PCIe ports) instead of e1000e/rtl8139/e1000, or \
             put conventional-PCI devices behind a shared bridge{fewer}{other}"
        ),
    );
    e.available = Some(windows.into());
    e
}

fn hotplug_reserve(p: &Problem) -> Explanation {
    Explanation::new(
        Binding::HotplugReserve,
        format!(
            "the hotplug reserve (total {}, per NUMA node {}) does not fit",
            p.eff.hotplug_reserve, p.eff.hotplug_reserve_per_node
        ),
        "lower policy.hotplug_reserve / hotplug_reserve_per_node, or free bus numbers by \
         packing devices that need no hotplug",
    )
}
