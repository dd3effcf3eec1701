//! Bad input is refused cleanly, at its root, with a location: one test per class of
//! input the fuzzing campaign found (`../shared/reliability/`). Each runs the CLI and
//! checks the exit code, that stderr names where the problem is, that nothing panicked
//! or aborted, and that the answer comes quickly.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reliability/cases");

/// The outcome of one run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Run devaddr with `args` (and `stdin`), killing it after `limit`.
fn run_with(args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_devaddr"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run devaddr");
    let input = stdin.map(<[u8]>::to_vec);
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        if let Some(b) = input {
            let _ = pipe.write_all(&b);
        }
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("devaddr {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    let _ = writer.join();
    let r = Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out_t.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_t.join().unwrap()).into_owned(),
        took,
    };
    // Every refused input is refused the same way with --error-format json.
    if common::wants_json_twin(args, r.code) {
        common::json_twin(args, stdin, r.code, &r.stderr);
    }
    r
}

fn run(args: &[&str]) -> Run {
    run_with(args, None, Duration::from_secs(20))
}

fn case(name: &str) -> String {
    format!("{CASES}/{name}")
}

fn tmp(name: &str, bytes: &[u8]) -> common::TmpFile {
    common::tmp_file("devaddr-reliability", name, bytes)
}

/// Exit 2, no panic or abort, and every `wants` string on stderr (the location).
#[track_caller]
fn refused(r: &Run, wants: &[&str]) {
    assert_eq!(r.code, Some(2), "expected exit 2; stderr: {}", r.stderr);
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("memory allocation"),
        "{}",
        r.stderr
    );
    for w in wants {
        assert!(r.stderr.contains(w), "stderr lacks `{w}`: {}", r.stderr);
    }
}

fn spec_with_device(fields: &str) -> String {
    format!("machine: q35\ndevices:\n  - {{id: n0, kind: virtio-net, {fields}}}\n")
}

