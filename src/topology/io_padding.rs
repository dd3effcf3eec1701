//! OVMF's I/O padding of hotplug ports, and the ports that give it up (`io_reserve: 0`).
//!
//! OVMF pads every hotplug-capable PCIe port that carries no I/O reservation hint (QEMU's
//! `io-reserve`) with 512 bytes of I/O: a 4 KiB window of its own when nothing below
//! the port has an I/O BAR. When the windows do not all fit, OVMF's PCI bus driver drops
//! padding only while the root bridge whose I/O allocation failed is the last one it
//! asks about (it keeps one allocation status per resource type, overwritten root
//! bridge by root bridge); with NUMA expanders (each a root bridge of its own) the failing
//! one is often an earlier one, nothing is dropped, and the whole enumeration is given
//! up: no device gets resources. A plan therefore gives the padding up itself where it
//! would not fit: `io_reserve: 0` (QEMU `io-reserve=0`) on as many padded ports as the
//! budget is short of — ports new to the plan first, ports a replan keeps only when the
//! new ones are not enough — so the windows left (the ports with I/O-BAR devices and the
//! ports still padded) fit the budget.

use super::{Address, ByIndex, ControllerEntry};
use crate::catalog::{Catalog, IoBar, PciModel};
use crate::spec::DeviceEntry;
use std::collections::BTreeSet;

/// The buses (controller indexes) that hold a function with an I/O BAR: the bridges and
/// ports that need an I/O window for what sits directly on them. `models`: the PCI model
/// of each controller ([`super::pci_models`]).
pub(crate) fn io_buses(
    controllers: &[ControllerEntry],
    models: &[Option<&PciModel>],
    devices: &[DeviceEntry],
    cat: &Catalog,
) -> BTreeSet<u32> {
    let express: ByIndex<bool> = controllers
        .iter()
        .zip(models)
        .filter_map(|(c, m)| Some((c.index, m.as_ref()?.bus.express)))
        .collect();
    let placed = devices
        .iter()
        .map(|d| (d.kind.as_str(), &d.address))
        .chain(controllers.iter().map(|c| (c.model.as_str(), &c.address)));
    let mut kinds = super::Memo::default();
    placed
        .filter_map(|(kind, address)| {
            let Some(Address::Pci(a)) = address else {
                return None;
            };
            let k = kinds.get(kind, |n| cat.kind(n))?;
            let io = match k.io_bar {
                IoBar::None => false,
                IoBar::Always => true,
                IoBar::Legacy => a.bus == 0 || !express.get(a.bus).copied().unwrap_or(false),
            };
            io.then_some(a.bus)
        })
        .collect()
}

/// Positions in `controllers` of the hotplug ports the firmware pads with an I/O window
/// of their own: ports with QEMU's resource reservation (the only ones that can say
/// `io-reserve`), hotplug on, keeping no 64-bit room (those say `io-reserve=0` already),
/// without `io_reserve: 0` and with no I/O-BAR function at or below them.
pub(crate) fn padded_ports(
    controllers: &[ControllerEntry],
    models: &[Option<&PciModel>],
    io_buses: &BTreeSet<u32>,
) -> Vec<usize> {
    let with_io = with_io_below(controllers, io_buses);
    (0..controllers.len())
        .filter(|&i| {
            let c = &controllers[i];
            c.hotplug != Some(false)
                && c.pref64_reserve.is_none()
                && c.io_reserve != Some(0)
                && models[i].is_some_and(|m| m.resource_reserve)
                && !with_io.contains(&c.index)
        })
        .collect()
}

/// The buses (controller indexes) at or above a bus of `io_buses`: the bridges whose
/// I/O window holds an I/O BAR.
fn with_io_below(controllers: &[ControllerEntry], io_buses: &BTreeSet<u32>) -> BTreeSet<u32> {
    let parent: ByIndex<u32> = controllers
        .iter()
        .filter_map(|c| match &c.address {
            Some(Address::Pci(a)) => Some((c.index, a.bus)),
            _ => None,
        })
        .collect();
    let mut with_io = BTreeSet::new();
    for &b in io_buses {
        let mut bus = Some(b);
        while let Some(x) = bus.filter(|x| with_io.insert(*x)) {
            bus = parent.get(x).copied();
        }
    }
    with_io
}

