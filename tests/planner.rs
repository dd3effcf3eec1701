//! One test per planner capability: each fails if the capability is missing.

use devaddr::topology::FreeZone;
use devaddr::{Address, ControllerEntry, PciAddress, Plan, Spec};

fn plan(yaml: &str) -> Plan {
    let spec = Spec::parse(yaml, "test").unwrap();
    devaddr::plan(&spec).unwrap_or_else(|e| panic!("{e}"))
}

fn pci(a: &Option<Address>) -> PciAddress {
    match a {
        Some(Address::Pci(p)) => *p,
        other => panic!("not a PCI address: {other:?}"),
    }
}

fn dev(p: &Plan, id: &str) -> PciAddress {
    pci(&p.devices.iter().find(|d| d.id == id).unwrap().address)
}

fn ctl(p: &Plan, index: u32) -> &ControllerEntry {
    p.controllers
        .iter()
        .find(|c| c.index == index && c.model.starts_with("p"))
        .unwrap()
}

fn count(p: &Plan, model: &str) -> usize {
    p.controllers.iter().filter(|c| c.model == model).count()
}

fn many(machine: &str, policy: &str, n: usize, kind: &str) -> String {
    let mut s = format!("machine: {machine}\npolicy: {{{policy}}}\ndevices:\n");
    for i in 0..n {
        s.push_str(&format!("  - {{id: d{i}, kind: {kind}}}\n"));
    }
    s
}

#[test]
fn root_ports_pack_eight_per_slot_with_libvirt_numbering() {
    let p = plan(&many("q35", "", 10, "virtio-net"));
    assert_eq!(count(&p, "pcie-root-port"), 10);
    let first = ctl(&p, 1);
    let a = pci(&first.address);
    assert_eq!(
        (a.bus, a.slot, a.function, a.multifunction),
        (0, 1, 0, Some(true))
    );
    assert_eq!((first.chassis, first.port), (Some(1), Some(8)));
    let ninth = pci(&ctl(&p, 9).address);
    assert_eq!((ninth.slot, ninth.function), (2, 0));
    // Each endpoint alone on its root port at slot 0.
    for i in 0..10 {
        let a = dev(&p, &format!("d{i}"));
        assert_ne!(a.bus, 0);
        assert_eq!((a.slot, a.function), (0, 0));
    }
}

#[test]
fn conventional_pci_on_q35_goes_behind_one_pcie_to_pci_bridge() {
    let p = plan(&many("q35", "", 12, "e1000"));
    assert_eq!(count(&p, "pcie-to-pci-bridge"), 1);
    assert_eq!(count(&p, "pcie-root-port"), 1);
    let bridge = p
        .controllers
        .iter()
        .find(|c| c.model == "pcie-to-pci-bridge")
        .unwrap();
    for i in 0..12 {
        assert_eq!(dev(&p, &format!("d{i}")).bus, bridge.index);
    }
    // More than 31 conventional devices: a nested pci-bridge, not a second root port.
    let p = plan(&many("q35", "", 40, "rtl8139"));
    assert_eq!(count(&p, "pci-bridge"), 1);
    assert_eq!(count(&p, "pcie-root-port"), 1);
}

#[test]
fn pc_fills_the_root_bus_then_adds_pci_bridges() {
    let p = plan(&many("pc", "", 45, "virtio-blk"));
    assert_eq!(count(&p, "pci-bridge"), 1);
    let bridge = p
        .controllers
        .iter()
        .find(|c| c.model == "pci-bridge")
        .unwrap();
    assert_eq!(bridge.chassis_nr, Some(bridge.index));
    let on_root = (0..45)
        .filter(|i| dev(&p, &format!("d{i}")).bus == 0)
        .count();
    // pci.0: slot 0 is the host bridge, 1 the PIIX3, one slot holds the bridge: 29 left.
    assert_eq!(on_root, 29);
}