/// Class 1: every number of a spec, plan or domain is bounded where it is read, before
/// it sizes an allocation, a loop or a range (exit 2 naming the path and the range).
#[test]
fn numbers_from_the_input_are_bounded_before_they_size_anything() {
    for name in [
        "yaml-numa-oom.yaml",
        "yaml-numa-hang.yaml",
        "yaml-numa-overflow.yaml",
    ] {
        let r = run(&["plan", &case(name)]);
        refused(&r, &[name, "devices[0].numa_node", "0-63"]);
        assert!(r.took < Duration::from_secs(5), "{name}: {:?}", r.took);
    }
    let r = run(&["plan", &case("xml-index-4294967295.xml")]);
    refused(
        &r,
        &[
            "xml-index-4294967295.xml",
            "line 19",
            "<controller>",
            "index",
        ],
    );

    // Every other number a spec or plan can carry.
    let specs: &[(&str, &str)] = &[
        (
            "machine: q35\npolicy: {numa_nodes: 4294967295}\ndevices: []\n",
            "policy.numa_nodes",
        ),
        (
            "machine: q35\npolicy: {hotplug_reserve: 4294967295}\ndevices: []\n",
            "policy.hotplug_reserve",
        ),
        (
            "machine: q35\npolicy: {hotplug_reserve_per_node: 100000, numa_nodes: 2}\ndevices: []\n",
            "policy.hotplug_reserve_per_node",
        ),
        (
            &spec_with_device("address: {type: pci, bus: 4294967295, slot: 0}"),
            "devices[0].address.bus",
        ),
        (
            &spec_with_device("address: {type: pci, bus: 1, slot: 200}"),
            "devices[0].address.slot",
        ),
        (
            &spec_with_device("address: {type: pci, bus: 1, slot: 0, function: 9}"),
            "devices[0].address.function",
        ),
        (
            "machine: q35\ndevices:\n  - {id: d, kind: scsi-disk, address: {type: drive, controller: 0, unit: 4294967295}}\n",
            "devices[0].address.unit",
        ),
        (
            "machine: q35\ndevices:\n  - {id: d, kind: scsi-disk, address: {type: drive, controller: 4294967295}}\n",
            "devices[0].address.controller",
        ),
        (
            "machine: q35\ndevices:\n  - {id: t, kind: usb-tablet, address: {type: usb, bus: 0, port: 4294967295}}\n",
            "devices[0].address.port",
        ),
        (
            "machine: q35\ndevices:\n  - {id: t, kind: usb-tablet, address: {type: usb, bus: 0, port: '1.1.1.1.1.1.1.1'}}\n",
            "devices[0].address.port",
        ),
        (
            "machine: q35\ncontrollers:\n  - {id: p, model: pcie-root-port, index: 4294967295}\ndevices: []\n",
            "controllers[0].index",
        ),
        (
            "machine: q35\ncontrollers:\n  - {id: p, model: pcie-root-port, index: 1, chassis: 300}\ndevices: []\n",
            "controllers[0].chassis",
        ),
        (
            "machine: q35\ncontrollers:\n  - {id: p, model: pcie-root-port, index: 1, port: 4294967295}\ndevices: []\n",
            "controllers[0].port",
        ),
        (
            "machine: q35\npolicy: {numa_nodes: 1}\ncontrollers:\n  - {id: x, model: pcie-expander-bus, index: 1, numa_node: 0, bus_nr: 100000}\ndevices: []\n",
            "controllers[0].bus_nr",
        ),
        (
            "machine: q35\ncontrollers:\n  - {id: x, model: pcie-expander-bus, index: 1, numa_node: 4294967295}\ndevices: []\n",
            "controllers[0].numa_node",
        ),
    ];
    for (i, (text, path)) in specs.iter().enumerate() {
        let f = tmp(&format!("numbers-{i}.yaml"), text.as_bytes());
        for cmd in ["plan", "check", "capacity"] {
            let r = run(&[cmd, &f]);
            refused(&r, &[&f, path, "expected"]);
        }
    }
    // The same bounds apply to the devices `hotplug --add` reads.
    let plan = run(&["plan", &tmp("base.yaml", b"machine: q35\ndevices: []\n")]);
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    let plan_file = tmp("base.plan.yaml", plan.stdout.as_bytes());
    let add = tmp(
        "add-numbers.yaml",
        b"- {id: n9, kind: virtio-net, numa_node: 4294967295}\n",
    );
    refused(
        &run(&["hotplug", &plan_file, "--add", &add]),
        &[&add, "[0].numa_node", "0-63"],
    );

    // libvirt domains: numbers are C ints; PCI controller indexes are bus numbers; a
    // model's port count is bounded.
    let domain = |devices: &str| {
        format!(
            "<domain type='kvm'><name>t</name><os><type arch='x86_64' machine='q35'>hvm</type></os>\n<devices>\n{devices}\n</devices></domain>\n"
        )
    };
    let xmls: &[(&str, &str)] = &[
        (
            "<controller type='pci' index='2147483647' model='pcie-root-port'/>",
            "index 2147483647",
        ),
        ("<controller type='usb' index='0' model='qemu-xhci' ports='100000'/>", "15"),
        (
            "<disk type='file' device='disk'><target dev='sda' bus='sata'/><address type='drive' controller='0' bus='0' target='0' unit='99999999999'/></disk>",
            "unit",
        ),
    ];
    for (i, (devices, want)) in xmls.iter().enumerate() {
        let f = tmp(&format!("numbers-{i}.xml"), domain(devices).as_bytes());
        refused(&run(&["plan", &f]), &[&f, "line 3", want]);
    }
}

