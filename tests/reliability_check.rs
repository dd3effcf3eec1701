//! `devaddr check` catches corrupted plans, and hotplug / capacity / plan --previous refuse
//! a plan that check rejects (exit 2, naming the findings and the file). Each corruption
//! starts from a real plan made by the CLI and is edited through serde_yaml; the fuzzing
//! cases are read from ../shared/reliability/cases. The proptest at the end plans random
//! specs, checks every plan, and corrupts single fields of them.

mod common;

use devaddr::{
    Address, Catalog, ControllerEntry, DeviceEntry, Error, Finding, PciAddress, Plan, Rule, Spec,
    Subject,
};
use proptest::prelude::*;
use serde_yaml::Value;
use std::process::Output;

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reliability/cases");

fn devaddr(args: &[&str], stdin: Option<&str>) -> Output {
    common::run(args, stdin.map(str::as_bytes))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Each call gets a folder of its own (tests run in parallel and several write a file of
/// the same name), removed with the returned guard.
fn tmp(name: &str, text: &str) -> common::TmpFile {
    common::tmp_file("devaddr-relcheck", name, text)
}

/// A plan made by the CLI from `spec`, which must itself pass check.
fn planned(name: &str, spec: &str) -> Value {
    let o = devaddr(&["plan", "-"], Some(spec));
    assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let file = tmp(&format!("{name}.plan.yaml"), &text);
    let c = devaddr(&["check", &file], None);
    assert_eq!(c.status.code(), Some(0), "{name}: {}", stderr(&c));
    serde_yaml::from_str(&text).unwrap()
}

fn example(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/examples/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn write_plan(name: &str, plan: &Value) -> common::TmpFile {
    tmp(name, &serde_yaml::to_string(plan).unwrap())
}

/// `check` of the corrupted plan refuses it and names every needle: exit 1 with a
/// finding, or exit 2 when the number is outside what any plan can hold (the input's
/// bounds refuse it while reading, with its path). Returns the library's findings on the
/// same plan (none when it cannot be read).
fn assert_caught(name: &str, plan: &Value, needles: &[&str]) -> Vec<Finding> {
    let file = write_plan(&format!("{name}.yaml"), plan);
    let o = devaddr(&["check", &file], None);
    let e = stderr(&o);
    assert!(
        matches!(o.status.code(), Some(1) | Some(2)),
        "{name}: check accepted it: {e}"
    );
    for n in needles {
        assert!(e.contains(n), "{name}: `{n}` not in: {e}");
    }
    let text = serde_yaml::to_string(plan).unwrap();
    Spec::parse(&text, name)
        .and_then(|s| devaddr::check(&s))
        .unwrap_or_default()
}

/// Some finding is of rule `rule` about `subject`.
#[track_caller]
fn assert_rule(findings: &[Finding], rule: Rule, subject: Subject) {
    assert!(
        findings
            .iter()
            .any(|f| f.rule == rule && f.subject == subject),
        "no {rule} finding about {subject:?} in {findings:#?}"
    );
}

/// Some finding is of rule `rule`.
#[track_caller]
fn assert_rule_kind(findings: &[Finding], rule: Rule) {
    assert!(
        findings.iter().any(|f| f.rule == rule),
        "no {rule} finding in {findings:#?}"
    );
}

fn entry<'a>(plan: &'a mut Value, list: &str, id: &str) -> &'a mut Value {
    plan[list]
        .as_sequence_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["id"].as_str() == Some(id))
        .unwrap_or_else(|| panic!("no {list} entry {id}"))
}

fn of_model<'a>(plan: &'a mut Value, model: &str) -> Vec<&'a mut Value> {
    plan["controllers"]
        .as_sequence_mut()
        .unwrap()
        .iter_mut()
        .filter(|c| c["model"].as_str() == Some(model))
        .collect()
}

fn pci(bus: u64, slot: u64, function: u64) -> Value {
    serde_yaml::from_str(&format!(
        "{{type: pci, domain: 0, bus: {bus}, slot: {slot}, function: {function}}}"
    ))
    .unwrap()
}

fn limit(machine: &str) -> u32 {
    Catalog::embedded()
        .machine(machine)
        .unwrap()
        .limits
        .bus_numbers
}

