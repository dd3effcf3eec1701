//! `devaddr schema spec|plan|capacity` against what devaddr really reads and writes,
//! checked by an independent JSON Schema validator (Python's `jsonschema`, draft
//! 2020-12): every spec and plan in examples/ and tests/ that devaddr accepts validates,
//! every plan devaddr writes (from specs, random specs and libvirt domains) validates
//! against both the plan and the spec schema, `capacity --format json` validates, and
//! broken documents that devaddr refuses are refused by the schema too.

mod common;

#[path = "common/specgen.rs"]
mod specgen;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI must run this test, but: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Whether `python3` with `jsonschema` is here (.ci/run installs python3-jsonschema).
fn validator() -> bool {
    Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success())
}

const VALIDATE: &str = r#"
import json, sys
import jsonschema
job = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(job["schema"])
v = jsonschema.Draft202012Validator(job["schema"])
out = []
for name, doc in job["docs"]:
    errs = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
    out.append([name, ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message) for e in errs[:3]]])
json.dump(out, sys.stdout)
"#;

/// Validate `docs` against `schema`: each name with its first errors (empty: valid).
fn validate(schema: &Value, docs: &[(String, Value)]) -> Vec<(String, Vec<String>)> {
    let dir = common::scratch("devaddr-schema");
    let job = dir.join(format!("job-{}.json", docs.len()));
    std::fs::write(&job, json!({"schema": schema, "docs": docs}).to_string()).unwrap();
    let o = Command::new("python3")
        .args(["-c", VALIDATE])
        .arg(&job)
        .output()
        .expect("run python3");
    let _ = std::fs::remove_file(&job);
    assert!(
        o.status.success(),
        "validator: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("validator output")
}

fn schema(doc: &str) -> Value {
    serde_json::from_str(&common::devaddr_ok(&["schema", doc])).expect("schema is JSON")
}

/// YAML (or JSON) text as the JSON value the schema is about.
fn yaml_value(text: &str) -> Option<Value> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    serde_json::to_value(v).ok()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every YAML file under examples/ and tests/.
fn yaml_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("examples"), &mut out);
    walk(&root().join("tests"), &mut out);
    out
}

fn assert_all_valid(what: &str, results: &[(String, Vec<String>)]) {
    let bad: Vec<String> = results
        .iter()
        .filter(|(_, e)| !e.is_empty())
        .map(|(n, e)| format!("{n}: {}", e.join("; ")))
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} {what} fail the schema:\n{}",
        bad.len(),
        results.len(),
        bad.join("\n")
    );
}

#[test]
fn every_spec_and_plan_in_the_repository_validates() {
    if !validator() {
        return skip("python3 with the jsonschema module is not installed");
    }
    let spec_schema = schema("spec");
    let plan_schema = schema("plan");
    let mut specs = Vec::new();
    let mut plans = Vec::new();
    for path in yaml_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        // Only what devaddr itself accepts as a spec: device lists and broken regression
        // inputs are not specs.
        let Ok(spec) = devaddr::Spec::parse(&text, &name) else {
            continue;
        };
        let value = yaml_value(&text).expect("a parsed spec is YAML");
        specs.push((name.clone(), value.clone()));
        if devaddr::Plan::parse(&text, &name).is_ok() {
            plans.push((name.clone(), value));
        }
        // And what devaddr writes for it.
        if spec.devaddr.is_none() {
            if let Ok(plan) = devaddr::plan(&spec) {
                let v: Value = serde_json::from_str(&plan.to_json()).unwrap();
                specs.push((format!("plan of {name}"), v.clone()));
                plans.push((format!("plan of {name}"), v));
            }
        }
    }
    assert!(specs.len() >= 40, "only {} specs found", specs.len());
    assert!(plans.len() >= 30, "only {} plans found", plans.len());
    for dir in ["examples", "tests/qemu-specs", "tests/lifecycle"] {
        assert!(
            specs.iter().any(|(n, _)| n.starts_with(dir)),
            "no spec of {dir} was read"
        );
    }
    assert_all_valid("specs", &validate(&spec_schema, &specs));
    assert_all_valid("plans", &validate(&plan_schema, &plans));
}

