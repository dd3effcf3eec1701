//! The command line: every acceptance flow and every error path, with exit codes.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn devaddr(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_devaddr"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run devaddr");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn plan_stdin(spec: &str, extra: &[&str]) -> Output {
    let mut args = vec!["plan", "-"];
    args.extend_from_slice(extra);
    devaddr(&args, Some(spec))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tmp(name: &str, text: &str) -> common::TmpFile {
    common::tmp_file("devaddr-cli", name, text)
}
#[test]
fn examples_plan_in_every_format_and_check_ok() {
    for ex in ["q35-basic", "numa", "pc", "aarch64"] {
        let path = format!("{}/examples/{ex}.yaml", env!("CARGO_MANIFEST_DIR"));
        let yaml = devaddr(&["plan", &path], None);
        assert_eq!(yaml.status.code(), Some(0), "{ex}: {}", stderr(&yaml));
        assert!(stdout(&yaml).contains("controllers:"), "{ex}");
        let plan_file = tmp(&format!("{ex}.plan.yaml"), &stdout(&yaml));
        let check = devaddr(&["check", &plan_file], None);
        assert_eq!(check.status.code(), Some(0), "{ex}: {}", stderr(&check));
        let json = devaddr(&["plan", &path, "--format", "json"], None);
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
        assert!(v["devices"].as_array().is_some_and(|d| !d.is_empty()));
        // JSON and YAML carry the same plan.
        let from_yaml: serde_json::Value = serde_yaml::from_str(&stdout(&yaml)).unwrap();
        assert_eq!(from_yaml, v, "{ex}: yaml and json differ");
        let tree = devaddr(&["plan", &path, "--format", "tree"], None);
        assert!(stdout(&tree).contains("+-"), "{ex}");
        let qemu = devaddr(&["plan", &path, "--format", "qemu"], None);
        let args = stdout(&qemu);
        assert!(args.lines().any(|l| l == "-nodefaults"), "{ex}");
        assert!(
            args.lines().all(|l| !l.contains(' ')),
            "{ex}: one argument per line"
        );
    }
}

