//! Capacity and reserves: the slots each bus class's units use (whole slots, and slots
//! shared by eight functions of aggregated root ports or packed devices) within its free
//! slots or its instances' slots; packed units' slot cover; the hotplug reserves.

use super::{Model, FUNCTIONS_PER_SLOT};
use crate::normalize::{counts_for_reserve, Mode, Zone};
use crate::solve::origin::{PackSet, RowOrigin, VarOrigin};
use std::collections::{BTreeMap, BTreeSet};

impl Model<'_> {
    /// `capacity …` per bus class (with the `… fill …` rows of its shared slots), and the
    /// slots it uses as terms for the reserves.
    pub(super) fn capacity_rows(&mut self) {
        self.used = vec![Vec::new(); self.buses.len()];
        for bi in 0..self.buses.len() {
            let used = self.slots_used(bi);
            self.capacity_row(bi, used.clone());
            self.used[bi] = used;
        }
    }

    /// The slots used on bus class `bi`: whole units, kept slots, and one variable per
    /// kind of shared slot (aggregated, packed) with the row its functions fill.
    fn slots_used(&mut self, bi: usize) -> Vec<(usize, f64)> {
        let on_b: Vec<(usize, Mode)> = self
            .units
            .iter()
            .enumerate()
            .filter_map(|(ui, u)| self.x.get(&(ui, bi)).map(|&v| (v, u.mode)))
            .collect();
        let mut used: Vec<(usize, f64)> = on_b
            .iter()
            .filter(|(_, m)| *m == Mode::Whole)
            .map(|&(v, _)| (v, 1.0))
            .collect();
        used.extend(
            self.occ
                .iter()
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
            let packed = mode == Mode::Pack;
            let s = self.ilp.var(
                VarOrigin::SharedSlots { bus: bi, packed },
                0.0,
                f64::INFINITY,
            );
            if mode == Mode::Pack {
                self.pack_slots.push((bi, s));
            }
            let mut row = members;
            row.push((s, -FUNCTIONS_PER_SLOT));
            let spare = if mode == Mode::Aggregate {
                self.buses[bi].agg_free
            } else {
                0
            };
            self.ilp.row(
                RowOrigin::Fill { bus: bi, packed },
                row,
                f64::NEG_INFINITY,
                spare as f64,
            );
            used.push((s, 1.0));
        }
        used
    }

    /// The slots `used` on bus class `bi` fit its instances, or its free slots.
    fn capacity_row(&mut self, bi: usize, mut row: Vec<(usize, f64)>) {
        let b = &self.buses[bi];
        match self.n.get(&bi) {
            Some(&nv) => {
                row.push((nv, -(b.slots as f64)));
                self.ilp
                    .row(RowOrigin::Capacity { bus: bi }, row, f64::NEG_INFINITY, 0.0);
            }
            None => {
                let cap = if self.relax.root_slots && b.is_root() {
                    f64::INFINITY
                } else {
                    b.free_whole as f64
                };
                self.ilp
                    .row(RowOrigin::Capacity { bus: bi }, row, f64::NEG_INFINITY, cap)
            }
        }
    }

    /// Packed units fill whole slots, eight to a slot. For every set of bus classes some
    /// packed unit class is confined to, the units confined to that set need at least the
    /// ceiling of their number over eight packed slots on it (the relaxation alone spreads
    /// fractions of slots over classes, e.g. a NUMA zone's root ports and its bridges).
    pub(super) fn pack_cover_rows(&mut self) {
        if !self.p.ctx.previous.is_empty() {
            return;
        }
        let slot_of: BTreeMap<usize, usize> = self.pack_slots.iter().copied().collect();
        // Each packed unit class: the bus classes it may use, its units to place, itself.
        let mut confined: Vec<(BTreeSet<usize>, usize, usize)> = Vec::new();
        let mut zones: BTreeMap<Zone, BTreeSet<usize>> = BTreeMap::new();
        for (ui, u) in self.units.iter().enumerate() {
            if u.mode != Mode::Pack || u.template.is_some() || u.extra {
                continue;
            }
            let placed = u
                .units
                .iter()
                .filter(|i| !self.keep.contains_key(i))
                .count();
            let hosts = self
                .x
                .range((ui, 0)..(ui + 1, 0))
                .map(|(&(_, b), _)| b)
                .filter(|b| slot_of.contains_key(b))
                .collect();
            if placed > 0 {
                zones.entry(u.zone).or_default().extend(&hosts);
                confined.push((hosts, placed, ui));
            }
        }
        // The sets: each class's own, and each NUMA zone's (every class of the zone),
        // each named by the first that has it.
        let mut sets: BTreeMap<BTreeSet<usize>, PackSet> = BTreeMap::new();
        for (h, _, ui) in &confined {
            sets.entry(h.clone()).or_insert(PackSet::Class(*ui));
        }
        for (zone, h) in zones {
            sets.entry(h).or_insert(PackSet::Zone(zone));
        }
        for (hosts, set) in sets {
            let demand: usize = confined
                .iter()
                .filter(|(h, _, _)| h.is_subset(&hosts))
                .map(|&(_, d, _)| d)
                .sum();
            let need = (demand as f64 / FUNCTIONS_PER_SLOT).ceil();
            let slots: Vec<(usize, f64)> = hosts.iter().map(|b| (slot_of[b], 1.0)).collect();
            if need > 0.0 && !slots.is_empty() {
                self.ilp
                    .row(RowOrigin::PackCover { set }, slots, need, f64::INFINITY);
            }
        }
    }

    /// Hotplug reserves: free hotpluggable slots in total, and per NUMA node.
    pub(super) fn reserve_rows(&mut self) {
        let eff = &self.p.eff;
        let mut zones: Vec<(Option<Zone>, u32)> = vec![(None, eff.hotplug_reserve)];
        for k in 0..eff.numa_nodes {
            zones.push((Some(Some(k)), eff.hotplug_reserve_per_node));
        }
        for (zone, need) in zones {
            if need != 0 {
                self.reserve_row(zone, need);
            }
        }
    }

    /// `need` free hotpluggable slots on the bus classes of `zone` (all when `None`).
    fn reserve_row(&mut self, zone: Option<Zone>, need: u32) {
        let (p, cat) = (self.p, self.cat);
        let mut terms = Vec::new();
        let mut constant = 0.0;
        for (bi, b) in self.buses.iter().enumerate() {
            if !b.hotplug || !counts_for_reserve(cat, &p.machine, &b.model) {
                continue;
            }
            if zone.is_some_and(|z| z != b.zone) {
                continue;
            }
            match self.n.get(&bi) {
                Some(&nv) => terms.push((nv, b.slots as f64)),
                None => constant += b.free_whole as f64,
            }
            terms.extend(self.used[bi].iter().map(|&(v, c)| (v, -c)));
        }
        self.ilp.row(
            RowOrigin::Reserve {
                node: zone.flatten(),
            },
            terms,
            need as f64 - constant,
            f64::INFINITY,
        );
    }
}
