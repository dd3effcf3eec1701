//! The catalog entries of a plan's controllers and devices, looked up once: the stages
//! after decoding (assembly, the verifier) read a controller's PCI model or a device's
//! kind many times, and a plan names only a few distinct models among many entries.

use super::ControllerEntry;
use crate::catalog::{Catalog, Kind, PciModel};

/// The PCI controller model of each of `controllers` (by position; `None` for storage
/// controllers and unknown models).
pub(crate) fn pci_models<'c>(
    controllers: &[ControllerEntry],
    cat: &'c Catalog,
) -> Vec<Option<&'c PciModel>> {
    let mut seen = Memo::default();
    controllers
        .iter()
        .map(|c| seen.get(&c.model, |m| cat.pci.get(m)))
        .collect()
}

/// Lookups by name, each distinct name once (a plan has few distinct names, so a list
/// searched from the last name found beats a map).
pub(crate) struct Memo<'n, T> {
    found: Vec<(&'n str, T)>,
    last: usize,
}

impl<T> Default for Memo<'_, T> {
    fn default() -> Self {
        Memo {
            found: Vec::new(),
            last: 0,
        }
    }
}

impl<'n, T: Copy> Memo<'n, T> {
    /// What `look_up` gives for `name`, asked only for a name not seen before.
    pub(crate) fn get(&mut self, name: &'n str, look_up: impl FnOnce(&str) -> T) -> T {
        if let Some((n, v)) = self.found.get(self.last) {
            if *n == name {
                return *v;
            }
        }
        if let Some(k) = self.found.iter().position(|(n, _)| *n == name) {
            self.last = k;
            return self.found[k].1;
        }
        let v = look_up(name);
        self.last = self.found.len();
        self.found.push((name, v));
        v
    }
}

/// The catalog kind of each name of `names` (device kinds, or controller models that a
/// kind may name), in order.
pub(crate) fn kinds<'c, 'n>(
    names: impl Iterator<Item = &'n str>,
    cat: &'c Catalog,
) -> Vec<Option<&'c Kind>> {
    let mut seen: Memo<'n, Option<&'c Kind>> = Memo::default();
    names.map(|n| seen.get(n, |n| cat.kind(n))).collect()
}

/// Values by controller index: a table for the small indexes every plan has, a map
/// above (an index is any u32 in a spec). Inserting an index again replaces its value.
#[derive(Debug, Clone)]
pub(crate) struct ByIndex<T> {
    table: Vec<Option<T>>,
    rest: std::collections::BTreeMap<u32, T>,
}

/// Indexes below this are held in the table.
const TABLE_INDEXES: u32 = 4096;

impl<T> Default for ByIndex<T> {
    fn default() -> Self {
        ByIndex {
            table: Vec::new(),
            rest: std::collections::BTreeMap::new(),
        }
    }
}

impl<T> ByIndex<T> {
    /// Set the value of `index`; returns the one it had.
    pub(crate) fn insert(&mut self, index: u32, value: T) -> Option<T> {
        if index < TABLE_INDEXES {
            let i = index as usize;
            if i >= self.table.len() {
                self.table.resize_with(i + 1, || None);
            }
            self.table[i].replace(value)
        } else {
            self.rest.insert(index, value)
        }
    }

    pub(crate) fn get(&self, index: u32) -> Option<&T> {
        if index < TABLE_INDEXES {
            self.table.get(index as usize)?.as_ref()
        } else {
            self.rest.get(&index)
        }
    }
}

impl<T> FromIterator<(u32, T)> for ByIndex<T> {
    fn from_iter<I: IntoIterator<Item = (u32, T)>>(iter: I) -> Self {
        let mut out = ByIndex::default();
        for (i, v) in iter {
            out.insert(i, v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// A [`ByIndex`] answers as a `BTreeMap` given the same inserts, indexes small
        /// and large (beyond the table) alike.
        #[test]
        fn by_index_answers_as_a_map(
            ops in proptest::collection::vec(
                (prop_oneof![0u32..64, 4090u32..4100, any::<u32>()], any::<u8>()),
                0..200,
            ),
            probes in proptest::collection::vec(
                prop_oneof![0u32..64, 4090u32..4100, any::<u32>()],
                0..50,
            ),
        ) {
            let mut table = ByIndex::default();
            let mut map = BTreeMap::new();
            for &(i, v) in &ops {
                prop_assert_eq!(table.insert(i, v), map.insert(i, v));
            }
            for i in probes.iter().copied().chain(ops.iter().map(|&(i, _)| i)) {
                prop_assert_eq!(table.get(i), map.get(&i));
            }
            let collected: ByIndex<u8> = ops.iter().copied().collect();
            for &(i, _) in &ops {
                prop_assert_eq!(collected.get(i), map.get(&i));
            }
        }

        /// A [`Memo`] gives for each name what the lookup gives, asking it once per
        /// distinct name.
        #[test]
        fn memo_answers_as_the_lookup(names in proptest::collection::vec("[a-c]{0,3}", 0..60)) {
            let look_up = |n: &str| n.len() * 7 + n.bytes().map(usize::from).sum::<usize>();
            let mut memo = Memo::default();
            let mut asked = Vec::new();
            for n in &names {
                let got = memo.get(n, |n| {
                    asked.push(n.to_string());
                    look_up(n)
                });
                prop_assert_eq!(got, look_up(n));
            }
            let mut distinct = names.clone();
            distinct.sort();
            distinct.dedup();
            asked.sort();
            prop_assert_eq!(asked, distinct);
        }
    }

    /// The models and kinds looked up once are the catalog's, entry by entry.
    #[test]
    fn lookups_are_the_catalogs() {
        let cat = Catalog::embedded();
        let names: Vec<String> = cat
            .pci
            .keys()
            .chain(cat.storage.keys())
            .cloned()
            .chain(cat.kinds.iter().map(|k| k.kind.clone()))
            .chain(["nothing".to_string(), String::new()])
            .collect();
        // Every name several times, in an order that revisits earlier ones.
        let order: Vec<&String> = (0..names.len() * 3)
            .map(|k| &names[(k * 7) % names.len()])
            .collect();
        let controllers: Vec<ControllerEntry> = order
            .iter()
            .map(|n| ControllerEntry {
                model: n.to_string(),
                ..Default::default()
            })
            .collect();
        let models = pci_models(&controllers, cat);
        for (c, m) in controllers.iter().zip(&models) {
            assert_eq!(
                m.map(|m| m as *const _),
                cat.pci.get(&c.model).map(|m| m as *const _)
            );
        }
        let found = kinds(order.iter().map(|n| n.as_str()), cat);
        for (n, k) in order.iter().zip(&found) {
            assert_eq!(k.map(|k| k as *const _), cat.kind(n).map(|k| k as *const _));
        }
    }
}
