//! Fuzzing inside the test suite, on stable Rust (no cargo-fuzz, no nightly).
//!
//! Two kinds of input, both deterministic (SplitMix64 seeded from `DEVADDR_FUZZ_SEED`):
//!
//! * **Valid specs** from the worst-case generator (`tests/common/specgen.rs`), planned in
//!   process. Every plan must pass `check`, plan again to itself (equal value, identical
//!   YAML), and every error must be `Infeasible` or located bad input — never
//!   `Error::Check` (the planner's own verifier rejecting its plan). A share of the plans
//!   are edited (devices removed and added) and replanned with and without moves, and
//!   asked for capacity.
//! * **Byte-level mutations** of seed inputs: `examples/*.yaml` and `*.xml`, `tests/qemu-specs/*.yaml`,
//!   plans of a few of them, and the libvirt domains of `../shared/corpus/libvirt`
//!   (read in place, never copied). They go through `input::from_bytes`, `Spec::parse` +
//!   `plan`, `Plan::parse` + `check`, and `libvirt::plan_domain` / `check_domain`.
//!
//! Every library call runs under `catch_unwind` and a stopwatch: a panic, a call slower
//! than the hang threshold, an `Ok` plan that `check` rejects, `Error::Check` out of a
//! planning call and bad input without a location (no path, no line) are failures.
//!
//! The campaign test is a supervisor: it runs the cases in a worker process (this test
//! binary again, test `fuzz_worker`) and reads one result line per case. A case that
//! runs past the watchdog limit (a real hang) or kills the worker (an abort: stack
//! overflow, out of memory) is recorded with its input, the worker is killed and a new
//! one continues with the next case. All failures are collected, printed with their
//! input, saved (see `DEVADDR_FUZZ_SAVE`) and fail the test at the end. Inputs in
//! `tests/fuzz-regressions/` are replayed before the generated cases.
//!
//! Environment:
//! * `DEVADDR_FUZZ_SEED` — campaign seed (decimal or 0x-hex; default fixed).
//! * `DEVADDR_FUZZ_CASES` — cases of the long campaign (default 1,000,000); one case in
//!   eleven is a valid spec, the rest are mutations.
//! * `DEVADDR_FUZZ_SHORT_CASES` — cases of the short campaign (default 3,300).
//! * `DEVADDR_FUZZ_MAX_SECS` — stop a campaign after this many seconds (the summary is
//!   still printed).
//! * `DEVADDR_FUZZ_HANG_MS` — slowest acceptable call (default 1000 ms in release
//!   builds, 10,000 ms in debug builds, which run the solver far slower).
//! * `DEVADDR_FUZZ_WATCHDOG_SECS` — a case running this long is killed as a hang
//!   (default 10 s in release, 20 s in debug builds).
//! * `DEVADDR_FUZZ_SAVE` — directory for failing inputs (default
//!   `target/tmp/fuzz-failures`).
//!
//! Long campaign: `DEVADDR_FUZZ_CASES=1000000 cargo test --release --test fuzz -- --ignored --nocapture`

// `*r.pick(PCI_ANY)` in the generator is flagged by clippy, whose suggested fix does not
// compile (a false positive of explicit_auto_deref on `&&str`).
#[allow(clippy::explicit_auto_deref)]
#[path = "common/specgen.rs"]
mod specgen;

use devaddr::spec::DeviceEntry;
use devaddr::{CapacityQuery, Error, Options, Plan, Spec};
use serde::{Deserialize, Serialize};
use specgen::{Rng, Sizes};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Once;
use std::time::{Duration, Instant};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
const LIBVIRT_CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/libvirt");
const REGRESSIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-regressions");
const DEFAULT_SEED: u64 = 0x00de_0add_f022;
/// Prefix of the worker's protocol lines on its standard output.
const WIRE: &str = "@@fuzz ";

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Campaign {
    Short,
    Long,
}

impl Campaign {
    fn name(self) -> &'static str {
        match self {
            Campaign::Short => "short",
            Campaign::Long => "long",
        }
    }
}

#[derive(Clone)]
struct Config {
    campaign: Campaign,
    seed: u64,
    cases: u64,
    /// Sizes of the valid specs: small ones always, the generator's full range in a share
    /// of the cases (`big_pct` percent).
    small: Sizes,
    big_pct: u64,
    hang: Duration,
    watchdog: Duration,
    max_time: Option<Duration>,
    save: PathBuf,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim().replace('_', "");
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    match parsed {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v}: expected a number"),
    }
}

impl Config {
    fn of(campaign: Campaign) -> Config {
        let debug = cfg!(debug_assertions);
        let (cases, small, big_pct) = match campaign {
            // 300 valid specs (1 case in 11) and 3000 mutations.
            Campaign::Short => (
                env_u64("DEVADDR_FUZZ_SHORT_CASES").unwrap_or(3_300),
                Sizes {
                    min_devices: 1,
                    max_devices: 24,
                    max_nodes: 4,
                },
                0,
            ),
            // One valid spec in ten from the generator's full range (up to 2000 devices,
            // 16 NUMA nodes).
            Campaign::Long => (
                env_u64("DEVADDR_FUZZ_CASES").unwrap_or(1_000_000),
                Sizes {
                    min_devices: 1,
                    max_devices: 120,
                    max_nodes: 16,
                },
                10,
            ),
        };
        Config {
            campaign,
            seed: env_u64("DEVADDR_FUZZ_SEED").unwrap_or(DEFAULT_SEED),
            cases,
            small,
            big_pct,
            hang: Duration::from_millis(env_u64("DEVADDR_FUZZ_HANG_MS").unwrap_or(if debug {
                10_000
            } else {
                1_000
            })),
            watchdog: Duration::from_secs(
                env_u64("DEVADDR_FUZZ_WATCHDOG_SECS").unwrap_or(if debug { 20 } else { 10 }),
            ),
            max_time: env_u64("DEVADDR_FUZZ_MAX_SECS").map(Duration::from_secs),
            save: std::env::var_os("DEVADDR_FUZZ_SAVE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/fuzz-failures"))
                }),
        }
    }
}

/// An independent stream per case: the campaign seed and the case number mixed.
fn case_seed(seed: u64, case: u64) -> u64 {
    Rng::new(seed ^ case.wrapping_mul(0xd134_2543_de82_ef95)).next()
}

// ---------------------------------------------------------------------------------------
// Panics: caught per call, message kept, nothing printed for fuzz calls
// ---------------------------------------------------------------------------------------

thread_local! {
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CALL.with(Cell::get) {
                let bt = std::backtrace::Backtrace::force_capture();
                let frames: String = bt
                    .to_string()
                    .lines()
                    .filter(|l| l.contains("devaddr::") && !l.contains("fuzz::"))
                    .take(6)
                    .map(|l| format!("\n      {}", l.trim()))
                    .collect();
                PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{info}{frames}")));
            } else {
                default(info);
            }
        }));
    });
}

// ---------------------------------------------------------------------------------------
// Inputs, failures, results
// ---------------------------------------------------------------------------------------

/// One input as files (suffix, bytes): what is saved and printed on a failure. A replan
/// is two files (`replan.yaml` + `previous.yaml`), everything else one.
#[derive(Clone, Serialize, Deserialize)]
struct Input {
    what: String,
    files: Vec<(String, Vec<u8>)>,
}

impl Input {
    fn one(what: String, suffix: &str, bytes: &[u8]) -> Input {
        Input {
            what,
            files: vec![(suffix.to_string(), bytes.to_vec())],
        }
    }
}

