//! The ordering requirement as the spec states it: devices named in `order:` (or carrying
//! `order: N`) must get ascending PCI addresses in that order. Reading it is input
//! interpretation shared by the planner and the independent verifier, so it lives with
//! the spec and depends on nothing of the planner.

use super::Spec;
use crate::error::{Error, Result};

/// The devices (by spec position) that must ascend, in their required order. Fails on an
/// unknown or repeated id, or when both forms of `order` are used.
pub(crate) fn sequence(spec: &Spec) -> Result<Vec<usize>> {
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
    if spec.order.is_empty() {
        return Ok(Vec::new());
    }
    let by_id = spec.positions();
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
