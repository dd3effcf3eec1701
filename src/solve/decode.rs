//! decode: turn the solved class counts into concrete controllers, indexes, slots and
//! functions. Deterministic: buses are filled in index order, slots from the lowest, and
//! units in spec order (I/O devices first on bridges so that fewest bridges need windows).

use super::backend::Status;
use super::formulate::Formulation;
use crate::catalog::Catalog;
use crate::normalize::{Mode, Problem, What, Zone};
use crate::topology::PciAddress;
use crate::vocab::pci;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A PCI bus instance after decoding (existing or added).
#[derive(Debug, Clone)]
pub(crate) struct Inst {
    pub index: u32,
    pub model: String,
    pub zone: Zone,
    pub hotplug: bool,
    pub address: Option<PciAddress>,
    /// Position in `Problem::buses` for existing buses.
    pub existing: Option<usize>,
    /// Used functions per slot (bit f = function f), by slot number (changed through
    /// [`Inst::mark`] only, which keeps `occupied` and `full_slots` with it).
    used: [u8; SLOTS],
    /// Slots with a function in use (bit s = slot s).
    occupied: u32,
    /// Slots with every function in use (bit s = slot s).
    full_slots: u32,
    /// Slots shared by aggregating controllers (bit s = slot s).
    agg_slots: u32,
    /// Slots shared by packed functions (bit s = slot s).
    pack_slots: u32,
    lo: u8,
    hi: u8,
}

/// Slots of a PCI bus.
const SLOTS: usize = pci::SLOTS_PER_BUS as usize;

/// A set of slots as bits (slot numbers are below [`SLOTS`]; checked when pins are read).
fn slot_bits(slots: impl IntoIterator<Item = u8>) -> u32 {
    slots
        .into_iter()
        .filter(|&s| usize::from(s) < SLOTS)
        .fold(0, |bits, s| bits | 1 << s)
}

/// The slots of a set of bits, lowest first.
fn bit_slots(mut bits: u32) -> impl Iterator<Item = u8> {
    std::iter::from_fn(move || {
        let s = bits.trailing_zeros();
        bits &= bits.wrapping_sub(1);
        (s < u32::BITS).then_some(s as u8)
    })
}

/// The concrete PCI placement.
#[derive(Debug, Clone, Default)]
pub(crate) struct Placement {
    /// Every PCI bus, by index.
    pub buses: BTreeMap<u32, Inst>,
    /// Addresses of spec devices placed here, by spec position (pins are in
    /// `Problem::pinned`).
    pub devices: Vec<Option<PciAddress>>,
    /// Addresses of implicit storage controllers (by position in `Problem::storage`).
    pub storage: BTreeMap<usize, PciAddress>,
    /// How far the search went.
    pub status: Status,
}

impl Placement {
    /// The spec devices placed here (by spec position) with their addresses.
    pub fn placed(&self) -> impl Iterator<Item = (usize, &PciAddress)> {
        self.devices
            .iter()
            .enumerate()
            .filter_map(|(i, a)| Some((i, a.as_ref()?)))
    }
}

enum Item {
    Unit(usize),
    New(usize),
}

pub(crate) fn decode(p: &Problem, cat: &Catalog, f: &Formulation, values: &[i64]) -> Placement {
    let mut d = Decoder::new(p, cat, f, values);
    d.keep_previous();
    let mut order: Vec<usize> = (0..f.buses.len()).collect();
    order.sort_by_key(|&b| {
        (
            f.buses[b].depth,
            f.buses[b].existing.is_none(),
            d.rank[b],
            b,
        )
    });
    for bi in order {
        d.fill(bi);
    }
    let mut out = d.out;
    out.buses = d.buses.into_map();
    if !d.seq_pos.is_empty() {
        number_in_order(&mut out, &d.seq_pos);
    }
    out
}

/// The bus instances while they are decoded: in a list, found by index through a table
/// (lookups without a search; the map of [`Placement::buses`] is built once at the end).
#[derive(Default)]
struct Buses {
    list: Vec<Inst>,
    at: crate::topology::ByIndex<usize>,
}

impl Buses {
    /// Add `inst`, or replace the instance of its index.
    fn put(&mut self, inst: Inst) {
        match self.at.get(inst.index) {
            Some(&k) => self.list[k] = inst,
            None => {
                self.at.insert(inst.index, self.list.len());
                self.list.push(inst);
            }
        }
    }

