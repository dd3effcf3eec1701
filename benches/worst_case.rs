//! Worst-case benchmark over generated specs (see BENCHMARKS.md, "Worst case").
//!
//! The specs come from the deterministic generator in `tests/common/specgen.rs`: seeds
//! `0..200` by default (`DEVADDR_WORST_SEEDS=A..B` overrides), `Sizes::default()` (1–2000
//! devices, 0–16 NUMA nodes). Only the public API is used, so the benchmark keeps working
//! while the solver changes.
//!
//! First a report (printed and written to `target/worst-case.txt`), measured with plain
//! `Instant` timings outside criterion:
//!
//! - `plan`: median of several runs per spec; p50 / p99 / max over the set, split by size
//!   bucket, and the outcomes (optimal, feasible = the work limit stopped the search,
//!   infeasible, bad input, verifier rejection).
//! - for every spec that planned: a deterministic edit (about 10 % of the devices
//!   removed, three devices of kinds already present added) replanned with
//!   `allow_moves = false` and `true`, and `capacity_with` for `virtio-net`.
//!
//! Then criterion benchmarks, so that regressions show in criterion's usual output:
//! `worst_case/plan_all` (every spec planned once per iteration) and
//! `worst_case/plan_slowest/<seed>` (the three slowest specs of the report).
//!
//! `DEVADDR_WORST_VERBOSE=1` prints the replan errors and verifier rejections to stderr.
//!
//! Under `cargo test --benches` (no `--bench` argument) it only smoke-runs a few small
//! specs.

#[path = "../tests/common/specgen.rs"]
mod specgen;

use criterion::{black_box, BenchmarkId, Criterion, SamplingMode};
use devaddr::topology::SolverStatus;
use devaddr::{CapacityQuery, DeviceEntry, Error, Options, Plan, Spec};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Size buckets (device counts, inclusive).
const BUCKETS: &[(usize, usize)] = &[(1, 49), (50, 199), (200, 999), (1000, 2000)];

/// Planning outcome of one spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Optimal,
    Feasible,
    Infeasible,
    BadInput,
    /// The verifier rejected the planner's result (a planner bug).
    Check,
}

impl Outcome {
    fn of(r: &devaddr::Result<Plan>) -> Outcome {
        match r {
            Ok(p) => match p.devaddr.solver.map(|s| s.status) {
                Some(SolverStatus::Feasible) => Outcome::Feasible,
                _ => Outcome::Optimal,
            },
            Err(Error::Infeasible { .. }) => Outcome::Infeasible,
            Err(Error::Input { .. }) => Outcome::BadInput,
            // A failed check, or an error kind added later: counted as a failure.
            Err(_) => Outcome::Check,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Outcome::Optimal => "optimal",
            Outcome::Feasible => "feasible",
            Outcome::Infeasible => "infeasible",
            Outcome::BadInput => "bad input",
            Outcome::Check => "check failed",
        }
    }
}

/// One generated spec and what the report measured on it.
struct Case {
    seed: u64,
    devices: usize,
    nodes: u32,
    /// None when the text did not parse (counted as bad input).
    spec: Option<Spec>,
    outcome: Outcome,
    /// The plan, when planning succeeded.
    plan: Option<Plan>,
    /// Every timed run of `plan` on this spec.
    plan_runs: Vec<Duration>,
    replan_strict: Option<(Duration, bool)>,
    replan_moves: Option<(Duration, bool)>,
    capacity: Option<(Duration, bool)>,
}

impl Case {
    /// Median plan time over the runs.
    fn plan_time(&self) -> Duration {
        let mut v = self.plan_runs.clone();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }

    /// Plan once, timed; the time is recorded, and the outcome (and the plan) of the
    /// first run kept.
    fn plan_again(&mut self) -> Duration {
        let Some(spec) = &self.spec else {
            return Duration::ZERO;
        };
        let t = Instant::now();
        let r = devaddr::plan_with(black_box(spec), Options::default());
        let d = t.elapsed();
        if self.plan_runs.is_empty() {
            self.outcome = Outcome::of(&r);
            if let (Some(_), Err(e @ Error::Check { .. })) =
                (std::env::var_os("DEVADDR_WORST_VERBOSE"), &r)
            {
                eprintln!("seed {}: plan: {e}", self.seed);
            }
            self.plan = r.ok();
        }
        self.plan_runs.push(d);
        d
    }
}

