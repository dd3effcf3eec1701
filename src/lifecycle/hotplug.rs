//! Live hotplug: add devices to a running guest. Nothing of the plan moves, no controller
//! is added that libvirt cannot attach live (no PCI controller at all), and the new
//! devices go into free hotpluggable slots that honour their NUMA node, bus type and
//! multifunction group.

use super::{validate, verified};
use crate::error::{Error, Result};
use crate::normalize::{self, Context, ExtraUnit, Mode};
use crate::spec::{Additions, DeviceEntry};
use crate::topology::{mmio64, Plan};
use crate::Options;
use std::collections::BTreeMap;

/// The result of [`hotplug`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Hotplugged {
    /// The plan with the new devices in it.
    pub plan: Plan,
    /// Ids of what must be attached, in order: controllers the new devices need (a SCSI
    /// controller for SCSI disks), then the devices in the order given.
    pub added: Vec<String>,
}

/// Place `add` into the running guest described by `plan`.
///
/// ```
/// let spec = devaddr::Spec::parse("machine: q35\npolicy: {hotplug_reserve: 2}\ndevices:\n  - {id: net0, kind: virtio-net}\n", "s.yaml")?;
/// let running = devaddr::plan(&spec)?;
/// let new = vec![devaddr::DeviceEntry { id: "net1".into(), kind: "virtio-net".into(), ..Default::default() }];
/// let h = devaddr::hotplug(&running, &new)?;
/// assert_eq!(h.added, vec!["net1".to_string()]);
/// // Nothing that was there moved, and no controller was added.
/// assert_eq!(h.plan.controllers, running.controllers);
/// # Ok::<(), devaddr::Error>(())
/// ```
pub fn hotplug(plan: &Plan, add: &[DeviceEntry]) -> Result<Hotplugged> {
    hotplug_with(plan, add, Options::default())
}

/// [`hotplug`] with explicit options.
pub fn hotplug_with(plan: &Plan, add: &[DeviceEntry], opts: Options<'_>) -> Result<Hotplugged> {
    hotplug_additions_with(plan, &Additions::devices(add.to_vec()), opts)
}