const ABORT: &str = "aborts (panics, crashed worker)";
const HANG: &str = "hangs (slow calls)";
const CHECK_FAILS: &str = "plans failing check";
const UNLOCATED: &str = "errors without a location";
/// Findings, one a line.
fn lines(findings: &[devaddr::Finding]) -> String {
    let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

const VERIFIER: &str = "verifier rejects own plan (Error::Check)";
const NOT_IDEMPOTENT: &str = "plan not idempotent";
const REPLAN_MOVED: &str = "replan moved a kept device";
const REPLAN_INPUT: &str = "replan refuses a valid edit as bad input";
const NEEDLESS_MOVES: &str = "replan --allow-moves moves what the strict replan keeps";
const CHECK_ERROR: &str = "check errors on a planned plan";
const CLASSES: &[&str] = &[
    ABORT,
    HANG,
    CHECK_FAILS,
    UNLOCATED,
    VERIFIER,
    NOT_IDEMPOTENT,
    REPLAN_MOVED,
    REPLAN_INPUT,
    NEEDLESS_MOVES,
    CHECK_ERROR,
];

#[derive(Clone, Serialize, Deserialize)]
struct Failure {
    class: String,
    call: String,
    input: Input,
    message: String,
}

/// What one job (or a whole campaign) produced.
#[derive(Default, Serialize, Deserialize)]
struct Results {
    /// Inputs run, by class of input.
    inputs: BTreeMap<String, u64>,
    /// Results, by call and outcome.
    outcomes: BTreeMap<String, u64>,
    /// Every call's duration in microseconds.
    times: Vec<u32>,
    /// The slowest call (microseconds, description).
    slowest: (u64, String),
    failures: Vec<Failure>,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn slug(class: &str) -> String {
    class
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase()
}

/// Save an input's files as `<slug>-<hash>.<suffix>` in `dir`.
fn save_input(dir: &Path, class: &str, input: &Input) -> Vec<PathBuf> {
    if std::fs::create_dir_all(dir).is_err() {
        return Vec::new();
    }
    let all: Vec<u8> = input.files.iter().flat_map(|(_, b)| b.clone()).collect();
    let stem = format!("{}-{:016x}", slug(class), fnv(&all));
    input
        .files
        .iter()
        .filter_map(|(suffix, bytes)| {
            let p = dir.join(format!("{stem}.{suffix}"));
            std::fs::write(&p, bytes).ok().map(|_| p)
        })
        .collect()
}

fn show(bytes: &[u8]) -> String {
    const MAX: usize = 3000;
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]).into_owned();
    let s = s.replace('\0', "\\0");
    if bytes.len() > MAX {
        format!("{s}\n… ({} bytes in all)", bytes.len())
    } else {
        s
    }
}

fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Input { .. } | Error::Several { .. } => "input",
        Error::Infeasible { .. } => "infeasible",
        Error::Check { .. } => "check",
        _ => "other",
    }
}

