//! The classes of the program: existing buses, templates of controllers to add (with
//! their depth, kept only when reachable and useful), and unit classes; and which class
//! may hold which.

use super::{BusClass, Relax, UnitClass, INF};
use crate::catalog::Catalog;
use crate::limits::MAX_BUS_CHAIN;
use crate::normalize::{counts_for_reserve, Mode, Problem, Unit, What, Zone};
use crate::vocab::{pci, ConnectKind};
use std::collections::BTreeMap;

/// Weight in the second objective of a hotpluggable port of a model whose hotplug can be
/// switched off, when the policy prefers ports without hotplug (`root_port_hotplug: false`):
/// among plans with equally many controllers, fewer hotpluggable ports win.
const HOTPLUG_PORT_PENALTY: u32 = 1;

/// With the bus-number budget relaxed (to explain an infeasible program), each template
/// class may add this many times the machine's bus numbers.
const RELAXED_BUS_NUMBERS: u32 = 16;

/// The bus classes (existing ones first, then the useful templates) and the unit classes
/// (one per template last).
pub(super) fn classes(p: &Problem, cat: &Catalog, relax: Relax) -> (Vec<BusClass>, Vec<UnitClass>) {
    let mut buses = existing_classes(p, cat, relax);
    let n_existing = buses.len();
    if !relax.templates {
        buses.extend(template_classes(p, cat, relax));
    }
    let mut units = unit_classes(p, relax);
    template_lanes(&mut buses, n_existing, cat);
    template_depths(&mut buses, n_existing, cat);
    let buses = useful_templates(p, cat, buses, n_existing, &units);
    units.extend(template_unit_classes(&buses, n_existing));
    (buses, units)
}

/// Template depths: the shortest hosting chain from an existing bus.
fn template_depths(buses: &mut [BusClass], n_existing: usize, cat: &Catalog) {
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
}

