//! Output formats: YAML/JSON plans, a tree view, pictures (Graphviz, SVG), QEMU arguments.

pub mod dot;
pub mod models;
pub mod qemu;
pub mod svg;
pub mod tree;
mod view;

use crate::{Catalog, Plan};

/// Output format names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The plan as YAML (DESIGN §5).
    Yaml,
    /// The plan as JSON, the same structure as YAML.
    Json,
    /// A tree of buses, slots and devices, like `lspci -tv`.
    Tree,
    /// QEMU command-line arguments (`-machine`, `-device` …), one per line.
    Qemu,
    /// Graphviz source of the topology picture (`dot -Tsvg`).
    Dot,
    /// The topology picture as a self-contained SVG document.
    Svg,
}

/// Render a plan.
pub fn render(plan: &Plan, format: Format, cat: &Catalog) -> String {
    match format {
        Format::Yaml => plan.to_yaml(),
        Format::Json => plan.to_json(),
        Format::Tree => tree::render(plan, cat),
        Format::Dot => dot::render(plan, cat),
        Format::Svg => svg::render(plan, cat),
        Format::Qemu => qemu::render(plan, cat)
            .into_iter()
            .map(|a| a + "\n")
            .collect(),
    }
}

/// The capacity answer as a table: kind, node, how many more fit now and at next boot
/// (`live_only`: just the live column).
pub fn capacity_table(rows: &[crate::CapacityRow], live_only: bool) -> String {
    let mut out = String::new();
    let w = rows.iter().map(|r| r.kind.len()).max().unwrap_or(4).max(4);
    if live_only {
        out.push_str(&format!("{:<w$}  {:>5}  {:>5}\n", "KIND", "NODE", "LIVE"));
    } else {
        out.push_str(&format!(
            "{:<w$}  {:>5}  {:>5}  {:>9}\n",
            "KIND", "NODE", "LIVE", "NEXT_BOOT"
        ));
    }
    for r in rows {
        let node = r.node.map_or("-".to_string(), |n| n.to_string());
        if live_only {
            out.push_str(&format!("{:<w$}  {:>5}  {:>5}\n", r.kind, node, r.live));
        } else {
            out.push_str(&format!(
                "{:<w$}  {:>5}  {:>5}  {:>9}\n",
                r.kind, node, r.live, r.next_boot
            ));
        }
    }
    out
}
