//! Keep: units that may stay at their previous slot get a `keep` binary, and each slot
//! they would hold an occupancy binary (several packed units may share one); a slot's
//! other functions stay only if its function 0 stays.

use super::classes::compatible;
use super::Model;
use crate::normalize::{Mode, What};
use crate::solve::origin::{RowOrigin, VarOrigin};
use crate::topology::PciAddress;
use crate::vocab::pci;

impl Model<'_> {
    /// The `keep` binaries, and the occupancy binaries of the wholly free slots they hold.
    pub(super) fn keep_variables(&mut self) {
        let p = self.p;
        for (&unit, &(bus, slot)) in &p.optional {
            let Some((bi, used)) = self.keepable(unit, bus, slot) else {
                continue;
            };
            let k = self.ilp.var(VarOrigin::Keep { unit }, 0.0, 1.0);
            self.keep.insert(unit, k);
            if used != 0 {
                // The slot is already taken (by something that stays): no whole slot to count.
                continue;
            }
            let ilp = &mut self.ilp;
            let o = *self
                .occ
                .entry((bi, slot))
                .or_insert_with(|| ilp.var(VarOrigin::Occupied { bus: bi, slot }, 0.0, 1.0));
            self.ilp.row(
                RowOrigin::Occupied { unit },
                vec![(o, 1.0), (k, -1.0)],
                0.0,
                f64::INFINITY,
            );
        }
    }

    /// Whether `unit` may stay at `slot` of existing bus `bus`: the bus class it would
    /// stay on, and the functions of the slot already used.
    fn keepable(&self, unit: usize, bus: u32, slot: u8) -> Option<(usize, u8)> {
        let (p, cat, units, buses) = (self.p, self.cat, &self.units, &self.buses);
        let ci = units.iter().position(|u| u.units.contains(&unit))?;
        let bi = buses
            .iter()
            .position(|b| b.existing.is_some_and(|e| p.buses[e].index == bus))?;
        let e = buses[bi].existing.unwrap_or_default();
        let model = cat.pci_model(&p.buses[e].model);
        let What::Devices(members) = &p.units[unit].what else {
            return None;
        };
        let mask = previous_functions(p, members, bus, slot)?;
        let used = p.buses[e].used.get(&slot).copied().unwrap_or(0);
        let in_range = (model.bus.slots[0]..=model.bus.slots[1]).contains(&slot);
        if used & mask != 0
            || !in_range
            || units[ci].mode == Mode::Aggregate
            || !compatible(&units[ci], &buses[bi], p, cat)
        {
            return None;
        }
        Some((bi, used))
    }

    /// The `keep` binaries of I/O units that would stay on existing bus class `bi`: a
    /// kept unit needs its bus's I/O window as a placed one does.
    pub(super) fn kept_io_on(&self, bi: usize) -> Vec<(usize, f64)> {
        let p = self.p;
        let Some(e) = self.buses[bi].existing else {
            return Vec::new();
        };
        self.keep
            .iter()
            .filter(|(u, _)| p.units[**u].io)
            .filter(|(u, _)| {
                p.optional
                    .get(u)
                    .is_some_and(|&(b, _)| b == p.buses[e].index)
            })
            .map(|(_, &k)| (k, 1.0))
            .collect()
    }

    /// A slot's other functions stay only if its function 0 stays.
    pub(super) fn function_zero_rows(&mut self) {
        let p = self.p;
        for (&unit, &k) in &self.keep {
            let What::Devices(members) = &p.units[unit].what else {
                continue;
            };
            let Some(a) = p.ctx.previous.get(&members[0]) else {
                continue;
            };
            if a.function == 0 {
                continue;
            }
            let holder = self.keep.iter().find(|(&u, _)| {
                matches!(&p.units[u].what, What::Devices(m)
                    if p.ctx.previous.get(&m[0]).is_some_and(|b| b.bus == a.bus && b.slot == a.slot && b.function == 0))
            });
            if let Some((_, &k0)) = holder {
                self.ilp.row(
                    RowOrigin::FunctionZero { unit },
                    vec![(k, 1.0), (k0, -1.0)],
                    f64::NEG_INFINITY,
                    0.0,
                );
            } else if !self.function_zero_pinned(a) {
                // Function 0 of its slot is not held by anything that stays or is pinned:
                // a slot without function 0 is invisible to the guest, so it cannot stay.
                self.ilp.vars[k].hi = 0.0;
            }
        }
    }

    /// Whether function 0 of the slot of `a` is pinned there. (Not the primary video's
    /// own slot: that pin is taken only when the whole slot is free, so it does not stay
    /// under a kept function.)
    fn function_zero_pinned(&self, a: &PciAddress) -> bool {
        let p = self.p;
        let auto = p.pinned.iter().any(|(&d, q)| {
            p.spec.devices[d].address.is_none() && (q.bus, q.slot, q.function) == (a.bus, a.slot, 0)
        });
        !auto
            && p.buses
                .iter()
                .find(|b| b.index == a.bus)
                .and_then(|b| b.used.get(&a.slot))
                .is_some_and(|u| u & 1 != 0)
    }
}

/// The functions `members` held at `slot` of bus `bus` in the previous plan, as a mask
/// (a group that lost a member keeps its gap). `None`: a member held none there.
fn previous_functions(
    p: &crate::normalize::Problem,
    members: &[usize],
    bus: u32,
    slot: u8,
) -> Option<u8> {
    members.iter().try_fold(0u8, |mask, m| {
        let a = p.ctx.previous.get(m)?;
        (a.bus == bus && a.slot == slot && a.function < pci::FUNCTIONS_PER_SLOT)
            .then(|| mask | 1 << a.function)
    })
}