    fn get_mut(&mut self, index: u32) -> Option<&mut Inst> {
        let &k = self.at.get(index)?;
        self.list.get_mut(k)
    }

    fn get(&self, index: u32) -> Option<&Inst> {
        let &k = self.at.get(index)?;
        self.list.get(k)
    }

    /// The instances by index.
    fn into_map(self) -> BTreeMap<u32, Inst> {
        self.list.into_iter().map(|i| (i.index, i)).collect()
    }
}

/// The placement as it is decoded, bus class by bus class (shallowest first).
struct Decoder<'a> {
    p: &'a Problem<'a>,
    cat: &'a Catalog,
    f: &'a Formulation,
    values: &'a [i64],
    out: Placement,
    /// Every bus instance so far (moved to `out.buses` at the end).
    buses: Buses,
    /// The instances (bus indexes) of each bus class so far.
    class_insts: Vec<Vec<u32>>,
    /// The index of the next bus to add.
    next_index: u32,
    /// Units of each unit class still to place, in placement order.
    queues: Vec<VecDeque<usize>>,
    /// Each bus class's rank in the ordering requirement (see [`order_ranks`]).
    rank: Vec<usize>,
    /// Position of each ordered device in the ordering requirement.
    seq_pos: BTreeMap<usize, usize>,
    /// Ordered units that start a run (see [`run_starts`]).
    run_starts: BTreeSet<usize>,
    /// The slots of each bus class's model, once looked up (see [`slot_range`]).
    slot_ranges: Vec<Option<(u8, u8)>>,
}

/// The lowest and highest slot of a bus of PCI controller model `model`.
fn slot_range(cat: &Catalog, model: &str) -> (u8, u8) {
    let slots = cat.pci_model(model).bus.slots;
    (slots[0], slots[1].min(pci::MAX_SLOT))
}

/// What one bus class's instances have taken so far, while its items are placed.
struct ClassFill {
    /// The class's instances (bus indexes).
    insts: Vec<u32>,
    /// Ordered units: each run of the order on this class fills instances of its own.
    runs: Runs,
    /// Instances with an I/O unit on them.
    io_insts: BTreeSet<u32>,
    /// Instances before this position are full (first fit fills them from the front).
    open: usize,
    /// The packed slot (bus, slot) of the last ordered unit placed on this class, when it
    /// was packed: the next ordered unit, if packed and in the same run, shares it.
    last_packed: Option<(u32, u8)>,
    /// The class's instances have one slot (ports): the program counts a window per I/O
    /// unit on them, wherever it sits.
    ports: bool,
}

/// Which slots shared by packed functions an item may join.
#[derive(Clone, Copy)]
enum Share {
    /// Any with a free function (an unordered unit: it has no place in the order).
    Any,
    /// Only this one (an ordered unit continuing the packed stretch before it), or none
    /// (one starting a stretch: an earlier slot would put it before units placed already).
    Only(Option<(u32, u8)>),
    /// Any with a free function, and no new slot (an unordered unit fills the free
    /// functions of every instance before it opens a slot: the program counts slots so).
    JoinOnly,
}