#[test]
fn plans_of_random_specs_and_of_domains_validate() {
    if !validator() {
        return skip("python3 with the jsonschema module is not installed");
    }
    let mut specs = Vec::new();
    let mut plans = Vec::new();
    let sizes = specgen::Sizes::default();
    for seed in 0..60u64 {
        let text = specgen::spec(seed, sizes);
        let name = format!("random spec {seed}");
        let Ok(spec) = devaddr::Spec::parse(&text, &name) else {
            continue;
        };
        specs.push((name.clone(), yaml_value(&text).unwrap()));
        if let Ok(plan) = devaddr::plan(&spec) {
            let v: Value = serde_json::from_str(&plan.to_json()).unwrap();
            plans.push((format!("plan of {name}"), v.clone()));
            specs.push((format!("plan of {name}"), v));
        }
    }
    // Domains planned into the plan model (`plan DOMAIN --format json`).
    let cases = root().join("tests/libvirt/wide-cases");
    let mut xmls: Vec<PathBuf> = std::fs::read_dir(&cases)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    xmls.sort();
    let mut domains = 0;
    for x in &xmls {
        let o = Command::new(env!("CARGO_BIN_EXE_devaddr"))
            .args(["plan", "--format", "json"])
            .arg(x)
            .output()
            .unwrap();
        if o.status.success() {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            let name = format!("plan of {}", x.file_name().unwrap().to_string_lossy());
            plans.push((name.clone(), v.clone()));
            specs.push((name, v));
            domains += 1;
        }
    }
    assert!(plans.len() >= 40, "only {} plans", plans.len());
    assert!(domains >= 10, "only {domains} domains planned");
    assert_all_valid("plans", &validate(&schema("plan"), &plans));
    assert_all_valid("specs", &validate(&schema("spec"), &specs));
}