/// Repetitions for an operation whose first run took `first`: more for fast ones, so
/// that the whole report stays within a couple of minutes on 2 cores.
fn reps_after(first: Duration) -> usize {
    match first.as_millis() {
        0..=49 => 5,
        50..=499 => 3,
        _ => 1,
    }
}

/// Time `f`: one run, then more by [`reps_after`]; the median of all of them (and the
/// last result).
fn timed<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let t = Instant::now();
    let mut last = black_box(f());
    let mut times = vec![t.elapsed()];
    for _ in 1..reps_after(times[0]) {
        let t = Instant::now();
        last = black_box(f());
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], last)
}

/// The deterministic edit of the replan benchmark: about 10 % of the devices removed and
/// three devices added, of kinds the spec already has (copying their NUMA node).
fn edited(seed: u64, spec: &Spec) -> Spec {
    let mut r = specgen::Rng::new(seed ^ 0x5eed_ed17);
    let mut out = spec.clone();
    out.devices = spec
        .devices
        .iter()
        .filter(|_| !r.pct(10))
        .cloned()
        .collect();
    // Ungrouped devices without a pin; not the balloon (one per guest).
    let models: Vec<&DeviceEntry> = spec
        .devices
        .iter()
        .filter(|d| d.group.is_none() && d.address.is_none() && d.kind != "virtio-balloon")
        .collect();
    if !models.is_empty() {
        for i in 0..3 {
            let m = r.pick(&models);
            out.devices.push(DeviceEntry {
                id: format!("added{i}"),
                kind: m.kind.clone(),
                numa_node: m.numa_node,
                ..Default::default()
            });
        }
    }
    out
}

/// Generate and parse the spec of `seed` (not planned yet).
fn generate(seed: u64, sizes: specgen::Sizes) -> Case {
    let text = specgen::spec(seed, sizes);
    let parsed = Spec::parse(&text, &format!("gen-{seed}.yaml"));
    let mut case = Case {
        seed,
        devices: text.lines().filter(|l| l.starts_with("- ")).count(),
        nodes: 0,
        spec: None,
        outcome: Outcome::BadInput,
        plan: None,
        plan_runs: Vec::new(),
        replan_strict: None,
        replan_moves: None,
        capacity: None,
    };
    let Ok(spec) = parsed else {
        return case;
    };
    case.devices = spec.devices.len();
    case.nodes = spec.policy.numa_nodes.unwrap_or(0);
    case.spec = Some(spec);
    case
}

/// Replan (both ways) and capacity on a spec that planned.
fn lifecycle(case: &mut Case) {
    let (Some(spec), Some(plan)) = (&case.spec, &case.plan) else {
        return;
    };
    let opts = Options::default();
    let edit = edited(case.seed, spec);
    let verbose = std::env::var_os("DEVADDR_WORST_VERBOSE").is_some();
    let (d, r) = timed(|| devaddr::replan_with(&edit, plan, false, opts));
    if let (true, Err(e)) = (verbose, &r) {
        eprintln!("seed {}: replan: {e}", case.seed);
    }
    case.replan_strict = Some((d, r.is_ok()));
    let (d, r) = timed(|| devaddr::replan_with(&edit, plan, true, opts));
    if let (true, Err(e)) = (verbose, &r) {
        eprintln!("seed {}: replan --allow-moves: {e}", case.seed);
    }
    case.replan_moves = Some((d, r.is_ok()));
    let q = CapacityQuery::new(vec!["virtio-net".into()], None);
    let as_spec = plan.to_spec();
    let (d, r) = timed(|| devaddr::capacity_with(&as_spec, &q, opts));
    case.capacity = Some((d, r.is_ok()));
}

/// More plan runs where fewer than [`reps_after`] were made (at least one).
fn top_up(cases: &mut [Case]) {
    for c in cases.iter_mut().filter(|c| c.spec.is_some()) {
        if c.plan_runs.is_empty() {
            c.plan_again();
        }
        while c.plan_runs.len() < reps_after(c.plan_runs[0]) {
            c.plan_again();
        }
    }
}

