//! The placement constraints as the spec states them: `placement: root` on a device, and
//! the top-level `apart:` and `together:` sets of device ids. Reading them is input
//! interpretation shared by the planner and the independent verifier, so it lives with
//! the spec and depends on nothing of the planner.
//!
//! `together` is transitive (two sets that share a device sit below the outer of their
//! two switches, so below one), and so is a multifunction group (its devices share a
//! slot): sets are merged into components over both.

use super::{Placement, Spec};
use crate::error::{Error, Result};
use crate::explanation::Binding;
use std::collections::BTreeMap;

/// The constraints of a spec, by device position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Constraints {
    /// Devices with `placement: root`.
    pub root: Vec<usize>,
    /// Each `apart:` set, its devices in the order written.
    pub apart: Vec<Vec<usize>>,
    /// The `together:` components (sets merged over shared devices and groups), each
    /// sorted; a device belongs to at most one.
    pub together: Vec<Vec<usize>>,
}

impl Constraints {
    /// The together component of device `d`.
    pub fn together_of(&self, d: usize) -> Option<usize> {
        self.together.iter().position(|c| c.contains(&d))
    }

    /// The apart sets device `d` is in.
    pub fn apart_of(&self, d: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.apart.len()).filter(move |&s| self.apart[s].contains(&d))
    }
}

/// Read the constraints: unknown or repeated ids and sets of fewer than two devices are
/// bad input (exit 2); requirements that contradict each other are infeasible (exit 1,
/// naming both).
pub(crate) fn resolve(spec: &Spec) -> Result<Constraints> {
    let c = read(spec)?;
    contradictions(spec, &c)?;
    Ok(c)
}

/// [`resolve`] without the contradictions (the verifier's reading: what a plan says).
pub(crate) fn read(spec: &Spec) -> Result<Constraints> {
    // Device positions by id, only when a set names devices.
    let by_id = if spec.apart.is_empty() && spec.together.is_empty() {
        BTreeMap::new()
    } else {
        spec.positions()
    };
    let apart = sets(&spec.apart, "apart", &by_id)?;
    let given = sets(&spec.together, "together", &by_id)?;
    let root: Vec<usize> = (0..spec.devices.len())
        .filter(|&i| spec.devices[i].placement == Some(Placement::Root))
        .collect();
    let together = components(spec, &given);
    Ok(Constraints {
        root,
        apart,
        together,
    })
}

/// The sets of one list (`apart` or `together`), as device positions.
fn sets(
    lists: &[Vec<String>],
    name: &str,
    by_id: &BTreeMap<&str, usize>,
) -> Result<Vec<Vec<usize>>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (s, ids) in lists.iter().enumerate() {
        if ids.len() < 2 {
            errors.push(Error::input(
                format!("{name}[{s}]"),
                format!(
                    "a set of {} device{}; expected at least two device ids",
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" }
                ),
            ));
            continue;
        }
        let mut set = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            match by_id.get(id.as_str()) {
                None => errors.push(Error::input(
                    format!("{name}[{s}][{k}]"),
                    format!("`{id}` is not the id of a device"),
                )),
                Some(i) if set.contains(i) => errors.push(
                    Error::input(
                        format!("{name}[{s}][{k}]"),
                        format!("`{id}` is listed twice in the set"),
                    )
                    .with_code(crate::Code::Duplicate),
                ),
                Some(&i) => set.push(i),
            }
        }
        out.push(set);
    }
    Error::collect(errors)?;
    Ok(out)
}

/// Merge the together sets over shared devices and over multifunction groups.
fn components(spec: &Spec, sets: &[Vec<usize>]) -> Vec<Vec<usize>> {
    // A component holds a device of a set: without sets there is none.
    if sets.is_empty() {
        return Vec::new();
    }
    let n = spec.devices.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let union = |parent: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    };
    for set in sets {
        for w in set.windows(2) {
            union(&mut parent, w[0], w[1]);
        }
    }
    let mut groups: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, d) in spec.devices.iter().enumerate() {
        if let Some(g) = &d.group {
            match groups.get(g.as_str()) {
                Some(&first) => union(&mut parent, first, i),
                None => {
                    groups.insert(g, i);
                }
            }
        }
    }
    let in_sets: Vec<usize> = sets.iter().flatten().copied().collect();
    let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        let member = in_sets.iter().any(|&j| find(&mut parent, j) == r);
        if member {
            by_root.entry(r).or_default().push(i);
        }
    }
    by_root.into_values().collect()
}

