//! Replan with a previous plan: every surviving device keeps its exact address, every
//! controller of the previous plan keeps its index and address, removed devices free
//! their slots, and new devices (with the controllers they need) are added. With
//! `allow_moves` the program instead keeps as many devices as possible (a `keep` binary
//! per device) and the moves are listed.

use super::{machine_name, validate, verified};
use crate::error::{Error, Result};
use crate::normalize::{self, Context};
use crate::spec::Spec;
use crate::topology::{Address, Plan};
use crate::Options;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A device that did not keep its previous address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Move {
    /// Id of the device.
    pub id: String,
    /// Its address in the previous plan.
    pub from: Address,
    /// Its address in the new plan (None when it has none there).
    pub to: Option<Address>,
    /// Why it could not stay.
    pub reason: String,
}

/// The result of [`replan_with`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Replanned {
    /// The new plan, verified.
    pub plan: Plan,
    /// Devices that moved (always empty unless moves were allowed).
    pub moves: Vec<Move>,
    /// Kept controllers whose firmware hints changed, as sentences: a UEFI port that
    /// gives OVMF's I/O padding up (`io_reserve: 0`) because the ports new to the plan
    /// giving theirs up were not enough. Addresses never change this way; the hint
    /// takes effect at the next boot.
    pub hints: Vec<String>,
}

/// Replan `spec` keeping every address of `previous`: devices present in both (same id
/// and kind) stay exactly where they were, all previous controllers stay, removed devices
/// free their slots. [`Error::Infeasible`] names the device that cannot stay and why.
///
/// ```
/// let spec = devaddr::Spec::parse("machine: q35\ndevices:\n  - {id: a, kind: virtio-net}\n  - {id: b, kind: virtio-net}\n", "s.yaml")?;
/// let first = devaddr::plan(&spec)?;
/// // Remove `a`, add `c`: `b` keeps its address.
/// let edited = devaddr::Spec::parse("machine: q35\ndevices:\n  - {id: b, kind: virtio-net}\n  - {id: c, kind: virtio-blk}\n", "s.yaml")?;
/// let next = devaddr::replan(&edited, &first)?;
/// let addr = |p: &devaddr::Plan, id: &str| p.devices.iter().find(|d| d.id == id).unwrap().address.clone();
/// assert_eq!(addr(&next, "b"), addr(&first, "b"));
/// # Ok::<(), devaddr::Error>(())
/// ```
pub fn replan(spec: &Spec, previous: &Plan) -> Result<Plan> {
    replan_with(spec, previous, false, Options::default()).map(|r| r.plan)
}