/// Bad input must say where: a YAML path, an XML element or a line (each of several
/// errors). The file name alone does not count (the harness names every input itself).
fn located(e: &Error) -> bool {
    match e {
        Error::Input { location, .. } => {
            location.line.is_some()
                || location.path.as_deref().is_some_and(|p| !p.is_empty())
                || location.element.is_some()
        }
        Error::Several { errors } => errors.iter().all(located),
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------
// Jobs: the regression corpus, then the generated cases
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
enum Job {
    Regression(PathBuf),
    Case(u64),
}

/// What a job runs.
enum Work {
    /// A generated valid spec (with its case stream for edits).
    Valid { text: String, rng: Rng },
    /// Bytes through the pipeline of their kind.
    Bytes {
        kind: SeedKind,
        bytes: Vec<u8>,
        new_domain: bool,
    },
    /// A saved replan: the edited spec and the previous plan.
    Replan { spec: Vec<u8>, previous: Vec<u8> },
    /// A saved capacity query: the plan and the kind.
    Capacity { plan: Vec<u8>, kind: String },
}

/// Every job of a campaign, the same in the supervisor and its worker.
fn jobs(cfg: &Config) -> Vec<Job> {
    let mut v: Vec<Job> = regression_files()
        .into_iter()
        .map(Job::Regression)
        .collect();
    v.extend((0..cfg.cases).map(Job::Case));
    v
}

/// The inputs of `tests/fuzz-regressions/` (a `.previous.yaml` belongs to its
/// `.replan.yaml`).
fn regression_files() -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(REGRESSIONS)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.retain(|p| {
        let n = p.to_string_lossy();
        (n.ends_with(".yaml") || n.ends_with(".json") || n.ends_with(".xml"))
            && !n.ends_with(".previous.yaml")
    });
    names.sort();
    names
}

/// The input of a job and what to do with it (deterministic: the supervisor rebuilds the
/// input of a job that hung or crashed the worker).
fn prepare(cfg: &Config, seeds: &[SeedInput], job: &Job) -> (Input, Work, &'static str) {
    match job {
        Job::Regression(path) => {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let suffix = name.split_once('.').map_or("yaml", |(_, s)| s).to_string();
            let what = format!("regression {name}");
            if let Some(stem) = name.strip_suffix(".replan.yaml") {
                let prev = path.with_file_name(format!("{stem}.previous.yaml"));
                let previous = std::fs::read(&prev)
                    .unwrap_or_else(|e| panic!("{name} needs {}: {e}", prev.display()));
                let input = Input {
                    what: format!("{what} with {stem}.previous.yaml"),
                    files: vec![
                        ("replan.yaml".into(), bytes.clone()),
                        ("previous.yaml".into(), previous.clone()),
                    ],
                };
                let work = Work::Replan {
                    spec: bytes,
                    previous,
                };
                return (input, work, "regression inputs");
            }
            let input = Input::one(what, &suffix, &bytes);
            let work = if let Some((_, kind)) = name
                .strip_suffix(".yaml")
                .and_then(|s| s.split_once(".capacity-"))
            {
                Work::Capacity {
                    plan: bytes,
                    kind: kind.to_string(),
                }
            } else {
                let kind = if name.ends_with(".xml") {
                    SeedKind::Xml
                } else if name.ends_with(".plan.yaml") {
                    SeedKind::Plan
                } else {
                    SeedKind::Spec
                };
                Work::Bytes {
                    kind,
                    bytes,
                    new_domain: name.contains(".new-domain."),
                }
            };
            (input, work, "regression inputs")
        }
        Job::Case(case) if case % 11 == 0 => {
            let seed = case_seed(cfg.seed, *case);
            let mut rng = Rng::new(seed);
            let sizes = if rng.pct(cfg.big_pct) {
                Sizes::default()
            } else {
                cfg.small
            };
            let text = specgen::spec(seed, sizes);
            let what = format!(
                "valid spec case {case}: specgen::spec({seed:#x}, Sizes {{ max_devices: {}, \
                 max_nodes: {} }})",
                sizes.max_devices, sizes.max_nodes
            );
            let input = Input::one(what, "yaml", text.as_bytes());
            (input, Work::Valid { text, rng }, "valid specs")
        }
        Job::Case(case) => {
            let seed = case_seed(cfg.seed, *case);
            let mut r = Rng::new(seed);
            let base = &seeds[r.next() as usize % seeds.len()];
            let (bytes, ops) = mutate(&mut r, base, seeds);
            let new_domain = r.pct(30);
            let what = format!(
                "mutation case {case} (seed {seed:#x}) of {} by {}",
                base.name,
                ops.join("+")
            );
            let (suffix, class) = match base.kind {
                SeedKind::Spec => ("yaml", "mutated specs"),
                SeedKind::Plan => ("plan.yaml", "mutated plans"),
                SeedKind::Xml if new_domain => ("new-domain.xml", "mutated libvirt domains"),
                SeedKind::Xml => ("xml", "mutated libvirt domains"),
            };
            let input = Input::one(what, suffix, &bytes);
            let work = Work::Bytes {
                kind: base.kind,
                bytes,
                new_domain,
            };
            (input, work, class)
        }
    }
}

// ---------------------------------------------------------------------------------------
// The worker: runs jobs in process, one result line per job
// ---------------------------------------------------------------------------------------

struct Fuzzer {
    cfg: Config,
    res: Results,
}

impl Fuzzer {
    fn new(cfg: Config) -> Fuzzer {
        install_panic_hook();
        Fuzzer {
            cfg,
            res: Results::default(),
        }
    }

    fn count_input(&mut self, class: &str) {
        *self.res.inputs.entry(class.to_string()).or_default() += 1;
    }

    fn outcome(&mut self, call: &str, what: &str) {
        *self
            .res
            .outcomes
            .entry(format!("{call}: {what}"))
            .or_default() += 1;
    }

    fn fail(&mut self, class: &str, call: &str, input: &Input, message: String) {
        self.res.failures.push(Failure {
            class: class.to_string(),
            call: call.to_string(),
            input: input.clone(),
            message,
        });
    }

    /// Run one library call: panics caught, time measured.
    fn call<T>(&mut self, call: &'static str, input: &Input, f: impl FnOnce() -> T) -> Option<T> {
        IN_CALL.with(|c| c.set(true));
        let start = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let took = start.elapsed();
        IN_CALL.with(|c| c.set(false));
        let us = took.as_micros().min(u128::from(u32::MAX)) as u64;
        self.res.times.push(us as u32);
        if us > self.res.slowest.0 {
            self.res.slowest = (us, format!("{call} on {}", input.what));
        }
        if took > self.cfg.hang {
            self.fail(
                HANG,
                call,
                input,
                format!("{call} took {took:?} (threshold {:?})", self.cfg.hang),
            );
        }
        match r {
            Ok(v) => Some(v),
            Err(_) => {
                let msg = PANIC_MESSAGE
                    .with(|m| m.borrow_mut().take())
                    .unwrap_or_else(|| "panic without a message".into());
                self.outcome(call, "panic");
                self.fail(ABORT, call, input, format!("panic: {msg}"));
                None
            }
        }
    }

    /// Run one job.
    fn job(&mut self, input: &Input, work: Work, class: &str) {
        self.count_input(class);
        match work {
            Work::Valid { text, mut rng } => self.valid(input, &text, &mut rng),
            Work::Bytes {
                kind,
                bytes,
                new_domain,
            } => self.run_bytes(input, kind, &bytes, new_domain),
            Work::Replan { spec, previous } => {
                let spec = Spec::parse(&String::from_utf8_lossy(&spec), "replan.yaml");
                let previous = Plan::parse(&String::from_utf8_lossy(&previous), "previous.yaml");
                match (spec, previous) {
                    (Ok(s), Ok(p)) => self.replan(input, &s, &p),
                    (s, p) => self.fail(
                        REPLAN_INPUT,
                        "parse",
                        input,
                        format!("a saved replan does not parse: {:?} {:?}", s.err(), p.err()),
                    ),
                }
            }
            Work::Capacity { plan, kind } => {
                match Plan::parse(&String::from_utf8_lossy(&plan), "capacity.yaml") {
                    Ok(p) => self.capacity(input, &p, &kind),
                    Err(e) => self.fail(
                        CHECK_ERROR,
                        "Plan::parse",
                        input,
                        format!("a saved capacity plan does not parse: {e}"),
                    ),
                }
            }
        }
    }

    /// Judge an error of a call: `Error::Check` out of planning is the verifier
    /// rejecting the planner's own result; bad input must carry a location.
    fn judge(&mut self, call: &str, input: &Input, e: &Error, planning: bool) {
        self.outcome(call, error_kind(e));
        if planning && matches!(e, Error::Check { .. }) {
            self.fail(VERIFIER, call, input, e.to_string());
        }
        if !located(e) {
            self.fail(UNLOCATED, call, input, format!("{e:?}"));
        }
    }

    // -----------------------------------------------------------------------------------
    // Pipelines
    // -----------------------------------------------------------------------------------

    /// Bytes to text as the CLI reads them: invalid UTF-8 is located bad input.
    fn text(&mut self, input: &Input, bytes: &[u8], file: &str) -> Option<String> {
        match self.call("input::from_bytes", input, || {
            devaddr::input::from_bytes(bytes, file)
        })? {
            Ok(t) => {
                self.outcome("input::from_bytes", "ok");
                Some(t)
            }
            Err(e) => {
                self.judge("input::from_bytes", input, &e, false);
                None
            }
        }
    }

    /// A spec: parse, plan, and hold every plan to its promises. Returns the plan.
    fn spec_text(&mut self, input: &Input, text: &str) -> Option<(Spec, Plan)> {
        let spec = match self.call("Spec::parse", input, || Spec::parse(text, "fuzz.yaml"))? {
            Ok(s) => s,
            Err(e) => {
                self.judge("Spec::parse", input, &e, false);
                return None;
            }
        };
        self.outcome("Spec::parse", "ok");
        self.spec(input, spec)
    }

    fn spec(&mut self, input: &Input, spec: Spec) -> Option<(Spec, Plan)> {
        match self.call("plan", input, || devaddr::plan(&spec))? {
            Ok(plan) => {
                self.outcome("plan", "ok");
                self.promises(input, &plan).then_some((spec, plan))
            }
            Err(e) => {
                self.judge("plan", input, &e, true);
                None
            }
        }
    }

    /// A plan that `plan` returned: passes check, parses back, plans to itself.
    fn promises(&mut self, input: &Input, plan: &Plan) -> bool {
        let as_spec = plan.to_spec();
        let mut good = self.passes_check(input, "check(plan)", &as_spec);
        let yaml = plan.to_yaml();
        match self.call("Spec::parse(plan yaml)", input, || {
            Spec::parse(&yaml, "plan.yaml")
        }) {
            Some(Ok(reparsed)) => {
                let again = self.call("plan(plan yaml)", input, || devaddr::plan(&reparsed));
                good &= self.plans_to_itself(
                    input,
                    "plan(plan yaml)",
                    again,
                    |again| again.to_yaml() == yaml,
                    &yaml,
                    (
                        "planning the plan's YAML changes it:",
                        "planning the plan's YAML fails",
                    ),
                );
            }
            Some(Err(e)) => {
                good = false;
                self.fail(
                    NOT_IDEMPOTENT,
                    "Spec::parse(plan yaml)",
                    input,
                    format!("the plan's own YAML does not parse: {e}\n{yaml}"),
                );
            }
            None => good = false,
        }
        let again = self.call("plan(plan.to_spec())", input, || devaddr::plan(&as_spec));
        good &= self.plans_to_itself(
            input,
            "plan(plan.to_spec())",
            again,
            |again| again == plan,
            &yaml,
            ("plan(&plan.to_spec()) != plan:", "planning the plan fails"),
        );
        good
    }

    /// Planning a plan again (`again`, the outcome of `call`) gives the same plan (`same`);
    /// otherwise a NOT_IDEMPOTENT failure with `messages` (changed, failed).
    fn plans_to_itself(
        &mut self,
        input: &Input,
        call: &'static str,
        again: Option<devaddr::Result<Plan>>,
        same: impl Fn(&Plan) -> bool,
        yaml: &str,
        messages: (&str, &str),
    ) -> bool {
        match again {
            Some(Ok(again)) if same(&again) => true,
            Some(Ok(again)) => {
                let diff = diff(yaml, &again.to_yaml());
                self.fail(
                    NOT_IDEMPOTENT,
                    call,
                    input,
                    format!("{}\n{diff}", messages.0),
                );
                false
            }
            Some(Err(e)) => {
                self.judge(call, input, &e, true);
                if !matches!(e, Error::Check { .. }) {
                    self.fail(NOT_IDEMPOTENT, call, input, format!("{}: {e}", messages.1));
                }
                false
            }
            None => false,
        }
    }

    /// `check` on a plan devaddr produced finds nothing.
    fn passes_check(&mut self, input: &Input, call: &'static str, s: &Spec) -> bool {
        match self.call(call, input, || devaddr::check(s)) {
            Some(Ok(f)) if f.is_empty() => true,
            Some(Ok(f)) => {
                self.fail(
                    CHECK_FAILS,
                    call,
                    input,
                    format!("check finds {} problem(s):\n{}", f.len(), lines(&f)),
                );
                false
            }
            Some(Err(e)) => {
                self.fail(CHECK_ERROR, call, input, format!("{e}"));
                false
            }
            None => false,
        }
    }

    /// A plan as text (possibly corrupted): the CLI's `check` path, `Plan::parse` (the
    /// `--previous`/hotplug path), and a plan `check` accepts must plan without the
    /// verifier objecting.
    fn plan_text(&mut self, input: &Input, text: &str) {
        if let Some(r) = self.call("Plan::parse", input, || Plan::parse(text, "fuzz.plan.yaml")) {
            match r {
                Ok(_) => self.outcome("Plan::parse", "ok"),
                Err(e) => self.judge("Plan::parse", input, &e, false),
            }
        }
        let spec = match self.call("Spec::parse", input, || Spec::parse(text, "fuzz.plan.yaml")) {
            Some(Ok(s)) => s,
            Some(Err(e)) => return self.judge("Spec::parse", input, &e, false),
            None => return,
        };
        self.outcome("Spec::parse", "ok");
        let accepted = match self.call("check", input, || devaddr::check(&spec)) {
            Some(Ok(f)) => {
                self.outcome("check", if f.is_empty() { "clean" } else { "findings" });
                f.is_empty()
            }
            Some(Err(e)) => {
                self.judge("check", input, &e, false);
                false
            }
            None => false,
        };
        if accepted {
            // check says this is a valid plan: the planner must agree.
            match self.call("plan(checked plan)", input, || devaddr::plan(&spec)) {
                Some(Ok(p)) => {
                    self.outcome("plan(checked plan)", "ok");
                    self.passes_check(input, "check(plan of checked plan)", &p.to_spec());
                }
                Some(Err(e)) => self.judge("plan(checked plan)", input, &e, true),
                None => {}
            }
        }
    }

    /// A libvirt domain: plan it (stored-config and new-domain parse), check the result
    /// and the input.
    fn xml_text(&mut self, input: &Input, text: &str, new_domain: bool) {
        self.call("is_domain_xml", input, || {
            devaddr::libvirt::is_domain_xml(text)
        });
        let opts = devaddr::libvirt::LibvirtOptions { new_domain };
        match self.call("plan_domain", input, || {
            devaddr::libvirt::plan_domain_warned(text, "fuzz.xml", &opts, Options::default())
        }) {
            Some(Ok((out, loops))) => {
                self.outcome("plan_domain", "ok");
                // A controller loop libvirt defines (and devaddr plans as libvirt does, with
                // a warning) is what check finds in it, as a bus-tree finding.
                let only_the_loop = |f: &[devaddr::Finding]| {
                    !loops.is_empty() && f.iter().all(|f| f.rule == devaddr::Rule::BusTree)
                };
                if !new_domain {
                    match self.call("check_domain(planned)", input, || {
                        devaddr::libvirt::check_domain(&out, "planned.xml")
                    }) {
                        Some(Ok(f)) if f.is_empty() || only_the_loop(&f) => {}
                        Some(Ok(f)) => self.fail(
                            CHECK_FAILS,
                            "check_domain(planned)",
                            input,
                            format!("check finds in the planned domain:\n{}\n{out}", lines(&f)),
                        ),
                        Some(Err(e)) => self.fail(
                            CHECK_ERROR,
                            "check_domain(planned)",
                            input,
                            format!("the planned domain is refused: {e}\n{out}"),
                        ),
                        None => {}
                    }
                }
            }
            Some(Err(e)) => self.judge("plan_domain", input, &e, true),
            None => {}
        }
        match self.call("check_domain", input, || {
            devaddr::libvirt::check_domain(text, "fuzz.xml")
        }) {
            Some(Ok(f)) => self.outcome(
                "check_domain",
                if f.is_empty() { "clean" } else { "findings" },
            ),
            Some(Err(e)) => self.judge("check_domain", input, &e, false),
            None => {}
        }
    }

    /// Replan `edited` against `previous`, with and without moves. A replan that may move
    /// devices moves none when the strict one succeeds.
    fn replan(&mut self, input: &Input, edited: &Spec, previous: &Plan) {
        let mut strict: Option<Plan> = None;
        for allow_moves in [false, true] {
            let call = if allow_moves {
                "replan(allow_moves)"
            } else {
                "replan"
            };
            let r = self.call(call, input, || {
                devaddr::replan_with(edited, previous, allow_moves, Options::default())
            });
            match r {
                Some(Ok(re)) => {
                    self.outcome(call, "ok");
                    let check = if allow_moves {
                        "check(replan allow_moves)"
                    } else {
                        "check(replan)"
                    };
                    if self.passes_check(input, check, &re.plan.to_spec()) {
                        self.promises(input, &re.plan);
                    }
                    let moved = kept_moved(previous, &re.plan, &re.moves, allow_moves);
                    if !moved.is_empty() {
                        self.fail(REPLAN_MOVED, call, input, moved.join("\n"));
                    }
                    match &strict {
                        Some(s) if allow_moves && !re.moves.is_empty() => {
                            let moves: Vec<String> =
                                re.moves.iter().map(|m| format!("{m:?}")).collect();
                            self.fail(
                                NEEDLESS_MOVES,
                                call,
                                input,
                                format!(
                                    "the strict replan keeps every address, this one moves:\n{}\n{}",
                                    moves.join("\n"),
                                    diff(&s.to_yaml(), &re.plan.to_yaml())
                                ),
                            );
                        }
                        _ if !allow_moves => strict = Some(re.plan),
                        _ => {}
                    }
                }
                Some(Err(e)) => {
                    self.judge(call, input, &e, true);
                    if matches!(e, Error::Input { .. } | Error::Several { .. }) {
                        // Bad input only if the edited spec is bad on its own.
                        if let Some(Ok(_) | Err(Error::Infeasible { .. })) =
                            self.call("plan(edited)", input, || devaddr::plan(edited))
                        {
                            self.fail(
                                REPLAN_INPUT,
                                call,
                                input,
                                format!("the edited spec plans on its own, the replan says: {e}"),
                            );
                        }
                    }
                }
                None => {}
            }
        }
    }

    fn capacity(&mut self, input: &Input, plan: &Plan, kind: &str) {
        let q = CapacityQuery::new(vec![kind.to_string()], None);
        let s = plan.to_spec();
        match self.call("capacity", input, || {
            devaddr::capacity_with(&s, &q, Options::default())
        }) {
            Some(Ok(_)) => self.outcome("capacity", "ok"),
            Some(Err(e)) => self.judge("capacity", input, &e, true),
            None => {}
        }
    }

    // -----------------------------------------------------------------------------------
    // Cases
    // -----------------------------------------------------------------------------------

    /// One valid spec from the generator, planned; a share edited and replanned, and
    /// asked for capacity.
    fn valid(&mut self, input: &Input, text: &str, r: &mut Rng) {
        let Some((spec, plan)) = self.spec_text(input, text) else {
            return;
        };
        if r.pct(40) {
            let edited = edit(r, &spec);
            let replan_input = Input {
                what: format!("{}, edited for a replan", input.what),
                files: vec![
                    ("replan.yaml".into(), edited.to_yaml().into_bytes()),
                    ("previous.yaml".into(), plan.to_yaml().into_bytes()),
                ],
            };
            self.count_input("replans (edited valid specs)");
            self.replan(&replan_input, &edited, &plan);
        }
        if r.pct(30) {
            let kind = if r.pct(50) && !plan.devices.is_empty() {
                r.pick(&plan.devices).kind.clone()
            } else {
                r.pick(CAPACITY_KINDS).to_string()
            };
            let cap_input = Input::one(
                format!("{}, capacity of {kind}", input.what),
                &format!("capacity-{kind}.yaml"),
                plan.to_yaml().as_bytes(),
            );
            self.count_input("capacity queries");
            self.capacity(&cap_input, &plan, &kind);
        }
    }

    fn run_bytes(&mut self, input: &Input, kind: SeedKind, bytes: &[u8], new_domain: bool) {
        let file = match kind {
            SeedKind::Xml => "fuzz.xml",
            _ => "fuzz.yaml",
        };
        let Some(text) = self.text(input, bytes, file) else {
            return;
        };
        match kind {
            SeedKind::Spec => {
                self.spec_text(input, &text);
            }
            SeedKind::Plan => self.plan_text(input, &text),
            SeedKind::Xml => self.xml_text(input, &text, new_domain),
        }
    }
}

/// The worker process: run the jobs of `campaign` from `from` on, each framed by a start
/// line and a result line on standard output.
fn work(campaign: Campaign, from: usize) {
    let cfg = Config::of(campaign);
    let seeds = seed_inputs();
    let jobs = jobs(&cfg);
    let mut f = Fuzzer::new(cfg.clone());
    for (i, job) in jobs.iter().enumerate().skip(from) {
        println!("{WIRE}start {i}");
        let (input, work, class) = prepare(&cfg, &seeds, job);
        f.res = Results::default();
        f.job(&input, work, class);
        let line = serde_json::to_string(&f.res).expect("results serialize");
        println!("{WIRE}result {i} {line}");
    }
    println!("{WIRE}done");
}

// ---------------------------------------------------------------------------------------
// The supervisor: runs workers, survives hangs and crashes, reports
// ---------------------------------------------------------------------------------------

struct Supervisor {
    cfg: Config,
    seeds: Vec<SeedInput>,
    jobs: Vec<Job>,
    all: Results,
    /// Saved input files.
    saved: usize,
}

enum Ended {
    /// The worker ran every job from where it started.
    Done,
    /// The worker was killed (hang) or died during job `i`: continue after it.
    Lost(usize),
    /// The time budget ran out.
    OutOfTime,
}

impl Supervisor {
    fn new(campaign: Campaign) -> Supervisor {
        let cfg = Config::of(campaign);
        let seeds = seed_inputs();
        let jobs = jobs(&cfg);
        Supervisor {
            cfg,
            seeds,
            jobs,
            all: Results::default(),
            saved: 0,
        }
    }

    fn record(&mut self, f: Failure) {
        let same = self
            .all
            .failures
            .iter()
            .filter(|g| g.class == f.class)
            .count();
        // Save the first 50 of each class, print the first 5 in full, list 200.
        let saved = if same < 50 {
            save_input(&self.cfg.save, &f.class, &f.input)
        } else {
            Vec::new()
        };
        self.saved += saved.len();
        if same < 5 {
            eprintln!(
                "\nFUZZ FAILURE [{}] in {} on {}\n  {}\n  saved: {saved:?}\n{}",
                f.class,
                f.call,
                f.input.what,
                f.message.replace('\n', "\n  "),
                f.input
                    .files
                    .iter()
                    .map(|(s, b)| format!("--- {s}\n{}\n", show(b)))
                    .collect::<String>()
            );
        } else if same < 200 {
            eprintln!(
                "FUZZ FAILURE [{}] in {} on {}: saved {saved:?}",
                f.class, f.call, f.input.what
            );
        }
        self.all.failures.push(f);
    }

    fn merge(&mut self, r: Results) {
        for (k, v) in r.inputs {
            *self.all.inputs.entry(k).or_default() += v;
        }
        for (k, v) in r.outcomes {
            *self.all.outcomes.entry(k).or_default() += v;
        }
        self.all.times.extend(r.times);
        if r.slowest.0 > self.all.slowest.0 {
            self.all.slowest = r.slowest;
        }
        for f in r.failures {
            self.record(f);
        }
    }

    /// A job the worker did not finish: a hang it was killed for, or a crash.
    fn lost(&mut self, i: usize, class: &str, message: String) {
        let (input, _, kind) = prepare(&self.cfg, &self.seeds, &self.jobs[i]);
        *self.all.inputs.entry(kind.to_string()).or_default() += 1;
        self.record(Failure {
            class: class.to_string(),
            call: "worker".into(),
            input,
            message,
        });
    }

    /// Run one worker from job `from` until it finishes, hangs or dies.
    fn run_worker(&mut self, from: usize, start: Instant) -> Ended {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["fuzz_worker", "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1", "-q"])
            .env("DEVADDR_FUZZ_WORKER", self.cfg.campaign.name())
            .env("DEVADDR_FUZZ_FROM", from.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a fuzz worker");
        let (tx, rx) = channel::<String>();
        let out = child.stdout.take().expect("worker stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The worker's stderr: kept (last lines) to explain a crash.
        let err = child.stderr.take().expect("worker stderr");
        let tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let tail_w = tail.clone();
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut t = tail_w.lock().unwrap();
                t.push(line);
                if t.len() > 20 {
                    t.remove(0);
                }
            }
        });
        let mut running: Option<(usize, Instant)> = None;
        let mut finished = false;
        let ended = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let Some(msg) = line.strip_prefix(WIRE) else {
                        continue;
                    };
                    let mut parts = msg.splitn(3, ' ');
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some("start"), Some(i), _) => {
                            running = Some((i.parse().expect("job number"), Instant::now()));
                        }
                        (Some("result"), Some(i), Some(json)) => {
                            let r: Results =
                                serde_json::from_str(json).expect("a worker result line");
                            self.merge(r);
                            running = None;
                            let done = i.parse::<usize>().expect("job number") + 1;
                            if done % 10_000 == 0 {
                                eprintln!(
                                    "fuzz: {done} jobs, {:.0} s, {} failures",
                                    start.elapsed().as_secs_f64(),
                                    self.all.failures.len()
                                );
                            }
                        }
                        (Some("done"), _, _) => finished = true,
                        _ => panic!("unexpected worker line: {line}"),
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some((i, t)) = running {
                        if t.elapsed() > self.cfg.watchdog {
                            let _ = child.kill();
                            let _ = child.wait();
                            self.lost(
                                i,
                                HANG,
                                format!(
                                    "still running after {:?} (watchdog); worker killed",
                                    self.cfg.watchdog
                                ),
                            );
                            break Ended::Lost(i);
                        }
                    }
                    if self.cfg.max_time.is_some_and(|m| start.elapsed() > m) {
                        let _ = child.kill();
                        let _ = child.wait();
                        eprintln!(
                            "fuzz: stopping after {:.0} s (DEVADDR_FUZZ_MAX_SECS)",
                            start.elapsed().as_secs_f64()
                        );
                        break Ended::OutOfTime;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait for the worker");
                    let _ = err_reader.join();
                    if finished && status.success() {
                        break Ended::Done;
                    }
                    let stderr = tail.lock().unwrap().join("\n");
                    let Some((i, _)) = running else {
                        panic!("the fuzz worker failed outside a job ({status}):\n{stderr}");
                    };
                    self.lost(
                        i,
                        ABORT,
                        format!("the worker process died ({status}):\n{stderr}"),
                    );
                    break Ended::Lost(i);
                }
            }
        };
        ended
    }

    fn campaign(&mut self) {
        let start = Instant::now();
        let mut from = 0;
        while from < self.jobs.len() {
            match self.run_worker(from, start) {
                Ended::Done | Ended::OutOfTime => break,
                Ended::Lost(i) => from = i + 1,
            }
        }
        self.summary(start.elapsed());
    }

    fn summary(&self, elapsed: Duration) {
        let r = &self.all;
        let mut t = r.times.clone();
        t.sort_unstable();
        let q = |q: f64| -> f64 {
            if t.is_empty() {
                0.0
            } else {
                f64::from(t[((t.len() - 1) as f64 * q).round() as usize]) / 1000.0
            }
        };
        let runs: u64 = r.inputs.values().sum();
        let mut out = format!(
            "\n==== devaddr fuzz: {} campaign ====\nseed {:#x}, {runs} inputs in {:.1} s ({} \
             build), hang threshold {:?}, watchdog {:?}\ninputs:\n",
            self.cfg.campaign.name(),
            self.cfg.seed,
            elapsed.as_secs_f64(),
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            self.cfg.hang,
            self.cfg.watchdog,
        );
        for (k, v) in &r.inputs {
            out += &format!("  {k:<32} {v}\n");
        }
        out += &format!(
            "library calls: {}, median {:.3} ms, p99 {:.3} ms, max {:.1} ms ({})\noutcomes:\n",
            t.len(),
            q(0.5),
            q(0.99),
            r.slowest.0 as f64 / 1000.0,
            r.slowest.1
        );
        for (k, v) in &r.outcomes {
            out += &format!("  {k:<44} {v}\n");
        }
        out += "failures:\n";
        for class in CLASSES {
            let n = r.failures.iter().filter(|f| f.class == *class).count();
            out += &format!("  {class:<44} {n}\n");
        }
        if self.saved > 0 {
            out += &format!(
                "failing inputs saved under {} (copy one into tests/fuzz-regressions/ to \
                 replay it in every run)\n",
                self.cfg.save.display()
            );
        }
        eprintln!("{out}");
    }

    fn finish(self) {
        if self.all.failures.is_empty() {
            return;
        }
        let mut by_class: BTreeMap<&str, Vec<&Failure>> = BTreeMap::new();
        for f in &self.all.failures {
            by_class.entry(&f.class).or_default().push(f);
        }
        let mut msg = format!("{} fuzz failure(s):\n", self.all.failures.len());
        for (class, fs) in by_class {
            msg += &format!("[{class}] {}\n", fs.len());
            for f in fs.iter().take(10) {
                let first = f.message.lines().next().unwrap_or("");
                msg += &format!("  {} on {}: {first}\n", f.call, f.input.what);
            }
        }
        panic!("{msg}");
    }
}