/// Two q35 NUMA nodes with NICs and a conventional e1000 (so a pcie-to-pci-bridge exists).
const Q35_MIXED: &str = "machine: q35\npolicy: {numa_nodes: 2}\ndevices:\n  - {id: net0, kind: virtio-net, numa_node: 0}\n  - {id: net1, kind: virtio-net, numa_node: 1}\n  - {id: nvme0, kind: nvme}\n  - {id: vf0, kind: vfio-pci}\n  - {id: e0, kind: e1000}\n  - {id: e1, kind: e1000}\n  - {id: tablet, kind: usb-tablet}\n  - {id: sda, kind: sata-disk}\n";
/// pc with two NUMA expanders, a pci-bridge below each for hotplug.
const PC_NUMA: &str = "machine: pc\npolicy: {numa_nodes: 2, hotplug_reserve_per_node: 1}\ndevices:\n  - {id: net0, kind: virtio-net, numa_node: 0, hotplug: true}\n  - {id: net1, kind: virtio-net, numa_node: 1}\n  - {id: disk0, kind: virtio-blk}\n  - {id: e0, kind: e1000}\n";

#[test]
fn two_pcie_ports_with_the_same_chassis_port_pair_are_caught() {
    let mut p = planned("q35-basic", &example("q35-basic"));
    let mut ports = of_model(&mut p, "pcie-root-port");
    let (chassis, port) = (ports[0]["chassis"].clone(), ports[0]["port"].clone());
    ports[1]["chassis"] = chassis.clone();
    ports[1]["port"] = port;
    let second = ports[1]["id"].as_str().unwrap().to_string();
    let f = assert_caught(
        "dup-chassis-port",
        &p,
        &["chassis", "same chassis/slot pair"],
    );
    assert_rule(&f, Rule::ChassisPort, Subject::controller(second));
    // The same chassis with another port is still slot 0 of that chassis for QEMU.
    let mut p = planned("q35-basic", &example("q35-basic"));
    let mut ports = of_model(&mut p, "pcie-root-port");
    ports[2]["chassis"] = chassis;
    assert_caught("dup-chassis", &p, &["same chassis/slot pair"]);
}

#[test]
fn pci_bridges_with_the_same_chassis_nr_are_caught() {
    let mut p = planned("pc-numa", PC_NUMA);
    let mut bridges = of_model(&mut p, "pci-bridge");
    assert!(bridges.len() >= 2);
    let nr = bridges[0]["chassis_nr"].clone();
    bridges[1]["chassis_nr"] = nr;
    let f = assert_caught(
        "dup-chassis-nr",
        &p,
        &["chassis_nr", "unique chassis number"],
    );
    assert_rule_kind(&f, Rule::ChassisPort);
}

#[test]
fn a_chassis_attribute_the_model_does_not_have_is_caught() {
    let mut p = planned("pc-numa", PC_NUMA);
    of_model(&mut p, "pci-bridge")[0]["chassis"] = Value::from(7);
    assert_caught("bridge-chassis", &p, &["has no `chassis` attribute"]);
}

#[test]
fn a_controller_index_past_the_bus_number_limit_is_caught() {
    let mut p = planned("q35-basic", &example("q35-basic"));
    let last = of_model(&mut p, "pcie-root-port").pop().unwrap();
    let old = last["index"].as_u64().unwrap();
    let new = u64::from(limit("q35"));
    last["index"] = Value::from(new);
    // Everything on that port follows it, so only the index itself is wrong.
    for list in ["controllers", "devices"] {
        for e in p[list].as_sequence_mut().unwrap() {
            if e["address"]["type"].as_str() == Some("pci")
                && e["address"]["bus"].as_u64() == Some(old)
            {
                e["address"]["bus"] = Value::from(new);
            }
        }
    }
    // Refused while reading (exit 2): no plan holds that index.
    assert_caught("index-256", &p, &[&format!("index {new} is out of range")]);
}

#[test]
fn a_device_on_a_builtin_controllers_address_is_caught() {
    let mut p = planned("pc", &example("pc"));
    let ide = Catalog::embedded()
        .machine("pc")
        .unwrap()
        .builtin_controllers[0]
        .clone();
    assert_eq!(ide.id, "ide0");
    entry(&mut p, "devices", "net0")["address"] =
        pci(0, u64::from(ide.slot.get()), u64::from(ide.function.get()));
    let f = assert_caught("on-ide0", &p, &["`net0`", "builtin controller `ide0`"]);
    assert_rule(&f, Rule::UniqueAddress, Subject::device("net0"));
}