#[test]
fn numa_devices_sit_below_their_nodes_expander_with_room_in_bus_nr() {
    let p = plan(
        "machine: q35\npolicy: {numa_nodes: 2, hotplug_reserve_per_node: 1}\ndevices:\n\
         - {id: a, kind: virtio-net, numa_node: 0}\n- {id: b, kind: virtio-net, numa_node: 1}\n\
         - {id: c, kind: nvme, numa_node: 1}\n- {id: d, kind: virtio-blk, numa_node: 1}\n",
    );
    let pxb: Vec<&ControllerEntry> = p
        .controllers
        .iter()
        .filter(|c| c.model == "pcie-expander-bus")
        .collect();
    assert_eq!(pxb.len(), 2);
    // node 0: its bus + 2 root ports (1 used, 1 reserve); node 1: its bus + 4 ports.
    assert_eq!(pxb[0].bus_nr, Some(256 - 3));
    assert_eq!(pxb[1].bus_nr, Some(256 - 3 - 5));
    for (id, node) in [("a", 0), ("b", 1), ("c", 1), ("d", 1)] {
        let port = ctl(&p, dev(&p, id).bus);
        let parent = pci(&port.address).bus;
        assert_eq!(ctl(&p, parent).numa_node, Some(node), "{id}");
    }
    assert_eq!(p.free.hotplug_pcie_ports.get(&FreeZone::Node(0)), Some(&1));
    assert_eq!(p.free.hotplug_pcie_ports.get(&FreeZone::Node(1)), Some(&1));
}

#[test]
fn pc_numa_uses_pxb_with_two_bus_numbers() {
    let p = plan("machine: pc\ndevices:\n- {id: a, kind: virtio-net, numa_node: 0}\n");
    let pxb = p
        .controllers
        .iter()
        .find(|c| c.model == "pci-expander-bus")
        .unwrap();
    assert_eq!(pxb.bus_nr, Some(254));
    assert_eq!(dev(&p, "a").bus, pxb.index);
}

#[test]
fn hotplug_reserve_adds_empty_hotpluggable_ports() {
    let p = plan(&many("q35", "hotplug_reserve: 4", 2, "virtio-net"));
    assert_eq!(count(&p, "pcie-root-port"), 6);
    assert_eq!(p.free.hotplug_pcie_ports.get(&FreeZone::Root), Some(&4));
}

#[test]
fn hotplug_devices_never_sit_on_the_root_bus_even_when_packing() {
    let mut s = many("q35", "multifunction: pack", 3, "virtio-net");
    s.push_str("  - {id: hp, kind: virtio-net, hotplug: true}\n");
    let p = plan(&s);
    let hp = dev(&p, "hp");
    assert_ne!(hp.bus, 0);
    assert_eq!(ctl(&p, hp.bus).model, "pcie-root-port");
    // The others may share a slot as functions (dense placement).
    let slots: std::collections::BTreeSet<(u32, u8)> = (0..3)
        .map(|i| dev(&p, &format!("d{i}")))
        .map(|a| (a.bus, a.slot))
        .collect();
    assert_eq!(slots.len(), 1);
}

#[test]
fn pack_fits_a_thousand_devices_into_the_bus_budget() {
    let p = plan(&many("q35", "multifunction: pack", 1000, "virtio-blk"));
    assert!(p.free.bus_numbers < 256);
    let findings = devaddr::check(&p.to_spec()).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
}

#[test]
fn groups_become_functions_of_one_slot() {
    let p = plan(
        "machine: q35\ndevices:\n- {id: a, kind: virtio-net, group: g}\n\
         - {id: b, kind: virtio-blk, group: g}\n- {id: c, kind: virtio-rng, group: g}\n",
    );
    let (a, b, c) = (dev(&p, "a"), dev(&p, "b"), dev(&p, "c"));
    assert_eq!((a.bus, a.slot), (b.bus, b.slot));
    assert_eq!((a.function, b.function, c.function), (0, 1, 2));
    assert_eq!(a.multifunction, Some(true));
    assert_eq!(count(&p, "pcie-root-port"), 1);
}

#[test]
fn pins_are_kept_and_pinned_buses_are_created() {
    let p = plan(
        "machine: q35\ndevices:\n- {id: a, kind: virtio-net, address: {type: pci, bus: 5, slot: 0}}\n\
         - {id: b, kind: virtio-net, hotplug: true}\n",
    );
    assert_eq!(dev(&p, "a").bus, 5);
    assert_eq!(ctl(&p, 5).model, "pcie-root-port");
    assert_ne!(dev(&p, "b").bus, 5);
}

