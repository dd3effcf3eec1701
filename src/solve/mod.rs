//! formulate → solve → decode, and the explanation of infeasible requests.

pub mod backend;
pub(crate) mod decode;
mod explain;
pub(crate) mod formulate;
pub mod origin;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::explanation::Binding;
use crate::normalize::Problem;
use backend::{Backend, Ilp, Outcome, Status, WorkLimit};
use decode::Placement;
use formulate::{formulate, Relax};

/// The solver and its budget, as the stages pass them on.
#[derive(Clone, Copy)]
pub(crate) struct Solver<'a> {
    pub backend: &'a dyn Backend,
    pub limit: WorkLimit,
}

pub(crate) fn solve_with(p: &Problem, cat: &Catalog, s: Solver<'_>) -> Result<Placement> {
    let f = formulate(p, cat, Relax::default());
    match lexicographic(s, &f.ilp, &f.objectives)? {
        Some((values, status)) => {
            let mut placement = decode::decode(p, cat, &f, &values);
            placement.status = status;
            Ok(placement)
        }
        None => Err(explain::explain(p, cat, s).into()),
    }
}

/// Which units with a previous slot keep it: the program with the objective "fewest
/// moves" (every other requirement still holds). Returns the kept units.
pub(crate) fn keep_set(
    p: &Problem,
    cat: &Catalog,
    s: Solver<'_>,
) -> Result<std::collections::BTreeSet<usize>> {
    let f = formulate(p, cat, Relax::default());
    let most_kept: Vec<(usize, f64)> = f.keep.values().map(|&v| (v, -1.0)).collect();
    match lexicographic(s, &f.ilp, &[most_kept])? {
        Some((values, _)) => Ok(f
            .keep
            .iter()
            .filter(|(_, &v)| values[v] > 0)
            .map(|(&u, _)| u)
            .collect()),
        None => Err(explain::explain(p, cat, s).into()),
    }
}

/// How many more units of the problem's capacity question fit: the program with the
/// objective "as many as possible".
pub(crate) fn max_extra(p: &Problem, cat: &Catalog, s: Solver<'_>) -> Result<u32> {
    let f = formulate(p, cat, Relax::default());
    let Some(m) = f.extra else { return Ok(0) };
    match lexicographic(s, &f.ilp, &[vec![(m, -1.0)]])? {
        Some((values, _)) => Ok(values[m].max(0) as u32),
        None => Err(explain::explain(p, cat, s).into()),
    }
}

/// Minimise the objectives one after another, each within the optimum of the ones
/// before it. `None` = infeasible (proven). The status is the first phase that stopped
/// at its work limit, with its gap; later phases keep what it found.
fn lexicographic(
    s: Solver<'_>,
    ilp: &Ilp,
    objectives: &[Vec<(usize, f64)>],
) -> Result<Option<(Vec<i64>, Status)>> {
    let mut program = ilp.clone();
    let mut best: Option<(Vec<i64>, Status)> = None;
    for (phase, objective) in objectives.iter().enumerate() {
        program.objective = objective.clone();
        let start = best.as_ref().map(|b| b.0.as_slice());
        let (values, status) = match s.backend.solve(&program, s.limit, start) {
            Ok(Outcome::Solved { values, status }) => (values, status),
            Ok(Outcome::Infeasible) if phase == 0 => return Ok(None),
            Ok(Outcome::LimitReached) if phase == 0 => return Err(limit_reached(s.limit)),
            // A later phase always has the earlier phase's assignment: keep it.
            Ok(_) => break,
            Err(e) => {
                return Err(Error::infeasible(
                    Binding::Solver,
                    format!("the solver failed: {e}"),
                    "report this spec as a bug",
                ))
            }
        };
        // What this phase counted is settled first when searching the next phases.
        for &(v, _) in objective {
            program.vars[v].branch_first = true;
        }
        let reached = Ilp::value(objective, &values);
        program.row(
            origin::RowOrigin::ObjectiveKept { phase },
            objective.clone(),
            f64::NEG_INFINITY,
            reached + 1e-6 * reached.abs().max(1.0),
        );
        let status = match best.as_ref().map(|b| b.1) {
            Some(earlier @ Status::Feasible { .. }) => earlier,
            _ => status,
        };
        best = Some((values, status));
    }
    Ok(best)
}

fn limit_reached(limit: WorkLimit) -> Error {
    Error::infeasible(
        Binding::WorkLimit,
        format!(
            "the search reached its work limit ({}) before it found a plan or proved \
             that none exists",
            limit.0
        ),
        format!(
            "raise the limit with --work-limit (e.g. --work-limit {}), or simplify the \
             spec (fewer NUMA nodes or a smaller hotplug reserve)",
            limit.0.saturating_mul(10)
        ),
    )
}
