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
    (
        status.code(),
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader"),
    )
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