/// [`replan`] with options; `allow_moves` solves for the fewest moved devices instead of
/// failing when a device cannot stay.
pub fn replan_with(
    spec: &Spec,
    previous: &Plan,
    allow_moves: bool,
    opts: Options<'_>,
) -> Result<Replanned> {
    let cat = opts.catalog;
    validate(spec, cat)?;
    if machine_name(cat, &spec.machine)? != machine_name(cat, &previous.machine)? {
        return Err(Error::input(
            "machine",
            format!(
                "the previous plan is for machine `{}`, the spec asks for `{}`; a replan \
                 cannot change the machine type",
                previous.machine, spec.machine
            ),
        ));
    }
    verified(&previous.to_spec(), cat, "previous plan")?;
    let (merged, kept) = merge(spec, previous)?;
    let orphans = orphans(cat, &merged, &kept, previous);
    if !allow_moves {
        let first = orphans
            .devices
            .iter()
            .map(|(&i, why)| (merged.devices[i].id.clone(), kept[&i].to_string(), why))
            .chain(orphans.controllers.iter().map(|(&i, why)| {
                let c = &merged.controllers[i];
                let at = c.address.as_ref().map_or(String::new(), |a| a.to_string());
                (format!("controller {}", c.id), at, why)
            }))
            .next();
        if let Some((who, at, why)) = first {
            return Err(Error::from(crate::Explanation::new(
                crate::Binding::KeptAddress,
                format!("`{who}` cannot stay at {at}: {why}"),
                "pass --allow-moves to move it (the moves are listed), or keep the device \
                      that held function 0 of its slot",
            )));
        }
        return match crate::plan_with(&pinned_where_kept(&merged, &kept), opts) {
            Ok(plan) => Ok(Replanned {
                hints: hint_changes(previous, &plan),
                plan,
                moves: Vec::new(),
            }),
            Err(e) => Err(blame(&merged, &kept, e, opts)),
        };
    }
    // Fewest moves: none, when every device can stay (the strict replan succeeds). Asked
    // first: it is the cheaper program, and it settles the common case exactly even when
    // the fewest-moves program below could not prove its keep set.
    if orphans.devices.is_empty() && orphans.controllers.is_empty() {
        if let Ok(plan) = crate::plan_with(&pinned_where_kept(&merged, &kept), opts) {
            return Ok(Replanned {
                hints: hint_changes(previous, &plan),
                plan,
                moves: Vec::new(),
            });
        }
    }
    // Otherwise non-PCI addresses stay unless another pin takes them; PCI devices get a
    // keep binary each.
    let mut candidate = merged.clone();
    let mut ctx = Context::default();
    let mut reasons: BTreeMap<usize, String> = BTreeMap::new();
    let taken = pinned_elsewhere(&merged);
    let mut moved_ctls = Vec::new();
    for (&i, why) in &orphans.controllers {
        let c = &mut candidate.controllers[i];
        if let Some(from) = c.address.take() {
            moved_ctls.push((c.id.clone(), from, why.clone()));
        }
    }
    for (&i, a) in &kept {
        if let Some(why) = orphans.devices.get(&i) {
            reasons.insert(i, why.clone());
            continue;
        }
        match a {
            Address::Pci(p) => {
                ctx.previous.insert(i, *p);
            }
            other => {
                if taken.contains(&other.place()) {
                    reasons.insert(i, format!("a pinned device now sits at {other}"));
                } else {
                    candidate.devices[i].address = Some(other.clone());
                }
            }
        }
    }
    // A USB or drive address whose controller is gone (or whose port another device now
    // takes) cannot stay either: asked of the problem before anything is solved.
    let lenient = Context {
        ports_unchecked: true,
        ..ctx.clone()
    };
    let first = normalize::normalize_in(&candidate, cat, lenient)?;
    for (i, e) in normalize::ports::findings(&first, cat, &candidate) {
        if kept.contains_key(&i) {
            candidate.devices[i].address = None;
            if let Error::Input { message, .. } = e {
                reasons.insert(i, message);
            }
        }
    }
    // One program: the most devices kept first, then the plan's own objectives among
    // the assignments that keep that many (so the plan makes exactly the fewest moves).
    let movable: Vec<usize> = kept
        .iter()
        .filter(|(i, a)| matches!(a, Address::Pci(_)) && !reasons.contains_key(i))
        .map(|(&i, _)| i)
        .collect();
    let plan = crate::plan_in(&candidate, opts, ctx)?;
    // Why each device the program did not keep could not stay: asked of the spec's
    // rules for the first few moved devices, and of the solver (a whole plan) for the
    // first WHY_SOLVES of them only.
    let mut asked = 0;
    for i in movable {
        let stayed = plan.devices[i]
            .address
            .as_ref()
            .is_some_and(|a| a.place() == kept[&i].place());
        if stayed {
            continue;
        }
        asked += 1;
        let why = (asked <= BLAME_TRIALS)
            .then(|| why_not(&merged, &kept, i, opts, asked <= WHY_SOLVES))
            .flatten()
            .unwrap_or_else(|| "moving it lets the new devices fit".into());
        reasons.insert(i, why);
    }
    // A device or controller that ends where it was did not move (a multifunction flag may change).
    let same = |a: &Address, b: Option<&Address>| match (a, b) {
        (Address::Pci(x), Some(Address::Pci(y))) => {
            (x.domain, x.bus, x.slot, x.function) == (y.domain, y.bus, y.slot, y.function)
        }
        (x, Some(y)) => x == y,
        (_, None) => false,
    };
    let mut moves: Vec<Move> = moved_ctls
        .into_iter()
        .map(|(id, from, reason)| Move {
            to: plan
                .controllers
                .iter()
                .find(|c| c.id == id)
                .and_then(|c| c.address.clone()),
            id,
            from,
            reason,
        })
        .filter(|m| !same(&m.from, m.to.as_ref()))
        .collect();
    moves.extend(
        reasons
            .into_iter()
            .filter(|(i, _)| !same(&kept[i], plan.devices[*i].address.as_ref()))
            .map(|(i, reason)| Move {
                id: merged.devices[i].id.clone(),
                from: kept[&i].clone(),
                to: plan.devices[i].address.clone(),
                reason,
            }),
    );
    Ok(Replanned {
        hints: hint_changes(previous, &plan),
        plan,
        moves,
    })
}

