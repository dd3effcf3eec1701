//! A solver-neutral integer program and the backend trait that solves it. The default
//! backend is microlp (pure Rust): good_lp builds the model and microlp's own solve
//! options bound the search.
//!
//! The search is bounded by a deterministic *work limit* (branch-and-bound nodes, scaled
//! by the size of the program), never by the clock: the same program gets the same
//! answer on every machine. When the limit is reached the best assignment found is
//! returned as [`Status::Feasible`] with its gap.

use super::origin::{RowOrigin, VarOrigin};
use good_lp::{
    constraint, solvers::microlp::microlp, variable, Expression, ProblemVariables, SolverModel,
    Variable,
};

/// An integer variable with bounds.
#[derive(Debug, Clone)]
pub struct Var {
    /// What the variable counts (for debugging and explanations).
    pub origin: VarOrigin,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound (`f64::INFINITY` for none).
    pub hi: f64,
    /// Decided before the others when searching (e.g. what an earlier objective counted).
    pub branch_first: bool,
}

/// `lo <= Σ coef·x <= hi`.
#[derive(Debug, Clone)]
pub struct Row {
    /// Where the row comes from (the requirement it states).
    pub origin: RowOrigin,
    /// `(variable index, coefficient)` pairs.
    pub terms: Vec<(usize, f64)>,
    /// Lower bound (`f64::NEG_INFINITY` for none).
    pub lo: f64,
    /// Upper bound (`f64::INFINITY` for none).
    pub hi: f64,
}

/// A pure integer minimisation program.
#[derive(Debug, Clone, Default)]
pub struct Ilp {
    /// The variables, all integer.
    pub vars: Vec<Var>,
    /// The constraints.
    pub rows: Vec<Row>,
    /// The objective to minimise.
    pub objective: Vec<(usize, f64)>,
}

impl Ilp {
    /// Add an integer variable in `lo..=hi`; returns its index.
    pub fn var(&mut self, origin: impl Into<VarOrigin>, lo: f64, hi: f64) -> usize {
        self.vars.push(Var {
            origin: origin.into(),
            lo,
            hi,
            branch_first: false,
        });
        self.vars.len() - 1
    }
    /// Add the row `lo <= Σ terms <= hi`.
    pub fn row(
        &mut self,
        origin: impl Into<RowOrigin>,
        terms: Vec<(usize, f64)>,
        lo: f64,
        hi: f64,
    ) {
        self.rows.push(Row {
            origin: origin.into(),
            terms,
            lo,
            hi,
        });
    }
    /// The size the work limit is measured against: variables plus rows.
    pub fn size(&self) -> u64 {
        (self.vars.len() + self.rows.len()).max(1) as u64
    }
    /// The value of `terms` at `values`.
    pub fn value(terms: &[(usize, f64)], values: &[i64]) -> f64 {
        terms.iter().map(|&(v, c)| c * values[v] as f64).sum()
    }
}

/// How far the search went.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Status {
    /// Optimality was proven.
    #[default]
    Optimal,
    /// A feasible assignment; the work limit stopped the proof. `gap` is the relative
    /// distance between its objective and the best proven bound.
    Feasible {
        /// `(objective - bound) / max(|objective|, 1)`.
        gap: f64,
    },
}

/// Outcome of a solve.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// An assignment of every variable, and whether it is proven optimal.
    Solved {
        /// One value per variable.
        values: Vec<i64>,
        /// Optimal, or feasible with a gap.
        status: Status,
    },
    /// No assignment satisfies the rows (proven).
    Infeasible,
    /// The work limit was reached before any assignment was found (nothing proven).
    LimitReached,
}

/// A budget of branch-and-bound work. One unit is one node of a program with one
/// variable or row. A node of a program of size `s` (variables plus rows) costs `s`
/// units up to [`WorkLimit::LINEAR_UP_TO`], and `s · s / LINEAR_UP_TO` beyond it: a
/// relaxation grows in both its rows and its columns, so the budget means about the
/// same time whatever the program's size, and is the same on every machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkLimit(pub u64);

impl WorkLimit {
    /// The default budget: a few hundred milliseconds of search at most on a 2-core
    /// machine for the largest programs devaddr builds.
    pub const DEFAULT: WorkLimit = WorkLimit(500_000);

