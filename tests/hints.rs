//! devaddr's hints in libvirt domain XML (`<devaddr:hints xmlns:devaddr=
//! "urn:devaddr:hints:1">` under `<metadata>`), on generated guests (q35, pc, virt; NUMA
//! nodes with reserves, presets, groups, root placement, apart and together sets):
//!
//! * the same guest as a YAML spec and as an unaddressed domain with hints gives the same
//!   topology (every controller and every address), or both are refused with exit 1;
//! * the hinted domain's plan meets its constraints (checked on its bus tree here), and
//!   planning it again changes nothing;
//! * a device added to it with its own hints lands by them while nothing else moves;
//! * against the live libvirt: `virsh define` + `dumpxml --inactive` keeps the hints
//!   byte for byte and every address, planning the dump changes nothing, and a device
//!   added to the dump lands by its hints while nothing else moves;
//! * the hint blocks validate against `docs/devaddr-hints.rng` (xmllint);
//! * bad hints are exit 2 naming the element and the attribute.

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/placement.rs"]
mod placement;
#[path = "common/specgen.rs"]
mod specgen;

use devaddr::libvirt::{domain_plan_with, plan_domain, plan_to_domain};
use devaddr::{Address, Catalog, DeviceEntry, Error, Plan, Spec};
use specgen::Rng;
use std::collections::BTreeMap;
use std::path::Path;

/// A random guest with placement requirements (any of which may make it infeasible).
fn guest(seed: u64) -> Spec {
    let mut r = Rng::new(seed);
    let machine = *r.pick(&["q35", "pc", "virt"]);
    let nodes = if r.pct(50) { r.range(1, 2) as u32 } else { 0 };
    let preset = *r.pick(&["libvirt", "numa", "hotplug-ready", "dense"]);
    let mut policy = format!("preset: {preset}");
    if nodes > 0 {
        policy.push_str(&format!(
            ", numa_nodes: {nodes}, hotplug_reserve_per_node: {}",
            r.range(0, 1)
        ));
    }
    if r.pct(40) {
        policy.push_str(&format!(", hotplug_reserve: {}", r.range(1, 2)));
    }
    let kinds: &[&str] = match machine {
        "pc" => &[
            "virtio-net",
            "virtio-blk",
            "virtio-rng",
            "e1000",
            "virtio-scsi",
        ],
        _ => &[
            "virtio-net",
            "virtio-blk",
            "virtio-rng",
            "e1000e",
            "virtio-scsi",
        ],
    };
    let text = format!("name: guest\nmachine: {machine}\npolicy: {{{policy}}}\ndevices: []\n");
    let mut spec = Spec::parse(&text, "gen").unwrap();
    let n = r.range(2, 9) as usize;
    // Kinds libvirt 9.0 takes once per guest (a watchdog) or that are video: at most one.
    let mut once: Vec<&str> = Vec::new();
    for i in 0..n {
        let mut kind = (*r.pick(kinds)).to_string();
        if r.pct(15) {
            let extra = *r.pick(&["virtio-gpu", "i6300esb", "ich9-intel-hda"]);
            if !once.contains(&extra) && (machine == "q35" || extra != "ich9-intel-hda") {
                once.push(extra);
                kind = extra.to_string();
            }
        }
        let mut d = DeviceEntry {
            id: format!("d{i}"),
            kind,
            ..Default::default()
        };
        if nodes > 0 && r.pct(35) {
            d.numa_node = Some(r.range(0, u64::from(nodes) - 1) as u32);
        }
        if r.pct(20) {
            d.hotplug = Some(true);
        }
        if d.numa_node.is_none() && d.hotplug.is_none() && r.pct(12) {
            d.placement = Some(devaddr::Placement::Root);
        }
        spec.devices.push(d);
    }
    // A group of two neighbours of virtio kinds, sharing node and hotplug need.
    if n >= 3 && r.pct(30) {
        let i = r.range(0, n as u64 - 2) as usize;
        let (a, b) = (spec.devices[i].clone(), &mut spec.devices[i + 1]);
        if a.kind.starts_with("virtio") && b.kind.starts_with("virtio") {
            b.numa_node = a.numa_node;
            b.hotplug = a.hotplug;
            b.placement = a.placement;
            b.group = Some("g".into());
            spec.devices[i].group = Some("g".into());
        }
    }
    let ids: Vec<String> = spec.devices.iter().map(|d| d.id.clone()).collect();
    let set = |r: &mut Rng| -> Vec<String> {
        let k = r.range(2, 3.min(n as u64)) as usize;
        let mut s: Vec<String> = Vec::new();
        while s.len() < k {
            let id = r.pick(&ids).clone();
            if !s.contains(&id) {
                s.push(id);
            }
        }
        s
    };
    if r.pct(50) {
        spec.apart.push(set(&mut r));
    }
    if r.pct(50) {
        let t = set(&mut r);
        // Mostly satisfiable: the set on its first device's node, none on the root bus.
        let node = spec
            .devices
            .iter()
            .find(|d| d.id == t[0])
            .unwrap()
            .numa_node;
        for d in spec.devices.iter_mut().filter(|d| t.contains(&d.id)) {
            d.numa_node = node;
            d.placement = None;
        }
        spec.together.push(t);
    }
    spec
}

