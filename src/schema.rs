//! JSON Schemas (draft 2020-12) of what devaddr reads and writes, generated from the
//! Rust types with schemars: a spec (also a plan, which is a valid spec), a plan as
//! devaddr writes it, and the rows `devaddr capacity --format json` prints.
//!
//! The schemas describe the data after YAML parsing: a YAML spec validates once read
//! into JSON values (`0x1f` in YAML is the integer 31). They carry the number ranges
//! devaddr checks before planning (slot 0-31, function 0-7, NUMA node 0-63…); what
//! depends on the catalog (kinds, machines, models) or on the whole topology is checked
//! by devaddr itself.
//!
//! ```
//! let schema = devaddr::schema::spec();
//! assert_eq!(schema.get("title"), Some(&serde_json::json!("Spec")));
//! assert!(devaddr::schema::to_json(devaddr::schema::Document::Plan).contains("\"devaddr\""));
//! ```

use schemars::{JsonSchema, Schema};

/// Which document a schema describes (`devaddr schema spec|plan|capacity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Document {
    /// A spec (input of `plan`, `capacity`, `check`); a plan validates as a spec too.
    Spec,
    /// A plan as `devaddr plan` writes it (YAML or JSON).
    Plan,
    /// The output of `devaddr capacity --format json`: a list of rows.
    Capacity,
}

pub(crate) fn generate<T: JsonSchema>() -> Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// The schema of a spec.
pub fn spec() -> Schema {
    generate::<crate::Spec>()
}

/// The schema of a plan.
pub fn plan() -> Schema {
    generate::<crate::Plan>()
}

/// The schema of `devaddr capacity --format json`.
pub fn capacity() -> Schema {
    generate::<Vec<crate::CapacityRow>>()
}

/// The schema of `doc`, as pretty-printed JSON with a final newline.
pub fn to_json(doc: Document) -> String {
    let schema = match doc {
        Document::Spec => spec(),
        Document::Plan => plan(),
        Document::Capacity => capacity(),
    };
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
