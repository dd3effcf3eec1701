//! Demand: every unit placed (or kept at its previous slot), every added controller
//! placed, and the capacity question's units counted.

use super::Model;
use crate::solve::origin::RowOrigin;

impl Model<'_> {
    /// One row per unit class: `place template …`, `extra …` or `demand …`.
    pub(super) fn demand_rows(&mut self) {
        for (ui, u) in self.units.iter().enumerate() {
            let mut terms: Vec<(usize, f64)> = self
                .x
                .range((ui, 0)..(ui + 1, 0))
                .map(|(_, &v)| (v, 1.0))
                .collect();
            match u.template {
                Some(t) => {
                    terms.push((self.n[&t], -1.0));
                    self.ilp
                        .row(RowOrigin::PlaceTemplate { bus: t }, terms, 0.0, 0.0);
                }
                None if u.extra => {
                    if let Some((_, m)) = self.extra {
                        terms.push((m, -1.0));
                    }
                    self.ilp
                        .row(RowOrigin::ExtraDemand { unit: ui }, terms, 0.0, 0.0);
                }
                None => {
                    terms.extend(
                        u.units
                            .iter()
                            .filter_map(|unit| self.keep.get(unit))
                            .map(|&v| (v, 1.0)),
                    );
                    let c = u.units.len() as f64;
                    self.ilp.row(RowOrigin::Demand { unit: ui }, terms, c, c);
                }
            }
        }
    }
}