impl<'a> Decoder<'a> {
    /// The existing buses as instances of their classes; nothing placed yet.
    fn new(p: &'a Problem<'a>, cat: &'a Catalog, f: &'a Formulation, values: &'a [i64]) -> Self {
        let out = Placement {
            devices: vec![None; p.spec.devices.len()],
            ..Placement::default()
        };
        let mut class_insts: Vec<Vec<u32>> = vec![Vec::new(); f.buses.len()];
        // Room for the existing buses and every one the solution adds.
        let added: usize = (f.units.iter().enumerate())
            .filter(|(_, u)| u.template.is_some())
            .flat_map(|(ui, _)| f.x.range((ui, 0)..(ui + 1, 0)))
            .map(|(_, &v)| values[v].max(0) as usize)
            .sum();
        let mut buses = Buses {
            list: Vec::with_capacity(p.buses.len() + added),
            ..Buses::default()
        };
        for (ci, c) in f.buses.iter().enumerate() {
            if let Some(e) = c.existing {
                let b = &p.buses[e];
                let (lo, hi) = slot_range(cat, &b.model);
                buses.put(Inst {
                    index: b.index,
                    model: b.model.clone(),
                    zone: b.zone,
                    hotplug: b.hotplug,
                    address: b.address,
                    existing: Some(e),
                    used: [0; SLOTS],
                    occupied: 0,
                    full_slots: 0,
                    agg_slots: slot_bits(b.aggregate_slots.iter().copied()),
                    pack_slots: 0,
                    lo,
                    hi,
                });
                if let Some(inst) = buses.get_mut(b.index) {
                    for (&slot, &functions) in &b.used {
                        inst.mark(slot, functions);
                    }
                }
                class_insts[ci].push(b.index);
            }
        }
        Decoder {
            p,
            cat,
            f,
            values,
            out,
            buses,
            class_insts,
            next_index: p.buses.iter().map(|b| b.index).max().unwrap_or(0) + 1,
            queues: f
                .units
                .iter()
                .map(|u| u.units.iter().copied().collect())
                .collect(),
            rank: order_ranks(p, f, values),
            seq_pos: p
                .sequence
                .iter()
                .copied()
                .enumerate()
                .map(|(k, d)| (d, k))
                .collect(),
            run_starts: run_starts(f, values),
            slot_ranges: vec![None; f.buses.len()],
        }
    }

    /// Units the solution keeps (`keep` = 1) stay where their devices were; they leave
    /// their class's queue, and their functions are taken.
    fn keep_previous(&mut self) {
        let (p, f) = (self.p, self.f);
        for (&unit, &k) in &f.keep {
            let What::Devices(members) = &p.units[unit].what else {
                continue;
            };
            if self.values[k] <= 0 {
                continue;
            }
            for &m in members {
                let Some(&a) = p.ctx.previous.get(&m) else {
                    continue;
                };
                if let Some(inst) = self.buses.get_mut(a.bus) {
                    inst.mark(a.slot, 1 << a.function);
                    self.out.devices[m] = Some(PciAddress::new(a.bus, a.slot, a.function));
                }
            }
            for q in &mut self.queues {
                q.retain(|&u| u != unit);
            }
        }
    }

    /// Whether there is an ordering requirement.
    fn ordered(&self) -> bool {
        !self.seq_pos.is_empty()
    }

    /// Place everything the solution puts on bus class `bi`.
    fn fill(&mut self, bi: usize) {
        let items = self.items(bi);
        let mut class = ClassFill {
            insts: self.class_insts[bi].clone(),
            runs: Runs::default(),
            io_insts: BTreeSet::new(),
            open: 0,
            last_packed: None,
            ports: self.f.buses[bi].slots == 1,
        };
        for item in items {
            self.place(item, &mut class);
        }
    }

    /// The items the solution puts on bus class `bi`, in placement order: controllers
    /// first, then devices: on an added bridge the I/O devices first, so that they fill
    /// the fewest bridges (the program counts one I/O window per bridge it needs for
    /// them); with an ordering requirement, what must come first next.
    fn items(&mut self, bi: usize) -> Vec<Item> {
        let (p, f) = (self.p, self.f);
        let mut items: Vec<(u8, bool, usize, Item)> = Vec::new();
        for (ui, u) in f.units.iter().enumerate() {
            let Some(&v) = f.x.get(&(ui, bi)) else {
                continue;
            };
            let k = self.values[v].max(0) as usize;
            for _ in 0..k {
                match u.template {
                    Some(t) => {
                        let prio = if u.mode == Mode::Aggregate { 0 } else { 1 };
                        items.push((prio, false, self.rank[t], Item::New(t)));
                    }
                    None => {
                        let Some(unit) = self.queues[ui].pop_front() else {
                            break;
                        };
                        let pu = &p.units[unit];
                        let prio = match (&pu.what, pu.mode) {
                            (What::Controller(_), Mode::Aggregate) => 0,
                            (What::Controller(_), _) => 1,
                            (_, Mode::Pack) => 3,
                            _ => 2,
                        };
                        let io_first = f.buses[bi].slots > 1 && f.buses[bi].existing.is_none();
                        items.push((prio, io_first && !pu.io, pu.order, Item::Unit(unit)));
                    }
                }
            }
        }
        let ordered = self.ordered();
        items.sort_by_key(|(prio, not_io, order, item)| {
            let r = match item {
                Item::New(t) if ordered => self.rank[*t],
                Item::Unit(u) if ordered => unit_rank(&self.seq_pos, *u, p),
                _ => usize::MAX,
            };
            (*prio / 2, r, *not_io, *prio, *order)
        });
        items.into_iter().map(|(_, _, _, item)| item).collect()
    }

