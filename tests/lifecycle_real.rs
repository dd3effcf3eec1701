//! Issue 4 on the real stack: plans run in a real libvirt + QEMU (the oracle's
//! `boot`: define, start, `virsh attach-device --live` each device, destroy).
//!
//! * For each spec under `tests/lifecycle/`: the planned domain (`--format libvirt`)
//!   defines and starts; `devaddr capacity --live` predicts how many more devices fit per
//!   NUMA node; `devaddr hotplug` places exactly that many (NICs and disks, on their
//!   nodes) and every one is attached live with its planned address; one more device,
//!   without an address, is refused by libvirt ("No more available PCI slots").
//! * A replan after removing and adding devices keeps every surviving device's address and
//!   every controller, and the replanned domain starts.
//!
//! Without ../shared or a reachable libvirtd the tests print why they skip; with `CI` set
//! a skip is a failure (CI runs ../shared/tools/libvirt-oracle/setup.sh first).

mod common;
use common::devaddr_ok as devaddr;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI must run the real-stack tests, but: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// The oracle script, once libvirtd answers; None after printing why not.
fn oracle() -> Option<PathBuf> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let oracle = shared.join("tools/libvirt-oracle/oracle.py");
    if !oracle.exists() {
        skip("../shared/tools/libvirt-oracle is not beside the repository");
        return None;
    }
    let up = || {
        Command::new("virsh")
            .args(["-c", "qemu:///system", "uri"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !up() && std::env::var_os("CI").is_some() {
        let _ = Command::new("bash")
            .arg(shared.join("tools/libvirt-oracle/setup.sh"))
            .status();
    }
    if !up() {
        skip("libvirtd is not reachable at qemu:///system (run ../shared/tools/libvirt-oracle/setup.sh as root)");
        return None;
    }
    Some(oracle)
}

fn spec(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lifecycle")
        .join(name)
}

fn tmpdir(name: &str) -> common::Scratch {
    common::scratch(&format!("devaddr-lc-{name}"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Disk images the hot-added disks point at (the oracle creates those of the domain);
/// removed again when the returned guard goes out of scope.
fn make_images(xml_dir: &Path) -> Images {
    let mut made = Vec::new();
    for e in std::fs::read_dir(xml_dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        if let Some(i) = text.find("<source file='") {
            let rest = &text[i + 14..];
            let path = PathBuf::from(&rest[..rest.find('\'').unwrap()]);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let f = std::fs::File::create(&path).unwrap();
            f.set_len(1 << 20).unwrap();
            made.push(path);
        }
    }
    Images(made)
}

/// Image files a test made; deleted on drop (also when the test fails).
struct Images(Vec<PathBuf>);

impl Drop for Images {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// oracle.py boot DOMAIN --hotplug DEV...: its JSON report.
fn boot(oracle: &Path, domain: &Path, hotplug: &[PathBuf]) -> Value {
    let mut c = Command::new("python3");
    c.arg(oracle).arg("boot").arg(domain);
    if !hotplug.is_empty() {
        c.arg("--hotplug").args(hotplug);
    }
    let o = c.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.lines().last().unwrap_or("{}")).unwrap_or_else(|e| {
        panic!(
            "oracle boot: {e}: {out} {}",
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn addresses(plan_yaml: &str) -> (Vec<(String, Value)>, Vec<Value>) {
    let v: Value = serde_yaml::from_str(plan_yaml).unwrap();
    let devs = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap().to_string(), d["address"].clone()))
        .collect();
    (devs, v["controllers"].as_array().unwrap().clone())
}

#[test]
fn hotplug_fills_exactly_what_capacity_predicts() {
    let Some(oracle) = oracle() else { return };
    for name in ["q35-reserve", "q35-numa", "pc-basic"] {
        let dir = tmpdir(name);
        let plan = dir.join("plan.yaml");
        let domain = dir.join("domain.xml");
        devaddr(&["plan", s(&spec(&format!("{name}.yaml"))), "-o", s(&plan)]);
        devaddr(&["plan", s(&plan), "--format", "libvirt", "-o", s(&domain)]);
        let rows: Value = serde_json::from_str(&devaddr(&[
            "capacity",
            s(&plan),
            "--kind",
            "virtio-net",
            "--kind",
            "virtio-blk",
            "--live",
            "--format",
            "json",
        ]))
        .unwrap();
        // NICs and disks take the same ports: fill each node's prediction half and half.
        let mut add = String::new();
        let mut predicted = 0;
        for r in rows.as_array().unwrap() {
            if r["kind"] != "virtio-net" {
                continue;
            }
            let n = r["live"].as_u64().unwrap();
            let disk_row = rows
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["kind"] == "virtio-blk" && d["node"] == r["node"])
                .unwrap();
            assert_eq!(
                disk_row["live"], r["live"],
                "{name}: NICs and disks share ports"
            );
            for k in 0..n {
                let kind = if k % 2 == 0 {
                    "virtio-net"
                } else {
                    "virtio-blk"
                };
                let node = match r["node"].as_u64() {
                    Some(x) => format!(", numa_node: {x}"),
                    None => String::new(),
                };
                add.push_str(&format!("- {{id: hp{predicted}, kind: {kind}{node}}}\n"));
                predicted += 1;
            }
        }
        assert!(predicted > 0, "{name}: nothing to hotplug");
        let add_file = dir.join("add.yaml");
        std::fs::write(&add_file, &add).unwrap();
        let xml_dir = dir.join("add");
        devaddr(&[
            "hotplug",
            s(&plan),
            "--add",
            s(&add_file),
            "--format",
            "libvirt",
            "--output-dir",
            s(&xml_dir),
        ]);
        let _images = make_images(&xml_dir);
        // One more than predicted: libvirt picks the address itself and must find none.
        let extra = dir.join("extra.xml");
        std::fs::write(
            &extra,
            "<interface type='user'><model type='virtio'/></interface>\n",
        )
        .unwrap();
        let mut files: Vec<PathBuf> = (0..predicted)
            .map(|i| xml_dir.join(format!("hp{i}.xml")))
            .collect();
        files.push(extra);
        let r = boot(&oracle, &domain, &files);
        println!("{name}: predicted {predicted}, libvirt: {r}");
        assert_eq!(r["started"], true, "{name}: {r}");
        let results = r["hotplug"].as_array().unwrap();
        for h in &results[..predicted] {
            assert_eq!(h["ok"], true, "{name}: planned hotplug refused: {h}");
        }
        assert_eq!(
            results[predicted]["ok"], false,
            "{name}: libvirt accepted one more device than devaddr predicted"
        );
        // A hotplug beyond the prediction is refused by devaddr too, naming what is missing.
        std::fs::write(
            &add_file,
            format!("{add}- {{id: over, kind: virtio-net}}\n"),
        )
        .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_devaddr"))
            .args(["hotplug", s(&plan), "--add", s(&add_file)])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("free hotpluggable") && err.contains("--previous"),
            "{err}"
        );
    }
}

#[test]
fn replan_keeps_surviving_addresses_and_boots() {
    let Some(oracle) = oracle() else { return };
    for (base, edit) in [
        ("q35-reserve.yaml", "q35-replan.yaml"),
        ("q35-numa.yaml", "q35-numa-replan.yaml"),
    ] {
        let dir = tmpdir(edit);
        let first = dir.join("first.yaml");
        let second = dir.join("second.yaml");
        devaddr(&["plan", s(&spec(base)), "-o", s(&first)]);
        devaddr(&[
            "plan",
            s(&spec(edit)),
            "--previous",
            s(&first),
            "-o",
            s(&second),
        ]);
        let (d1, c1) = addresses(&std::fs::read_to_string(&first).unwrap());
        let (d2, c2) = addresses(&std::fs::read_to_string(&second).unwrap());
        let mut survivors = 0;
        for (id, a) in &d1 {
            if let Some((_, b)) = d2.iter().find(|(j, _)| j == id) {
                assert_eq!(a, b, "{edit}: `{id}` moved");
                survivors += 1;
            }
        }
        assert!(
            survivors > 0 && d2.len() > survivors,
            "{edit}: an edit with survivors and new devices"
        );
        // Same controllers at the same addresses (a function 0 may gain multifunction).
        let strip = |c: &Value| {
            let mut c = c.clone();
            if let Some(a) = c.get_mut("address").and_then(Value::as_object_mut) {
                a.remove("multifunction");
            }
            c
        };
        let c2: Vec<Value> = c2.iter().map(strip).collect();
        for c in &c1 {
            assert!(c2.contains(&strip(c)), "{edit}: controller changed: {c}");
        }
        // Planning the replan again changes nothing.
        let again = dir.join("again.yaml");
        devaddr(&[
            "plan",
            s(&spec(edit)),
            "--previous",
            s(&second),
            "-o",
            s(&again),
        ]);
        assert_eq!(
            std::fs::read_to_string(&second).unwrap(),
            std::fs::read_to_string(&again).unwrap()
        );
        for (plan, label) in [(&first, "first"), (&second, "replanned")] {
            let domain = dir.join(format!("{label}.xml"));
            devaddr(&["plan", s(plan), "--format", "libvirt", "-o", s(&domain)]);
            let r = boot(&oracle, &domain, &[]);
            assert_eq!(r["started"], true, "{edit} {label}: {r}");
        }
    }
}

/// USB and SCSI hotplug: a tablet on a free USB port, and two SCSI disks that need a SCSI
/// controller (libvirt attaches SCSI controllers live): `hotplug` lists the controller first,
/// and libvirt accepts all of them at their planned addresses, in that order.
#[test]
fn hotplug_usb_and_scsi_with_its_controller() {
    let Some(oracle) = oracle() else { return };
    let dir = tmpdir("usb-scsi");
    let plan = dir.join("plan.yaml");
    let domain = dir.join("domain.xml");
    devaddr(&["plan", s(&spec("q35-reserve.yaml")), "-o", s(&plan)]);
    devaddr(&["plan", s(&plan), "--format", "libvirt", "-o", s(&domain)]);
    let add = dir.join("add.yaml");
    std::fs::write(
        &add,
        "- {id: t2, kind: usb-tablet}\n- {id: lun0, kind: scsi-disk}\n- {id: lun1, kind: scsi-disk}\n",
    )
    .unwrap();
    let after = devaddr(&["hotplug", s(&plan), "--add", s(&add), "--format", "json"]);
    let after: Value = serde_json::from_str(&after).unwrap();
    let xml_dir = dir.join("add");
    devaddr(&[
        "hotplug",
        s(&plan),
        "--add",
        s(&add),
        "--format",
        "libvirt",
        "--output-dir",
        s(&xml_dir),
    ]);
    let _images = make_images(&xml_dir);
    // The new SCSI controller first, then the devices in the order given.
    let before: Value = serde_yaml::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let old: Vec<&str> = before["controllers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mut order: Vec<String> = after["controllers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .filter(|id| !old.contains(&id.as_str()))
        .collect();
    assert_eq!(order.len(), 1, "one SCSI controller is added: {order:?}");
    order.extend(["t2", "lun0", "lun1"].map(String::from));
    let files: Vec<PathBuf> = order
        .iter()
        .map(|id| xml_dir.join(format!("{id}.xml")))
        .collect();
    let r = boot(&oracle, &domain, &files);
    assert_eq!(r["started"], true, "{r}");
    for h in r["hotplug"].as_array().unwrap() {
        assert_eq!(h["ok"], true, "planned hotplug refused: {h}");
    }
}
