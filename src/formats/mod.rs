//! Output formats: YAML/JSON plans, a tree view, QEMU arguments.

pub mod models;
pub mod qemu;
pub mod tree;

use crate::{Catalog, Plan};

/// Output format names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Tree,
    Qemu,
}

/// Render a plan.
pub fn render(plan: &Plan, format: Format, cat: &Catalog) -> String {
    match format {
        Format::Yaml => plan.to_yaml(),
        Format::Json => plan.to_json(),
        Format::Tree => tree::render(plan, cat),
        Format::Qemu => qemu::render(plan, cat)
            .into_iter()
            .map(|a| a + "\n")
            .collect(),
    }
}
