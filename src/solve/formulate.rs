//! formulate: the placement as an integer program over *classes*. Identical devices form
//! one unit class and identical controllers to add form one bus class (model × NUMA zone ×
//! hotplug), so the program's size does not grow with the number of identical devices.
//!
//! Variables: `n_b` (controllers of template class b to add), `x_ub` (units of class u on
//! buses of class b), `agg_b`/`pack_b` (slots of b shared by eight functions), `w_b`
//! (instances of bridge class b that need an I/O window).

use super::backend::Ilp;
use crate::catalog::Catalog;
use crate::limits::MAX_BUS_CHAIN;
use crate::normalize::{counts_for_reserve, Mode, Problem, What, Zone};
use crate::vocab::{pci, ConnectKind};
use std::collections::{BTreeMap, BTreeSet};

/// A class of buses: one existing bus, or a template for controllers to add.
#[derive(Debug, Clone)]
pub(crate) struct BusClass {
    /// Index into `Problem::buses` for an existing bus.
    pub existing: Option<usize>,
    pub model: String,
    pub zone: Zone,
    pub hotplug: bool,
    pub depth: u32,
    /// Slots of one instance.
    pub slots: u32,
    /// Existing bus: wholly free slots, and free functions in slots shared by root ports.
    pub free_whole: u32,
    pub agg_free: u32,
    /// Existing bus: it already has an I/O-BAR device on it.
    pub has_io: bool,
    /// Template: how many may be added.
    pub ub: u32,
    pub cost: u32,
    pub penalty: u32,
    pub bus_numbers: u32,
    pub connect: Option<ConnectKind>,
    pub aggregate: bool,
    pub numa: bool,
}

impl BusClass {
    fn is_root(&self) -> bool {
        self.connect.is_none()
    }
}

/// A class of interchangeable units, or a template (its instances must be placed too).
#[derive(Debug, Clone)]
pub(crate) struct UnitClass {
    /// Units (indexes into `Problem::units`, in placement order) or a template bus class.
    pub units: Vec<usize>,
    pub template: Option<usize>,
    /// None: a root bus model (no bus accepts it).
    pub connect: Option<ConnectKind>,
    pub hotplug: bool,
    pub zone: Zone,
    pub io: bool,
    pub mode: Mode,
    pub existing_only: bool,
    /// Bus indexes allowed by the ordering requirement (exclusive bounds).
    pub bus_range: (Option<u32>, Option<u32>),
    /// The capacity question's class: its demand is a variable to maximise.
    pub extra: bool,
    /// An ordered unit (a class of its own): its position in the ordering requirement.
    pub rank: Option<usize>,
}

/// Which requirements to drop (to explain infeasibility).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Relax {
    pub bus_numbers: bool,
    pub io_windows: bool,
    pub reserve: bool,
    pub templates: bool,
    /// Treat the root bus as having unlimited slots.
    pub root_slots: bool,
    /// Drop the ordering requirement.
    pub order: bool,
}

/// The program plus what its variables mean.
#[derive(Debug, Clone)]
pub(crate) struct Formulation {
    pub buses: Vec<BusClass>,
    pub units: Vec<UnitClass>,
    pub ilp: Ilp,
    /// What to minimise, most important first (see [`super::lexicographic`]).
    pub objectives: Vec<Vec<(usize, f64)>>,
    pub x: BTreeMap<(usize, usize), usize>,
    pub n: BTreeMap<usize, usize>,
    /// `keep` binaries of units that may stay at their previous slot (by unit).
    pub keep: BTreeMap<usize, usize>,
    /// How many extra units fit (capacity questions).
    pub extra: Option<usize>,
    /// Bus numbers used by existing controllers (root included).
    pub existing_bus_numbers: u32,
}

const INF: u32 = u32::MAX;

/// Weight in the second objective of a hotpluggable port of a model whose hotplug can be
/// switched off, when the policy prefers ports without hotplug (`root_port_hotplug: false`):
/// among plans with equally many controllers, fewer hotpluggable ports win.
const HOTPLUG_PORT_PENALTY: u32 = 1;

/// With the bus-number budget relaxed (to explain an infeasible program), each template
/// class may add this many times the machine's bus numbers.
const RELAXED_BUS_NUMBERS: u32 = 16;