/// What [`Replanned::hints`] says: the kept controllers of `previous` whose `io_reserve`
/// differs in `plan`.
fn hint_changes(previous: &Plan, plan: &Plan) -> Vec<String> {
    previous
        .controllers
        .iter()
        .filter_map(|b| {
            let c = plan.controllers.iter().find(|c| c.id == b.id)?;
            (c.io_reserve != b.io_reserve).then(|| match c.io_reserve {
                Some(0) => format!(
                    "kept controller `{}` ({}) gives the UEFI firmware's I/O padding up \
                     (io_reserve: 0, from the next boot): the new devices' I/O windows \
                     and the padded ports would pass the firmware's I/O budget, and the \
                     new ports giving theirs up were not enough",
                    c.id, c.model
                ),
                other => format!(
                    "kept controller `{}` ({}) changes its I/O reserve to {} (from the \
                     next boot)",
                    c.id,
                    c.model,
                    other.map_or("the firmware's default".into(), |b| format!("{b} bytes"))
                ),
            })
        })
        .collect()
}

/// `merged` with every device of `kept` pinned at its previous address.
fn pinned_where_kept(merged: &Spec, kept: &BTreeMap<usize, Address>) -> Spec {
    let mut pinned = merged.clone();
    for (&i, a) in kept {
        pinned.devices[i].address = Some(a.clone());
    }
    pinned
}

/// The spec with the previous plan's controllers, and the previous address of every
/// device present in both (by spec position).
fn merge(spec: &Spec, previous: &Plan) -> Result<(Spec, BTreeMap<usize, Address>)> {
    let mut merged = spec.clone();
    merged.devaddr = None;
    merged.free = None;
    let mut controllers = previous.controllers.clone();
    for (i, c) in spec.controllers.iter().enumerate() {
        match controllers.iter().find(|p| p.id == c.id) {
            Some(p) if p.model == c.model && p.index == c.index => {}
            Some(p) => {
                return Err(Error::input(
                    format!("controllers[{i}]"),
                    format!(
                        "controller `{}` is {} index {} in the previous plan; found {} index {}",
                        c.id, p.model, p.index, c.model, c.index
                    ),
                ))
            }
            None => controllers.push(c.clone()),
        }
    }
    merged.controllers = controllers;
    let before: BTreeMap<&str, &crate::spec::DeviceEntry> = previous
        .devices
        .iter()
        .map(|d| (d.id.as_str(), d))
        .collect();
    let mut kept = BTreeMap::new();
    for (i, d) in spec.devices.iter().enumerate() {
        if d.address.is_some() {
            continue;
        }
        if let Some(p) = before.get(d.id.as_str()) {
            if p.kind == d.kind {
                if let Some(a) = &p.address {
                    kept.insert(i, a.clone());
                }
            }
        }
    }
    Ok((merged, kept))
}

/// Kept devices and controllers whose slot loses function 0 (its holder was removed): a
/// slot without function 0 is invisible to the guest, so they cannot stay.
fn orphans(
    cat: &crate::Catalog,
    merged: &Spec,
    kept: &BTreeMap<usize, Address>,
    previous: &Plan,
) -> Orphans {
    let pci = |a: Option<&Address>| match a {
        Some(Address::Pci(p)) => Some(*p),
        _ => None,
    };
    use crate::topology::PciAddress;
    let mut has_fn0: BTreeSet<(u32, u8)> = BTreeSet::new();
    if let Some(m) = cat.machine(&merged.machine) {
        for b in m
            .builtin
            .iter()
            .filter(|b| b.functions.iter().any(|f| *f == 0))
        {
            has_fn0.insert((0, b.slot.get()));
        }
    }
    let holders = merged
        .controllers
        .iter()
        .map(|c| pci(c.address.as_ref()))
        .chain(merged.devices.iter().map(|d| pci(d.address.as_ref())))
        .chain(kept.values().map(|a| pci(Some(a))));
    for a in holders.flatten() {
        if a.function == 0 {
            has_fn0.insert((a.bus, a.slot));
        }
    }
    let why = |p: PciAddress| {
        let gone = previous
            .devices
            .iter()
            .find(|d| {
                pci(d.address.as_ref())
                    .is_some_and(|q| q.bus == p.bus && q.slot == p.slot && q.function == 0)
            })
            .map_or("the device".to_string(), |d| format!("`{}`", d.id));
        format!(
            "{gone}, function 0 of its slot, is gone, and a slot without function 0 is \
             invisible to the guest"
        )
    };
    let orphaned = |p: &PciAddress| p.function != 0 && !has_fn0.contains(&(p.bus, p.slot));
    let mut out = Orphans::default();
    for (&i, a) in kept {
        if let Some(p) = pci(Some(a)).filter(orphaned) {
            out.devices.insert(i, why(p));
        }
    }
    for (i, c) in merged.controllers.iter().enumerate() {
        if let Some(p) = pci(c.address.as_ref()).filter(orphaned) {
            out.controllers.insert(i, why(p));
        }
    }
    out
}

