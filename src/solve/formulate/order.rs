//! Order: the ordering requirement as rows over the ordered units (each a class of its
//! own, in the order's sequence). A unit never steps back to an earlier bus: existing
//! buses rank by index and every bus to add after all of them (the decoder numbers added
//! buses in the order's sequence). An added bus holds one unbroken run of the sequence,
//! so a bus class needs at least as many instances as runs that start on it; and a bus
//! gets its index before the buses below it.

use super::super::backend::Ilp;
use super::classes::hosts_controller;
use super::{Model, UnitClass, FUNCTIONS_PER_SLOT};
use crate::normalize::Mode;
use crate::solve::origin::{RowOrigin, RunKind, VarOrigin};
use std::collections::BTreeSet;

impl Model<'_> {
    /// Every `order: …` row of the ordered units' sequence (packed slots and I/O windows
    /// come with their families: [`Self::pack_run_rows`], [`Self::ordered_io_windows`]).
    pub(super) fn order_rows(&mut self) {
        let seq = ordered_sequence(&self.units);
        if seq.len() < 2 {
            return;
        }
        self.never_back_rows(&seq);
        self.run_rows(&seq);
        self.below_rows(&seq);
    }

    /// Each ordered unit sits on a bus of at least the level of the one before it.
    fn never_back_rows(&mut self, seq: &[usize]) {
        let (p, buses, units, x, keep) = (self.p, &self.buses, &self.units, &self.x, &self.keep);
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
            self.ilp.row(
                RowOrigin::NeverBack {
                    unit: w[0],
                    next: w[1],
                },
                terms,
                f64::NEG_INFINITY,
                0.0,
            );
        }
    }

    /// An added bus class needs at least as many instances as runs of the sequence that
    /// start on it.
    fn run_rows(&mut self, seq: &[usize]) {
        for (&t, &nv) in &self.n {
            if self.buses[t].slots == 1 {
                // A port holds one whole unit or one packed slot: see `pack_runs`.
                continue;
            }
            let mut runs: Vec<(usize, f64)> = Vec::new();
            let mut prev: Option<usize> = None;
            for &ui in seq {
                let Some(&v) = self.x.get(&(ui, t)) else {
                    prev = None;
                    continue;
                };
                // A run starts here unless the unit before it is on the same class.
                let start = run_start(&mut self.ilp, RunKind::Units, ui, t, v, prev);
                runs.push((start, 1.0));
                prev = Some(v);
            }
            if runs.len() > 1 {
                runs.push((nv, -1.0));
                self.ilp.row(
                    RowOrigin::RunsPerInstance { bus: t },
                    runs,
                    f64::NEG_INFINITY,
                    0.0,
                );
            }
        }
    }

    /// A bus gets its index before the buses below it: once an ordered unit sits below
    /// an added bus class of many slots, no later one sits on that class itself.
    fn below_rows(&mut self, seq: &[usize]) {
        let templates: Vec<usize> = self.n.keys().copied().collect();
        for t in templates {
            // A port (one slot) holds one thing: the controller a subtree hangs from or
            // a device, never both, and a later device on another port of the class gets
            // a port numbered after that subtree (the decoder numbers added buses by the
            // earliest ordered device below them). Only a class of many slots could hold
            // a later unit on the very instance its subtree hangs from.
            if self.buses[t].slots == 1 {
                continue;
            }
            let below = self.hosted_below(t);
            if below.is_empty() || !seq.iter().any(|&ui| self.x.contains_key(&(ui, t))) {
                continue;
            }
            let mut seen: Option<usize> = None;
            for &ui in seq {
                if let (Some(&v), Some(z)) = (self.x.get(&(ui, t)), seen) {
                    self.ilp.row(
                        RowOrigin::BeforeBelow { unit: ui, bus: t },
                        vec![(v, 1.0), (z, 1.0)],
                        f64::NEG_INFINITY,
                        1.0,
                    );
                }
                let here: Vec<usize> = below
                    .iter()
                    .filter_map(|&q| self.x.get(&(ui, q)))
                    .copied()
                    .collect();
                if here.is_empty() {
                    continue;
                }
                let z = self
                    .ilp
                    .var(VarOrigin::Below { unit: ui, bus: t }, 0.0, 1.0);
                for v in here.into_iter().chain(seen) {
                    self.ilp.row(
                        RowOrigin::BelowFrom { unit: ui, bus: t },
                        vec![(z, 1.0), (v, -1.0)],
                        0.0,
                        f64::INFINITY,
                    );
                }
                seen = Some(z);
            }
        }
    }

    /// Added bus classes that can sit (directly or further down) below an instance of `t`.
    fn hosted_below(&self, t: usize) -> Vec<usize> {
        let buses = &self.buses;
        let mut below: BTreeSet<usize> = BTreeSet::new();
        let mut todo = vec![t];
        while let Some(h) = todo.pop() {
            for &c in self.n.keys() {
                if c != t
                    && !below.contains(&c)
                    && buses[h].depth < buses[c].depth
                    && hosts_controller(&buses[h], &buses[c], self.cat)
                {
                    below.insert(c);
                    todo.push(c);
                }
            }
        }
        below.into_iter().collect()
    }

    /// The packed slots of every bus class with packed units, when the order is kept
    /// (see [`Self::pack_runs`]).
    pub(super) fn pack_run_rows(&mut self) {
        for (bi, slots) in self.pack_slots.clone() {
            self.pack_runs(bi, slots);
        }
    }

    /// Packed slots on bus class `b` when the order is kept. A stretch of packed ordered
    /// units (consecutive in the order, all on `b`) opens slots of its own — joining an
    /// earlier slot would put a unit before ones placed already — at its start and after
    /// every eight functions: a binary "opens a slot" per unit, at least its run start, and
    /// of nine units in a row one of the last eight opens one. The slots opened fit the
    /// class's packed slots. Unordered packed units have no place in the order: they
    /// take any free function, in the stretches' slots too, so the `fill` row (every
    /// packed unit within eight functions a slot) is all they need.
    fn pack_runs(&mut self, b: usize, slots: usize) {
        // The current stretch: (unit class, x, opens-a-slot) of each unit in it.
        let mut stretch: Vec<(usize, usize, usize)> = Vec::new();
        let mut opened: Vec<(usize, f64)> = Vec::new();
        for ui in ordered_sequence(&self.units) {
            let here = self
                .x
                .get(&(ui, b))
                .copied()
                .filter(|_| self.units[ui].mode == Mode::Pack);
            let Some(v) = here else {
                stretch.clear();
                continue;
            };
            let prev = stretch.last().map(|&(_, x, _)| x);
            let start = run_start(&mut self.ilp, RunKind::Packed, ui, b, v, prev);
            let opens = if stretch.len() < FUNCTIONS_PER_SLOT as usize {
                // Within the first eight of a stretch only its start opens a slot.
                start
            } else {
                let run = RunKind::PackedSlot;
                let o = self.ilp.var(
                    VarOrigin::RunStart {
                        run,
                        unit: ui,
                        bus: b,
                    },
                    0.0,
                    1.0,
                );
                self.ilp.row(
                    RowOrigin::RunStart {
                        run,
                        unit: ui,
                        bus: b,
                    },
                    vec![(o, 1.0), (start, -1.0)],
                    0.0,
                    f64::INFINITY,
                );
                o
            };
            stretch.push((ui, v, opens));
            let k = stretch.len();
            if k > FUNCTIONS_PER_SLOT as usize {
                // Nine in a row: Σ opens(last 8) ≥ Σ x(last 9) − 8.
                let nine = &stretch[k - 9..];
                let mut terms: Vec<(usize, f64)> =
                    nine[1..].iter().map(|&(_, _, o)| (o, 1.0)).collect();
                terms.extend(nine.iter().map(|&(_, x, _)| (x, -1.0)));
                self.ilp.row(
                    RowOrigin::PackedEveryEight { unit: ui, bus: b },
                    terms,
                    -FUNCTIONS_PER_SLOT,
                    f64::INFINITY,
                );
            }
            opened.push((opens, -1.0));
        }
        if opened.is_empty() {
            return;
        }
        opened.push((slots, 1.0));
        self.ilp.row(
            RowOrigin::PackedSlots { bus: b },
            opened,
            0.0,
            f64::INFINITY,
        );
    }

    /// Ordered units with I/O BARs on bus class `b` that may need a window of their own:
    /// each run of the order fills instances of its own, so every ordered I/O unit counts
    /// unless the unit just before it in the order is an I/O unit on the same class
    /// (over-counting a run that mixes I/O and other units is safe). Returns the terms of
    /// that count.
    pub(super) fn ordered_io_windows(&mut self, b: usize) -> Vec<(usize, f64)> {
        let mut terms = Vec::new();
        let mut prev: Option<(usize, bool)> = None;
        for ui in ordered_sequence(&self.units) {
            let here = self.x.get(&(ui, b)).copied();
            if let (Some(v), true) = (here, self.units[ui].io) {
                let io_prev = prev.and_then(|(pv, io)| io.then_some(pv));
                let start = run_start(&mut self.ilp, RunKind::Io, ui, b, v, io_prev);
                terms.push((start, 1.0));
            }
            prev = here.map(|v| (v, self.units[ui].io));
        }
        terms
    }
}

/// The ordered unit classes, in the order's sequence.
fn ordered_sequence(units: &[UnitClass]) -> Vec<usize> {
    let mut seq: Vec<usize> = (0..units.len())
        .filter(|&ui| units[ui].rank.is_some() && units[ui].template.is_none())
        .collect();
    seq.sort_by_key(|&ui| units[ui].rank);
    seq
}

/// The variable that is 1 where a run of the order starts: `x` itself for the first unit
/// (or after one elsewhere), else a binary `r >= x - x_prev` counting runs of kind `run`.
fn run_start(
    ilp: &mut Ilp,
    run: RunKind,
    ui: usize,
    class: usize,
    x: usize,
    prev: Option<usize>,
) -> usize {
    let Some(pv) = prev else { return x };
    let (unit, bus) = (ui, class);
    let r = ilp.var(VarOrigin::RunStart { run, unit, bus }, 0.0, 1.0);
    ilp.row(
        RowOrigin::RunStart { run, unit, bus },
        vec![(r, 1.0), (x, -1.0), (pv, 1.0)],
        0.0,
        f64::INFINITY,
    );
    r
}
