//! Every command's work as one call, text in → text out: what `devaddr plan`,
//! `hotplug`, `capacity`, `check` and `models` do between reading their inputs and
//! printing. The CLI, the C ABI (`bindings/c`) and the Python module
//! (`bindings/python`) all call these functions, so the three give byte-identical
//! output and the same errors ([`crate::report::Report`]) by construction.
//!
//! Inputs are [`Source`]s (the text and the name errors give it); options are the
//! library's [`Options`](crate::Options) (catalog, solver, work limit). A call returns an
//! [`Output`]: the text the CLI writes on stdout (or to `-o FILE`), plus the warnings and
//! moves it writes on stderr.
//!
//! ```
//! use devaddr::api::{self, PlanFormat, PlanRequest, Source};
//! let spec = "machine: q35\ndevices: [{id: net0, kind: virtio-net}]\n";
//! let req = PlanRequest { format: Some(PlanFormat::Json), ..Default::default() };
//! let out = api::plan(Source::new(spec, "vm.yaml"), &req, devaddr::Options::default())?;
//! assert!(out.text.contains("\"net0\""));
//! assert!(out.warnings.is_empty());
//! // Every name a binding passes as a string parses here.
//! assert_eq!("libvirt".parse::<PlanFormat>()?, PlanFormat::Libvirt);
//! # Ok::<(), devaddr::Error>(())
//! ```

mod capacity;
mod check;
mod engine;
mod hotplug;
mod models;
mod names;
mod plan;

pub use capacity::{capacity, CapacityFormat, CapacityRequest};
pub use check::{check, CheckFormat, Checked};
pub use engine::Engine;
pub use hotplug::{hotplug, HotplugFormat};
pub use models::{models, ModelsFormat};
pub use names::Named;
pub use plan::{plan, InputKind, PlanFormat, PlanRequest};

use crate::Move;

/// One input document: its text, and how errors name it (a file name, `<stdin>`).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The document.
    pub text: &'a str,
    /// Its name in messages.
    pub name: &'a str,
}

impl<'a> Source<'a> {
    /// `text` named `name` in messages.
    pub fn new(text: &'a str, name: &'a str) -> Self {
        Source { text, name }
    }
}

/// What a command produced.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Output {
    /// The output document (the CLI's stdout or `-o FILE`).
    pub text: String,
    /// Warnings, without the `warning: ` prefix the CLI prints them with.
    pub warnings: Vec<String>,
    /// Devices a replan with moves allowed moved (the CLI's `moved …` lines).
    pub moves: Vec<Move>,
    /// Hotplug with libvirt output: one `(id, device XML)` per device to attach (the
    /// CLI's `--output-dir`).
    pub files: Vec<(String, String)>,
}

impl Output {
    fn text(text: String) -> Self {
        Output {
            text,
            ..Default::default()
        }
    }
}

/// The line the CLI prints on stderr for a device a replan moved:
/// `moved ID: FROM -> TO (REASON)`.
pub fn move_line(m: &Move) -> String {
    format!(
        "moved {}: {} -> {} ({})",
        m.id,
        m.from,
        m.to.as_ref().map_or("-".to_string(), |a| a.to_string()),
        m.reason
    )
}

/// devaddr's version (`0.1.0`).
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// JSON as the CLI writes it: pretty, with a final newline.
fn pretty_json(value: &impl serde::Serialize) -> String {
    let mut t = serde_json::to_string_pretty(value).unwrap_or_default();
    t.push('\n');
    t
}
