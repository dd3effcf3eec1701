//! Domains libvirt 9.0 refuses for reasons outside addressing (`refusals:` in
//! models/libvirt.yaml): a model its schema does not know, a device a machine type cannot
//! have, a storage format QEMU does not take. Each rule names elements of the domain with
//! a small path language and says when libvirt refuses them; the first rule that matches
//! refuses the domain with libvirt's words. Runs on the domain as written, before any
//! default is applied, as libvirt's parse and validation do.
//!
//! Paths: steps separated by `/` from `<domain>` (`devices/iommu`), `*` for any element,
//! `.` for the element itself; each step may carry predicates: `[attr]` (present),
//! `[!attr]` (absent), `[attr=a|b]` (one of), `[attr!=a|b]` (absent or none of),
//! `[attr%N]` (an integer that is a multiple of N), `[attr!%N]` (an integer that is not),
//! `[attr>N]` (an integer greater than N).
//! The attribute name `#text` stands for the element's text (trimmed; absent when empty),
//! so `[#text]` is "has content" and `[!#text]` "is empty".
//!
//! Messages may name `{arch}` and `{machine}` (the guest's, as written) besides the found
//! element's attributes. A few checks compare numbers across elements and are code, not
//! rules: the CPU topology against the vCPU count, hugepage node sets and NUMA distance
//! siblings against the guest's NUMA cells, and the `<vcpu cpuset>` syntax.

use super::fail;
use super::policy::Policy;
use super::Machine;
use crate::xml::Element;
use crate::Error;
use serde::Deserialize;

/// One refusal: where it applies and libvirt's message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusalRule {
    /// The elements it is about, a path from `<domain>`.
    pub at: String,
    /// Element names `at` skips (with `*`: every element but these).
    #[serde(default)]
    pub except: Vec<String>,
    /// Paths from the element found that must each find something.
    #[serde(default)]
    pub has: Vec<String>,
    /// Paths from the element found that must find nothing.
    #[serde(default)]
    pub lacks: Vec<String>,
    /// Paths from `<domain>` that must each find something.
    #[serde(default)]
    pub domain_has: Vec<String>,
    /// Paths from `<domain>` that must find nothing.
    #[serde(default)]
    pub domain_lacks: Vec<String>,
    /// Only on these guest architectures.
    #[serde(default)]
    pub arch: Vec<String>,
    /// Not on these guest architectures.
    #[serde(default)]
    pub not_arch: Vec<String>,
    /// Only on these machine families (`machines:` names).
    #[serde(default)]
    pub machine: Vec<String>,
    /// Not on these machine families (`machines:` names); an unknown machine is in none.
    #[serde(default)]
    pub not_machine: Vec<String>,
    /// Refuse only the second element found (a kind libvirt 9.0 takes once).
    #[serde(default)]
    pub second: bool,
    /// Only as `virsh define` of libvirt 9.0 refuses it (`--new-domain`): newer libvirt,
    /// whose test suite devaddr follows otherwise, accepts it.
    #[serde(default)]
    pub live: bool,
    /// libvirt's message; `{name}` stands for the found element's attribute `name`,
    /// `{element}` for its element name.
    pub refusal: String,
}

/// A predicate of a path step.
#[derive(Debug, PartialEq)]
enum Pred {
    Present(String),
    Absent(String),
    OneOf(String, Vec<String>),
    NoneOf(String, Vec<String>),
    Multiple(String, u64),
    NotMultiple(String, u64),
    Greater(String, u64),
}

/// An attribute's value, or the element's text for `#text`.
fn value(el: &Element, a: &str) -> Option<String> {
    if a == "#text" {
        super::lower::text(el).filter(|t| !t.is_empty())
    } else {
        el.attr(a)
    }
}

impl Pred {
    fn parse(s: &str) -> Option<Pred> {
        let list = |v: &str| v.split('|').map(str::to_string).collect();
        if let Some((a, n)) = s.split_once("!%") {
            Some(Pred::NotMultiple(
                a.into(),
                n.parse().ok().filter(|n| *n > 0)?,
            ))
        } else if let Some((a, n)) = s.split_once('%') {
            Some(Pred::Multiple(a.into(), n.parse().ok().filter(|n| *n > 0)?))
        } else if let Some((a, n)) = s.split_once('>') {
            Some(Pred::Greater(a.into(), n.parse().ok()?))
        } else if let Some((a, v)) = s.split_once("!=") {
            Some(Pred::NoneOf(a.into(), list(v)))
        } else if let Some((a, v)) = s.split_once('=') {
            Some(Pred::OneOf(a.into(), list(v)))
        } else if let Some(a) = s.strip_prefix('!') {
            Some(Pred::Absent(a.into()))
        } else {
            (!s.is_empty()).then(|| Pred::Present(s.into()))
        }
    }