/// The spec's fields as a hints block (attributes by the spec's field names).
fn hints_of(spec: &Spec) -> String {
    let mut out = String::from("<devaddr:hints xmlns:devaddr=\"urn:devaddr:hints:1\">\n");
    let policy = serde_json::to_value(&spec.policy).unwrap();
    let mut attrs = String::new();
    for (k, v) in policy.as_object().unwrap() {
        let v = match v {
            serde_json::Value::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        attrs.push_str(&format!(" {k}=\"{v}\""));
    }
    out.push_str(&format!("      <devaddr:policy{attrs}/>\n"));
    for d in &spec.devices {
        let mut a = String::new();
        if let Some(n) = d.numa_node {
            a.push_str(&format!(" numa_node=\"{n}\""));
        }
        if let Some(h) = d.hotplug {
            a.push_str(&format!(" hotplug=\"{}\"", if h { "yes" } else { "no" }));
        }
        if let Some(g) = &d.group {
            a.push_str(&format!(" group=\"{g}\""));
        }
        if d.placement.is_some() {
            a.push_str(" placement=\"root\"");
        }
        if !a.is_empty() {
            out.push_str(&format!(
                "      <devaddr:device alias=\"ua-{}\"{a}/>\n",
                d.id
            ));
        }
    }
    for (name, sets) in [("apart", &spec.apart), ("together", &spec.together)] {
        for s in sets {
            let aliases: Vec<String> = s.iter().map(|id| format!("ua-{id}")).collect();
            out.push_str(&format!(
                "      <devaddr:{name} aliases=\"{}\"/>\n",
                aliases.join(" ")
            ));
        }
    }
    out.push_str("    </devaddr:hints>");
    out
}

/// A domain as devaddr writes it, without PCI addresses and PCI controllers (the root
/// bus excepted), with `hints` under `<metadata>`: what a user hands devaddr.
fn unaddressed(domain: &str, hints: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in domain.lines() {
        let t = line.trim_start();
        if skipping {
            skipping = !t.starts_with("</controller>");
            continue;
        }
        if t.starts_with("<address type='pci'") {
            continue;
        }
        if t.starts_with("<controller type='pci'") && !t.contains("index='0'") {
            skipping = !t.ends_with("/>");
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if t.starts_with("<name>") {
            out.push_str(&format!("  <metadata>\n    {hints}\n  </metadata>\n"));
        }
    }
    out
}

/// The spec with its devices in the order the domain lists them (the planner places
/// devices in input order, so the same guest is the same devices in the same order).
fn in_domain_order(spec: &Spec, domain: &str) -> Spec {
    let mut out = spec.clone();
    let pos = |id: &str| {
        domain
            .find(&format!("<alias name='ua-{id}'/>"))
            .unwrap_or(usize::MAX)
    };
    out.devices.sort_by_key(|d| pos(&d.id));
    out
}

fn domain_plan(xml: &str) -> Plan {
    domain_plan_with(
        xml,
        "hinted.xml",
        &Default::default(),
        devaddr::Options::default(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{xml}"))
    .plan
}

/// Every PCI controller (index, model, address, node, bus_nr, chassis, port) and every
/// device address by id.
type Topology = (Vec<String>, BTreeMap<String, Option<Address>>);

fn topology(plan: &Plan) -> Topology {
    let cat = Catalog::embedded();
    let controllers = plan
        .controllers
        .iter()
        .filter(|c| cat.pci.contains_key(&c.model) && c.index != 0)
        .map(|c| {
            format!(
                "{} {} {:?} {:?} {:?} {:?} {:?}",
                c.index, c.model, c.address, c.numa_node, c.bus_nr, c.chassis, c.port
            )
        })
        .collect();
    let devices = plan
        .devices
        .iter()
        .map(|d| (d.id.clone(), d.address.clone()))
        .collect();
    (controllers, devices)
}

/// One generated guest both ways: (the YAML plan or its refusal, the hinted domain
/// planned or its refusal, the hinted domain written for the user).
struct Both {
    spec: Spec,
    yaml: Result<Plan, Error>,
    input: String,
    xml: Result<String, Error>,
}

fn both(seed: u64) -> Option<Both> {
    let spec = guest(seed);
    // The domain's device order comes from a plan of the spec without constraints
    // (libvirt's formatting order), then the spec is planned in that order.
    let mut free = spec.clone();
    free.apart.clear();
    free.together.clear();
    free.devices.iter_mut().for_each(|d| d.placement = None);
    let shape = devaddr::plan(&free).ok()?;
    let written = plan_to_domain(&shape, Catalog::embedded()).ok()?;
    let spec = in_domain_order(&spec, &written);
    let input = unaddressed(&written, &hints_of(&spec));
    Some(Both {
        yaml: devaddr::plan(&spec),
        xml: plan_domain(&input, "hinted.xml", &Default::default()),
        spec,
        input,
    })
}

/// The generated guests: seeds 0..160, or 0..`DEVADDR_HINT_SEEDS` (a longer run).
fn seeds() -> std::ops::Range<u64> {
    let n = std::env::var("DEVADDR_HINT_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(160);
    0..n
}

#[test]
fn yaml_and_hinted_xml_give_the_same_topology_and_hold_the_constraints() {
    let (mut planned, mut refused) = (0, 0);
    for seed in seeds() {
        let Some(b) = both(seed) else { continue };
        match (&b.yaml, &b.xml) {
            (Ok(plan), Ok(out)) => {
                planned += 1;
                let mine = domain_plan(out);
                assert_eq!(topology(&mine), topology(plan), "seed {seed}:\n{}", b.input);
                placement::holds(&mine, &b.spec);
                let again = plan_domain(out, "out.xml", &Default::default()).unwrap();
                assert_eq!(
                    &again, out,
                    "seed {seed}: planning the output again changed it"
                );
                assert!(out.contains(&hints_of(&b.spec)), "seed {seed}: hints kept");
            }
            (Err(y), Err(x)) => {
                refused += 1;
                assert_eq!(
                    (y.exit_code(), x.exit_code()),
                    (1, 1),
                    "seed {seed}: {y} / {x}"
                );
            }
            (y, x) => panic!(
                "seed {seed}: YAML {:?} but XML {:?}\n{}",
                y.as_ref().err(),
                x.as_ref().err(),
                b.input
            ),
        }
    }
    eprintln!("hints: {planned} guests planned both ways, {refused} refused both ways");
    assert!(planned >= 80, "too few feasible guests: {planned}");
}

/// A virtio NIC element with alias `ua-{id}`, and its hint.
fn added(id: &str, hint: &str) -> (String, String) {
    (
        format!("<interface type='user'><model type='virtio'/><alias name='ua-{id}'/></interface>"),
        format!("<devaddr:device alias=\"ua-{id}\"{hint}/>"),
    )
}

/// `domain` with `element` appended to `<devices>`, `hint` and `extra` added to the hints.
fn with_device(domain: &str, element: &str, hint: &str, extra: &str) -> String {
    let at = domain.rfind("</devices>").unwrap();
    let mut out = format!("{}  {element}\n  {}", &domain[..at], &domain[at..]);
    let h = out.find("</devaddr:hints>").unwrap();
    out.insert_str(h, &format!("  {hint}\n      {extra}\n    "));
    out
}

/// Add a NIC apart from every device of the first apart set (or from the first
/// device), replan, and check that nothing moved and that the NIC is apart.
fn add_and_replan(seed: u64, domain: &str, spec: &Spec) {
    let before = domain_plan(domain);
    let mut set: Vec<String> = spec
        .apart
        .first()
        .cloned()
        .unwrap_or_else(|| vec![spec.devices[0].id.clone()]);
    // Keep the new set satisfiable: no two members of one together set or group.
    set.retain(|id| !spec.together.iter().flatten().any(|t| t == id));
    set.truncate(1);
    if set.is_empty() {
        set.push(spec.devices[0].id.clone());
    }
    set.push("extra".into());
    let aliases: Vec<String> = set.iter().map(|id| format!("ua-{id}")).collect();
    let (el, hint) = added("extra", "");
    let apart = format!("<devaddr:apart aliases=\"{}\"/>", aliases.join(" "));
    let grown = with_device(domain, &el, &hint, &apart);
    let out = match plan_domain(&grown, "grown.xml", &Default::default()) {
        Ok(out) => out,
        Err(e) => {
            // Only the new requirement may stand in the way, and it is said so.
            assert_eq!(e.exit_code(), 1, "seed {seed}: {e}\n{grown}");
            return;
        }
    };
    let after = domain_plan(&out);
    let (bc, bd) = topology(&before);
    let (ac, ad) = topology(&after);
    // Only a function 0's multifunction flag may turn on, when ports join its slot.
    let loose = |c: &String| c.replace("multifunction: Some(true)", "multifunction: None");
    let ac: Vec<String> = ac.iter().map(loose).collect();
    for c in &bc {
        assert!(
            ac.contains(&loose(c)),
            "seed {seed}: controller changed: {c}"
        );
    }
    for (id, a) in &bd {
        assert_eq!(ad.get(id), Some(a), "seed {seed}: {id} moved");
    }
    placement::holds_for(&after, &[], &[set], &[]);
}

#[test]
fn a_device_added_to_a_hinted_domain_lands_by_its_hints_and_nothing_moves() {
    let mut grown = 0;
    for seed in seeds().step_by(4) {
        let Some(b) = both(seed) else { continue };
        let Ok(out) = &b.xml else { continue };
        add_and_replan(seed, out, &b.spec);
        grown += 1;
    }
    assert!(grown >= 20, "too few guests: {grown}");
}

#[test]
fn libvirt_keeps_the_hints_and_every_address() {
    if !live::live() {
        return;
    }
    let dir = common::scratch("devaddr-hints-live");
    let mut defined = 0;
    for seed in seeds().step_by(10) {
        let Some(b) = both(seed) else { continue };
        let Ok(out) = &b.xml else { continue };
        let name = format!("h-hints-{}-{seed}", std::process::id());
        let xml = out.replace("<name>guest</name>", &format!("<name>{name}</name>"));
        let d =
            live::define(&dir, &xml, &name).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{xml}"));
        let dump = live::dumpxml(&d.0);
        drop(d);
        defined += 1;
        assert!(
            dump.contains(&hints_of(&b.spec)),
            "seed {seed}: hints lost:\n{dump}"
        );
        assert_eq!(
            topology(&domain_plan(&dump)),
            topology(&domain_plan(&xml)),
            "seed {seed}"
        );
        let again = plan_domain(&dump, "dump.xml", &Default::default()).unwrap();
        assert_eq!(again, dump, "seed {seed}: planning the dump changed it");
        add_and_replan(seed, &dump, &b.spec);
    }
    assert!(defined >= 8, "too few guests defined: {defined}");
}

/// A hinted domain asking for UEFI and big BARs gets the settings `--format libvirt`
/// writes for a spec: `<os firmware='efi'>` (with the ACPI libvirt needs for it),
/// `<pcihole64>`, OVMF's aperture and the ports' 64-bit reserves in libvirt's QEMU
/// namespace; planning it again changes nothing, and the live libvirt keeps them (and
/// planning its dump changes nothing).
#[test]
fn a_hinted_domain_gets_its_firmware_settings() {
    let (example, input) = hinted_example_with(
        "hotplug_reserve_per_node=\"1\" firmware=\"uefi\" \
             hotplug_reserve_bar64=\"{ports: 1, size: 32G}\"/>\n      \
             <devaddr:device alias=\"ua-acc0\" bar64=\"64G\" numa_node=\"0\"/>",
        "    <hostdev mode='subsystem' type='pci' managed='yes'><source><address \
             domain='0x0000' bus='0x65' slot='0x00' function='0x0'/></source><alias \
             name='ua-acc0'/></hostdev>\n  </devices>",
        "h-fw2-hinted-uefi",
    );
    assert_ne!(input, example);
    let out = plan_domain(&input, "uefi.xml", &Default::default()).unwrap();
    // The aperture the root controller states, in KiB, is the one asked of OVMF (MiB).
    let kib = pcihole64_kib(&out);
    assert!(kib >= 64 << 20, "{kib} KiB cannot hold a 64 GiB BAR");
    for want in [
        "<os firmware='efi'>".to_string(),
        "<feature enabled='no' name='secure-boot'/>".into(),
        "<acpi/>".into(),
        format!("name=opt/ovmf/X-PciMmio64Mb,string={}", kib >> 10),
        "name='pref64-reserve' type='unsigned' value='34359738368'".into(),
    ] {
        assert!(out.contains(&want), "{want}:\n{out}");
    }
    assert_eq!(
        plan_domain(&out, "again.xml", &Default::default()).unwrap(),
        out,
        "planning it again changed it"
    );
    if !live::live() {
        return;
    }
    let dir = common::scratch("devaddr-hints-uefi");
    let d = live::define(&dir, &out, "h-fw2-hinted-uefi").unwrap_or_else(|e| panic!("{e}\n{out}"));
    let dump = live::dumpxml(&d.0);
    drop(d);
    for want in [
        "firmware='efi'",
        "<pcihole64",
        "X-PciMmio64Mb",
        "pref64-reserve",
    ] {
        assert!(dump.contains(want), "{want} lost by libvirt:\n{dump}");
    }
    assert_eq!(
        plan_domain(&dump, "dump.xml", &Default::default()).unwrap(),
        dump,
        "planning the dump changed it"
    );
}

/// The 64-bit aperture (KiB) a domain's root PCI controller states in `<pcihole64>`.
fn pcihole64_kib(out: &str) -> u64 {
    out.split("<pcihole64 unit='KiB'>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no <pcihole64>:\n{out}"))
}

#[test]
fn hint_blocks_validate_against_the_schema() {
    let ok = std::process::Command::new("xmllint")
        .arg("--version")
        .output();
    if ok.is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("CI must run this test, but xmllint is not installed");
        }
        eprintln!("SKIPPED: xmllint is not installed (apt-get install libxml2-utils)");
        return;
    }
    let dir = common::scratch("devaddr-hints-rng");
    let rng = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/devaddr-hints.rng");
    let mut files = Vec::new();
    for seed in seeds().step_by(5) {
        let f = dir.join(format!("h{seed}.xml"));
        std::fs::write(&f, hints_of(&guest(seed))).unwrap();
        files.push(f);
    }
    let bad = dir.join("bad.xml");
    std::fs::write(
        &bad,
        "<devaddr:hints xmlns:devaddr=\"urn:devaddr:hints:1\"><devaddr:device alias=\"net0\" placement=\"top\"/></devaddr:hints>",
    )
    .unwrap();
    let o = std::process::Command::new("xmllint")
        .args(["--noout", "--relaxng"])
        .arg(&rng)
        .args(&files)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = std::process::Command::new("xmllint")
        .args(["--noout", "--relaxng"])
        .arg(&rng)
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "the schema accepts a bad alias and placement"
    );
}

#[test]
fn bad_hints_exit_2_naming_element_and_attribute() {
    let b = (0..)
        .find_map(|s| both(s).filter(|b| b.xml.is_ok()))
        .unwrap();
    // The policy element with one attribute set (replaced when it is there).
    let policy_with = |name: &str, value: &str| -> String {
        let start = b.input.find("<devaddr:policy").unwrap();
        let end = start + b.input[start..].find("/>").unwrap();
        let el = &b.input[start..end];
        let kept: Vec<&str> = el
            .split_whitespace()
            .skip(1)
            .filter(|a| !a.starts_with(&format!("{name}=")))
            .collect();
        format!(
            "{}<devaddr:policy {name}=\"{value}\" {}{}",
            &b.input[..start],
            kept.join(" "),
            &b.input[end..]
        )
    };
    for (name, value, want) in [
        (
            "numa_nodes",
            "two",
            "<devaddr:policy>: attribute `numa_nodes`: found `two`; expected a whole number",
        ),
        (
            "colour",
            "red",
            "<devaddr:policy>: unknown attribute `colour`",
        ),
        (
            "preset",
            "fast",
            "attribute `preset`: found `fast`; expected one of",
        ),
        (
            "root_port_hotplug",
            "maybe",
            "attribute `root_port_hotplug`: found `maybe`; expected yes or no",
        ),
        (
            "firmware",
            "coreboot",
            "attribute `firmware`: found `coreboot`; expected one of",
        ),
        (
            "hotplug_reserve_bar64",
            "2 ports",
            "attribute `hotplug_reserve_bar64`: found `2 ports`; expected a YAML flow mapping",
        ),
        (
            "hotplug_reserve_bar64",
            "{ports: 2, size: 100G}",
            "attribute `hotplug_reserve_bar64`: found `{ports: 2, size: 100G}`",
        ),
    ] {
        let f = common::tmp_file("devaddr-bad-hints", "bad.xml", policy_with(name, value));
        let o = common::run(&["plan", f.as_str()], None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "expected `{want}` in: {err}");
    }
    let cases: &[(&str, &str, &str)] = &[
        (
            "<devaddr:policy ",
            "<devaddr:device alias=\"net0\"/><devaddr:policy ",
            "attribute `alias`: found `net0`",
        ),
        (
            "<devaddr:policy ",
            "<devaddr:device alias=\"ua-nope\"/><devaddr:policy ",
            "alias `ua-nope`: no PCI device of the domain",
        ),
        (
            "<devaddr:policy ",
            "<devaddr:device alias=\"ua-d0\" hotplug=\"maybe\"/><devaddr:policy ",
            "attribute `hotplug`: found `maybe`; expected yes or no",
        ),
        (
            "<devaddr:policy ",
            "<devaddr:device alias=\"ua-d0\" placement=\"top\"/><devaddr:policy ",
            "attribute `placement`: found `top`; expected `root`",
        ),
        (
            "<devaddr:policy ",
            "<devaddr:apart aliases=\"ua-d0\"/><devaddr:policy ",
            "<devaddr:apart>: attribute `aliases`: found 1 alias",
        ),
        (
            "<devaddr:policy ",
            "<devaddr:aparte/><devaddr:policy ",
            "<devaddr:aparte>: unknown hint element",
        ),
    ];
    for (from, to, want) in cases {
        let bad = b.input.replacen(from, to, 1);
        let f = common::tmp_file("devaddr-bad-hints", "bad.xml", &bad);
        let o = common::run(&["plan", f.as_str()], None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(want), "expected `{want}` in: {err}");
    }
}

/// A NIC element for `hotplug DOMAIN --add`, with a MAC (libvirt's parse adds one).
fn nic(id: &str, k: usize) -> String {
    format!(
        "<interface type='user'><mac address='52:54:00:77:00:{k:02x}'/><model type='virtio'/><alias name='ua-{id}'/></interface>"
    )
}

#[test]
fn hinted_domains_hotplug_exactly_what_capacity_counts() {
    use devaddr::libvirt::{capacity_domain_with, hotplug_domain_with};
    let engine = devaddr::Options::default();
    let mut checked = 0;
    for seed in seeds().step_by(8) {
        let Some(b) = both(seed) else { continue };
        let Ok(out) = &b.xml else { continue };
        let q = devaddr::CapacityQuery::new(vec!["virtio-net".into()], None);
        let rows = capacity_domain_with(out, "out.xml", &q, engine).unwrap();
        let outside = rows.iter().find(|r| r.node.is_none()).unwrap().live;
        let mut dom = out.clone();
        for k in 0..outside {
            let id = format!("hot{k}");
            let h = hotplug_domain_with(&dom, "dom.xml", &nic(&id, k as usize), "nic.xml", engine)
                .unwrap_or_else(|e| panic!("seed {seed}: NIC {k} of {outside}: {e}"));
            // As written (not planned again: a cold plan restores the reserve).
            let addresses = |x: &str| -> Vec<String> {
                x.lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with("<address type='pci'"))
                    .map(str::to_string)
                    .collect()
            };
            let after = addresses(&h.xml);
            for a in addresses(&dom) {
                assert!(after.contains(&a), "seed {seed}: {a} is gone");
            }
            let pci_controllers = |x: &str| x.matches("<controller type='pci'").count();
            assert_eq!(
                pci_controllers(&dom),
                pci_controllers(&h.xml),
                "seed {seed}: live"
            );
            dom = h.xml;
        }
        let e = hotplug_domain_with(&dom, "dom.xml", &nic("over", 99), "nic.xml", engine)
            .expect_err("one more than capacity counts");
        assert_eq!(e.exit_code(), 1, "seed {seed}: {e}");
        checked += 1;
    }
    assert!(checked >= 10, "too few guests: {checked}");
}

