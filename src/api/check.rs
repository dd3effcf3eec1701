//! `devaddr check`: verify a plan, a fully addressed spec or a libvirt domain.

use super::{pretty_json, Output, Source};
use crate::error::Result;
use crate::input::Kind;
use crate::report::Report;
use crate::{Finding, Options, Spec};

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckFormat {
    /// `FILE: ok` when valid (the findings are the error report otherwise).
    Text,
    /// `{"file", "ok", "findings": [...]}`, valid or not.
    Json,
}

/// What `check` found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Checked {
    /// The output document: `FILE: ok` (text, when valid), the JSON document (json), or
    /// nothing (text, with findings: they are the error report).
    pub output: Output,
    /// The rules broken (empty: valid).
    pub findings: Vec<Finding>,
    /// The input's name, as the findings are reported under it.
    pub file: String,
}

impl Checked {
    /// The failure to report (kind `check`), or None when the input is valid.
    pub fn report(&self) -> Option<Report> {
        (!self.findings.is_empty()).then(|| Report::from_findings(&self.file, &self.findings))
    }
}

/// Check `src` as `devaddr check` does. Findings are a result, not an error; bad input
/// is an error.
pub fn check(src: Source<'_>, format: CheckFormat, opts: Options<'_>) -> Result<Checked> {
    let what = "a plan, a fully addressed spec or a libvirt <domain>";
    let findings = if crate::input::detect(src.text, src.name, what)? == Kind::Domain {
        crate::libvirt::check_domain_with(src.text, src.name, opts)?
    } else {
        let s = Spec::parse(src.text, src.name)?;
        crate::check_with(&s, opts.catalog).map_err(|e| e.in_source(src.name, src.text))?
    };
    let text = match format {
        CheckFormat::Json => pretty_json(&serde_json::json!({
            "file": src.name,
            "ok": findings.is_empty(),
            "findings": findings,
        })),
        CheckFormat::Text if findings.is_empty() => format!("{}: ok\n", src.name),
        CheckFormat::Text => String::new(),
    };
    Ok(Checked {
        output: Output::text(text),
        findings,
        file: src.name.to_string(),
    })
}