#[test]
fn primary_video_takes_the_chipset_video_slot() {
    let p = plan("machine: q35\ndevices:\n- {id: v, kind: virtio-gpu}\n");
    assert_eq!((dev(&p, "v").bus, dev(&p, "v").slot), (0, 1));
    let p = plan("machine: pc\ndevices:\n- {id: v, kind: virtio-gpu}\n");
    assert_eq!((dev(&p, "v").bus, dev(&p, "v").slot), (0, 2));
}

#[test]
fn switch_is_added_when_the_root_bus_has_no_slot_left() {
    let p = plan(&many("q35", "", 250, "virtio-net"));
    // pcie.0 slots 1-0x1e hold 240 root ports; one carries the switch, whose downstream
    // ports take the 11 devices that do not fit.
    assert_eq!(count(&p, "pcie-root-port"), 240);
    assert_eq!(count(&p, "pcie-switch-upstream-port"), 1);
    assert_eq!(count(&p, "pcie-switch-downstream-port"), 11);
}

#[test]
fn usb_and_drive_devices_get_ports_units_and_controllers() {
    let p = plan(
        "machine: q35\ndevices:\n- {id: t, kind: usb-tablet}\n- {id: k, kind: usb-kbd}\n\
         - {id: s0, kind: sata-disk}\n- {id: s1, kind: sata-disk}\n- {id: l0, kind: scsi-disk}\n",
    );
    let usb: Vec<_> = p
        .devices
        .iter()
        .filter_map(|d| match &d.address {
            Some(Address::Usb(u)) => Some(u.port.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(usb, ["1", "2"]);
    assert_eq!(count(&p, "qemu-xhci"), 1);
    assert_eq!(count(&p, "virtio-scsi"), 1);
    let units: Vec<_> = p
        .devices
        .iter()
        .filter_map(|d| match &d.address {
            Some(Address::Drive(a)) if d.kind == "sata-disk" => Some((a.controller, a.unit)),
            _ => None,
        })
        .collect();
    assert_eq!(units, [(0, 0), (0, 1)]);
    // Seven SATA disks need a second AHCI controller on q35 (the builtin one has 6 ports).
    let p = plan(&many("q35", "", 7, "sata-disk"));
    assert_eq!(count(&p, "ich9-ahci"), 2);
}

/// The addresses of `ids`, in that order, ascend (bus index, slot, function).
fn ascending(p: &Plan, ids: &[&str]) {
    let keys: Vec<(u32, u8, u8)> = ids
        .iter()
        .map(|id| {
            let a = dev(p, id);
            (a.bus, a.slot, a.function)
        })
        .collect();
    for w in keys.windows(2).zip(ids.windows(2)) {
        assert!(w.0[0] < w.0[1], "{} before {}: {keys:?}", w.1[0], w.1[1]);
    }
}

/// How many distinct (bus, slot) the devices `ids` take.
fn slots_of(p: &Plan, ids: &[&str]) -> usize {
    let slots: std::collections::BTreeSet<(u32, u8)> = ids
        .iter()
        .map(|id| {
            let a = dev(p, id);
            (a.bus, a.slot)
        })
        .collect();
    slots.len()
}

/// An order that alternates between devices that need a hotpluggable conventional-PCI
/// bridge and PCIe devices on root ports: the bridge cannot hold both stretches, so the
/// program gives each stretch a bridge of its own (swapping addresses afterwards could
/// not: the devices differ in bus type).
#[test]
fn order_across_bus_types_gets_a_bus_per_stretch() {
    let p = plan(
        "machine: q35\norder: [a, n, b]\ndevices:\n\
         - {id: b, kind: ich9-ahci, hotplug: true}\n\
         - {id: n, kind: virtio-net}\n\
         - {id: a, kind: ich9-ahci, hotplug: true}\n",
    );
    ascending(&p, &["a", "n", "b"]);
    assert_ne!(dev(&p, "a").bus, dev(&p, "b").bus);
    assert!(devaddr::check(&p.to_spec()).unwrap().is_empty());
}

/// A bus is numbered before the buses below it: an ordered device directly on the
/// PCIe-to-PCI bridge cannot come after one on a PCI bridge below that bridge, so the
/// program keeps the later one off it.
#[test]
fn order_respects_that_parents_are_numbered_first() {
    let p = plan(
        "machine: q35\norder: [h, n, c]\ndevices:\n\
         - {id: c, kind: e1000}\n\
         - {id: h, kind: ich9-intel-hda, hotplug: true}\n\
         - {id: n, kind: virtio-net}\n",
    );
    ascending(&p, &["h", "n", "c"]);
    assert!(devaddr::check(&p.to_spec()).unwrap().is_empty());
}

/// A port holds one thing: after an ordered device below one root port (on a bridge it
/// hosts), a later ordered device takes another root port, numbered after that subtree —
/// no switch is needed to keep the order.
#[test]
fn order_lets_a_later_device_take_another_port_of_the_class() {
    let p = plan("machine: q35\norder: [c, n]\ndevices:\n- {id: c, kind: e1000}\n- {id: n, kind: virtio-net}\n");
    ascending(&p, &["c", "n"]);
    assert_eq!(count(&p, "pcie-switch-upstream-port"), 0);
    assert_eq!(count(&p, "pcie-root-port"), 2);
    assert_eq!(ctl(&p, dev(&p, "n").bus).model, "pcie-root-port");
    assert!(devaddr::check(&p.to_spec()).unwrap().is_empty());
}

/// Many ordered devices of every bus type, packed, on NUMA nodes: the order holds and
/// the plan verifies.
#[test]
fn a_long_mixed_order_holds_when_packing_on_numa_nodes() {
    let kinds = [
        "virtio-net",
        "e1000",
        "nvme",
        "ich9-intel-hda",
        "virtio-blk",
    ];
    let mut s = String::from(
        "machine: q35\npolicy: {numa_nodes: 2, multifunction: pack, hotplug_reserve: 2}\ndevices:\n",
    );
    let mut ids = Vec::new();
    for i in 0..30 {
        let node = if i % 3 == 0 {
            ", numa_node: 1".to_string()
        } else {
            String::new()
        };
        s.push_str(&format!(
            "- {{id: d{i}, kind: {}, order: {}{node}}}\n",
            kinds[i % kinds.len()],
            (i * 7) % 30
        ));
        ids.push((i * 7 % 30, format!("d{i}")));
    }
    let p = plan(&s);
    ids.sort();
    let ids: Vec<&str> = ids.iter().map(|(_, id)| id.as_str()).collect();
    ascending(&p, &ids);
    assert!(devaddr::check(&p.to_spec()).unwrap().is_empty());
}

/// A packed ordered device after a whole (hotplug) one on the same bridge opens a slot
/// of its own: joining the earlier packed slot would put it before the whole one.
#[test]
fn a_packed_device_after_a_whole_one_on_a_bridge_keeps_the_order() {
    let p = plan(
        "machine: q35\npolicy: {multifunction: pack}\ndevices:\n\
         - {id: a, kind: e1000, order: 1}\n\
         - {id: b, kind: e1000, hotplug: true, order: 2}\n\
         - {id: c, kind: e1000, order: 3}\n",
    );
    ascending(&p, &["a", "b", "c"]);
    assert!(devaddr::check(&p.to_spec()).unwrap().is_empty());
}

/// Unordered packed devices fill the free functions of an ordered stretch's slot: two
/// ordered and six unordered devices on a NUMA node share one slot (one root port of
/// the node's expander).
#[test]
fn unordered_packed_devices_share_the_slot_of_an_ordered_stretch() {
    let mut s = String::from(
        "machine: q35\npolicy: {numa_nodes: 1, multifunction: pack, hotplug_reserve: 0, hotplug_reserve_per_node: 0}\ndevices:\n\
         - {id: o, kind: virtio-net, order: 1, numa_node: 0}\n\
         - {id: p, kind: virtio-net, order: 2, numa_node: 0}\n",
    );
    for i in 0..6 {
        s.push_str(&format!("- {{id: u{i}, kind: virtio-blk, numa_node: 0}}\n"));
    }
    let p = plan(&s);
    ascending(&p, &["o", "p"]);
    let ids = ["o", "p", "u0", "u1", "u2", "u3", "u4", "u5"];
    assert_eq!(slots_of(&p, &ids), 1);
    assert_eq!(count(&p, "pcie-root-port"), 1, "{:?}", p.controllers);
    assert!(devaddr::check(&p.to_spec()).unwrap().is_empty());
}

/// A stretch of twenty packed ordered devices on a NUMA node opens a slot every eight
/// functions, in order, and shares the last one with unordered devices.
#[test]
fn a_long_packed_stretch_opens_a_slot_every_eight_functions() {
    let mut s =
        String::from("machine: q35\npolicy: {numa_nodes: 1, multifunction: pack, hotplug_reserve: 0, hotplug_reserve_per_node: 0}\ndevices:\n");
    let mut ids = Vec::new();
    for i in 0..20 {
        s.push_str(&format!(
            "- {{id: o{i}, kind: virtio-net, order: {i}, numa_node: 0}}\n"
        ));
        ids.push(format!("o{i}"));
    }
    for i in 0..4 {
        s.push_str(&format!("- {{id: u{i}, kind: virtio-blk, numa_node: 0}}\n"));
    }
    let p = plan(&s);
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ascending(&p, &ids);
    // 20 ordered + 4 unordered functions: three slots (8 + 8 + 4 ordered, 4 unordered).
    ids.extend(["u0", "u1", "u2", "u3"]);
    assert_eq!(slots_of(&p, &ids), 3);
    assert_eq!(count(&p, "pcie-root-port"), 3, "{:?}", p.controllers);
    assert!(devaddr::check(&p.to_spec()).unwrap().is_empty());
}

/// When only the order stands in the way, the explanation names the order.
#[test]
fn an_order_that_cannot_fit_is_explained_as_the_order() {
    // Twenty stretches alternating between two I/O-BAR devices on NUMA node 0 (they need
    // the node's expander) and two off any node: every stretch needs a bus of its own
    // with an I/O window, and the x86 firmware has thirteen.
    let mut s = String::from("machine: pc\npolicy: {numa_nodes: 1}\norder: [");
    let mut devs = String::new();
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(format!("d{i}"));
        let node = if (i / 2) % 2 == 0 {
            ", numa_node: 0"
        } else {
            ""
        };
        devs.push_str(&format!("- {{id: d{i}, kind: e1000{node}}}\n"));
    }
    s.push_str(&ids.join(", "));
    s.push_str("]\ndevices:\n");
    s.push_str(&devs);
    let spec = Spec::parse(&s, "test").unwrap();
    let e = devaddr::plan(&spec).expect_err("twenty stretches do not fit");
    let why = e.explanation().expect("infeasible");
    assert_eq!(why.binding, devaddr::Binding::Order, "{e}");
    assert_eq!(why.devices.len(), 40);
    // The same explanation as data, for management software.
    let json = serde_json::to_value(why).unwrap();
    assert_eq!(json["binding"], "order");
    assert_eq!(json["devices"][0], "d0");
    // Without the order the same devices fit: the order is what binds.
    let unordered = s.replace(&format!("order: [{}]\n", ids.join(", ")), "");
    devaddr::plan(&Spec::parse(&unordered, "test").unwrap()).unwrap();
}

/// Explanations are values: each budget that binds has its kind, with the amounts where
/// they are counted.
#[test]
fn explanations_name_the_binding_requirement_as_data() {
    let why = |yaml: &str| {
        let spec = Spec::parse(yaml, "test").unwrap();
        devaddr::plan(&spec)
            .expect_err("infeasible")
            .explanation()
            .expect("an explanation")
            .clone()
    };
    let e = why(&many("q35", "multifunction: off", 300, "virtio-net"));
    assert_eq!(e.binding, devaddr::Binding::BusNumbers);
    assert_eq!(e.available, Some(256));
    assert!(e.needed.unwrap() > 256);
    let e = why(&many("q35", "multifunction: off", 14, "e1000e"));
    assert_eq!(e.binding, devaddr::Binding::IoWindows);
    let e = why(&many("q35", "hotplug_reserve: 200", 100, "virtio-net"));
    assert_eq!(e.binding, devaddr::Binding::BusNumbers);
}

/// q35's budgets under `firmware`.
fn q35_limits(firmware: devaddr::spec::Firmware) -> devaddr::catalog::Limits {
    let cat = devaddr::Catalog::embedded();
    cat.machine("q35").unwrap().limits_for(firmware).unwrap()
}

/// 64-bit MMIO: BARs on their own ports sum (a virtio port's 16 KiB BAR takes a 1 MiB
/// window, or under OVMF the 1/256 of the aperture it pads hotplug ports with), NUMA expanders count as root bridges of their own, placed after the root
/// complex in bus-number order each at its own alignment (as OVMF allocates them), the
/// aperture is the next power of two, and a plan without a `bar64` states nothing.
#[test]
fn big_bars_sum_per_hierarchy_into_a_power_of_two_aperture() {
    let cat = devaddr::Catalog::embedded();
    let p = plan(
        "machine: q35\ndevices:\n- {id: a, kind: vfio-pci, bar64: 128G}\n\
         - {id: b, kind: vfio-pci, bar64: 64G}\n- {id: n, kind: virtio-net}\n",
    );
    use devaddr::spec::Firmware;
    let needed = |p: &Plan, f| devaddr::topology::mmio64::needed(p, cat, &q35_limits(f));
    assert_eq!(needed(&p, Firmware::Bios), (192 << 30) + (1 << 20));
    // OVMF pads the virtio port with 1 GiB (256 GiB / 256).
    assert_eq!(needed(&p, Firmware::Uefi), 193 << 30);
    let m = p.mmio64.as_ref().unwrap();
    assert_eq!(
        (m.needed, m.aperture.to_string()),
        (193 << 30, "256G".into())
    );
    // A BAR that fills its aperture exactly leaves no room for the padding of another
    // hotplug port (OVMF left the 256 GiB BAR bare in 256 GiB): the next power of two.
    let p = plan(
        "machine: q35\npolicy: {firmware: uefi}\ndevices:\n\
         - {id: a, kind: vfio-pci, bar64: 256G}\n- {id: n, kind: virtio-net}\n",
    );
    let m = p.mmio64.as_ref().unwrap();
    assert_eq!(
        (m.needed, m.aperture.to_string()),
        (258 << 30, "512G".into())
    );
    assert_eq!(needed(&p, Firmware::Bios), (256 << 30) + (1 << 20));
    let p = plan(
        "machine: q35\npolicy: {numa_nodes: 2}\ndevices:\n\
         - {id: a, kind: vfio-pci, bar64: 128G, numa_node: 0}\n\
         - {id: b, kind: vfio-pci, bar64: 128G, numa_node: 1}\n\
         - {id: c, kind: vfio-pci, bar64: 1G}\n",
    );
    // The root complex's 1 GiB at 0, then each expander at the next 128 GiB boundary.
    assert_eq!(p.mmio64.unwrap().needed, 384 << 30);
    // Small expanders first, the big-BAR one last (highest bus number): 8 + 64 GiB on it
    // start at 64 GiB and end past 128 GiB (OVMF left the 64 GiB BAR bare in a 128 GiB
    // aperture; generated seed 105).
    let p = plan(
        "machine: q35\npolicy: {numa_nodes: 3}\ndevices:\n\
         - {id: g, kind: virtio-gpu}\n\
         - {id: s1, kind: virtio-blk, numa_node: 1}\n\
         - {id: s2, kind: virtio-rng, numa_node: 2}\n\
         - {id: a, kind: vfio-pci, bar64: 8G, numa_node: 0}\n\
         - {id: b, kind: vfio-pci, bar64: 64G, numa_node: 0}\n",
    );
    let m = p.mmio64.unwrap();
    assert!(m.needed > 128 << 30, "{m:?}");
    assert_eq!(m.aperture.to_string(), "256G");
    let p = plan("machine: q35\ndevices:\n- {id: n, kind: virtio-net}\n");
    assert!(p.mmio64.is_none());
    assert_eq!(devaddr::topology::mmio64::aperture(0), None);
}
