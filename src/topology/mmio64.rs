//! 64-bit MMIO: how much prefetchable 64-bit space a plan's big BARs (`bar64:`) need, as
//! the firmware lays them out (OVMF, SeaBIOS and AAVMF alike): every bridge's window is
//! aligned to its largest BAR and holds everything below it, every root bus (the root
//! complex and each NUMA expander, which the firmware treats as a root bridge of its own)
//! sums its windows, and the aperture is the next power of two, as OVMF's 64-bit aperture
//! (`X-PciMmio64Mb`) is naturally aligned.
//!
//! The root bridges are not packed largest first: OVMF allocates them one after the
//! other in bus-number order (the root complex, then the expanders by `bus_nr`), each at
//! the first address aligned to its largest BAR. A big-BAR expander after small ones then
//! starts only at its next alignment (measured: 8 + 64 GiB on the expander with the
//! highest bus number, beside two small expanders, need more than a 128 GiB aperture).
//!
//! OVMF also pads every hotplug port that has no QEMU `pref64-reserve` hint with 64-bit
//! prefetchable room, 1/256 of the aperture once that is above 32 GiB (`pref64_padding`
//! in the machine's UEFI limits): an aperture the BARs fill exactly leaves such a port,
//! and then a big BAR, bare. The count holds that padding at the aperture it asks. The
//! padded bridges are the catalog's `firmware_pads` models: PCIe root and downstream
//! ports, and the SHPC bridges (`pcie-to-pci-bridge`, `pci-bridge`, on q35 and pc).

use super::{Address, Plan};
use crate::catalog::{Catalog, Limits};
use crate::spec::ByteSize;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bridge windows are at least 1 MiB and aligned to it.
const BRIDGE_GRANULE: u64 = 1 << 20;

/// What a plan states about 64-bit MMIO (`mmio64:` in a plan): present when a device has
/// a `bar64` or a port reserves 64-bit room for hotplug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Mmio64 {
    /// Bytes of 64-bit MMIO the BARs and reserves need, windows aligned.
    pub needed: u64,
    /// The aperture the firmware and QEMU are asked for: the next power of two
    /// (OVMF `X-PciMmio64Mb`, `pci-hole64-size`, libvirt `<pcihole64>`).
    pub aperture: ByteSize,
    /// Guest physical address bits the aperture was checked against (`policy.phys_bits`,
    /// or QEMU's default for the machine's CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phys_bits: Option<u32>,
    /// Guest CPU features the firmware needs to map the aperture (OVMF: `pdpe1gb` once it
    /// ends past the firmware's address width without them); `--format qemu` adds them to
    /// `-cpu`, `--format libvirt` requires them in `<cpu>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_features: Vec<String>,
}

/// A window: its size and alignment (both 0 when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Window {
    size: u64,
    align: u64,
}

impl Window {
    /// Windows and BARs placed largest alignment first from an aligned base, each at its
    /// own alignment. A bridge window (`granule` > 0) is then rounded up to its
    /// alignment, at least `granule`, as the firmware sizes bridge windows; the aperture
    /// (`granule` 0) ends where the last part does.
    fn holding(parts: &[Window], granule: u64) -> Window {
        let mut parts: Vec<Window> = parts.iter().copied().filter(|w| w.size > 0).collect();
        if parts.is_empty() {
            return Window::default();
        }
        parts.sort_by_key(|w| std::cmp::Reverse(w.align));
        let end = parts.iter().fold(0u64, |at, w| {
            at.div_ceil(w.align.max(1))
                .saturating_mul(w.align.max(1))
                .saturating_add(w.size)
        });
        let align = parts[0].align.max(granule).max(1);
        let size = if granule > 0 {
            end.div_ceil(align).saturating_mul(align)
        } else {
            end
        };
        Window { size, align }
    }
}

