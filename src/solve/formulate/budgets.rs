//! Budgets: the machine's bus numbers (in total, and between expanders that keep their
//! bus_nr) and the x86 firmware's I/O windows of bridges and ports.

use super::Model;
use crate::normalize::Zone;
use crate::solve::origin::{RowOrigin, VarOrigin};

impl Model<'_> {
    /// Bus numbers used by existing controllers (root included).
    pub(super) fn existing_bus_numbers(&self) -> u32 {
        self.p
            .buses
            .iter()
            .map(|b| self.cat.pci_model(&b.model).bus_numbers)
            .sum()
    }

    /// `bus numbers`: existing and added controllers within the machine's bus numbers.
    pub(super) fn bus_number_rows(&mut self) {
        let terms: Vec<(usize, f64)> = self
            .n
            .iter()
            .map(|(&t, &v)| (v, self.buses[t].bus_numbers as f64))
            .collect();
        let room = self.p.machine.limits.bus_numbers as f64 - self.existing_bus_numbers() as f64;
        self.ilp
            .row(RowOrigin::BusNumbers, terms, f64::NEG_INFINITY, room);
    }

    /// Expanders that keep their bus_nr (from a previous plan) own the bus numbers up to
    /// the next expander's; the root hierarchy and new expanders share those below the
    /// lowest one.
    pub(super) fn expander_range_rows(&mut self) {
        let (p, cat, buses, n) = (self.p, self.cat, &self.buses, &self.n);
        // (bus_nr, zone) of expanders with a fixed bus_nr.
        let mut fixed: Vec<(u32, u32)> = p
            .buses
            .iter()
            .filter(|b| cat.pci_model(&b.model).numa)
            .filter_map(|b| {
                let nr = p.spec.controllers.get(b.entry?)?.bus_nr?;
                Some((nr, b.zone?))
            })
            .collect();
        if fixed.is_empty() {
            return;
        }
        fixed.sort();
        let fixed_zone = |z: Zone| z.is_some_and(|k| fixed.iter().any(|&(_, fz)| fz == k));
        let existing_need = |zone: Option<Zone>| -> u32 {
            p.buses
                .iter()
                .filter(|b| b.index != 0)
                .filter(|b| match zone {
                    Some(z) => b.zone == z,
                    None => !fixed_zone(b.zone),
                })
                .map(|b| cat.pci_model(&b.model).bus_numbers)
                .sum()
        };
        let added = |zone: Option<Zone>| -> Vec<(usize, f64)> {
            n.iter()
                .filter(|(&t, _)| match zone {
                    Some(z) => buses[t].zone == z,
                    None => !fixed_zone(buses[t].zone),
                })
                .map(|(&t, &v)| (v, buses[t].bus_numbers as f64))
                .collect()
        };
        for (i, &(nr, zone)) in fixed.iter().enumerate() {
            let limit = fixed
                .get(i + 1)
                .map_or(p.machine.limits.bus_numbers, |&(next, _)| next);
            let room = limit.saturating_sub(nr) as f64 - existing_need(Some(Some(zone))) as f64;
            self.ilp.row(
                RowOrigin::ExpanderRange { node: zone },
                added(Some(Some(zone))),
                f64::NEG_INFINITY,
                room,
            );
        }
        let room = fixed[0].0 as f64 - 1.0 - existing_need(None) as f64;
        self.ilp.row(
            RowOrigin::RootBusRange,
            added(None),
            f64::NEG_INFINITY,
            room,
        );
    }

    /// I/O windows of bridges and ports (x86 firmware): `io windows` over every bus class
    /// that may hold I/O units, with the rows of each class's windows.
    pub(super) fn io_window_rows(&mut self) {
        let Some(limit) = self.p.machine.limits.io_windows else {
            return;
        };
        // The bridges the UEFI firmware pads with an I/O window whatever is below them:
        // every instance of their classes takes one where NUMA expanders may be planned
        // (with the root complex alone OVMF drops the padding when I/O runs out).
        let expanders = self.buses.iter().any(|b| b.numa);
        let uefi = crate::topology::io_padding::padding_firmware(
            &self.p.machine,
            self.p.spec,
            self.p.eff.firmware,
        );
        let padded = |b: &super::BusClass| {
            expanders && b.hotplug && uefi.is_some_and(|u| u.pads_io_of(&b.model))
        };
        let existing_io = self
            .buses
            .iter()
            .filter(|b| b.existing.is_some() && (b.has_io || padded(b)) && !b.is_root())
            .count() as u32;
        let mut terms = Vec::new();
        for bi in 0..self.buses.len() {
            let b = &self.buses[bi];
            if padded(b) {
                terms.extend(self.n.get(&bi).map(|&nv| (nv, 1.0)));
                continue;
            }
            terms.extend(self.io_windows_of(bi));
        }
        if !terms.is_empty() {
            self.ilp.row(
                RowOrigin::IoWindows,
                terms,
                f64::NEG_INFINITY,
                limit as f64 - existing_io as f64,
            );
        }
    }

    /// The I/O windows bus class `bi` needs, as terms: its I/O units (placed or kept)
    /// themselves on a one-slot port, else a variable `w` of its instances with a window,
    /// covering its I/O units (`io cover …`, `io link …`, `io within …`).
    fn io_windows_of(&mut self, bi: usize) -> Vec<(usize, f64)> {
        let b = &self.buses[bi];
        if b.is_root() || (b.existing.is_some() && b.has_io) {
            return Vec::new();
        }
        let mut io_x: Vec<(usize, f64)> = (0..self.units.len())
            .filter(|&ui| self.units[ui].io)
            .filter_map(|ui| self.x.get(&(ui, bi)).map(|&v| (v, 1.0)))
            .collect();
        io_x.extend(self.kept_io_on(bi));
        if io_x.is_empty() {
            return Vec::new();
        }
        if b.slots == 1 {
            return io_x;
        }
        let ub = if b.existing.is_some() {
            1.0
        } else {
            b.ub as f64
        };
        let slots = b.slots as f64;
        let w = self.ilp.var(VarOrigin::IoWindows { bus: bi }, 0.0, ub);
        let mut row: Vec<(usize, f64)> = io_x.iter().map(|&(v, _)| (v, -1.0)).collect();
        row.push((w, slots));
        self.ilp
            .row(RowOrigin::IoCover { bus: bi }, row, 0.0, f64::INFINITY);
        if !self.relax.order {
            self.io_cover_of_runs(bi, w);
        }
        for (ui, u) in self.units.iter().enumerate() {
            let Some(&v) = self.x.get(&(ui, bi)) else {
                continue;
            };
            if u.io && self.most[ui] < slots {
                self.ilp.row(
                    RowOrigin::IoLink { unit: ui, bus: bi },
                    vec![(v, 1.0), (w, -self.most[ui])],
                    f64::NEG_INFINITY,
                    0.0,
                );
            }
        }
        if let Some(&nv) = self.n.get(&bi) {
            self.ilp.row(
                RowOrigin::IoWithin { bus: bi },
                vec![(w, 1.0), (nv, -1.0)],
                f64::NEG_INFINITY,
                0.0,
            );
        }
        vec![(w, 1.0)]
    }

    /// Ordered I/O units bring windows of their own (see [`Self::ordered_io_windows`]);
    /// unordered ones fill the rest of the `w` instances of bus class `bi`.
    fn io_cover_of_runs(&mut self, bi: usize, w: usize) {
        let runs = self.ordered_io_windows(bi);
        if runs.is_empty() {
            return;
        }
        let slots = self.buses[bi].slots as f64;
        let mut row: Vec<(usize, f64)> = vec![(w, slots)];
        row.extend(runs.iter().map(|&(v, c)| (v, -c * slots)));
        row.extend(
            self.units
                .iter()
                .enumerate()
                .filter(|(_, u)| u.io && u.rank.is_none())
                .filter_map(|(ui, _)| self.x.get(&(ui, bi)).map(|&v| (v, -1.0))),
        );
        self.ilp.row(
            RowOrigin::IoCoverOfRuns { bus: bi },
            row,
            0.0,
            f64::INFINITY,
        );
    }
}
