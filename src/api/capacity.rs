//! `devaddr capacity`: how many more devices of each kind fit, now and at next boot.

use super::{pretty_json, Output, Source};
use crate::error::Result;
use crate::input::Kind;
use crate::{CapacityQuery, Options, Spec};

/// Output formats of `capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapacityFormat {
    /// A table for people.
    Table,
    /// JSON: a list of rows (`devaddr schema capacity`).
    Json,
}

/// The question of one `capacity` call; [`Default`] is `devaddr capacity FILE`.
#[derive(Debug, Clone, Default)]
pub struct CapacityRequest {
    /// Device kinds to ask about (empty: the machine's representative set).
    pub kinds: Vec<String>,
    /// Only this NUMA node.
    pub node: Option<u32>,
    /// The devices counted have a 64-bit BAR this large (`--bar64`).
    pub bar64: Option<crate::spec::ByteSize>,
    /// The table shows only what fits now (the JSON rows always hold both).
    pub live: bool,
    /// Output format (default: table).
    pub format: Option<CapacityFormat>,
}

impl CapacityRequest {
    /// The `bar64` of a request written as text (`128G`), as the bindings pass it: bad
    /// text is bad input at `bar64`, worded as the spec's `bar64:` is.
    ///
    /// ```
    /// use devaddr::api::CapacityRequest;
    /// let size = CapacityRequest::parse_bar64("128G").unwrap();
    /// assert_eq!(size.bytes(), 128 << 30);
    /// assert!(CapacityRequest::parse_bar64("100G").is_err());
    /// ```
    pub fn parse_bar64(text: &str) -> Result<crate::spec::ByteSize> {
        text.parse()
            .map_err(|e: String| crate::error::Error::input("bar64", e))
    }
}

/// Answer `req` for `src` (a spec, planned first; a plan; or a libvirt domain, counted
/// under libvirt's rules), as `devaddr capacity` does.
pub fn capacity(src: Source<'_>, req: &CapacityRequest, opts: Options<'_>) -> Result<Output> {
    let format = req.format.unwrap_or(CapacityFormat::Table);
    let mut out = Output::default();
    if req.live && format == CapacityFormat::Json {
        out.warnings.push(
            "--live shapes the table only: the JSON rows always carry both `live` and \
             `next_boot`"
                .to_string(),
        );
    }
    let q = CapacityQuery::new(req.kinds.clone(), req.node).with_bar64(req.bar64);
    let what = "a spec, a plan or a libvirt <domain>";
    let rows = if crate::input::detect(src.text, src.name, what)? == Kind::Domain {
        crate::libvirt::capacity_domain_with(src.text, src.name, &q, opts)?
    } else {
        let s = Spec::parse(src.text, src.name)?;
        crate::capacity_with(&s, &q, opts).map_err(|e| e.in_source(src.name, src.text))?
    };
    out.text = match format {
        CapacityFormat::Json => pretty_json(&rows),
        CapacityFormat::Table => crate::formats::capacity_table(&rows, req.live),
    };
    Ok(out)
}
