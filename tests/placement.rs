//! Placement constraints (`placement: root`, `apart`, `together`): planned on q35, pc and
//! virt, with NUMA nodes, kept across replans and hotplug, checked by the verifier,
//! explained when infeasible, contradictions refused with exit 1 and bad sets with exit 2.
//! The bus-tree checks here are written against the plan, not through the library.

mod common;
#[path = "common/placement.rs"]
mod placement;

use devaddr::{Address, Binding, Error, PciAddress, Plan, Rule, Spec};

fn spec(yaml: &str) -> Spec {
    Spec::parse(yaml, "test.yaml").unwrap()
}

fn plan(yaml: &str) -> Plan {
    devaddr::plan(&spec(yaml)).unwrap_or_else(|e| panic!("{e}"))
}

fn addr(p: &Plan, id: &str) -> PciAddress {
    match &p.devices.iter().find(|d| d.id == id).unwrap().address {
        Some(Address::Pci(a)) => *a,
        other => panic!("{id}: {other:?}"),
    }
}

/// The controller plugged into a root bus above a device (None: on a root bus).
fn link(p: &Plan, id: &str) -> Option<u32> {
    placement::Tree::of(p).link(placement::bus_of(p, id))
}

/// The model of the deepest bus with many slots (switch, bridge, expander) above every
/// device, and its index.
fn common_fan_out(p: &Plan, ids: &[&str]) -> Option<(u32, String)> {
    let tree = placement::Tree::of(p);
    let paths: Vec<Vec<u32>> = ids
        .iter()
        .map(|id| tree.up(placement::bus_of(p, id)))
        .collect();
    paths[0]
        .iter()
        .find(|&&b| tree.multi_slot(b) && paths.iter().all(|q| q.contains(&b)))
        .map(|&b| (b, tree.model(b).to_string()))
}

fn infeasible(yaml: &str) -> devaddr::Explanation {
    match devaddr::plan(&spec(yaml)) {
        Err(Error::Infeasible { explanation }) => *explanation,
        other => panic!("expected infeasible, got {other:?}"),
    }
}

const GUEST: &str = "machine: q35
devices:
  - {id: net0, kind: virtio-net}
  - {id: net1, kind: virtio-net}
  - {id: net2, kind: virtio-net}
  - {id: gpu0, kind: vfio-pci}
  - {id: gpu1, kind: vfio-pci}
  - {id: disk0, kind: virtio-blk, placement: root}
  - {id: f0, kind: virtio-net, group: g}
  - {id: f1, kind: virtio-blk, group: g}
apart: [[net0, net1, net2]]
together: [[gpu0, gpu1], [f0, gpu1]]
";

#[test]
fn q35_root_apart_together_and_a_group() {
    let p = plan(GUEST);
    assert_eq!(addr(&p, "disk0").bus, 0, "placement: root");
    let links: Vec<Option<u32>> = ["net0", "net1", "net2"]
        .iter()
        .map(|id| link(&p, id))
        .collect();
    assert!(links.iter().all(Option::is_some));
    let mut distinct = links.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "apart: {links:?}");
    // The group joins the together set through f0: one switch above all four.
    let (_, model) = common_fan_out(&p, &["gpu0", "gpu1", "f0", "f1"]).expect("together");
    assert_eq!(model, "pcie-switch-upstream-port");
    assert_eq!((addr(&p, "f0").bus, addr(&p, "f0").slot), {
        let a = addr(&p, "f1");
        (a.bus, a.slot)
    });
    // The verifier agrees, the plan plans again to itself and keeps the sets.
    assert!(devaddr::check(&p.to_spec()).unwrap().is_empty());
    assert_eq!(devaddr::plan(&p.to_spec()).unwrap(), p);
    let yaml = p.to_yaml();
    assert!(
        yaml.contains("apart:") && yaml.contains("together:") && yaml.contains("placement: root")
    );
}

#[test]
fn numa_nodes_with_reserves() {
    let p = plan(
        "machine: q35
policy: {preset: numa, numa_nodes: 2, hotplug_reserve_per_node: 1}
devices:
  - {id: a0, kind: virtio-net, numa_node: 1}
  - {id: a1, kind: virtio-net, numa_node: 1}
  - {id: t0, kind: vfio-pci, numa_node: 0}
  - {id: t1, kind: vfio-pci, numa_node: 0}
  - {id: r, kind: virtio-rng, placement: root}
apart: [[a0, a1]]
together: [[t0, t1]]
",
    );
    assert_ne!(link(&p, "a0"), link(&p, "a1"));
    let (_, model) = common_fan_out(&p, &["t0", "t1"]).unwrap();
    assert_eq!(model, "pcie-expander-bus");
    assert_eq!(addr(&p, "r").bus, 0);
    // The verifier checks the per-node reserve too.
    assert!(devaddr::check(&p.to_spec()).unwrap().is_empty());
}

