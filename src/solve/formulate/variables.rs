//! The variables of the program (`extra`, `n_b`, `x_ub`) and their bounds, tightened
//! from what could ever be placed, with the rows that link unit classes to the instances
//! of added bus classes.

use super::classes::{compatible, hosts_controller};
use super::{BusClass, Model, Relax, UnitClass, FUNCTIONS_PER_SLOT};
use crate::catalog::Catalog;
use crate::normalize::{counts_for_reserve, Problem};
use crate::solve::backend::Ilp;
use crate::solve::origin::{RowOrigin, VarOrigin};
use std::collections::BTreeMap;

impl<'a> Model<'a> {
    /// A model with the classes and no variables yet.
    pub(super) fn new(
        p: &'a Problem<'a>,
        cat: &'a Catalog,
        relax: Relax,
        buses: Vec<BusClass>,
        units: Vec<UnitClass>,
    ) -> Self {
        Model {
            p,
            cat,
            relax,
            buses,
            units,
            ilp: Ilp::default(),
            x: BTreeMap::new(),
            n: BTreeMap::new(),
            extra: None,
            most: Vec::new(),
            keep: BTreeMap::new(),
            occ: BTreeMap::new(),
            pack_slots: Vec::new(),
            used: Vec::new(),
        }
    }

    /// The variables: the capacity question's demand, the count `n_b` of each template
    /// class, and `x_ub` for each unit class and bus class that may hold it.
    pub(super) fn variables(&mut self) {
        let (p, cat) = (self.p, self.cat);
        let ilp = &mut self.ilp;
        self.extra = self.units.iter().position(|u| u.extra).map(|ui| {
            let max = p.ctx.extra.as_ref().map_or(0, |e| e.max);
            (ui, ilp.var(VarOrigin::Extra, 0.0, max as f64))
        });
        for (t, b) in self.buses.iter().enumerate() {
            if b.existing.is_some() {
                continue;
            }
            let v = self
                .ilp
                .var(VarOrigin::Controllers { bus: t }, 0.0, b.ub as f64);
            self.n.insert(t, v);
        }
        let buses = &self.buses;
        for (ui, u) in self.units.iter().enumerate() {
            for (bi, b) in buses.iter().enumerate() {
                let ok = match u.template {
                    Some(t) => {
                        t != bi && b.depth < buses[t].depth && hosts_controller(b, &buses[t], cat)
                    }
                    None => compatible(u, b, p, cat),
                };
                if ok {
                    let v =
                        self.ilp
                            .var(VarOrigin::Placed { unit: ui, bus: bi }, 0.0, f64::INFINITY);
                    self.x.insert((ui, bi), v);
                }
            }
        }
    }

    /// Tighten: at most as many controllers of a class as could ever be used, and no unit
    /// class on an added bus class unless an instance of it exists (per-class linking
    /// rows, much tighter in the relaxation than the capacity rows alone).
    pub(super) fn tighten(&mut self) {
        self.tighten_counts();
        self.force_needed();
        for (&(ui, bi), &v) in self.x.iter() {
            let m = self.most[ui];
            self.ilp.vars[v].hi = self.ilp.vars[v].hi.min(m);
            let Some(&nv) = self.n.get(&bi) else { continue };
            let per_instance = self.buses[bi].slots as f64 * FUNCTIONS_PER_SLOT;
            if m < per_instance {
                self.ilp.row(
                    RowOrigin::Link { unit: ui, bus: bi },
                    vec![(v, 1.0), (nv, -m)],
                    f64::NEG_INFINITY,
                    0.0,
                );
            }
        }
    }

    /// The most units of each class that could ever be placed (its demand; for a template
    /// class, the most instances that could be used), with the template counts' upper
    /// bounds lowered to it. Deepest templates first, so a parent's bound counts its
    /// children's.
    fn tighten_counts(&mut self) {
        let (p, cat) = (self.p, self.cat);
        let ilp = &mut self.ilp;
        let n = &self.n;
        let mut most: Vec<f64> = self
            .units
            .iter()
            .map(|u| match (u.template, u.extra) {
                (Some(t), _) => n.get(&t).map_or(0.0, |&v| ilp.vars[v].hi),
                (None, true) => p.ctx.extra.as_ref().map_or(0, |e| e.max) as f64,
                (None, false) => u.units.len() as f64,
            })
            .collect();
        let template_unit = template_units(&self.units);
        let mut order: Vec<usize> = n.keys().copied().collect();
        order.sort_by_key(|&t| std::cmp::Reverse(self.buses[t].depth));
        for t in order {
            let b = &self.buses[t];
            let mut need: f64 = (0..self.units.len())
                .filter(|&ui| self.x.contains_key(&(ui, t)))
                .map(|ui| most[ui])
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
        self.most = most;
    }

    /// A controller class that every placement of some requirement passes through is
    /// needed at least once: its count gets a lower bound of one. A unit class with
    /// demand needs template `t` when all its compatible buses do (see [`Self::needs`]); a
    /// NUMA node's hotplug reserve needs `t` when every class that could hold it does
    /// (e.g. the node's expander bus).
    fn force_needed(&mut self) {
        let mut by_unit: Vec<Vec<usize>> = vec![Vec::new(); self.units.len()];
        for &(u, b) in self.x.keys() {
            by_unit[u].push(b);
        }
        let template_unit = template_units(&self.units);
        let n: Vec<(usize, usize)> = self.n.iter().map(|(&t, &v)| (t, v)).collect();
        for (t, nv) in n {
            let needs = self.needs(t, &template_unit, &by_unit);
            let unit_needs = self.units.iter().enumerate().any(|(ui, u)| {
                let demand = u.template.is_none() && !u.extra && !u.units.is_empty();
                let h = &by_unit[ui];
                demand && !h.is_empty() && h.iter().all(|&b| needs[b])
            });
            let reserve_needs = self.reserve_needs(t, &needs);
            let ilp = &mut self.ilp;
            if (unit_needs || reserve_needs) && ilp.vars[nv].hi >= 1.0 {
                ilp.vars[nv].lo = ilp.vars[nv].lo.max(1.0);
            }
        }
    }

    /// `needs[c]`: bus class `c` cannot exist without an instance of template `t` — `c`
    /// is `t`, or `c` is itself a template whose every possible host needs `t` (existing
    /// buses need nothing). `hosts[u]`: the bus classes unit class `u` may use.
    fn needs(
        &self,
        t: usize,
        template_unit: &BTreeMap<usize, usize>,
        hosts: &[Vec<usize>],
    ) -> Vec<bool> {
        let mut needs = vec![false; self.buses.len()];
        needs[t] = true;
        loop {
            let mut changed = false;
            for (c, &ui) in template_unit {
                if needs[*c] {
                    continue;
                }
                let h = &hosts[ui];
                if !h.is_empty() && h.iter().all(|&b| needs[b]) {
                    needs[*c] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        needs
    }

    /// Whether the hotplug reserve of template `t`'s NUMA node needs an instance of `t`:
    /// the node's existing buses cannot hold it, and every template that could needs `t`.
    fn reserve_needs(&self, t: usize, needs: &[bool]) -> bool {
        let (p, cat, buses) = (self.p, self.cat, &self.buses);
        buses[t].zone.is_some_and(|k| {
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
        })
    }
}

/// The unit class that places each template bus class (template → unit class).
fn template_units(units: &[UnitClass]) -> BTreeMap<usize, usize> {
    units
        .iter()
        .enumerate()
        .filter_map(|(ui, u)| u.template.map(|t| (t, ui)))
        .collect()
}