/// The bridges the firmware pads with an I/O window it cannot be told to give up
/// (`firmware`'s `io_padded_bridges`, hotplug on) and nothing at or below which has an
/// I/O BAR: each (the lowest of a chain of them) takes a window of the budget like a
/// bridge with an I/O device — where the plan has NUMA expanders. With the root complex
/// alone OVMF drops that padding when I/O runs out (measured: 9 e1000e beside an
/// i6300esb's pcie-to-pci-bridge boot); with expanders it gives the whole enumeration up
/// instead (see the module's text).
pub(crate) fn padded_bridges(
    controllers: &[ControllerEntry],
    models: &[Option<&PciModel>],
    io_buses: &BTreeSet<u32>,
    firmware: &crate::catalog::UefiFirmware,
) -> Vec<usize> {
    let expanders = models.iter().any(|m| m.is_some_and(|m| m.numa));
    if !expanders {
        return Vec::new();
    }
    let with_io = with_io_below(controllers, io_buses);
    let padded: Vec<usize> = (0..controllers.len())
        .filter(|&i| {
            let c = &controllers[i];
            firmware.pads_io_of(&c.model) && c.hotplug != Some(false) && !with_io.contains(&c.index)
        })
        .collect();
    // A chain of them (a switch's downstream port, a pcie-to-pci-bridge below it) nests
    // one window in the other: only the lowest of each chain counts.
    let holders: BTreeSet<u32> = padded
        .iter()
        .filter_map(|&i| match &controllers[i].address {
            Some(Address::Pci(a)) => Some(a.bus),
            _ => None,
        })
        .collect();
    let above = with_io_below(controllers, &holders);
    padded
        .into_iter()
        .filter(|&i| !above.contains(&controllers[i].index))
        .collect()
}

/// The UEFI firmware whose I/O padding a plan of `spec` for `firmware` on `machine`
/// must count: none for BIOS-only plans and plans from before devaddr recorded the
/// firmware (held to the budgets they were made for).
pub(crate) fn padding_firmware<'a>(
    machine: &'a crate::catalog::MachineModel,
    spec: &crate::Spec,
    firmware: crate::spec::Firmware,
) -> Option<&'a crate::catalog::UefiFirmware> {
    machine
        .uefi
        .as_ref()
        .filter(|_| firmware != crate::spec::Firmware::Bios && !crate::catalog::legacy_plan(spec))
}

/// Whether the firmware pads hotplug ports with I/O and the I/O windows of the ports with
/// I/O-BAR devices (`io_windows` of them) and of the padded ports (`padded`) do not all
/// fit the budget `limit`: then the padded ports must give their padding up.
pub(crate) fn padding_overflows(pads: bool, io_windows: usize, padded: usize, limit: u32) -> bool {
    pads && padded > 0 && io_windows + padded > limit as usize
}

/// Which of the `padded` ports (positions in `controllers`) give their padding up when
/// the windows pass the budget `limit` by some: that many of them (all, when the ports
/// with I/O-BAR devices pass it alone), the ports `kept` does not hold first (new to
/// the plan), then the kept ones, each group from the highest index down.
pub(crate) fn giving_up(
    controllers: &[ControllerEntry],
    padded: &[usize],
    io_windows: usize,
    limit: u32,
    kept: impl Fn(&ControllerEntry) -> bool,
) -> Vec<usize> {
    let excess = (io_windows + padded.len()).saturating_sub(limit as usize);
    let mut order = padded.to_vec();
    order.sort_by_key(|&i| {
        let c = &controllers[i];
        (kept(c), std::cmp::Reverse(c.index))
    });
    order.truncate(excess.min(padded.len()));
    order
}
