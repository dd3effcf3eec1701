//! Bad input is refused cleanly, at its root, with a location: one test per class of
//! input the fuzzing campaign found (`../shared/reliability/`). Each runs the CLI and
//! checks the exit code, that stderr names where the problem is, that nothing panicked
//! or aborted, and that the answer comes quickly.

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
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out_t.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_t.join().unwrap()).into_owned(),
        took,
    }
}

fn run(args: &[&str]) -> Run {
    run_with(args, None, Duration::from_secs(20))
}

fn case(name: &str) -> String {
    format!("{CASES}/{name}")
}

fn tmp(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("devaddr-reliability-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
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
