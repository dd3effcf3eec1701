//! The command line: every acceptance flow and every error path, with exit codes.

mod common;

use std::process::Output;

fn devaddr(args: &[&str], stdin: Option<&str>) -> Output {
    let o = common::run(args, stdin.map(str::as_bytes));
    // Every failing run also runs with --error-format json, and must agree.
    if common::wants_json_twin(args, o.status.code()) {
        common::json_twin(
            args,
            stdin.map(str::as_bytes),
            o.status.code(),
            &String::from_utf8_lossy(&o.stderr),
        );
    }
    o
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

/// A host PCI address QEMU and libvirt could not take is bad input where it is written
/// (a fuzzed one planned, and `--format qemu`/`libvirt` wrote it as it came).
#[test]
fn a_malformed_host_address_exits_2_naming_it() {
    for (host, ok) in [
        ("0000:65:00.0", true),
        ("65:00.0", true),
        ("0000:66[[:00.0", false),
        ("0000:65:20.0", false),
        ("0000:65:00.8", false),
        ("65-00-0", false),
    ] {
        let o = plan_stdin(
            &format!("machine: q35\ndevices:\n  - {{id: g, kind: vfio-pci, host: \"{host}\"}}\n"),
            &[],
        );
        let e = stderr(&o);
        if ok {
            assert_eq!(o.status.code(), Some(0), "{host}: {e}");
        } else {
            assert_eq!(o.status.code(), Some(2), "{host}: {e}");
            assert!(
                e.contains("devices[0].host") && e.contains("DDDD:BB:SS.F"),
                "{host}: {e}"
            );
        }
    }
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

/// `policy.firmware` picks the measured budget: 9 e1000e ports fit every firmware on q35,
/// 10 only SeaBIOS (`bios`); the plan records the firmware, `check` holds a plan to it,
/// and a machine that does not boot the firmware is bad input.
#[test]
fn firmware_selects_the_budget_and_is_recorded() {
    let nics = |n: usize, fw: &str| {
        let mut s = format!("machine: q35\npolicy: {{firmware: {fw}}}\ndevices:\n");
        for i in 0..n {
            s.push_str(&format!("  - {{id: n{i}, kind: e1000e}}\n"));
        }
        s
    };
    for fw in ["bios", "uefi", "any"] {
        let o = plan_stdin(&nics(9, fw), &[]);
        assert_eq!(o.status.code(), Some(0), "9 ports, {fw}: {}", stderr(&o));
        assert!(stdout(&o).contains(&format!("firmware: {fw}")), "{fw}");
        let o = plan_stdin(&nics(10, fw), &[]);
        let want = if fw == "bios" { 0 } else { 1 };
        assert_eq!(
            o.status.code(),
            Some(want),
            "10 ports, {fw}: {}",
            stderr(&o)
        );
    }
    // A SeaBIOS plan is not a UEFI plan: check holds it to the firmware it names.
    let plan = stdout(&plan_stdin(&nics(10, "bios"), &[]));
    let as_uefi = tmp("fw.yaml", &plan.replace("firmware: bios", "firmware: uefi"));
    let o = devaddr(&["check", &as_uefi], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("I/O windows"), "{}", stderr(&o));
    // UEFI plans carry the firmware: flash drives for QEMU, <os firmware='efi'> for libvirt.
    let q = stdout(&plan_stdin(&nics(1, "uefi"), &["--format", "qemu"]));
    assert!(
        q.contains("if=pflash,format=raw,unit=0,readonly=on,file="),
        "{q}"
    );
    let q = stdout(&plan_stdin(&nics(1, "any"), &["--format", "qemu"]));
    assert!(!q.contains("pflash"), "{q}");
    let x = stdout(&plan_stdin(&nics(1, "uefi"), &["--format", "libvirt"]));
    assert!(x.contains("<os firmware='efi'>"), "{x}");
    // virt boots UEFI only.
    let o = plan_stdin(
        "machine: virt\npolicy: {firmware: bios}\ndevices: []\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("policy.firmware"), "{}", stderr(&o));
}

/// `bar64:` sizes the 64-bit aperture the plan states and asks of OVMF and QEMU;
/// `policy.phys_bits` bounds it; `hotplug_reserve_bar64` keeps ports with 64-bit room,
/// which `capacity --bar64` counts live and `hotplug` alone fills with big devices.
#[test]
fn big_bars_size_the_64_bit_aperture() {
    let spec = "machine: q35\npolicy: {numa_nodes: 2}\ndevices:\n\
                - {id: a, kind: vfio-pci, bar64: 128G, numa_node: 0}\n\
                - {id: b, kind: vfio-pci, bar64: 128G, numa_node: 1}\n";
    let plan = stdout(&plan_stdin(spec, &[]));
    assert!(
        plan.contains("mmio64:\n  needed: 274877906944\n  aperture: 256G"),
        "{plan}"
    );
    // check holds a hand-edited plan to the bound, and to ports that can keep room.
    let edited = tmp(
        "bits.yaml",
        &plan.replace("policy:\n", "policy:\n  phys_bits: 38\n"),
    );
    let o = devaddr(&["check", &edited], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("aperture of 256G"), "{}", stderr(&o));
    // check recomputes the need: a stated aperture that does not hold it is refused.
    let o = devaddr(
        &[
            "check",
            &tmp(
                "aperture.yaml",
                &plan.replace("aperture: 256G", "aperture: 128G"),
            ),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("states a 64-bit aperture of 128G")
            && stderr(&o).contains("an aperture of 256G"),
        "{}",
        stderr(&o)
    );
    let o = devaddr(&["check", &tmp("as-planned.yaml", &plan)], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let edited = plan.replacen(
        "  model: pcie-expander-bus\n",
        "  model: pcie-expander-bus\n  pref64_reserve: 1G\n",
        1,
    );
    assert_ne!(edited, plan);
    let o = devaddr(&["check", &tmp("pxb.yaml", &edited)], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("pref64_reserve"), "{}", stderr(&o));
    let q = stdout(&plan_stdin(spec, &["--format", "qemu"]));
    for arg in [
        "q35-pcihost.pci-hole64-size=256G",
        "name=opt/ovmf/X-PciMmio64Mb,string=262144",
        "ivshmem-plain,id=a,memdev=bar64mem0",
        "memory-backend-file,id=bar64mem0,size=128G,mem-path=/tmp,share=on",
    ] {
        assert!(
            q.lines().any(|l| l == arg || l.starts_with(arg)),
            "{arg}: {q}"
        );
    }
    // SeaBIOS reads no fw_cfg aperture: a bios plan asks QEMU only.
    let bios = spec.replace("numa_nodes: 2}", "numa_nodes: 2, firmware: bios}");
    let q = stdout(&plan_stdin(&bios, &["--format", "qemu"]));
    assert!(
        !q.contains("X-PciMmio64Mb") && q.contains("pci-hole64-size"),
        "{q}"
    );
    // More than the guest can address: exit 1 naming the bits and the fix.
    let small = spec.replace("numa_nodes: 2}", "numa_nodes: 2, phys_bits: 38}");
    let o = plan_stdin(&small, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("38 physical address bits") && e.contains("phys_bits to 39"),
        "{e}"
    );
    // Not a power of two, or on a device without BARs: exit 2 at the field.
    let o = plan_stdin(
        "machine: q35\ndevices:\n- {id: a, kind: vfio-pci, bar64: 100G}\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("devices[0].bar64") && stderr(&o).contains("power of two"));
    let o = plan_stdin(
        "machine: q35\ndevices:\n- {id: t, kind: usb-tablet, bar64: 1G}\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("devices[0].bar64"), "{}", stderr(&o));

    // Hotplug room: capacity counts the reserved ports live and the aperture at next boot.
    let reserve = "machine: q35\npolicy: {hotplug_reserve: 3, \
                   hotplug_reserve_bar64: {ports: 2, size: 128G}}\n\
                   devices:\n- {id: n, kind: virtio-net}\n";
    let plan = stdout(&plan_stdin(reserve, &[]));
    assert_eq!(plan.matches("pref64_reserve: 128G").count(), 2, "{plan}");
    let q = stdout(&plan_stdin(reserve, &["--format", "qemu"]));
    assert_eq!(
        q.matches(",pref64-reserve=128G,io-reserve=0").count(),
        2,
        "{q}"
    );
    let x = stdout(&plan_stdin(reserve, &["--format", "libvirt"]));
    assert_eq!(x.matches("name='pref64-reserve'").count(), 2, "{x}");
    let plan_file = tmp("reserve.yaml", &plan);
    let cap = |size: &str| {
        let o = devaddr(
            &[
                "capacity", &plan_file, "--kind", "vfio-pci", "--bar64", size, "--format", "json",
            ],
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        (
            v[0]["live"].as_u64().unwrap(),
            v[0]["next_boot"].as_u64().unwrap(),
        )
    };
    // 2 x 128G reserved + a virtio port: 512G holds one 128G more (phys_bits 40).
    assert_eq!(cap("128G"), (2, 1));
    assert_eq!(cap("256G").0, 0);
    let add = tmp("add.yaml", "- {id: g0, kind: vfio-pci, bar64: 128G}\n- {id: g1, kind: vfio-pci, bar64: 64G}\n- {id: g2, kind: vfio-pci, bar64: 1G}\n");
    let o = devaddr(&["hotplug", &plan_file, "--add", &add], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`g2`") && stderr(&o).contains("hotplug_reserve_bar64"),
        "{}",
        stderr(&o)
    );
    // A libvirt domain: --bar64 does not apply.
    let x = stdout(&plan_stdin(
        "machine: q35\ndevices: []\n",
        &["--format", "libvirt"],
    ));
    let dom = tmp("d.xml", &x);
    let o = devaddr(&["capacity", &dom, "--bar64", "1G"], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// `capacity --bar64` at next boot redoes OVMF's padding at the aperture the new devices
/// need: 255 GiB of BARs and three empty hotplug ports fill a 256 GiB aperture; two
/// 128 GiB BARs more would fit 512 GiB at its 1 GiB padding but not at 512 GiB's 2 GiB,
/// so the count is 1, and planning the spec with one more plans while two more exit 1.
#[test]
fn capacity_bar64_next_boot_redoes_the_padding_at_the_larger_aperture() {
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/firmware-specs/q35-uefi-bar64-pow2-edge.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let spec = spec.to_str().unwrap();
    let o = devaddr(
        &[
            "capacity", spec, "--kind", "vfio-pci", "--bar64", "128G", "--format", "json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["next_boot"], 1, "{v}");
    let with = |n: usize| {
        let mut t = text.clone();
        for i in 0..n {
            t += &format!("  - {{id: more{i}, kind: vfio-pci, bar64: 128G}}\n");
        }
        devaddr(&["plan", "-"], Some(&t))
    };
    let one = with(1);
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    assert!(stdout(&one).contains("aperture: 512G"), "{}", stdout(&one));
    let two = with(2);
    assert_eq!(two.status.code(), Some(1), "{}", stderr(&two));
    assert!(stderr(&two).contains("aperture of 1T"), "{}", stderr(&two));
}

/// Hot-added devices without a `bar64` keep off the ports kept for big BARs while other
/// empty ports exist, and take as few of them as they must: `capacity --bar64` still
/// counts the ports they left.
#[test]
fn ordinary_hotplug_keeps_off_big_bar_ports() {
    let spec = "machine: q35\npolicy: {hotplug_reserve: 3, \
                hotplug_reserve_bar64: {ports: 2, size: 64G}}\ndevices:\n\
                - {id: n0, kind: virtio-net}\n";
    let plan = stdout(&plan_stdin(spec, &[]));
    let plan_file = tmp("spared.yaml", &plan);
    let hot = |nics: usize| -> (serde_json::Value, u64) {
        let add: String = (0..nics)
            .map(|i| format!("- {{id: h{i}, kind: virtio-net}}\n"))
            .collect();
        let add = tmp("nics.yaml", &add);
        let o = devaddr(&["hotplug", &plan_file, "--add", &add], None);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let after = tmp("after.yaml", &stdout(&o));
        assert_eq!(devaddr(&["check", &after], None).status.code(), Some(0));
        let o = devaddr(
            &[
                "capacity", &after, "--kind", "vfio-pci", "--bar64", "64G", "--format", "json",
            ],
            None,
        );
        let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let json = devaddr(&["plan", &after, "--format", "json"], None);
        (
            serde_json::from_str(&stdout(&json)).unwrap(),
            rows[0]["live"].as_u64().unwrap(),
        )
    };
    // The bus index of each port kept for big BARs.
    let reserved = |p: &serde_json::Value| -> Vec<u64> {
        p["controllers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c.get("pref64_reserve").is_some())
            .map(|c| c["index"].as_u64().unwrap())
            .collect()
    };
    let on_reserved = |p: &serde_json::Value| -> usize {
        let ports = reserved(p);
        p["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| ports.contains(&d["address"]["bus"].as_u64().unwrap_or(u64::MAX)))
            .count()
    };
    // One NIC: the plain empty port; both big-BAR ports stay.
    let (p, live) = hot(1);
    assert_eq!((on_reserved(&p), live), (0, 2), "{p}");
    // Two NICs: one plain port, then one big-BAR port; the other stays.
    let (p, live) = hot(2);
    assert_eq!((on_reserved(&p), live), (1, 1), "{p}");
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

/// The JSON report of a run with `--error-format json` (stderr parsed).
fn json_errors(args: &[&str], stdin: Option<&str>) -> (Option<i32>, Vec<serde_json::Value>) {
    let mut all = args.to_vec();
    all.extend(["--error-format", "json"]);
    let o = devaddr(&all, stdin);
    let v: serde_json::Value = serde_json::from_slice(&o.stderr)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(&o)));
    (o.status.code(), v["errors"].as_array().unwrap().clone())
}

#[test]
fn near_matches_are_suggested_only_when_close() {
    // (arguments, stdin, a suggestion that must appear, or None for none at all)
    let q35 = "machine: q35\ndevices: []\n";
    let cases: &[(&[&str], Option<&str>, Option<&str>)] = &[
        (
            &["plan", "-"],
            Some("machine: q53\ndevices: []\n"),
            Some("did you mean q35?"),
        ),
        (
            &["capacity", "-", "--kind", "virtio-nett"],
            Some(q35),
            Some("did you mean virtio-net"),
        ),
        (&["models", "q53"], None, Some("did you mean q35?")),
        (&["models", "virtio-nett"], None, Some("did you mean virtio-net")),
        (
            &["plan", "-"],
            Some("machine: q35\npolicy: {preset: hotplugready}\ndevices: []\n"),
            Some("did you mean hotplug-ready?"),
        ),
        (
            &["plan", "-"],
            Some("machine: q35\ncontrollers:\n- {id: p, model: pcie-root-prt, index: 1}\ndevices: []\n"),
            Some("did you mean pcie-root-port"),
        ),
        (
            &["plan", "-"],
            Some("machine: q35\ndevices:\n- {id: a, kind: virtio-net, hotplgu: true}\n"),
            Some("did you mean hotplug?"),
        ),
        (&["models", "xyz"], None, None),
        (
            &["plan", "-"],
            Some("machine: xyz\ndevices: []\n"),
            None,
        ),
        (
            &["capacity", "-", "--kind", "foo"],
            Some(q35),
            None,
        ),
        (
            &["plan", "-"],
            Some("machine: q35\ndevices:\n- {id: a, kind: abc}\n"),
            None,
        ),
    ];
    for (args, stdin, want) in cases {
        let o = devaddr(args, *stdin);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        match want {
            Some(w) => assert!(e.contains(w), "{args:?}: expected `{w}` in: {e}"),
            None => assert!(!e.contains("did you mean"), "{args:?}: suggests: {e}"),
        }
    }
    // `models xyz` never suggests q35 (the old cut-off did).
    assert!(!stderr(&devaddr(&["models", "xyz"], None)).contains("q35"));
}

#[test]
fn every_independent_error_of_a_spec_is_reported_at_once() {
    // Semantic errors: two unknown kinds and a duplicate id.
    let spec = "machine: q35\ndevices:\n  - {id: a, kind: virtio-nett}\n  - {id: b, kind: xyz}\n  - {id: a, kind: e1000}\n";
    let o = plan_stdin(spec, &[]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(
        e.lines().filter(|l| l.starts_with("error: ")).count(),
        3,
        "{e}"
    );
    for want in [
        "line 3 column 19: devices[0].kind",
        "line 4 column 19: devices[1].kind",
        "line 5 column 10: devices[2].id",
    ] {
        assert!(e.contains(want), "`{want}` not in: {e}");
    }
    let (code, errors) = json_errors(&["plan", "-"], Some(spec));
    assert_eq!(code, Some(2));
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e["location"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["devices[0].kind", "devices[1].kind", "devices[2].id"]
    );
    let codes: Vec<&str> = errors.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["unknown-name", "unknown-name", "duplicate"]);
    assert_eq!(errors[0]["location"]["file"], "<stdin>");
    assert_eq!(errors[0]["location"]["line"], 3);

    // Errors of the document itself (bad fields) in several devices, in document order.
    let spec = "machine: q35\ndevices:\n  - {id: a}\n  - {id: b, kind: virtio-net, colour: red}\n  - {id: c, kind: e1000, numa_node: x}\n  - {id: d, kind: e1000}\n";
    let (code, errors) = json_errors(&["plan", "-"], Some(spec));
    assert_eq!(code, Some(2));
    let got: Vec<(&str, &str, u64)> = errors
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap(),
                e["location"]["path"].as_str().unwrap(),
                e["location"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("missing-field", "devices[0]", 3),
            ("unknown-field", "devices[1].colour", 4),
            ("wrong-type", "devices[2].numa_node", 5),
        ]
    );
    // Out-of-range numbers of several devices.
    let spec = "machine: q35\ndevices:\n  - {id: a, kind: virtio-net, numa_node: 300}\n  - {id: b, kind: virtio-net, numa_node: 200}\n";
    let (_, errors) = json_errors(&["plan", "-"], Some(spec));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e["code"] == "out-of-range"));
}

#[test]
fn messages_are_in_the_users_words() {
    let cases = [
        (
            "machine: q35\ndevices:\n  - {id: a, kind: virtio-net, address: 5}\n",
            "devices[0].address: expected an address: \"0000:03:00.0\" or \"03:00.0\"",
        ),
        (
            "machine: q35\ndevices:\n  - {id: a, kind: virtio-net, numa_node: -1}\n",
            "devices[0].numa_node: expected a whole number (0 or more), found the number -1",
        ),
        (
            "machine: q35\ndevices:\n  - {id: a, kind: virtio-net, address: {type: pcx, bus: 1, slot: 1}}\n",
            "unknown value `pcx`; expected one of pci, usb, drive",
        ),
        (
            "machine: q35\ndevices:\n  - {id: a, kind: virtio-net, address: {bus: 1, slot: 1}}\n",
            "missing `type:` (pci, usb or drive)",
        ),
        (
            "machine: q35\ndevices:\n  - 5\n",
            "expected a device: a mapping like {id: net0, kind: virtio-net}, found the number 5",
        ),
        ("5\n", "expected a spec: a mapping with `machine:` and `devices:`"),
        ("machine: q35\n", "missing `devices:`"),
        ("machine: q35\ndevices: 5\n", "expected a list, found the number 5"),
        (
            "machine: q35\ndevices:\n  - {id: a kind: virtio-net\n",
            "not valid YAML or JSON",
        ),
    ];
    for (spec, want) in cases {
        let o = plan_stdin(spec, &[]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{spec}: {e}");
        assert!(e.contains(want), "{spec}: expected `{want}` in: {e}");
        for jargon in [
            "internally tagged",
            "u32",
            "struct ",
            "untagged enum",
            "unknown variant",
            "missing field",
            "invalid type",
        ] {
            assert!(
                !e.contains(jargon),
                "{spec}: serde jargon `{jargon}` in: {e}"
            );
        }
    }
}

#[test]
fn a_spec_where_a_plan_is_expected_says_so() {
    let spec = tmp(
        "not-a-plan.yaml",
        "machine: q35\ndevices: [{id: n, kind: virtio-net}]\n",
    );
    let add = tmp("not-a-plan.add.yaml", "- {id: t, kind: virtio-blk}\n");
    for args in [
        vec!["hotplug", spec.as_str(), "--add", add.as_str()],
        vec!["plan", spec.as_str(), "--previous", spec.as_str()],
    ] {
        let o = devaddr(&args, None);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(
            e.contains("this is a spec, not a plan: plan it first with `devaddr plan`"),
            "{args:?}: {e}"
        );
        assert!(!e.contains("missing"), "{args:?}: {e}");
        let (_, errors) = json_errors(&args, None);
        assert_eq!(errors[0]["code"], "not-a-plan");
        assert_eq!(errors[0]["location"]["file"], spec.as_str());
    }
}

#[test]
fn json_errors_carry_kind_code_location_and_the_explanation() {
    // Infeasible: the explanation's fields.
    let mut spec = String::from("machine: q35\ndevices:\n");
    for i in 0..16 {
        spec.push_str(&format!("  - {{id: n{i}, kind: e1000e}}\n"));
    }
    let (code, errors) = json_errors(&["plan", "-"], Some(&spec));
    assert_eq!(code, Some(1));
    let e = &errors[0];
    assert_eq!(e["kind"], "infeasible");
    assert_eq!(e["code"], "io-windows");
    assert_eq!(e["binding"], "io-windows");
    assert!(e["fix"].as_str().is_some_and(|f| !f.is_empty()), "{e}");
    // `firmware: any` (the default) plans within OVMF's 9 windows, the tighter budget.
    assert_eq!(e["available"], 9, "{e}");
    assert!(e["fix"].as_str().unwrap().contains("firmware: bios"), "{e}");
    assert_eq!(e["message"], e["requirement"]);
    let bios = spec.replace("devices:", "policy: {firmware: bios}\ndevices:");
    let (code, errors) = json_errors(&["plan", "-"], Some(&bios));
    assert_eq!(code, Some(1));
    assert_eq!(errors[0]["available"], 13, "{}", errors[0]);
    assert!(errors[0]["message"].as_str().unwrap().contains("SeaBIOS"));

    // Check: the findings with rule and subject.
    let plan = "machine: q35\ndevices:\n- {id: a, kind: virtio-net, address: {type: pci, bus: 0, slot: 3, function: 0}}\n- {id: b, kind: virtio-net, address: {type: pci, bus: 0, slot: 3, function: 0}}\n";
    let (code, errors) = json_errors(&["check", "-"], Some(plan));
    assert_eq!(code, Some(1));
    assert_eq!(errors[0]["kind"], "check");
    assert_eq!(errors[0]["code"], "check-failed");
    assert_eq!(errors[0]["location"]["file"], "<stdin>");
    let findings = errors[0]["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["rule"] == "unique-address"
        && f["subject"]["id"] == "b"
        && f["message"].as_str().is_some()));

    // Usage: clap's errors too, exit 2, with the argument.
    let (code, errors) = json_errors(&["frobnicate"], None);
    assert_eq!(code, Some(2));
    assert_eq!(errors[0]["kind"], "usage");
    assert_eq!(errors[0]["code"], "unknown-command");
    let (code, errors) = json_errors(&["plan", "x.yaml", "--format", "nope"], None);
    assert_eq!(code, Some(2));
    assert_eq!(errors[0]["code"], "invalid-value");
    assert_eq!(errors[0]["location"]["path"], "--format");
    // `--error-format=json` before the command works for usage errors as well.
    let o = devaddr(&["--error-format=json", "plan"], None);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(v["errors"][0]["code"], "missing-argument");

    // A libvirt domain: the element and its line.
    let xml = "<domain type='kvm'>\n<name>t</name>\n<os><type arch='x86_64' machine='q35'>hvm</type></os>\n<devices>\n<controller type='pci' index='2147483647' model='pcie-root-port'/>\n</devices>\n</domain>\n";
    let (code, errors) = json_errors(&["plan", "-"], Some(xml));
    assert_eq!(code, Some(2));
    assert_eq!(errors[0]["kind"], "input");
    assert_eq!(errors[0]["location"]["line"], 5);
    assert!(
        errors[0]["location"]["element"]
            .as_str()
            .is_some_and(|e| e.starts_with("<controller")),
        "{:?}",
        errors[0]
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

#[test]
fn one_error_prefix_and_one_name_for_stdin() {
    let spec = "machine: q35\ndevices:\n  - {id: a, kind: xyz}\n";
    let plan = stdout(&plan_stdin("machine: q35\ndevices: []\n", &[]));
    let plan_file = tmp("prefix.plan.yaml", &plan);
    let runs = [
        devaddr(&["plan", "-"], Some(spec)),
        devaddr(&["capacity", "-"], Some(spec)),
        devaddr(&["check", "-"], Some("machine: q35\ndevices: 5\n")),
        devaddr(&["hotplug", "-", "--add", &plan_file], Some(spec)),
        devaddr(
            &["hotplug", &plan_file, "--add", "-"],
            Some("- {id: t, kind: xyz}\n"),
        ),
        devaddr(&["models", "xyz"], None),
        devaddr(&["frobnicate"], None),
    ];
    for o in &runs {
        let e = stderr(o);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(e.starts_with("error: "), "{e}");
        assert!(!e.contains("devaddr: "), "{e}");
        assert!(!e.contains(" -: ") && !e.starts_with("error: -:"), "{e}");
    }
    for o in &runs[..5] {
        assert!(stderr(o).contains("<stdin>"), "{}", stderr(o));
    }
}

/// OVMF's I/O padding of hotplug root ports: where the ports without I/O-BAR devices
/// would pass the UEFI I/O budget with a padded window each, the plan gives the padding
/// up on them (`io_reserve: 0`, QEMU `io-reserve=0`, libvirt's QEMU override), keeps it
/// when planned again, and `check` refuses the plan without it; within the budget, and
/// for SeaBIOS, nothing changes.
#[test]
fn io_padding_is_given_up_where_it_would_not_fit() {
    let spec = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/firmware-specs/q35-uefi-io-padding-numa3.yaml"),
    )
    .unwrap();
    let plan = stdout(&plan_stdin(&spec, &[]));
    assert_eq!(plan.matches("io_reserve: 0").count(), 1, "{plan}");
    assert!(
        plan.contains("- id: pci.10\n  model: pcie-root-port\n"),
        "{plan}"
    );
    let again = stdout(&devaddr(&["plan", &tmp("padding-plan.yaml", &plan)], None));
    assert_eq!(again, plan, "planning the plan again changes nothing");
    let q = stdout(&plan_stdin(&spec, &["--format", "qemu"]));
    assert_eq!(q.matches(",io-reserve=0").count(), 1, "{q}");
    let x = stdout(&plan_stdin(&spec, &["--format", "libvirt"]));
    assert!(
        x.contains(
            "<qemu:device alias='pci.10'>\n      <qemu:frontend>\n        \
             <qemu:property name='io-reserve' type='unsigned' value='0'/>"
        ),
        "{x}"
    );
    // Without it, check names the padded port and the fix.
    let bare = tmp("padding-bare.yaml", &plan.replace("  io_reserve: 0\n", ""));
    let o = devaddr(&["check", &bare], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pci.10") && stderr(&o).contains("io_reserve: 0"),
        "{}",
        stderr(&o)
    );
    // One NIC fewer: 8 windows and the padded one fit the 9; SeaBIOS pads nothing.
    let fewer = spec.replace("  - {id: n2c, kind: e1000e, numa_node: 2}\n", "");
    assert_ne!(fewer, spec);
    assert!(!stdout(&plan_stdin(&fewer, &[])).contains("io_reserve"));
    let bios = spec.replace("firmware: uefi", "firmware: bios");
    assert!(!stdout(&plan_stdin(&bios, &[])).contains("io_reserve"));
}
