//! The `devaddr` command line: parse arguments, call the library, print. Exit codes:
//! 0 ok, 1 infeasible or check findings, 2 bad input or usage.

use clap::{Parser, Subcommand, ValueEnum};
use devaddr::formats::{self, Format};
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
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Plan a spec (YAML or JSON; `-` for stdin) into a fully addressed topology.
    Plan {
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
        /// The running guest's plan.
        plan: String,
        /// The devices to add (YAML/JSON: a list of devices, or `devices:` with one).
        #[arg(long, value_name = "DEVICES")]
        add: String,
        /// Output: the updated plan (yaml/json), or just the new devices as libvirt device
        /// XML (for `virsh attach-device --live`) or QMP commands (qemu).
        #[arg(long, value_enum, default_value = "yaml")]
        format: HotplugFormat,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// With --format libvirt: write one DIR/ID.xml per new device.
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
    /// How many more devices of each kind fit: now (live) and at next boot.
    Capacity {
        /// A spec (planned first) or a plan.
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
    Dot,
    Svg,
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

#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    Libvirt,
    HotplugReady,
    Numa,
    Dense,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("devaddr: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn read_input(path: &str) -> Result<String, Error> {
    devaddr::input::read(path)
}

/// A plan whose search stopped at the work limit is valid and verified, but not proven
/// the best: say so on stderr.
fn warn_if_unproven(plan: &devaddr::Plan, limit: devaddr::WorkLimit) {
    use devaddr::topology::SolverStatus;
    if let Some(r) = plan.devaddr.solver {
        if r.status == SolverStatus::Feasible {
            let gap = r.gap.map_or(0.0, |g| g.0 as f64 / 100.0);
            eprintln!(
                "devaddr: warning: the search reached its work limit ({}) before proving this \
                 plan the best (gap {gap:.2} %); it is valid and verified. Raise --work-limit \
                 for a proof.",
                limit.0
            );
        }
    }
}

fn run(cli: Cli) -> Result<u8, Error> {
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
            let name = if spec == "-" {
                "<stdin>"
            } else {
                spec.as_str()
            };
            let xml = match input_format {
                Some(f) => f == InFormat::Libvirt,
                None => devaddr::libvirt::is_domain_xml(&text),
            };
            if xml {
                if !matches!(format, None | Some(OutFormat::Libvirt)) {
                    return Err(Error::input(
                        "--format",
                        "a libvirt domain is written back as libvirt XML: use --format libvirt",
                    ));
                }
                let opts = devaddr::libvirt::LibvirtOptions { new_domain };
                let engine = devaddr::Options::default()
                    .with_catalog(catalog)
                    .with_work_limit(work_limit);
                let out = devaddr::libvirt::plan_domain_with(&text, name, &opts, engine)?;
                write_out(output.as_ref(), &out)?;
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
                None => devaddr::plan_with(&s, opts).map_err(|e| e.in_file(&spec))?,
                Some(prev) => {
                    let text = read_input(prev)?;
                    let before = devaddr::Plan::parse(&text, prev)?;
                    let r = devaddr::replan_with(&s, &before, allow_moves, opts).map_err(|e| {
                        let about_previous = matches!(&e, Error::Input { location, .. }
                            if location.path.as_deref() == Some("previous plan"));
                        e.in_file(if about_previous { prev } else { &spec })
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
                OutFormat::Dot => Format::Dot,
                OutFormat::Svg => Format::Svg,
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
            let before = devaddr::Plan::parse(&read_input(&plan)?, &plan)?;
            let devices = devaddr::spec::parse_devices(&read_input(&add)?, &add)?;
            let opts = devaddr::Options::default()
                .with_catalog(catalog)
                .with_work_limit(work_limit);
            // Errors about the devices to add name that file, the rest the plan.
            let h = devaddr::hotplug_with(&before, &devices, opts).map_err(|e| {
                let about_add = matches!(&e, Error::Input { location, .. }
                    if location.path.as_deref().is_some_and(|p| p.starts_with("add[")));
                e.in_file(if about_add { &add } else { &plan })
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
                        std::fs::create_dir_all(dir).map_err(|e| {
                            Error::input(dir.display().to_string(), format!("cannot create: {e}"))
                        })?;
                        for (id, x) in &xml {
                            write_out(Some(&dir.join(format!("{id}.xml"))), x)?;
                        }
                        return Ok(0);
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
            let s = Spec::parse(&read_input(&input)?, &input)?;
            let q = devaddr::CapacityQuery::new(kinds, node);
            let opts = devaddr::Options::default()
                .with_catalog(catalog)
                .with_work_limit(work_limit);
            let rows = devaddr::capacity_with(&s, &q, opts).map_err(|e| e.in_file(&input))?;
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
            if devaddr::libvirt::is_domain_xml(&text) {
                let engine = devaddr::Options::default()
                    .with_catalog(catalog)
                    .with_work_limit(work_limit);
                let findings = devaddr::libvirt::check_domain_with(&text, &plan, engine)?;
                if findings.is_empty() {
                    println!("{plan}: ok");
                    return Ok(0);
                }
                for f in &findings {
                    eprintln!("{plan}: {f}");
                }
                return Ok(1);
            }
            let s = Spec::parse(&text, &plan)?;
            let findings = devaddr::check_with(&s, catalog).map_err(|e| e.in_file(&plan))?;
            if findings.is_empty() {
                println!("{plan}: ok");
                Ok(0)
            } else {
                for f in &findings {
                    eprintln!("{plan}: {f}");
                }
                Ok(1)
            }
        }
        Cmd::Models { name } => {
            print!("{}", formats::models::render(catalog, name.as_deref())?);
            Ok(0)
        }
    }
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