pub(crate) fn formulate(p: &Problem, cat: &Catalog, relax: Relax) -> Formulation {
    let mut buses = existing_classes(p, cat);
    let n_existing = buses.len();
    // A running guest gets no new PCI controllers and consumes its reserve.
    let relax = Relax {
        templates: relax.templates || p.ctx.live,
        reserve: relax.reserve || p.ctx.live,
        ..relax
    };
    if !relax.templates {
        buses.extend(template_classes(p, cat, relax));
    }
    let mut units = unit_classes(p, !relax.order);
    // Template depths: shortest hosting chain from an existing bus.
    loop {
        let mut changed = false;
        for t in n_existing..buses.len() {
            for h in 0..buses.len() {
                if h == t || buses[h].depth == INF {
                    continue;
                }
                if hosts_controller(&buses[h], &buses[t], cat)
                    && buses[h].depth + 1 < buses[t].depth
                {
                    buses[t].depth = buses[h].depth + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Keep only templates that are reachable and useful.
    let eff = &p.eff;
    let mut useful = vec![false; buses.len()];
    for (t, b) in buses.iter().enumerate().skip(n_existing) {
        if b.depth == INF {
            continue;
        }
        let for_reserve = b.hotplug
            && counts_for_reserve(cat, &p.machine, &b.model)
            && (eff.hotplug_reserve > 0 || (b.zone.is_some() && eff.hotplug_reserve_per_node > 0));
        let hosts_units = units.iter().any(|u| compatible(u, b, p, cat));
        useful[t] = for_reserve || hosts_units;
    }
    loop {
        let mut changed = false;
        for t in n_existing..buses.len() {
            if useful[t] || buses[t].depth == INF {
                continue;
            }
            let hosts_useful = (n_existing..buses.len()).any(|c| {
                useful[c]
                    && c != t
                    && buses[t].depth < buses[c].depth
                    && hosts_controller(&buses[t], &buses[c], cat)
            });
            if hosts_useful {
                useful[t] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let buses: Vec<BusClass> = buses
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i < n_existing || useful[*i])
        .map(|(_, b)| b)
        .collect();
    for (t, b) in buses.iter().enumerate().skip(n_existing) {
        units.push(UnitClass {
            units: Vec::new(),
            template: Some(t),
            connect: b.connect,
            hotplug: false,
            zone: b.zone,
            io: false,
            mode: if b.aggregate {
                Mode::Aggregate
            } else {
                Mode::Whole
            },
            existing_only: false,
            bus_range: (None, None),
            extra: false,
            rank: None,
        });
    }

    let mut ilp = Ilp::default();
    let extra = units.iter().position(|u| u.extra).map(|ui| {
        let max = p.ctx.extra.as_ref().map_or(0, |e| e.max);
        (ui, ilp.var("extra", 0.0, max as f64))
    });
    let mut n = BTreeMap::new();
    for (t, b) in buses.iter().enumerate().skip(n_existing) {
        n.insert(
            t,
            ilp.var(
                format!("n[{}:{:?}:{}]", b.model, b.zone, b.hotplug),
                0.0,
                b.ub as f64,
            ),
        );
    }
    let mut x = BTreeMap::new();
    for (ui, u) in units.iter().enumerate() {
        for (bi, b) in buses.iter().enumerate() {
            let ok = match u.template {
                Some(t) => {
                    t != bi && b.depth < buses[t].depth && hosts_controller(b, &buses[t], cat)
                }
                None => compatible(u, b, p, cat),
            };
            if ok {
                x.insert(
                    (ui, bi),
                    ilp.var(format!("x[{ui},{bi}]"), 0.0, f64::INFINITY),
                );
            }
        }
    }
    // Tighten: at most as many controllers of a class as could ever be used, and no unit
    // class on an added bus class unless an instance of it exists (per-class linking rows,
    // much tighter in the relaxation than the capacity rows alone).
    let most = tighten_counts(p, cat, &buses, &units, &x, &n, &mut ilp);
    force_needed(p, cat, &buses, &units, &x, &n, &mut ilp);
    for (&(ui, bi), &v) in x.iter() {
        ilp.vars[v].hi = ilp.vars[v].hi.min(most[ui]);
        let Some(&nv) = n.get(&bi) else { continue };
        let m = most[ui];
        let per_instance = buses[bi].slots as f64 * FUNCTIONS_PER_SLOT;
        if m < per_instance {
            ilp.row(
                format!("link {ui} to {bi}"),
                vec![(v, 1.0), (nv, -m)],
                f64::NEG_INFINITY,
                0.0,
            );
        }
    }
    // Units that may keep their previous slot: keep binaries, and one occupancy binary per
    // slot they would hold (several packed units may share one).
    let mut keep = BTreeMap::new();
    let mut occ: BTreeMap<(usize, u8), usize> = BTreeMap::new();
    for (&unit, &(bus, slot)) in &p.optional {
        let Some(ci) = units.iter().position(|u| u.units.contains(&unit)) else {
            continue;
        };
        let Some(bi) = buses
            .iter()
            .position(|b| b.existing.is_some_and(|e| p.buses[e].index == bus))
        else {
            continue;
        };
        let e = buses[bi].existing.unwrap_or_default();
        let model = cat.pci_model(&p.buses[e].model);
        let What::Devices(members) = &p.units[unit].what else {
            continue;
        };
        let first = p.ctx.previous[&members[0]].function;
        let mask = (((1u16 << members.len()) - 1) << first) as u8;
        let used = p.buses[e].used.get(&slot).copied().unwrap_or(0);
        let in_range = (model.bus.slots[0]..=model.bus.slots[1]).contains(&slot)
            && first as usize + members.len() <= usize::from(pci::FUNCTIONS_PER_SLOT);
        if used & mask != 0
            || !in_range
            || units[ci].mode == Mode::Aggregate
            || !compatible(&units[ci], &buses[bi], p, cat)
        {
            continue;
        }
        let k = ilp.var(format!("keep[{unit}]"), 0.0, 1.0);
        keep.insert(unit, k);
        if used != 0 {
            // The slot is already taken (by something that stays): no whole slot to count.
            continue;
        }
        let o = *occ
            .entry((bi, slot))
            .or_insert_with(|| ilp.var(format!("occ[{bi}:{slot}]"), 0.0, 1.0));
        ilp.row(
            format!("occupied by {unit}"),
            vec![(o, 1.0), (k, -1.0)],
            0.0,
            f64::INFINITY,
        );
    }
    // A slot's other functions stay only if its function 0 stays.
    for (&unit, &k) in &keep {
        let What::Devices(members) = &p.units[unit].what else {
            continue;
        };
        let Some(a) = p.ctx.previous.get(&members[0]) else {
            continue;
        };
        if a.function == 0 {
            continue;
        }
        let holder = keep.iter().find(|(&u, _)| {
            matches!(&p.units[u].what, What::Devices(m)
                if p.ctx.previous.get(&m[0]).is_some_and(|b| b.bus == a.bus && b.slot == a.slot && b.function == 0))
        });
        if let Some((_, &k0)) = holder {
            ilp.row(
                format!("function 0 under {unit}"),
                vec![(k, 1.0), (k0, -1.0)],
                f64::NEG_INFINITY,
                0.0,
            );
        } else {
            // Function 0 of its slot is not held by anything that stays or is pinned: a
            // slot without function 0 is invisible to the guest, so it cannot stay.
            // (Not the primary video's own slot: that pin is taken only when the whole
            // slot is free, so it does not stay under a kept function.)
            let auto = p.pinned.iter().any(|(&d, q)| {
                p.spec.devices[d].address.is_none()
                    && (q.bus, q.slot, q.function) == (a.bus, a.slot, 0)
            });
            let pinned_f0 = !auto
                && p.buses
                    .iter()
                    .find(|b| b.index == a.bus)
                    .and_then(|b| b.used.get(&a.slot))
                    .is_some_and(|u| u & 1 != 0);
            if !pinned_f0 {
                ilp.vars[k].hi = 0.0;
            }
        }
    }
    // Demand: every unit placed; every added controller placed.
    for (ui, u) in units.iter().enumerate() {
        let mut terms: Vec<(usize, f64)> = x
            .range((ui, 0)..(ui + 1, 0))
            .map(|(_, &v)| (v, 1.0))
            .collect();
        match u.template {
            Some(t) => {
                terms.push((n[&t], -1.0));
                ilp.row(format!("place template {t}"), terms, 0.0, 0.0);
            }
            None if u.extra => {
                if let Some((_, m)) = extra {
                    terms.push((m, -1.0));
                }
                ilp.row(format!("extra {ui}"), terms, 0.0, 0.0);
            }
            None => {
                terms.extend(
                    u.units
                        .iter()
                        .filter_map(|unit| keep.get(unit))
                        .map(|&v| (v, 1.0)),
                );
                let c = u.units.len() as f64;
                ilp.row(format!("demand {ui}"), terms, c, c);
            }
        }
    }
    if !relax.order {
        order_rows(p, cat, &buses, &units, &x, &n, &keep, &mut ilp);
    }
    // Capacity per bus class, and the "used" expression for reserves.
    let mut pack_slots: Vec<(usize, usize)> = Vec::new();
    let mut used_terms: Vec<Vec<(usize, f64)>> = vec![Vec::new(); buses.len()];
    for (bi, b) in buses.iter().enumerate() {
        let on_b: Vec<(usize, Mode)> = units
            .iter()
            .enumerate()
            .filter_map(|(ui, u)| x.get(&(ui, bi)).map(|&v| (v, u.mode)))
            .collect();
        let mut used: Vec<(usize, f64)> = on_b
            .iter()
            .filter(|(_, m)| *m == Mode::Whole)
            .map(|&(v, _)| (v, 1.0))
            .collect();
        used.extend(
            occ.iter()
                .filter(|((ob, _), _)| *ob == bi)
                .map(|(_, &v)| (v, 1.0)),
        );
        for mode in [Mode::Aggregate, Mode::Pack] {
            let members: Vec<(usize, f64)> = on_b
                .iter()
                .filter(|(_, m)| *m == mode)
                .map(|&(v, _)| (v, 1.0))
                .collect();
            if members.is_empty() {
                continue;
            }
            let s = ilp.var(format!("{mode:?}[{bi}]"), 0.0, f64::INFINITY);
            if mode == Mode::Pack {
                pack_slots.push((bi, s));
            }
            let mut row = members;
            row.push((s, -FUNCTIONS_PER_SLOT));
            let spare = if mode == Mode::Aggregate {
                b.agg_free
            } else {
                0
            };
            ilp.row(
                format!("{mode:?} fill {bi}"),
                row,
                f64::NEG_INFINITY,
                spare as f64,
            );
            used.push((s, 1.0));
        }
        let mut row = used.clone();
        match n.get(&bi) {
            Some(&nv) => {
                row.push((nv, -(b.slots as f64)));
                ilp.row(format!("capacity {bi}"), row, f64::NEG_INFINITY, 0.0);
            }
            None => {
                let cap = if relax.root_slots && b.is_root() {
                    f64::INFINITY
                } else {
                    b.free_whole as f64
                };
                ilp.row(format!("capacity {bi}"), row, f64::NEG_INFINITY, cap)
            }
        }
        used_terms[bi] = used;
    }
    for &(bi, slots) in pack_slots.iter().filter(|_| !relax.order) {
        pack_runs(bi, slots, &units, &x, &mut ilp);
    }
    pack_cover(p, &units, &x, &keep, &pack_slots, &mut ilp);
    // Hotplug reserves.
    if !relax.reserve {
        let mut zones: Vec<(Option<Zone>, u32)> = vec![(None, eff.hotplug_reserve)];
        for k in 0..eff.numa_nodes {
            zones.push((Some(Some(k)), eff.hotplug_reserve_per_node));
        }
        for (zone, need) in zones {
            if need == 0 {
                continue;
            }
            let mut terms = Vec::new();
            let mut constant = 0.0;
            for (bi, b) in buses.iter().enumerate() {
                if !b.hotplug || !counts_for_reserve(cat, &p.machine, &b.model) {
                    continue;
                }
                if zone.is_some_and(|z| z != b.zone) {
                    continue;
                }
                match n.get(&bi) {
                    Some(&nv) => terms.push((nv, b.slots as f64)),
                    None => constant += b.free_whole as f64,
                }
                terms.extend(used_terms[bi].iter().map(|&(v, c)| (v, -c)));
            }
            ilp.row(
                format!("reserve {zone:?}"),
                terms,
                need as f64 - constant,
                f64::INFINITY,
            );
        }
    }
    // Bus numbers.
    let existing_bus_numbers: u32 = p
        .buses
        .iter()
        .map(|b| cat.pci_model(&b.model).bus_numbers)
        .sum();
    if !relax.bus_numbers {
        let terms: Vec<(usize, f64)> = n
            .iter()
            .map(|(&t, &v)| (v, buses[t].bus_numbers as f64))
            .collect();
        let room = p.machine.limits.bus_numbers as f64 - existing_bus_numbers as f64;
        ilp.row("bus numbers", terms, f64::NEG_INFINITY, room);
    }
    // Expanders that keep their bus_nr (from a previous plan) own the bus numbers up to
    // the next expander's; the root hierarchy and new expanders share those below the
    // lowest one.
    if !relax.bus_numbers {
        expander_ranges(p, cat, &buses, &n, &mut ilp);
    }
    // I/O windows of bridges and ports (x86 firmware).
    let existing_io = buses
        .iter()
        .filter(|b| b.existing.is_some() && b.has_io && !b.is_root())
        .count() as u32;
    if let (Some(limit), false) = (p.machine.limits.io_windows, relax.io_windows) {
        let mut terms = Vec::new();
        for (bi, b) in buses.iter().enumerate() {
            if b.is_root() || (b.existing.is_some() && b.has_io) {
                continue;
            }
            let io_x: Vec<(usize, f64)> = units
                .iter()
                .enumerate()
                .filter(|(_, u)| u.io)
                .filter_map(|(ui, _)| x.get(&(ui, bi)).map(|&v| (v, 1.0)))
                .collect();
            if io_x.is_empty() {
                continue;
            }
            if b.slots == 1 {
                terms.extend(io_x);
                continue;
            }
            let ub = if b.existing.is_some() {
                1.0
            } else {
                b.ub as f64
            };
            let w = ilp.var(format!("w[{bi}]"), 0.0, ub);
            let mut row: Vec<(usize, f64)> = io_x.iter().map(|&(v, _)| (v, -1.0)).collect();
            row.push((w, b.slots as f64));
            ilp.row(format!("io cover {bi}"), row, 0.0, f64::INFINITY);
            // Ordered I/O units bring windows of their own; unordered ones fill the rest.
            let runs = if relax.order {
                Vec::new()
            } else {
                ordered_io_windows(&units, &x, bi, &mut ilp)
            };
            if !runs.is_empty() {
                let slots = b.slots as f64;
                let mut row: Vec<(usize, f64)> = vec![(w, slots)];
                row.extend(runs.iter().map(|&(v, c)| (v, -c * slots)));
                row.extend(
                    units
                        .iter()
                        .enumerate()
                        .filter(|(_, u)| u.io && u.rank.is_none())
                        .filter_map(|(ui, _)| x.get(&(ui, bi)).map(|&v| (v, -1.0))),
                );
                ilp.row(
                    format!("io cover of ordered runs {bi}"),
                    row,
                    0.0,
                    f64::INFINITY,
                );
            }
            for (ui, u) in units.iter().enumerate() {
                let Some(&v) = x.get(&(ui, bi)) else { continue };
                if u.io && most[ui] < b.slots as f64 {
                    ilp.row(
                        format!("io link {ui} to {bi}"),
                        vec![(v, 1.0), (w, -most[ui])],
                        f64::NEG_INFINITY,
                        0.0,
                    );
                }
            }
            if let Some(&nv) = n.get(&bi) {
                ilp.row(
                    format!("io within {bi}"),
                    vec![(w, 1.0), (nv, -1.0)],
                    f64::NEG_INFINITY,
                    0.0,
                );
            }
            terms.push((w, 1.0));
        }
        if !terms.is_empty() {
            ilp.row(
                "io windows",
                terms,
                f64::NEG_INFINITY,
                limit as f64 - existing_io as f64,
            );
        }
    }
    // Objectives, in order: fewest (weighted) controllers; then the policy's preferences
    // among equal counts (penalised templates) and shallow placement.
    let controllers: Vec<(usize, f64)> =
        n.iter().map(|(&t, &v)| (v, buses[t].cost as f64)).collect();
    let mut shape: Vec<(usize, f64)> = n
        .iter()
        .filter(|(&t, _)| buses[t].penalty > 0)
        .map(|(&t, &v)| (v, buses[t].penalty as f64))
        .collect();
    shape.extend(
        x.iter()
            .filter(|(&(_, bi), _)| buses[bi].depth > 0)
            .map(|(&(_, bi), &v)| (v, buses[bi].depth as f64)),
    );
    ilp.objective = controllers.clone();
    let objectives = vec![controllers, shape];
    Formulation {
        buses,
        units,
        ilp,
        objectives,
        x,
        n,
        keep,
        extra: extra.map(|(_, v)| v),
        existing_bus_numbers,
    }
}

/// Packed units fill whole slots, eight to a slot. For every set of bus classes some
/// packed unit class is confined to, the units confined to that set need at least the
/// ceiling of their number over eight packed slots on it (the relaxation alone spreads
/// fractions of slots over classes, e.g. a NUMA zone's root ports and its bridges).
fn pack_cover(
    p: &Problem,
    units: &[UnitClass],
    x: &BTreeMap<(usize, usize), usize>,
    keep: &BTreeMap<usize, usize>,
    pack_slots: &[(usize, usize)],
    ilp: &mut Ilp,
) {
    if !p.ctx.previous.is_empty() {
        return;
    }
    let slot_of: BTreeMap<usize, usize> = pack_slots.iter().copied().collect();
    // Each packed unit class: the bus classes it may use, and its units to place.
    let mut confined: Vec<(BTreeSet<usize>, usize)> = Vec::new();
    let mut zones: BTreeMap<Zone, BTreeSet<usize>> = BTreeMap::new();
    for (ui, u) in units.iter().enumerate() {
        if u.mode != Mode::Pack || u.template.is_some() || u.extra {
            continue;
        }
        let placed = u.units.iter().filter(|i| !keep.contains_key(i)).count();
        let hosts = x
            .range((ui, 0)..(ui + 1, 0))
            .map(|(&(_, b), _)| b)
            .filter(|b| slot_of.contains_key(b))
            .collect();
        if placed > 0 {
            zones.entry(u.zone).or_default().extend(&hosts);
            confined.push((hosts, placed));
        }
    }
    // The sets: each class's own, and each NUMA zone's (every class of the zone).
    let sets: BTreeSet<_> = confined
        .iter()
        .map(|(h, _)| h.clone())
        .chain(zones.into_values())
        .collect();
    for set in sets {
        let demand: usize = confined
            .iter()
            .filter(|(h, _)| h.is_subset(&set))
            .map(|&(_, d)| d)
            .sum();
        let need = (demand as f64 / FUNCTIONS_PER_SLOT).ceil();
        let slots: Vec<(usize, f64)> = set.iter().map(|b| (slot_of[b], 1.0)).collect();
        if need > 0.0 && !slots.is_empty() {
            ilp.row(format!("pack cover {set:?}"), slots, need, f64::INFINITY);
        }
    }
}

/// The ordering requirement as rows over the ordered units (each a class of its own, in
/// the order's sequence). A unit never steps back to an earlier bus: existing buses rank
/// by index and every bus to add after all of them (the decoder numbers added buses in
/// the order's sequence). And an added bus holds one unbroken run of the sequence, so a
/// bus class needs at least as many instances as runs that start on it.
#[allow(clippy::too_many_arguments)]
fn order_rows(
    p: &Problem,
    cat: &Catalog,
    buses: &[BusClass],
    units: &[UnitClass],
    x: &BTreeMap<(usize, usize), usize>,
    n: &BTreeMap<usize, usize>,
    keep: &BTreeMap<usize, usize>,
    ilp: &mut Ilp,
) {
    let seq = ordered_sequence(units);
    if seq.len() < 2 {
        return;
    }
    let index = |bi: usize| buses[bi].existing.map(|e| p.buses[e].index);
    let added_level = p.buses.iter().map(|b| b.index).max().unwrap_or(0) as f64 + 1.0;
    let level = |ui: usize| -> Vec<(usize, f64)> {
        let mut terms: Vec<(usize, f64)> = x
            .range((ui, 0)..(ui + 1, 0))
            .map(|(&(_, bi), &v)| (v, index(bi).map_or(added_level, |i| i as f64)))
            .collect();
        // A unit that keeps its previous slot stays on that (existing) bus.
        for unit in &units[ui].units {
            if let (Some(&k), Some(&(bus, _))) = (keep.get(unit), p.optional.get(unit)) {
                terms.push((k, bus as f64));
            }
        }
        terms
    };
    for w in seq.windows(2) {
        let mut terms = level(w[0]);
        terms.extend(level(w[1]).into_iter().map(|(v, c)| (v, -c)));
        ilp.row(
            format!("order: unit class {} before {}", w[0], w[1]),
            terms,
            f64::NEG_INFINITY,
            0.0,
        );
    }
    for (&t, &nv) in n {
        if buses[t].slots == 1 {
            // A port holds one whole unit or one packed slot: see `pack_runs`.
            continue;
        }
        let mut runs: Vec<(usize, f64)> = Vec::new();
        let mut prev: Option<usize> = None;
        for &ui in &seq {
            let Some(&v) = x.get(&(ui, t)) else {
                prev = None;
                continue;
            };
            match prev {
                // A run starts here unless the unit before it is on the same class.
                Some(pv) => {
                    let r = ilp.var(format!("run[{ui},{t}]"), 0.0, 1.0);
                    ilp.row(
                        format!("order: run of {ui} on {t}"),
                        vec![(r, 1.0), (v, -1.0), (pv, 1.0)],
                        0.0,
                        f64::INFINITY,
                    );
                    runs.push((r, 1.0));
                }
                None => runs.push((v, 1.0)),
            }
            prev = Some(v);
        }
        if runs.len() > 1 {
            runs.push((nv, -1.0));
            ilp.row(
                format!("order: one run per instance of {t}"),
                runs,
                f64::NEG_INFINITY,
                0.0,
            );
        }
    }
    // A bus gets its index before the buses below it: once an ordered unit sits below
    // an added bus class, no later one sits on that class itself.
    for &t in n.keys() {
        let below = hosted_below(t, buses, n, cat);
        if below.is_empty() || !seq.iter().any(|&ui| x.contains_key(&(ui, t))) {
            continue;
        }
        let mut seen: Option<usize> = None;
        for &ui in &seq {
            if let (Some(&v), Some(z)) = (x.get(&(ui, t)), seen) {
                ilp.row(
                    format!("order: {ui} on {t} before what is below it"),
                    vec![(v, 1.0), (z, 1.0)],
                    f64::NEG_INFINITY,
                    1.0,
                );
            }
            let here: Vec<usize> = below
                .iter()
                .filter_map(|&q| x.get(&(ui, q)))
                .copied()
                .collect();
            if here.is_empty() {
                continue;
            }
            let z = ilp.var(format!("below[{ui},{t}]"), 0.0, 1.0);
            for v in here.into_iter().chain(seen) {
                ilp.row(
                    format!("order: below {t} from {ui} on"),
                    vec![(z, 1.0), (v, -1.0)],
                    0.0,
                    f64::INFINITY,
                );
            }
            seen = Some(z);
        }
    }
}

/// Packed slots on bus class `b` when the order is kept: a run of L packed ordered units
/// fills slots of its own, at most ⌈L/8⌉ ≤ (L + 7)/8 of them, and unordered packed units
/// take functions of their own. So 8·slots ≥ Σ packed ordered + 7·runs + Σ packed
/// unordered (over-counting what could share a run's slot is safe).
fn pack_runs(
    b: usize,
    slots: usize,
    units: &[UnitClass],
    x: &BTreeMap<(usize, usize), usize>,
    ilp: &mut Ilp,
) {
    let mut terms: Vec<(usize, f64)> = Vec::new();
    let mut prev: Option<usize> = None;
    for ui in ordered_sequence(units) {
        let here = x
            .get(&(ui, b))
            .copied()
            .filter(|_| units[ui].mode == Mode::Pack);
        let Some(v) = here else {
            prev = None;
            continue;
        };
        terms.push((v, 1.0));
        let start = match prev {
            Some(pv) => {
                let r = ilp.var(format!("pack run[{ui},{b}]"), 0.0, 1.0);
                ilp.row(
                    format!("order: packed run of {ui} on {b}"),
                    vec![(r, 1.0), (v, -1.0), (pv, 1.0)],
                    0.0,
                    f64::INFINITY,
                );
                r
            }
            None => v,
        };
        terms.push((start, FUNCTIONS_PER_SLOT - 1.0));
        prev = Some(v);
    }
    if terms.is_empty() {
        return;
    }
    terms.extend(
        units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.mode == Mode::Pack && u.rank.is_none())
            .filter_map(|(ui, _)| x.get(&(ui, b)).map(|&v| (v, 1.0))),
    );
    terms.push((slots, -FUNCTIONS_PER_SLOT));
    ilp.row(
        format!("order: packed slots of {b}"),
        terms,
        f64::NEG_INFINITY,
        0.0,
    );
}

/// The ordered unit classes, in the order's sequence.
fn ordered_sequence(units: &[UnitClass]) -> Vec<usize> {
    let mut seq: Vec<usize> = (0..units.len())
        .filter(|&ui| units[ui].rank.is_some() && units[ui].template.is_none())
        .collect();
    seq.sort_by_key(|&ui| units[ui].rank);
    seq
}

/// Added bus classes that can sit (directly or further down) below an instance of `t`.
fn hosted_below(
    t: usize,
    buses: &[BusClass],
    n: &BTreeMap<usize, usize>,
    cat: &Catalog,
) -> Vec<usize> {
    let mut below: BTreeSet<usize> = BTreeSet::new();
    let mut todo = vec![t];
    while let Some(h) = todo.pop() {
        for &c in n.keys() {
            if c != t
                && !below.contains(&c)
                && buses[h].depth < buses[c].depth
                && hosts_controller(&buses[h], &buses[c], cat)
            {
                below.insert(c);
                todo.push(c);
            }
        }
    }
    below.into_iter().collect()
}

/// Ordered units with I/O BARs on bus class `b` that may need a window of their own: each
/// run of the order fills instances of its own, so every ordered I/O unit counts unless
/// the unit just before it in the order is an I/O unit on the same class (over-counting a
/// run that mixes I/O and other units is safe). Returns the terms of that count.
fn ordered_io_windows(
    units: &[UnitClass],
    x: &BTreeMap<(usize, usize), usize>,
    b: usize,
    ilp: &mut Ilp,
) -> Vec<(usize, f64)> {
    let mut terms = Vec::new();
    let mut prev: Option<(usize, bool)> = None;
    for ui in ordered_sequence(units) {
        let here = x.get(&(ui, b)).copied();
        if let (Some(v), true) = (here, units[ui].io) {
            match prev {
                Some((pv, true)) => {
                    let r = ilp.var(format!("io run[{ui},{b}]"), 0.0, 1.0);
                    ilp.row(
                        format!("order: io run of {ui} on {b}"),
                        vec![(r, 1.0), (v, -1.0), (pv, 1.0)],
                        0.0,
                        f64::INFINITY,
                    );
                    terms.push((r, 1.0));
                }
                _ => terms.push((v, 1.0)),
            }
        }
        prev = here.map(|v| (v, units[ui].io));
    }
    terms
}

/// The unit class that places each template bus class (template → unit class).
fn template_units(units: &[UnitClass]) -> BTreeMap<usize, usize> {
    units
        .iter()
        .enumerate()
        .filter_map(|(ui, u)| u.template.map(|t| (t, ui)))
        .collect()
}

/// Functions of a PCI slot, as a coefficient.
const FUNCTIONS_PER_SLOT: f64 = pci::FUNCTIONS_PER_SLOT as f64;

/// The most units of each class that could ever be placed (its demand; for a template
/// class, the most instances that could be used), with the template counts' upper bounds
/// lowered to it. Deepest templates first, so a parent's bound counts its children's.
fn tighten_counts(
    p: &Problem,
    cat: &Catalog,
    buses: &[BusClass],
    units: &[UnitClass],
    x: &BTreeMap<(usize, usize), usize>,
    n: &BTreeMap<usize, usize>,
    ilp: &mut Ilp,
) -> Vec<f64> {
    let mut most: Vec<f64> = units
        .iter()
        .map(|u| match (u.template, u.extra) {
            (Some(t), _) => n.get(&t).map_or(0.0, |&v| ilp.vars[v].hi),
            (None, true) => p.ctx.extra.as_ref().map_or(0, |e| e.max) as f64,
            (None, false) => u.units.len() as f64,
        })
        .collect();
    let template_unit = template_units(units);
    let mut order: Vec<usize> = n.keys().copied().collect();
    order.sort_by_key(|&t| std::cmp::Reverse(buses[t].depth));
    for t in order {
        let b = &buses[t];
        let mut need: f64 = units
            .iter()
            .enumerate()
            .filter(|(ui, _)| x.contains_key(&(*ui, t)))
            .map(|(ui, _)| most[ui])
            .sum();
        if b.hotplug && counts_for_reserve(cat, &p.machine, &b.model) {
            need += p.eff.hotplug_reserve as f64;
            if b.zone.is_some() {
                need += p.eff.hotplug_reserve_per_node as f64;
            }
        }
        let v = n[&t];
        let hi = ilp.vars[v].hi.min(need.ceil());
        ilp.vars[v].hi = hi;
        if let Some(&ui) = template_unit.get(&t) {
            most[ui] = hi;
        }
    }
    most
}

/// A controller class that every placement of some requirement passes through is
/// needed at least once: its count gets a lower bound of one. Bus class `c` *needs*
/// template `t` when `c` is `t`, or `c` is itself a template whose every possible host
/// needs `t` (existing buses need nothing). A unit class with demand needs `t` when all
/// its compatible buses do; a NUMA node's hotplug reserve needs `t` when every class that
/// could hold it does (e.g. the node's expander bus).
fn force_needed(
    p: &Problem,
    cat: &Catalog,
    buses: &[BusClass],
    units: &[UnitClass],
    x: &BTreeMap<(usize, usize), usize>,
    n: &BTreeMap<usize, usize>,
    ilp: &mut Ilp,
) {
    let template_unit = template_units(units);
    let mut by_unit: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
    for &(u, b) in x.keys() {
        by_unit[u].push(b);
    }
    let hosts = |ui: usize| -> &[usize] { &by_unit[ui] };
    for (&t, &nv) in n {
        // needs[c]: bus class c cannot exist without an instance of t.
        let mut needs = vec![false; buses.len()];
        needs[t] = true;
        loop {
            let mut changed = false;
            for (c, &ui) in &template_unit {
                if needs[*c] {
                    continue;
                }
                let h = hosts(ui);
                if !h.is_empty() && h.iter().all(|&b| needs[b]) {
                    needs[*c] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let unit_needs = units.iter().enumerate().any(|(ui, u)| {
            let demand = u.template.is_none() && !u.extra && !u.units.is_empty();
            let h = hosts(ui);
            demand && !h.is_empty() && h.iter().all(|&b| needs[b])
        });
        let reserve_needs = buses[t].zone.is_some_and(|k| {
            p.eff.hotplug_reserve_per_node > 0 && {
                let holders: Vec<usize> = (0..buses.len())
                    .filter(|&b| {
                        let c = &buses[b];
                        c.zone == Some(k)
                            && c.hotplug
                            && counts_for_reserve(cat, &p.machine, &c.model)
                    })
                    .collect();
                let existing_free: u32 = holders
                    .iter()
                    .filter(|&&b| buses[b].existing.is_some())
                    .map(|&b| buses[b].free_whole)
                    .sum();
                existing_free < p.eff.hotplug_reserve_per_node
                    && holders
                        .iter()
                        .filter(|&&b| buses[b].existing.is_none())
                        .all(|&b| needs[b])
            }
        });
        if (unit_needs || reserve_needs) && ilp.vars[nv].hi >= 1.0 {
            ilp.vars[nv].lo = ilp.vars[nv].lo.max(1.0);
        }
    }
}

fn expander_ranges(
    p: &Problem,
    cat: &Catalog,
    buses: &[BusClass],
    n: &BTreeMap<usize, usize>,
    ilp: &mut Ilp,
) {
    // (bus_nr, zone) of expanders with a fixed bus_nr.
    let mut fixed: Vec<(u32, u32)> = p
        .buses
        .iter()
        .filter(|b| cat.pci_model(&b.model).numa)
        .filter_map(|b| {
            let nr = p.spec.controllers.get(b.entry?)?.bus_nr?;
            Some((nr, b.zone?))
        })
        .collect();
    if fixed.is_empty() {
        return;
    }
    fixed.sort();
    let fixed_zone = |z: Zone| z.is_some_and(|k| fixed.iter().any(|&(_, fz)| fz == k));
    let existing_need = |zone: Option<Zone>| -> u32 {
        p.buses
            .iter()
            .filter(|b| b.index != 0)
            .filter(|b| match zone {
                Some(z) => b.zone == z,
                None => !fixed_zone(b.zone),
            })
            .map(|b| cat.pci_model(&b.model).bus_numbers)
            .sum()
    };
    let added = |zone: Option<Zone>| -> Vec<(usize, f64)> {
        n.iter()
            .filter(|(&t, _)| match zone {
                Some(z) => buses[t].zone == z,
                None => !fixed_zone(buses[t].zone),
            })
            .map(|(&t, &v)| (v, buses[t].bus_numbers as f64))
            .collect()
    };
    for (i, &(nr, zone)) in fixed.iter().enumerate() {
        let limit = fixed
            .get(i + 1)
            .map_or(p.machine.limits.bus_numbers, |&(next, _)| next);
        let room = limit.saturating_sub(nr) as f64 - existing_need(Some(Some(zone))) as f64;
        ilp.row(
            format!("expander range node {zone}"),
            added(Some(Some(zone))),
            f64::NEG_INFINITY,
            room,
        );
    }
    let room = fixed[0].0 as f64 - 1.0 - existing_need(None) as f64;
    ilp.row("root bus range", added(None), f64::NEG_INFINITY, room);
}

fn existing_classes(p: &Problem, cat: &Catalog) -> Vec<BusClass> {
    let mut out = Vec::new();
    for (i, b) in p.buses.iter().enumerate() {
        let m = cat.pci_model(&b.model);
        let mut free_whole = 0;
        for s in m.bus.slots[0]..=m.bus.slots[1] {
            if b.used.get(&s).copied().unwrap_or(0) == 0 {
                free_whole += 1;
            }
        }
        let agg_free: u32 = b
            .aggregate_slots
            .iter()
            .map(|s| {
                u32::from(pci::FUNCTIONS_PER_SLOT)
                    - b.used.get(s).copied().unwrap_or(0).count_ones()
            })
            .sum();
        let has_io = p
            .pinned
            .iter()
            .any(|(&d, a)| a.bus == b.index && p.devs[d].io);
        // Depth: length of the parent chain.
        let mut depth = 0;
        let mut cur = b;
        while let Some(a) = cur.address {
            depth += 1;
            match p.bus(a.bus) {
                Some(parent) if depth < MAX_BUS_CHAIN => cur = parent,
                _ => break,
            }
        }
        if cur.index != 0 && cur.address.is_none() {
            depth += 1;
        }
        out.push(BusClass {
            existing: Some(i),
            model: b.model.clone(),
            zone: b.zone,
            hotplug: b.hotplug,
            depth,
            slots: m.bus.slot_count(),
            free_whole,
            agg_free,
            has_io,
            ub: 0,
            cost: m.cost,
            penalty: 0,
            bus_numbers: m.bus_numbers,
            connect: m.connect,
            aggregate: m.aggregate,
            numa: m.numa,
        });
    }
    out
}

fn template_classes(p: &Problem, cat: &Catalog, relax: Relax) -> Vec<BusClass> {
    let g = &p.machine.grow;
    let mut models: Vec<&String> = Vec::new();
    for m in [
        &g.pcie_port,
        &g.pci_bridge_first,
        &g.pci_bridge,
        &g.pcie_switch_upstream,
        &g.pcie_switch_downstream,
    ]
    .into_iter()
    .flatten()
    {
        if !models.contains(&m) {
            models.push(m);
        }
    }
    let mut zones: Vec<Zone> = vec![None];
    zones.extend((0..p.eff.numa_nodes).map(Some));
    let budget = if relax.bus_numbers {
        RELAXED_BUS_NUMBERS * p.machine.limits.bus_numbers
    } else {
        p.machine.limits.bus_numbers
    };
    let mut out = Vec::new();
    let mut push = |model: &str, zone: Zone, hotplug: bool, penalty: u32, ub: u32| {
        let m = cat.pci_model(model);
        out.push(BusClass {
            existing: None,
            model: model.to_string(),
            zone,
            hotplug,
            depth: INF,
            slots: m.bus.slot_count(),
            free_whole: 0,
            agg_free: 0,
            has_io: false,
            ub,
            cost: m.cost,
            penalty,
            bus_numbers: m.bus_numbers,
            connect: m.connect,
            aggregate: m.aggregate,
            numa: m.numa,
        });
    };
    for &zone in &zones {
        if let (Some(k), Some(x)) = (zone, &g.numa_expander) {
            let have = p
                .buses
                .iter()
                .any(|b| b.zone == Some(k) && cat.pci_model(&b.model).numa);
            if !have {
                push(x, zone, cat.pci_model(x).bus.hotplug, 0, 1);
            }
        }
        for model in &models {
            let m = cat.pci_model(model);
            if m.hotplug_settable {
                if p.eff.root_port_hotplug {
                    push(model, zone, true, 0, budget);
                } else {
                    push(model, zone, false, 0, budget);
                    push(model, zone, true, HOTPLUG_PORT_PENALTY, budget);
                }
            } else {
                push(model, zone, m.bus.hotplug, 0, budget);
            }
        }
    }
    out
}

fn unit_classes(p: &Problem, ordered_alone: bool) -> Vec<UnitClass> {
    /// connect, hotplug, zone, io, mode, existing-only, own class (unplaced controllers).
    type Key = (
        Option<ConnectKind>,
        bool,
        Zone,
        bool,
        Mode,
        bool,
        usize,
        (Option<u32>, Option<u32>),
    );
    let mut map: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (i, u) in p.units.iter().enumerate() {
        let existing_only = matches!(u.what, What::Controller(_));
        // Ordered units are placed one by one: each is a class of its own.
        let solo = if existing_only || (ordered_alone && u.rank.is_some()) {
            i
        } else {
            usize::MAX
        };
        map.entry((
            u.connect,
            u.hotplug,
            u.zone,
            u.io,
            u.mode,
            existing_only,
            solo,
            u.bus_range,
        ))
        .or_default()
        .push(i);
    }
    map.into_iter()
        .map(
            |((connect, hotplug, zone, io, mode, existing_only, _, bus_range), mut units)| {
                units.sort_by_key(|&i| p.units[i].order);
                let rank = match units.as_slice() {
                    [one] if ordered_alone => p.units[*one].rank,
                    _ => None,
                };
                UnitClass {
                    rank,
                    units,
                    template: None,
                    connect,
                    hotplug,
                    zone,
                    io,
                    mode,
                    existing_only,
                    bus_range,
                    extra: false,
                }
            },
        )
        .chain(p.ctx.extra.iter().map(|e| UnitClass {
            units: Vec::new(),
            template: None,
            connect: e.connect,
            hotplug: e.hotplug,
            zone: e.zone,
            io: e.io,
            mode: e.mode,
            existing_only: false,
            bus_range: (None, None),
            extra: true,
            rank: None,
        }))
        .collect()
}

/// Can bus class `h` take a controller of template class `t`?
fn hosts_controller(h: &BusClass, t: &BusClass, cat: &Catalog) -> bool {
    let Some(connect) = t.connect else {
        return false;
    };
    if !cat.pci_model(&h.model).bus.accepts(connect) {
        return false;
    }
    if t.numa {
        h.zone.is_none() && h.is_root()
    } else {
        h.zone == t.zone
    }
}

/// Can a unit of class `u` go on a bus of class `b`?
fn compatible(u: &UnitClass, b: &BusClass, p: &Problem, cat: &Catalog) -> bool {
    let m = cat.pci_model(&b.model);
    if !u.connect.is_some_and(|c| m.bus.accepts(c)) {
        return false;
    }
    if u.hotplug && !b.hotplug {
        return false;
    }
    if u.zone != b.zone {
        return false;
    }
    if u.existing_only && b.existing.is_none() {
        return false;
    }
    // Ordered devices: added buses get indexes above every existing one.
    let index = b.existing.map(|e| p.buses[e].index);
    if let Some(after) = u.bus_range.0 {
        if index.is_some_and(|i| i <= after) {
            return false;
        }
    }
    if let Some(before) = u.bus_range.1 {
        if index.is_none_or(|i| i >= before) {
            return false;
        }
    }
    let endpoint = u.connect.is_some_and(ConnectKind::is_endpoint);
    if endpoint && b.is_root() && m.bus.express && !p.endpoints_on_pcie_root {
        return false;
    }
    true
}