/// Bytes of 64-bit MMIO `plan` needs under `limits` (the plan's firmware budgets): the
/// devices' `bar64`, the kinds' own 64-bit BARs (`pref64` in the catalog), the ports'
/// 64-bit reserves and the firmware's padding of the other hotplug ports.
pub fn needed(plan: &Plan, cat: &Catalog, limits: &Limits) -> u64 {
    needed_of(&plan.controllers, &plan.devices, cat, limits)
}

/// [`needed`] of a plan's controllers and devices (a plan read back as a spec).
///
/// The firmware's padding (`pref64_padding`) grows with the aperture, which grows with
/// the need: the need is the smallest layout that fits the power-of-two aperture it
/// asks, and the aperture of that need pads no more.
pub fn needed_of(
    controllers: &[super::ControllerEntry],
    devices: &[crate::spec::DeviceEntry],
    cat: &Catalog,
    limits: &Limits,
) -> u64 {
    let bare = layout(controllers, devices, cat, 0);
    let Some(pad) = limits.pref64_padding else {
        return bare;
    };
    let mut aperture = bare.checked_next_power_of_two().unwrap_or(u64::MAX);
    for _ in 0..64 {
        let need = layout(controllers, devices, cat, pad.for_aperture(aperture));
        if need <= aperture || aperture == u64::MAX {
            return need;
        }
        aperture = need.checked_next_power_of_two().unwrap_or(u64::MAX);
    }
    u64::MAX
}

/// The 64-bit layout of `controllers` and `devices`, every hotplug port without a
/// 64-bit reserve holding at least `padding` bytes.
fn layout(
    controllers: &[super::ControllerEntry],
    devices: &[crate::spec::DeviceEntry],
    cat: &Catalog,
    padding: u64,
) -> u64 {
    let parent = |a: &Option<Address>| match a {
        Some(Address::Pci(p)) => Some(p.bus),
        _ => None,
    };
    // Children of each bus index: device BARs, and controllers by index.
    let mut bars: BTreeMap<u32, Vec<Window>> = BTreeMap::new();
    for d in devices {
        let own = || cat.kind(&d.kind).and_then(|k| k.pref64);
        if let (Some(b), Some(size)) = (parent(&d.address), d.bar64.or_else(own)) {
            bars.entry(b).or_default().push(Window {
                size: size.bytes(),
                align: size.bytes(),
            });
        }
    }
    let mut below: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    // Root buses by (guest bus number, index): the root complex is bus 0.
    let mut roots = vec![(0, 0)];
    for c in controllers {
        let Some(model) = cat.pci.get(&c.model) else {
            continue;
        };
        match parent(&c.address) {
            _ if model.numa => roots.push((c.bus_nr.unwrap_or(u32::MAX), c.index)),
            Some(b) if c.index != 0 => below.entry(b).or_default().push(c.index),
            _ => {}
        }
    }
    // A port's room: its 64-bit reserve, else the firmware's padding of hotplug ports.
    let padded = |c: &super::ControllerEntry| {
        let m = cat.pci.get(&c.model)?;
        (padding > 0 && m.firmware_pads && !m.numa && c.hotplug != Some(false)).then_some(padding)
    };
    let reserve: BTreeMap<u32, u64> = controllers
        .iter()
        .filter(|c| c.index != 0)
        .filter_map(|c| {
            Some((
                c.index,
                c.pref64_reserve.map(|r| r.bytes()).or_else(|| padded(c))?,
            ))
        })
        .collect();
    fn window(
        bus: u32,
        bars: &BTreeMap<u32, Vec<Window>>,
        below: &BTreeMap<u32, Vec<u32>>,
        reserve: &BTreeMap<u32, u64>,
        depth: usize,
    ) -> Window {
        let mut parts = bars.get(&bus).cloned().unwrap_or_default();
        if depth < 256 {
            for &c in below.get(&bus).into_iter().flatten() {
                parts.push(window(c, bars, below, reserve, depth + 1));
            }
        }
        // A root bus is no bridge: its parts sit in the aperture as they are.
        let granule = if depth == 0 { 0 } else { BRIDGE_GRANULE };
        let mut w = Window::holding(&parts, granule);
        if let Some(&r) = reserve.get(&bus) {
            if r > w.size {
                w = Window {
                    size: r,
                    align: r.max(w.align),
                };
            }
        }
        w
    }
    roots.sort_unstable();
    roots
        .iter()
        .map(|&(_, r)| window(r, &bars, &below, &reserve, 0))
        .filter(|w| w.size > 0)
        .fold(0u64, |at, w| {
            let align = w.align.max(1);
            at.div_ceil(align)
                .saturating_mul(align)
                .saturating_add(w.size)
        })
}