    /// Nodes of a program of `size` this budget pays for (at least a few, so that a
    /// program always gets a search).
    pub fn nodes(self, size: u64) -> u64 {
        (self.0 / Self::node_cost(size)).max(MIN_NODES)
    }

    /// What one node of a program of `size` costs.
    fn node_cost(size: u64) -> u64 {
        let size = size.max(1);
        (size.saturating_mul(size.max(Self::LINEAR_UP_TO)) / Self::LINEAR_UP_TO).max(1)
    }

    /// The part of this budget that `nodes` unused nodes of a program of `size` are
    /// worth (never more than the budget).
    fn rest(self, size: u64, nodes: u64) -> WorkLimit {
        WorkLimit(nodes.saturating_mul(Self::node_cost(size)).min(self.0))
    }

    /// Program size up to which a node costs its size (see the type's documentation).
    pub const LINEAR_UP_TO: u64 = 400;
}

impl Default for WorkLimit {
    fn default() -> Self {
        WorkLimit::DEFAULT
    }
}

/// Every search gets at least this many nodes, whatever the budget.
const MIN_NODES: u64 = 16;

/// A MIP solver.
pub trait Backend: Sync {
    /// Minimise `ilp.objective` within `limit`. `start`, when given, is an assignment
    /// known to satisfy every row (e.g. the optimum of an earlier objective): the search
    /// starts from it and returns nothing worse.
    fn solve(&self, ilp: &Ilp, limit: WorkLimit, start: Option<&[i64]>) -> Result<Outcome, String>;

    /// [`Self::solve`], and the part of `limit` the search did not use. A program solved
    /// in phases (one objective after another) passes what one phase left to the next:
    /// the whole solve stays within its phases' budgets, deterministically. A backend
    /// that does not count its work leaves nothing.
    fn solve_budgeted(
        &self,
        ilp: &Ilp,
        limit: WorkLimit,
        start: Option<&[i64]>,
    ) -> Result<(Outcome, WorkLimit), String> {
        self.solve(ilp, limit, start)
            .map(|outcome| (outcome, WorkLimit(0)))
    }
}

/// microlp, with the model built by good_lp.
#[derive(Debug, Clone, Copy, Default)]
pub struct MicroLp;

/// An objective whose coefficients are integers (all variables are) takes integer
/// values; `step` is their greatest common divisor, so a better assignment is better by
/// at least `step` and a node whose bound is within `step` of the incumbent holds none.
fn objective_step(objective: &[(usize, f64)]) -> Option<u64> {
    let mut g = 0u64;
    for &(_, c) in objective {
        if c == 0.0 {
            continue;
        }
        if c.fract() != 0.0 || c.abs() > 1e12 {
            return None;
        }
        g = gcd(g, c.abs() as u64);
    }
    (g > 0).then_some(g)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One microlp run: the assignment found (and whether proven optimal), a proof of
/// infeasibility, and the best proven bound.
struct Run {
    found: Option<(Vec<i64>, bool)>,
    infeasible: bool,
    bound: Option<f64>,
    /// Nodes the search solved (all it was given when microlp does not say).
    nodes: u64,
}

/// The program as a good_lp model: integer variables, or their LP relaxation with the
/// bounds of the dive's `branches` applied.
fn model(
    ilp: &Ilp,
    integer: bool,
    branches: &[Branch],
    cutoff: Option<f64>,
) -> good_lp::solvers::microlp::MicroLpProblem {
    let mut pv = ProblemVariables::new();
    let vs: Vec<Variable> = ilp
        .vars
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (lo, hi) = branches
                .iter()
                .filter(|b| b.0 == i)
                .fold((v.lo, v.hi), |(lo, hi), b| (lo.max(b.1), hi.min(b.2)));
            let def = variable().min(lo).max(hi);
            pv.add(if integer { def.integer() } else { def })
        })
        .collect();
    // Each term added in place: the same map (capacity, insertion order, sums) summing
    // one-term expressions builds, without a map allocated per term.
    let lin = |terms: &[(usize, f64)]| -> Expression {
        let mut e = Expression::with_capacity(terms.len());
        for &(i, c) in terms {
            e.add_mul(c, vs[i]);
        }
        e
    };
    let mut model = pv.minimise(lin(&ilp.objective)).using(microlp);
    for r in &ilp.rows {
        let e = lin(&r.terms);
        if r.lo == r.hi {
            model = model.with(constraint!(e == r.lo));
            continue;
        }
        if r.lo.is_finite() {
            model = model.with(constraint!(e.clone() >= r.lo));
        }
        if r.hi.is_finite() {
            model = model.with(constraint!(e <= r.hi));
        }
    }
    if let Some(c) = cutoff {
        model = model.with(constraint!(lin(&ilp.objective) <= c));
    }
    model
}

