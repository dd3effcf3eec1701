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

/// Solve the problem's program and decode the assignment. A replan that may move devices
/// (units with a previous slot, `keep` binaries) first keeps as many of them as possible
/// — the fewest moves — and then minimises the plan's own objectives with that keep set
/// fixed, starting from the assignment that found it.
pub(crate) fn solve_with(p: &Problem, cat: &Catalog, s: Solver<'_>) -> Result<Placement> {
    let f = formulate(p, cat, Relax::default());
    let solved = match fewest_moves(s, &f)? {
        Some((program, start)) => lexicographic(s, &program, &f.objectives, Some(start))?,
        None if f.keep.is_empty() => lexicographic(s, &f.ilp, &f.objectives, None)?,
        None => None,
    };
    match solved {
        Some((values, status)) => {
            let mut placement = decode::decode(p, cat, &f, &values);
            placement.status = status;
            Ok(placement)
        }
        None => Err(explain::explain(p, cat, s).into()),
    }
}

/// The most units kept at their previous slot: the program with that keep set fixed,
/// and the assignment (with its status) that keeps them. `None`: no `keep` binaries, or
/// the program is infeasible.
fn fewest_moves(s: Solver<'_>, f: &formulate::Formulation) -> Result<Option<(Ilp, Found)>> {
    if f.keep.is_empty() {
        return Ok(None);
    }
    let most_kept: Vec<(usize, f64)> = f.keep.values().map(|&v| (v, -1.0)).collect();
    let Some((values, status)) = lexicographic(s, &f.ilp, &[most_kept], None)? else {
        return Ok(None);
    };
    let mut program = f.ilp.clone();
    for &k in f.keep.values() {
        program.vars[k].lo = values[k] as f64;
        program.vars[k].hi = values[k] as f64;
    }
    Ok(Some((program, (values, status))))
}

/// An assignment of every variable, and how far the search that found it went.
type Found = (Vec<i64>, Status);

/// How many more units of the problem's capacity question fit: the program with the
/// objective "as many as possible".
pub(crate) fn max_extra(p: &Problem, cat: &Catalog, s: Solver<'_>) -> Result<u32> {
    let f = formulate(p, cat, Relax::default());
    let Some(m) = f.extra else { return Ok(0) };
    match lexicographic(s, &f.ilp, &[vec![(m, -1.0)]], None)? {
        Some((values, _)) => Ok(values[m].max(0) as u32),
        None => Err(explain::explain(p, cat, s).into()),
    }
}

/// Minimise the objectives one after another, each within the optimum of the ones
/// before it, from the assignment `start` when one is known (it satisfies every row).
/// `None` = infeasible (proven). The status is the first phase (or the start's search)
/// that stopped at its work limit, with its gap; later phases keep what it found.
/// Each phase has the work limit, plus what the phase before left of its own (at most one
/// limit more): a first objective proven quickly leaves its search to the next, and the
/// whole solve stays within a limit per phase, deterministically.
fn lexicographic(
    s: Solver<'_>,
    ilp: &Ilp,
    objectives: &[Vec<(usize, f64)>],
    start: Option<Found>,
) -> Result<Option<Found>> {
    let mut program = ilp.clone();
    let mut best: Option<Found> = start;
    // What a phase leaves of its budget goes to the next one (at most one budget more).
    let mut carried = WorkLimit(0);
    for (phase, objective) in objectives.iter().enumerate() {
        program.objective = objective.clone();
        let start = best.as_ref().map(|b| b.0.as_slice());
        let limit = WorkLimit(s.limit.0.saturating_add(carried.0.min(s.limit.0)));
        let solved = s.backend.solve_budgeted(&program, limit, start);
        if let Ok((_, left)) = &solved {
            carried = *left;
        }
        let (values, status) = match solved.map(|(outcome, _)| outcome) {
            Ok(Outcome::Solved { values, status }) => (values, status),
            Ok(Outcome::Infeasible) if best.is_none() => return Ok(None),
            Ok(Outcome::LimitReached) if best.is_none() => return Err(limit_reached(s.limit)),
            // A later phase (or one with a start) always has an assignment: keep it.
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