    /// How an item takes room on a bus: its slot mode and its number of functions.
    fn shape(&self, item: &Item) -> (Mode, u8) {
        match item {
            Item::New(t) => (
                if self.f.buses[*t].aggregate {
                    Mode::Aggregate
                } else {
                    Mode::Whole
                },
                1,
            ),
            Item::Unit(u) => {
                let pu = &self.p.units[*u];
                let width = match &pu.what {
                    What::Devices(m) => m.len() as u8,
                    _ => 1,
                };
                (pu.mode, width)
            }
        }
    }

    /// Give `item` a slot on one of the class's instances (an ordered unit on its run's
    /// instance), and record it.
    fn place(&mut self, item: Item, class: &mut ClassFill) {
        let p = self.p;
        let (mode, width) = self.shape(&item);
        let run = match &item {
            Item::Unit(u) if p.units[*u].rank.is_some() => Some(self.run_starts.contains(u)),
            _ => None,
        };
        let buses = &mut self.buses;
        let taken = match run {
            Some(starts) => {
                let share = Share::Only(class.last_packed.filter(|_| !starts));
                let got = class.runs.take(&class.insts, starts, |i| {
                    take(buses.get_mut(i).expect("instance"), mode, width, share)
                });
                class.last_packed = got
                    .filter(|_| mode == Mode::Pack)
                    .map(|(bus, slot, _)| (bus, slot));
                got
            }
            None => None,
        };
        // Unordered I/O units first fill instances that already have an I/O window,
        // then ones no run of the order uses (the program counts windows that way).
        let io = matches!(&item, Item::Unit(u) if p.units[*u].io);
        let ordered = self.ordered();
        let buses = &mut self.buses;
        // Where a packed unit may join a slot before any opens one: for an ordered I/O
        // unit on a class of many slots only instances with an I/O window already (joining
        // elsewhere would open a window the program does not count; on ports it counts
        // one per I/O unit).
        let (preferred, join_within): (std::borrow::Cow<'_, [u32]>, usize) = if ordered && io {
            let (with_io, rest): (Vec<u32>, Vec<u32>) =
                class.insts.iter().partition(|i| class.io_insts.contains(i));
            let (free, used): (Vec<u32>, Vec<u32>) =
                rest.into_iter().partition(|i| !class.runs.used.contains(i));
            let n = if class.ports {
                class.insts.len()
            } else {
                with_io.len()
            };
            (with_io.into_iter().chain(free).chain(used).collect(), n)
        } else {
            // Full instances take nothing more: start the first fit after them.
            while class
                .insts
                .get(class.open)
                .is_some_and(|&i| buses.get(i).expect("instance").full())
            {
                class.open += 1;
            }
            let all = &class.insts[class.open..];
            (std::borrow::Cow::Borrowed(all), all.len())
        };
        let mut first_fit = |share, within: usize| {
            preferred[..within]
                .iter()
                .find_map(|&i| take(buses.get_mut(i).expect("instance"), mode, width, share))
        };
        let joined = (taken.is_none() && mode == Mode::Pack)
            .then(|| first_fit(Share::JoinOnly, join_within))
            .flatten();
        let everywhere = preferred.len();
        let Some((bus, slot, func)) = taken
            .or(joined)
            .or_else(|| first_fit(Share::Any, everywhere))
        else {
            // The program guarantees room; a miss here is caught by the verifier.
            return;
        };
        if io {
            class.io_insts.insert(bus);
        }
        match item {
            Item::New(t) => self.add_bus(t, PciAddress::new(bus, slot, func)),
            Item::Unit(u) => self.assign(u, bus, slot, func),
        }
    }

    /// A new bus of template class `t` at `addr`, with the next index.
    fn add_bus(&mut self, t: usize, addr: PciAddress) {
        let c = &self.f.buses[t];
        let cat = self.cat;
        let (lo, hi) = *self.slot_ranges[t].get_or_insert_with(|| slot_range(cat, &c.model));
        let index = self.next_index;
        self.next_index += 1;
        self.buses.put(Inst {
            index,
            model: c.model.clone(),
            zone: c.zone,
            hotplug: c.hotplug,
            address: Some(addr),
            existing: None,
            used: [0; SLOTS],
            occupied: 0,
            full_slots: 0,
            agg_slots: 0,
            pack_slots: 0,
            lo,
            hi,
        });
        self.class_insts[t].push(index);
    }