/// Template lanes: one-slot ports every possible host of which is a root bus or a lane
/// (the largest such set: start from every one-slot template, drop until stable). Before
/// the depths: a private entry's hosts are lanes.
fn template_lanes(buses: &mut [BusClass], n_existing: usize, cat: &Catalog) {
    for b in buses.iter_mut().skip(n_existing) {
        b.lane = b.slots == 1 && b.set.is_none();
    }
    loop {
        let mut changed = false;
        for t in n_existing..buses.len() {
            if !buses[t].lane {
                continue;
            }
            let bad = (0..buses.len()).any(|h| {
                h != t
                    && !buses[h].root_like()
                    && !buses[h].lane
                    && hosts_controller(&buses[h], &buses[t], cat)
            });
            if bad {
                buses[t].lane = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// Keep only templates that are reachable and useful: they count for a hotplug reserve,
/// host some unit class, or host a useful template deeper down.
fn useful_templates(
    p: &Problem,
    cat: &Catalog,
    buses: Vec<BusClass>,
    n_existing: usize,
    units: &[UnitClass],
) -> Vec<BusClass> {
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
    buses
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i < n_existing || useful[*i])
        .map(|(_, b)| b)
        .collect()
}

/// One unit class per template bus class: its instances must be placed too.
fn template_unit_classes(buses: &[BusClass], n_existing: usize) -> Vec<UnitClass> {
    buses
        .iter()
        .enumerate()
        .skip(n_existing)
        .map(|(t, b)| UnitClass {
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
            root: false,
            apart: false,
            set: b.set,
        })
        .collect()
}

/// An existing bus is a lane when it and every bus above it up to a root bus has one slot.
fn lane_of(p: &Problem, cat: &Catalog, b: &crate::normalize::Bus) -> bool {
    let mut cur = b;
    for _ in 0..MAX_BUS_CHAIN {
        let m = cat.pci_model(&cur.model);
        if cur.index == 0 || m.numa {
            return !std::ptr::eq(cur, b);
        }
        if m.bus.slot_count() != 1 {
            return false;
        }
        match cur.address.and_then(|a| p.bus(a.bus)) {
            Some(parent) => cur = parent,
            None => return false,
        }
    }
    false
}

fn existing_classes(p: &Problem, cat: &Catalog, relax: Relax) -> Vec<BusClass> {
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
        let lane = lane_of(p, cat, b);
        let set = b
            .set
            .filter(|j| p.sets.get(j).is_none_or(|i| !dropped(i, relax)));
        out.push(BusClass {
            set,
            entry: false,
            private: false,
            lane,
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

/// The models the machine grows with (ports, bridges, switch ports), each once.
fn grow_models<'p>(p: &'p Problem) -> Vec<&'p String> {
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
    models
}

/// The together tags of a zone's templates: none (the buses outside together sets),
/// and for each together component outside the nodes its entry (a switch or bridge, at
/// most one, unless its pinned devices already have one) and the buses below it.
fn set_tags(p: &Problem, zone: Zone, relax: Relax) -> Vec<Option<(usize, bool)>> {
    let mut tags: Vec<Option<(usize, bool)>> = vec![None];
    for (&j, info) in &p.sets {
        if info.zone != zone || dropped(info, relax) {
            continue;
        }
        if info.anchor.is_none() {
            tags.push(Some((j, true)));
        }
        tags.push(Some((j, false)));
    }
    tags
}

/// Whether a relaxed program drops the set (its together component, or the apart
/// requirement its private bridge serves).
fn dropped(info: &crate::normalize::SetInfo, relax: Relax) -> bool {
    if info.private {
        relax.placement.apart
    } else {
        relax.placement.together
    }
}

fn template_classes(p: &Problem, cat: &Catalog, relax: Relax) -> Vec<BusClass> {
    let g = &p.machine.grow;
    let models = grow_models(p);
    let mut zones: Vec<Zone> = vec![None];
    zones.extend((0..p.eff.numa_nodes).map(Some));
    let budget = if relax.bus_numbers {
        RELAXED_BUS_NUMBERS * p.machine.limits.bus_numbers
    } else {
        p.machine.limits.bus_numbers
    };
    let mut out = Vec::new();
    let mut push = |model: &str, zone: Zone, hotplug: bool, penalty: u32, ub: u32, set| {
        let m = cat.pci_model(model);
        let (set, entry) = match set {
            Some((j, entry)) => (Some(j), entry),
            None => (None, false),
        };
        let private = set.is_some_and(|j| p.sets.get(&j).is_some_and(|i| i.private));
        out.push(BusClass {
            set,
            entry,
            private,
            lane: false,
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
                push(x, zone, cat.pci_model(x).bus.hotplug, 0, 1, None);
            }
        }
        for tag in set_tags(p, zone, relax) {
            for model in &models {
                let m = cat.pci_model(model);
                if tag.is_some_and(|(_, entry)| entry) && (m.bus.slot_count() < 2 || m.numa) {
                    continue;
                }
                let ub = if tag.is_some_and(|(_, entry)| entry) {
                    1
                } else {
                    budget
                };
                if m.hotplug_settable {
                    if p.eff.root_port_hotplug {
                        push(model, zone, true, 0, ub, tag);
                    } else {
                        push(model, zone, false, 0, ub, tag);
                        push(model, zone, true, HOTPLUG_PORT_PENALTY, ub, tag);
                    }
                } else {
                    push(model, zone, m.bus.hotplug, 0, ub, tag);
                }
            }
        }
    }
    out
}

/// connect, hotplug, zone, io, mode, existing-only, own class (unplaced controllers,
/// ordered and apart units), bus range, placement (root, apart, together set).
type Key = (
    Option<ConnectKind>,
    bool,
    Zone,
    bool,
    Mode,
    bool,
    usize,
    (Option<u32>, Option<u32>),
    (bool, bool, Option<usize>),
);

/// The class key of unit `i`: units with equal keys are interchangeable.
fn unit_key(p: &Problem, i: usize, u: &Unit, relax: Relax) -> Key {
    let existing_only = matches!(u.what, What::Controller(_));
    let root = u.root && !relax.placement.root;
    let apart = u.apart && !relax.placement.apart;
    let set = u
        .set
        .filter(|j| p.sets.get(j).is_none_or(|info| !dropped(info, relax)));
    // Ordered and apart units are placed one by one: each is a class of its own.
    let solo = if existing_only || (!relax.order && u.rank.is_some()) || apart {
        i
    } else {
        usize::MAX
    };
    (
        u.connect,
        u.hotplug,
        u.zone,
        u.io,
        u.mode,
        existing_only,
        solo,
        u.bus_range,
        (root, apart, set),
    )
}

fn unit_classes(p: &Problem, relax: Relax) -> Vec<UnitClass> {
    let ordered_alone = !relax.order;
    let mut map: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (i, u) in p.units.iter().enumerate() {
        map.entry(unit_key(p, i, u, relax)).or_default().push(i);
    }
    map.into_iter()
        .map(
            |(
                (connect, hotplug, zone, io, mode, existing_only, _, bus_range, (root, apart, set)),
                mut units,
            )| {
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
                    root,
                    apart,
                    set,
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
            root: false,
            apart: false,
            set: None,
        }))
        .collect()
}

/// Can bus class `h` take a controller of template class `t`?
pub(super) fn hosts_controller(h: &BusClass, t: &BusClass, cat: &Catalog) -> bool {
    let Some(connect) = t.connect else {
        return false;
    };
    // The placement rules first, the catalog's (a lookup by model name) last.
    let placed = if t.numa {
        h.zone.is_none() && h.is_root()
    } else if t.entry {
        h.zone == t.zone && h.set.is_none() && (!t.private || h.root_like() || h.lane)
    } else {
        h.zone == t.zone && h.set == t.set
    };
    placed && cat.pci_model(&h.model).bus.accepts(connect)
}

/// Can a unit of class `u` go on a bus of class `b`?
pub(super) fn compatible(u: &UnitClass, b: &BusClass, p: &Problem, cat: &Catalog) -> bool {
    // The class fields first, the catalog's model (a lookup by name) once they agree.
    if u.hotplug && !b.hotplug {
        return false;
    }
    if u.zone != b.zone {
        return false;
    }
    if u.existing_only && b.existing.is_none() {
        return false;
    }
    if u.set != b.set {
        return false;
    }
    let m = cat.pci_model(&b.model);
    if !u.connect.is_some_and(|c| m.bus.accepts(c)) {
        return false;
    }
    if u.root {
        // The machine's root bus only; an integrated endpoint whatever the preset.
        return b.existing.is_some_and(|e| p.buses[e].index == 0);
    }
    if u.apart && u.set.is_none() && !(b.root_like() || b.lane) {
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