/// The 64-bit MMIO statement of `plan` on `machine` (its limits the plan's firmware
/// budgets) and `phys_bits` (the policy's, else the machine's default), or the
/// explanation why the guest cannot address it. `None` when nothing needs 64-bit room.
pub(crate) fn state(
    plan: &Plan,
    cat: &Catalog,
    machine: &crate::catalog::MachineModel,
    phys_bits: Option<u32>,
) -> Result<Option<Mmio64>, crate::Explanation> {
    use crate::explanation::{Binding, Explanation};
    let limits = &machine.limits;
    let asked = plan.devices.iter().any(|d| d.bar64.is_some())
        || plan.controllers.iter().any(|c| c.pref64_reserve.is_some());
    if !asked {
        return Ok(None);
    }
    let need = needed(plan, cat, limits);
    let Some(aperture) = aperture(need) else {
        return Ok(None);
    };
    let bits = phys_bits.or(limits.phys_bits);
    let lift = limits.firmware_address_feature.as_deref();
    let fits = |b: Option<Bound>| b.is_none_or(|b| aperture.bytes() <= b.max());
    let plain = bound(limits, phys_bits, false);
    let lifted = bound(limits, phys_bits, true);
    if fits(plain) || fits(lifted) {
        return Ok(Some(Mmio64 {
            needed: need,
            aperture,
            phys_bits: bits,
            cpu_features: (!fits(plain))
                .then(|| lift.map(String::from))
                .flatten()
                .into_iter()
                .collect(),
        }));
    }
    let Some(bound) = plain else {
        return Ok(None);
    };
    let gib = |b: u64| b.div_ceil(1 << 30);
    let max = bound.max();
    // The physical address bits an aperture needs: OVMF and SeaBIOS place it at a
    // multiple of its own size above RAM, so it ends at twice its size.
    let bits_needed = aperture.bytes().trailing_zeros() + 1;
    let (what, fix) = match bound {
        Bound::PhysBits(_) => (
            format!(
                "{} physical address bits ({} GiB for PCI)",
                bits.unwrap_or_default(),
                gib(max)
            ),
            format!(
                "raise policy.phys_bits to {bits_needed} or more (QEMU -cpu ...,phys-bits=N or \
                 host-phys-bits=on; libvirt <maxphysaddr>), or give fewer or smaller \
                 bar64 devices"
            ),
        ),
        Bound::Firmware(fw_bits) => {
            let firmware = machine.uefi.as_ref().map_or("the firmware", |u| &u.name);
            let cpu = machine.qemu_cpu.as_deref().unwrap_or("the machine's CPU");
            let maps = match lift {
                Some(f) => format!(
                    "address bits on the {cpu} CPU without 1 GiB pages (CPU feature {f}), \
                     and with them the guest's {} physical address bits hold at most {} GiB \
                     for PCI",
                    bits.unwrap_or_default(),
                    gib(lifted.map_or(max, Bound::max))
                ),
                None => format!(
                    "address bits on the {cpu} CPU (its page tables need 1 GiB pages beyond \
                     that, which {cpu} lacks), whatever policy.phys_bits says: at most {} \
                     GiB for PCI",
                    gib(max)
                ),
            };
            let raise = match (lift, lifted) {
                // The feature lifts the firmware's bound up to the CPU's address bits.
                (Some(f), Some(Bound::PhysBits(_)) | None) => format!(
                    "raise policy.phys_bits to {bits_needed} or more (the plan then asks \
                     for the CPU feature {f}, 1 GiB pages, which lifts the firmware's \
                     limit), or give fewer or smaller bar64 devices or reserves (an \
                     aperture of at most {} GiB)",
                    gib(max)
                ),
                _ => format!(
                    "give fewer or smaller bar64 devices or reserves (an aperture of at most \
                     {} GiB); raising policy.phys_bits does not lift this firmware limit",
                    gib(max)
                ),
            };
            (
                format!(
                    "{firmware}: it places the aperture at a multiple of its own size above \
                     RAM, so it would end at {} GiB, and the firmware maps only {fw_bits} \
                     {maps}",
                    gib(aperture.bytes().saturating_mul(2)),
                ),
                raise,
            )
        }
        Bound::Window(_) => (
            format!("the machine's fixed 64-bit PCI window of {} GiB", gib(max)),
            "give fewer or smaller bar64 devices (the window is fixed)".to_string(),
        ),
    };
    let bars: Vec<String> = plan
        .devices
        .iter()
        .filter(|d| d.bar64.is_some())
        .map(|d| d.id.clone())
        .collect();
    let mut e = Explanation::new(
        Binding::Mmio64,
        format!(
            "the 64-bit BARs and reserves need {} GiB of 64-bit MMIO (an aperture of \
             {aperture}), more than the guest can address with {what}",
            gib(need)
        ),
        fix,
    )
    .devices(bars);
    e.needed = Some(aperture.bytes() >> 30);
    e.available = Some(max >> 30);
    Err(e)
}

