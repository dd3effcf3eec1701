//! The topology as Graphviz source (`dot -Tsvg plan.dot`): the bus tree left to right,
//! nodes coloured by kind as in the SVG picture, NUMA nodes as clusters, free hotplug
//! places outlined, and a legend. The same plan gives byte-identical output.

use super::view::{self, numa_colours, Kind};
use crate::catalog::Catalog;
use crate::topology::Plan;
use std::fmt::Write;

/// A DOT double-quoted string.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Render the plan as a Graphviz `digraph`.
pub fn render(plan: &Plan, cat: &Catalog) -> String {
    let Some(v) = view::build(plan, cat) else {
        return String::new();
    };
    let mut out = String::new();
    let (devs, ctls) = v.counts();
    let caption = format!(
        "{}: {devs} devices, {ctls} PCI buses and controllers\nfree: {}",
        v.title,
        v.free.join(", ")
    );
    let _ = writeln!(out, "digraph devaddr {{");
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, ordering=out, ranksep=0.3, nodesep=0.08, \
         fontname=\"DejaVu Sans Mono\", fontsize=12, labelloc=t, labeljust=l, label={}];",
        quote(&caption)
    );
    let _ = writeln!(
        out,
        "  node [shape=box, style=\"rounded,filled\", fontname=\"DejaVu Sans Mono\", \
         fontsize=10, height=0.25, margin=\"0.06,0.02\"];"
    );
    let _ = writeln!(out, "  edge [arrowhead=none, color=\"#777777\"];");
    let node_line = |i: usize| {
        let n = &v.nodes[i];
        let mut label = String::new();
        if !n.at.is_empty() || !n.buses.is_empty() {
            label.push_str(format!("{} {}", n.at, n.buses).trim());
            label.push('\n');
        }
        label.push_str(&n.name());
        if !n.tags.is_empty() {
            label.push_str(&format!("\n({})", n.tags.join(", ")));
        }
        let (fill, stroke) = n.kind.colours();
        let style = if matches!(n.kind, Kind::FreePort | Kind::FreeSlots) {
            ", style=\"rounded,filled,dashed\""
        } else {
            ""
        };
        format!(
            "n{i} [label={}, fillcolor=\"{fill}\", color=\"{stroke}\"{style}];",
            quote(&label)
        )
    };
    let mut drawn = vec![false; v.nodes.len()];
    for (node, members) in v.clusters() {
        let (fill, stroke) = numa_colours(node);
        let _ = writeln!(
            out,
            "  subgraph cluster_numa{} {{\n    label=\"NUMA node {node}\"; style=\"rounded,filled\"; \
             fillcolor=\"{fill}\"; color=\"{stroke}\"; fontcolor=\"{stroke}\";",
            members[0]
        );
        for &m in &members {
            if !drawn[m] {
                drawn[m] = true;
                let _ = writeln!(out, "    {}", node_line(m));
            }
        }
        let _ = writeln!(out, "  }}");
    }
    let mut all = v.subtree(0);
    for &l in &v.loose {
        all.extend(v.subtree(l));
    }
    for &i in &all {
        if !drawn[i] {
            drawn[i] = true;
            let _ = writeln!(out, "  {}", node_line(i));
        }
    }
    for &i in &all {
        for &c in &v.nodes[i].children {
            let _ = writeln!(out, "  n{i} -> n{c};");
        }
    }
    // Legend.
    let _ = writeln!(
        out,
        "  subgraph cluster_legend {{\n    label=\"legend\"; color=\"#bbbbbb\";"
    );
    for (k, kind) in Kind::LEGEND.iter().enumerate() {
        let (fill, stroke) = kind.colours();
        let style = if *kind == Kind::FreePort {
            ", style=\"rounded,filled,dashed\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "    legend{k} [label={}, fillcolor=\"{fill}\", color=\"{stroke}\"{style}];",
            quote(kind.legend())
        );
    }
    let (fill, stroke) = numa_colours(0);
    let _ = writeln!(
        out,
        "    legend_numa [label=\"NUMA node\", shape=box, style=filled, fillcolor=\"{fill}\", \
         color=\"{stroke}\"];"
    );
    let _ = writeln!(out, "  }}\n}}");
    out
}