#[test]
fn pc_and_virt() {
    let pc = plan(
        "machine: pc
devices:
  - {id: a, kind: e1000}
  - {id: b, kind: e1000}
  - {id: c, kind: virtio-net}
  - {id: d, kind: virtio-net}
  - {id: r, kind: virtio-blk, placement: root}
apart: [[a, b]]
together: [[c, d]]
",
    );
    assert_eq!((link(&pc, "a"), link(&pc, "b")), (None, None));
    assert_eq!(common_fan_out(&pc, &["c", "d"]).unwrap().1, "pci-bridge");
    assert_eq!(addr(&pc, "r").bus, 0);
    let virt = plan(
        "machine: virt
devices:
  - {id: a, kind: virtio-net}
  - {id: b, kind: virtio-net}
  - {id: c, kind: virtio-blk}
  - {id: d, kind: virtio-blk}
  - {id: r, kind: virtio-rng, placement: root}
apart: [[a, b]]
together: [[c, d]]
",
    );
    assert_ne!(link(&virt, "a"), link(&virt, "b"));
    assert_eq!(
        common_fan_out(&virt, &["c", "d"]).unwrap().1,
        "pcie-switch-upstream-port"
    );
    assert_eq!(addr(&virt, "r").bus, 0);
}

#[test]
fn apart_devices_no_root_port_takes_get_bridges_of_their_own() {
    // Conventional PCI on q35: each behind a pcie-to-pci-bridge below a root port.
    let q35 = plan(
        "machine: q35
devices:
  - {id: e0, kind: e1000}
  - {id: e1, kind: e1000}
  - {id: e2, kind: e1000}
  - {id: e3, kind: e1000}
apart: [[e0, e1, e2]]
",
    );
    let links: Vec<Option<u32>> = ["e0", "e1", "e2"].iter().map(|id| link(&q35, id)).collect();
    let mut distinct = links.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{links:?}");
    assert!(links.iter().all(Option::is_some));
    // Hotplug devices of a pc NUMA node: each on a pci-bridge of its own below the pxb.
    let pc = plan(
        "machine: pc
policy: {numa_nodes: 1}
devices:
  - {id: a, kind: virtio-net, numa_node: 0, hotplug: true}
  - {id: b, kind: virtio-net, numa_node: 0, hotplug: true}
  - {id: c, kind: e1000, numa_node: 0}
apart: [[a, b, c]]
",
    );
    assert_ne!(link(&pc, "a"), link(&pc, "b"));
    for p in [&q35, &pc] {
        assert!(devaddr::check(&p.to_spec()).unwrap().is_empty());
        assert_eq!(&devaddr::plan(&p.to_spec()).unwrap(), p);
    }
}

#[test]
fn replan_keeps_everything_and_places_the_new_member_apart() {
    let first = plan(GUEST);
    let mut edited = first.to_spec();
    edited.devaddr = None;
    edited.devices.push(devaddr::DeviceEntry {
        id: "net3".into(),
        kind: "virtio-net".into(),
        ..Default::default()
    });
    edited.devices.push(devaddr::DeviceEntry {
        id: "gpu2".into(),
        kind: "vfio-pci".into(),
        ..Default::default()
    });
    edited.apart[0].push("net3".into());
    edited.together[0].push("gpu2".into());
    let next = devaddr::replan(&edited, &first).unwrap();
    for d in &first.devices {
        assert_eq!(addr(&next, &d.id), addr(&first, &d.id), "{} moved", d.id);
    }
    let links: Vec<Option<u32>> = ["net0", "net1", "net2", "net3"]
        .iter()
        .map(|id| link(&next, id))
        .collect();
    assert!(!links[..3].contains(&links[3]), "net3 apart: {links:?}");
    assert_eq!(
        common_fan_out(&next, &["gpu0", "gpu2"]),
        common_fan_out(&first, &["gpu0", "gpu1"])
    );
    assert_eq!(devaddr::plan(&next.to_spec()).unwrap(), next);
}