#[test]
fn capacity_json_validates() {
    if !validator() {
        return skip("python3 with the jsonschema module is not installed");
    }
    let mut docs = Vec::new();
    for args in [
        vec!["capacity", "examples/numa.yaml", "--format", "json"],
        vec!["capacity", "examples/q35-basic.yaml", "--format", "json"],
        vec![
            "capacity",
            "examples/pc.yaml",
            "--format",
            "json",
            "--kind",
            "e1000",
        ],
        vec![
            "capacity",
            "tests/libvirt/wide-cases/aggr-a.in.xml",
            "--format",
            "json",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_devaddr"))
            .current_dir(root())
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        docs.push((args.join(" "), serde_json::from_slice(&out.stdout).unwrap()));
    }
    assert_all_valid("capacity outputs", &validate(&schema("capacity"), &docs));
}

/// Edge cases of the parser: written as devaddr reads them, each accepted or refused
/// by both devaddr and the schema.
#[test]
fn the_schema_accepts_and_refuses_what_the_parser_does() {
    if !validator() {
        return skip("python3 with the jsonschema module is not installed");
    }
    let spec = |devices: &str, policy: &str| {
        format!("machine: q35\npolicy: {{{policy}}}\ndevices:\n{devices}")
    };
    let dev = |extra: &str| spec(&format!("  - {{id: a, kind: virtio-net{extra}}}\n"), "");
    let usb = |port: &str| {
        spec(
            &format!(
                "  - {{id: t, kind: usb-tablet, address: {{type: usb, bus: 0, port: {port}}}}}\n"
            ),
            "",
        )
    };
    let good = [
        (
            "hex slot",
            dev(", address: {type: pci, bus: 0, slot: 0x1f, function: 0}"),
        ),
        (
            "decimal slot",
            dev(", address: {type: pci, bus: 0, slot: 31}"),
        ),
        (
            "octal-looking slot",
            dev(", address: {type: pci, bus: 0, slot: 0o17}"),
        ),
        ("numa node", dev(", numa_node: 63")),
        ("null numa node", dev(", numa_node: null")),
        ("usb port number", usb("2")),
        ("usb port path", usb("'1.3'")),
        ("usb port with zeros", usb("'01.2'")),
        (
            "root port hotplug on",
            spec("  - {id: a, kind: virtio-net}\n", "root_port_hotplug: on"),
        ),
        (
            "root port hotplug no",
            spec("  - {id: a, kind: virtio-net}\n", "root_port_hotplug: 'no'"),
        ),
        (
            "root port hotplug bool",
            spec(
                "  - {id: a, kind: virtio-net}\n",
                "root_port_hotplug: false",
            ),
        ),
        (
            "preset",
            spec(
                "  - {id: a, kind: virtio-net}\n",
                "preset: hotplug-ready, numa_nodes: 64",
            ),
        ),
        (
            "drive address",
            spec(
                "  - {id: d, kind: sata-disk, address: {type: drive, controller: 0, unit: 5}}\n",
                "",
            ),
        ),
        ("no devices", "machine: q35\ndevices: []\n".to_string()),
        ("placement root", dev(", placement: root")),
        (
            "apart and together sets",
            format!(
                "{}  - {{id: b, kind: virtio-net}}\napart: [[a, b]]\ntogether: [[a, b]]\n",
                dev("")
            ),
        ),
        ("pci pin string", dev(", address: '0000:03:00.0'")),
        ("short pci pin string", dev(", address: '03:1F.7'")),
        ("pci pin string, one digit", dev(", address: '3:0.0'")),
        (
            "controller pin string",
            format!(
                "{}controllers:\n  - {{id: pci.1, model: pcie-root-port, index: 1, address: '00:02.0'}}\n",
                dev("")
            ),
        ),
    ];
    let bad = [
        ("slot 32", dev(", address: {type: pci, bus: 0, slot: 32}")),
        (
            "function 8",
            dev(", address: {type: pci, bus: 0, slot: 3, function: 8}"),
        ),
        ("address without type", dev(", address: {bus: 0, slot: 3}")),
        (
            "unknown address type",
            dev(", address: {type: isa, bus: 0, slot: 3}"),
        ),
        (
            "usb field on a pci address",
            dev(", address: {type: pci, bus: 0, slot: 3, port: 1}"),
        ),
        (
            "negative slot",
            dev(", address: {type: pci, bus: 0, slot: -1}"),
        ),
        (
            "slot as a string",
            dev(", address: {type: pci, bus: 0, slot: '3'}"),
        ),
        ("numa node 64", dev(", numa_node: 64")),
        ("pci pin string without function", dev(", address: '03:00'")),
        ("pci pin string slot 0x20", dev(", address: '0000:03:20.0'")),
        ("pci pin string function 8", dev(", address: '03:00.8'")),
        (
            "pci pin string 5-digit domain",
            dev(", address: '10000:03:00.0'"),
        ),
        ("pci pin string not hex", dev(", address: '0g:00.0'")),
        ("pci pin number", dev(", address: 3")),
        ("unknown device field", dev(", colour: red")),
        ("placement elsewhere", dev(", placement: port")),
        (
            "apart as a flat list",
            format!("{}apart: [a, b]\n", dev("")),
        ),
        ("hotplug as a word", dev(", hotplug: yes")),
        ("bus type", dev(", bus: isa")),
        ("usb port 0", usb("0")),
        ("usb port 32", usb("32")),
        ("usb port path too deep", usb("'1.1.1.1.1'")),
        ("usb port with a letter", usb("'1a'")),
        (
            "root port hotplug maybe",
            spec(
                "  - {id: a, kind: virtio-net}\n",
                "root_port_hotplug: maybe",
            ),
        ),
        (
            "unknown preset",
            spec("  - {id: a, kind: virtio-net}\n", "preset: fast"),
        ),
        (
            "numa nodes 65",
            spec("  - {id: a, kind: virtio-net}\n", "numa_nodes: 65"),
        ),
        (
            "unknown top-level field",
            format!("{}colour: red\n", dev("")),
        ),
        (
            "missing machine",
            "devices: [{id: a, kind: virtio-net}]\n".to_string(),
        ),
        ("missing devices", "machine: q35\n".to_string()),
        ("device without id", spec("  - {kind: virtio-net}\n", "")),
    ];
    let mut docs = Vec::new();
    for (name, text) in &good {
        if let Err(e) = devaddr::Spec::parse(text, name) {
            panic!("devaddr refuses the good case `{name}`: {e}\n{text}");
        }
        docs.push((name.to_string(), yaml_value(text).unwrap()));
    }
    for (name, text) in &bad {
        assert!(
            devaddr::Spec::parse(text, name).is_err(),
            "devaddr accepts the broken case `{name}`:\n{text}"
        );
        docs.push((name.to_string(), yaml_value(text).unwrap()));
    }
    let results = validate(&schema("spec"), &docs);
    let mut wrong = Vec::new();
    for ((name, errors), i) in results.iter().zip(0..) {
        let should_pass = i < good.len();
        if should_pass && !errors.is_empty() {
            wrong.push(format!("refused `{name}`: {}", errors.join("; ")));
        }
        if !should_pass && errors.is_empty() {
            wrong.push(format!("accepted broken `{name}`"));
        }
    }
    assert!(wrong.is_empty(), "the spec schema:\n{}", wrong.join("\n"));

    // A broken plan (a spec is not a plan: no devaddr header) is refused by the plan schema.
    let spec_only = yaml_value(&dev("")).unwrap();
    let r = validate(&schema("plan"), &[("a spec".into(), spec_only)]);
    assert!(!r[0].1.is_empty(), "the plan schema accepts a spec");
}
