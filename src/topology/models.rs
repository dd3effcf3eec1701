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