/// Nearest-rank percentile of sorted `v` (`p` in 0..=100).
fn pct(v: &[Duration], p: usize) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * v.len()).div_ceil(100).max(1);
    v[rank - 1]
}

fn fmt_d(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// `p50 | p99 | max (seed)` of `(seed, time)` pairs.
fn stats(mut v: Vec<(u64, Duration)>) -> String {
    if v.is_empty() {
        return "— | — | —".into();
    }
    v.sort_by_key(|&(s, d)| (d, s));
    let times: Vec<Duration> = v.iter().map(|x| x.1).collect();
    let (seed, max) = *v.last().unwrap();
    format!(
        "{} | {} | {} (seed {seed})",
        fmt_d(pct(&times, 50)),
        fmt_d(pct(&times, 99)),
        fmt_d(max)
    )
}

fn report(cases: &[Case], seeds: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "devaddr worst case: generated specs, seeds {seeds} (tests/common/specgen.rs, \
         Sizes::default), default options"
    );
    let _ = writeln!(
        s,
        "plan time = median of the runs of each spec (under `cargo bench`: 11, criterion's \
         warm-up and 10 samples of plan_all; at least 5 runs (< 50 ms), 3 (< 500 ms) or 1); \
         replan and capacity: median of 5, 3 or 1 runs\n"
    );
    let _ = writeln!(
        s,
        "| devices | specs | optimal | feasible | infeasible | bad input | check failed | plan p50 | plan p99 | plan max |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let all = (1usize, usize::MAX);
    for &(lo, hi) in BUCKETS.iter().chain(std::iter::once(&all)) {
        let in_b: Vec<&Case> = cases
            .iter()
            .filter(|c| (lo..=hi).contains(&c.devices))
            .collect();
        let n = |o: Outcome| in_b.iter().filter(|c| c.outcome == o).count();
        let label = if hi == usize::MAX {
            "all".to_string()
        } else {
            format!("{lo}–{hi}")
        };
        let planned: Vec<(u64, Duration)> = in_b
            .iter()
            .filter(|c| c.spec.is_some())
            .map(|c| (c.seed, c.plan_time()))
            .collect();
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {} | {} | {} | {} | {} |",
            in_b.len(),
            n(Outcome::Optimal),
            n(Outcome::Feasible),
            n(Outcome::Infeasible),
            n(Outcome::BadInput),
            n(Outcome::Check),
            stats(planned)
        );
    }
    let _ = writeln!(
        s,
        "\nOn the specs that planned (edit: ~10 % of the devices removed, 3 of kinds present added):\n"
    );
    let _ = writeln!(s, "| operation | runs | ok | error | p50 | p99 | max |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    type Pick = fn(&Case) -> Option<(Duration, bool)>;
    let ops: [(&str, Pick); 3] = [
        ("replan (allow_moves = false)", |c| c.replan_strict),
        ("replan (allow_moves = true)", |c| c.replan_moves),
        ("capacity virtio-net", |c| c.capacity),
    ];
    for (label, pick) in ops {
        let v: Vec<(u64, Duration, bool)> = cases
            .iter()
            .filter_map(|c| pick(c).map(|(d, ok)| (c.seed, d, ok)))
            .collect();
        let ok = v.iter().filter(|x| x.2).count();
        let _ = writeln!(
            s,
            "| {label} | {} | {ok} | {} | {} |",
            v.len(),
            v.len() - ok,
            stats(v.iter().map(|x| (x.0, x.1)).collect())
        );
    }
    let mut slow: Vec<&Case> = cases.iter().filter(|c| c.spec.is_some()).collect();
    slow.sort_by_key(|c| (std::cmp::Reverse(c.plan_time()), c.seed));
    let _ = writeln!(s, "\nSlowest plans:\n");
    let _ = writeln!(
        s,
        "| seed | devices | NUMA nodes | outcome | plan | replan strict | replan moves | capacity |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---|---:|---:|---:|---:|");
    let opt = |x: Option<(Duration, bool)>| match x {
        Some((d, true)) => fmt_d(d),
        Some((d, false)) => format!("{} (error)", fmt_d(d)),
        None => "—".into(),
    };
    for c in slow.iter().take(10) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            c.seed,
            c.devices,
            c.nodes,
            c.outcome.label(),
            fmt_d(c.plan_time()),
            opt(c.replan_strict),
            opt(c.replan_moves),
            opt(c.capacity)
        );
    }
    let over: Vec<String> = cases
        .iter()
        .filter(|c| {
            [
                Some((c.plan_time(), true)),
                c.replan_strict,
                c.replan_moves,
                c.capacity,
            ]
            .iter()
            .flatten()
            .any(|(d, _)| *d > Duration::from_secs(1))
        })
        .map(|c| c.seed.to_string())
        .collect();
    for o in [Outcome::Feasible, Outcome::Check, Outcome::BadInput] {
        let seeds: Vec<String> = cases
            .iter()
            .filter(|c| c.outcome == o)
            .map(|c| c.seed.to_string())
            .collect();
        if !seeds.is_empty() {
            let _ = writeln!(
                s,
                "\nSeeds with outcome {}: {}",
                o.label(),
                seeds.join(", ")
            );
        }
    }
    let _ = writeln!(
        s,
        "\nSeeds with any operation over 1 s: {}",
        if over.is_empty() {
            "none".into()
        } else {
            over.join(", ")
        }
    );
    s
}