/// [`hotplug_with`] for new devices that also join `apart` or `together` sets: the sets
/// are added to the guest's, and the new devices go where they hold (or the refusal names
/// the set that blocks them).
///
/// ```
/// let spec = devaddr::Spec::parse("machine: q35\npolicy: {hotplug_reserve: 2}\ndevices:\n  - {id: net0, kind: virtio-net}\n", "s.yaml")?;
/// let running = devaddr::plan(&spec)?;
/// let add = devaddr::spec::parse_additions("devices: [{id: net1, kind: virtio-net}]\napart: [[net0, net1]]\n", "add.yaml")?;
/// let h = devaddr::hotplug_additions_with(&running, &add, devaddr::Options::default())?;
/// assert_eq!(h.plan.apart, vec![vec!["net0".to_string(), "net1".to_string()]]);
/// # Ok::<(), devaddr::Error>(())
/// ```
pub fn hotplug_additions_with(
    plan: &Plan,
    additions: &Additions,
    opts: Options<'_>,
) -> Result<Hotplugged> {
    let add = &additions.devices;
    let cat = opts.catalog;
    let base = plan.to_spec();
    verified(&base, cat, "plan")?;
    validate(&base, cat)?;
    let mut spec = base.clone();
    spec.devaddr = None;
    spec.apart.extend(additions.apart.iter().cloned());
    spec.together.extend(additions.together.iter().cloned());
    let mut ids: BTreeMap<&str, usize> = base
        .devices
        .iter()
        .map(|d| d.id.as_str())
        .chain(base.controllers.iter().map(|c| c.id.as_str()))
        .map(|id| (id, usize::MAX))
        .collect();
    // Every added device's id and kind first, all of them reported at once.
    let mut errors = Vec::new();
    for (i, d) in add.iter().enumerate() {
        if ids.insert(d.id.as_str(), i).is_some() {
            errors.push(
                Error::input(
                    format!("add[{i}].id"),
                    format!("device id `{}` is already in the plan", d.id),
                )
                .with_code(crate::Code::Duplicate),
            );
        }
        if cat.kind(&d.kind).is_none() {
            errors.push(
                Error::input(
                    format!("add[{i}].kind"),
                    format!("unknown device kind `{}`{}", d.kind, cat.kind_hint(&d.kind)),
                )
                .with_code(crate::Code::UnknownName),
            );
        }
    }
    Error::collect(errors)?;
    for d in add {
        let Some(kind) = cat.kind(&d.kind) else {
            continue;
        };
        if !kind.hotplug || !kind.attach {
            return Err(Error::from(
                crate::Explanation::new(
                    crate::Binding::NotHotpluggable,
                    format!(
                        "device `{}`: a {} cannot be added to a running guest ({})",
                        d.id,
                        d.kind,
                        if kind.hotplug {
                            "libvirt's attach-device does not take it live"
                        } else {
                            "QEMU cannot hot-plug it"
                        }
                    ),
                    "add it at next boot: `devaddr plan SPEC --previous PLAN`",
                )
                .devices([d.id.clone()]),
            ));
        }
        let mut d = d.clone();
        if kind.family == crate::catalog::Family::Pci {
            d.hotplug = Some(true);
        }
        spec.devices.push(d);
    }
    pin_big_bars(plan, &mut spec, add.len(), cat)?;
    let bar64_reserve = spec.policy.hotplug_reserve_bar64.take();
    let live = Context {
        live: true,
        ..Default::default()
    };
    // Live hotplug consumes the reserve: plan without it, then record what is left.
    let reserve = (
        spec.policy.hotplug_reserve,
        spec.policy.hotplug_reserve_per_node,
    );
    spec.policy.hotplug_reserve = Some(0);
    spec.policy.hotplug_reserve_per_node = Some(0);
    // Ordinary devices keep off the ports kept for big BARs while other places exist: as
    // many of those ports as the new devices leave (the first ones longest) stay closed.
    let kept = spared_big_bar_ports(plan, &spec, cat);
    let solved = (1..=kept.len()).rev().find_map(|n| {
        let mut spared = spec.clone();
        for &(index, _, _) in &kept[..n] {
            let c = spared.controllers.iter_mut().find(|c| c.index == index)?;
            c.hotplug = Some(false);
        }
        crate::plan_unverified(&spared, opts, live.clone())
            .ok()
            .and_then(|p| reopened(p, &kept[..n]))
    });
    let solved = match solved {
        Some(p) => Ok(p),
        None => crate::plan_unverified(&spec, opts, live),
    };
    // Verified once below, after the reserve left is recorded.
    match solved {
        Ok(mut p) => {
            let total: u32 = p.free.hotplug_pcie_ports.values().sum::<u32>()
                + p.free.hotplug_pci_slots.values().sum::<u32>();
            let per_node = p
                .free
                .hotplug_pcie_ports
                .iter()
                .chain(p.free.hotplug_pci_slots.iter())
                .filter(|(k, _)| matches!(k, crate::topology::FreeZone::Node(_)))
                .map(|(_, &v)| v)
                .min()
                .unwrap_or(0);
            p.policy.hotplug_reserve = reserve.0.map(|r| r.min(total));
            p.policy.hotplug_reserve_per_node = reserve.1.map(|r| r.min(per_node));
            p.policy.hotplug_reserve_bar64 = bar64_reserve.map(|r| crate::spec::Bar64Reserve {
                ports: r
                    .ports
                    .min(mmio64::roomy_ports(&p, cat, r.size).len() as u32),
                size: r.size,
            });
            let findings = crate::verify::verify_against(&p, &spec, cat);
            if !findings.is_empty() {
                return Err(Error::Check { findings });
            }
            let mut added: Vec<String> = p
                .controllers
                .iter()
                .filter(|c| !plan.controllers.iter().any(|o| o.id == c.id))
                .map(|c| c.id.clone())
                .collect();
            added.extend(add.iter().map(|d| d.id.clone()));
            Ok(Hotplugged { plan: p, added })
        }
        Err(Error::Infeasible { explanation }) => {
            let all_free = plan.free.hotplug_pcie_ports.values().sum::<u32>()
                + plan.free.hotplug_pci_slots.values().sum::<u32>();
            Err(shortage(&base, &spec, all_free, opts).unwrap_or(Error::Infeasible { explanation }))
        }
        Err(e) => Err(e),
    }
}

/// The empty ports that keep 64-bit room (`pref64_reserve`) and no new big device was
/// pinned to, as (index, hotplug, zone): closed to hot-added devices (not hotpluggable)
/// while the others are planned.
fn spared_big_bar_ports(
    plan: &Plan,
    spec: &crate::Spec,
    cat: &crate::Catalog,
) -> Vec<(u32, Option<bool>, Option<u32>)> {
    let pinned: std::collections::BTreeSet<u32> = spec
        .devices
        .iter()
        .filter_map(|d| match &d.address {
            Some(crate::topology::Address::Pci(a)) => Some(a.bus),
            _ => None,
        })
        .collect();
    let smallest = crate::spec::ByteSize::new(1).expect("a power of two");
    mmio64::roomy_ports(plan, cat, smallest)
        .into_iter()
        .filter(|(index, _)| !pinned.contains(index))
        .filter_map(|(index, zone)| {
            let c = spec.controllers.iter().find(|c| c.index == index)?;
            Some((index, c.hotplug, zone))
        })
        .collect()
}