/// How a dive through LP relaxations ended. The dive is a depth-first branch and bound
/// of its own: it solves the relaxation, branches on the first fractional variable (those
/// the objective counts first), trying its value rounded up first — more controllers,
/// slots or windows keep a placement possible — and on a dead end takes back the latest
/// branch and tries the other side. Deterministic and bounded by a number of relaxations.
enum Dive {
    /// An assignment, and the relaxation's bound.
    Found(Vec<i64>, Option<f64>),
    /// The budget ran out first (the relaxation's bound).
    Stopped(Option<f64>),
    /// Every branch was searched: no integer assignment exists (below the cutoff).
    Exhausted,
}

/// A branch of the dive: a variable and the bounds it is narrowed to.
type Branch = (usize, f64, f64);

/// The other side of a branch, still to try: its bounds, and the relaxation it branched
/// from with the variable's handle there (absent deep in the path: solved afresh).
struct Untried {
    branch: Branch,
    parent: Option<(microlp::Solution, microlp::Variable)>,
}

/// How deep in the dive's path the relaxations are kept for warm starts, in every dive:
/// a first dive that backtracks (a replan's final plan: 38 times in 81 relaxations) paid
/// a solve from scratch for each, a dive that does not pays a copy per level (under 1%).
const WARM_DEPTH: usize = 64;

/// Dives below the incumbent at most this many times; within this many objective steps
/// of the bound each aims one step down, beyond it halfway to the bound.
const REDIVES: usize = 8;
const REDIVE_GAP: f64 = 4.0;

/// Each dive below the incumbent may use this share (1/n) of what is left of the budget.
const REDIVE_SHARE: u64 = 8;

/// At most this share (1/n) of a budget goes to the dive.
const DIVE_SHARE: u64 = 4;

/// The bound of the LP relaxation (`None` if it has none).
fn relaxation_bound(ilp: &Ilp) -> Option<f64> {
    let m = model(ilp, false, &[], None);
    match m.as_inner().solve_with(microlp::SolveOptions::default()) {
        Ok(microlp::SolveOutcome::Solution(s)) => Some(s.objective()),
        _ => None,
    }
}

/// Dives within `max_lps` relaxations, keeping the objective at most `cutoff`; returns
/// the result and the relaxations solved.
fn dive(ilp: &Ilp, max_lps: u64, cutoff: Option<f64>) -> (Dive, u64) {
    let (d, used) = dive_within(ilp, max_lps, cutoff);
    (d, used.min(max_lps))
}

/// A relaxation's outcome in the dive: solved, proven infeasible, or not decided
/// (a numerical failure: the dive then proves nothing by exhausting its tree).
enum Lp {
    Solved(microlp::Solution),
    Infeasible,
    Undecided,
}

fn lp(outcome: Result<microlp::SolveOutcome, microlp::Error>) -> Lp {
    match outcome {
        Ok(microlp::SolveOutcome::Solution(s)) => Lp::Solved(s),
        Err(microlp::Error::Infeasible) => Lp::Infeasible,
        _ => Lp::Undecided,
    }
}