/// Empty hotpluggable ports that keep at least `size` of 64-bit room (`pref64_reserve`),
/// by index, each with the NUMA node of the expander above it (None: outside expanders).
pub fn roomy_ports(plan: &Plan, cat: &Catalog, size: ByteSize) -> Vec<(u32, Option<u32>)> {
    let parent = |a: &Option<Address>| match a {
        Some(Address::Pci(a)) => Some(a.bus),
        _ => None,
    };
    let by_index: BTreeMap<u32, &super::ControllerEntry> = plan
        .controllers
        .iter()
        .filter(|c| cat.pci.contains_key(&c.model))
        .map(|c| (c.index, c))
        .collect();
    let node_of = |mut index: u32| {
        for _ in 0..=crate::limits::MAX_BUS_CHAIN {
            let c = by_index.get(&index)?;
            if cat.pci.get(&c.model).is_some_and(|m| m.numa) {
                return c.numa_node;
            }
            index = parent(&c.address)?;
        }
        None
    };
    let used: std::collections::BTreeSet<u32> = plan
        .devices
        .iter()
        .map(|d| parent(&d.address))
        .chain(plan.controllers.iter().map(|c| parent(&c.address)))
        .flatten()
        .collect();
    by_index
        .values()
        .filter(|c| c.pref64_reserve.is_some_and(|r| r >= size))
        .filter(|c| c.hotplug != Some(false) && !used.contains(&c.index))
        .map(|c| (c.index, node_of(c.index)))
        .collect()
}

/// Half of the address space of `bits` physical address bits: OVMF and SeaBIOS place
/// the aperture naturally aligned above RAM, so it fits when it is at most that.
fn half_of(bits: u32) -> u64 {
    1u64.checked_shl(bits.saturating_sub(1)).unwrap_or(u64::MAX)
}

/// What bounds the 64-bit aperture, with the largest aperture it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// The guest CPU's physical address bits: the aperture, naturally aligned above
    /// RAM, ends within them (QEMU refuses to start otherwise).
    PhysBits(u64),
    /// The address bits the firmware maps on the machine's CPU (the bits, then the max).
    Firmware(u32),
    /// The machine's fixed 64-bit window.
    Window(u64),
}

