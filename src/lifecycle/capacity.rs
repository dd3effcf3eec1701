//! What-if capacity: how many more devices of a kind fit, now in the running guest (free
//! hotpluggable places only, nothing added that cannot be attached live) and at next
//! boot (controllers may be added within the bus-number budget and the machine's
//! limits). Each number is the integer program with the objective "as many more as
//! possible" and the current topology frozen.

use crate::catalog::{Catalog, Family, IoBar, Kind, PciType};
use crate::error::{Error, Result};
use crate::normalize::{self, Context, ExtraUnit, Mode};
use crate::spec::{DeviceEntry, Multifunction, Prefer, Spec};
use crate::topology::{Address, Plan};
use crate::vocab::{ConnectKind, ControllerType};
use crate::Options;
use serde::{Deserialize, Serialize};

/// What to ask. [`CapacityQuery::default`] asks for the machine's representative kinds
/// everywhere; [`CapacityQuery::new`] for given kinds, on one node or everywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CapacityQuery {
    /// Device kinds (default: the machine's representative set).
    pub kinds: Vec<String>,
    /// Only this NUMA node (default: outside expanders, then every node).
    pub node: Option<u32>,
    /// The devices counted have a 64-bit BAR this large: live they fit only into empty
    /// ports that keep that much 64-bit room (`pref64_reserve`), at next boot only as many
    /// as the 64-bit aperture the guest can address holds.
    pub bar64: Option<crate::spec::ByteSize>,
}

/// One answer: how many more devices of `kind` fit on `node` (None: not below a NUMA
/// expander bus).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct CapacityRow {
    /// The device kind counted.
    pub kind: String,
    /// The guest NUMA node counted (devices below its expander bus); None for devices
    /// outside any expander.
    pub node: Option<u32>,
    /// Now, in the running guest: hot-added into free hotpluggable places.
    pub live: u32,
    /// At next boot: with controllers added as needed, every current address kept.
    pub next_boot: u32,
}

impl CapacityQuery {
    /// Ask about `kinds` (empty: the machine's representative set), on NUMA node `node`
    /// only or (None) outside expanders and then on every node.
    pub fn new(kinds: Vec<String>, node: Option<u32>) -> Self {
        CapacityQuery {
            kinds,
            node,
            bar64: None,
        }
    }

    /// The same, counting devices with a 64-bit BAR of `size` (`--bar64`).
    pub fn with_bar64(mut self, size: Option<crate::spec::ByteSize>) -> Self {
        self.bar64 = size;
        self
    }
}

/// Ceiling of any count (far above what a PCI domain holds).
const MAX: u32 = 1 << 16;

/// How many more of each kind fit in the guest planned by `input` (a plan, or a spec that
/// is planned first).
///
/// ```
/// let spec = devaddr::Spec::parse("machine: q35\npolicy: {hotplug_reserve: 3}\ndevices:\n  - {id: net0, kind: virtio-net}\n", "s.yaml")?;
/// let q = devaddr::CapacityQuery::new(vec!["virtio-net".into()], None);
/// let rows = devaddr::capacity(&spec, &q)?;
/// assert_eq!(rows[0].live, 3); // the three reserved root ports
/// assert!(rows[0].next_boot > 3); // more root ports can be added at next boot
/// # Ok::<(), devaddr::Error>(())
/// ```
pub fn capacity(input: &Spec, q: &CapacityQuery) -> Result<Vec<CapacityRow>> {
    capacity_with(input, q, Options::default())
}