/// Where a device's membership of a constraint is written, for messages.
fn path_of(spec: &Spec, list: &[Vec<String>], name: &str, id: &str) -> String {
    list.iter()
        .enumerate()
        .find_map(|(s, ids)| {
            ids.iter()
                .position(|x| x == id)
                .map(|k| format!("{name}[{s}][{k}]"))
        })
        .unwrap_or_else(|| {
            // Only through a multifunction group.
            let g = spec
                .devices
                .iter()
                .position(|d| d.id == id)
                .map_or(String::new(), |i| format!("devices[{i}].group"));
            format!("{name} (through {g})")
        })
}

fn contradiction(requirement: String, fix: &str, ids: &[&str]) -> Error {
    crate::explanation::Explanation::new(Binding::Contradiction, requirement, fix)
        .devices(ids.iter().map(|s| s.to_string()))
        .into()
}

/// Requirements that no topology can meet together.
fn contradictions(spec: &Spec, c: &Constraints) -> Result<()> {
    let dev = |i: usize| &spec.devices[i];
    for &i in &c.root {
        let d = dev(i);
        if let Some(n) = d.numa_node {
            return Err(contradiction(
                format!(
                    "device `{}`: devices[{i}].placement: root puts it on the root bus, but \
                     devices[{i}].numa_node: {n} puts it below NUMA node {n}'s expander bus",
                    d.id
                ),
                "drop one of placement: root and numa_node",
                &[&d.id],
            ));
        }
        if let Some(k) = c.together_of(i) {
            let other = c.together[k]
                .iter()
                .find(|&&j| j != i)
                .copied()
                .unwrap_or(i);
            return Err(contradiction(
                format!(
                    "device `{}`: devices[{i}].placement: root puts it on the root bus, but {} \
                     puts it below a switch or bridge it shares with `{}`",
                    d.id,
                    path_of(spec, &spec.together, "together", &d.id),
                    dev(other).id
                ),
                "drop placement: root or take the device out of the together set",
                &[&d.id, &dev(other).id],
            ));
        }
    }
    for (s, set) in c.apart.iter().enumerate() {
        for (k, &a) in set.iter().enumerate() {
            for &b in &set[k + 1..] {
                let (da, db) = (dev(a), dev(b));
                if da.group.is_some() && da.group == db.group {
                    return Err(contradiction(
                        format!(
                            "apart[{s}] keeps `{}` and `{}` apart, but devices[{a}].group and \
                             devices[{b}].group (`{}`) make them functions of one slot",
                            da.id,
                            db.id,
                            da.group.as_deref().unwrap_or_default()
                        ),
                        "take one of them out of the group or out of the apart set",
                        &[&da.id, &db.id],
                    ));
                }
                if c.together_of(a).is_some() && c.together_of(a) == c.together_of(b) {
                    return Err(contradiction(
                        format!(
                            "apart[{s}] keeps `{}` and `{}` apart, but {} and {} put them \
                             below one switch or bridge",
                            da.id,
                            db.id,
                            path_of(spec, &spec.together, "together", &da.id),
                            path_of(spec, &spec.together, "together", &db.id)
                        ),
                        "take one of them out of the apart set or out of the together set",
                        &[&da.id, &db.id],
                    ));
                }
            }
        }
    }
    for comp in &c.together {
        let first = comp[0];
        if let Some(&other) = comp
            .iter()
            .find(|&&j| dev(j).numa_node != dev(first).numa_node)
        {
            let node = |i: usize| {
                dev(i)
                    .numa_node
                    .map_or("no NUMA node".to_string(), |n| format!("NUMA node {n}"))
            };
            return Err(contradiction(
                format!(
                    "{} puts `{}` ({}) and `{}` ({}) below one switch or expander, but their \
                     numa_node differs",
                    path_of(spec, &spec.together, "together", &dev(other).id),
                    dev(first).id,
                    node(first),
                    dev(other).id,
                    node(other)
                ),
                "give the devices of a together set the same numa_node (or none)",
                &[&dev(first).id, &dev(other).id],
            ));
        }
    }
    Ok(())
}