#[test]
fn a_moved_or_invented_builtin_is_caught() {
    let mut p = planned("q35-basic", &example("q35-basic"));
    entry(&mut p, "controllers", "sata0")["address"] = pci(0, 0x1e, 0);
    let f = assert_caught(
        "moved-sata0",
        &p,
        &["builtin controller `sata0`", "cannot move"],
    );
    assert_rule(&f, Rule::Builtin, Subject::controller("sata0"));
    let mut p = planned("q35-basic", &example("q35-basic"));
    entry(&mut p, "controllers", "usb0")["builtin"] = Value::from(true);
    let f = assert_caught("builtin-usb0", &p, &["`usb0`", "marked builtin"]);
    assert_rule(&f, Rule::Builtin, Subject::controller("usb0"));
}

#[test]
fn pcie_only_kinds_behind_a_conventional_bridge_are_caught() {
    for id in ["nvme0", "vf0"] {
        let mut p = planned("q35-mixed", Q35_MIXED);
        let bridge = of_model(&mut p, "pcie-to-pci-bridge")[0]["index"]
            .as_u64()
            .unwrap();
        // A free slot on the bridge (the e1000s take the first ones).
        entry(&mut p, "devices", id)["address"] = pci(bridge, 0x10, 0);
        let f = assert_caught(
            &format!("{id}-behind-bridge"),
            &p,
            &[&format!("`{id}`"), "PCIe-only", "conventional PCI"],
        );
        assert_rule(&f, Rule::BusType, Subject::device(id));
    }
}

#[test]
fn expander_bus_numbers_out_of_range_or_overlapping_are_caught() {
    let mut p = planned("pc-numa", PC_NUMA);
    of_model(&mut p, "pci-expander-bus")[0]["bus_nr"] = Value::from(u64::from(u32::MAX));
    assert_caught("bus-nr-max", &p, &["bus_nr 4294967295", "out of range"]);
    let mut p = planned("pc-numa", PC_NUMA);
    of_model(&mut p, "pci-expander-bus")[0]["bus_nr"] = Value::from(limit("pc") - 1);
    let f = assert_caught("bus-nr-top", &p, &["the firmware would not enumerate it"]);
    assert_rule_kind(&f, Rule::ExpanderRange);
    let mut p = planned("pc-numa", PC_NUMA);
    of_model(&mut p, "pci-expander-bus")[0]["bus_nr"] = Value::from(0);
    assert_caught("bus-nr-0", &p, &["bus_nr 0"]);
    // bus_nr 1 on pc with a bridge in the root hierarchy: buses 0 and 1 are the root's.
    let mut p = planned("pc-numa", PC_NUMA);
    let mut pxbs = of_model(&mut p, "pci-expander-bus");
    let pxb = pxbs[1]["index"].as_u64().unwrap();
    pxbs[1]["bus_nr"] = Value::from(1);
    for c in of_model(&mut p, "pci-bridge") {
        if c["address"]["bus"].as_u64() == Some(pxb) {
            c["address"] = pci(0, 0x1a, 0);
        }
    }
    let f = assert_caught("bus-nr-1", &p, &["root bus hierarchy needs 2 bus numbers"]);
    assert_rule(&f, Rule::ExpanderRange, Subject::controller("pci.0"));
    // Two expanders whose ranges overlap.
    let mut p = planned("pc-numa", PC_NUMA);
    let mut pxbs = of_model(&mut p, "pci-expander-bus");
    let nr = pxbs[0]["bus_nr"].as_u64().unwrap();
    pxbs[1]["bus_nr"] = Value::from(nr + 1);
    assert_caught("bus-nr-overlap", &p, &["before the next expander"]);
}

