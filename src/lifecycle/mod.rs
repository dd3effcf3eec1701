//! A guest's life after its first plan: replanning with a previous plan (addresses stay),
//! live hotplug into a running guest (nothing moves, nothing un-hotpluggable is added), and
//! what-if capacity (how many more fit now and at next boot). All three run the same
//! integer program as [`crate::plan`], with the previous topology frozen.

mod capacity;
mod hotplug;
mod replan;

pub(crate) use capacity::unknown_kind;
pub use capacity::{capacity, capacity_with, CapacityQuery, CapacityRow};
pub use hotplug::{hotplug, hotplug_additions_with, hotplug_with, Hotplugged};
pub use replan::{replan, replan_with, Move, Replanned};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::spec::Spec;

/// The catalog name of a machine (aliases and versioned names resolved).
fn machine_name(cat: &Catalog, machine: &str) -> Result<String> {
    cat.machine(machine)
        .map(|m| m.name.clone())
        .ok_or_else(|| cat.unknown_machine(machine))
}

/// A spec must plan on its own before it is combined with a previous plan, so that its own
/// mistakes are reported as bad input (exit 2), not blamed on the previous plan.
fn validate(spec: &Spec, cat: &Catalog) -> Result<()> {
    crate::normalize::normalize(spec, cat).map(|_| ())?;
    crate::spec::order::sequence(spec).map(|_| ())
}

/// A plan handed to hotplug, capacity or replan must pass `devaddr check` first: planning
/// from a corrupted plan would quietly repair it (a gap controller for a dangling bus, a
/// builtin put back) and answer for a guest that does not exist. `what` names the input
/// in the error (`plan`, `previous plan`); the CLI adds the file.
fn verified(plan: &Spec, cat: &Catalog, what: &str) -> Result<()> {
    let findings = crate::verify::verify_spec(plan, cat).map_err(|e| match e {
        Error::Input { message, .. } => Error::input(what, message),
        other => other,
    })?;
    if findings.is_empty() {
        return Ok(());
    }
    Err(Error::input(
        what,
        format!(
            "the {what} fails `devaddr check` ({}); fix it or plan again from the \
             spec:\n{}",
            crate::verify::counted(&findings),
            crate::verify::bulleted(&findings)
        ),
    ))
}