fn dive_within(ilp: &Ilp, max_lps: u64, cutoff: Option<f64>) -> (Dive, u64) {
    let solve = |branches: &[Branch]| {
        lp(model(ilp, false, branches, cutoff)
            .as_inner()
            .solve_with(microlp::SolveOptions::default()))
    };
    let costed = costed(ilp);
    let first = solve(&[]);
    let root = match &first {
        Lp::Solved(s) => Some(s.objective()),
        Lp::Infeasible => return (Dive::Exhausted, 1),
        Lp::Undecided => return (Dive::Stopped(None), 1),
    };
    let mut path = Path::default();
    let mut current = first;
    let mut lps = 1;
    // Every dead end so far was a proven one: an exhausted tree is then a proof.
    let mut exact = true;
    while lps <= max_lps {
        let sol = match std::mem::replace(&mut current, Lp::Undecided) {
            Lp::Solved(sol) => sol,
            dead => {
                exact &= matches!(dead, Lp::Infeasible);
                let Some(next) = path.backtrack(solve) else {
                    let end = if exact {
                        Dive::Exhausted
                    } else {
                        Dive::Stopped(root)
                    };
                    return (end, lps);
                };
                lps += 1;
                current = next;
                continue;
            }
        };
        let values: Vec<(microlp::Variable, f64)> = sol.iter().collect();
        let Some((i, var, v)) = branching_variable(&values, &costed) else {
            let ints: Vec<i64> = values.iter().map(|&(_, v)| v.round() as i64).collect();
            if satisfies(ilp, &ints) {
                return (Dive::Found(ints, root), lps);
            }
            // Integral within tolerance but not exactly: a dead end that proves nothing.
            exact = false;
            continue;
        };
        lps += 1;
        current = path.branch(sol, i, var, v);
    }
    (Dive::Stopped(root), lps)
}

/// The variables the dive branches on first: what the objective counts, and what an
/// earlier objective counted.
fn costed(ilp: &Ilp) -> Vec<bool> {
    let mut costed: Vec<bool> = ilp.vars.iter().map(|v| v.branch_first).collect();
    for &(v, k) in &ilp.objective {
        costed[v] |= k > 0.0;
    }
    costed
}

/// The first fractional variable of a relaxation's `values`: controllers first (what
/// the objective counts); then the rest, lowest index first. `None`: all are integral.
fn branching_variable(
    values: &[(microlp::Variable, f64)],
    costed: &[bool],
) -> Option<(usize, microlp::Variable, f64)> {
    let frac = |&(_, &(_, v)): &(usize, &(microlp::Variable, f64))| (v - v.round()).abs() > 1e-6;
    values
        .iter()
        .enumerate()
        .filter(frac)
        .find(|(i, _)| costed[*i])
        .or_else(|| values.iter().enumerate().find(frac))
        .map(|(i, &(var, v))| (i, var, v))
}

/// The dive's path: branches taken, in order, each with the other side still to try
/// (and, near the top of the path, the relaxation it branched from, to warm-start that
/// side).
#[derive(Default)]
struct Path {
    taken: Vec<Branch>,
    other: Vec<Option<Untried>>,
}

impl Path {
    /// Branch on variable `i` (`var` in `sol`, at fractional value `v`): its value
    /// rounded up first. Returns the relaxation of that side.
    fn branch(&mut self, sol: microlp::Solution, i: usize, var: microlp::Variable, v: f64) -> Lp {
        let (up, down) = (
            (i, v.ceil(), f64::INFINITY),
            (i, f64::NEG_INFINITY, v.floor()),
        );
        // Keep the relaxation for the other side while the path is short (memory).
        let parent = (self.taken.len() < WARM_DEPTH).then(|| (sol.clone(), var));
        self.taken.push(up);
        self.other.push(Some(Untried {
            branch: down,
            parent,
        }));
        lp(sol.add_constraint([(var, 1.0)], microlp::ComparisonOp::Ge, v.ceil()))
    }

    /// Take back the latest branch whose other side is still to try, and return the
    /// relaxation of that side (`solve` solves one afresh from the path's branches).
    /// `None`: every branch was tried.
    fn backtrack(&mut self, solve: impl Fn(&[Branch]) -> Lp) -> Option<Lp> {
        loop {
            match self.other.pop()? {
                None => {
                    self.taken.pop();
                }
                Some(u) => {
                    let last = self.taken.len() - 1;
                    self.taken[last] = u.branch;
                    self.other.push(None);
                    return Some(match u.parent {
                        Some((parent, var)) => lp(parent.add_constraint(
                            [(var, 1.0)],
                            microlp::ComparisonOp::Le,
                            u.branch.2,
                        )),
                        None => solve(&self.taken),
                    });
                }
            }
        }
    }
}