    /// Record the address of `unit`: its devices' functions from `func` on, a storage
    /// controller's, or an unplaced controller's.
    fn assign(&mut self, unit: usize, bus: u32, slot: u8, func: u8) {
        let addr = PciAddress::new(bus, slot, func);
        match &self.p.units[unit].what {
            What::Devices(members) => {
                for (k, &d) in members.iter().enumerate() {
                    self.out.devices[d] = Some(PciAddress::new(bus, slot, func + k as u8));
                }
            }
            What::Storage(s) => {
                self.out.storage.insert(*s, addr);
            }
            What::Controller(idx) => {
                if let Some(inst) = self.buses.get_mut(*idx) {
                    inst.address = Some(addr);
                }
            }
        }
    }
}

/// The instances runs of the order take on one bus class: a run starts on an instance no
/// earlier run used, and moves on to the next such one when it is full.
#[derive(Default)]
struct Runs {
    /// The instance (position in the class's list) the current run fills.
    current: Option<usize>,
    /// The first instance no run has used yet.
    fresh: usize,
    /// Instances (bus indexes) runs placed units on.
    used: BTreeSet<u32>,
}

impl Runs {
    fn take(
        &mut self,
        insts: &[u32],
        starts: bool,
        mut take: impl FnMut(u32) -> Option<(u32, u8, u8)>,
    ) -> Option<(u32, u8, u8)> {
        if starts || self.current.is_none() {
            self.current = Some(self.fresh);
            self.fresh += 1;
        }
        while let Some(c) = self.current.filter(|&c| c < insts.len()) {
            if let Some(got) = take(insts[c]) {
                self.used.insert(insts[c]);
                return Some(got);
            }
            self.current = Some(self.fresh);
            self.fresh += 1;
        }
        None
    }
}

/// Ordered units (by unit) that start a run: the unit before them in the order sits on
/// another bus class (or they come first).
fn run_starts(f: &Formulation, values: &[i64]) -> BTreeSet<usize> {
    let mut placed: Vec<(usize, usize, Option<usize>)> = Vec::new();
    for (ui, u) in f.units.iter().enumerate() {
        let (Some(rank), [unit]) = (u.rank, u.units.as_slice()) else {
            continue;
        };
        let class =
            f.x.range((ui, 0)..(ui + 1, 0))
                .find(|(_, &v)| values[v] > 0)
                .map(|(&(_, bi), _)| bi);
        placed.push((rank, *unit, class));
    }
    placed.sort();
    let mut starts = BTreeSet::new();
    let mut prev: Option<Option<usize>> = None;
    for (_, unit, class) in placed {
        if prev != Some(class) || class.is_none() {
            starts.insert(unit);
        }
        prev = Some(class);
    }
    starts
}

/// Position in the ordering requirement of a unit's first ordered device.
fn unit_rank(seq_pos: &BTreeMap<usize, usize>, unit: usize, p: &Problem) -> usize {
    match &p.units[unit].what {
        What::Devices(members) => members
            .iter()
            .filter_map(|d| seq_pos.get(d).copied())
            .min()
            .unwrap_or(usize::MAX),
        _ => usize::MAX,
    }
}

/// With an ordering requirement, the added buses are numbered in the order of the
/// earliest ordered device on or below each (then as the guest enumerates them, depth
/// first), parents before children: a device's bus index then follows the order wherever
/// it sits, since addresses compare by bus index first.
fn number_in_order(out: &mut Placement, seq_pos: &BTreeMap<usize, usize>) {
    let earliest = earliest_below(out, seq_pos);
    let children = children_of(out, &earliest);
    let added: Vec<u32> = out
        .buses
        .values()
        .filter(|b| b.existing.is_none())
        .map(|b| b.index)
        .collect();
    let Some(&first) = added.iter().min() else {
        return;
    };
    let preorder = added_preorder(out, &children);
    if preorder.len() != added.len() {
        return; // not a tree from the roots: keep the numbering
    }
    let Some(numbered) = parents_first(out, &preorder, &earliest, &children) else {
        return;
    };
    let map: BTreeMap<u32, u32> = numbered
        .iter()
        .enumerate()
        .map(|(k, &old)| (old, first + k as u32))
        .collect();
    renumber(out, &map);
}