    fn holds(&self, el: &Element) -> bool {
        match self {
            Pred::Present(a) => value(el, a).is_some(),
            Pred::Absent(a) => value(el, a).is_none(),
            Pred::OneOf(a, vs) => value(el, a).is_some_and(|v| vs.contains(&v)),
            Pred::NoneOf(a, vs) => value(el, a).is_none_or(|v| !vs.contains(&v)),
            Pred::Multiple(a, n) => number(el, a).is_some_and(|v| v % n == 0),
            Pred::NotMultiple(a, n) => number(el, a).is_some_and(|v| v % n != 0),
            Pred::Greater(a, n) => number(el, a).is_some_and(|v| v > *n),
        }
    }
}

/// An attribute (or `#text`) read as an unsigned integer, decimal or `0x` hex.
fn number(el: &Element, a: &str) -> Option<u64> {
    let v = value(el, a)?;
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// One step of a path: an element name (`*`: any, `.`: the element itself) and its
/// predicates.
#[derive(Debug, PartialEq)]
struct Step {
    name: String,
    preds: Vec<Pred>,
}

/// Parse a path; `None` when it is malformed (the table test catches that).
fn parse_path(path: &str) -> Option<Vec<Step>> {
    path.split('/')
        .map(|s| {
            let (name, rest) = s.split_at(s.find('[').unwrap_or(s.len()));
            let mut preds = Vec::new();
            let mut rest = rest;
            while let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']')?;
                preds.push(Pred::parse(&r[..end])?);
                rest = &r[end + 1..];
            }
            (rest.is_empty() && !name.is_empty()).then(|| Step {
                name: name.into(),
                preds,
            })
        })
        .collect()
}

/// The elements a path finds from `el`, in document order.
fn select<'a>(el: &'a Element, steps: &[Step], out: &mut Vec<&'a Element>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(el);
        return;
    };
    let here = |e: &Element| step.preds.iter().all(|p| p.holds(e));
    if step.name == "." {
        if here(el) {
            select(el, rest, out);
        }
        return;
    }
    for c in el.elements() {
        if (step.name == "*" || c.name == step.name) && here(c) {
            select(c, rest, out);
        }
    }
}

/// Whether a path finds anything from `el` (a malformed path finds nothing).
fn finds(el: &Element, path: &str) -> bool {
    let mut out = Vec::new();
    if let Some(steps) = parse_path(path) {
        select(el, &steps, &mut out);
    }
    !out.is_empty()
}

/// `<name a='v' …>` of an element, for the error's location.
fn describe(el: &Element) -> String {
    let attrs: String = el
        .attrs
        .iter()
        .map(|a| format!(" {}='{}'", a.name, a.value()))
        .collect();
    format!("<{}{attrs}>", el.name)
}

/// The first element a rule refuses, if any.
fn refused<'a>(rule: &RefusalRule, root: &'a Element, m: &Machine) -> Option<&'a Element> {
    if (!rule.arch.is_empty() && !rule.arch.contains(&m.arch))
        || rule.not_arch.contains(&m.arch)
        || m.rule.is_some_and(|r| rule.not_machine.contains(&r.name))
        || (!rule.machine.is_empty() && !m.rule.is_some_and(|r| rule.machine.contains(&r.name)))
        || !rule.domain_has.iter().all(|p| finds(root, p))
        || rule.domain_lacks.iter().any(|p| finds(root, p))
    {
        return None;
    }
    let mut found = Vec::new();
    select(root, &parse_path(&rule.at)?, &mut found);
    let mut hits = found.into_iter().filter(|el| {
        !rule.except.contains(&el.name)
            && rule.has.iter().all(|p| finds(el, p))
            && !rule.lacks.iter().any(|p| finds(el, p))
    });
    if rule.second {
        hits.nth(1)
    } else {
        hits.next()
    }
}