#[test]
fn hotplug_keeps_the_sets_and_root_placement_on_pc() {
    let running = plan(
        "machine: pc
devices:
  - {id: a, kind: virtio-net}
  - {id: b, kind: virtio-net}
apart: [[a, b]]
",
    );
    let add = vec![devaddr::DeviceEntry {
        id: "r".into(),
        kind: "virtio-blk".into(),
        placement: Some(devaddr::Placement::Root),
        ..Default::default()
    }];
    let h = devaddr::hotplug(&running, &add).unwrap();
    assert_eq!(addr(&h.plan, "r").bus, 0);
    assert_eq!(h.plan.apart, running.apart);
    // q35's root bus takes no hot-added device: the refusal names placement and hotplug.
    let q35 =
        plan("machine: q35\npolicy: {hotplug_reserve: 1}\ndevices: [{id: a, kind: virtio-net}]\n");
    let e = devaddr::hotplug(&q35, &add).unwrap_err();
    assert_eq!(e.exit_code(), 1, "{e}");
    assert!(e.to_string().contains("placement: root"), "{e}");
}

#[test]
fn hot_added_devices_join_sets_or_the_refusal_names_the_set() {
    let running = plan(
        "machine: q35
policy: {hotplug_reserve: 3}
devices:
  - {id: net0, kind: virtio-net}
  - {id: net1, kind: virtio-net}
apart: [[net0, net1]]
",
    );
    let running_file = common::tmp_file("placement-hp", "plan.yaml", running.to_yaml());
    // `devaddr hotplug PLAN --add` of these additions.
    let hot_add = |additions: &str| {
        let add = common::tmp_file("placement-hp", "add.yaml", additions);
        common::run(
            &["hotplug", running_file.as_str(), "--add", add.as_str()],
            None,
        )
    };
    let out = hot_add("devices: [{id: net2, kind: virtio-net}]\napart: [[net0, net1, net2]]\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = Plan::parse(&String::from_utf8_lossy(&out.stdout), "h.yaml").unwrap();
    let links: Vec<Option<u32>> = ["net0", "net1", "net2"]
        .iter()
        .map(|id| link(&h, id))
        .collect();
    assert!(!links[..2].contains(&links[2]), "{links:?}");
    assert_eq!(h.controllers, running.controllers, "nothing added live");
    // net0 sits on a root port of its own: nothing new can share a switch with it live.
    let out = hot_add("devices: [{id: net2, kind: virtio-net}]\ntogether: [[net0, net2]]\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("together") && err.contains("`net2`"), "{err}");
}

#[test]
fn the_verifier_finds_each_broken_constraint() {
    let p = plan(GUEST);
    let mut bad = p.to_spec();
    let moved = |bad: &mut Spec, id: &str, to: PciAddress| {
        bad.devices.iter_mut().find(|d| d.id == id).unwrap().address = Some(Address::Pci(to));
    };
    // disk0 and net0 swapped: disk0 off the root bus.
    let (d0, n0) = (addr(&p, "disk0"), addr(&p, "net0"));
    moved(&mut bad, "disk0", n0);
    moved(&mut bad, "net0", d0);
    let rules: Vec<Rule> = devaddr::check(&bad)
        .unwrap()
        .iter()
        .map(|f| f.rule)
        .collect();
    assert!(rules.contains(&Rule::RootPlacement), "{rules:?}");
    // gpu1 and net1 swapped: gpu1 on a root port of its own, off the GPUs' switch.
    let mut bad = p.to_spec();
    let g1 = addr(&p, "gpu1");
    let n1 = addr(&p, "net1");
    moved(&mut bad, "gpu1", n1);
    moved(&mut bad, "net1", g1);
    let found = devaddr::check(&bad).unwrap();
    let rules: Vec<Rule> = found.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&Rule::Together), "{found:?}");
    // net1 and net2 both onto the switch (swapped with the GPUs): apart broken.
    let mut bad = p.to_spec();
    let g0 = addr(&p, "gpu0");
    moved(&mut bad, "gpu0", n1);
    moved(&mut bad, "net1", g0);
    let mut bad2 = bad.clone();
    moved(&mut bad2, "gpu1", addr(&p, "net2"));
    moved(&mut bad2, "net2", g1);
    let found = devaddr::check(&bad2).unwrap();
    assert!(found.iter().any(|f| f.rule == Rule::Apart), "{found:?}");
}

