//! The topology as a self-contained SVG picture, drawn by devaddr itself: the bus tree
//! laid out left to right (depth → column, one row per leaf, a parent on the row of its
//! first child, as `lspci -tv` lines them up), boxes coloured by kind, NUMA nodes as
//! tinted clusters, free hotplug places outlined, and a legend. The same plan gives
//! byte-identical output.

use super::view::{self, numa_colours, Kind, View};
use crate::catalog::Catalog;
use crate::topology::Plan;
use std::fmt::Write;

/// Font size of box text, px.
const FONT: u32 = 12;
/// Width of one character of the monospace font at [`FONT`], in tenths of a px.
const CHAR_W10: u32 = 74;
/// Height of a row and of a box, px.
const ROW: u32 = 24;
const BOX_H: u32 = 18;
/// Horizontal gap between columns (the connecting lines run in it), px.
const GAP: u32 = 28;
/// Margin around the picture, px.
const MARGIN: u32 = 16;
/// Inner padding of a box, px.
const PAD: u32 = 6;

/// Escape text for XML character data and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Width of `text` in px at the box font.
fn text_w(text: &str) -> u32 {
    (text.chars().count() as u32 * CHAR_W10).div_ceil(10)
}

/// The two parts of a box's text: the address part (`01.0 [01]`) and the name with tags.
fn box_text(v: &View, i: usize) -> (String, String) {
    let n = &v.nodes[i];
    let at = match (n.at.is_empty(), n.buses.is_empty()) {
        (true, true) => String::new(),
        (false, true) => n.at.clone(),
        (true, false) => n.buses.clone(),
        (false, false) => format!("{} {}", n.at, n.buses),
    };
    let mut name = n.name();
    let tags = short_tags(n, v.cluster_of(i));
    if !tags.is_empty() {
        name.push_str(&format!(" ({})", tags.join(", ")));
    }
    (at, name)
}

/// The tags a box shows: what colour, cluster and bus numbers do not already say (the
/// full list is in the box's tooltip).
fn short_tags(n: &view::Node, cluster: Option<u32>) -> Vec<&str> {
    let shown = cluster.map(|c| format!("node {c}"));
    n.tags
        .iter()
        .map(String::as_str)
        .filter(|t| !t.starts_with("bus_nr ") && Some(*t) != shown.as_deref())
        .filter(|t| !(matches!(n.kind, Kind::FreePort) && t.starts_with("empty")))
        .collect()
}

struct Layout {
    /// Column and row of each drawn node.
    pos: Vec<Option<(u32, u32)>>,
    /// Left x of each column, and its width.
    col_x: Vec<u32>,
    col_w: Vec<u32>,
    rows: u32,
    /// Rows of each node's subtree: first and last.
    span: Vec<(u32, u32)>,
}

fn layout(v: &View, top_nodes: &[usize]) -> Layout {
    let mut pos = vec![None; v.nodes.len()];
    let mut span = vec![(0, 0); v.nodes.len()];
    let mut row = 0;
    fn place(
        v: &View,
        i: usize,
        depth: u32,
        row: &mut u32,
        pos: &mut [Option<(u32, u32)>],
        span: &mut [(u32, u32)],
    ) {
        let first = *row;
        pos[i] = Some((depth, first));
        if v.nodes[i].children.is_empty() {
            *row += 1;
        }
        for &c in &v.nodes[i].children {
            place(v, c, depth + 1, row, pos, span);
        }
        span[i] = (first, row.saturating_sub(1).max(first));
    }
    for &t in top_nodes {
        place(v, t, 0, &mut row, &mut pos, &mut span);
    }
    let cols = pos.iter().flatten().map(|p| p.0 + 1).max().unwrap_or(1) as usize;
    let mut col_w = vec![0; cols];
    for (i, p) in pos.iter().enumerate() {
        if let Some((c, _)) = p {
            let (at, name) = box_text(v, i);
            let w = text_w(&at) + text_w(&name) + 3 * PAD;
            col_w[*c as usize] = col_w[*c as usize].max(w);
        }
    }
    let mut col_x = Vec::with_capacity(cols);
    let mut x = MARGIN + 8;
    for w in &col_w {
        col_x.push(x);
        x += w + GAP;
    }
    Layout {
        pos,
        col_x,
        col_w,
        rows: row,
        span,
    }
}