#[test]
fn a_hot_added_device_joins_its_apart_set_or_the_refusal_names_it() {
    use devaddr::libvirt::hotplug_domain_with;
    let engine = devaddr::Options::default();
    let (mut placed, mut refused) = (0, 0);
    for seed in seeds().step_by(3) {
        let Some(b) = both(seed) else { continue };
        let Ok(out) = &b.xml else { continue };
        let first = &b.spec.devices[0].id;
        if b.spec.together.iter().flatten().any(|id| id == first) {
            continue;
        }
        let apart = format!("<devaddr:apart aliases=\"ua-{first} ua-hot\"/>");
        let h = out.find("</devaddr:hints>").unwrap();
        let mut dom = out.clone();
        dom.insert_str(h, &format!("  {apart}\n    "));
        match hotplug_domain_with(&dom, "dom.xml", &nic("hot", 1), "nic.xml", engine) {
            Ok(h) => {
                placed += 1;
                let after = domain_plan(&h.xml);
                placement::holds_for(&after, &[], &[vec![first.clone(), "hot".into()]], &[]);
            }
            Err(e) => {
                refused += 1;
                assert_eq!(e.exit_code(), 1, "seed {seed}: {e}");
                let json = serde_json::to_value(e.explanation().unwrap()).unwrap();
                let binding = json["binding"].as_str().unwrap();
                assert!(
                    matches!(binding, "apart" | "live-capacity"),
                    "seed {seed}: {binding}: {e}"
                );
            }
        }
    }
    assert!(placed >= 5, "placed {placed}, refused {refused}");
}