#[test]
fn usb_port_counts_and_ports_past_the_controller_are_caught() {
    let mut p = planned("q35-basic", &example("q35-basic"));
    entry(&mut p, "controllers", "usb0")["ports"] = Value::from(100);
    let f = assert_caught("usb-ports", &p, &["`usb0`", "100 USB ports"]);
    assert_rule(&f, Rule::UsbPorts, Subject::controller("usb0"));
    let mut p = planned("q35-basic", &example("q35-basic"));
    entry(&mut p, "devices", "tablet")["address"]["port"] = Value::from("50");
    assert_caught("usb-port-50", &p, &["USB port `50`"]);
    let mut p = planned("q35-basic", &example("q35-basic"));
    entry(&mut p, "devices", "tablet")["address"]["port"] = Value::from("5");
    let f = assert_caught("usb-port", &p, &["`tablet`", "USB port 5 outside"]);
    assert_rule(&f, Rule::UsbAddress, Subject::device("tablet"));
}

#[test]
fn dangling_parents_duplicate_indexes_and_drive_units_are_caught() {
    let mut p = planned("q35-mixed", Q35_MIXED);
    let rp = of_model(&mut p, "pcie-root-port")[0]["index"].clone();
    of_model(&mut p, "pcie-root-port")[1]["index"] = rp;
    let f = assert_caught("dup-index", &p, &["is taken"]);
    assert_rule_kind(&f, Rule::ControllerIndex);
    let mut p = planned("q35-mixed", Q35_MIXED);
    entry(&mut p, "devices", "sda")["address"]["unit"] = Value::from(6);
    let f = assert_caught("drive-unit", &p, &["`sda`", "drive address outside"]);
    assert_rule(&f, Rule::DriveAddress, Subject::device("sda"));
    let mut p = planned("q35-mixed", Q35_MIXED);
    of_model(&mut p, "pcie-to-pci-bridge")[0]["address"]["bus"] = Value::from(200);
    let f = assert_caught("dangling-parent", &p, &["bus 200 has no PCI controller"]);
    assert_rule_kind(&f, Rule::MissingBus);
    let mut p = planned("q35-mixed", Q35_MIXED);
    entry(&mut p, "devices", "net1")["numa_node"] = Value::from(0);
    let f = assert_caught("numa", &p, &["`net1`", "NUMA node 0"]);
    assert_rule(&f, Rule::NumaNode, Subject::device("net1"));
}

#[test]
fn a_finding_serializes_to_json_with_its_rule_and_subject() {
    let mut p = planned("q35-basic", &example("q35-basic"));
    entry(&mut p, "devices", "tablet")["address"]["port"] = Value::from("5");
    let f = assert_caught("usb-port-json", &p, &["USB port 5 outside"]);
    let f = f.iter().find(|f| f.rule == Rule::UsbAddress).unwrap();
    let json = serde_json::to_value(f).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "rule": "usb-address",
            "subject": {"type": "device", "id": "tablet"},
            "message": f.to_string(),
        })
    );
    assert!(f.message.starts_with("device `tablet`: USB port 5 outside"));
    // A finding about the guest as a whole, and one about a slot.
    let plan = Spec::parse(
        "machine: q35\npolicy: {hotplug_reserve: 40}\ndevices:\n\
         - {id: a, kind: virtio-net, address: {type: pci, bus: 0, slot: 3, function: 1}}\n",
        "p.yaml",
    )
    .unwrap();
    let found = devaddr::check(&plan).unwrap();
    let json = serde_json::to_value(&found).unwrap();
    let reserve = found
        .iter()
        .position(|f| f.rule == Rule::HotplugReserve)
        .unwrap();
    assert_eq!(json[reserve]["rule"], "hotplug-reserve");
    assert_eq!(
        json[reserve]["subject"],
        serde_json::json!({"type": "plan"})
    );
    let slot = found
        .iter()
        .position(|f| f.rule == Rule::FunctionZero)
        .unwrap();
    assert_eq!(
        json[slot]["subject"],
        serde_json::json!({"type": "slot", "bus": 0, "slot": 3})
    );
}

// ---- hotplug, capacity and plan --previous refuse what check rejects ----

fn assert_refused(o: &Output, file: &str, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "accepted: {e}");
    assert!(e.contains(file), "no file name in: {e}");
    assert!(e.contains("fails `devaddr check`"), "{e}");
    for n in needles {
        assert!(e.contains(n), "`{n}` not in: {e}");
    }
}

