//! The planning pipeline one stage at a time: what [`crate::plan_with`] runs in one call
//! (normalize → formulate and solve → assemble → verify), for benchmarks and profiles that
//! time the stages apart (`benches/stages.rs`). The values between the stages are opaque.
//!
//! ```
//! use devaddr::{formats, stages, Options, Spec};
//! let spec = Spec::parse("machine: q35\ndevices:\n  - {id: net0, kind: virtio-net}\n", "spec.yaml")?;
//! let opts = Options::default();
//! let problem = stages::normalize(&spec, opts)?;
//! let placement = stages::solve(&problem, opts)?;
//! let plan = stages::assemble(&problem, &placement, opts)?;
//! assert!(stages::verify(&plan, &spec, opts).is_empty());
//! let yaml = formats::render(&plan, formats::Format::Yaml, opts.catalog);
//! assert_eq!(yaml, devaddr::plan(&spec)?.to_yaml());
//! # Ok::<(), devaddr::Error>(())
//! ```

use crate::{normalize, solve, verify, Finding, Options, Plan, Result, Spec};

/// A normalized spec: the machine with its firmware's limits, the effective policy, the
/// devices and controllers to place.
pub struct Problem<'s>(normalize::Problem<'s>);

/// The solver's placement of a [`Problem`], before the plan is assembled from it.
pub struct Placement(solve::decode::Placement);

/// Normalize `spec` (as [`crate::plan_with`] does for a new plan).
pub fn normalize<'s>(spec: &'s Spec, opts: Options<'_>) -> Result<Problem<'s>> {
    normalize::normalize_in(spec, opts.catalog, normalize::Context::default()).map(Problem)
}

/// Formulate the integer programs of `problem`, solve them and decode the placement.
pub fn solve(problem: &Problem<'_>, opts: Options<'_>) -> Result<Placement> {
    solve::solve_with(&problem.0, opts.catalog, opts.solver()).map(Placement)
}

/// Assemble the plan (controller attributes, bus numbers, the plan's header) and check
/// the device order it promises; not verified yet.
pub fn assemble(problem: &Problem<'_>, placement: &Placement, opts: Options<'_>) -> Result<Plan> {
    crate::assemble_checked(&problem.0, &placement.0, opts.catalog)
}

/// The independent verifier's findings on `plan` against `spec` (empty: the plan is valid).
pub fn verify(plan: &Plan, spec: &Spec, opts: Options<'_>) -> Vec<Finding> {
    verify::verify_against(plan, spec, opts.catalog)
}