/// What changed between two YAML texts, line by line (first differences only).
fn diff(a: &str, b: &str) -> String {
    let (al, bl): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let mut out = Vec::new();
    for i in 0..al.len().max(bl.len()) {
        let (x, y) = (al.get(i).copied(), bl.get(i).copied());
        if x != y {
            out.push(format!(
                "  line {}: - {}\n           + {}",
                i + 1,
                x.unwrap_or("<none>"),
                y.unwrap_or("<none>")
            ));
        }
        if out.len() >= 8 {
            break;
        }
    }
    out.join("\n")
}

// ---------------------------------------------------------------------------------------
// Replan edits
// ---------------------------------------------------------------------------------------

const CAPACITY_KINDS: &[&str] = &[
    "virtio-net",
    "virtio-blk",
    "e1000",
    "nvme",
    "usb-tablet",
    "sata-disk",
    "scsi-disk",
];

/// Remove some devices of `spec`, add a few new ones (taken from another generated spec
/// for the same machine), and give some new ones a NUMA node or a hotplug requirement.
fn edit(r: &mut Rng, spec: &Spec) -> Spec {
    let mut edited = spec.clone();
    let remove_pct = *r.pick(&[0u64, 10, 30, 60]);
    edited.devices.retain(|_| !r.pct(remove_pct));
    // Donor devices: the first generated spec (of a few seeds) with the same machine.
    let donor = (0..16)
        .map(|k| {
            specgen::spec(
                r.next() ^ k,
                Sizes {
                    min_devices: 1,
                    max_devices: 12,
                    max_nodes: 4,
                },
            )
        })
        .filter_map(|t| Spec::parse(&t, "donor.yaml").ok())
        .find(|d| d.machine == spec.machine);
    let nodes = spec.effective_policy().numa_nodes;
    if let Some(donor) = donor {
        let add = r.range(0, 4) as usize;
        for (k, d) in donor.devices.iter().take(add).enumerate() {
            let mut n = DeviceEntry {
                id: format!("new{k}_{}", d.id),
                kind: d.kind.clone(),
                hotplug: d.hotplug,
                bus: d.bus,
                ..Default::default()
            };
            if r.pct(30) && nodes > 0 {
                n.numa_node = Some(r.range(0, u64::from(nodes) - 1) as u32);
            }
            if r.pct(30) {
                n.hotplug = Some(r.pct(50));
            }
            edited.devices.push(n);
        }
    }
    edited
}