#[test]
fn hotplug_and_capacity_refuse_the_dangling_plan() {
    let plan = format!("{CASES}/hotplug-dangling.yaml");
    let add = format!("{CASES}/add.yaml");
    let check = devaddr(&["check", &plan], None);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let why = "bus 250 has no PCI controller";
    assert!(stderr(&check).contains(why));
    let o = devaddr(&["hotplug", &plan, "--add", &add], None);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("pci.250"));
    assert_refused(&o, &plan, &[why]);
    for format in ["libvirt", "qemu", "json"] {
        let o = devaddr(&["hotplug", &plan, "--add", &add, "--format", format], None);
        assert_refused(&o, &plan, &[why]);
    }
    assert_refused(&devaddr(&["capacity", &plan], None), &plan, &[why]);
    assert_refused(
        &devaddr(&["capacity", &plan, "--live", "--kind", "virtio-net"], None),
        &plan,
        &[why],
    );
    // The same plan as --previous of a replan.
    let spec = tmp("dangling-spec.yaml", &example("q35-basic"));
    let o = devaddr(&["plan", &spec, "--previous", &plan], None);
    assert_refused(&o, &plan, &[why]);
    let o = devaddr(&["plan", &spec, "--previous", &plan, "--allow-moves"], None);
    assert_refused(&o, &plan, &[why]);
}

#[test]
fn hotplug_capacity_and_replan_refuse_a_plan_with_duplicate_chassis() {
    let mut p = planned("q35-basic", &example("q35-basic"));
    let good = write_plan("good.yaml", &p);
    let add = tmp("add.yaml", "- {id: hp0, kind: virtio-net}\n");
    // The uncorrupted plan is answered.
    assert_eq!(
        devaddr(&["hotplug", &good, "--add", &add], None)
            .status
            .code(),
        Some(0)
    );
    assert_eq!(devaddr(&["capacity", &good], None).status.code(), Some(0));
    let mut ports = of_model(&mut p, "pcie-root-port");
    let chassis = ports[0]["chassis"].clone();
    ports[3]["chassis"] = chassis;
    let bad = write_plan("bad-chassis.yaml", &p);
    let why = "same chassis/slot pair";
    assert_refused(
        &devaddr(&["hotplug", &bad, "--add", &add], None),
        &bad,
        &[why],
    );
    assert_refused(&devaddr(&["capacity", &bad], None), &bad, &[why]);
    let spec = tmp("chassis-spec.yaml", &example("q35-basic"));
    assert_refused(
        &devaddr(&["plan", &spec, "--previous", &bad], None),
        &bad,
        &[why],
    );
    // Errors about the devices to add still name that file.
    let dup = tmp("add-dup.yaml", "- {id: net0, kind: virtio-net}\n");
    let o = devaddr(&["hotplug", &good, "--add", &dup], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&*dup), "{}", stderr(&o));
}

#[test]
fn the_library_refuses_with_an_input_error_listing_the_findings() {
    let text = std::fs::read_to_string(format!("{CASES}/hotplug-dangling.yaml")).unwrap();
    let plan = Plan::parse(&text, "hotplug-dangling.yaml").unwrap();
    let add = vec![DeviceEntry {
        id: "hp".into(),
        kind: "virtio-net".into(),
        ..Default::default()
    }];
    for e in [
        devaddr::hotplug(&plan, &add).unwrap_err(),
        devaddr::capacity(&plan.to_spec(), &Default::default()).unwrap_err(),
        devaddr::replan(&plan.to_spec(), &plan).unwrap_err(),
    ] {
        match &e {
            Error::Input { message, .. } => {
                assert!(message.contains("bus 250 has no PCI controller"), "{e}")
            }
            other => panic!("expected an input error, got {other}"),
        }
        assert_eq!(e.exit_code(), 2);
    }
}

// ---- property: planned plans pass check; single-field corruptions are caught ----

const PCI_KINDS: &[&str] = &[
    "virtio-net",
    "virtio-blk",
    "virtio-rng",
    "e1000",
    "nvme",
    "vfio-pci",
    "qemu-xhci",
    "virtio-scsi",
];
const OTHER_KINDS: &[&str] = &["sata-disk", "scsi-disk", "usb-tablet", "usb-kbd"];