/// Class 2: whatever `plan` accepts, `plan` of its output accepts unchanged.
#[test]
fn a_plan_can_be_planned_again_unchanged() {
    let r = run(&["plan", &case("yaml-numa255-not-idempotent.yaml")]);
    refused(&r, &["devices[0].numa_node", "0-63"]);
    // The highest node that is accepted gives a plan that plans to itself.
    let f = tmp("numa63.yaml", spec_with_device("numa_node: 63").as_bytes());
    let first = run(&["plan", &f]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let again = run(&["plan", &tmp("numa63.plan.yaml", first.stdout.as_bytes())]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.stdout, first.stdout);
}

/// Class 8: libvirt domains are refused where libvirt 9.0 refuses them (two members of
/// a USB set, a companion without its master, two USB controllers with one index), and
/// an address is never silently replaced by one libvirt would not choose.
#[test]
fn libvirt_domains_with_a_double_used_address_are_refused_like_libvirt() {
    let r = run(&["plan", &case("xml-dup-usb-companion.xml")]);
    refused(
        &r,
        &[
            "xml-dup-usb-companion.xml",
            "line 27",
            "<controller type='usb' index='1' model='ich9-uhci2'>",
            "No master USB controller",
        ],
    );
    let text = std::fs::read_to_string(case("xml-dup-usb-companion.xml")).unwrap();
    let two = "<controller type='usb' index='1' model='ich9-uhci2'/>\n    <controller type='usb' index='1' model='ich9-uhci2'/>";
    let variants = [
        (
            "<controller type='usb' index='1' model='ich9-ehci1'/>\n    <controller type='usb' index='1' model='ich9-uhci2'/>\n    <controller type='usb' index='1' model='ich9-uhci2'/>",
            "Attempted double use of PCI Address 0000:02:01.1",
            "line 29",
        ),
        (
            "<controller type='usb' index='1' model='ich9-ehci1'/>\n    <controller type='usb' index='1' model='ich9-ehci1'/>",
            "Attempted double use of PCI Address 0000:02:01.7",
            "line 28",
        ),
        (
            "<controller type='usb' index='1' model='qemu-xhci'/>\n    <controller type='usb' index='1' model='qemu-xhci'/>",
            "Duplicate USB controllers with index 1",
            "line 28",
        ),
    ];
    assert!(text.contains(two));
    for (i, (ctls, msg, line)) in variants.iter().enumerate() {
        let f = tmp(
            &format!("usb-set-{i}.xml"),
            text.replace(two, ctls).as_bytes(),
        );
        refused(
            &run(&["plan", &f]),
            &[&f, line, "<controller type='usb'", msg],
        );
    }

    // An all-zero PCI address (00:00.x) means "assign one" to libvirt, which then places
    // a dmi-to-pci-bridge like any controller (00:02.0), not at its chipset home 00:1e.0
    // (that is only for a bridge written without an <address> element).
    let r = run(&["plan", &case("xml-pin-slot0.xml")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let bridge = r
        .stdout
        .split("model='dmi-to-pci-bridge'>")
        .nth(1)
        .and_then(|s| s.split("</controller>").next())
        .expect("bridge in output")
        .to_string();
    assert!(
        bridge.contains("bus='0x00' slot='0x02' function='0x0'"),
        "{bridge}"
    );
}

/// Class 3: input the planner cannot honour is refused before solving (exit 2 with the
/// YAML path), not reported as "plan fails verification" (exit 1); a spec that names the
/// root bus with any id is planned and its plan verifies.
#[test]
fn bad_pins_are_refused_before_solving_with_their_path() {
    let r = run(&["plan", &case("yaml-verif-ide0.yaml")]);
    refused(
        &r,
        &["yaml-verif-ide0.yaml", "controllers[0].address", "ide0"],
    );
    let r = run(&["plan", &case("yaml-verif-no-f0.yaml")]);
    refused(
        &r,
        &["yaml-verif-no-f0.yaml", "devices[0].address", "function 0"],
    );
    // The same for a controller pinned at function 3 of an empty slot.
    let f = tmp(
        "ctl-f3.yaml",
        b"machine: q35\ncontrollers:\n- {id: rp, model: pcie-root-port, index: 1, address: {type: pci, bus: 0, slot: 5, function: 3}}\ndevices: []\n",
    );
    refused(
        &run(&["plan", &f]),
        &[&f, "controllers[0].address", "function 0"],
    );

    let r = run(&["plan", &case("yaml-verif-root-id.yaml")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains("- id: '3'\n  model: pci-root"),
        "{}",
        r.stdout
    );
    let plan = tmp("root-id.plan.yaml", r.stdout.as_bytes());
    let again = run(&["plan", &plan]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.stdout, r.stdout);
    assert_eq!(run(&["check", &plan]).code, Some(0));
}

/// Class 4: an error names the device and its path, also when what it collides with is
/// part of the machine.
#[test]
fn a_pin_on_a_builtin_names_the_device_and_its_path() {
    let r = run(&["plan", &case("yaml-unnamed-builtin-collision.yaml")]);
    refused(
        &r,
        &[
            "yaml-unnamed-builtin-collision.yaml",
            "devices[0].address",
            "`n0`",
            "sata0",
        ],
    );
    // A chipset function (q35 LPC at 1f.0) and pc's builtin IDE (01.1).
    for (name, text, what) in [
        (
            "lpc.yaml",
            "machine: q35\ndevices:\n- {id: n1, kind: virtio-net, address: {type: pci, bus: 0, slot: 0x1f, function: 0}}\n",
            "LPC",
        ),
        (
            "ide.yaml",
            "machine: pc\ndevices:\n- {id: n1, kind: virtio-net, address: {type: pci, bus: 0, slot: 1, function: 1}}\n",
            "ide0",
        ),
    ] {
        let f = tmp(name, text.as_bytes());
        refused(&run(&["plan", &f]), &[&f, "devices[0].address", "`n1`", what]);
    }
}

/// Class 5: whatever reads an input (plan, check, capacity, hotplug and its --add,
/// plan --previous) reports unreadable text with a location: invalid UTF-8 with its byte
/// offset, an empty file and a second YAML document with a line.
#[test]
fn unreadable_input_is_reported_with_a_location() {
    let plan = run(&["plan", &tmp("ok.yaml", b"machine: q35\ndevices: []\n")]);
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    let good_plan = tmp("ok.plan.yaml", plan.stdout.as_bytes());
    let good_add = tmp("ok.add.yaml", b"- {id: t9, kind: virtio-net}\n");
    let bad: [(&str, &[u8], &[&str]); 4] = [
        (
            "utf8.yaml",
            b"machine: q35\ndevices: [{id: \"a\xff\", kind: virtio-net}]\n",
            &["line 2", "byte offset 30", "UTF-8"],
        ),
        ("empty.yaml", b"", &["line 1", "empty input"]),
        ("blank.yaml", b"# nothing\n\n", &["line 2", "empty input"]),
        (
            "two-docs.yaml",
            b"machine: q35\ndevices: []\n---\nmachine: pc\ndevices: []\n",
            &["line 3", "second YAML document"],
        ),
    ];
    for (name, bytes, wants) in bad {
        let f = tmp(name, bytes);
        let mut want = vec![&*f];
        want.extend_from_slice(wants);
        for args in [
            vec!["plan", &f],
            vec!["check", &f],
            vec!["capacity", &f],
            vec!["hotplug", &f, "--add", &good_add],
            vec!["hotplug", &good_plan, "--add", &f],
            vec!["plan", &good_plan, "--previous", &f],
        ] {
            let r = run(&args);
            refused(&r, &want);
        }
    }
    // Standard input is named too.
    let r = run_with(
        &["plan", "-"],
        Some(b"machine: q35\n\xc3\x28"),
        Duration::from_secs(20),
    );
    refused(&r, &["<stdin>", "line 2", "byte offset 13"]);
    // A domain XML with invalid UTF-8.
    let f = tmp(
        "utf8.xml",
        b"<domain type='kvm'>\n<name>\xfe</name>\n</domain>\n",
    );
    refused(&run(&["plan", &f]), &[&f, "line 2", "byte offset 26"]);
}

/// Class 6: deep nesting and oversized input are refused quickly with the limit named,
/// never a stack overflow or a long parse.
#[test]
fn deep_nesting_and_oversized_input_are_refused_quickly() {
    let deep = 100_000;
    let inputs: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "flow.yaml",
            format!("machine: q35\ndevices: {}\n", "[".repeat(deep)).into_bytes(),
            "64 levels",
        ),
        (
            "block.yaml",
            format!("machine: q35\ndevices:\n{}x\n", "- ".repeat(deep)).into_bytes(),
            "64 levels",
        ),
        (
            "json.json",
            format!(
                "{{\"machine\": \"q35\", \"devices\": {}",
                "{\"a\": ".repeat(deep)
            )
            .into_bytes(),
            "64 levels",
        ),
        (
            "deep.xml",
            format!(
                "<domain type='kvm'>{}{}</domain>\n",
                "<a>".repeat(deep),
                "</a>".repeat(deep)
            )
            .into_bytes(),
            "256 levels",
        ),
        (
            "open.xml",
            format!("<domain type='kvm'>{}", "<a>".repeat(deep)).into_bytes(),
            "256 levels",
        ),
    ];
    for (name, bytes, limit) in inputs {
        let f = tmp(name, &bytes);
        let r = run(&["plan", &f]);
        refused(&r, &[&f, "line", limit]);
        assert!(r.took < Duration::from_secs(1), "{name}: {:?}", r.took);
        let r = run(&["check", &f]);
        refused(&r, &[&f, limit]);
    }
    // Larger than the input limit (16 MiB): refused before it is parsed.
    let mut big = b"machine: q35\ndevices: []\n".to_vec();
    big.resize(devaddr::limits::MAX_INPUT_BYTES + 1, b'#');
    let f = tmp("big.yaml", &big);
    let r = run(&["plan", &f]);
    refused(&r, &[&f, "16 MiB", "line 3", "byte offset"]);
    let r = run_with(&["plan", "-"], Some(&big), Duration::from_secs(20));
    refused(&r, &["<stdin>", "16 MiB"]);
}

/// Class 7: the XML reader refuses what libxml2 (libvirt's parser) refuses, with the
/// line, and still writes valid documents back byte for byte.
#[test]
fn xml_reader_refuses_what_libxml2_refuses() {
    let head = "<domain type='kvm'>\n<name>t</name>\n<os><type arch='x86_64' machine='q35'>hvm</type></os>\n<devices>\n";
    let tail = "</devices>\n</domain>\n";
    let ctl = "<controller type='usb' index='0' model='qemu-xhci'/>";
    let cases: Vec<(&str, String, &str)> = vec![
        ("nul", format!("{head}{ctl}\0\n{tail}"), "U+0000"),
        (
            "entity",
            format!("{head}{ctl}&foo;\n{tail}"),
            "undefined entity",
        ),
        (
            "ref-big",
            format!("{head}{ctl}&#x110000;\n{tail}"),
            "&#x110000;",
        ),
        ("ref-zero", format!("{head}{ctl}&#0;\n{tail}"), "&#0;"),
        (
            "ref-surrogate",
            format!("{head}{ctl}&#xD800;\n{tail}"),
            "&#xD800;",
        ),
        (
            "ref-attr",
            format!("{head}<controller type='usb' index='0' model='&#1;'/>\n{tail}"),
            "&#1;",
        ),
        (
            "entity-attr",
            format!("{head}<controller type='usb' index='0' model='&bar;'/>\n{tail}"),
            "undefined entity",
        ),
        (
            "attr-name",
            format!("{head}<controller type='usb' man&ged='yes'/>\n{tail}"),
            "man&ged",
        ),
        (
            "lt-in-attr",
            format!("{head}<controller type='usb' model='a<b'/>\n{tail}"),
            "`<`",
        ),
        (
            "dup-attr",
            format!("{head}<controller type='usb' index='0' index='1'/>\n{tail}"),
            "duplicated attribute",
        ),
        (
            "mismatch",
            format!("{head}<controller type='usb'>\n</controler>\n{tail}"),
            "</controler>",
        ),
        (
            "text-after-root",
            format!("{head}{ctl}\n{tail}junk\n"),
            "after the root",
        ),
        (
            "element-after-root",
            format!("{head}{ctl}\n{tail}<x/>\n"),
            "second root",
        ),
        ("unterminated", format!("{head}{ctl}\n"), "never closed"),
    ];
    for (name, text, want) in cases {
        let f = tmp(&format!("{name}.xml"), text.as_bytes());
        for cmd in ["plan", "check"] {
            let r = run(&[cmd, &f]);
            refused(&r, &[&f, "line ", want]);
        }
    }
    // Valid documents with references, comments and odd spacing still round-trip.
    let text = format!(
        "<?xml version='1.0'?>\n<!-- a &amp; b -->\n{head}<controller type='usb' index='0' model='qemu-xhci' \
         alias=\"&#x41;&amp;&lt;&quot;\" >\n  <!-- c -->\n</controller>\n{tail}<!-- end -->\n"
    );
    let f = tmp("valid.xml", text.as_bytes());
    let r = run(&["plan", &f]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("<?xml version='1.0'?>\n<!-- a &amp; b -->\n<domain type='kvm'>"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("alias=\"&#x41;&amp;&lt;&quot;\" >"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.ends_with("</domain>\n<!-- end -->\n"),
        "{}",
        r.stdout
    );
}
