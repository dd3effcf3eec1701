//! The `devaddr` command line: parse arguments, call the library, print. Exit codes:
//! 0 ok, 1 infeasible or check findings, 2 bad input or usage.

use clap::{Parser, Subcommand, ValueEnum};
use devaddr::formats::{self, Format};
use devaddr::{Catalog, Error, Spec};
use std::io::{Read, Write};
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
        #[arg(long, value_enum, default_value_t = OutFormat::Yaml)]
        format: OutFormat,
        /// Override the spec's policy preset.
        #[arg(long, value_enum)]
        policy: Option<PresetArg>,
    },
    /// Verify a plan (or any fully addressed spec); exit 1 with the findings.
    Check { plan: String },
    /// List the catalog, or show one machine, controller model or device kind.
    Models { name: Option<String> },
}

#[derive(Clone, Copy, ValueEnum)]
enum OutFormat {
    Yaml,
    Json,
    Tree,
    Qemu,
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
    let mut text = String::new();
    let r = if path == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    r.map_err(|e| Error::Input {
        location: devaddr::Location {
            file: Some(path.to_string()),
            ..Default::default()
        },
        message: format!("cannot read: {e}"),
    })?;
    Ok(text)
}

fn load_spec(path: &str) -> Result<Spec, Error> {
    let name = if path == "-" { "<stdin>" } else { path };
    Spec::parse(&read_input(path)?, name)
}

fn run(cli: Cli) -> Result<u8, Error> {
    let owned;
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
        } => {
            let mut s = load_spec(&spec)?;
            if let Some(p) = policy {
                s.policy.preset = Some(match p {
                    PresetArg::Libvirt => devaddr::spec::Preset::Libvirt,
                    PresetArg::HotplugReady => devaddr::spec::Preset::HotplugReady,
                    PresetArg::Numa => devaddr::spec::Preset::Numa,
                    PresetArg::Dense => devaddr::spec::Preset::Dense,
                });
            }
            let plan = devaddr::plan_with(
                &s,
                devaddr::Options {
                    catalog,
                    ..Default::default()
                },
            )
            .map_err(|e| e.in_file(&spec))?;
            let fmt = match format {
                OutFormat::Yaml => Format::Yaml,
                OutFormat::Json => Format::Json,
                OutFormat::Tree => Format::Tree,
                OutFormat::Qemu => Format::Qemu,
            };
            let text = formats::render(&plan, fmt, catalog);
            write_out(output.as_ref(), &text)?;
            Ok(0)
        }
        Cmd::Check { plan } => {
            let s = load_spec(&plan)?;
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