fn spec_of(machine: &str, nodes: u32, reserve: u32, raw: &[(usize, u32, bool)]) -> Spec {
    let text = format!(
        "machine: {machine}\npolicy: {{numa_nodes: {nodes}, hotplug_reserve: {reserve}}}\ndevices: []\n"
    );
    let mut spec = Spec::parse(&text, "gen").unwrap();
    let mut e1000 = 0;
    for (i, &(k, node, hp)) in raw.iter().enumerate() {
        let all = PCI_KINDS.len() + OTHER_KINDS.len();
        let mut kind = if k % all < PCI_KINDS.len() {
            PCI_KINDS[k % all]
        } else {
            OTHER_KINDS[k % all - PCI_KINDS.len()]
        };
        if kind == "e1000" {
            e1000 += 1;
            if e1000 > 4 {
                kind = "virtio-net";
            }
        }
        let pci = PCI_KINDS.contains(&kind);
        spec.devices.push(DeviceEntry {
            id: format!("d{i}"),
            kind: kind.into(),
            numa_node: (pci && nodes > 0 && node < nodes).then_some(node),
            hotplug: (hp && kind != "sata-disk").then_some(true),
            ..Default::default()
        });
    }
    spec
}

fn pci_of(a: &Option<Address>) -> Option<PciAddress> {
    match a {
        Some(Address::Pci(p)) => Some(*p),
        _ => None,
    }
}