/// Whether integer `values` satisfy every bound and row of `ilp`.
fn satisfies(ilp: &Ilp, values: &[i64]) -> bool {
    const TOL: f64 = 1e-6;
    ilp.vars
        .iter()
        .zip(values)
        .all(|(v, &x)| v.lo - TOL <= x as f64 && x as f64 <= v.hi + TOL)
        && ilp.rows.iter().all(|r| {
            let s = Ilp::value(&r.terms, values);
            r.lo - TOL <= s && s <= r.hi + TOL
        })
}

fn run_once(
    ilp: &Ilp,
    cutoff: Option<f64>,
    prune_epsilon: Option<f64>,
    nodes: u64,
) -> Result<Run, String> {
    let model = model(ilp, true, &[], cutoff);
    let mut opts = microlp::SolveOptions::default();
    opts.node_limit = Some(nodes);
    if let Some(eps) = prune_epsilon {
        opts.tolerances.prune_epsilon = eps;
    }
    let res = model.as_inner().solve_with(opts);
    match res {
        Ok(microlp::SolveOutcome::Solution(sol)) => {
            let stats = sol.stats();
            let values: Vec<i64> = sol.iter().map(|(_, v)| v.round() as i64).collect();
            if values.len() != ilp.vars.len() {
                return Err("the solver returned fewer values than variables".into());
            }
            Ok(Run {
                found: Some((values, sol.status() == microlp::SolutionStatus::Optimal)),
                infeasible: false,
                bound: stats.best_bound,
                nodes: stats.nodes_solved.min(nodes),
            })
        }
        Ok(microlp::SolveOutcome::Interrupted(i)) => Ok(Run {
            found: None,
            infeasible: false,
            bound: i.stats().best_bound,
            nodes,
        }),
        Err(microlp::Error::Infeasible) => Ok(Run {
            found: None,
            infeasible: true,
            bound: None,
            nodes,
        }),
        Err(e) => Err(e.to_string()),
    }
}

fn gap(objective: f64, bound: Option<f64>) -> f64 {
    match bound {
        Some(b) => ((objective - b).max(0.0) / objective.abs().max(1.0)).min(1.0),
        None => 1.0,
    }
}

impl Backend for MicroLp {
    fn solve(&self, ilp: &Ilp, limit: WorkLimit, start: Option<&[i64]>) -> Result<Outcome, String> {
        self.solve_budgeted(ilp, limit, start)
            .map(|(outcome, _)| outcome)
    }

    fn solve_budgeted(
        &self,
        ilp: &Ilp,
        limit: WorkLimit,
        start: Option<&[i64]>,
    ) -> Result<(Outcome, WorkLimit), String> {
        let mut budget = limit.nodes(ilp.size());
        let Some((start, root)) = starting_point(ilp, limit, start, &mut budget) else {
            return Ok((Outcome::Infeasible, limit.rest(ilp.size(), budget)));
        };
        let step = objective_step(&ilp.objective);
        let Some(values) = start else {
            let (outcome, used) = plain(ilp, budget)?;
            return Ok((outcome, limit.rest(ilp.size(), budget - used)));
        };
        // The proven lower bound: the relaxation's, raised by every dive that finds
        // nothing below a cutoff.
        let (values, root) = match step {
            Some(st) => redive(ilp, values, root, st as f64, &mut budget),
            None => (values, root),
        };
        let (outcome, used) = match step {
            None => plain_if_better(ilp, values, root, budget)?,
            Some(step) => better_by_a_step(ilp, values, root, step as f64, budget)?,
        };
        Ok((outcome, limit.rest(ilp.size(), budget - used)))
    }
}