/// [`capacity`] with explicit options.
pub fn capacity_with(
    input: &Spec,
    q: &CapacityQuery,
    opts: Options<'_>,
) -> Result<Vec<CapacityRow>> {
    let cat = opts.catalog;
    // A plan must pass check (planning it would repair it); then it plans to itself. A
    // spec is planned first.
    if input.devaddr.is_some() {
        super::verified(input, cat, "plan")?;
    }
    let plan: Plan = crate::plan_with(input, opts)?;
    let base = plan.to_spec();
    let machine = cat
        .machine(&base.machine)
        .ok_or_else(|| cat.unknown_machine(&base.machine))?;
    let eff = base.effective_policy();
    let kinds: Vec<String> = if q.kinds.is_empty() {
        machine.capacity_kinds.clone()
    } else {
        q.kinds.clone()
    };
    if let Some(n) = q.node {
        if n >= eff.numa_nodes {
            return Err(Error::input(
                "--node",
                format!(
                    "the guest has {} NUMA nodes; found node {n}",
                    eff.numa_nodes
                ),
            ));
        }
    }
    Error::collect(kinds.iter().filter_map(|k| unknown_kind(cat, k)).collect())?;
    let mut rows = Vec::new();
    for name in &kinds {
        let Some(kind) = cat.kind(name) else {
            continue;
        };
        match kind.family {
            Family::Pci => {
                let mut nodes: Vec<Option<u32>> = match q.node {
                    Some(n) => vec![Some(n)],
                    None => std::iter::once(None)
                        .chain((0..eff.numa_nodes).map(Some))
                        .collect(),
                };
                if machine.grow.numa_expander.is_none() {
                    nodes.retain(Option::is_none);
                }
                for node in nodes {
                    let (mut live, mut next_boot) = pci_counts(&base, &plan, kind, node, opts)?;
                    if let Some(size) = q.bar64 {
                        let room = crate::topology::mmio64::roomy_ports(&plan, cat, size);
                        let here = room.iter().filter(|r| r.1 == node).count() as u32;
                        live = live.min(here);
                        let upper = next_boot.min(bar64_aperture(&base, &plan, cat, size)?);
                        next_boot = bar64_next_boot(&base, name, node, size, upper, opts)?;
                    }
                    rows.push(CapacityRow {
                        kind: name.clone(),
                        node,
                        live,
                        next_boot,
                    });
                }
            }
            Family::Usb | Family::Drive => {
                if q.node.is_some() {
                    continue;
                }
                let (live, next_boot) = bus_counts(&base, &plan, kind, opts)?;
                rows.push(CapacityRow {
                    kind: name.clone(),
                    node: None,
                    live,
                    next_boot,
                });
            }
        }
    }
    Ok(rows)
}

/// How many more devices with a `size` 64-bit BAR the 64-bit aperture the guest can
/// address holds beside what the plan needs (each on a port of its own).
fn bar64_aperture(
    base: &Spec,
    plan: &Plan,
    cat: &Catalog,
    size: crate::spec::ByteSize,
) -> Result<u32> {
    use crate::topology::mmio64;
    let machine = cat.machine(&base.machine).expect("checked");
    let limits = crate::catalog::spec_limits(base, machine)?;
    let Some(max) = mmio64::max_aperture(&limits, base.policy.phys_bits) else {
        return Ok(MAX);
    };
    let need = mmio64::needed(plan, cat, &limits);
    let mut k = 0u32;
    while k < MAX {
        let more = need.saturating_add((u64::from(k) + 1).saturating_mul(size.bytes()));
        if mmio64::aperture(more).is_none_or(|a| a.bytes() > max) {
            break;
        }
        k += 1;
    }
    Ok(k)
}