/// The mutations: each returns false when the plan has nothing it applies to. `must` tells
/// whether the result is certainly invalid (check must catch it); otherwise it may still be
/// valid, and then the planner must accept it unchanged.
fn mutate(plan: &mut Plan, which: usize, pick: usize, value: u32) -> Option<bool> {
    let cat = Catalog::embedded();
    let machine = cat.machine(&plan.machine).unwrap().clone();
    let pci_ctl = |c: &ControllerEntry| cat.pci.get(&c.model).is_some_and(|m| m.connect.is_some());
    let nth = |n: usize| if n == 0 { None } else { Some(pick % n) };
    match which {
        // Duplicate chassis of two PCIe ports.
        0 => {
            let ports: Vec<usize> = (0..plan.controllers.len())
                .filter(|&i| plan.controllers[i].chassis.is_some())
                .collect();
            if ports.len() < 2 {
                return None;
            }
            let a = ports[pick % ports.len()];
            let b = ports[(pick / 7 + 1 + pick % ports.len()) % ports.len()];
            if a == b {
                return None;
            }
            plan.controllers[b].chassis = plan.controllers[a].chassis;
            Some(true)
        }
        // A PCI controller index at or past the bus-number limit (children follow it).
        1 => {
            let ctls: Vec<usize> = (0..plan.controllers.len())
                .filter(|&i| pci_ctl(&plan.controllers[i]))
                .collect();
            let i = ctls[nth(ctls.len())?];
            let old = plan.controllers[i].index;
            let new = machine.limits.bus_numbers + value % 1000;
            plan.controllers[i].index = new;
            let follow = |a: &mut Option<Address>| {
                if let Some(Address::Pci(p)) = a {
                    if p.bus == old {
                        p.bus = new;
                    }
                }
            };
            plan.controllers
                .iter_mut()
                .for_each(|c| follow(&mut c.address));
            plan.devices.iter_mut().for_each(|d| follow(&mut d.address));
            Some(true)
        }
        // A PCI device onto a builtin address (chipset function or builtin controller).
        2 => {
            let devs: Vec<usize> = (0..plan.devices.len())
                .filter(|&i| pci_of(&plan.devices[i].address).is_some())
                .collect();
            let i = devs[nth(devs.len())?];
            let mut spots: Vec<(u8, u8)> = machine
                .builtin_controllers
                .iter()
                .map(|b| (b.slot.get(), b.function.get()))
                .collect();
            spots.extend(
                machine
                    .builtin
                    .iter()
                    .flat_map(|b| b.functions.iter().map(move |&f| (b.slot.get(), f.get()))),
            );
            let (slot, function) = spots[value as usize % spots.len()];
            plan.devices[i].address = Some(Address::Pci(PciAddress::new(0, slot, function)));
            Some(true)
        }
        // A PCIe-only kind onto a conventional bus (PCIe machines).
        3 => {
            if !machine.pcie {
                return None;
            }
            let conv: Vec<u32> = plan
                .controllers
                .iter()
                .filter(|c| cat.pci.get(&c.model).is_some_and(|m| !m.bus.express))
                .map(|c| c.index)
                .collect();
            let bus = conv[nth(conv.len())?];
            let devs: Vec<usize> = (0..plan.devices.len())
                .filter(|&i| pci_of(&plan.devices[i].address).is_some())
                .collect();
            let i = devs[nth(devs.len())?];
            plan.devices[i].kind = if value.is_multiple_of(2) {
                "nvme"
            } else {
                "vfio-pci"
            }
            .into();
            plan.devices[i].group = None;
            plan.devices[i].address = Some(Address::Pci(PciAddress::new(bus, 0x1f, 0)));
            Some(true)
        }
        // An expander bus_nr of 0, past the limit, or inside another expander's range.
        4 => {
            let pxb: Vec<usize> = (0..plan.controllers.len())
                .filter(|&i| plan.controllers[i].bus_nr.is_some())
                .collect();
            let i = pxb[nth(pxb.len())?];
            let other = pxb
                .iter()
                .find(|&&j| j != i)
                .map(|&j| plan.controllers[j].bus_nr);
            plan.controllers[i].bus_nr = Some(match (value % 3, other) {
                (0, _) => 0,
                (1, Some(Some(nr))) => nr,
                _ => machine.limits.bus_numbers + value % 1000,
            });
            Some(true)
        }
        // A builtin controller moved to another root-bus slot.
        5 => {
            let b: Vec<usize> = (0..plan.controllers.len())
                .filter(|&i| plan.controllers[i].builtin == Some(true))
                .collect();
            let i = b[nth(b.len())?];
            let Some(Address::Pci(a)) = &mut plan.controllers[i].address else {
                return None;
            };
            a.slot = (a.slot + 1 + (value % 30) as u8) % 32;
            Some(true)
        }
        // A controller's parent bus that does not exist.
        6 => {
            let ctls: Vec<usize> = (0..plan.controllers.len())
                .filter(|&i| pci_ctl(&plan.controllers[i]))
                .collect();
            let i = ctls[nth(ctls.len())?];
            let taken: Vec<u32> = plan.controllers.iter().map(|c| c.index).collect();
            let bus = (1..machine.limits.bus_numbers).find(|b| !taken.contains(b))?;
            let Some(Address::Pci(a)) = &mut plan.controllers[i].address else {
                return None;
            };
            a.bus = bus;
            Some(true)
        }
        // Two PCI controllers with one index.
        7 => {
            let ctls: Vec<usize> = (0..plan.controllers.len())
                .filter(|&i| pci_ctl(&plan.controllers[i]))
                .collect();
            if ctls.len() < 2 {
                return None;
            }
            let a = ctls[pick % ctls.len()];
            let b = ctls[(pick + 1) % ctls.len()];
            plan.controllers[b].index = plan.controllers[a].index;
            Some(true)
        }
        // A USB device on a port past its controller's, or a drive unit past its bus.
        8 => {
            let i = (0..plan.devices.len())
                .filter(|&i| {
                    matches!(
                        plan.devices[i].address,
                        Some(Address::Usb(_) | Address::Drive(_))
                    )
                })
                .nth(pick % plan.devices.len().max(1))?;
            match &mut plan.devices[i].address {
                Some(Address::Usb(u)) => u.port = (16 + value % 100).to_string(),
                Some(Address::Drive(d)) => d.unit = 16384 + value % 100,
                _ => return None,
            }
            Some(true)
        }
        // A device's NUMA node changed to another existing node.
        9 => {
            let nodes = plan.policy.numa_nodes.unwrap_or(0);
            if nodes < 2 {
                return None;
            }
            let devs: Vec<usize> = (0..plan.devices.len())
                .filter(|&i| plan.devices[i].numa_node.is_some())
                .collect();
            let i = devs[nth(devs.len())?];
            let n = plan.devices[i].numa_node.unwrap();
            plan.devices[i].numa_node = Some((n + 1 + value % (nodes - 1)) % nodes);
            Some(true)
        }
        // A PCI device moved to a random address on an existing bus: may or may not be valid.
        _ => {
            let devs: Vec<usize> = (0..plan.devices.len())
                .filter(|&i| pci_of(&plan.devices[i].address).is_some())
                .collect();
            let i = devs[nth(devs.len())?];
            let buses: Vec<u32> = plan.controllers.iter().map(|c| c.index).collect();
            let bus = buses[value as usize % buses.len()];
            let slot = ((value / 7) % 32) as u8;
            let function = ((value / 251) % 8) as u8;
            plan.devices[i].group = None;
            plan.devices[i].address = Some(Address::Pci(PciAddress::new(bus, slot, function)));
            Some(false)
        }
    }
}