/// Where the search starts: the assignment `given` (when it satisfies every row) or the
/// dive's, and the relaxation's bound. The dive may use a share of the `budget`, counted
/// at a node's linear cost (a dive's relaxations are warm-started one after another,
/// cheaper than a search's nodes); the search gets the rest. `None`: the dive proved the
/// program infeasible.
fn starting_point(
    ilp: &Ilp,
    limit: WorkLimit,
    given: Option<&[i64]>,
    budget: &mut u64,
) -> Option<(Option<Vec<i64>>, Option<f64>)> {
    let given = given.filter(|v| v.len() == ilp.vars.len() && satisfies(ilp, v));
    if let Some(v) = given {
        return Some((Some(v.to_vec()), relaxation_bound(ilp)));
    }
    let linear = (limit.0 / ilp.size().max(1)).max(MIN_NODES);
    let lps = (linear / DIVE_SHARE).max(MIN_NODES);
    let (d, used) = dive(ilp, lps, None);
    *budget = budget
        .saturating_sub(used * *budget / linear)
        .max(MIN_NODES);
    match d {
        Dive::Exhausted => None,
        Dive::Found(values, root) => Some((Some(values), root)),
        Dive::Stopped(root) => Some((None, root)),
    }
}

/// Dive again below the incumbent `values`: one step `st` below it when the gap to the
/// bound `root` is narrow (a dive with a cutoff proves or improves fastest there), halfway
/// to the bound when it is wide (each answer halves the gap: a better plan, or a higher
/// bound). Returns the best assignment and the bound, raised by every dive that found
/// nothing below its cutoff.
fn redive(
    ilp: &Ilp,
    mut values: Vec<i64>,
    mut root: Option<f64>,
    st: f64,
    budget: &mut u64,
) -> (Vec<i64>, Option<f64>) {
    for _ in 0..REDIVES {
        let inc = Ilp::value(&ilp.objective, &values);
        let Some(lo) = root else { break };
        let steps = (inc - lo) / st;
        if steps < 1.0 - 1e-6 * lo.abs().max(1.0) || *budget <= MIN_NODES {
            break;
        }
        let down = if steps <= REDIVE_GAP {
            1.0
        } else {
            (steps / 2.0).floor().max(1.0)
        };
        let cut = inc - down * st;
        let lps = (*budget / REDIVE_SHARE).max(MIN_NODES);
        let (d, used) = dive(ilp, lps, Some(cut + 1e-6));
        *budget = budget.saturating_sub(used).max(MIN_NODES);
        match d {
            Dive::Found(v, _) if Ilp::value(&ilp.objective, &v) < inc => values = v,
            // Nothing at or below the cutoff: the optimum is at least a step above.
            Dive::Exhausted => root = Some(lo.max(cut + st)),
            _ => break,
        }
    }
    (values, root)
}

/// No step to prune by: a plain search, kept only if it does at least as well as the
/// incumbent `values`.
fn plain_if_better(
    ilp: &Ilp,
    values: Vec<i64>,
    root: Option<f64>,
    budget: u64,
) -> Result<(Outcome, u64), String> {
    let incumbent = Ilp::value(&ilp.objective, &values);
    let (outcome, used) = plain(ilp, budget)?;
    let outcome = match outcome {
        Outcome::Solved { values: v, status } if Ilp::value(&ilp.objective, &v) <= incumbent => {
            Outcome::Solved { values: v, status }
        }
        _ => Outcome::Solved {
            status: Status::Feasible {
                gap: gap(incumbent, root),
            },
            values,
        },
    };
    Ok((outcome, used))
}

/// Search for an assignment better than the incumbent `values` by at least `step`,
/// pruning every node whose bound is within `step` of the best one found. Every
/// assignment of this search has an objective between the relaxation's bound and the
/// incumbent, so a relative epsilon scaled by the larger of the two never prunes more
/// than `step`.
fn better_by_a_step(
    ilp: &Ilp,
    values: Vec<i64>,
    root: Option<f64>,
    step: f64,
    budget: u64,
) -> Result<(Outcome, u64), String> {
    let incumbent = Ilp::value(&ilp.objective, &values);
    let optimal = |values| Outcome::Solved {
        values,
        status: Status::Optimal,
    };
    if root.is_some_and(|r| incumbent - step < r - 1e-6 * r.abs().max(1.0)) {
        // Anything better by a step would be below the relaxation's bound.
        return Ok((optimal(values), 0));
    }
    let lower = root.unwrap_or(incumbent);
    let scale = incumbent.abs().max(lower.abs()).max(1.0);
    let eps = (step * (1.0 - 1e-6)) / scale;
    let better = run_once(ilp, Some(incumbent - step), Some(eps), budget)?;
    if better.infeasible {
        // Nothing better by a whole step exists: the incumbent is optimal.
        return Ok((optimal(values), better.nodes));
    }
    let bound = match (root, better.bound) {
        (Some(a), Some(b)) => Some(a.max(b.min(incumbent))),
        (a, b) => a.or(b),
    };
    let outcome = match better.found {
        Some((v, true)) => optimal(v),
        Some((v, false)) => {
            let obj = Ilp::value(&ilp.objective, &v);
            Outcome::Solved {
                values: v,
                status: Status::Feasible {
                    gap: gap(obj, bound),
                },
            }
        }
        None => Outcome::Solved {
            values,
            status: Status::Feasible {
                gap: gap(incumbent, bound),
            },
        },
    };
    Ok((outcome, better.nodes))
}