/// How many more `kind` devices with a `size` 64-bit BAR (on `zone`) the next boot
/// holds: the most of them that plan beside the guest's devices, found by planning them
/// — the 64-bit count then lays the firmware's padding out at the aperture they need,
/// which grows with them — from `estimate` (the count without that growth) down, and
/// up while one more plans too.
fn bar64_next_boot(
    base: &Spec,
    kind: &str,
    zone: Option<u32>,
    size: crate::spec::ByteSize,
    estimate: u32,
    opts: Options<'_>,
) -> Result<u32> {
    let prefix = (0..)
        .map(|n| format!("capacity-bar64-{n}-"))
        .find(|p| !base.devices.iter().any(|d| d.id.starts_with(p.as_str())))
        .expect("a free id prefix");
    let fits = |k: u32| -> Result<bool> {
        let mut s = base.clone();
        s.devices.extend((0..k).map(|i| DeviceEntry {
            id: format!("{prefix}{i}"),
            kind: kind.to_string(),
            numa_node: zone,
            bar64: Some(size),
            ..Default::default()
        }));
        match crate::plan_with(&s, opts) {
            Ok(_) => Ok(true),
            Err(Error::Infeasible { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    };
    if estimate == 0 {
        return Ok(0);
    }
    if fits(estimate)? {
        let mut k = estimate;
        while k < MAX && fits(k + 1)? {
            k += 1;
        }
        return Ok(k);
    }
    // The largest k below `estimate` that fits: fits(lo) holds, fits(hi) does not.
    let (mut lo, mut hi) = (0u32, estimate);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// (live, next boot) for a PCI kind on one NUMA zone.
fn pci_counts(
    base: &Spec,
    plan: &Plan,
    kind: &Kind,
    zone: Option<u32>,
    opts: Options<'_>,
) -> Result<(u32, u32)> {
    let cat = opts.catalog;
    let machine = cat.machine(&base.machine).expect("checked");
    let eff = base.effective_policy();
    let pcie = machine.pcie
        && match kind.pci.unwrap_or(PciType::Pci) {
            PciType::Pcie => true,
            PciType::Pci => false,
            PciType::Either => eff.prefer == Prefer::Pcie,
        };
    let io = match kind.io_bar {
        IoBar::None => false,
        IoBar::Always => true,
        IoBar::Legacy => !pcie,
    };
    let have = plan.devices.iter().filter(|d| d.kind == kind.kind).count() as u32;
    let max = kind.max_per_guest.map_or(MAX, |m| m.saturating_sub(have));
    let ask = |live: bool, hotplug: bool| -> Result<u32> {
        if max == 0 {
            return Ok(0);
        }
        let mode = if !hotplug && eff.multifunction == Multifunction::Pack {
            Mode::Pack
        } else {
            Mode::Whole
        };
        let ctx = Context {
            live,
            extra: Some(ExtraUnit {
                connect: Some(ConnectKind::endpoint(pcie)),
                hotplug,
                zone,
                io,
                mode,
                max,
            }),
            ..Default::default()
        };
        let p = normalize::normalize_in(base, cat, ctx)?;
        crate::solve::max_extra(&p, cat, opts.solver())
    };
    let live = if kind.hotplug && kind.attach {
        ask(true, true)?
    } else {
        0
    };
    let next_boot = ask(false, eff.hotplug_by_default && kind.hotplug)?;
    Ok((live, next_boot))
}

/// (live, next boot) for a USB or drive kind: free ports/units on the controllers there
/// are, plus what controllers that fit would add.
fn bus_counts(base: &Spec, plan: &Plan, kind: &Kind, opts: Options<'_>) -> Result<(u32, u32)> {
    let cat = opts.catalog;
    let machine = cat.machine(&base.machine).expect("checked");
    let (provides, default) = match kind.family {
        Family::Usb => (
            Some(ControllerType::Usb),
            machine.defaults.usb_controller.as_str(),
        ),
        _ => {
            let b = kind.drive_bus;
            let d = match b {
                Some(ControllerType::Sata) => machine.defaults.sata_controller.as_str(),
                Some(ControllerType::Scsi) => machine.defaults.scsi_controller.as_str(),
                _ => "",
            };
            (b, d)
        }
    };
    let free = provides.map_or(0, |p| free_places(cat, plan, p));
    let per = cat
        .storage
        .get(default)
        .map_or(0, |m| m.capacity(m.max_ports.or(m.ports)));
    // How many more of the default controller fit, live and at next boot (pci_counts
    // already gives 0 live for a controller libvirt cannot attach live).
    let (ctls_live, ctls_next) = match cat.kind(default) {
        Some(ck) if per > 0 => pci_counts(base, plan, ck, None, opts)?,
        _ => (0, 0),
    };
    let live = if kind.hotplug && kind.attach {
        free + per * ctls_live
    } else {
        0
    };
    let next_boot = free.saturating_add(per.saturating_mul(ctls_next));
    Ok((live, next_boot))
}

/// Free USB ports or drive units on the plan's controllers.
fn free_places(cat: &Catalog, plan: &Plan, provides: ControllerType) -> u32 {
    let on_controllers: u32 = plan
        .controllers
        .iter()
        .filter_map(|c| cat.storage.get(&c.model).map(|m| (m, c.ports)))
        .filter(|(m, _)| m.provides == provides)
        .map(|(m, ports)| m.capacity(ports))
        .sum();
    let on_devices: u32 = plan
        .devices
        .iter()
        .filter_map(|d| {
            let k = cat.kind(&d.kind)?;
            let m = cat.storage.get(k.controller.as_deref()?)?;
            (m.provides == provides).then(|| m.capacity(d.ports))
        })
        .sum();
    let cap = on_controllers + on_devices;
    let used = plan
        .devices
        .iter()
        .filter(|d| {
            cat.kind(&d.kind).is_some_and(|k| match k.family {
                Family::Usb => provides == ControllerType::Usb,
                Family::Drive => k.drive_bus == Some(provides),
                Family::Pci => false,
            }) && matches!(d.address, Some(Address::Usb(_) | Address::Drive(_)))
        })
        .count() as u32;
    cap.saturating_sub(used)
}

/// The error for `--kind NAME` when the catalog has no such kind.
pub(crate) fn unknown_kind(cat: &Catalog, name: &str) -> Option<Error> {
    cat.kind(name).is_none().then(|| {
        Error::input(
            "--kind",
            format!("unknown device kind `{name}`{}", cat.kind_hint(name)),
        )
        .with_code(crate::Code::UnknownName)
    })
}