impl Bound {
    fn max(self) -> u64 {
        match self {
            Bound::PhysBits(m) | Bound::Window(m) => m,
            Bound::Firmware(bits) => half_of(bits),
        }
    }
}

/// The tightest bound on the 64-bit aperture under `limits` and `phys_bits` (the
/// policy's, else the machine's default); on a tie the firmware's, which raising
/// `phys_bits` does not lift. `lifted`: with the CPU feature that lifts the firmware's
/// address width (`firmware_address_feature`), where the machine has one. None when
/// nothing bounds it.
fn bound(limits: &crate::catalog::Limits, phys_bits: Option<u32>, lifted: bool) -> Option<Bound> {
    let firmware = limits
        .firmware_address_bits
        .filter(|_| !(lifted && limits.firmware_address_feature.is_some()));
    [
        firmware.map(Bound::Firmware),
        phys_bits
            .or(limits.phys_bits)
            .map(|b| Bound::PhysBits(half_of(b))),
        limits.mmio64_max.map(|m| Bound::Window(m.bytes())),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|b| b.max())
}

/// The largest 64-bit aperture the guest can address: half of its physical address space
/// (`phys_bits`, else the machine's default), within what the firmware maps on the
/// machine's CPU — with the CPU feature that lifts that (`firmware_address_feature`),
/// which a plan asks for where it needs it — and the machine's fixed window if it has
/// them; None when nothing bounds it.
///
/// ```
/// use devaddr::topology::mmio64::max_aperture;
/// let q35 = devaddr::Catalog::embedded().machine("q35").unwrap();
/// let ovmf = &q35.uefi.as_ref().unwrap().limits;
/// // 46 bits with 1 GiB pages: 32 TiB; the default 40 bits: 512 GiB.
/// assert_eq!(max_aperture(ovmf, Some(46)), Some(32 << 40));
/// assert_eq!(max_aperture(ovmf, None), Some(512 << 30));
/// ```
pub fn max_aperture(limits: &crate::catalog::Limits, phys_bits: Option<u32>) -> Option<u64> {
    bound(limits, phys_bits, true).map(Bound::max)
}

/// The CPU feature a plan needs for the firmware to map an `aperture` of that many bytes
/// (`firmware_address_feature`, when the aperture passes `firmware_address_bits`), or
/// None.
///
/// ```
/// use devaddr::topology::mmio64::cpu_feature_needed;
/// let q35 = devaddr::Catalog::embedded().machine("q35").unwrap();
/// let ovmf = &q35.uefi.as_ref().unwrap().limits;
/// assert_eq!(cpu_feature_needed(ovmf, Some(46), 1 << 40), Some("pdpe1gb"));
/// assert_eq!(cpu_feature_needed(ovmf, Some(46), 512 << 30), None);
/// ```
pub fn cpu_feature_needed(
    limits: &crate::catalog::Limits,
    phys_bits: Option<u32>,
    aperture: u64,
) -> Option<&str> {
    bound(limits, phys_bits, false)
        .is_some_and(|b| aperture > b.max())
        .then_some(limits.firmware_address_feature.as_deref())
        .flatten()
}

/// The aperture for `needed` bytes: the next power of two (none for nothing).
pub fn aperture(needed: u64) -> Option<ByteSize> {
    (needed > 0)
        .then(|| needed.checked_next_power_of_two())
        .flatten()
        .and_then(ByteSize::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridge_window_aligns_to_its_largest_bar() {
        let w = Window::holding(
            &[
                Window {
                    size: 1 << 30,
                    align: 1 << 30,
                },
                Window {
                    size: 4 << 30,
                    align: 4 << 30,
                },
            ],
            BRIDGE_GRANULE,
        );
        assert_eq!((w.size, w.align), (8 << 30, 4 << 30));
        let small = Window::holding(
            &[Window {
                size: 16,
                align: 16,
            }],
            BRIDGE_GRANULE,
        );
        assert_eq!(small.size, BRIDGE_GRANULE);
    }
}
