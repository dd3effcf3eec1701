//! PCI bus numbers: how many each hierarchy consumes and which number the firmware gives
//! each bus. One computation for every user: the bus-number budget of the verifier, the
//! expander ranges the planner hands out, and the bus numbers the outputs show.
//!
//! The firmware (SeaBIOS; OVMF walks the same way when no port reserves extra bus
//! numbers, and devaddr sets no `bus-reserve`) numbers buses depth-first: the root bus
//! is 00, and walking each bus's functions in slot/function order, every bridge, PCIe root
//! port, switch port and the like takes the next free number, then its own bus is walked
//! before the next function of its parent. An expander bus (`pxb-pcie`, `pxb`) is a root
//! bus of its own: its number is its `bus_nr`, and the buses below it continue from there.
//! A model that consumes two numbers (the i440fx `pxb`, whose devices sit behind an
//! internal bridge) has its devices on the second.

use super::{Address, ControllerEntry};
use crate::catalog::PciModel;
use std::collections::{BTreeMap, BTreeSet};

/// The PCI buses of a topology, by controller index (0 = the root bus), each with its
/// catalog model.
pub type PciBuses<'a> = BTreeMap<u32, (&'a ControllerEntry, &'a PciModel)>;

/// The PCI buses plugged into each bus, by (slot, function).
type Children = BTreeMap<u32, Vec<((u8, u8), u32)>>;

/// Bus numbers of a topology: what each hierarchy needs and what each bus gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusNumbering {
    /// Bus numbers the root hierarchy needs: the root bus and every bus not below an
    /// expander bus.
    pub root_need: u32,
    /// Bus numbers each expander bus's hierarchy needs (its own included), by the
    /// expander's controller index: the range `[bus_nr, bus_nr + need)` must hold them.
    pub expander_need: BTreeMap<u32, u32>,
    /// The guest bus number of each PCI bus, by controller index: the number of the bus
    /// the devices addressed to that index sit on, as the firmware assigns it. Buses the
    /// walk does not reach (below an expander without `bus_nr`, or not connected to the
    /// root) have none.
    pub guest: BTreeMap<u32, u32>,
}

impl BusNumbering {
    /// Number the buses of `buses` (which must include the root bus at index 0 to get
    /// guest numbers).
    pub fn new(buses: &PciBuses<'_>) -> BusNumbering {
        let (root_need, expander_need) = needs(buses);
        let mut out = BusNumbering {
            root_need,
            expander_need,
            ..BusNumbering::default()
        };
        // Depth-first numbering.
        let mut children = Children::new();
        for (&i, (c, _)) in buses {
            if let (true, Some(Address::Pci(a))) = (i != 0, &c.address) {
                children
                    .entry(a.bus)
                    .or_default()
                    .push(((a.slot, a.function), i));
            }
        }
        for v in children.values_mut() {
            v.sort();
        }
        let mut seen = BTreeSet::new();
        if buses.contains_key(&0) {
            out.guest.insert(0, 0);
            seen.insert(0);
            let mut next = 1;
            walk(buses, &children, 0, &mut next, &mut seen, &mut out.guest);
        }
        // Expander buses on the root bus, each from its bus_nr.
        for &(_, e) in children.get(&0).into_iter().flatten() {
            let (c, m) = buses[&e];
            let Some(nr) = c.bus_nr.filter(|_| m.numa) else {
                continue;
            };
            if !seen.insert(e) {
                continue;
            }
            out.guest.insert(e, nr + m.bus_numbers.saturating_sub(1));
            let mut next = nr + m.bus_numbers.max(1);
            walk(buses, &children, e, &mut next, &mut seen, &mut out.guest);
        }
        out
    }

    /// The bus numbering of a plan's PCI controllers (`cat` names their models).
    pub fn of_controllers(
        controllers: &[ControllerEntry],
        cat: &crate::catalog::Catalog,
    ) -> BusNumbering {
        BusNumbering::new(&pci_buses(controllers, cat))
    }
}

/// The PCI buses of a plan's controllers: the first controller of each index whose model
/// is a PCI controller model of `cat`.
fn pci_buses<'a>(
    controllers: &'a [ControllerEntry],
    cat: &'a crate::catalog::Catalog,
) -> PciBuses<'a> {
    buses_of(controllers, &super::pci_models(controllers, cat))
}

/// [`pci_buses`] of controllers whose PCI models are looked up already
/// ([`super::pci_models`]).
fn buses_of<'a>(
    controllers: &'a [ControllerEntry],
    models: &[Option<&'a PciModel>],
) -> PciBuses<'a> {
    let mut buses = PciBuses::new();
    for (c, m) in controllers.iter().zip(models) {
        if let Some(m) = m {
            buses.entry(c.index).or_insert((c, m));
        }
    }
    buses
}

/// [`BusNumbering::root_need`] and [`BusNumbering::expander_need`] alone, without the
/// depth-first walk that gives each bus its guest number: what the bus-number budgets
/// read (the verifier, the expander ranges the planner hands out).
pub(crate) fn needs(buses: &PciBuses<'_>) -> (u32, BTreeMap<u32, u32>) {
    needs_of(buses.iter().map(|(&i, &(c, m))| (i, c, m)))
}