/// The same address, ignoring the `multifunction` flag of a PCI address (a slot that gains
/// a second function gets `multifunction: true` on function 0 without moving anything).
fn same_place(a: &Option<devaddr::Address>, b: &Option<devaddr::Address>) -> bool {
    let strip = |a: &Option<devaddr::Address>| match a {
        Some(devaddr::Address::Pci(p)) => Some(devaddr::Address::Pci(devaddr::PciAddress {
            multifunction: None,
            ..*p
        })),
        other => other.clone(),
    };
    strip(a) == strip(b)
}

/// Kept devices (same id and kind in both) whose address changed: without moves none
/// may, with moves each must be listed with its old and new address; and no listed move
/// may leave the device where it was.
fn kept_moved(previous: &Plan, next: &Plan, moves: &[devaddr::Move], allow: bool) -> Vec<String> {
    let mut out = Vec::new();
    for d in &next.devices {
        let Some(p) = previous
            .devices
            .iter()
            .find(|p| p.id == d.id && p.kind == d.kind)
        else {
            continue;
        };
        if same_place(&p.address, &d.address) {
            continue;
        }
        let listed = moves
            .iter()
            .any(|m| m.id == d.id && Some(&m.from) == p.address.as_ref() && m.to == d.address);
        if !allow || !listed {
            out.push(format!(
                "{}: {:?} -> {:?}{}",
                d.id,
                p.address,
                d.address,
                if allow { " (not listed in moves)" } else { "" }
            ));
        }
    }
    // A listed move must move something.
    for m in moves {
        if same_place(&Some(m.from.clone()), &m.to) {
            out.push(format!(
                "{}: listed as moved ({}) but stays at {}",
                m.id, m.reason, m.from
            ));
        }
    }
    if !allow {
        for c in &previous.controllers {
            match next.controllers.iter().find(|n| n.id == c.id) {
                Some(n) if n.index == c.index && same_place(&n.address, &c.address) => {}
                Some(n) => out.push(format!(
                    "controller {}: index {} {:?} -> index {} {:?}",
                    c.id, c.index, c.address, n.index, n.address
                )),
                None => out.push(format!("controller {} was dropped", c.id)),
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Seeds and mutations
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum SeedKind {
    Spec,
    Plan,
    Xml,
}

struct SeedInput {
    name: String,
    kind: SeedKind,
    bytes: Vec<u8>,
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The seed inputs: specs of the repository, plans of the smallest few, libvirt domains
/// of the shared corpus (read in place).
fn seed_inputs() -> Vec<SeedInput> {
    let mut seeds = Vec::new();
    let mut specs = files(&Path::new(MANIFEST).join("examples"), ".yaml");
    specs.extend(files(
        &Path::new(MANIFEST).join("tests/qemu-specs"),
        ".yaml",
    ));
    for p in &specs {
        seeds.push(SeedInput {
            name: p.strip_prefix(MANIFEST).unwrap_or(p).display().to_string(),
            kind: SeedKind::Spec,
            bytes: std::fs::read(p).expect("read a seed spec"),
        });
    }
    // Plans of the six smallest specs.
    let mut small: Vec<&SeedInput> = seeds.iter().collect();
    small.sort_by_key(|s| s.bytes.len());
    let plans: Vec<SeedInput> = small
        .iter()
        .take(6)
        .filter_map(|s| {
            let spec = Spec::parse(&String::from_utf8_lossy(&s.bytes), &s.name).ok()?;
            let plan = devaddr::plan(&spec).ok()?;
            Some(SeedInput {
                name: format!("plan of {}", s.name),
                kind: SeedKind::Plan,
                bytes: plan.to_yaml().into_bytes(),
            })
        })
        .collect();
    assert!(!plans.is_empty(), "no seed spec plans");
    seeds.extend(plans);
    // Domains of the repository (hints among them).
    for p in files(&Path::new(MANIFEST).join("examples"), ".xml") {
        seeds.push(SeedInput {
            name: p.strip_prefix(MANIFEST).unwrap_or(&p).display().to_string(),
            kind: SeedKind::Xml,
            bytes: std::fs::read(&p).expect("read an example domain"),
        });
    }
    let xml = files(Path::new(LIBVIRT_CORPUS), ".in.xml");
    if xml.is_empty() {
        eprintln!(
            "fuzz: no libvirt domains in {LIBVIRT_CORPUS} (the shared corpus is absent); \
             skipping the XML seeds"
        );
    }
    for p in xml {
        seeds.push(SeedInput {
            name: format!(
                "corpus/libvirt/{}",
                p.file_name().unwrap().to_string_lossy()
            ),
            kind: SeedKind::Xml,
            bytes: std::fs::read(&p).expect("read a corpus domain"),
        });
    }
    seeds
}

const BOUNDARY: &[&str] = &[
    "0",
    "1",
    "7",
    "8",
    "31",
    "32",
    "63",
    "64",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "4294967295",
    "4294967296",
    "-1",
    "18446744073709551615",
    "99999999999999999999999999",
    "0x100",
    "0xffffffff",
    "1e9",
    ".inf",
    "-0",
];

const INTERESTING: &[u8] = b"{}[]:,-'\"<>&;/\\\n\t #!*?|%@`=0123456789";

const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xc3",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xfe\xfe",
    b"\xef\xbb\xbf", // a BOM (valid UTF-8, unusual mid-text)
];

const XML_ENTITIES: &[&str] = &[
    "&amp;",
    "&lt;",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "&#65;",
    "&undefined;",
    "&",
    "&#;",
    "<![CDATA[x]]>",
    "<!-- c -->",
    "<?pi x?>",
    "]]>",
];

const XML_PROLOGUE: &[&str] = &[
    "<?xml version='1.0'?>\n",
    "<!DOCTYPE domain [<!ENTITY e 'virtio'>]>\n",
    "<!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]>\n",
    "\u{feff}",
];

const YAML_SPECIALS: &[&str] = &[
    "&a ",
    "*a",
    "<<: *a\n",
    "!!binary ",
    "!tag ",
    "? ",
    "|\n",
    ">-\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "~",
    "null",
    "{",
    "[",
    "'",
    "\"\\u0000\"",
    "a: &a [*a]\n",
    "x: &x [1,1,1,1,1,1,1,1,1]\ny: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x]\nz: &z [*y,*y,*y,*y,*y,*y,*y,*y,*y]\n",
];

const TOKENS: &[&str] = &[
    "machine",
    "q35",
    "pc",
    "pc-i440fx",
    "virt",
    "pc-q35-9.2",
    "policy",
    "preset",
    "libvirt",
    "dense",
    "numa",
    "hotplug-ready",
    "hotplug_reserve",
    "hotplug_reserve_per_node",
    "numa_nodes",
    "prefer",
    "pcie",
    "pci",
    "multifunction",
    "pack",
    "group",
    "off",
    "root_port_hotplug",
    "devices",
    "controllers",
    "id",
    "kind",
    "numa_node",
    "hotplug",
    "bus",
    "slot",
    "function",
    "domain",
    "address",
    "type",
    "drive",
    "usb",
    "port",
    "controller",
    "target",
    "unit",
    "order",
    "ports",
    "host",
    "index",
    "model",
    "chassis",
    "chassis_nr",
    "bus_nr",
    "builtin",
    "virtio-net",
    "virtio-blk",
    "e1000",
    "e1000e",
    "nvme",
    "vfio-pci",
    "qemu-xhci",
    "usb-tablet",
    "sata-disk",
    "scsi-disk",
    "virtio-scsi",
    "ich9-ahci",
    "piix3-uhci",
    "pcie-root-port",
    "pcie-root",
    "pci-root",
    "pci-bridge",
    "pcie-to-pci-bridge",
    "pcie-expander-bus",
    "pxb-pcie",
    "pci-expander-bus",
    "dmi-to-pci-bridge",
    "pcie-switch-upstream-port",
    "pcie-switch-downstream-port",
    "true",
    "false",
    "yes",
    "no",
    "on",
    "interface",
    "disk",
    "hostdev",
    "video",
    "sound",
    "memballoon",
    "rng",
    "input",
    "redirdev",
    "serial",
    "console",
    "channel",
    "virtio",
    "virtio-serial",
    "ide",
    "sata",
    "scsi",
    "xhci",
    "nec-xhci",
    "ich9-ehci1",
    "none",
    "primary",
    "multifunction='on'",
    "x86_64",
    "aarch64",
    "i686",
    "ppc64",
    "s390x",
    "dev",
    "vda",
    "sda",
    "hda",
    "hdz",
    "sdzzz",
    "vdaaaaaaa",
];

/// Mutate `base`: one to four stacked operations, named for the report.
fn mutate(r: &mut Rng, base: &SeedInput, seeds: &[SeedInput]) -> (Vec<u8>, Vec<&'static str>) {
    let mut b = base.bytes.clone();
    let n = *r.pick(&[1, 1, 1, 2, 2, 3, 4]);
    let mut ops = Vec::new();
    let xml = base.kind == SeedKind::Xml;
    for _ in 0..n {
        let op = r.range(0, 15);
        let pos = if b.is_empty() {
            0
        } else {
            r.next() as usize % (b.len() + 1)
        };
        let name = match op {
            0 => {
                if !b.is_empty() {
                    let i = pos.min(b.len() - 1);
                    b[i] ^= 1 << r.range(0, 7);
                }
                "flip"
            }
            1 => {
                let byte = if r.pct(70) {
                    *r.pick(INTERESTING)
                } else {
                    r.next() as u8
                };
                b.insert(pos, byte);
                "insert-byte"
            }
            2 => {
                let len = (r.log_range(1, 64) as usize).min(b.len() - pos.min(b.len()));
                b.drain(pos..pos + len);
                "delete-bytes"
            }
            3 => {
                let mut lines = split_lines(&b);
                if !lines.is_empty() {
                    let i = r.next() as usize % lines.len();
                    let times = if r.pct(90) {
                        1
                    } else {
                        r.log_range(2, 3000) as usize
                    };
                    let l = lines[i].clone();
                    for _ in 0..times {
                        lines.insert(i, l.clone());
                    }
                    b = lines.concat();
                }
                "dup-line"
            }
            4 => {
                let mut lines = split_lines(&b);
                if !lines.is_empty() {
                    let i = r.next() as usize % lines.len();
                    let k = (r.range(1, 4) as usize).min(lines.len() - i);
                    lines.drain(i..i + k);
                    b = lines.concat();
                }
                "delete-lines"
            }
            5 => {
                let mut lines = split_lines(&b);
                if lines.len() >= 2 {
                    let i = r.next() as usize % lines.len();
                    let j = r.next() as usize % lines.len();
                    lines.swap(i, j);
                    b = lines.concat();
                }
                "swap-lines"
            }
            6 => {
                // Splice: a prefix of this input and a suffix of another (mostly of the
                // same kind).
                let others: Vec<&SeedInput> = if r.pct(80) {
                    seeds.iter().filter(|s| s.kind == base.kind).collect()
                } else {
                    seeds.iter().collect()
                };
                let o = &others[r.next() as usize % others.len()].bytes;
                let j = if o.is_empty() {
                    0
                } else {
                    r.next() as usize % o.len()
                };
                b.truncate(pos);
                b.extend_from_slice(&o[j..]);
                "splice"
            }
            7 | 8 => {
                let nums = number_spans(&b);
                if !nums.is_empty() {
                    let (s, e) = nums[r.next() as usize % nums.len()];
                    let v = r.pick(BOUNDARY).as_bytes();
                    b.splice(s..e, v.iter().copied());
                }
                "boundary-number"
            }
            9 => {
                let depth = *r.pick(&[10usize, 63, 64, 65, 255, 256, 257, 1000, 100_000]);
                let (open, close): (&[u8], &[u8]) = if xml {
                    (b"<a>", b"</a>")
                } else if r.pct(50) {
                    (b"[", b"]")
                } else {
                    (b"{a: ", b"}")
                };
                let mut ins = Vec::with_capacity(depth * (open.len() + close.len()));
                for _ in 0..depth {
                    ins.extend_from_slice(open);
                }
                if r.pct(80) {
                    for _ in 0..depth {
                        ins.extend_from_slice(close);
                    }
                }
                b.splice(pos..pos, ins);
                "deep-nesting"
            }
            10 => {
                let bad = *r.pick(INVALID_UTF8);
                b.splice(pos..pos, bad.iter().copied());
                "invalid-utf8"
            }
            11 => {
                b.insert(pos, 0);
                "nul"
            }
            12 => {
                if xml {
                    if r.pct(30) {
                        let p = r.pick(XML_PROLOGUE).as_bytes();
                        let at = if b.starts_with(b"<?xml") {
                            b.iter().position(|&c| c == b'\n').map_or(0, |i| i + 1)
                        } else {
                            0
                        };
                        b.splice(at..at, p.iter().copied());
                    } else {
                        let e = r.pick(XML_ENTITIES).as_bytes();
                        b.splice(pos..pos, e.iter().copied());
                    }
                } else {
                    let e = r.pick(YAML_SPECIALS).as_bytes();
                    b.splice(pos..pos, e.iter().copied());
                }
                "entities"
            }
            13 | 14 => {
                let words = word_spans(&b);
                if !words.is_empty() {
                    let (s, e) = words[r.next() as usize % words.len()];
                    let t = r.pick(TOKENS).as_bytes();
                    b.splice(s..e, t.iter().copied());
                }
                "token"
            }
            _ => {
                b.truncate(pos);
                "truncate"
            }
        };
        ops.push(name);
    }
    (b, ops)
}

fn split_lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Byte ranges of numbers (decimal, or 0x-hex).
fn number_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let s = i;
            if b[i] == b'0' && b.get(i + 1).is_some_and(|&c| c == b'x' || c == b'X') {
                i += 2;
                while i < b.len() && b[i].is_ascii_hexdigit() {
                    i += 1;
                }
            } else {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            v.push((s, i));
        } else {
            i += 1;
        }
    }
    v
}

/// Byte ranges of words (letters, digits, `_`, `-`) that start with a letter.
fn word_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() && (i == 0 || !word(b[i - 1])) {
            let s = i;
            while i < b.len() && word(b[i]) {
                i += 1;
            }
            v.push((s, i));
        } else {
            i += 1;
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------

/// The short campaign of every `cargo test`: the regression corpus, then 300 small valid
/// specs and 3000 mutations (fixed seed).
#[test]
fn fuzz_short_campaign() {
    let mut s = Supervisor::new(Campaign::Short);
    s.campaign();
    s.finish();
}

/// The long campaign: `DEVADDR_FUZZ_CASES=1000000 cargo test --release --test fuzz --
/// --ignored --nocapture fuzz_long_campaign`.
#[test]
#[ignore = "long campaign: cargo test --release --test fuzz -- --ignored"]
fn fuzz_long_campaign() {
    let mut s = Supervisor::new(Campaign::Long);
    s.campaign();
    s.finish();
}

/// The worker process the campaigns start (this binary again, with
/// `DEVADDR_FUZZ_WORKER` set); without it, as part of `--ignored`, there is nothing to do.
#[test]
#[ignore = "worker process of the fuzz campaigns, started by them"]
fn fuzz_worker() {
    let Ok(which) = std::env::var("DEVADDR_FUZZ_WORKER") else {
        return;
    };
    let campaign = match which.as_str() {
        "short" => Campaign::Short,
        "long" => Campaign::Long,
        other => panic!("DEVADDR_FUZZ_WORKER={other}: expected short or long"),
    };
    let from = env_u64("DEVADDR_FUZZ_FROM").unwrap_or(0) as usize;
    work(campaign, from);
}