/// Refuse the domain if a rule of `refusals:` applies, with libvirt's message, or if an
/// expander bus names a NUMA node the guest does not have. `live`: the rules only libvirt
/// 9.0 has (and a machine type newer than its QEMU), applied as `virsh define` does
/// (`--new-domain`); else the rules every version has.
pub fn run(
    policy: &Policy,
    root: &Element,
    m: &Machine,
    live: bool,
    file: &str,
) -> Result<(), Error> {
    if live {
        kvm_arch(policy, root, m, std::env::consts::ARCH, file)?;
        machine_version(policy, root, m, file)?;
        // libvirt 9.0 does not know <topology clusters>: it counts without them
        cpu_topology(root, false, file)?;
    } else {
        expander_bus_nodes(root, file)?;
        cpu_set(root, file)?;
        cpu_topology(root, true, file)?;
        numa_node_refs(root, file)?;
    }
    for rule in policy.refusals.iter().filter(|r| r.live == live) {
        if let Some(el) = refused(rule, root, m) {
            let mut msg = rule
                .refusal
                .replace("{element}", &el.name)
                .replace("{arch}", &m.arch)
                .replace("{machine}", &m.name);
            for a in &el.attrs {
                msg = msg.replace(&format!("{{{}}}", a.name), &a.value());
            }
            return Err(fail(file, el.line, &describe(el), msg));
        }
    }
    Ok(())
}

/// The emulator libvirt names in its messages: `<emulator>` as written, else QEMU's binary
/// for the guest architecture.
fn emulator(root: &Element, m: &Machine) -> String {
    root.child("devices")
        .and_then(|d| d.child("emulator"))
        .and_then(super::lower::text)
        .unwrap_or_else(|| format!("/usr/bin/qemu-system-{}", m.arch))
}

/// A `type='kvm'` domain whose guest architecture KVM does not run on a host of `host`'s
/// architecture (`live_kvm` in models/libvirt.yaml): libvirt's capabilities offer only
/// TCG for it, so `virsh define` refuses it ("Emulator '/usr/bin/qemu-system-aarch64' does
/// not support virt type 'kvm'").
fn kvm_arch(
    policy: &Policy,
    root: &Element,
    m: &Machine,
    host: &str,
    file: &str,
) -> Result<(), Error> {
    let Some(guests) = policy.live_kvm.get(host) else {
        return Ok(());
    };
    if root.attr("type").as_deref() != Some("kvm") || guests.contains(&m.arch) {
        return Ok(());
    }
    Err(fail(
        file,
        root.line,
        "<domain type>",
        format!(
            "Emulator '{}' does not support virt type 'kvm' (KVM on this {host} host runs {} guests; \
             type='qemu' runs a {} guest under TCG)",
            emulator(root, m),
            guests.join(", "),
            m.arch
        ),
    ))
}

/// A versioned machine type (`virt-10.0`, `pc-q35-8.1`) newer than the QEMU libvirt 9.0
/// runs with (`live_qemu` in models/libvirt.yaml): "Emulator '/usr/bin/qemu-system-aarch64'
/// does not support machine type 'virt-10.0'".
fn machine_version(policy: &Policy, root: &Element, m: &Machine, file: &str) -> Result<(), Error> {
    let Some((_, v)) = m.name.rsplit_once('-') else {
        return Ok(());
    };
    let version = v
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    let newest = (policy.live_qemu[0], policy.live_qemu[1]);
    if version.is_none_or(|v| v <= newest) {
        return Ok(());
    }
    let emulator = emulator(root, m);
    let os_type = root.child("os").and_then(|o| o.child("type"));
    Err(fail(
        file,
        os_type.map_or(root.line, |t| t.line),
        "<os><type machine>",
        format!(
            "Emulator '{emulator}' does not support machine type '{}' (its QEMU is {}.{})",
            m.name, newest.0, newest.1
        ),
    ))
}