/// The attribute names the RelaxNG schema gives `<element name="{element}">`.
fn rng_attributes(rng: &str, element: &str) -> std::collections::BTreeSet<String> {
    let start = rng
        .find(&format!("<element name=\"{element}\">"))
        .unwrap_or_else(|| panic!("no {element} in the schema"));
    let end = start + rng[start..].find("</element>").unwrap();
    rng[start..end]
        .split("<attribute name=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

/// The hint attributes are the spec's field names: the schema's policy attributes are the
/// spec's `policy:` fields, its device attributes the spec's device fields (but those the
/// element itself states) and `alias`. A field added to the spec fails this test until
/// the schema has it too.
#[test]
fn the_schema_names_every_spec_field_and_no_other() {
    let rng = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/devaddr-hints.rng"),
    )
    .unwrap();
    let schema = devaddr::schema::spec();
    let defs = schema.get("$defs").unwrap();
    let fields = |def: &str| -> std::collections::BTreeSet<String> {
        defs[def]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(rng_attributes(&rng, "policy"), fields("Tunables"));
    let mut device = fields("DeviceEntry");
    for own in ["id", "kind", "address", "ports", "host"] {
        device.remove(own);
    }
    device.insert("alias".into());
    assert_eq!(rng_attributes(&rng, "device"), device);
}

/// A 64-bit aperture past OVMF's 40 address bits (two 256 GiB BARs and an empty
/// hotplug port: 1 TiB) with `phys_bits` 46: the plan asks for 1 GiB pages, and the
/// domain requires the CPU feature (`<feature policy='require' name='pdpe1gb'/>`, with
/// the `qemu64` model libvirt needs beside a feature) — in `--format libvirt` of a spec
/// and in a hinted domain, merged with its own `<cpu>` once however often it is planned;
/// the live libvirt keeps it. The same spec at 40 bits is refused naming phys_bits and
/// 1 GiB pages.
#[test]
fn an_aperture_past_the_firmware_address_width_requires_1g_pages() {
    let feature = "<feature policy='require' name='pdpe1gb'/>";
    let cat = Catalog::embedded();
    let spec_text = "name: h-fw6-pdpe1gb\nmachine: q35\npolicy: {firmware: uefi, \
        numa_nodes: 2, phys_bits: 46, hotplug_reserve: 1}\ndevices:\n\
        - {id: acc0, kind: vfio-pci, bar64: 256G, numa_node: 0, host: '0000:65:00.0'}\n\
        - {id: acc1, kind: vfio-pci, bar64: 256G, numa_node: 1, host: '0000:66:00.0'}\n";
    let spec: Spec = serde_yaml::from_str(spec_text).unwrap();
    let plan = devaddr::plan(&spec).unwrap();
    let m = plan.mmio64.as_ref().expect("an mmio64 statement");
    assert_eq!(
        (m.aperture.to_string().as_str(), m.cpu_features.clone()),
        ("1T", vec!["pdpe1gb".to_string()])
    );
    let narrow: Spec = serde_yaml::from_str(&spec_text.replace("46", "40")).unwrap();
    let err = devaddr::plan(&narrow).unwrap_err().to_string();
    assert!(
        err.contains("raise policy.phys_bits to 41") && err.contains("1 GiB pages"),
        "{err}"
    );
    let from_spec = plan_to_domain(&plan, cat).unwrap();
    assert_eq!(from_spec.matches(feature).count(), 1, "{from_spec}");
    assert!(from_spec.contains("<model fallback='allow'>qemu64</model>"));

    let (_, input) = hinted_example_with(
        "hotplug_reserve_per_node=\"1\" firmware=\"uefi\" phys_bits=\"46\"/>\n      \
             <devaddr:device alias=\"ua-acc0\" bar64=\"256G\" numa_node=\"0\"/>\n      \
             <devaddr:device alias=\"ua-acc1\" bar64=\"256G\" numa_node=\"1\"/>",
        "    <hostdev mode='subsystem' type='pci' managed='yes'><source><address \
             domain='0x0000' bus='0x65' slot='0x00' function='0x0'/></source><alias \
             name='ua-acc0'/></hostdev>\n    <hostdev mode='subsystem' type='pci' \
             managed='yes'><source><address domain='0x0000' bus='0x66' slot='0x00' \
             function='0x0'/></source><alias name='ua-acc1'/></hostdev>\n  </devices>",
        "h-fw6-hinted-pdpe1gb",
    );
    let out = plan_domain(&input, "pdpe1gb.xml", &Default::default()).unwrap();
    assert_eq!(out.matches(feature).count(), 1, "{out}");
    let kib = pcihole64_kib(&out);
    assert!(kib >= 1 << 30, "{kib} KiB: not past 512 GiB");
    let again = plan_domain(&out, "again.xml", &Default::default()).unwrap();
    assert_eq!(again, out, "planning it again changed it");
    if !live::live() {
        return;
    }
    let dir = common::scratch("devaddr-hints-pdpe1gb");
    for (name, xml) in [("h-fw6-hinted-pdpe1gb", out), ("h-fw6-pdpe1gb", from_spec)] {
        let d = live::define(&dir, &xml, name).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let dump = live::dumpxml(&d.0);
        drop(d);
        assert!(
            dump.contains(feature),
            "{name}: libvirt lost the feature:\n{dump}"
        );
        if name.contains("hinted") {
            assert_eq!(
                plan_domain(&dump, "dump.xml", &Default::default()).unwrap(),
                dump,
                "planning the dump changed it"
            );
        }
    }
}

/// examples/hinted.xml with `hints` in place of its `<devaddr:policy>` element's end, `devices`
/// in place of `  </devices>`, and the domain named `name`: the example as read and the
/// edited text.
fn hinted_example_with(hints: &str, devices: &str, name: &str) -> (String, String) {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hinted.xml"))
            .unwrap();
    let input = example
        .replace("hotplug_reserve_per_node=\"1\"/>", hints)
        .replace("  </devices>", devices)
        .replace("<name>hinted</name>", &format!("<name>{name}</name>"));
    (example, input)
}
