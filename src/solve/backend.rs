//! A solver-neutral integer program and the backend trait that solves it. The default
//! backend is microlp (pure Rust) through good_lp.

use good_lp::{
    constraint, solvers::microlp::microlp, variable, Expression, ProblemVariables, ResolutionError,
    Solution, SolverModel, Variable,
};

/// An integer variable with bounds.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
}

/// `lo <= Σ coef·x <= hi`.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub terms: Vec<(usize, f64)>,
    pub lo: f64,
    pub hi: f64,
}

/// A pure integer minimisation program.
#[derive(Debug, Clone, Default)]
pub struct Ilp {
    pub vars: Vec<Var>,
    pub rows: Vec<Row>,
    pub objective: Vec<(usize, f64)>,
}

impl Ilp {
    pub fn var(&mut self, name: impl Into<String>, lo: f64, hi: f64) -> usize {
        self.vars.push(Var {
            name: name.into(),
            lo,
            hi,
        });
        self.vars.len() - 1
    }
    pub fn row(&mut self, name: impl Into<String>, terms: Vec<(usize, f64)>, lo: f64, hi: f64) {
        self.rows.push(Row {
            name: name.into(),
            terms,
            lo,
            hi,
        });
    }
}

/// Outcome of a solve.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Optimal(Vec<i64>),
    Infeasible,
}

/// A MIP solver.
pub trait Backend {
    fn solve(&self, ilp: &Ilp) -> Result<Outcome, String>;
}

/// microlp through good_lp.
#[derive(Debug, Clone, Copy, Default)]
pub struct MicroLp;

impl Backend for MicroLp {
    fn solve(&self, ilp: &Ilp) -> Result<Outcome, String> {
        let mut pv = ProblemVariables::new();
        let vs: Vec<Variable> = ilp
            .vars
            .iter()
            .map(|v| pv.add(variable().integer().min(v.lo).max(v.hi).name(&v.name)))
            .collect();
        let lin =
            |terms: &[(usize, f64)]| -> Expression { terms.iter().map(|&(i, c)| c * vs[i]).sum() };
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
        match model.solve() {
            Ok(sol) => Ok(Outcome::Optimal(
                vs.iter().map(|&v| sol.value(v).round() as i64).collect(),
            )),
            Err(ResolutionError::Infeasible) => Ok(Outcome::Infeasible),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_tiny_program() {
        let mut ilp = Ilp::default();
        let a = ilp.var("a", 0.0, 10.0);
        let b = ilp.var("b", 0.0, 10.0);
        ilp.row("cover", vec![(a, 2.0), (b, 3.0)], 7.0, f64::INFINITY);
        ilp.objective = vec![(a, 1.0), (b, 1.0)];
        match MicroLp.solve(&ilp).unwrap() {
            Outcome::Optimal(v) => {
                assert!(2 * v[a] + 3 * v[b] >= 7);
                assert_eq!(v[a] + v[b], 3);
            }
            Outcome::Infeasible => panic!("feasible"),
        }
    }

    #[test]
    fn reports_infeasible() {
        let mut ilp = Ilp::default();
        let a = ilp.var("a", 0.0, 1.0);
        ilp.row("too much", vec![(a, 1.0)], 2.0, f64::INFINITY);
        assert_eq!(MicroLp.solve(&ilp).unwrap(), Outcome::Infeasible);
    }
}