/// `p` planned with the big-BAR ports closed: the ports opened again as they were and
/// counted free again, if they stayed empty (else None: plan with them open).
fn reopened(mut p: Plan, kept: &[(u32, Option<bool>, Option<u32>)]) -> Option<Plan> {
    let parent = |a: &Option<crate::topology::Address>| match a {
        Some(crate::topology::Address::Pci(a)) => Some(a.bus),
        _ => None,
    };
    for &(index, hotplug, zone) in kept {
        let used = p.devices.iter().any(|d| parent(&d.address) == Some(index))
            || p.controllers
                .iter()
                .any(|c| parent(&c.address) == Some(index));
        if used {
            return None;
        }
        p.controllers.iter_mut().find(|c| c.index == index)?.hotplug = hotplug;
        *p.free
            .hotplug_pcie_ports
            .entry(crate::topology::FreeZone::of(zone))
            .or_default() += 1;
    }
    Some(p)
}

/// The new devices with a `bar64` (the last `n` of `spec`) go only into empty ports that
/// keep that much 64-bit room, on their NUMA node: each is pinned to the first such port
/// left (largest BAR first), or the hotplug is refused naming the next-boot fix.
fn pin_big_bars(plan: &Plan, spec: &mut crate::Spec, n: usize, cat: &crate::Catalog) -> Result<()> {
    let first = spec.devices.len() - n;
    let mut big: Vec<usize> = (first..spec.devices.len())
        .filter(|&i| spec.devices[i].bar64.is_some() && spec.devices[i].address.is_none())
        .collect();
    big.sort_by_key(|&i| std::cmp::Reverse(spec.devices[i].bar64));
    let mut taken = std::collections::BTreeSet::new();
    for i in big {
        let d = &spec.devices[i];
        let size = d.bar64.expect("filtered");
        let port = mmio64::roomy_ports(plan, cat, size)
            .into_iter()
            .find(|&(index, zone)| zone == d.numa_node && !taken.contains(&index));
        let Some((index, _)) = port else {
            let node = d
                .numa_node
                .map_or(String::new(), |n| format!(" on NUMA node {n}"));
            return Err(Error::from(
                crate::Explanation::new(
                    crate::Binding::LiveCapacity,
                    format!(
                        "device `{}` has a {size} 64-bit BAR, and no empty hotpluggable port{node} \
                         keeps that much 64-bit room: the firmware sized the other ports' \
                         windows at boot",
                        d.id
                    ),
                    format!(
                        "at next boot: set policy.hotplug_reserve_bar64: {{ports: N, size: {size}}} \
                         and replan (`devaddr plan SPEC --previous PLAN`), or add the device there"
                    ),
                )
                .devices([d.id.clone()]),
            ));
        };
        taken.insert(index);
        spec.devices[i].address = Some(crate::topology::Address::Pci(crate::PciAddress {
            domain: 0,
            bus: index,
            slot: 0,
            function: 0,
            multifunction: None,
        }));
    }
    Ok(())
}

/// Name the class of new devices that does not fit: "node 1 has 0 free hotpluggable PCIe
/// ports; 2 are needed", and the next-boot change that makes room.
fn shortage(
    base: &crate::Spec,
    with_new: &crate::Spec,
    all_free: u32,
    opts: Options<'_>,
) -> Option<Error> {
    let cat = opts.catalog;
    let p = normalize::normalize(with_new, cat).ok()?;
    let mut need: BTreeMap<(bool, Option<u32>, bool), u32> = BTreeMap::new();
    for (i, d) in p.devs.iter().enumerate().skip(base.devices.len()) {
        if d.kind.family == crate::catalog::Family::Pci && with_new.devices[i].address.is_none() {
            *need.entry((d.pcie, d.zone, d.io)).or_default() += 1;
        }
    }
    for ((pcie, zone, io), n) in need {
        let extra = ExtraUnit {
            connect: Some(crate::vocab::ConnectKind::endpoint(pcie)),
            hotplug: true,
            zone,
            io,
            mode: Mode::Whole,
            max: n + 1,
        };
        let ctx = Context {
            live: true,
            extra: Some(extra),
            ..Default::default()
        };
        let q = normalize::normalize_in(base, cat, ctx).ok()?;
        let free = crate::solve::max_extra(&q, cat, opts.solver()).ok()?;
        if free >= n {
            continue;
        }
        let place = match zone {
            Some(k) => format!("NUMA node {k}"),
            None => "the guest (outside NUMA expander buses)".to_string(),
        };
        let what = if p.machine.pcie && pcie {
            "PCIe ports"
        } else {
            "conventional PCI slots"
        };
        // The reserve that leaves room for them after a replan: per node it is the count on
        // each node; the total one counts every empty port, so it must grow by the shortfall.

        let (knob, value) = match zone {
            Some(_) => ("policy.hotplug_reserve_per_node", n),
            None => ("policy.hotplug_reserve", all_free + n - free),
        };
        return Some(Error::from(crate::Explanation::new(
            crate::Binding::LiveCapacity,
            format!(
                "{place} has {free} free hotpluggable {what}; {n} {} needed",
                if n == 1 { "is" } else { "are" }
            ),
            format!(
                "at next boot: add the devices to the spec and run `devaddr plan SPEC \
                 --previous PLAN` (it adds the {what} and keeps every address); to hotplug \
                 them later instead, set {knob}: {value} and replan the same way"
            ),
        )));
    }
    None
}
