//! The `devaddr` command line: parse arguments, call the library, print. Exit codes:
//! 0 ok, 1 infeasible or check findings, 2 bad input or usage. Errors go to stderr as
//! `error: …` lines, or with `--error-format json` as one JSON report
//! ([`devaddr::report::Report`]).

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use devaddr::api::{self, Named, Source};
use devaddr::report::Report;
use devaddr::Error;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "devaddr",
    version,
    about = "Plan device addresses for QEMU/KVM guests",
    long_about = "Plan device addresses for QEMU/KVM guests: from a minimal spec (YAML/JSON) or a \
                  libvirt domain XML to every device's PCI/PCIe, USB or drive address and every \
                  controller the guest needs.",
    after_help = "Examples:\n  \
                  devaddr plan examples/q35-basic.yaml --format tree\n  \
                  virsh dumpxml --inactive vm | devaddr capacity -\n  \
                  devaddr help plan\n\n\
                  Exit codes: 0 ok, 1 infeasible or check findings, 2 bad input or usage."
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
    #[command(after_help = "Examples:\n  \
        devaddr plan examples/q35-basic.yaml -o plan.yaml\n  \
        devaddr plan examples/q35-basic.yaml --format tree\n  \
        virsh dumpxml --inactive vm | devaddr plan - > addressed.xml\n  \
        devaddr plan spec.yaml --previous plan.yaml --allow-moves   # replan")]
    Plan {
        /// The spec or domain (`-` for stdin).
        #[arg(value_name = "SPEC")]
        spec: String,
        /// Write the output to FILE (default: stdout).
        #[arg(short, long, value_name = "FILE")]
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
    #[command(after_help = "Examples:\n  \
        devaddr hotplug plan.yaml --add nics.yaml -o plan2.yaml\n  \
        devaddr hotplug plan.yaml --add nics.yaml --format libvirt --output-dir new/\n  \
        devaddr hotplug guest.xml --add nic.xml --format libvirt")]
    Hotplug {
        /// The running guest's plan, or its libvirt domain XML (`virsh dumpxml`; `-` for
        /// stdin).
        plan: String,
        /// The devices to add: YAML/JSON (a list of devices, or `devices:` with one, and for
        /// a plan `apart:`/`together:` sets they join), or device XML as `virsh
        /// attach-device` takes it (with a domain).
        #[arg(long, value_name = "DEVICES")]
        add: String,
        /// Output: the updated plan (yaml/json); for a plan, just the new devices as
        /// libvirt device XML (for `virsh attach-device --live`) or QMP commands (qemu);
        /// for a domain, libvirt is the whole domain with the new devices addressed.
        #[arg(long, value_enum, default_value = "yaml")]
        format: HotplugFormat,
        /// Write the output to FILE (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// With --format libvirt: write one DIR/ID.xml per new device (device XML for
        /// `virsh attach-device --live`).
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
    /// How many more devices of each kind fit: now (live) and at next boot.
    #[command(after_help = "Examples:\n  \
        devaddr capacity examples/numa.yaml --kind virtio-net --node 1\n  \
        virsh dumpxml --inactive vm | devaddr capacity - --format json")]
    Capacity {
        /// A spec (planned first), a plan, or a libvirt domain XML (counted under
        /// libvirt's rules); `-` for stdin.
        input: String,
        /// Device kind to ask about (repeatable; default: the machine's representative set).
        #[arg(long = "kind", value_name = "KIND")]
        kinds: Vec<String>,
        /// Only this NUMA node.
        #[arg(long, value_name = "N")]
        node: Option<u32>,
        /// The devices to count have a 64-bit BAR of SIZE (`128G`): live, only ports that
        /// keep that much 64-bit room; at next boot, within the 64-bit aperture.
        #[arg(long, value_name = "SIZE")]
        bar64: Option<devaddr::spec::ByteSize>,
        /// Show only what fits now in the running guest.
        #[arg(long)]
        live: bool,
        /// Output format: a table for people, or JSON (`devaddr schema capacity`).
        #[arg(long, value_enum, default_value = "table")]
        format: CapacityFormat,
        /// Write the output to FILE (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Verify a plan (or any fully addressed spec, or a libvirt domain); exit 1 with the
    /// findings.
    #[command(after_help = "Examples:\n  \
        devaddr check plan.yaml\n  \
        virsh dumpxml --inactive vm | devaddr check - --format json")]
    Check {
        /// The plan, fully addressed spec or domain XML to verify (`-` for stdin).
        plan: String,
        /// Output format: `text` (`FILE: ok` on stdout, one finding per line on stderr)
        /// or `json` (`{"file", "ok", "findings": [{rule, subject, message}]}` on
        /// stdout).
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
        /// Write the output to FILE (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// List the catalog, or describe one machine, controller model or device kind.
    #[command(after_help = "Examples:\n  \
        devaddr models\n  \
        devaddr models q35\n  \
        devaddr models pcie-root-port --format yaml")]
    Models {
        /// A machine, controller model or device kind (default: list them all).
        name: Option<String>,
        /// Output format: a description for people, or the catalog data as YAML or JSON.
        #[arg(long, value_enum, default_value = "text")]
        format: ModelsFormat,
        /// Write the output to FILE (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the JSON Schema (draft 2020-12) of a spec, a plan or the capacity output.
    #[command(after_help = "Examples:\n  \
        devaddr schema spec -o devaddr-spec.schema.json\n  \
        devaddr schema plan | python3 -m json.tool")]
    Schema {
        /// Which document: `spec` (a plan validates as a spec too), `plan`, or
        /// `capacity` (`capacity --format json`).
        #[arg(value_enum)]
        document: SchemaDoc,
        /// Write the output to FILE (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        devaddr completions bash > ~/.local/share/bash-completion/completions/devaddr\n  \
        devaddr completions zsh > ~/.zfunc/_devaddr\n  \
        devaddr completions fish > ~/.config/fish/completions/devaddr.fish")]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        /// Write the output to FILE (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the manual page (roff), or write one page per command into a directory.
    #[command(after_help = "Examples:\n  \
        devaddr man | man -l -\n  \
        devaddr man --output-dir ~/.local/share/man/man1")]
    Man {
        /// Write the devaddr(1) page to FILE (default: stdout).
        #[arg(short, long, value_name = "FILE", conflicts_with = "output_dir")]
        output: Option<PathBuf>,
        /// Write devaddr.1 and one devaddr-COMMAND.1 per command into DIR.
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum OutFormat {
    /// The plan as YAML (`devaddr schema plan`).
    Yaml,
    /// The plan as JSON, the same structure as YAML.
    Json,
    /// The bus hierarchy like `lspci -tv`.
    Tree,
    /// The topology as Graphviz source (`dot -Tsvg`).
    Dot,
    /// The topology as a self-contained SVG picture.
    Svg,
    /// QEMU command-line arguments, one per line.
    Qemu,
    /// A libvirt domain XML (`virsh define`).
    Libvirt,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum HotplugFormat {
    /// The updated plan as YAML.
    Yaml,
    /// The updated plan as JSON.
    Json,
    /// libvirt XML: the new devices (for a plan) or the whole domain (for a domain).
    Libvirt,
    /// QMP commands that hot-add the new devices (for a plan).
    Qemu,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum CapacityFormat {
    /// A table for people.
    #[value(alias = "text")]
    Table,
    /// JSON: a list of rows (`devaddr schema capacity`).
    Json,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum CheckFormat {
    /// `FILE: ok`, or one finding per line on stderr.
    Text,
    /// JSON with the findings (rule, subject, message) on stdout.
    Json,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum ModelsFormat {
    /// A description for people.
    Text,
    /// The catalog data as YAML.
    Yaml,
    /// The catalog data as JSON.
    Json,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum SchemaDoc {
    /// A spec (input of plan, capacity, check).
    Spec,
    /// A plan as `devaddr plan` writes it.
    Plan,
    /// The output of `devaddr capacity --format json`.
    Capacity,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum InFormat {
    /// A YAML/JSON spec or plan.
    Spec,
    /// A libvirt domain XML.
    Libvirt,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum ErrorFormat {
    /// One `error: …` line per problem, for people.
    Text,
    /// One JSON object on stderr: `{"errors":[{kind, code, location, message, …}]}`.
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    /// libvirt's conventions: one PCIe endpoint per root port, no reserve.
    Libvirt,
    /// Every device hotpluggable, four spare hotpluggable ports.
    HotplugReady,
    /// One spare hotpluggable port under every NUMA node's expander.
    Numa,
    /// Fewest controllers: pack devices that need no hotplug 8 to a slot.
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

/// How an input path is named in messages (`<stdin>` for `-`).
fn shown(path: &str) -> &str {
    devaddr::input::display_name(path)
}

/// Read the input at `path` (`-`: stdin); the text and its name in messages.
fn read_input(path: &str) -> Result<(String, &str), Error> {
    Ok((devaddr::input::read(path)?, shown(path)))
}

/// A command-line value as the library's option value of the same name (the CLI and the
/// bindings spell them alike; `cli_values_are_library_names` holds them so).
fn to_api<T: Named>(v: impl ValueEnum) -> Result<T, Error> {
    let name = v
        .to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default();
    T::from_name(&name)
}

/// Print each message as `warning: …` (the one prefix of warnings) on stderr.
fn warn_all(messages: impl IntoIterator<Item = String>) {
    for m in messages {
        eprintln!("warning: {m}");
    }
}

/// Say on stderr what the library said besides the output: the moves, then the warnings.
fn tell(out: &api::Output) {
    for m in &out.moves {
        eprintln!("{}", api::move_line(m));
    }
    warn_all(out.warnings.iter().cloned());
}

/// The global options a command does not use, said on stderr: `models`, `schema`,
/// `completions` and `man` run no search (--work-limit), and only `models` of them
/// reads the catalog (--models).
fn warn_unused_globals(cli: &Cli) {
    let name = match &cli.cmd {
        Cmd::Models { .. } => "models",
        Cmd::Schema { .. } => "schema",
        Cmd::Completions { .. } => "completions",
        Cmd::Man { .. } => "man",
        _ => return,
    };
    if cli.work_limit != devaddr::WorkLimit::DEFAULT.0 {
        warn_all([format!(
            "--work-limit does not apply to `{name}`, which runs no search"
        )]);
    }
    if cli.models.is_some() && name != "models" {
        warn_all([format!(
            "--models does not apply to `{name}`, which does not read the catalog"
        )]);
    }
}

fn run(cli: Cli, error_format: ErrorFormat) -> Result<u8, Error> {
    warn_unused_globals(&cli);
    let engine = api::Engine::new(cli.models.as_deref(), Some(cli.work_limit))?;
    let (catalog, opts) = (engine.catalog(), engine.options());
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
            let (text, name) = read_input(&spec)?;
            let previous = previous.as_deref().map(read_input).transpose()?;
            let req = api::PlanRequest {
                format: format.map(to_api).transpose()?,
                policy: policy.map(to_api).transpose()?,
                input: input_format.map(to_api).transpose()?,
                new_domain,
                previous: previous.as_ref().map(|(t, n)| Source::new(t, n)),
                allow_moves,
            };
            let out = api::plan(Source::new(&text, name), &req, opts)?;
            tell(&out);
            write_out(output.as_ref(), &out.text)?;
            Ok(0)
        }
        Cmd::Hotplug {
            plan,
            add,
            format,
            output,
            output_dir,
        } => {
            if output_dir.is_some() && format != HotplugFormat::Libvirt {
                return Err(Error::input(
                    "--output-dir",
                    "--output-dir writes one device XML file per new device for `virsh \
                     attach-device`, so it goes with --format libvirt; other formats go to \
                     stdout or -o FILE",
                ));
            }
            let (plan_text, plan) = read_input(&plan)?;
            let (add_text, add) = read_input(&add)?;
            let out = api::hotplug(
                Source::new(&plan_text, plan),
                Source::new(&add_text, add),
                to_api(format)?,
                opts,
            )?;
            tell(&out);
            if let Some(dir) = &output_dir {
                write_dir(dir, &out.files)?;
                if output.is_none() {
                    return Ok(0);
                }
            }
            write_out(output.as_ref(), &out.text)?;
            Ok(0)
        }
        Cmd::Capacity {
            input,
            kinds,
            node,
            bar64,
            live,
            format,
            output,
        } => {
            let (text, name) = read_input(&input)?;
            let req = api::CapacityRequest {
                kinds,
                node,
                bar64,
                live,
                format: Some(to_api(format)?),
            };
            let out = api::capacity(Source::new(&text, name), &req, opts)?;
            tell(&out);
            write_out(output.as_ref(), &out.text)?;
            Ok(0)
        }
        Cmd::Check {
            plan,
            format,
            output,
        } => {
            let (text, name) = read_input(&plan)?;
            let checked = api::check(Source::new(&text, name), to_api(format)?, opts)?;
            if format == CheckFormat::Json || checked.findings.is_empty() {
                write_out(output.as_ref(), &checked.output.text)?;
            }
            // With findings, stderr says the check failed, in the error format, as for
            // every other failing command (with --format json the findings are also the
            // output).
            Ok(report_findings(&checked, error_format))
        }
        Cmd::Models {
            name,
            format,
            output,
        } => {
            let text = api::models(catalog, name.as_deref(), to_api(format)?)?;
            write_out(output.as_ref(), &text)?;
            Ok(0)
        }
        Cmd::Schema { document, output } => {
            let doc = match document {
                SchemaDoc::Spec => devaddr::schema::Document::Spec,
                SchemaDoc::Plan => devaddr::schema::Document::Plan,
                SchemaDoc::Capacity => devaddr::schema::Document::Capacity,
            };
            write_out(output.as_ref(), &devaddr::schema::to_json(doc))?;
            Ok(0)
        }
        Cmd::Completions { shell, output } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "devaddr", &mut buf);
            write_out(output.as_ref(), &String::from_utf8_lossy(&buf))?;
            Ok(0)
        }
        Cmd::Man { output, output_dir } => {
            if let Some(dir) = output_dir {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    Error::input(dir.display().to_string(), format!("cannot create: {e}"))
                })?;
                clap_mangen::generate_to(Cli::command(), &dir).map_err(|e| {
                    Error::input(dir.display().to_string(), format!("cannot write: {e}"))
                })?;
                return Ok(0);
            }
            let mut buf = Vec::new();
            let _ = clap_mangen::Man::new(Cli::command()).render(&mut buf);
            write_out(output.as_ref(), &String::from_utf8_lossy(&buf))?;
            Ok(0)
        }
    }
}

/// The findings of a failed check on stderr (exit 1): one `FILE: finding` line each, or
/// a JSON report of kind `check`; nothing for a valid input (exit 0).
fn report_findings(checked: &api::Checked, format: ErrorFormat) -> u8 {
    let Some(report) = checked.report() else {
        return 0;
    };
    if format == ErrorFormat::Json {
        eprint!("{}", report.to_json());
    } else {
        for f in &checked.findings {
            eprintln!("{}: {f}", checked.file);
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

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command and argument says what it is for (`devaddr help X`), every command
    /// shows an example, every value of an enumerated option is explained.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() {
                missing.push(format!("command `{path}` has no about text"));
            }
            let example = cmd
                .get_after_help()
                .is_some_and(|h| h.to_string().contains("devaddr "));
            if !example {
                missing.push(format!("command `{path}` has no example (after_help)"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("argument `{id}` of `{path}` has no help"));
                }
                // Enumerated values (not a flag's true/false, not clap_complete's shells).
                let enumerated =
                    !matches!(arg.get_action(), clap::ArgAction::SetTrue) && id != "shell";
                for v in arg.get_possible_values().iter().filter(|_| enumerated) {
                    if v.get_help().is_none() {
                        missing.push(format!(
                            "value `{}` of `{id}` of `{path}` has no help",
                            v.get_name()
                        ));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "devaddr", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));
        let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
        for want in [
            "plan",
            "hotplug",
            "capacity",
            "check",
            "models",
            "schema",
            "completions",
            "man",
        ] {
            assert!(names.contains(&want), "no `{want}` command in {names:?}");
        }
    }

    /// Every value of an enumerated option is a name the library parses (the CLI and
    /// the bindings spell the values alike).
    #[test]
    fn cli_values_are_library_names() {
        use super::*;
        fn all<C: ValueEnum, T: Named>() {
            for v in C::value_variants() {
                let name = v.to_possible_value().unwrap().get_name().to_string();
                assert!(
                    to_api::<T>(v.clone()).is_ok(),
                    "`{name}` is not a library name"
                );
            }
        }
        all::<OutFormat, api::PlanFormat>();
        all::<InFormat, api::InputKind>();
        all::<PresetArg, devaddr::spec::Preset>();
        all::<HotplugFormat, api::HotplugFormat>();
        all::<CapacityFormat, api::CapacityFormat>();
        all::<CheckFormat, api::CheckFormat>();
        all::<ModelsFormat, api::ModelsFormat>();
    }

    /// Commands whose output is data take `-o/--output FILE` and `--format` with `json`.
    #[test]
    fn data_commands_take_output_and_json() {
        let cmd = Cli::command();
        for name in ["plan", "hotplug", "capacity", "check", "models"] {
            let sub = cmd.find_subcommand(name).unwrap();
            let output = sub
                .get_arguments()
                .find(|a| a.get_id() == "output")
                .unwrap_or_else(|| panic!("`{name}` has no --output"));
            assert_eq!(output.get_short(), Some('o'), "{name}");
            assert_eq!(output.get_long(), Some("output"), "{name}");
            let format = sub
                .get_arguments()
                .find(|a| a.get_id() == "format")
                .unwrap_or_else(|| panic!("`{name}` has no --format"));
            assert!(
                format
                    .get_possible_values()
                    .iter()
                    .any(|v| v.get_name() == "json"),
                "`{name} --format` has no json"
            );
        }
    }
}
