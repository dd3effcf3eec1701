//! Errors returned by the library. Each maps to a CLI exit code: bad input is 2,
//! an infeasible request (or a failed check) is 1. [`Error::report`] turns any of them
//! into a [`Report`](crate::report::Report) for machines (`--error-format json`).

use crate::explanation::{Binding, Explanation};
use crate::verify::Finding;
use serde::Serialize;
use std::fmt;

/// Where in the input a problem was found. Serializes with the fields that are known
/// (`file`, `path`, `line`, `column`, `element`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Location {
    /// File name (`<stdin>` for standard input), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// YAML/JSON path such as `devices[3].numa_node` (or a command-line option such as
    /// `--kind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column of that line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The XML element of a libvirt domain the problem is in (`<controller type='usb'
    /// index='1'>`), when the input is XML.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<String>,
    /// The spec device (by position in `devices`) the problem concerns, when it concerns
    /// one: lifecycle commands use it to name the device (never the path text).
    #[serde(skip)]
    pub device: Option<usize>,
}

/// A stable name for what kind of bad input an [`Error::Input`] reports (serialized
/// kebab-case: `unknown-name`, `missing-field`…). Match on it rather than on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// Not well-formed YAML, JSON or XML.
    Syntax,
    /// A field the document does not have (`colour:` on a device).
    UnknownField,
    /// A required field is missing (`kind:` of a device).
    MissingField,
    /// A value of the wrong type (a string where a number goes, a number where an
    /// address goes).
    WrongType,
    /// A value outside the listed ones (`multifunction: sometimes`).
    UnknownValue,
    /// A name the catalog does not know: a device kind, machine type or controller
    /// model.
    UnknownName,
    /// A number out of its range (NUMA node, slot, controller index…).
    OutOfRange,
    /// An id (or address) given twice.
    Duplicate,
    /// A spec where a plan is expected (plan it first with `devaddr plan`).
    NotAPlan,
    /// A document of another kind than the command takes (XML that is not a domain).
    WrongDocument,
    /// The input cannot be read (missing file, permissions).
    Unreadable,
    /// The input is not UTF-8 text.
    Encoding,
    /// The input is larger or nests deeper than devaddr's limits.
    TooLarge,
    /// Any other bad input: the message says what and what was expected.
    #[default]
    Invalid,
}

impl Code {
    /// The serialized name (`unknown-name`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "syntax",
            Code::UnknownField => "unknown-field",
            Code::MissingField => "missing-field",
            Code::WrongType => "wrong-type",
            Code::UnknownValue => "unknown-value",
            Code::UnknownName => "unknown-name",
            Code::OutOfRange => "out-of-range",
            Code::Duplicate => "duplicate",
            Code::NotAPlan => "not-a-plan",
            Code::WrongDocument => "wrong-document",
            Code::Unreadable => "unreadable",
            Code::Encoding => "encoding",
            Code::TooLarge => "too-large",
            Code::Invalid => "invalid",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
        if let Some(element) = &self.element {
            parts.push(element.clone());
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
        location: Box<Location>,
        /// What is wrong and what was expected.
        message: String,
        /// What kind of bad input it is.
        code: Code,
    },
    /// Several independent problems with the input, in document order (each an
    /// [`Error::Input`]): a spec with three unknown device kinds reports all three.
    #[error("{}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several {
        /// The problems, at least two.
        errors: Vec<Error>,
    },
    /// The input is well formed but no topology satisfies it.
    #[error("infeasible: {explanation}")]
    Infeasible {
        /// Why: the binding requirement (a kind to match on), what it involves, the fix.
        explanation: Box<Explanation>,
    },
    /// The independent verifier rejected a plan (a bug if the plan came from `plan()`).
    #[error("plan fails verification:\n{}", crate::verify::bulleted(.findings))]
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
            location: Box::new(Location::path(path)),
            message: message.into(),
            code: Code::Invalid,
        }
    }

    /// The same error with another [`Code`] (bad input only).
    pub fn with_code(mut self, new: Code) -> Self {
        if let Error::Input { code, .. } = &mut self {
            *code = new;
        }
        self
    }

    /// The [`Code`] of a bad-input error (None for other errors and for [`Error::Several`]).
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Input { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Ok when `errors` is empty, the error itself when there is one, else
    /// [`Error::Several`] holding them all (nested ones flattened).
    pub fn collect(errors: Vec<Error>) -> Result<()> {
        let mut flat: Vec<Error> = Vec::new();
        for e in errors {
            match e {
                Error::Several { errors } => flat.extend(errors),
                e => flat.push(e),
            }
        }
        match flat.len() {
            0 => Ok(()),
            1 => Err(flat.pop().unwrap_or_else(|| unreachable!())),
            _ => Err(Error::Several { errors: flat }),
        }
    }

    /// Every single problem: the error itself, or each of [`Error::Several`].
    pub fn errors(&self) -> Vec<&Error> {
        match self {
            Error::Several { errors } => errors.iter().collect(),
            e => vec![e],
        }
    }

    /// The error as data for machines (`--error-format json`): see
    /// [`Report`](crate::report::Report).
    pub fn report(&self) -> crate::report::Report {
        crate::report::Report::from_error(self)
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
            location: Box::new(Location {
                path: Some(path),
                device: Some(i),
                ..Default::default()
            }),
            message: message.into(),
            code: Code::Invalid,
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
            Error::Several { errors } => errors.iter().map(Error::exit_code).max().unwrap_or(2),
            Error::Infeasible { .. } | Error::Check { .. } => 1,
        }
    }

    /// Attach a file name to an input error.
    pub fn in_file(self, file: &str) -> Self {
        self.in_file_by(|_| file.to_string())
    }

    /// Attach the file name, and where an input error has a YAML path but no line, the
    /// line and column of that path in `text` (the file's YAML or JSON content).
    pub fn in_source(self, file: &str, text: &str) -> Self {
        let mut e = self.in_file(file);
        let locate = |location: &mut Location| {
            if location.line.is_none() {
                if let Some((line, column)) = location
                    .path
                    .as_deref()
                    .and_then(|p| crate::yaml::locate(text, p))
                {
                    location.line = Some(line);
                    location.column = Some(column);
                }
            }
        };
        match &mut e {
            Error::Input { location, .. } => locate(location),
            Error::Several { errors } => {
                // Each is a parse of the text: the first few are located.
                for e in errors.iter_mut().take(20) {
                    if let Error::Input { location, .. } = e {
                        locate(location);
                    }
                }
            }
            _ => {}
        }
        e
    }

    /// Attach to each input error the file `file_of` names for its location (an error
    /// about `add[0]` belongs to the `--add` file, the rest to the plan).
    pub fn in_file_by(mut self, file_of: impl Fn(&Location) -> String) -> Self {
        match &mut self {
            Error::Input { location, .. } => location.file = Some(file_of(location)),
            Error::Several { errors } => {
                for e in errors.iter_mut() {
                    if let Error::Input { location, .. } = e {
                        location.file = Some(file_of(location));
                    }
                }
            }
            _ => {}
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