/// What loses function 0 of its slot: devices (by spec position) and controllers (by
/// position in the merged controller list), with why.
#[derive(Default)]
struct Orphans {
    devices: BTreeMap<usize, String>,
    controllers: BTreeMap<usize, String>,
}

/// Addresses the spec itself pins (they win over previous addresses).
fn pinned_elsewhere(spec: &Spec) -> BTreeSet<Address> {
    spec.devices
        .iter()
        .filter_map(|d| d.address.as_ref().map(Address::place))
        .collect()
}

/// Devices whose release alone is tried when blaming a failed strict replan (and moved
/// devices whose own reason is asked for with `--allow-moves`): each is a whole plan.
const BLAME_TRIALS: usize = 16;

/// Turn the failure of a strict replan into "device X cannot stay at A: why".
fn blame(merged: &Spec, kept: &BTreeMap<usize, Address>, err: Error, opts: Options<'_>) -> Error {
    let cannot_stay = |i: usize, why: String| {
        let d = &merged.devices[i];
        Error::from(
            crate::Explanation::new(
                crate::Binding::KeptAddress,
                format!("device `{}` cannot stay at {}: {why}", d.id, kept[&i]),
                format!(
                    "pass --allow-moves to move it (the moves are listed), undo the change that \
                 conflicts with `{}`, or remove it",
                    d.id
                ),
            )
            .devices([d.id.clone()]),
        )
    };
    // The error names a kept device: that one.
    if let Error::Input {
        location, message, ..
    } = &err
    {
        if let Some(i) = location.device.filter(|i| kept.contains_key(i)) {
            return cannot_stay(i, message.clone());
        }
    }
    // Otherwise the first device (or multifunction group) whose release alone makes the
    // plan feasible.
    let pins_without = |skip: Option<&str>, i: usize| {
        let mut trial = merged.clone();
        for (&j, a) in kept {
            let mate = skip.is_some() && merged.devices[j].group.as_deref() == skip;
            if j != i && !mate {
                trial.devices[j].address = Some(a.clone());
            }
        }
        trial
    };
    // Bounded: each trial is a whole plan, so only the first few kept devices are tried.
    for &i in kept.keys().take(BLAME_TRIALS) {
        let group = merged.devices[i].group.as_deref();
        if crate::plan_with(&pins_without(group, i), opts).is_ok() {
            return cannot_stay(i, reason_text(&err));
        }
    }
    Error::from(crate::Explanation::new(
        crate::Binding::KeptAddress,
        format!(
            "the edited guest does not fit around the addresses it keeps: {}",
            reason_text(&err)
        ),
        "pass --allow-moves to move the fewest devices needed, or add fewer devices",
    ))
}

/// Why device `i` could not keep its previous address on its own (None: it could, or
/// nothing was found). The spec with it pinned there is normalized (the rules a pin
/// breaks: function 0, groups, a taken slot); with `solve`, also planned.
fn why_not(
    merged: &Spec,
    kept: &BTreeMap<usize, Address>,
    i: usize,
    opts: Options<'_>,
    solve: bool,
) -> Option<String> {
    let mut trial = merged.clone();
    trial.devices[i].address = Some(kept[&i].clone());
    if !solve {
        return match normalize::normalize_in(&trial, opts.catalog, Context::default()) {
            Err(e @ Error::Input { .. }) => Some(reason_text(&e)),
            _ => None,
        };
    }
    // A reason is worth a share of the budget, not a whole plan's: an undecided search
    // gives the generic reason instead.
    let small = opts.with_work_limit(crate::WorkLimit((opts.work_limit.0 / WHY_SHARE).max(1)));
    match crate::plan_with(&trial, small) {
        Ok(_) => None,
        Err(Error::Infeasible { explanation })
            if matches!(
                explanation.binding,
                crate::Binding::WorkLimit | crate::Binding::Undecided
            ) =>
        {
            None
        }
        Err(e) => Some(reason_text(&e)),
    }
}

/// Moved devices whose "why" is also asked of the solver (each a whole plan, at a share
/// of the work limit that still costs some hundred relaxations on a large guest); the
/// others get the reasons the spec's rules give.
const WHY_SOLVES: usize = 2;

/// Share (1/n) of the work limit the plan behind one "why" of a move gets.
const WHY_SHARE: u64 = 8;

fn reason_text(e: &Error) -> String {
    match e {
        Error::Input { message, .. } => message.clone(),
        Error::Several { errors } => {
            let all: Vec<String> = errors.iter().map(reason_text).collect();
            all.join("; ")
        }
        Error::Infeasible { explanation } => explanation.requirement.clone(),
        Error::Check { findings } => {
            let findings: Vec<String> = findings.iter().map(ToString::to_string).collect();
            findings.join("; ")
        }
    }
}
