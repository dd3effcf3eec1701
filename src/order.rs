//! The ordering requirement: devices named in `order:` (or carrying `order: N`) get
//! ascending PCI addresses in that order. Addresses compare as (bus index, slot,
//! function). The program and the decoder place ordered devices in order (see
//! `solve::formulate::order`); this module validates the requirement before solving and
//! checks the assembled plan, naming the cause when a pin or a fixed slot contradicts it.

use crate::error::{Error, Result};
use crate::normalize::Problem;
use crate::spec::Spec;
use crate::topology::{Address, PciAddress, Plan};

fn pci(a: &Option<Address>) -> Option<PciAddress> {
    match a {
        Some(Address::Pci(p)) => Some(*p),
        _ => None,
    }
}

fn key(a: &PciAddress) -> (u32, u32, u8, u8) {
    (a.domain, a.bus, a.slot, a.function)
}

/// The ordering requirement of a spec, validated before anything is solved: the sequence
/// of devices (by spec position), every one of them a PCI device.
pub(crate) fn validate(spec: &Spec, pci: impl Fn(usize) -> bool) -> Result<Vec<usize>> {
    let seq = crate::spec::order::sequence(spec)?;
    for (k, &i) in seq.iter().enumerate() {
        if !pci(i) {
            let at = if spec.order.is_empty() {
                format!("devices[{i}].order")
            } else {
                format!("order[{k}]")
            };
            return Err(Error::input(
                at,
                format!(
                    "`{}` is not a PCI device; the order applies to PCI addresses",
                    spec.devices[i].id
                ),
            ));
        }
    }
    Ok(seq)
}

/// The ordering requirement holds in an assembled plan. The program and the decoder place
/// ordered devices in order; what they cannot do (a pin between two ordered devices, a
/// multifunction group whose functions are listed out of order) is refused here.
pub(crate) fn holds(plan: &Plan, p: &Problem) -> Result<()> {
    check(plan, &p.sequence).map_err(|(a, b)| {
        let (da, db) = (&plan.devices[a], &plan.devices[b]);
        let pinned = |i: usize| p.spec.devices[i].address.is_some();
        let placed_by_machine =
            |i: usize| p.spec.devices[i].address.is_none() && p.pinned.contains_key(&i);
        let grouped =
            p.spec.devices[a].group.is_some() && p.spec.devices[a].group == p.spec.devices[b].group;
        let why = if grouped {
            "they are functions of one multifunction group, whose functions follow the group's \
             order in the spec"
        } else if pinned(a) || pinned(b) {
            "one of them is pinned (or kept from the previous plan)"
        } else if placed_by_machine(a) || placed_by_machine(b) {
            "the machine places one of them at a fixed slot (the primary video device, or a \
             controller's fixed slot)"
        } else {
            "no topology within the spec's limits places them in this order"
        };
        Error::from(
            crate::Explanation::new(
                crate::Binding::Order,
                format!(
                    "order: `{}` must come before `{}`, but they are at {} and {}: {why}",
                    da.id,
                    db.id,
                    da.address.as_ref().map_or("?".into(), |x| x.to_string()),
                    db.address.as_ref().map_or("?".into(), |x| x.to_string()),
                ),
                "list group members in the order wanted, pin them in order, or (when \
                  replanning) pass --allow-moves",
            )
            .devices([da.id.clone(), db.id.clone()]),
        )
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