/// Branch and bound from scratch within `nodes`; returns the outcome and the nodes used.
fn plain(ilp: &Ilp, nodes: u64) -> Result<(Outcome, u64), String> {
    let run = run_once(ilp, None, None, nodes)?;
    let outcome = match run.found {
        Some((values, true)) => Outcome::Solved {
            values,
            status: Status::Optimal,
        },
        Some((values, false)) => {
            let obj = Ilp::value(&ilp.objective, &values);
            Outcome::Solved {
                values,
                status: Status::Feasible {
                    gap: gap(obj, run.bound),
                },
            }
        }
        None if run.infeasible => Outcome::Infeasible,
        None => Outcome::LimitReached,
    };
    Ok((outcome, run.nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve(ilp: &Ilp) -> Outcome {
        MicroLp.solve(ilp, WorkLimit::DEFAULT, None).unwrap()
    }

    #[test]
    fn solves_a_tiny_program() {
        let mut ilp = Ilp::default();
        let a = ilp.var("a", 0.0, 10.0);
        let b = ilp.var("b", 0.0, 10.0);
        ilp.row("cover", vec![(a, 2.0), (b, 3.0)], 7.0, f64::INFINITY);
        ilp.objective = vec![(a, 1.0), (b, 1.0)];
        match solve(&ilp) {
            Outcome::Solved { values: v, status } => {
                assert_eq!(status, Status::Optimal);
                assert!(2 * v[a] + 3 * v[b] >= 7);
                assert_eq!(v[a] + v[b], 3);
            }
            o => panic!("feasible: {o:?}"),
        }
    }

    #[test]
    fn reports_infeasible() {
        let mut ilp = Ilp::default();
        let a = ilp.var("a", 0.0, 1.0);
        ilp.row("too much", vec![(a, 1.0)], 2.0, f64::INFINITY);
        assert_eq!(solve(&ilp), Outcome::Infeasible);
    }

    /// A knapsack-like cover whose LP bound is far from the integer optimum needs many
    /// nodes with the default tolerance; the step of an integral objective proves it.
    #[test]
    fn proves_optimality_of_an_integral_objective() {
        let mut ilp = Ilp::default();
        let xs: Vec<usize> = (0..24)
            .map(|i| ilp.var(format!("x{i}"), 0.0, 1.0))
            .collect();
        // Each pair of variables must cover 1.5 in total weight: odd halves everywhere.
        for w in xs.windows(2) {
            ilp.row("pair", vec![(w[0], 2.0), (w[1], 2.0)], 3.0, f64::INFINITY);
        }
        ilp.objective = xs.iter().map(|&x| (x, 1.0)).collect();
        match solve(&ilp) {
            Outcome::Solved { values, status } => {
                assert_eq!(status, Status::Optimal);
                assert_eq!(values.iter().sum::<i64>(), 24);
            }
            o => panic!("{o:?}"),
        }
    }

    /// The relaxation is feasible (a = b = 1.5) but no integer point is: the dive's
    /// exhausted tree is the proof, without microlp's search.
    #[test]
    fn an_exhausted_dive_proves_infeasibility() {
        let mut ilp = Ilp::default();
        let a = ilp.var("a", 0.0, 3.0);
        let b = ilp.var("b", 0.0, 3.0);
        ilp.row("odd", vec![(a, 2.0), (b, 2.0)], 6.0, 6.0);
        ilp.row("apart", vec![(a, 1.0), (b, -1.0)], 0.0, 0.0);
        ilp.objective = vec![(a, 1.0)];
        let (d, used) = dive(&ilp, 100, None);
        assert!(matches!(d, Dive::Exhausted), "{used} relaxations");
        assert_eq!(solve(&ilp), Outcome::Infeasible);
    }

    /// Dives below the incumbent with a cutoff: a better assignment is found, and when
    /// nothing better exists the exhausted dive proves the incumbent optimal.
    #[test]
    fn a_dive_with_a_cutoff_improves_or_proves() {
        let mut ilp = Ilp::default();
        let xs: Vec<usize> = (0..6).map(|i| ilp.var(format!("x{i}"), 0.0, 4.0)).collect();
        for w in xs.windows(2) {
            ilp.row("pair", vec![(w[0], 3.0), (w[1], 2.0)], 5.0, f64::INFINITY);
        }
        ilp.objective = xs.iter().map(|&x| (x, 1.0)).collect();
        let Outcome::Solved { values, status } = solve(&ilp) else {
            panic!("feasible")
        };
        assert_eq!(status, Status::Optimal);
        let best = Ilp::value(&ilp.objective, &values);
        let (d, _) = dive(&ilp, 1000, Some(best - 1.0 + 1e-6));
        assert!(matches!(d, Dive::Exhausted));
        let (d, _) = dive(&ilp, 1000, Some(best + 1e-6));
        match d {
            Dive::Found(v, _) => assert!(Ilp::value(&ilp.objective, &v) <= best + 1e-9),
            _ => panic!("an assignment at the optimum exists"),
        }
    }

    /// Forty integer variables under overlapping covers: more than a tiny budget proves.
    fn covers() -> Ilp {
        let mut ilp = Ilp::default();
        let xs: Vec<usize> = (0..40)
            .map(|i| ilp.var(format!("x{i}"), 0.0, 5.0))
            .collect();
        for (i, w) in xs.windows(3).enumerate() {
            let terms = w.iter().map(|&x| (x, 2.0 + (i % 3) as f64)).collect();
            ilp.row("cover", terms, 7.0, f64::INFINITY);
        }
        ilp.objective = xs.iter().map(|&x| (x, 3.0)).collect();
        ilp
    }

    #[test]
    fn a_tiny_budget_returns_a_feasible_assignment_or_says_so() {
        let ilp = covers();
        let small = MicroLp.solve(&ilp, WorkLimit(1), None).unwrap();
        match &small {
            Outcome::Solved { values, .. } => {
                for r in &ilp.rows {
                    assert!(Ilp::value(&r.terms, values) >= r.lo - 1e-9);
                }
            }
            Outcome::LimitReached => {}
            Outcome::Infeasible => panic!("feasible program called infeasible"),
        }
        // Deterministic: the same budget gives the same answer.
        assert_eq!(small, MicroLp.solve(&ilp, WorkLimit(1), None).unwrap());
    }

    #[test]
    fn a_search_that_ends_early_leaves_the_rest_of_its_budget() {
        // Proven at the relaxation: nearly the whole budget is left for the next phase.
        let mut ilp = Ilp::default();
        let x = ilp.var("x", 0.0, 10.0);
        ilp.row("x >= 3", vec![(x, 1.0)], 3.0, f64::INFINITY);
        ilp.objective = vec![(x, 1.0)];
        let limit = WorkLimit::DEFAULT;
        let (outcome, rest) = MicroLp.solve_budgeted(&ilp, limit, None).unwrap();
        assert!(matches!(
            outcome,
            Outcome::Solved {
                status: Status::Optimal,
                ..
            }
        ));
        assert!(rest.0 > limit.0 / 2 && rest.0 <= limit.0, "{rest:?}");
        // A search stopped at its limit leaves nothing.
        let (_, rest) = MicroLp
            .solve_budgeted(&covers(), WorkLimit(1), None)
            .unwrap();
        assert_eq!(rest, WorkLimit(0));
    }

    #[test]
    fn steps_of_objectives() {
        assert_eq!(objective_step(&[(0, 4104.0), (1, 8208.0)]), Some(4104));
        assert_eq!(objective_step(&[(0, 2.0), (1, 3.0)]), Some(1));
        assert_eq!(objective_step(&[(0, 0.5)]), None);
        assert_eq!(objective_step(&[]), None);
    }
}