#[test]
fn infeasible_placements_name_the_constraint_and_devices() {
    let mut yaml = String::from("machine: q35\ndevices:\n");
    for i in 0..32 {
        yaml.push_str(&format!(
            "  - {{id: r{i}, kind: virtio-net, placement: root}}\n"
        ));
    }
    let e = infeasible(&yaml);
    assert_eq!(e.binding, Binding::RootPlacement);
    assert_eq!(e.devices.len(), 32);
    let mut yaml = String::from("machine: q35\ndevices:\n");
    let mut ids = Vec::new();
    for i in 0..33 {
        yaml.push_str(&format!("  - {{id: n{i}, kind: virtio-net}}\n"));
        ids.push(format!("n{i}"));
    }
    yaml.push_str(&format!("together: [[{}]]\n", ids.join(", ")));
    let e = infeasible(&yaml);
    assert_eq!(e.binding, Binding::Together, "{e}");
    assert!(e.devices.contains(&"n32".to_string()));
}

/// (spec, words the message must contain): each a contradiction, exit 1 naming both.
const CONTRADICTIONS: &[(&str, &[&str])] = &[
    (
        "machine: q35\ndevices:\n- {id: a, kind: virtio-net}\n- {id: b, kind: virtio-net}\napart: [[a, b]]\ntogether: [[b, a]]\n",
        &["apart[0]", "together[0]", "`a`", "`b`"],
    ),
    (
        "machine: q35\ndevices:\n- {id: a, kind: virtio-net}\n- {id: b, kind: virtio-net}\n- {id: c, kind: virtio-net}\napart: [[a, c]]\ntogether: [[a, b], [b, c]]\n",
        &["apart[0]", "together[0]", "together[1]"],
    ),
    (
        "machine: q35\npolicy: {numa_nodes: 2}\ndevices:\n- {id: a, kind: virtio-net, numa_node: 1, placement: root}\n",
        &["placement: root", "numa_node: 1"],
    ),
    (
        "machine: q35\ndevices:\n- {id: a, kind: virtio-net, placement: root}\n- {id: b, kind: virtio-net}\ntogether: [[a, b]]\n",
        &["placement: root", "together[0]"],
    ),
    (
        "machine: q35\ndevices:\n- {id: a, kind: virtio-net, group: g}\n- {id: b, kind: virtio-blk, group: g}\napart: [[a, b]]\n",
        &["apart[0]", "group"],
    ),
    (
        "machine: q35\npolicy: {numa_nodes: 2}\ndevices:\n- {id: a, kind: virtio-net, numa_node: 0}\n- {id: b, kind: virtio-net, numa_node: 1}\ntogether: [[a, b]]\n",
        &["together[0]", "numa_node"],
    ),
];

#[test]
fn contradictions_exit_1_naming_both() {
    for (yaml, words) in CONTRADICTIONS {
        let f = common::tmp_file("placement", "c.yaml", yaml);
        let out = common::run(&["plan", f.as_str()], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{yaml}\n{err}");
        for w in *words {
            assert!(err.contains(w), "{w} missing in: {err}");
        }
        let e = infeasible(yaml);
        assert_eq!(e.binding, Binding::Contradiction);
    }
}

#[test]
fn bad_sets_exit_2_with_their_path() {
    let cases: &[(&str, &str)] = &[
        (
            "machine: q35\ndevices:\n- {id: a, kind: virtio-net}\napart: [[a, x]]\n",
            "apart[0][1]: `x` is not the id of a device",
        ),
        (
            "machine: q35\ndevices:\n- {id: a, kind: virtio-net}\ntogether: [[a]]\n",
            "together[0]: a set of 1 device; expected at least two device ids",
        ),
        (
            "machine: q35\ndevices:\n- {id: a, kind: virtio-net}\n- {id: t, kind: usb-tablet}\napart: [[a, t]]\n",
            "apart[0][1]: `t` is a USB device",
        ),
        (
            "machine: q35\ndevices:\n- {id: a, kind: virtio-net}\napart: [[a, a]]\n",
            "apart[0][1]: `a` is listed twice",
        ),
        (
            "machine: q35\ndevices:\n- {id: a, kind: virtio-net, placement: top}\n",
            "devices[0].placement",
        ),
    ];
    for (yaml, msg) in cases {
        let f = common::tmp_file("placement", "bad.yaml", yaml);
        let out = common::run(&["plan", f.as_str()], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{yaml}\n{err}");
        assert!(err.contains(msg), "expected `{msg}` in: {err}");
    }
}