/// Children of each bus: `(earliest ordered device on or below, slot, function, index)`.
type Children = BTreeMap<u32, Vec<(usize, u8, u8, u32)>>;

/// The earliest position in the order of a device on each bus, then in each subtree
/// (deepest first).
fn earliest_below(out: &Placement, seq_pos: &BTreeMap<usize, usize>) -> BTreeMap<u32, usize> {
    let mut earliest: BTreeMap<u32, usize> = BTreeMap::new();
    for (d, a) in out.placed() {
        if let Some(&k) = seq_pos.get(&d) {
            let e = earliest.entry(a.bus).or_insert(usize::MAX);
            *e = (*e).min(k);
        }
    }
    let depth = |mut i: u32| {
        let mut d = 0;
        while let Some(a) = out.buses.get(&i).and_then(|b| b.address) {
            i = a.bus;
            d += 1;
            if d > out.buses.len() {
                break;
            }
        }
        d
    };
    let mut deepest: Vec<u32> = out.buses.keys().copied().collect();
    deepest.sort_by_key(|&i| std::cmp::Reverse(depth(i)));
    for i in deepest {
        let own = earliest.get(&i).copied().unwrap_or(usize::MAX);
        if let Some(a) = out.buses.get(&i).and_then(|b| b.address) {
            let e = earliest.entry(a.bus).or_insert(usize::MAX);
            *e = (*e).min(own);
        }
    }
    earliest
}

/// The buses below each bus, earliest ordered device first, then by slot and function.
fn children_of(out: &Placement, earliest: &BTreeMap<u32, usize>) -> Children {
    let mut children: Children = BTreeMap::new();
    for (&i, b) in &out.buses {
        if let Some(a) = b.address {
            let r = earliest.get(&i).copied().unwrap_or(usize::MAX);
            children
                .entry(a.bus)
                .or_default()
                .push((r, a.slot, a.function, i));
        }
    }
    for list in children.values_mut() {
        list.sort();
    }
    children
}

/// The added buses in depth-first order from the roots.
fn added_preorder(out: &Placement, children: &Children) -> Vec<u32> {
    let mut preorder = Vec::new();
    let mut stack: Vec<u32> = out
        .buses
        .values()
        .filter(|b| b.address.is_none())
        .map(|b| b.index)
        .rev()
        .collect();
    while let Some(i) = stack.pop() {
        if out.buses.get(&i).is_some_and(|b| b.existing.is_none()) {
            preorder.push(i);
        }
        if let Some(list) = children.get(&i) {
            stack.extend(list.iter().rev().map(|&(_, _, _, c)| c));
        }
    }
    preorder
}

/// The added buses, parents before children; among the buses whose parent is numbered,
/// the one with the earliest ordered device on or below it, then depth-first position.
/// `None` when some added bus is never reached.
fn parents_first(
    out: &Placement,
    preorder: &[u32],
    earliest: &BTreeMap<u32, usize>,
    children: &Children,
) -> Option<Vec<u32>> {
    let position: BTreeMap<u32, usize> =
        preorder.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let key = |i: u32| {
        (
            earliest.get(&i).copied().unwrap_or(usize::MAX),
            position[&i],
            i,
        )
    };
    let mut ready: BTreeSet<(usize, usize, u32)> = preorder
        .iter()
        .filter(|&&i| {
            out.buses[&i]
                .address
                .is_none_or(|a| out.buses.get(&a.bus).is_none_or(|b| b.existing.is_some()))
        })
        .map(|&i| key(i))
        .collect();
    let mut numbered = Vec::with_capacity(preorder.len());
    while let Some(k) = ready.pop_first() {
        numbered.push(k.2);
        if let Some(list) = children.get(&k.2) {
            ready.extend(list.iter().map(|&(_, _, _, c)| key(c)));
        }
    }
    (numbered.len() == preorder.len()).then_some(numbered)
}

