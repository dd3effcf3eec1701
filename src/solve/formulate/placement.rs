//! Placement: a together component outside the NUMA nodes hangs below one switch or
//! bridge. Its buses are classes of their own (`BusClass::set`), reachable only through
//! its entry classes (one per switch or bridge model): at most one entry in all.
//! An apart unit no root bus or lane takes gets such a set of its own (a private
//! bridge), whose entry plugs into a root bus or a lane only. `placement: root` and
//! `apart` are otherwise compatibility alone (see `classes::compatible`).

use super::Model;
use crate::solve::origin::RowOrigin;
use std::collections::BTreeMap;

impl Model<'_> {
    /// `together set …`: the entry instances of each component sum to at most one.
    pub(super) fn entry_rows(&mut self) {
        let mut by_set: BTreeMap<usize, Vec<(usize, f64)>> = BTreeMap::new();
        for (&t, &v) in &self.n {
            let b = &self.buses[t];
            if let (true, Some(j)) = (b.entry, b.set) {
                by_set.entry(j).or_default().push((v, 1.0));
            }
        }
        for (set, terms) in by_set {
            if terms.len() > 1 {
                self.ilp
                    .row(RowOrigin::OneEntry { set }, terms, f64::NEG_INFINITY, 1.0);
            }
        }
    }
}