/// [`needs`] of buses given as (index, controller, model), indexes distinct.
fn needs_of<'a>(
    buses: impl Iterator<Item = (u32, &'a ControllerEntry, &'a PciModel)>,
) -> (u32, BTreeMap<u32, u32>) {
    // Each bus's parent bus, whether it is an expander and its bus numbers, by index.
    let mut up: super::ByIndex<(Option<u32>, bool)> = super::ByIndex::default();
    let mut own: Vec<(u32, u32)> = Vec::new();
    let mut root_bus: Option<u32> = None;
    for (i, c, m) in buses {
        let parent = match c.address {
            Some(Address::Pci(a)) => Some(a.bus),
            _ => None,
        };
        up.insert(i, (parent, m.numa));
        if i == 0 {
            root_bus = Some(m.bus_numbers);
        } else {
            own.push((i, m.bus_numbers));
        }
    }
    let count = own.len() + usize::from(root_bus.is_some());
    // The hierarchy of each bus: the first expander at or above it (walking up at most
    // as many steps as there are buses, so that a cycle ends).
    let owner = |i: u32| {
        let mut cur = i;
        for _ in 0..=count {
            let &(parent, numa) = up.get(cur)?;
            if numa {
                return Some(cur);
            }
            match parent {
                Some(p) if p != 0 => cur = p,
                _ => return None,
            }
        }
        None
    };
    let mut root_need = root_bus.unwrap_or(1);
    let mut expander_need = BTreeMap::new();
    for (i, numbers) in own {
        match owner(i) {
            Some(e) => *expander_need.entry(e).or_default() += numbers,
            None => root_need += numbers,
        }
    }
    (root_need, expander_need)
}

/// [`needs`] of a plan's PCI controllers, `models` their PCI models
/// ([`super::pci_models`]).
pub(crate) fn needs_of_controllers(
    controllers: &[ControllerEntry],
    models: &[Option<&PciModel>],
) -> (u32, BTreeMap<u32, u32>) {
    // The first controller of each index (as [`pci_buses`] keeps).
    let mut seen: super::ByIndex<()> = super::ByIndex::default();
    let first = controllers
        .iter()
        .zip(models)
        .filter_map(|(c, m)| Some((c.index, c, (*m)?)))
        .filter(|&(i, _, _)| seen.insert(i, ()).is_none());
    needs_of(first)
}

/// Number the buses below `bus` depth-first from `next`; expander buses are skipped (they
/// are numbered from their own `bus_nr`).
fn walk(
    buses: &PciBuses<'_>,
    children: &Children,
    bus: u32,
    next: &mut u32,
    seen: &mut BTreeSet<u32>,
    guest: &mut BTreeMap<u32, u32>,
) {
    for &(_, i) in children.get(&bus).into_iter().flatten() {
        let (_, m) = buses[&i];
        if m.numa || !seen.insert(i) {
            continue;
        }
        guest.insert(i, *next + m.bus_numbers.saturating_sub(1));
        *next += m.bus_numbers.max(1);
        walk(buses, children, i, next, seen, guest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::topology::PciAddress;
    use proptest::prelude::*;

    /// The needs as first written: a map of the buses, each bus's owner found by lookups
    /// in it (the reference the table-based [`needs`] must agree with).
    fn reference(buses: &PciBuses<'_>) -> (u32, BTreeMap<u32, u32>) {
        let parent = |i: u32| match buses.get(&i)?.0.address {
            Some(Address::Pci(a)) => Some(a.bus),
            _ => None,
        };
        let owner = |i: u32| {
            let mut cur = i;
            for _ in 0..=buses.len() {
                let (_, m) = buses.get(&cur)?;
                if m.numa {
                    return Some(cur);
                }
                match parent(cur) {
                    Some(p) if p != 0 => cur = p,
                    _ => return None,
                }
            }
            None
        };
        let mut root_need = buses.get(&0).map_or(1, |(_, m)| m.bus_numbers);
        let mut expander_need = BTreeMap::new();
        for (&i, (_, m)) in buses {
            if i == 0 {
                continue;
            }
            match owner(i) {
                Some(e) => *expander_need.entry(e).or_default() += m.bus_numbers,
                None => root_need += m.bus_numbers,
            }
        }
        (root_need, expander_need)
    }

    proptest! {
        /// Bus-number needs agree with the reference on any controllers: duplicate
        /// indexes, cycles, missing parents, expanders anywhere, large indexes, models of
        /// every kind (storage ones and unknown ones included).
        #[test]
        fn needs_agree_with_the_reference(
            entries in proptest::collection::vec(
                (
                    prop_oneof![0u32..24, 4094u32..4098, any::<u32>()],
                    0usize..64,
                    proptest::option::of(prop_oneof![0u32..24, 4094u32..4098]),
                ),
                0..40,
            ),
        ) {
            let cat = Catalog::embedded();
            let names: Vec<&String> = cat
                .pci
                .keys()
                .chain(cat.storage.keys())
                .collect();
            let controllers: Vec<ControllerEntry> = entries
                .iter()
                .map(|&(index, model, parent)| ControllerEntry {
                    index,
                    model: names
                        .get(model)
                        .map_or_else(|| "unknown".to_string(), |n| n.to_string()),
                    address: parent.map(|b| Address::Pci(PciAddress::new(b, 1, 0))),
                    ..Default::default()
                })
                .collect();
            let buses = pci_buses(&controllers, cat);
            let want = reference(&buses);
            prop_assert_eq!(&needs(&buses), &want);
            let models = crate::topology::pci_models(&controllers, cat);
            prop_assert_eq!(&needs_of_controllers(&controllers, &models), &want);
        }
    }
}
