//! The ordering requirement: devices named in `order:` (or carrying `order: N`) get
//! ascending PCI addresses in that order. Addresses compare as (bus index, slot,
//! function); devaddr numbers the buses it adds in the order the guest enumerates them.

use crate::error::{Error, Result};
use crate::normalize::Problem;
use crate::spec::Spec;
use crate::topology::{Address, PciAddress, Plan};
use std::collections::BTreeMap;

/// The devices (by spec position) that must ascend, in their required order.
pub(crate) fn sequence(spec: &Spec) -> Result<Vec<usize>> {
    let by_id: BTreeMap<&str, usize> = spec
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.as_str(), i))
        .collect();
    let numbered: Vec<usize> = (0..spec.devices.len())
        .filter(|&i| spec.devices[i].order.is_some())
        .collect();
    if !spec.order.is_empty() && !numbered.is_empty() {
        return Err(Error::input(
            format!("devices[{}].order", numbered[0]),
            "use either the top-level `order:` list or per-device `order:` numbers, not both",
        ));
    }
    if !numbered.is_empty() {
        let mut seq = numbered;
        seq.sort_by_key(|&i| (spec.devices[i].order, i));
        return Ok(seq);
    }
    let mut seq = Vec::new();
    for (k, id) in spec.order.iter().enumerate() {
        let Some(&i) = by_id.get(id.as_str()) else {
            return Err(Error::input(
                format!("order[{k}]"),
                format!("`{id}` is not the id of a device"),
            ));
        };
        if seq.contains(&i) {
            return Err(Error::input(
                format!("order[{k}]"),
                format!("`{id}` is listed twice"),
            ));
        }
        seq.push(i);
    }
    Ok(seq)
}

fn pci(a: &Option<Address>) -> Option<PciAddress> {
    match a {
        Some(Address::Pci(p)) => Some(*p),
        _ => None,
    }
}

fn key(a: &PciAddress) -> (u32, u32, u8, u8) {
    (a.domain, a.bus, a.slot, a.function)
}

/// Make the ordered devices' addresses ascend: devices the solver placed (not pinned, not
/// in a multifunction group) trade addresses with others of the same requirement class.
/// Fails when pins or differing requirements make the order impossible.
pub(crate) fn apply(plan: &mut Plan, p: &Problem) -> Result<()> {
    let seq = sequence(&p.spec)?;
    if seq.is_empty() {
        return Ok(());
    }
    for (k, &i) in seq.iter().enumerate() {
        if p.devs[i].kind.family != crate::catalog::Family::Pci {
            return Err(Error::input(
                format!("order[{k}]"),
                format!(
                    "`{}` is not a PCI device; the order applies to PCI addresses",
                    p.spec.devices[i].id
                ),
            ));
        }
    }
    // Requirement classes of the movable ordered devices.
    let movable =
        |i: usize| p.spec.devices[i].address.is_none() && p.spec.devices[i].group.is_none();
    let class = |i: usize| {
        let d = &p.devs[i];
        (d.pcie, d.hotplug, d.zone, d.io)
    };
    let mut classes: BTreeMap<_, Vec<usize>> = BTreeMap::new();
    for &i in &seq {
        if movable(i) {
            classes.entry(class(i)).or_default().push(i);
        }
    }
    for members in classes.values() {
        let mut addrs: Vec<PciAddress> = members
            .iter()
            .filter_map(|&i| pci(&plan.devices[i].address))
            .collect();
        if addrs.len() != members.len() {
            continue;
        }
        addrs.sort_by_key(key);
        for (&i, a) in members.iter().zip(addrs) {
            plan.devices[i].address = Some(Address::Pci(a));
        }
    }
    // Addresses move whole (with their multifunction flag): every slot keeps its shape.
    check(plan, &seq).map_err(|(a, b)| {
        let (da, db) = (&plan.devices[a], &plan.devices[b]);
        let why = if !movable(a) || !movable(b) {
            "one of them is pinned (or kept from the previous plan)"
        } else {
            "they differ in bus type, hotplug, NUMA node or I/O needs, so their slots cannot be swapped"
        };
        Error::Infeasible {
            requirement: format!(
                "order: `{}` must come before `{}`, but they are at {} and {}: {why}",
                da.id,
                db.id,
                da.address.as_ref().map_or("?".into(), |x| x.to_string()),
                db.address.as_ref().map_or("?".into(), |x| x.to_string()),
            ),
            fix: "give them the same requirements, pin them in order, or (when replanning) \
                  pass --allow-moves"
                .into(),
        }
    })
}

/// The first adjacent pair (by spec position) of the sequence that does not ascend.
pub(crate) fn check(plan: &Plan, seq: &[usize]) -> std::result::Result<(), (usize, usize)> {
    let addrs: Vec<Option<PciAddress>> = seq
        .iter()
        .map(|&i| plan.devices.get(i).and_then(|d| pci(&d.address)))
        .collect();
    for w in 0..seq.len().saturating_sub(1) {
        if let (Some(a), Some(b)) = (addrs[w], addrs[w + 1]) {
            if key(&a) >= key(&b) {
                return Err((seq[w], seq[w + 1]));
            }
        }
    }
    Ok(())
}
