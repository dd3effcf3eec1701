//! The `devaddr` command line: parse arguments, call the library, print. Exit codes:
//! 0 ok, 1 infeasible or check findings, 2 bad input or usage. Errors go to stderr as
//! `error: …` lines, or with `--error-format json` as one JSON report
//! ([`devaddr::report::Report`]).

use clap::{Parser, Subcommand, ValueEnum};
use devaddr::formats::{self, Format};
use devaddr::input::Kind;
use devaddr::report::Report;
use devaddr::{Catalog, Error, Spec};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "devaddr",
    version,
    about = "Plan device addresses for QEMU/KVM guests"
)]
struct Cli {
    /// Use the hardware catalog in DIR (laid out like models/) instead of the built-in one.
    #[arg(long, global = true, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Search budget of each integer program (deterministic: branch-and-bound nodes
    /// times program size). A plan found at the limit is returned with `solver: {status:
    /// feasible, gap}`; with none found the command exits 1 and says so.
    #[arg(long, global = true, value_name = "UNITS", default_value_t = devaddr::WorkLimit::DEFAULT.0)]
    work_limit: u64,
    /// How errors are written on stderr: `text` (`error: …` lines) or `json` (one line:
    /// `{"errors": [{"kind", "code", "location", "message", …}]}`).
    #[arg(long, global = true, value_enum, default_value = "text")]
    error_format: ErrorFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Plan a spec (YAML or JSON) or a libvirt domain XML (`-` for stdin; the kind is
    /// detected from the content) into a fully addressed topology.
    Plan {
        /// The spec or domain.
        spec: String,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Output format (default: yaml for a spec, libvirt for a domain XML).
        #[arg(long, value_enum)]
        format: Option<OutFormat>,
        /// Override the spec's policy preset.
        #[arg(long, value_enum)]
        policy: Option<PresetArg>,
        /// Input format (default: detected from the content).
        #[arg(long, value_enum)]
        input_format: Option<InFormat>,
        /// libvirt input: address like `virsh define` of a new domain (USB ports, hubs).
        #[arg(long)]
        new_domain: bool,
        /// Replan keeping every address and controller of this previous plan.
        #[arg(long, value_name = "PLAN")]
        previous: Option<String>,
        /// With --previous: move the fewest devices needed instead of failing (moves are
        /// listed on stderr).
        #[arg(long, requires = "previous")]
        allow_moves: bool,
    },
    /// Place new devices into a running guest: nothing moves, no controller is added that
    /// cannot be attached live.
    Hotplug {
        /// The running guest's plan, or its libvirt domain XML (`virsh dumpxml`).
        plan: String,
        /// The devices to add: YAML/JSON (a list of devices, or `devices:` with one), or
        /// device XML as `virsh attach-device` takes it (with a domain).
        #[arg(long, value_name = "DEVICES")]
        add: String,
        /// Output: the updated plan (yaml/json); for a plan, just the new devices as
        /// libvirt device XML (for `virsh attach-device --live`) or QMP commands (qemu);
        /// for a domain, libvirt is the whole domain with the new devices addressed.
        #[arg(long, value_enum, default_value = "yaml")]
        format: HotplugFormat,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// With --format libvirt: write one DIR/ID.xml per new device (device XML for
        /// `virsh attach-device --live`).
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
    /// How many more devices of each kind fit: now (live) and at next boot.
    Capacity {
        /// A spec (planned first), a plan, or a libvirt domain XML (counted under
        /// libvirt's rules).
        input: String,
        /// Device kind to ask about (repeatable; default: the machine's representative set).
        #[arg(long = "kind", value_name = "KIND")]
        kinds: Vec<String>,
        /// Only this NUMA node.
        #[arg(long)]
        node: Option<u32>,
        /// Show only what fits now in the running guest.
        #[arg(long)]
        live: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: CapacityFormat,
    },
    /// Verify a plan (or any fully addressed spec); exit 1 with the findings.
    Check { plan: String },
    /// List the catalog, or show one machine, controller model or device kind.
    Models { name: Option<String> },
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum OutFormat {
    Yaml,
    Json,
    Tree,
    Qemu,
    Libvirt,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum HotplugFormat {
    Yaml,
    Json,
    Libvirt,
    Qemu,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum CapacityFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum InFormat {
    Spec,
    Libvirt,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum ErrorFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    Libvirt,
    HotplugReady,
    Numa,
    Dense,
}

fn main() -> ExitCode {
    // Known before the arguments are parsed, so that usage errors follow it too.
    let json = json_errors_requested(std::env::args());
    if json {
        std::panic::set_hook(Box::new(|info| {
            let report = Report::internal("panic", format!("devaddr panicked: {info}"));
            eprint!("{}", report.to_json());
        }));
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(0);
            }
            if json {
                eprint!("{}", usage_report(&e).to_json());
            } else {
                let _ = e.print();
            }
            return ExitCode::from(2);
        }
    };
    let format = cli.error_format;
    match run(cli, format) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let report = e.report();
            if format == ErrorFormat::Json {
                eprint!("{}", report.to_json());
            } else {
                eprint!("{}", report.to_text());
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// Whether the command line asks for JSON errors (read before clap, which may fail).
fn json_errors_requested(args: impl Iterator<Item = String>) -> bool {
    let args: Vec<String> = args.collect();
    args.iter().enumerate().any(|(i, a)| {
        a == "--error-format=json"
            || (a == "--error-format" && args.get(i + 1).is_some_and(|v| v == "json"))
    })
}

/// A clap usage error as a report: a code for its kind, its first sentence (and tips),
/// and the argument it concerns.
fn usage_report(e: &clap::Error) -> Report {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let code = match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::InvalidUtf8 => {
            "invalid-value"
        }
        ErrorKind::UnknownArgument => "unknown-argument",
        ErrorKind::InvalidSubcommand => "unknown-command",
        ErrorKind::MissingRequiredArgument => "missing-argument",
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "missing-command"
        }
        ErrorKind::ArgumentConflict => "conflicting-arguments",
        ErrorKind::TooManyValues | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            "wrong-number-of-values"
        }
        _ => "usage",
    };
    let message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        "a command is required; run `devaddr --help` for the list".to_string()
    } else {
        let text = e.render().to_string();
        let text = text.strip_prefix("error: ").unwrap_or(&text);
        let head = text.split("\n\nUsage:").next().unwrap_or(text);
        head.split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let argument = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.split_whitespace().next().map(str::to_string),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    Report::usage(code, message, argument)
}

fn read_input(path: &str) -> Result<String, Error> {
    devaddr::input::read(path)
}

/// How an input path is named in messages (`<stdin>` for `-`).
fn shown(path: &str) -> &str {
    devaddr::input::display_name(path)
}

/// A plan whose search stopped at the work limit is valid and verified, but not proven
/// the best: say so on stderr.
fn warn_if_unproven(plan: &devaddr::Plan, limit: devaddr::WorkLimit) {
    use devaddr::topology::SolverStatus;
    if let Some(r) = plan.devaddr.solver {
        if r.status == SolverStatus::Feasible {
            let gap = r.gap.map_or(0.0, |g| g.0 as f64 / 100.0);
            eprintln!(
                "warning: the search reached its work limit ({}) before proving this \
                 plan the best (gap {gap:.2} %); it is valid and verified. Raise --work-limit \
                 for a proof.",
                limit.0
            );
        }
    }
}

fn run(cli: Cli, error_format: ErrorFormat) -> Result<u8, Error> {
    let owned;
    let work_limit = devaddr::WorkLimit(cli.work_limit);
    let catalog: &Catalog = match &cli.models {
        Some(dir) => {
            owned = Catalog::from_dir(dir)?;
            &owned
        }
        None => Catalog::embedded(),
    };
    match cli.cmd {
        Cmd::Plan {
            spec,
            output,
            format,
            policy,
            input_format,
            new_domain,
            previous,
            allow_moves,
        } => {
            let text = read_input(&spec)?;
            let name = shown(&spec);
            let xml = match input_format {
                Some(f) => f == InFormat::Libvirt,
                None => {
                    devaddr::input::detect(&text, name, "a spec, a plan or a libvirt <domain>")?
                        == Kind::Domain
                }
            };
            if xml {
                if previous.is_some() {
                    return Err(Error::input(
                        "--previous",
                        "a libvirt domain keeps its addresses by itself: plan the domain \
                         without --previous (--previous replans a spec)",
                    ));
                }
                let opts = devaddr::libvirt::LibvirtOptions { new_domain };
                let engine = devaddr::Options::default()
                    .with_catalog(catalog)
                    .with_work_limit(work_limit);
                let fmt = match format {
                    None | Some(OutFormat::Libvirt) => {
                        let out = devaddr::libvirt::plan_domain_with(&text, name, &opts, engine)?;
                        write_out(output.as_ref(), &out)?;
                        return Ok(0);
                    }
                    Some(OutFormat::Qemu) => {
                        return Err(Error::input(
                            "--format",
                            "the QEMU command line of a libvirt domain is libvirt's to write \
                             (`virsh domxml-to-native qemu-argv`); expected --format libvirt, \
                             yaml, json or tree",
                        ))
                    }
                    Some(OutFormat::Yaml) => Format::Yaml,
                    Some(OutFormat::Json) => Format::Json,
                    Some(OutFormat::Tree) => Format::Tree,
                };
                let dp = devaddr::libvirt::domain_plan_with(&text, name, &opts, engine)?;
                write_out(
                    output.as_ref(),
                    &formats::render(&dp.plan, fmt, &dp.catalog),
                )?;
                return Ok(0);
            }
            let mut s = Spec::parse(&text, name)?;
            if let Some(p) = policy {
                s.policy.preset = Some(match p {
                    PresetArg::Libvirt => devaddr::spec::Preset::Libvirt,
                    PresetArg::HotplugReady => devaddr::spec::Preset::HotplugReady,
                    PresetArg::Numa => devaddr::spec::Preset::Numa,
                    PresetArg::Dense => devaddr::spec::Preset::Dense,
                });
            }
            let opts = devaddr::Options::default()
                .with_catalog(catalog)
                .with_work_limit(work_limit);
            let plan = match &previous {
                None => devaddr::plan_with(&s, opts).map_err(|e| e.in_source(name, &text))?,
                Some(prev) => {
                    let text = read_input(prev)?;
                    let before = devaddr::Plan::parse(&text, shown(prev))?;
                    let r = devaddr::replan_with(&s, &before, allow_moves, opts).map_err(|e| {
                        e.in_file_by(|location| {
                            let about_previous = location.path.as_deref() == Some("previous plan");
                            shown(if about_previous { prev } else { &spec }).to_string()
                        })
                    })?;
                    for m in &r.moves {
                        eprintln!(
                            "moved {}: {} -> {} ({})",
                            m.id,
                            m.from,
                            m.to.as_ref().map_or("-".to_string(), |a| a.to_string()),
                            m.reason
                        );
                    }
                    r.plan
                }
            };
            warn_if_unproven(&plan, work_limit);
            let fmt = match format.unwrap_or(OutFormat::Yaml) {
                OutFormat::Libvirt => {
                    let text = devaddr::libvirt::plan_to_domain(&plan, catalog)?;
                    write_out(output.as_ref(), &text)?;
                    return Ok(0);
                }
                OutFormat::Yaml => Format::Yaml,
                OutFormat::Json => Format::Json,
                OutFormat::Tree => Format::Tree,
                OutFormat::Qemu => Format::Qemu,
            };
            let text = formats::render(&plan, fmt, catalog);
            write_out(output.as_ref(), &text)?;
            Ok(0)
        }
        Cmd::Hotplug {
            plan,
            add,
            format,
            output,
            output_dir,
        } => {
            let plan_text = read_input(&plan)?;
            let add_text = read_input(&add)?;
            let (plan, add) = (shown(&plan).to_string(), shown(&add).to_string());
            let opts = devaddr::Options::default()
                .with_catalog(catalog)
                .with_work_limit(work_limit);
            let what = "a plan or a libvirt <domain>";
            if devaddr::input::detect(&plan_text, &plan, what)? == Kind::Domain {
                let h = devaddr::libvirt::hotplug_domain_with(
                    &plan_text, &plan, &add_text, &add, opts,
                )?;
                let text = match format {
                    HotplugFormat::Libvirt => {
                        if let Some(dir) = &output_dir {
                            return write_dir(dir, &h.added);
                        }
                        h.xml
                    }
                    HotplugFormat::Yaml | HotplugFormat::Json => {
                        let dp = devaddr::libvirt::domain_plan_with(
                            &h.xml,
                            &plan,
                            &Default::default(),
                            opts,
                        )?;
                        if format == HotplugFormat::Yaml {
                            dp.plan.to_yaml()
                        } else {
                            dp.plan.to_json()
                        }
                    }
                    HotplugFormat::Qemu => {
                        return Err(Error::input(
                            "--format",
                            "libvirt hot-adds the devices of a libvirt domain (`virsh \
                             attach-device --live`); expected --format libvirt, yaml or json",
                        ))
                    }
                };
                write_out(output.as_ref(), &text)?;
                return Ok(0);
            }
            if add_text.trim_start().starts_with('<') {
                return Err(Error::input(
                    add.clone(),
                    "device XML goes with a libvirt domain; for a plan, expected YAML/JSON \
                     device entries (a list, or `devices:` with one)",
                ));
            }
            let before = devaddr::Plan::parse(&plan_text, &plan)?;
            let devices = devaddr::spec::parse_devices(&add_text, &add)?;
            // Errors about the devices to add name that file, the rest the plan.
            let h = devaddr::hotplug_with(&before, &devices, opts).map_err(|e| {
                e.in_file_by(|location| {
                    let about_add = location
                        .path
                        .as_deref()
                        .is_some_and(|p| p.starts_with("add["));
                    if about_add { &add } else { &plan }.clone()
                })
            })?;
            let text = match format {
                HotplugFormat::Yaml => h.plan.to_yaml(),
                HotplugFormat::Json => h.plan.to_json(),
                HotplugFormat::Qemu => formats::qemu::hotplug_commands(&h.plan, catalog, &h.added)
                    .into_iter()
                    .map(|l| l + "\n")
                    .collect(),
                HotplugFormat::Libvirt => {
                    let xml = devaddr::libvirt::device_xml(&h.plan, catalog, &h.added)?;
                    if let Some(dir) = &output_dir {
                        return write_dir(dir, &xml);
                    }
                    xml.into_iter().map(|(_, x)| x).collect()
                }
            };
            write_out(output.as_ref(), &text)?;
            Ok(0)
        }
        Cmd::Capacity {
            input,
            kinds,
            node,
            live,
            format,
        } => {
            let text = read_input(&input)?;
            let input = shown(&input);
            let q = devaddr::CapacityQuery::new(kinds, node);
            let opts = devaddr::Options::default()
                .with_catalog(catalog)
                .with_work_limit(work_limit);
            let what = "a spec, a plan or a libvirt <domain>";
            let rows = if devaddr::input::detect(&text, input, what)? == Kind::Domain {
                devaddr::libvirt::capacity_domain_with(&text, input, &q, opts)?
            } else {
                let s = Spec::parse(&text, input)?;
                devaddr::capacity_with(&s, &q, opts).map_err(|e| e.in_source(input, &text))?
            };
            let text = match format {
                CapacityFormat::Json => {
                    let mut t = serde_json::to_string_pretty(&rows).unwrap_or_default();
                    t.push('\n');
                    t
                }
                CapacityFormat::Table => formats::capacity_table(&rows, live),
            };
            write_out(None, &text)?;
            Ok(0)
        }
        Cmd::Check { plan } => {
            let text = read_input(&plan)?;
            let plan = shown(&plan);
            let what = "a plan, a fully addressed spec or a libvirt <domain>";
            if devaddr::input::detect(&text, plan, what)? == Kind::Domain {
                let engine = devaddr::Options::default()
                    .with_catalog(catalog)
                    .with_work_limit(work_limit);
                let findings = devaddr::libvirt::check_domain_with(&text, plan, engine)?;
                return Ok(report_findings(plan, &findings, error_format));
            }
            let s = Spec::parse(&text, plan)?;
            let findings =
                devaddr::check_with(&s, catalog).map_err(|e| e.in_source(plan, &text))?;
            Ok(report_findings(plan, &findings, error_format))
        }
        Cmd::Models { name } => {
            print!("{}", formats::models::render(catalog, name.as_deref())?);
            Ok(0)
        }
    }
}

/// `FILE: ok` on stdout (exit 0), or the findings on stderr (exit 1): one `FILE: finding`
/// line each, or a JSON report of kind `check`.
fn report_findings(file: &str, findings: &[devaddr::Finding], format: ErrorFormat) -> u8 {
    if findings.is_empty() {
        println!("{file}: ok");
        return 0;
    }
    let report = Report::from_findings(file, findings);
    if format == ErrorFormat::Json {
        eprint!("{}", report.to_json());
    } else {
        for f in findings {
            eprintln!("{file}: {f}");
        }
    }
    1
}

/// Write each `(id, text)` to DIR/ID.xml.
fn write_dir(dir: &std::path::Path, files: &[(String, String)]) -> Result<u8, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::input(dir.display().to_string(), format!("cannot create: {e}")))?;
    for (id, x) in files {
        write_out(Some(&dir.join(format!("{id}.xml"))), x)?;
    }
    Ok(0)
}

fn write_out(path: Option<&PathBuf>, text: &str) -> Result<(), Error> {
    match path {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| Error::input(p.display().to_string(), format!("cannot write: {e}"))),
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            Ok(())
        }
    }
}