/// Render the plan as an SVG document.
pub fn render(plan: &Plan, cat: &Catalog) -> String {
    let Some(v) = view::build(plan, cat) else {
        return String::new();
    };
    let mut tops = vec![0];
    tops.extend(v.loose.iter().copied());
    let l = layout(&v, &tops);
    let header = 3 * ROW + 8;
    let tree_w = l.col_x.last().copied().unwrap_or(0) + l.col_w.last().copied().unwrap_or(0);
    // A strip right of the tree for the NUMA clusters' names.
    let clusters = v.clusters();
    let strip = clusters
        .iter()
        .map(|(n, _)| text_w(&format!("NUMA node {n}")) + 2 * PAD)
        .max()
        .unwrap_or(0);
    let tree_w = tree_w + strip;
    let (devs, ctls) = v.counts();
    let caption = format!("{devs} devices, {ctls} PCI buses and controllers");
    let free = format!("free: {}", v.free.join(", "));
    let legend_w: u32 = Kind::LEGEND
        .iter()
        .map(|k| 18 + text_w(k.legend()) + 18)
        .sum::<u32>()
        + 18
        + text_w("NUMA node")
        + MARGIN;
    let width = (tree_w + MARGIN + 8)
        .max(MARGIN * 2 + text_w(&free))
        .max(MARGIN * 2 + legend_w);
    let height = header + l.rows * ROW + MARGIN;
    let y_of = |row: u32| header + row * ROW;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, \
         monospace\" font-size=\"{FONT}\">"
    );
    let _ = writeln!(
        out,
        "<title>{}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>",
        escape(&v.title)
    );
    // Title, counts, free capacity and legend.
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"{}\" font-size=\"15\" font-weight=\"bold\">{}</text>\
         <text x=\"{}\" y=\"{}\" fill=\"#555555\">{}</text>",
        MARGIN + 8,
        escape(&v.title),
        MARGIN + text_w(&v.title) * 15 / FONT + 16,
        MARGIN + 8,
        escape(&caption)
    );
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"{}\" fill=\"#555555\">{}</text>",
        MARGIN + 8 + ROW - 4,
        escape(&free)
    );
    let ly = MARGIN + 2 * ROW - 6;
    let mut lx = MARGIN;
    let _ = writeln!(out, "<g class=\"legend\">");
    for k in Kind::LEGEND {
        let (fill, stroke) = k.colours();
        let dash = if k == Kind::FreePort {
            " stroke-dasharray=\"4 2\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<rect x=\"{lx}\" y=\"{ly}\" width=\"14\" height=\"14\" rx=\"3\" fill=\"{fill}\" \
             stroke=\"{stroke}\"{dash}/><text x=\"{}\" y=\"{}\">{}</text>",
            lx + 18,
            ly + 11,
            escape(k.legend())
        );
        lx += 18 + text_w(k.legend()) + 18;
    }
    let (fill, stroke) = numa_colours(0);
    let _ = writeln!(
        out,
        "<rect x=\"{lx}\" y=\"{ly}\" width=\"14\" height=\"14\" fill=\"{fill}\" \
         stroke=\"{stroke}\"/><text x=\"{}\" y=\"{}\">NUMA node</text>\n</g>",
        lx + 18,
        ly + 11,
    );
    // NUMA clusters behind the tree.
    for (node, members) in clusters {
        let head = members[0];
        let Some((col, _)) = l.pos[head] else {
            continue;
        };
        let (r0, r1) = l.span[head];
        let x = l.col_x[col as usize] - 8;
        let y = y_of(r0) - 3;
        let w = tree_w + 4 - x;
        let h = (r1 - r0 + 1) * ROW;
        let (fill, stroke) = numa_colours(node);
        let _ = writeln!(
            out,
            "<g class=\"numa\"><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"6\" \
             fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\" \
             fill=\"{stroke}\" font-weight=\"bold\">NUMA node {node}</text></g>",
            x + w - 6,
            y + 15
        );
        if r1 - r0 >= 10 {
            // Long clusters name their node at the bottom too.
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{stroke}\" \
                 font-weight=\"bold\">NUMA node {node}</text>",
                x + w - 6,
                y + h - 6
            );
        }
    }
    // Connecting lines: from a parent's right edge along a trunk in the gap to each child.
    let _ = writeln!(
        out,
        "<g class=\"links\" fill=\"none\" stroke=\"#777777\" stroke-width=\"1\">"
    );
    for (i, n) in v.nodes.iter().enumerate() {
        let (Some((col, row)), false) = (l.pos[i], n.children.is_empty()) else {
            continue;
        };
        let px = l.col_x[col as usize] + box_w(&v, i);
        let tx = l.col_x[col as usize + 1] - GAP / 2;
        let py = y_of(row) + BOX_H / 2;
        let mut d = format!("M{px} {py}H{tx}");
        let last = n
            .children
            .iter()
            .filter_map(|&c| l.pos[c])
            .map(|p| p.1)
            .max();
        if let Some(last) = last {
            d.push_str(&format!("V{}", y_of(last) + BOX_H / 2));
        }
        for &c in &n.children {
            if let Some((cc, cr)) = l.pos[c] {
                let cy = y_of(cr) + BOX_H / 2;
                d.push_str(&format!("M{tx} {cy}H{}", l.col_x[cc as usize]));
            }
        }
        let _ = writeln!(out, "<path d=\"{d}\"/>");
    }
    let _ = writeln!(out, "</g>");
    // Boxes.
    for (i, n) in v.nodes.iter().enumerate() {
        let Some((col, row)) = l.pos[i] else {
            continue;
        };
        let x = l.col_x[col as usize];
        let y = y_of(row);
        let w = box_w(&v, i);
        let (fill, stroke) = n.kind.colours();
        let dash = if matches!(n.kind, Kind::FreePort | Kind::FreeSlots) {
            " stroke-dasharray=\"4 2\""
        } else {
            ""
        };
        let (at, name) = box_text(&v, i);
        let mut tip = format!("{} {}", n.at, n.name());
        if !n.buses.is_empty() {
            tip.push_str(&format!(" bus {}", n.buses));
        }
        if !n.tags.is_empty() {
            tip.push_str(&format!(" ({})", n.tags.join(", ")));
        }
        let _ = write!(
            out,
            "<g class=\"{}\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" \
             height=\"{BOX_H}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\"{dash}/>",
            class(n.kind),
            escape(tip.trim())
        );
        let ty = y + BOX_H - 5;
        if at.is_empty() {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{ty}\">{}</text>",
                x + PAD,
                escape(&name)
            );
        } else {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{ty}\" fill=\"#666666\">{}</text><text x=\"{}\" \
                 y=\"{ty}\">{}</text>",
                x + PAD,
                escape(&at),
                x + 2 * PAD + text_w(&at),
                escape(&name)
            );
        }
        let _ = writeln!(out, "</g>");
    }
    out.push_str("</svg>\n");
    out
}

/// Width of node `i`'s box.
fn box_w(v: &View, i: usize) -> u32 {
    let (at, name) = box_text(v, i);
    let gap = if at.is_empty() { 0 } else { PAD };
    text_w(&at) + gap + text_w(&name) + 2 * PAD
}

fn class(k: Kind) -> &'static str {
    match k {
        Kind::RootBus => "bus",
        Kind::Controller => "controller",
        Kind::FreePort => "free-port",
        Kind::FreeSlots => "free-slots",
        Kind::Device => "device",
        Kind::Builtin => "builtin",
    }
}