/// The rules mutation `which` (of those that must be caught) breaks.
fn expected_rules(which: usize) -> &'static [Rule] {
    match which {
        0 => &[Rule::ChassisPort],
        1 | 7 => &[Rule::ControllerIndex],
        2 => &[Rule::UniqueAddress],
        3 => &[Rule::BusType],
        4 => &[Rule::ExpanderRange],
        5 => &[Rule::Builtin],
        6 => &[Rule::MissingBus],
        8 => &[Rule::UsbAddress, Rule::DriveAddress],
        9 => &[Rule::NumaNode],
        _ => &[],
    }
}

fn machine_strategy() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("q35"), Just("pc"), Just("virt")]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn planned_plans_pass_check_and_single_corruptions_are_caught(
        machine in machine_strategy(),
        nodes in 0u32..=2,
        reserve in 0u32..=2,
        raw in prop::collection::vec((0usize..64, 0u32..3, any::<bool>()), 0..14),
        which in 0usize..11,
        pick in 0usize..1000,
        value in 0u32..100_000,
    ) {
        let spec = spec_of(machine, nodes, reserve, &raw);
        let plan = match devaddr::plan(&spec) {
            Ok(p) => p,
            Err(Error::Infeasible { .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("{e} for {spec:?}"))),
        };
        let findings = devaddr::check(&plan.to_spec()).unwrap();
        prop_assert!(findings.is_empty(), "{findings:?}");
        let mut bad = plan.clone();
        let Some(must) = mutate(&mut bad, which, pick, value) else { return Ok(()) };
        if bad == plan {
            return Ok(());
        }
        // Through YAML text, as a user's file would be.
        let text = bad.to_yaml();
        // A number outside any plan's range is refused while reading: caught.
        let Ok(spec) = Spec::parse(&text, "corrupted") else { return Ok(()) };
        let Ok(findings) = devaddr::check(&spec) else { return Ok(()) };
        if must {
            prop_assert!(!findings.is_empty(), "mutation {which} not caught:\n{text}");
            // Caught by the rule the corruption breaks (matched on the rule, not the text).
            let rules: Vec<Rule> = findings.iter().map(|f| f.rule).collect();
            prop_assert!(
                expected_rules(which).iter().any(|r| rules.contains(r)),
                "mutation {which} caught as {rules:?}, not {:?}:\n{text}",
                expected_rules(which)
            );
        } else if findings.is_empty() {
            // check calls it valid: the planner must take it as it is.
            let again = devaddr::plan(&spec);
            prop_assert!(again.is_ok(), "check accepts what the planner refuses: {:?}\n{text}", again.err());
            let again = again.unwrap();
            for d in &bad.devices {
                let now = again.devices.iter().find(|x| x.id == d.id).map(|x| pci_of(&x.address).map(|a| a.key()));
                prop_assert_eq!(now, Some(pci_of(&d.address).map(|a| a.key())), "{} moved", &d.id);
            }
            prop_assert_eq!(again.controllers.len(), bad.controllers.len());
        }
    }
}

#[test]
fn specs_asking_for_a_pcie_only_kind_on_conventional_pci_are_bad_input() {
    // The planner refuses them as input (exit 2) instead of making a plan its verifier
    // then rejects (exit 1, "plan fails verification").
    let o = devaddr(
        &["plan", "-"],
        Some("machine: q35\ndevices:\n  - {id: e0, kind: e1000}\n  - {id: n, kind: nvme, bus: pci}\n"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("devices[1].bus"), "{}", stderr(&o));
    let mut p = planned("q35-mixed", Q35_MIXED);
    let bridge = of_model(&mut p, "pcie-to-pci-bridge")[0]["index"]
        .as_u64()
        .unwrap();
    entry(&mut p, "devices", "vf0")["address"] = pci(bridge, 0x10, 0);
    let o = devaddr(&["plan", "-"], Some(&serde_yaml::to_string(&p).unwrap()));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("PCIe-only"), "{}", stderr(&o));
    // On pc every device is conventional PCI: nvme is fine there.
    let o = devaddr(
        &["plan", "-"],
        Some("machine: pc\ndevices:\n  - {id: n, kind: nvme}\n"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