/// Give the buses their new indexes (`map`: old → new; others keep theirs).
fn renumber(out: &mut Placement, map: &BTreeMap<u32, u32>) {
    let re = |i: u32| map.get(&i).copied().unwrap_or(i);
    let buses = std::mem::take(&mut out.buses);
    for (_, mut b) in buses {
        b.index = re(b.index);
        if let Some(a) = b.address.as_mut() {
            a.bus = re(a.bus);
        }
        out.buses.insert(b.index, b);
    }
    for a in out
        .devices
        .iter_mut()
        .flatten()
        .chain(out.storage.values_mut())
    {
        a.bus = re(a.bus);
    }
}

/// For each bus class, the earliest position in the ordering requirement of a device
/// placed on it or below it (`usize::MAX` when none is ordered). Buses are numbered in
/// this order among equals, so devices that must come first get the lower bus indexes
/// (an address compares by bus index first) whichever NUMA node or class they are in.
fn order_ranks(p: &Problem, f: &Formulation, values: &[i64]) -> Vec<usize> {
    let mut rank = vec![usize::MAX; f.buses.len()];
    let seq = &p.sequence;
    if seq.is_empty() {
        return rank;
    }
    let position: BTreeMap<usize, usize> = seq.iter().enumerate().map(|(k, &d)| (d, k)).collect();
    let unit_rank = |unit: usize| match &p.units[unit].what {
        What::Devices(members) => members
            .iter()
            .filter_map(|d| position.get(d).copied())
            .min()
            .unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    let class_rank: Vec<usize> = f
        .units
        .iter()
        .map(|u| {
            u.units
                .iter()
                .map(|&i| unit_rank(i))
                .min()
                .unwrap_or(usize::MAX)
        })
        .collect();
    let placed = |ui: usize, bi: usize| f.x.get(&(ui, bi)).is_some_and(|&v| values[v] > 0);
    for (bi, r) in rank.iter_mut().enumerate() {
        for (ui, &cr) in class_rank.iter().enumerate() {
            if f.units[ui].template.is_none() && placed(ui, bi) {
                *r = (*r).min(cr);
            }
        }
    }
    // A bus class hosting added controllers ranks as the earliest below them.
    let mut by_depth: Vec<usize> = (0..f.buses.len()).collect();
    by_depth.sort_by_key(|&b| std::cmp::Reverse(f.buses[b].depth));
    for &t in &by_depth {
        for (ui, u) in f.units.iter().enumerate() {
            if u.template == Some(t) {
                for bi in 0..f.buses.len() {
                    if placed(ui, bi) {
                        rank[bi] = rank[bi].min(rank[t]);
                    }
                }
            }
        }
    }
    rank
}

impl Inst {
    /// No slot is free and no shared slot has a free function: [`take`] finds no room
    /// here for anything.
    fn full(&self) -> bool {
        self.free_slot().is_none() && (self.agg_slots | self.pack_slots) & !self.full_slots == 0
    }

    /// Take `functions` (bit f = function f) of `slot` (slots past the last are none).
    fn mark(&mut self, slot: u8, functions: u8) {
        let Some(used) = self.used.get_mut(usize::from(slot)) else {
            return;
        };
        *used |= functions;
        if *used != 0 {
            self.occupied |= 1 << slot;
        }
        if *used == u8::MAX {
            self.full_slots |= 1 << slot;
        }
    }

    /// The functions in use in `slot` (bit f = function f).
    pub fn slot_used(&self, slot: u8) -> u8 {
        self.used.get(usize::from(slot)).copied().unwrap_or(0)
    }

    /// The lowest slot of the bus with no function in use.
    fn free_slot(&self) -> Option<u8> {
        if self.lo > self.hi {
            return None;
        }
        let range = ((1u64 << (self.hi + 1)) - (1u64 << self.lo)) as u32;
        let free = range & !self.occupied;
        (free != 0).then(|| free.trailing_zeros() as u8)
    }
}

/// Reserve room for one item on a bus: returns (bus, slot, first function). A packed
/// item joins a shared slot `share` allows, else takes the lowest free slot.
fn take(inst: &mut Inst, mode: Mode, width: u8, share: Share) -> Option<(u32, u8, u8)> {
    let shared = match mode {
        Mode::Aggregate => Some(inst.agg_slots),
        Mode::Pack => Some(inst.pack_slots),
        Mode::Whole => None,
    };
    let may_join = |s: u8| match share {
        Share::Any | Share::JoinOnly => true,
        Share::Only(only) => only == Some((inst.index, s)),
    };
    if let Some(set) = shared {
        // Full slots have no function to give.
        let open = set & !inst.full_slots;
        let found = bit_slots(open).filter(|&s| may_join(s)).find_map(|s| {
            let used = inst.slot_used(s);
            (0..pci::FUNCTIONS_PER_SLOT)
                .find(|f| used & (1 << f) == 0)
                .map(|f| (s, f))
        });
        if let Some((s, fnc)) = found {
            inst.mark(s, 1 << fnc);
            return Some((inst.index, s, fnc));
        }
    }
    if matches!(share, Share::JoinOnly) {
        return None;
    }
    let slot = inst.free_slot()?;
    let mask = if width >= pci::FUNCTIONS_PER_SLOT {
        u8::MAX
    } else {
        (1u8 << width) - 1
    };
    inst.mark(slot, mask);
    match mode {
        Mode::Aggregate => inst.agg_slots |= 1 << slot,
        Mode::Pack => inst.pack_slots |= 1 << slot,
        Mode::Whole => {}
    }
    Some((inst.index, slot, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An added bus of index `index` with slots `lo`-`hi`, nothing used, the slots of
    /// `agg` shared by aggregating controllers.
    fn blank(index: u32, lo: u8, hi: u8, agg: u32) -> Inst {
        Inst {
            index,
            model: String::new(),
            zone: None,
            hotplug: false,
            address: None,
            existing: None,
            used: [0; SLOTS],
            occupied: 0,
            full_slots: 0,
            agg_slots: agg,
            pack_slots: 0,
            lo,
            hi,
        }
    }

    proptest! {
        /// Slots as bits come back as the set of slots they were made from, lowest first.
        #[test]
        fn slot_bits_hold_the_slots(slots in proptest::collection::btree_set(0u8..40, 0..40)) {
            let bits = slot_bits(slots.iter().copied());
            let back: Vec<u8> = bit_slots(bits).collect();
            let want: Vec<u8> = slots.iter().copied().filter(|&s| usize::from(s) < SLOTS).collect();
            prop_assert_eq!(back, want);
        }

        /// The buses while decoding hold what a map by index given the same instances
        /// holds (a later instance of an index replacing the earlier), and become it.
        #[test]
        fn buses_hold_what_a_map_holds(
            puts in proptest::collection::vec((prop_oneof![0u32..40, 4094u32..4098], any::<u8>()), 0..80),
        ) {
            let mut buses = Buses::default();
            let mut map = BTreeMap::new();
            for &(i, lo) in &puts {
                buses.put(blank(i, lo, 0, 0));
                map.insert(i, lo);
                prop_assert_eq!(buses.get(i).map(|b| b.lo), Some(lo));
                if let Some(b) = buses.get_mut(i) {
                    b.lo = b.lo.wrapping_add(1);
                }
                map.insert(i, lo.wrapping_add(1));
            }
            let got: Vec<(u32, u32, u8)> =
                buses.into_map().into_iter().map(|(k, b)| (k, b.index, b.lo)).collect();
            let want: Vec<(u32, u32, u8)> = map.into_iter().map(|(k, lo)| (k, k, lo)).collect();
            prop_assert_eq!(got, want);
        }

        /// Marked functions read back as a map of them would: the lowest free slot,
        /// fullness and the functions of each slot, whatever the slot range and marks.
        #[test]
        fn marks_read_as_a_map(
            lo in 0u8..34,
            hi in 0u8..34,
            agg in any::<u32>(),
            marks in proptest::collection::vec((0u8..40, any::<u8>()), 0..60),
        ) {
            let mut inst = blank(1, lo, hi.min(pci::MAX_SLOT), agg);
            let mut map: BTreeMap<u8, u8> = BTreeMap::new();
            for &(slot, functions) in &marks {
                inst.mark(slot, functions);
                if usize::from(slot) < SLOTS {
                    *map.entry(slot).or_default() |= functions;
                }
                let used = |s: u8| map.get(&s).copied().unwrap_or(0);
                let free = (inst.lo..=inst.hi).find(|&s| used(s) == 0);
                prop_assert_eq!(inst.free_slot(), free);
                let full = free.is_none() && bit_slots(agg).all(|s| used(s) == u8::MAX);
                prop_assert_eq!(inst.full(), full);
                for s in 0..SLOTS as u8 {
                    prop_assert_eq!(inst.slot_used(s), used(s));
                }
            }
        }
    }
}