#[test]
fn output_is_deterministic_and_replanning_a_plan_changes_nothing() {
    let path = format!("{}/examples/numa.yaml", env!("CARGO_MANIFEST_DIR"));
    let a = stdout(&devaddr(&["plan", &path], None));
    let b = stdout(&devaddr(&["plan", &path], None));
    assert_eq!(a, b);
    let again = plan_stdin(&a, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(stdout(&again), a);
}

#[test]
fn output_file_option_writes_the_plan() {
    let dir = common::scratch("devaddr-cli");
    let out = dir.join("out.yaml");
    let o = plan_stdin(
        "machine: q35\ndevices: [{id: n, kind: virtio-net}]\n",
        &["-o", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("virtio-net"));
}

#[test]
fn unknown_kind_exits_2_with_path_and_near_match() {
    let o = plan_stdin(
        "machine: q35\ndevices:\n  - {id: a, kind: virtio-nett}\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("devices[0].kind"), "{e}");
    assert!(e.contains("virtio-nett"), "{e}");
    assert!(e.contains("did you mean virtio-net"), "{e}");
}

#[test]
fn numa_node_out_of_range_exits_2_naming_it() {
    let o = plan_stdin(
        "machine: q35\npolicy: {numa_nodes: 2}\ndevices:\n  - {id: a, kind: virtio-net, numa_node: 3}\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("devices[0].numa_node") && e.contains("NUMA node 3"),
        "{e}"
    );
}

#[test]
fn duplicate_pin_exits_2_naming_the_address() {
    let o = plan_stdin(
        "machine: q35\ndevices:\n  - {id: a, kind: virtio-net, address: {type: pci, bus: 0, slot: 5}}\n  - {id: b, kind: virtio-blk, address: {type: pci, bus: 0, slot: 5, function: 0}}\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("devices[1].address") && e.contains("0000:00:05.0"),
        "{e}"
    );
}

#[test]
fn malformed_yaml_gives_line_and_column() {
    let f = tmp(
        "bad.yaml",
        "machine: q35\ndevices:\n  - {id: a kind: virtio-net\n",
    );
    let o = devaddr(&["plan", &f], None);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("bad.yaml") && e.contains("line 3 column"), "{e}");
}

#[test]
fn unknown_field_and_bad_enum_are_rejected() {
    let o = plan_stdin(
        "machine: q35\ndevices:\n  - {id: a, kind: virtio-net, colour: red}\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown field `colour`"));
    let o = plan_stdin(
        "machine: q35\npolicy: {multifunction: sometimes}\ndevices: []\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("policy.multifunction"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn other_bad_inputs_exit_2() {
    let cases = [
        ("machine: q99\ndevices: []\n", "unknown machine type `q99`"),
        ("machine: q35\ndevices:\n  - {id: a, kind: virtio-net}\n  - {id: a, kind: virtio-blk}\n", "duplicate id `a`"),
        ("machine: q35\ndevices:\n  - {id: a, kind: sata-disk, hotplug: true}\n", "cannot be hotplugged"),
        ("machine: q35\ndevices:\n  - {id: a, kind: e1000, bus: pcie}\n", "conventional PCI only"),
        ("machine: pc\ndevices:\n  - {id: a, kind: virtio-net, bus: pcie}\n", "only conventional PCI"),
        ("machine: q35\ndevices:\n  - {id: a, kind: ide-disk}\n", "ide"),
        ("machine: q35\ndevices:\n  - {id: a, kind: virtio-net, address: {type: pci, bus: 0, slot: 0x1f, function: 2}}\n", "already in use"),
        ("machine: q35\ndevices:\n  - {id: a, kind: virtio-net, address: {type: usb, bus: 0, port: 1}}\n", "PCI device"),
        ("machine: q35\npolicy: {multifunction: off}\ndevices:\n  - {id: a, kind: virtio-net, group: g}\n", "multifunction is off"),
        ("machine: q35\ndevices:\n  - {id: a, kind: virtio-net, group: g}\n  - {id: b, kind: e1000, group: g}\n", "mixes conventional PCI and PCIe"),
        ("machine: q35\ndevices:\n  - {id: a, kind: usb-tablet, address: {type: usb, bus: 3, port: 1}}\n", "USB bus 3"),
        ("machine: q35\narch: aarch64\ndevices: []\n", "is x86_64"),
        ("", "empty input"),
        ("machine: q35\ndevices:\n  - {id: b1, kind: virtio-balloon}\n  - {id: b2, kind: virtio-balloon}\n", "at most 1 virtio-balloon"),
    ];
    for (spec, want) in cases {
        let o = plan_stdin(spec, &[]);
        assert_eq!(o.status.code(), Some(2), "{spec}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(want),
            "{spec}: expected `{want}` in: {}",
            stderr(&o)
        );
    }
}

#[test]
fn more_than_256_bus_numbers_exits_1_saying_so() {
    let mut spec = String::from("machine: q35\ndevices:\n");
    for i in 0..300 {
        spec.push_str(&format!("  - {{id: n{i}, kind: virtio-net}}\n"));
    }
    let o = plan_stdin(&spec, &[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("needs 301 bus numbers, a PCI domain has 256"),
        "{e}"
    );
    assert!(e.contains("fix:"), "{e}");
    // The same devices packed eight to a port fit.
    let packed = spec.replace("devices:\n", "policy: {multifunction: pack}\ndevices:\n");
    assert_eq!(plan_stdin(&packed, &[]).status.code(), Some(0));
}

#[test]
fn too_many_io_windows_exits_1() {
    let mut spec = String::from("machine: q35\ndevices:\n");
    for i in 0..16 {
        spec.push_str(&format!("  - {{id: n{i}, kind: e1000e}}\n"));
    }
    let o = plan_stdin(&spec, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("I/O"), "{}", stderr(&o));
}

#[test]
fn check_rejects_a_broken_plan_with_exit_1() {
    let path = format!("{}/examples/q35-basic.yaml", env!("CARGO_MANIFEST_DIR"));
    let plan = stdout(&devaddr(&["plan", &path], None));
    // Move disk1 onto the root port that holds disk0.
    let v: serde_yaml::Value = serde_yaml::from_str(&plan).unwrap();
    let mut v = v;
    let devs = v["devices"].as_sequence_mut().unwrap();
    let bus0 = devs.iter().find(|d| d["id"] == "disk0").unwrap()["address"]["bus"].clone();
    for d in devs.iter_mut() {
        if d["id"] == "disk1" {
            d["address"]["bus"] = bus0.clone();
        }
    }
    let f = tmp("broken.yaml", &serde_yaml::to_string(&v).unwrap());
    let o = devaddr(&["check", &f], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("both use"), "{}", stderr(&o));
    // The same findings as data.
    let o = devaddr(&["check", &f, "--format", "json"], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("check JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["file"], &*f);
    let findings = v["findings"].as_array().unwrap();
    let f0 = findings
        .iter()
        .find(|x| x["rule"] == "unique-address")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(f0["subject"]["id"], "disk1", "{v}");
    assert!(f0["message"].as_str().unwrap().contains("both use"), "{v}");
    // A valid plan: ok, no findings, written to -o.
    let good = tmp("good.yaml", &plan);
    let out = tmp("check.json", "");
    let o = devaddr(&["check", &good, "--format", "json", "-o", &out], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["findings"].as_array().map(Vec::len), Some(0));
}

#[test]
fn models_lists_and_shows() {
    let o = devaddr(&["models"], None);
    assert_eq!(o.status.code(), Some(0));
    let s = stdout(&o);
    for want in [
        "q35",
        "pc-i440fx",
        "virt",
        "pcie-root-port",
        "pcie-expander-bus",
        "qemu-xhci",
        "vfio-pci",
        "usb-tablet",
    ] {
        assert!(s.contains(want), "missing {want}");
    }
    // One entry: a description for people, its data as YAML or JSON.
    let o = devaddr(&["models", "pcie-root-port"], None);
    let s = stdout(&o);
    assert!(s.contains("up to 8 share one slot"), "{s}");
    assert!(
        s.contains("plugs into:    a slot of pcie-expander-bus and pcie-root"),
        "{s}"
    );
    let o = devaddr(&["models", "pcie-root-port", "--format", "yaml"], None);
    assert!(stdout(&o).contains("aggregate: true"), "{}", stdout(&o));
    let o = devaddr(&["models", "q35", "--format", "json"], None);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["machine"]["root"], "pcie-root");
    let s = stdout(&devaddr(&["models", "q35"], None));
    assert!(s.contains("0000:00:1f.2 sata0"), "{s}");
    assert!(s.contains("256 PCI bus numbers"), "{s}");
    let s = stdout(&devaddr(&["models", "e1000"], None));
    assert!(s.contains("conventional PCI only"), "{s}");
    assert!(s.contains("pci-bridge"), "{s}");
    let s = stdout(&devaddr(&["models", "qemu-xhci"], None));
    assert!(
        s.contains("USB controller") && s.contains("up to 15"),
        "{s}"
    );
    let o = devaddr(&["models", "--format", "json"], None);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["kinds"].as_array().unwrap().len() > 20);
    let o = devaddr(&["models", "virtio-nett"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("did you mean"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(devaddr(&["frobnicate"], None).status.code(), Some(2));
    assert_eq!(devaddr(&["plan"], None).status.code(), Some(2));
    assert_eq!(
        devaddr(&["plan", "/nonexistent/spec.yaml"], None)
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn completions_man_and_schema() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = devaddr(&["completions", shell], None);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let s = stdout(&o);
        assert!(s.contains("devaddr") && s.contains("hotplug"), "{shell}");
        assert!(s.contains("work-limit"), "{shell}");
    }
    assert_eq!(
        devaddr(&["completions", "tcsh"], None).status.code(),
        Some(2)
    );
    let o = devaddr(&["man"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.starts_with(".ie") || s.contains(".TH devaddr"), "{s}");
    assert!(s.contains("capacity"), "{s}");
    let dir = common::scratch("devaddr-cli-man");
    let o = devaddr(&["man", "--output-dir", &dir.display().to_string()], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for page in [
        "devaddr.1",
        "devaddr-plan.1",
        "devaddr-hotplug.1",
        "devaddr-schema.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_default();
        assert!(text.contains(".TH"), "{page}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    for doc in ["spec", "plan", "capacity"] {
        let o = devaddr(&["schema", doc], None);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    }
    // `help X` shows the purpose and an example.
    let s = stdout(&devaddr(&["help", "capacity"], None));
    assert!(
        s.contains("How many more devices") && s.contains("Examples:"),
        "{s}"
    );
}

#[test]
fn capacity_writes_to_output() {
    let spec = format!("{}/examples/q35-basic.yaml", env!("CARGO_MANIFEST_DIR"));
    let out = tmp("capacity.json", "");
    let o = devaddr(
        &[
            "capacity",
            &spec,
            "--kind",
            "virtio-net",
            "--format",
            "json",
            "-o",
            &out,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v[0]["kind"], "virtio-net");
}
