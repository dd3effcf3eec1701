//! libvirt domains the fuzz harness (`tests/fuzz.rs`) found devaddr mishandling, each
//! run through the CLI from `tests/fuzz-regressions/`: the exit code, where stderr says
//! the problem is, and that the run returns at all (a watchdog kills a run that hangs;
//! there is no timing assertion beyond it).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const REGRESSIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-regressions");

/// A run still going after this long is a hang (the fixed inputs take milliseconds).
const WATCHDOG: Duration = Duration::from_secs(120);

fn regression(name: &str) -> String {
    format!("{REGRESSIONS}/{name}")
}

/// Run devaddr with `args`; panic if it does not return before the watchdog.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_devaddr"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run devaddr");
    // Read the pipes while waiting, so a large output cannot block the child.
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("devaddr {args:?} did not return within {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (code, out, err) = (
        status.code(),
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader"),
    );
    // Every refused domain is refused the same way with --error-format json.
    if common::wants_json_twin(args, code) {
        common::json_twin(args, None, code, &err);
    }
    (code, out, err)
}

/// `plan` and `check` of `file` are both refused as bad input (exit 2), naming each of
/// `wants` (the element, its line, libvirt's words), without a panic.
fn refused(file: &str, wants: &[&str]) {
    for cmd in ["plan", "check"] {
        let (code, _, err) = run(&[cmd, file]);
        assert_eq!(code, Some(2), "devaddr {cmd} {file}: stderr: {err}");
        for w in wants {
            assert!(
                err.contains(w),
                "devaddr {cmd} {file}: stderr lacks {w:?}: {err}"
            );
        }
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A SATA disk's drive address naming controller 2147483647 made libvirt's implicit
/// controllers (every SATA controller up to that index) take quadratic time. The index
/// is now bounded (`limits::MAX_DRIVE_CONTROLLER`) and the disk named. The fuzz
/// campaign's mutation of `pcie-root-port-too-many` (241 root ports and such a disk)
/// reduces to this same file.
#[test]
fn a_drive_address_controller_index_is_bounded() {
    refused(
        &regression("hang-xml-sata-drive-controller-2147483647.xml"),
        &[
            "line 6",
            "<disk> with target dev='sda'",
            "controller='2147483647' is out of range; expected 0-8191",
        ],
    );
}

/// The same bound where the controller index comes from the target name (`sdzzzzz`
/// is SCSI disk 12,356,630, controller 1,765,232) and from a SCSI host device.
#[test]
fn drive_controllers_from_target_names_and_scsi_hostdevs_are_bounded() {
    refused(
        &regression("hang-xml-scsi-disk-target-name-sdzzzzz.xml"),
        &[
            "line 6",
            "<disk> with target dev='sdzzzzz'",
            "controller='1765232' (derived from target dev='sdzzzzz') is out of range",
        ],
    );
    refused(
        &regression("hang-xml-scsi-hostdev-drive-controller-100000.xml"),
        &["line 6", "<hostdev>", "controller='100000' is out of range"],
    );
}

/// Up to the bound the implicit controllers are still added, as libvirt adds them:
/// SATA controller index 631 on q35 is the last one libvirt 9.0 can place (632 runs out
/// of PCI slots, with libvirt's message), and 8191, the bound itself, is refused by that
/// same PCI error, not by the bound.
#[test]
fn implicit_sata_controllers_up_to_the_bound_follow_libvirt() {
    let text = std::fs::read_to_string(regression("hang-xml-sata-drive-controller-2147483647.xml"))
        .expect("read");
    let dir = common::scratch("devaddr-rel-libvirt");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let with = |n: u32| {
        let path = dir.join(format!("sata-{n}.xml"));
        std::fs::write(&path, text.replace("2147483647", &n.to_string())).expect("write");
        path.to_string_lossy().into_owned()
    };
    let ok = with(631);
    let (code, out, err) = run(&["plan", &ok]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.matches("<controller type='sata'").count(), 632);
    let planned = dir.join("sata-631.planned.xml");
    std::fs::write(&planned, &out).expect("write");
    let (code, _, err) = run(&["check", &planned.to_string_lossy()]);
    assert_eq!(code, Some(0), "check of the planned domain: {err}");
    for n in [632, 8191] {
        let (code, _, err) = run(&["plan", &with(n)]);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("a PCI slot is needed to connect a PCI controller model='pci-bridge'"),
            "{err}"
        );
    }
    let (code, _, err) = run(&["plan", &with(8192)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("controller='8192' is out of range"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// 2000 virtio-serial controllers without an index: giving each the lowest free index
/// scanned every device for every candidate index (cubic in the count). It is linear
/// now; the domain is then refused as libvirt refuses it (no PCIe slot left for the
/// 241st root port).
#[test]
fn many_controllers_without_an_index_are_indexed_in_linear_time() {
    let file = regression("hang-xml-2000-virtio-serial-controllers-without-index.xml");
    for cmd in ["plan", "check"] {
        let (code, _, err) = run(&[cmd, &file]);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("<controller type='pci' index='241' model='pcie-root-port'>"),
            "{err}"
        );
        assert!(err.contains("a PCIe slot is needed"), "{err}");
    }
}

/// A `pcie-root` without an index on a machine whose root is `pci-root` (here: no
/// machine attribute, so libvirt's default `pc`) gets index 0 and is refused with
/// libvirt's message. `plan` used to accept it and `check` of its output refused it.
#[test]
fn a_pcie_root_on_the_default_pc_machine_is_refused_by_plan_and_check() {
    refused(
        &regression("xml-planned-domain-refused-no-machine-attr.xml"),
        &[
            "line 22",
            "<controller type='pci' index='0' model='pcie-root'>",
            "The PCI controller with index='0' must be model='pci-root' for this machine \
             type, but model='pcie-root' was found instead",
        ],
    );
}

/// A second `pcie-root` without an index gets index 1, and libvirt refuses it.
#[test]
fn a_second_pcie_root_is_refused_by_plan_and_check() {
    refused(
        &regression("xml-planned-domain-refused-second-pcie-root.xml"),
        &[
            "line 18",
            "<controller type='pci' index='1' model='pcie-root'>",
            "pci-root and pcie-root controllers should have index 0",
        ],
    );
}

/// Controllers are validated once every one has its index, as libvirt does: a
/// `pcie-root-port` written before the `pcie-root` it plugs into is fine when the root
/// has index 0, and `plan`'s output passes `check`.
#[test]
fn pci_controllers_are_checked_after_their_indexes_are_assigned() {
    let dir = common::scratch("devaddr-rel-libvirt-pci");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let domain = |devices: &str| {
        format!(
            "<domain type='qemu'>\n  <name>t</name>\n  <memory unit='KiB'>1048576</memory>\n  \
             <os><type arch='x86_64' machine='q35'>hvm</type></os>\n  <devices>\n    \
             {devices}\n  </devices>\n</domain>\n"
        )
    };
    let ok = dir.join("ok.xml");
    std::fs::write(
        &ok,
        domain(
            "<controller type='pci' model='pcie-root-port'/><controller type='pci' \
             index='0' model='pcie-root'/>",
        ),
    )
    .expect("write");
    let (code, out, err) = run(&["plan", &ok.to_string_lossy()]);
    assert_eq!(code, Some(0), "{err}");
    let planned = dir.join("ok.planned.xml");
    std::fs::write(&planned, out).expect("write");
    let (code, _, err) = run(&["check", &planned.to_string_lossy()]);
    assert_eq!(code, Some(0), "{err}");
    // Without the root written, the root port takes index 0: libvirt's error.
    let bad = dir.join("bad.xml");
    std::fs::write(
        &bad,
        domain("<controller type='pci' model='pcie-root-port'/>"),
    )
    .expect("write");
    let (code, _, err) = run(&["plan", &bad.to_string_lossy()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("line 6: <controller type='pci' index='0' model='pcie-root-port'>"),
        "{err}"
    );
    assert!(
        err.contains("index='0' must be model='pcie-root' for this machine type"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Plan `file` (exit 0) and `check` the planned domain (exit 0, nothing found); the
/// planned domain.
fn planned_and_clean(file: &str, dir: &std::path::Path) -> String {
    let (code, out, err) = run(&["plan", file]);
    assert_eq!(code, Some(0), "devaddr plan {file}: {err}");
    let name = std::path::Path::new(file).file_name().expect("file name");
    let planned = dir.join(name);
    std::fs::write(&planned, &out).expect("write");
    let (code, _, err) = run(&["check", &planned.to_string_lossy()]);
    assert_eq!(code, Some(0), "check of the planned {file}: {err}");
    out
}

/// A `pci-bridge` written with an address on q35's pcie-root: libvirt 9.0 defines it
/// there (a bridge whose address is given may take any slot a PCI or PCIe endpoint
/// may) and QEMU starts the guest. `plan` reproduces libvirt (the bridge stays at
/// 00:02.0, the e1000 goes behind it) and `check` of the result used to refuse the
/// bridge ("cannot plug into pcie-root").
#[test]
fn a_pci_bridge_given_an_address_on_pcie_root_is_accepted_as_libvirt_does() {
    let dir = common::scratch("devaddr-rel-libvirt-bridge");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let out = planned_and_clean(
        &regression("xml-pci-bridge-given-address-on-pcie-root.xml"),
        &dir,
    );
    let bridge = out
        .split("<controller type='pci' model='pci-bridge' index='1'>")
        .nth(1)
        .expect("the bridge gets index 1");
    assert!(
        bridge
            .split("</controller>")
            .next()
            .is_some_and(|b| b.contains("bus='0x00' slot='0x02' function='0x0'")),
        "{out}"
    );
    let nic = out.split("<model type='e1000'/>").nth(1).expect("the NIC");
    assert!(
        nic.trim_start()
            .starts_with("<address type='pci' domain='0x0000' bus='0x01' slot='0x01'"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An IDE disk given the PCI address of pc's built-in IDE controller (the first of its
/// two `<address>` elements, the one libvirt reads): libvirt refuses the address type
/// for the bus, and so does devaddr (it used to plan it, and `check` found the disk on
/// the IDE controller's function).
#[test]
fn a_disk_with_an_address_its_bus_cannot_take_is_refused() {
    refused(
        &regression("xml-ide-disk-with-builtin-ide-address.xml"),
        &[
            "line 9",
            "<disk> with target dev='hdc'",
            "Invalid address type 'pci' for the disk 'hdc' with the bus type 'ide'",
        ],
    );
}

/// The disk buses and address types tried on libvirt 9.0 with `virsh define`: what it
/// refuses, with its words, and what it accepts.
#[test]
fn disk_address_types_follow_libvirt() {
    let dir = common::scratch("devaddr-rel-libvirt-disk");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let pci = "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>";
    let drive = "<address type='drive' controller='0' bus='0' target='0' unit='0'/>";
    let usb = "<address type='usb' bus='0' port='1'/>";
    let cases: [(&str, &str, &str, Option<&str>); 9] = [
        (
            "pc",
            "hda' bus='ide",
            pci,
            Some("type 'pci' for the disk 'hda' with the bus type 'ide'"),
        ),
        (
            "pc",
            "hda",
            pci,
            Some("type 'pci' for the disk 'hda' with the bus type 'ide'"),
        ),
        (
            "pc",
            "fda' bus='fdc",
            pci,
            Some("type 'pci' for the disk 'fda' with the bus type 'fdc'"),
        ),
        (
            "q35",
            "sda' bus='sata",
            usb,
            Some("type 'usb' for the disk 'sda' with the bus type 'sata'"),
        ),
        (
            "q35",
            "sda' bus='scsi",
            pci,
            Some("type 'pci' for the disk 'sda' with the bus type 'scsi'"),
        ),
        (
            "q35",
            "sda' bus='usb",
            pci,
            Some("unexpected address type 'pci' for usb disk 'sda'"),
        ),
        (
            "q35",
            "vda' bus='virtio",
            drive,
            Some("virtio disk cannot have an address of type 'drive'"),
        ),
        ("q35", "vda' bus='virtio", pci, None),
        ("q35", "sda' bus='sata", drive, None),
    ];
    for (i, (machine, target, address, refusal)) in cases.into_iter().enumerate() {
        let path = dir.join(format!("disk-{i}.xml"));
        let xml = format!(
            "<domain type='qemu'>\n  <name>d</name>\n  <memory unit='KiB'>262144</memory>\n  \
             <os><type arch='x86_64' machine='{machine}'>hvm</type></os>\n  <devices>\n    \
             <disk type='file' device='disk'><source file='/d.img'/><target dev='{target}'/>\
             {address}</disk>\n  </devices>\n</domain>\n"
        );
        std::fs::write(&path, &xml).expect("write");
        let (code, _, err) = run(&["plan", &path.to_string_lossy()]);
        match refusal {
            Some(words) => {
                assert_eq!(code, Some(2), "{xml}: {err}");
                assert!(err.contains("line 6: <disk> with target dev="), "{err}");
                assert!(err.contains(words), "{xml}: {err}");
            }
            None => assert_eq!(code, Some(0), "{xml}: {err}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An `<interface type='hostdev'>` whose `<source>` a mutation moved out of it: libvirt
/// refuses the interface ("missing source address type": the host device's type is
/// that of `<source><address>`), and so does devaddr. The stray `<source>` itself is
/// no device: `check` used to read its address as one on a bus the guest lacks.
#[test]
fn a_hostdev_interface_without_its_source_is_refused() {
    refused(
        &regression("xml-interface-hostdev-source-outside.xml"),
        &["line 9", "<interface>", "missing source address type"],
    );
    let dir = common::scratch("devaddr-rel-libvirt-hostdev");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("hostdev.xml");
    std::fs::write(
        &path,
        "<domain type='qemu'><name>h</name><os><type arch='x86_64' machine='pc'>hvm</type></os>\n\
         <devices>\n<hostdev mode='subsystem' type='pci'/>\n</devices></domain>\n",
    )
    .expect("write");
    refused(
        &path.to_string_lossy(),
        &[
            "line 3",
            "<hostdev>",
            "Missing <source> element in hostdev device",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An element libvirt does not know under `<devices>` (a `<source>` with a PCI address on
/// a bus the guest lacks) is ignored by libvirt, by `plan` and now by `check` too.
#[test]
fn elements_libvirt_does_not_know_are_not_devices_to_check() {
    let dir = common::scratch("devaddr-rel-libvirt-stray");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let out = planned_and_clean(&regression("xml-stray-source-element-ignored.xml"), &dir);
    assert!(
        out.contains("bus='0x03' slot='0x07'"),
        "the element is kept as written: {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// USB hubs go no deeper than libvirt looks (port paths of four numbers): a pc guest
/// with one piix3-uhci (two ports) takes 120 tablets through hubs — every path at most
/// four numbers, and `check` reads the planned domain — and refuses 200 with libvirt's
/// "No free USB ports" (the fuzz campaign's 2394-mouse domain chained hubs 44 deep).
/// Checked against libvirt 9.0: the same 120 addresses, and the same refusal.
#[test]
fn usb_hubs_stop_at_libvirts_port_depth() {
    let dir = common::scratch("devaddr-rel-libvirt-usb");
    let domain = |n: usize| {
        let path = dir.join(format!("usb-{n}.xml"));
        let inputs = "<input type='tablet' bus='usb'/>\n".repeat(n);
        std::fs::write(
            &path,
            format!(
                "<domain type='qemu'><name>usb</name><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\n<controller type='usb' index='0' model='piix3-uhci'/>\n{inputs}</devices></domain>\n"
            ),
        )
        .expect("write");
        path.to_string_lossy().into_owned()
    };
    let (code, out, err) = run(&["plan", "--new-domain", &domain(120)]);
    assert_eq!(code, Some(0), "{err}");
    let deepest = out
        .split("port='")
        .skip(1)
        .map(|p| p.split('\'').next().unwrap_or("").split('.').count())
        .max();
    assert_eq!(deepest, Some(4), "{out}");
    let planned = dir.join("usb-120.planned.xml");
    std::fs::write(&planned, &out).expect("write");
    let (code, _, err) = run(&["check", &planned.to_string_lossy()]);
    assert_eq!(code, Some(0), "check of the planned domain: {err}");
    let (code, _, err) = run(&["plan", "--new-domain", &domain(200)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("No free USB ports"), "{err}");
}

/// PCI controllers written without indexes, the upstream port before its downstream
/// ports: libvirt 9.0's addressing plugs the `pcie-switch-upstream-port` into one of its
/// own downstream ports and `virsh define` accepts the loop. `plan` writes what libvirt
/// defines (exit 0) with a warning that QEMU cannot build it; planning the output again
/// changes nothing; `check` of the output reports the loop through the verifier's walk up
/// the parent chain (exit 1, a finding, no hang); the plan model, which has no place for
/// a loop, refuses it by name.
#[test]
fn an_upstream_port_below_its_own_downstream_port_is_planned_as_libvirt_defines_it() {
    let dir = common::scratch("devaddr-rel-libvirt-loop");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = regression("xml-upstream-port-below-itself.xml");
    let (code, out, err) = run(&["plan", &file]);
    assert_eq!(code, Some(0), "{err}");
    let warning = format!(
        "warning: {file}: <controller type='pci' index='1' model='pcie-switch-upstream-port'> \
         (line 23): libvirt's addressing plugs PCI controller index 1 into a bus below itself \
         (bus 2 sits on it)"
    );
    assert!(err.contains(&warning), "{err}");
    assert!(err.contains("QEMU cannot build the loop"), "{err}");
    assert_eq!(
        err.matches("warning:").count(),
        1,
        "one loop, one warning: {err}"
    );
    let upstream = out
        .split("<controller type='pci' model='pcie-switch-upstream-port' index='1'>")
        .nth(1)
        .and_then(|c| c.split("</controller>").next())
        .expect("the upstream port keeps index 1");
    assert!(
        upstream.contains("bus='0x02' slot='0x00' function='0x0'"),
        "{out}"
    );
    let planned = dir.join("planned.xml");
    std::fs::write(&planned, &out).expect("write");
    let planned = planned.to_string_lossy();
    let (code, again, err) = run(&["plan", &planned]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(again, out, "planning the planned domain again changes it");
    assert!(err.contains("QEMU cannot build the loop"), "{err}");
    let (code, _, found) = run(&["check", &planned]);
    assert_eq!(code, Some(1), "{found}");
    assert!(
        found.contains(
            "<controller type='pci' index='1' model='pcie-switch-upstream-port'> (line 23): \
             its parent chain does not reach the root bus"
        ),
        "{found}"
    );
    let (code, _, err) = run(&["plan", "--format", "yaml", &file]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("QEMU cannot build the loop") && err.contains("--format libvirt writes"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A hand-written plan whose switch ports plug into each other, with a device pinned
/// to a NUMA node below the loop and an `apart` set across it: every walk up the bus
/// tree ends. The verifier's walk to the root bus, its walk to a NUMA expander and its
/// walk to a device's upstream link each report what they find (each would go round
/// the loop for ever without its guard); planning it, the walk that resolves the
/// controllers' zones refuses the cycle (exit 2).
#[test]
fn every_walk_up_a_bus_loop_ends() {
    let plan = common::tmp_file(
        "devaddr-rel-loop-plan",
        "loop.plan.yaml",
        "name: loop\nmachine: q35\npolicy:\n  numa_nodes: 2\napart:\n- [net0, net1]\n\
         controllers:\n- {id: pci.0, model: pcie-root, index: 0}\n\
         - {id: pci.1, model: pcie-switch-upstream-port, index: 1, \
            address: {type: pci, domain: 0, bus: 2, slot: 0, function: 0}}\n\
         - {id: pci.2, model: pcie-switch-downstream-port, index: 2, chassis: 2, port: 0, \
            address: {type: pci, domain: 0, bus: 1, slot: 0, function: 0}}\n\
         - {id: pci.3, model: pcie-switch-downstream-port, index: 3, chassis: 3, port: 1, \
            address: {type: pci, domain: 0, bus: 1, slot: 1, function: 0}}\n\
         devices:\n\
         - {id: net0, kind: virtio-net, numa_node: 1, \
            address: {type: pci, domain: 0, bus: 3, slot: 0, function: 0}}\n\
         - {id: net1, kind: virtio-net, \
            address: {type: pci, domain: 0, bus: 3, slot: 0, function: 1}}\n",
    );
    let (code, _, found) = run(&["check", plan.as_str()]);
    assert_eq!(code, Some(1), "{found}");
    for want in [
        "controller `pci.1`: its parent chain does not reach the root bus",
        "device `net0` needs NUMA node 1 but bus 3 is not below its expander",
        "apart[0]: device `net0` and device `net1` share the upstream link",
    ] {
        assert!(found.contains(want), "check lacks {want:?}: {found}");
    }
    let (code, _, err) = run(&["plan", plan.as_str()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("controllers plug into each other in a cycle"),
        "{err}"
    );
}
