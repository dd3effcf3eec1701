//! The pictures of a plan: `--format tree` (guest bus numbers like `lspci -tv`), `dot`
//! and `svg`.
//!
//! * The SVG is well-formed XML, names every device and controller id of the plan in its
//!   text, keeps every box inside the picture and no two boxes overlapping, draws one
//!   outlined free port for every free hotplug PCIe port the plan counts (and free-slot
//!   boxes adding up to its free PCI slots), and one NUMA cluster per expander bus.
//! * The dot source names every id; Graphviz's `dot -Tsvg` accepts it when installed.
//! * The SVG renders in headless chromium when installed.
//! * Tree, dot and svg are byte-identical for the same plan; the tree's bus numbers are
//!   the library's [`BusNumbering`] (the qemu_real boot test compares them with SeaBIOS).
//!
//! Without `dot` or `chromium` those checks print SKIPPED and pass, unless `CI` is set.

mod common;
use common::spec_files;
use devaddr::formats::{render, Format};
use devaddr::topology::{Address, BusNumbering};
use devaddr::{Catalog, Plan, Spec};
use quick_xml::events::Event;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI must run this test, but: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn plan_of(path: &Path) -> Plan {
    let text = std::fs::read_to_string(path).unwrap();
    let spec = Spec::parse(&text, &path.display().to_string()).unwrap();
    devaddr::plan(&spec).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every id of the plan: devices and controllers.
fn ids(plan: &Plan) -> Vec<String> {
    plan.controllers
        .iter()
        .map(|c| c.id.clone())
        .chain(plan.devices.iter().map(|d| d.id.clone()))
        .collect()
}

/// A box of the SVG: its class, rectangle, and the text drawn in it.
#[derive(Debug, Default)]
struct SvgBox {
    class: String,
    rect: (f64, f64, f64, f64),
    text: String,
}

/// Parsed SVG: size, the boxes (groups with a class holding a rect), NUMA clusters, all
/// text outside `<title>` tooltips.
#[derive(Debug, Default)]
struct Svg {
    size: (f64, f64),
    boxes: Vec<SvgBox>,
    clusters: usize,
    texts: Vec<String>,
}

fn parse_svg(text: &str) -> Result<Svg, String> {
    let mut r = quick_xml::Reader::from_str(text);
    let mut out = Svg::default();
    let mut stack: Vec<String> = Vec::new();
    let mut group: Option<SvgBox> = None;
    let mut roots = 0;
    let mut text = String::new();
    let num = |e: &quick_xml::events::BytesStart, k: &str| -> f64 {
        e.try_get_attribute(k)
            .ok()
            .flatten()
            .and_then(|a| a.value.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let attr = |e: &quick_xml::events::BytesStart, k: &str| -> String {
        e.try_get_attribute(k)
            .ok()
            .flatten()
            .map(|a| a.value.to_string())
            .unwrap_or_default()
    };
    loop {
        match r.read_event().map_err(|e| format!("not XML: {e}"))? {
            Event::Start(e) => {
                let n = e.name().as_ref().to_string();
                if stack.is_empty() {
                    roots += 1;
                    if n != "svg" {
                        return Err(format!("root element <{n}>"));
                    }
                    out.size = (num(&e, "width"), num(&e, "height"));
                }
                if n == "g" {
                    let class = attr(&e, "class");
                    if class == "numa" {
                        out.clusters += 1;
                    }
                    group = Some(SvgBox {
                        class,
                        ..SvgBox::default()
                    });
                }
                stack.push(n);
            }
            Event::Empty(e) if e.name().as_ref() == "rect" => {
                // A group's box is its first rect.
                if let Some(g) = group.as_mut().filter(|g| g.rect == (0.0, 0.0, 0.0, 0.0)) {
                    g.rect = (
                        num(&e, "x"),
                        num(&e, "y"),
                        num(&e, "width"),
                        num(&e, "height"),
                    );
                }
            }
            Event::End(_) => match stack.pop().as_deref() {
                Some("g") => out.boxes.extend(group.take()),
                Some("text") => {
                    if let Some(g) = group.as_mut() {
                        g.text.push_str(&text);
                        g.text.push(' ');
                    }
                    out.texts.push(std::mem::take(&mut text));
                }
                _ => {}
            },
            Event::Text(t) if stack.last().map(String::as_str) == Some("text") => {
                text.push_str(&t);
            }
            Event::GeneralRef(r) => {
                let name = r.to_string();
                let c: char = match name.as_str() {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    other => {
                        let code = match other.strip_prefix("#x") {
                            Some(h) => u32::from_str_radix(h, 16).ok(),
                            None => other.strip_prefix('#').and_then(|d| d.parse().ok()),
                        };
                        code.and_then(char::from_u32)
                            .ok_or_else(|| format!("unknown entity &{other};"))?
                    }
                };
                if stack.last().map(String::as_str) == Some("text") {
                    text.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if roots != 1 || !stack.is_empty() {
        return Err("not one closed <svg> root".into());
    }
    Ok(out)
}

/// The words of all texts.
fn words(texts: &[String]) -> BTreeSet<String> {
    texts
        .iter()
        .flat_map(|t| t.split([' ', '(', ')', ',']))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn svg_is_xml_names_every_id_and_boxes_do_not_overlap() {
    let cat = Catalog::embedded();
    for path in spec_files() {
        let ex = name(&path);
        let plan = plan_of(&path);
        let text = render(&plan, Format::Svg, cat);
        assert_eq!(
            text,
            render(&plan, Format::Svg, cat),
            "{ex}: not deterministic"
        );
        let svg = parse_svg(&text).unwrap_or_else(|e| panic!("{ex}: {e}"));
        let w = words(&svg.texts);
        for id in ids(&plan) {
            assert!(w.contains(&id), "{ex}: id {id} is not in the SVG's text");
        }
        // Boxes inside the picture, none overlapping another.
        let boxes: Vec<&SvgBox> = svg
            .boxes
            .iter()
            .filter(|b| !matches!(b.class.as_str(), "numa" | "legend" | "links"))
            .collect();
        assert!(boxes.len() > ids(&plan).len() / 2, "{ex}: too few boxes");
        let (sw, sh) = svg.size;
        for b in &boxes {
            let (x, y, bw, bh) = b.rect;
            assert!(
                x >= 0.0 && y >= 0.0 && x + bw <= sw && y + bh <= sh && bw > 0.0,
                "{ex}: box {:?} outside the {sw}x{sh} picture",
                b
            );
        }
        let mut by_y: Vec<&&SvgBox> = boxes.iter().collect();
        by_y.sort_by(|a, b| a.rect.1.total_cmp(&b.rect.1));
        for (i, a) in by_y.iter().enumerate() {
            for b in by_y[i + 1..]
                .iter()
                .take_while(|b| b.rect.1 < a.rect.1 + a.rect.3)
            {
                let apart = a.rect.0 + a.rect.2 <= b.rect.0 || b.rect.0 + b.rect.2 <= a.rect.0;
                assert!(apart, "{ex}: boxes overlap: {:?} and {:?}", a.text, b.text);
            }
        }
        // Free hotplug places as the plan counts them.
        let free_ports = boxes.iter().filter(|b| b.class == "free-port").count() as u32;
        let plan_ports: u32 = plan.free.hotplug_pcie_ports.values().sum();
        assert_eq!(free_ports, plan_ports, "{ex}: free PCIe ports drawn");
        let free_slots: u32 = boxes
            .iter()
            .filter(|b| b.class == "free-slots")
            .map(|b| {
                b.text
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<u32>()
                    .unwrap()
            })
            .sum();
        let plan_slots: u32 = plan.free.hotplug_pci_slots.values().sum();
        assert_eq!(free_slots, plan_slots, "{ex}: free PCI slots drawn");
        // One cluster per expander bus with a NUMA node.
        let expanders = plan
            .controllers
            .iter()
            .filter(|c| c.model.ends_with("expander-bus") && c.numa_node.is_some())
            .count();
        assert_eq!(svg.clusters, expanders, "{ex}: NUMA clusters");
    }
}

#[test]
fn svg_parser_of_this_test_rejects_broken_svg() {
    let plan = plan_of(&root().join("examples/numa.yaml"));
    let text = render(&plan, Format::Svg, Catalog::embedded());
    assert!(parse_svg(&text).is_ok());
    let cut = &text[..text.len() / 2];
    assert!(parse_svg(cut).is_err(), "a truncated SVG must not pass");
    assert!(parse_svg(&text.replacen("</text>", "</txt>", 1)).is_err());
    assert!(parse_svg(&text.replacen("pci.5", "pci&5;", 1)).is_err());
}

/// The id of each DOT node label, and the nodes and edges.
#[test]
fn dot_names_every_id_and_graphviz_accepts_it() {
    let cat = Catalog::embedded();
    let dot_bin = Command::new("dot").arg("-V").output().is_ok();
    if !dot_bin {
        skip("Graphviz `dot` is not installed (apt-get install graphviz): DOT not laid out");
    }
    let dir = common::scratch("devaddr-pictures");
    for path in spec_files() {
        let ex = name(&path);
        let plan = plan_of(&path);
        let text = render(&plan, Format::Dot, cat);
        assert_eq!(
            text,
            render(&plan, Format::Dot, cat),
            "{ex}: not deterministic"
        );
        assert!(text.starts_with("digraph devaddr {") && text.ends_with("}\n"));
        let labels: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_once("label=\"").map(|(_, r)| r.to_string()))
            .map(|l| l.split('"').next().unwrap_or("").replace("\\n", " "))
            .collect();
        let w = words(&labels);
        for id in ids(&plan) {
            assert!(w.contains(&id), "{ex}: id {id} is not in a DOT label");
        }
        if dot_bin {
            let file = dir.join(format!("{ex}.dot"));
            std::fs::write(&file, &text).unwrap();
            let o = Command::new("dot")
                .arg("-Tsvg")
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{ex}: dot -Tsvg refused it: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let svg = parse_svg(&String::from_utf8_lossy(&o.stdout))
                .unwrap_or_else(|e| panic!("{ex}: Graphviz's SVG: {e}"));
            let w = words(&svg.texts);
            for id in ids(&plan) {
                assert!(w.contains(&id), "{ex}: Graphviz dropped {id}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_writes_svg_and_dot() {
    let path = root().join("examples/numa.yaml");
    let p = path.to_str().unwrap();
    let plan = plan_of(&path);
    let cat = Catalog::embedded();
    for (f, fmt) in [
        ("svg", Format::Svg),
        ("dot", Format::Dot),
        ("tree", Format::Tree),
    ] {
        let out = common::devaddr_ok(&["plan", p, "--format", f]);
        assert_eq!(out, render(&plan, fmt, cat), "--format {f}");
    }
    // The README's sample picture is today's picture of examples/numa.yaml.
    let sample = std::fs::read_to_string(root().join("docs/q35-numa.svg")).unwrap();
    assert_eq!(
        sample,
        render(&plan, Format::Svg, cat),
        "docs/q35-numa.svg is stale: devaddr plan examples/numa.yaml --format svg -o docs/q35-numa.svg"
    );
}

/// Guest bus numbers each line of the tree shows, by id: `(first, last)` of the
/// bracket after the slot (a root bus's `[0000:fd-ff]`, a pxb's `[0000:fb]-00.0-[fc-fd]`
/// gives its last bracket, the bus its devices sit on).
fn tree_numbers(tree: &str) -> BTreeMap<String, (u32, u32)> {
    let mut out = BTreeMap::new();
    for l in tree.lines() {
        let Some(i) = l.find("-[") else { continue };
        let rest = &l[i..];
        let (brackets, tail) = rest.split_once(' ').unwrap();
        let id = tail.split_whitespace().next().unwrap().to_string();
        let last = brackets.rsplit("-[").next().unwrap().trim_end_matches(']');
        let last = last.rsplit(':').next().unwrap();
        let (a, b) = last.split_once('-').unwrap_or((last, last));
        let hex = |s: &str| u32::from_str_radix(s, 16).unwrap();
        out.insert(id, (hex(a), hex(b)));
    }
    out
}

#[test]
fn tree_shows_the_guest_bus_numbers() {
    let cat = Catalog::embedded();
    // Hand-checked: q35 root ports 01, 02; the node 0 expander (bus_nr 253 = fd) with its
    // ports fe, ff; node 1 (248 = f8) with f9-fc.
    let plan = plan_of(&root().join("examples/numa.yaml"));
    let tree = render(&plan, Format::Tree, cat);
    let n = tree_numbers(&tree);
    let want: BTreeMap<String, (u32, u32)> = [
        ("pci.0", (0, 0)),
        ("pci.1", (1, 1)),
        ("pci.2", (2, 2)),
        ("pci.3", (0xfd, 0xff)),
        ("pci.5", (0xfe, 0xfe)),
        ("pci.6", (0xff, 0xff)),
        ("pci.4", (0xf8, 0xfc)),
        ("pci.7", (0xf9, 0xf9)),
        ("pci.10", (0xfc, 0xfc)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (id, v) in &want {
        assert_eq!(n.get(id), Some(v), "{id} in\n{tree}");
    }
    assert!(
        tree.starts_with("q35 (x86_64) -[0000:00] pci.0 pcie-root\n"),
        "{tree}"
    );
    // The i440fx pxb: its root bus is bus_nr, its devices sit behind the internal bridge.
    let plan = plan_of(&root().join("tests/qemu-specs/pc-numa2.yaml"));
    let tree = render(&plan, Format::Tree, cat);
    assert!(
        tree.contains("+-03.0-[0000:fb]-00.0-[fc-fd] pci.2 pci-expander-bus"),
        "{tree}"
    );
    assert!(tree.contains("[27 free hotplug slots]"), "{tree}");
    // Every plan: every PCI bus shows the library's number, numbers are unique, and every
    // id is in the tree.
    for path in spec_files() {
        let ex = name(&path);
        let plan = plan_of(&path);
        let tree = render(&plan, Format::Tree, cat);
        assert_eq!(tree, render(&plan, Format::Tree, cat), "{ex}");
        let numbering = BusNumbering::of_controllers(&plan.controllers, cat);
        let shown = tree_numbers(&tree);
        let mut seen = BTreeSet::new();
        for c in plan
            .controllers
            .iter()
            .filter(|c| cat.pci.contains_key(&c.model))
        {
            let g = numbering.guest[&c.index];
            assert!(seen.insert(g), "{ex}: bus number {g:#x} twice");
            assert_eq!(shown.get(&c.id).map(|s| s.0), Some(g), "{ex}: {}", c.id);
        }
        for id in ids(&plan) {
            assert!(
                tree.split([' ', '\n']).any(|w| w == id),
                "{ex}: {id} not in the tree"
            );
        }
        for d in &plan.devices {
            if let Some(Address::Pci(a)) = &d.address {
                let line = format!("{:02x}.{} {} {}", a.slot, a.function, d.id, d.kind);
                assert!(tree.contains(&line), "{ex}: no line `{line}`");
            }
        }
    }
}

#[test]
fn bus_numbers_stay_within_each_hierarchy_range() {
    // The numbering and the budget agree: an expander's buses lie in [bus_nr, bus_nr +
    // need), the root hierarchy's below every expander's bus_nr.
    let cat = Catalog::embedded();
    for path in spec_files() {
        let ex = name(&path);
        let plan = plan_of(&path);
        let n = BusNumbering::of_controllers(&plan.controllers, cat);
        let lowest = plan
            .controllers
            .iter()
            .filter_map(|c| c.bus_nr)
            .min()
            .unwrap_or(256);
        for c in plan
            .controllers
            .iter()
            .filter(|c| cat.pci.contains_key(&c.model))
        {
            let g = n.guest[&c.index];
            let mut cur = c;
            let expander = loop {
                if c.index == 0 {
                    break None;
                }
                if cur.bus_nr.is_some() {
                    break Some(cur);
                }
                let Some(Address::Pci(a)) = &cur.address else {
                    break None;
                };
                match a.bus {
                    0 => break None,
                    p => cur = plan.controllers.iter().find(|x| x.index == p).unwrap(),
                }
            };
            match expander {
                Some(e) => {
                    let nr = e.bus_nr.unwrap();
                    let need = n.expander_need[&e.index];
                    assert!(nr <= g && g < nr + need, "{ex}: {} at {g:#x}", c.id);
                }
                None => assert!(g < lowest.min(n.root_need), "{ex}: {} at {g:#x}", c.id),
            }
        }
    }
}

#[test]
fn svg_renders_in_headless_chromium() {
    let Some(bin) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
    else {
        skip("chromium is not installed (apt-get install chromium): SVG not rendered");
        return;
    };
    let dir = common::scratch("devaddr-chromium");
    let plan = plan_of(&root().join("examples/numa.yaml"));
    let text = render(&plan, Format::Svg, Catalog::embedded());
    let svg = parse_svg(&text).unwrap();
    let (w, h) = (svg.size.0 as u32, svg.size.1 as u32);
    // The picture, and a blank one of the same size: the picture's PNG must carry more.
    let blank = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/></svg>\n"
    );
    let mut sizes = Vec::new();
    for (name, body) in [("numa", text.as_str()), ("blank", blank.as_str())] {
        let file = dir.join(format!("{name}.svg"));
        let png = dir.join(format!("{name}.png"));
        std::fs::write(&file, body).unwrap();
        let profile = dir.join(format!("profile-{name}"));
        let o = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={w},{h}"))
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("file://{}", file.display()))
            .output()
            .unwrap();
        let bytes = std::fs::read(&png).unwrap_or_else(|e| {
            panic!(
                "chromium wrote no screenshot ({e}): {}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
        assert!(bytes.starts_with(b"\x89PNG"), "{name}: not a PNG");
        // PNG IHDR: width and height.
        let dim = |o: usize| u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap());
        assert_eq!((dim(16), dim(20)), (w, h), "{name}: screenshot size");
        sizes.push(bytes.len());
    }
    assert!(
        sizes[0] > 4 * sizes[1],
        "the rendered picture ({} bytes) is hardly more than a blank page ({} bytes)",
        sizes[0],
        sizes[1]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
