//! Errors returned by the library. Each maps to a CLI exit code: bad input is 2,
//! an infeasible request (or a failed check) is 1.

use crate::explanation::{Binding, Explanation};
use crate::verify::Finding;
use std::fmt;

/// Where in the input a problem was found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// File name (or `-` for standard input), when known.
    pub file: Option<String>,
    /// YAML/JSON path such as `devices[3].numa_node`, or an XML element.
    pub path: Option<String>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column of that line, when known.
    pub column: Option<usize>,
    /// The spec device (by position in `devices`) the problem concerns, when it concerns
    /// one: lifecycle commands use it to name the device (never the path text).
    pub device: Option<usize>,
}

impl Location {
    /// A location given only by its YAML/JSON path (`devices[3].numa_node`).
    pub fn path(path: impl Into<String>) -> Self {
        Location {
            path: Some(path.into()),
            ..Default::default()
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(file) = &self.file {
            parts.push(file.clone());
        }
        if let Some(line) = self.line {
            match self.column {
                Some(c) => parts.push(format!("line {line} column {c}")),
                None => parts.push(format!("line {line}")),
            }
        }
        if let Some(path) = &self.path {
            parts.push(path.clone());
        }
        write!(f, "{}", parts.join(": "))
    }
}

/// A library error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is malformed or asks for something that does not exist.
    #[error("{}{message}", location_prefix(.location))]
    Input {
        /// Where the problem is (file, path, line), as far as known.
        location: Location,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The input is well formed but no topology satisfies it.
    #[error("infeasible: {explanation}")]
    Infeasible {
        /// Why: the binding requirement (a kind to match on), what it involves, the fix.
        explanation: Box<Explanation>,
    },
    /// The independent verifier rejected a plan (a bug if the plan came from `plan()`).
    #[error("plan fails verification:\n{}", .findings.iter().map(|f| format!("  - {f}")).collect::<Vec<_>>().join("\n"))]
    Check {
        /// One finding per rule the plan breaks (its [`Display`](fmt::Display) is the
        /// sentence).
        findings: Vec<Finding>,
    },
}

fn location_prefix(l: &Location) -> String {
    let s = l.to_string();
    if s.is_empty() {
        String::new()
    } else {
        format!("{s}: ")
    }
}

impl Error {
    /// A bad-input error at a YAML path.
    pub fn input(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Input {
            location: Location::path(path),
            message: message.into(),
        }
    }

    /// An infeasible request whose binding requirement is of kind `binding`.
    pub fn infeasible(
        binding: Binding,
        requirement: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Explanation::new(binding, requirement, fix).into()
    }

    /// The explanation of an infeasible request (None for other errors).
    pub fn explanation(&self) -> Option<&Explanation> {
        match self {
            Error::Infeasible { explanation } => Some(explanation),
            _ => None,
        }
    }

    /// A bad-input error about field `field` of spec device `i` (`devices[i].field`).
    pub fn device_input(i: usize, field: &str, message: impl Into<String>) -> Self {
        let path = if field.is_empty() {
            format!("devices[{i}]")
        } else {
            format!("devices[{i}].{field}")
        };
        Error::Input {
            location: Location {
                path: Some(path),
                device: Some(i),
                ..Default::default()
            },
            message: message.into(),
        }
    }

    /// The same error, noted as concerning spec device `i` (bad input only).
    pub fn about_device(mut self, i: usize) -> Self {
        if let Error::Input { location, .. } = &mut self {
            location.device = Some(i);
        }
        self
    }

    /// The process exit code the CLI uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } => 2,
            Error::Infeasible { .. } | Error::Check { .. } => 1,
        }
    }

    /// Attach a file name to an input error.
    pub fn in_file(mut self, file: &str) -> Self {
        if let Error::Input { location, .. } = &mut self {
            location.file = Some(file.to_string());
        }
        self
    }
}

/// The result of a library call: a value or an [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<Explanation> for Error {
    fn from(explanation: Explanation) -> Self {
        Error::Infeasible {
            explanation: Box::new(explanation),
        }
    }
}