/// A pci-expander-bus or pcie-expander-bus whose `<target><node>` is not one of the
/// guest's NUMA cells (libvirt counts the `<cpu><numa><cell>` elements): "pci-expander-bus
/// with index 1 is configured for a NUMA node (1) not present in the domain's <cpu><numa>
/// array (0)".
fn expander_bus_nodes(root: &Element, file: &str) -> Result<(), Error> {
    let cells = root
        .child("cpu")
        .and_then(|c| c.child("numa"))
        .map_or(0, |n| n.elements().filter(|c| c.name == "cell").count());
    let mut found = Vec::new();
    if let Some(steps) = parse_path(
        "devices/controller[type=pci][model=pci-expander-bus|pcie-expander-bus]/target/node",
    ) {
        select(root, &steps, &mut found);
    }
    for node in found {
        let Some(n) = super::lower::text(node).and_then(|t| t.parse::<usize>().ok()) else {
            continue;
        };
        if n >= cells {
            let c = root
                .child("devices")
                .into_iter()
                .flat_map(|d| d.elements())
                .find(|c| c.line <= node.line && c.name == "controller" && node_of(c, node))
                .unwrap_or(node);
            return Err(fail(
                file,
                node.line,
                &describe(c),
                format!(
                    "{} with index {} is configured for a NUMA node ({n}) not present in the \
                     domain's <cpu><numa> array ({cells})",
                    c.attr("model").unwrap_or_default(),
                    c.attr("index").unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `node` is the `<target><node>` of controller `c`.
fn node_of(c: &Element, node: &Element) -> bool {
    c.child("target")
        .and_then(|t| t.child("node"))
        .is_some_and(|n| std::ptr::eq(n, node))
}

/// The `<cpu><topology>` product (sockets × dies × clusters × cores × threads; an absent
/// dies or clusters counts 1, and clusters not at all unless `clusters`) must equal the
/// maximum vCPU count (`<vcpu>`, 1 when absent), as QEMU enforces and libvirt checks: "CPU
/// topology doesn't match maximum vcpu count". A topology missing sockets, cores or threads
/// is left alone.
fn cpu_topology(root: &Element, clusters: bool, file: &str) -> Result<(), Error> {
    let Some(t) = root.child("cpu").and_then(|c| c.child("topology")) else {
        return Ok(());
    };
    let count = |a: &str, default: Option<u64>| t.attr(a).map_or(default, |v| v.parse().ok());
    let parts = [
        count("sockets", None),
        count("dies", Some(1)),
        if clusters {
            count("clusters", Some(1))
        } else {
            Some(1)
        },
        count("cores", None),
        count("threads", None),
    ];
    let Some(product) = parts
        .into_iter()
        .try_fold(1u64, |p, n| n.and_then(|n| p.checked_mul(n)))
    else {
        return Ok(());
    };
    let vcpus = root
        .child("vcpu")
        .and_then(super::lower::text)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1);
    if product == vcpus {
        return Ok(());
    }
    Err(fail(
        file,
        t.line,
        &describe(t),
        format!(
            "CPU topology doesn't match maximum vcpu count (the topology makes {product} \
             vCPUs, <vcpu> says {vcpus})"
        ),
    ))
}

/// References to NUMA nodes the guest does not have (libvirt counts its `<cell>`s; a guest
/// without any has none to name): a hugepage `<page nodeset>` ("hugepages: node 1 not
/// found") and a cell's distance `<sibling id>` ("'sibling_id 2' does not refer to a valid
/// cell within NUMA 'cell id 1'").
fn numa_node_refs(root: &Element, file: &str) -> Result<(), Error> {
    let numa = root.child("cpu").and_then(|c| c.child("numa"));
    let cells: Vec<&Element> = numa
        .into_iter()
        .flat_map(|n| n.elements())
        .filter(|c| c.name == "cell")
        .collect();
    let mut pages = Vec::new();
    if let Some(steps) = parse_path("memoryBacking/hugepages/page[nodeset]") {
        select(root, &steps, &mut pages);
    }
    for page in pages {
        let set = page.attr("nodeset").unwrap_or_default();
        let nodes = node_set(&set).unwrap_or_default();
        if let Some(n) = nodes.into_iter().find(|n| *n >= cells.len()) {
            return Err(fail(
                file,
                page.line,
                &describe(page),
                format!("hugepages: node {n} not found"),
            ));
        }
    }
    for cell in &cells {
        let mut siblings = Vec::new();
        if let Some(steps) = parse_path("distances/sibling[id]") {
            select(cell, &steps, &mut siblings);
        }
        for s in siblings {
            let id = s.attr("id").unwrap_or_default();
            if id.parse::<usize>().is_ok_and(|i| i >= cells.len()) {
                return Err(fail(
                    file,
                    s.line,
                    &describe(s),
                    format!(
                        "'sibling_id {id}' does not refer to a valid cell within NUMA 'cell id {}'",
                        cell.attr("id").unwrap_or_default()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A `<vcpu cpuset>` that is not a CPU set libvirt can read: "Failed to parse bitmap 'aaa'".
fn cpu_set(root: &Element, file: &str) -> Result<(), Error> {
    let Some(vcpu) = root.child("vcpu") else {
        return Ok(());
    };
    match vcpu.attr("cpuset") {
        Some(set) if node_set(&set).is_none() => Err(fail(
            file,
            vcpu.line,
            &describe(vcpu),
            format!("Failed to parse bitmap '{set}'"),
        )),
        _ => Ok(()),
    }
}

/// The members of a libvirt CPU or node set (`0,2-3,^2`), ascending; `None` when a part is
/// not a number, a range or an exclusion.
fn node_set(set: &str) -> Option<Vec<usize>> {
    let mut on = std::collections::BTreeSet::new();
    let mut off = Vec::new();
    for part in set.split(',').map(str::trim) {
        let (neg, part) = match part.strip_prefix('^') {
            Some(p) => (true, p),
            None => (false, part),
        };
        let (a, b): (usize, usize) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        if neg {
            off.extend(a..=b);
        } else {
            on.extend(a..=b);
        }
    }
    Some(on.into_iter().filter(|n| !off.contains(n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_of_the_table_parses() {
        for r in &Policy::get().refusals {
            for p in [&r.at]
                .into_iter()
                .chain(&r.has)
                .chain(&r.lacks)
                .chain(&r.domain_has)
                .chain(&r.domain_lacks)
            {
                assert!(parse_path(p).is_some(), "malformed path {p:?} in refusals");
            }
        }
    }

    #[test]
    fn paths_select_by_name_and_attributes() {
        let doc = crate::xml::Document::parse(
            "<domain><devices><iommu model='intel'/><disk type='file'><readonly/></disk>\
             <disk type='block'/></devices></domain>",
        )
        .unwrap();
        let r = &doc.root;
        assert!(finds(r, "devices/iommu[model=intel|virtio]"));
        assert!(!finds(r, "devices/iommu[model!=intel]"));
        assert!(finds(r, "devices/disk[type!=block]/readonly"));
        assert!(!finds(r, "devices/disk[type=block]/readonly"));
        assert!(finds(r, "devices/*[!model]"));
        assert!(finds(r, ".[!type]/devices"));
        assert!(parse_path("devices/iommu[model").is_none());
        assert!(parse_path("devices//iommu").is_none());
    }

    #[test]
    fn text_and_number_predicates() {
        let doc = crate::xml::Document::parse(
            "<domain><os><loader type='pflash'/><nvram>v.fd</nvram></os>\
             <features><smm state='on'><tseg unit='KiB'>12345</tseg></smm></features></domain>",
        )
        .unwrap();
        let r = &doc.root;
        assert!(finds(r, "os/loader[!#text]"));
        assert!(!finds(r, "os/loader[#text]"));
        assert!(finds(r, "os/nvram[#text=v.fd]"));
        assert!(finds(r, "features/smm/tseg[#text!%1024]"));
        assert!(!finds(r, "features/smm/tseg[#text%1024]"));
        assert!(finds(r, "features/smm/tseg[#text%5]"));
        // a value that is not a number is neither a multiple nor not one
        assert!(!finds(r, "features/smm[state!%2]") && !finds(r, "features/smm[state%2]"));
        assert!(parse_path("features/smm/tseg[#text!%0]").is_none());
        assert!(parse_path("features/smm/tseg[#text%x]").is_none());
        assert!(finds(r, "features/smm/tseg[#text>12344]"));
        assert!(!finds(r, "features/smm/tseg[#text>12345]"));
        assert!(parse_path("features/smm/tseg[#text>x]").is_none());
    }

    #[test]
    fn node_sets_read_as_libvirt_writes_them() {
        assert_eq!(node_set("0,2-3"), Some(vec![0, 2, 3]));
        assert_eq!(node_set("0-4,^2"), Some(vec![0, 1, 3, 4]));
        assert_eq!(node_set("1, 4"), Some(vec![1, 4]));
        assert_eq!(node_set("aaa"), None);
        assert_eq!(node_set("1-x"), None);
    }

    #[test]
    fn cpu_topology_numa_references_and_cpu_sets_are_checked_against_the_domain() {
        let with =
            |extra: &str| domain("x86_64", "pc", "").replace("<os>", &format!("{extra}<os>"));
        let topo = "<vcpu>20</vcpu><cpu><topology sockets='1' dies='1' cores='8' \
                    threads='1'/></cpu>";
        let err = plan(&with(topo), false).unwrap_err();
        assert!(
            err.contains("CPU topology doesn't match maximum vcpu count"),
            "{err}"
        );
        assert!(plan(&with(&topo.replace("cores='8'", "cores='20'")), false).is_ok());
        let pages = |set: &str| {
            format!(
                "<memoryBacking><hugepages><page size='2048' unit='KiB' nodeset='{set}'/>\
                 </hugepages></memoryBacking><vcpu>2</vcpu><cpu><numa>\
                 <cell id='0' cpus='0' memory='131072'/><cell id='1' cpus='1' memory='131072'/>\
                 </numa></cpu>"
            )
        };
        let err = plan(&with(&pages("0,2")), false).unwrap_err();
        assert!(err.contains("hugepages: node 2 not found"), "{err}");
        assert!(plan(&with(&pages("0-1")), false).is_ok());
        let sibling = pages("0-1").replace(
            "<cell id='1' cpus='1' memory='131072'/>",
            "<cell id='1' cpus='1' memory='131072'><distances><sibling id='2' value='10'/>\
             </distances></cell>",
        );
        let err = plan(&with(&sibling), false).unwrap_err();
        assert!(
            err.contains("'sibling_id 2' does not refer to a valid cell"),
            "{err}"
        );
        let err = plan(&with("<vcpu cpuset='aaa'>2</vcpu>"), false).unwrap_err();
        assert!(err.contains("Failed to parse bitmap 'aaa'"), "{err}");
        // clusters: upstream counts them, libvirt 9.0 does not know them
        let clusters = "<vcpu>8</vcpu><cpu><topology sockets='1' dies='1' clusters='2' \
                        cores='2' threads='2'/></cpu>";
        assert!(plan(&with(clusters), false).is_ok());
        let err = plan(&with(clusters), true).unwrap_err();
        assert!(err.contains("CPU topology doesn't match"), "{err}");
    }

    #[test]
    fn firmware_rules_follow_libvirt_9_0_only_where_newer_libvirt_accepts() {
        let os = |inner: &str, fw: &str| {
            domain("x86_64", "q35", "")
                .replace("<os>", &format!("<features><acpi/></features><os{fw}>"))
                .replace("</os>", &format!("{inner}</os>"))
        };
        // a loader path with firmware autoselection: 9.0 refuses, newer libvirt takes it
        let xml = os("<loader>/x/OVMF_CODE.fd</loader>", " firmware='efi'");
        assert!(plan(&xml, false).is_ok());
        let err = plan(&xml, true).unwrap_err();
        assert!(
            err.contains("cannot be specified when firmware autoselection"),
            "{err}"
        );
        // every version: a pflash loader needs a path when nothing is autoselected
        let err = plan(&os("<loader type='pflash'/>", ""), false).unwrap_err();
        assert!(err.contains("no loader path specified"), "{err}");
        let err = plan(&os("<nvram>/v.fd</nvram>", " firmware='bios'"), false).unwrap_err();
        assert!(
            err.contains("firmware type 'bios' does not support nvram"),
            "{err}"
        );
    }

    fn plan(xml: &str, new_domain: bool) -> Result<String, String> {
        let opts = super::super::LibvirtOptions { new_domain };
        super::super::plan_domain(xml, "t.xml", &opts).map_err(|e| e.to_string())
    }

    fn domain(arch: &str, machine: &str, devices: &str) -> String {
        format!(
            "<domain type='qemu'><name>t</name><memory>262144</memory><os><type arch='{arch}' \
             machine='{machine}'>hvm</type></os><devices>{devices}</devices></domain>"
        )
    }

    #[test]
    fn live_rules_apply_only_as_virsh_define_of_libvirt_9_0() {
        // upstream's q35 writes an iTCO watchdog; libvirt 9.0 does not know the model
        let xml = domain("x86_64", "q35", "<watchdog model='itco' action='reset'/>");
        assert!(plan(&xml, false).is_ok());
        let err = plan(&xml, true).unwrap_err();
        assert!(err.contains("unknown watchdog model 'itco'"), "{err}");
        // a machine type newer than the QEMU of the live libvirt
        let err = plan(&domain("aarch64", "virt-10.0", ""), true).unwrap_err();
        assert!(
            err.contains("does not support machine type 'virt-10.0'"),
            "{err}"
        );
        assert!(plan(&domain("aarch64", "virt-7.2", ""), true).is_ok());
    }

    #[test]
    fn kvm_runs_only_the_hosts_own_architectures_as_virsh_define_says() {
        let xml = |arch: &str, machine: &str| {
            domain(arch, machine, "").replacen("type='qemu'", "type='kvm'", 1)
        };
        let policy = Policy::get();
        let check = |arch: &str, machine: &str, host: &str| {
            let x = xml(arch, machine);
            let root = crate::xml::Element::parse(&x).unwrap();
            let m = Machine {
                name: machine.into(),
                arch: arch.into(),
                rule: None,
                pcie_root: false,
            };
            kvm_arch(policy, &root, &m, host, "t.xml").map_err(|e| e.to_string())
        };
        let err = check("aarch64", "virt", "x86_64").unwrap_err();
        assert!(err.contains("does not support virt type 'kvm'"), "{err}");
        assert!(err.contains("qemu-system-aarch64"), "{err}");
        assert!(check("x86_64", "q35", "x86_64").is_ok());
        assert!(check("i686", "pc", "x86_64").is_ok());
        assert!(check("aarch64", "virt", "aarch64").is_ok());
        assert!(check("x86_64", "q35", "aarch64").is_err());
        // a host architecture the table does not know refuses nothing
        assert!(check("aarch64", "virt", "riscv64").is_ok());
        // only as virsh define does: without --new-domain the domain plans
        let foreign = if std::env::consts::ARCH == "x86_64" {
            ("aarch64", "virt")
        } else {
            ("x86_64", "q35")
        };
        let x = xml(foreign.0, foreign.1);
        assert!(plan(&x, false).is_ok());
        if policy.live_kvm.contains_key(std::env::consts::ARCH) {
            assert!(plan(&x, true).unwrap_err().contains("virt type 'kvm'"));
        }
    }

    #[test]
    fn rules_refuse_with_libvirts_words_and_name_the_element() {
        let err = plan(&domain("x86_64", "pc", "<iommu model='intel'/>"), false).unwrap_err();
        assert!(err.contains("<iommu model='intel'>"), "{err}");
        assert!(
            err.contains("'intel' is only supported with Q35 machines"),
            "{err}"
        );
        assert!(plan(&domain("x86_64", "q35", "<iommu model='intel'/>"), false).is_ok());
        let two = "<video><model type='vga' primary='yes'/></video>\
                   <video><model type='qxl' primary='yes'/></video>";
        let err = plan(&domain("x86_64", "pc", two), false).unwrap_err();
        assert!(err.contains("Only one primary video device"), "{err}");
    }

    #[test]
    fn arm_virtio_devices_take_virtio_mmio_without_pcie_and_memory_modules_dimm_slots() {
        let disk = "<disk type='file' device='disk'><source file='/x.img'/>\
                    <target dev='vda' bus='virtio'/></disk>";
        let out = plan(&domain("aarch64", "vexpress-a9", disk), true).unwrap();
        assert!(out.contains("<address type='virtio-mmio'/>"), "{out}");
        let out = plan(&domain("aarch64", "virt", disk), true).unwrap();
        assert!(
            !out.contains("virtio-mmio") && out.contains("type='pci'"),
            "{out}"
        );
        let dimm = "<memory model='dimm'><target><size unit='KiB'>524288</size>\
                    <node>0</node></target><address type='dimm' slot='0'/></memory>\
                    <memory model='dimm'><target><size unit='KiB'>524288</size>\
                    <node>0</node></target></memory>";
        let xml = domain("x86_64", "pc", dimm).replace(
            "<memory>262144</memory>",
            "<maxMemory slots='4' unit='KiB'>4194304</maxMemory><memory>262144</memory>\
             <cpu><numa><cell id='0' cpus='0' memory='262144'/></numa></cpu>",
        );
        let out = plan(&xml, true).unwrap();
        assert!(out.contains("<address type='dimm' slot='1'/>"), "{out}");
    }
}