fn seeds() -> (u64, u64) {
    let v = std::env::var("DEVADDR_WORST_SEEDS").unwrap_or_else(|_| "0..200".into());
    let (a, b) = v
        .split_once("..")
        .expect("DEVADDR_WORST_SEEDS must be A..B");
    (
        a.parse().expect("DEVADDR_WORST_SEEDS start"),
        b.parse().expect("DEVADDR_WORST_SEEDS end"),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only check
    // that the code runs, on a few small specs (debug builds are slow).
    if !std::env::args().any(|a| a == "--bench") {
        let small = specgen::Sizes {
            min_devices: 1,
            max_devices: 20,
            max_nodes: 2,
        };
        let mut cases: Vec<Case> = (0..3).map(|s| generate(s, small)).collect();
        top_up(&mut cases);
        cases.iter_mut().for_each(lifecycle);
        println!("{}", report(&cases, "0..3 (smoke run, at most 20 devices)"));
        return;
    }
    let (a, b) = seeds();
    let started = Instant::now();
    let mut cases: Vec<Case> = (a..b)
        .map(|seed| generate(seed, specgen::Sizes::default()))
        .collect();
    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("worst_case");
        // One pass over the set takes seconds: one iteration per sample, the fewest
        // samples criterion takes (criterion warns that it cannot complete them in the
        // target time; that is expected).
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(1));
        g.measurement_time(Duration::from_secs(1));
        // Every spec planned once per iteration; each plan's time also goes into the
        // spec's runs for the report (criterion's warm-up pass is the first run, whose
        // outcome and plan the report keeps).
        g.bench_function("plan_all", |bch| {
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    for case in cases.iter_mut() {
                        total += case.plan_again();
                    }
                }
                total
            })
        });
        g.finish();
    }
    // Runs plan_all did not make (a filter left it out), then the lifecycle questions on
    // the plans.
    top_up(&mut cases);
    cases.iter_mut().for_each(lifecycle);
    let mut text = report(&cases, &format!("{a}..{b}"));
    let _ = writeln!(
        text,
        "(report and plan_all measured in {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    println!("\n{text}");
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into());
    let path = std::path::Path::new(&target).join("worst-case.txt");
    match std::fs::write(&path, &text) {
        Ok(()) => println!("written to {}\n", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }

    let mut slowest: Vec<&Case> = cases.iter().filter(|c| c.spec.is_some()).collect();
    slowest.sort_by_key(|c| (std::cmp::Reverse(c.plan_time()), c.seed));
    let mut g = c.benchmark_group("worst_case");
    // Seconds per plan: one iteration per sample, as for plan_all.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(1));
    g.measurement_time(Duration::from_secs(1));
    for case in slowest.into_iter().take(3) {
        let spec = case.spec.as_ref().unwrap();

        g.bench_with_input(
            BenchmarkId::new("plan_slowest", case.seed),
            spec,
            |bch, s| bch.iter(|| devaddr::plan(black_box(s))),
        );
    }
    g.finish();
    c.final_summary();
}
