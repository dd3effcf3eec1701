//! Errors as data for management software: what `devaddr --error-format json` writes on
//! stderr, one line holding one JSON object:
//!
//! ```json
//! {"errors":[{"kind":"input","code":"unknown-name","location":{"file":"vm.yaml",
//!   "path":"devices[0].kind","line":3,"column":5},
//!   "message":"unknown device kind `virtio-nett` for device `a`; did you mean virtio-net?"}]}
//! ```
//!
//! `errors` holds every problem found (a spec with three unknown kinds gives three), in
//! document order. Each has a [`ProblemKind`] (`kind`), a stable `code`, the `location`
//! as far as it is known (`file`, `path`, `line`, `column`, `element`; an empty object
//! when nothing is), and the `message` people read. An infeasible request adds its
//! [`Explanation`] fields (`binding`, `requirement`, `fix`, and `devices`, `needed`,
//! `available` when known); a failed check adds its `findings` (`rule`, `subject`,
//! `message`).
//!
//! ```
//! let err = devaddr::Spec::parse(
//!     "machine: q35\ndevices:\n- {id: a, kind: virtio-net, colour: red}\n- {id: b}\n",
//!     "vm.yaml",
//! )
//! .unwrap_err();
//! let json = serde_json::to_value(err.report()).unwrap();
//! let errors = json["errors"].as_array().unwrap();
//! assert_eq!(errors.len(), 2);
//! assert_eq!(errors[0]["kind"], "input");
//! assert_eq!(errors[0]["code"], "unknown-field");
//! assert_eq!(errors[0]["location"]["path"], "devices[0].colour");
//! assert_eq!(errors[1]["code"], "missing-field");
//! assert_eq!(errors[1]["location"]["line"], 4);
//! ```

use crate::error::{Error, Location};
use crate::explanation::{Binding, Explanation};
use crate::verify::Finding;
use serde::Serialize;

/// What kind of problem it is; the CLI's exit code follows from it (2 for `input` and
/// `usage`, 1 for the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The input is malformed or names what does not exist.
    Input,
    /// The input is well formed but no topology satisfies it.
    Infeasible,
    /// `devaddr check` found rules the plan breaks.
    Check,
    /// devaddr failed on its own (a bug: a plan failing its own verifier, a solver
    /// failure, a panic).
    Internal,
    /// The command line is wrong (unknown option, missing argument).
    Usage,
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// A stable name to match on: an input [`Code`](crate::error::Code), the binding of
    /// an infeasible request (`io-windows`), `check-failed`, `plan-fails-verification`,
    /// or a usage code (`unknown-argument`).
    pub code: String,
    /// Where, as far as known.
    pub location: Location,
    /// The sentence for people.
    pub message: String,
    /// Why no plan exists (infeasible only).
    #[serde(flatten)]
    pub explanation: Option<Explanation>,
    /// The rules broken (check, and a plan failing its own verifier).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The text form, one `error: …` entry (not serialized).
    #[serde(skip)]
    text: String,
}

/// Every problem of one failed command. Serializes as `{"errors": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The problems, at least one.
    pub errors: Vec<Problem>,
}

/// The prefix of every error line the CLI prints.
pub const PREFIX: &str = "error: ";

fn binding_code(b: Binding) -> String {
    serde_json::to_value(b)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "infeasible".into())
}

impl Problem {
    fn new(kind: ProblemKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Problem {
            kind,
            code: code.into(),
            location: Location::default(),
            text: message.clone(),
            message,
            explanation: None,
            findings: Vec::new(),
        }
    }

    fn from_error(e: &Error) -> Vec<Problem> {
        match e {
            Error::Input {
                location,
                message,
                code,
            } => vec![Problem {
                location: (**location).clone(),
                text: e.to_string(),
                ..Problem::new(ProblemKind::Input, code.as_str(), message.clone())
            }],
            Error::Several { errors } => errors.iter().flat_map(Problem::from_error).collect(),
            Error::Infeasible { explanation } => {
                let kind = if explanation.binding == Binding::Solver {
                    ProblemKind::Internal
                } else {
                    ProblemKind::Infeasible
                };
                vec![Problem {
                    explanation: Some((**explanation).clone()),
                    text: e.to_string(),
                    ..Problem::new(
                        kind,
                        binding_code(explanation.binding),
                        explanation.requirement.clone(),
                    )
                }]
            }
            Error::Check { findings } => vec![Problem {
                findings: findings.clone(),
                text: e.to_string(),
                ..Problem::new(
                    ProblemKind::Internal,
                    "plan-fails-verification",
                    "the planned topology fails devaddr's own verifier (a devaddr bug)",
                )
            }],
        }
    }

    /// The text form: `error: <location>: <message>` (and the fix or the findings on
    /// the lines below).
    pub fn text(&self) -> String {
        format!("{PREFIX}{}", self.text)
    }
}

impl Report {
    /// The report of a library error (every problem of [`Error::Several`]).
    pub fn from_error(e: &Error) -> Report {
        Report {
            errors: Problem::from_error(e),
        }
    }

    /// The report of `devaddr check` finding rules broken in `file`.
    pub fn from_findings(file: &str, findings: &[Finding]) -> Report {
        let n = findings.len();
        let mut p = Problem::new(
            ProblemKind::Check,
            "check-failed",
            format!(
                "the plan breaks {n} rule{} of devaddr check",
                if n == 1 { "" } else { "s" }
            ),
        );
        p.location.file = Some(file.to_string());
        p.text = findings
            .iter()
            .map(|f| format!("{file}: {f}"))
            .collect::<Vec<_>>()
            .join("\n");
        p.findings = findings.to_vec();
        Report { errors: vec![p] }
    }

    /// A command-line usage problem: `code` (`unknown-argument`), the message, and the
    /// option or argument it concerns when known.
    pub fn usage(code: &str, message: impl Into<String>, argument: Option<String>) -> Report {
        let mut p = Problem::new(ProblemKind::Usage, code, message);
        p.location.path = argument;
        Report { errors: vec![p] }
    }

    /// devaddr failed on its own (a panic): `message` says where.
    pub fn internal(code: &str, message: impl Into<String>) -> Report {
        Report {
            errors: vec![Problem::new(ProblemKind::Internal, code, message)],
        }
    }

    /// A panic caught with `std::panic::catch_unwind` (its payload), as an internal
    /// error: what the C and Python bindings return instead of unwinding into their
    /// caller.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Report {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Report::internal("panic", format!("devaddr panicked: {what}"))
    }

    /// The report as one line of JSON (with a final newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"errors\":[{{\"kind\":\"internal\",\"code\":\"report\",\"location\":{{}},\
                 \"message\":\"cannot serialize the error report: {e}\"}}]}}"
            )
        });
        s.push('\n');
        s
    }

    /// The report as text: one `error: …` entry per problem, each ending in a newline.
    pub fn to_text(&self) -> String {
        self.errors.iter().map(|p| p.text() + "\n").collect()
    }
}
