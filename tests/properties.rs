//! Properties over random specs: every device placed, no address used twice, pins kept,
//! hotplug and NUMA requirements met, determinism and idempotence. The checks here are
//! written directly against the plan, not through the library's verifier.

#[path = "common/placement.rs"]
mod placement;

use devaddr::{Address, Catalog, DeviceEntry, Error, PciAddress, Plan, Spec};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const X86_PCI: &[&str] = &[
    "virtio-net",
    "virtio-blk",
    "virtio-scsi",
    "virtio-rng",
    "virtio-balloon",
    "virtio-serial",
    "virtio-input",
    "e1000",
    "e1000e",
    "nvme",
    "vfio-pci",
    "ich9-intel-hda",
    "i6300esb",
    "qemu-xhci",
];
const OTHER: &[&str] = &[
    "sata-disk",
    "scsi-disk",
    "usb-tablet",
    "usb-kbd",
    "usb-mouse",
];

#[derive(Debug, Clone)]
struct Gen {
    machine: &'static str,
    nodes: u32,
    reserve: u32,
    per_node: u32,
    mf: &'static str,
    devices: Vec<(usize, Option<u32>, bool, bool, bool)>, // kind, node, hotplug, group, pin
}

fn gen() -> impl Strategy<Value = Gen> {
    (
        prop_oneof![Just("q35"), Just("pc"), Just("virt")],
        0u32..=3,
        0u32..=3,
        0u32..=1,
        prop_oneof![Just("off"), Just("group"), Just("pack")],
        prop::collection::vec(
            (
                0usize..X86_PCI.len() + OTHER.len(),
                0u32..4,
                any::<bool>(),
                0u8..8,
                0u8..10,
            ),
            0..40,
        ),
    )
        .prop_map(|(machine, nodes, reserve, per_node, mf, raw)| Gen {
            machine,
            nodes,
            reserve,
            per_node,
            mf,
            devices: raw
                .into_iter()
                .map(|(k, n, hp, g, pin)| {
                    let node = (nodes > 0 && n < nodes && k < X86_PCI.len()).then_some(n);
                    (k, node, hp, g == 0, pin == 0)
                })
                .collect(),
        })
}

fn to_spec(g: &Gen) -> Spec {
    let cat = Catalog::embedded();
    let mut devices = Vec::new();
    let mut pin_slot = 0x10u8;
    let mut group_n = 0;
    let mut ios = 0;
    for (i, &(k, node, hp, group, pin)) in g.devices.iter().enumerate() {
        let mut kind = if k < X86_PCI.len() {
            X86_PCI[k]
        } else {
            OTHER[k - X86_PCI.len()]
        };
        if g.machine == "virt" && kind == "ich9-intel-hda" {
            kind = "virtio-rng";
        }
        // QEMU allows one balloon per guest.
        if kind == "virtio-balloon" && devices.iter().any(|d: &DeviceEntry| d.kind == kind) {
            kind = "virtio-rng";
        }
        let kd = cat.kind(kind).unwrap();
        // Keep I/O-BAR devices few enough for the x86 firmware.
        if matches!(kind, "e1000" | "e1000e") {
            ios += 1;
            if ios > 6 {
                kind = "virtio-net";
            }
        }
        let mut d = DeviceEntry {
            id: format!("d{i}"),
            kind: kind.to_string(),
            numa_node: node,
            hotplug: (hp && kd.hotplug && !matches!(kind, "sata-disk")).then_some(true),
            ..Default::default()
        };
        let pci = kd.controller.is_none() && kind.starts_with("virtio");
        if pin && pci && node.is_none() && d.hotplug.is_none() && pin_slot < 0x18 {
            d.address = Some(Address::Pci(PciAddress::new(0, pin_slot, 0)));
            if g.machine != "pc" {
                d.bus = Some(devaddr::spec::BusType::Pcie);
            }
            pin_slot += 1;
        } else if group && g.mf != "off" && pci && kind.starts_with("virtio") {
            d.group = Some(format!("g{}", group_n / 2));
            // Group members share NUMA node and hotplug need.
            d.numa_node = None;
            d.hotplug = None;
            group_n += 1;
        }
        devices.push(d);
    }
    let text = format!(
        "machine: {}\npolicy: {{numa_nodes: {}, hotplug_reserve: {}, hotplug_reserve_per_node: {}, multifunction: {}}}\ndevices: []\n",
        g.machine, g.nodes, g.reserve, g.per_node, g.mf
    );
    let mut spec = Spec::parse(&text, "gen").unwrap();
    spec.devices = devices;
    spec
}

fn pci(a: &Option<Address>) -> Option<PciAddress> {
    match a {
        Some(Address::Pci(p)) => Some(*p),
        _ => None,
    }
}

fn check_invariants(spec: &Spec, plan: &Plan) {
    let cat = Catalog::embedded();
    // Every device placed, with an address of its family.
    assert_eq!(plan.devices.len(), spec.devices.len());
    for d in &plan.devices {
        assert!(d.address.is_some(), "{} has no address", d.id);
    }
    // No PCI address used twice (controllers and devices together); USB/drive likewise.
    let mut seen = BTreeSet::new();
    for a in plan
        .controllers
        .iter()
        .map(|c| pci(&c.address))
        .chain(plan.devices.iter().map(|d| pci(&d.address)))
        .flatten()
    {
        assert!(seen.insert(a.key()), "address {a} used twice");
    }
    let mut other = BTreeSet::new();
    for d in &plan.devices {
        if let Some(a @ (Address::Usb(_) | Address::Drive(_))) = &d.address {
            let key = (cat.kind(&d.kind).unwrap().drive_bus, a.clone());
            assert!(other.insert(key), "{a} used twice");
        }
    }
    // Pins kept.
    for (s, p) in spec.devices.iter().zip(&plan.devices) {
        if let (Some(want), Some(got)) = (pci(&s.address), pci(&p.address)) {
            assert_eq!(want.key(), got.key(), "{} moved", s.id);
        }
    }
    // Bus tree: index -> (model, parent, numa_node, hotplug).
    /// model, parent bus, NUMA node, hotplug.
    type BusInfo<'a> = (&'a str, Option<u32>, Option<u32>, Option<bool>);
    let buses: BTreeMap<u32, BusInfo> = plan
        .controllers
        .iter()
        .filter(|c| cat.pci.contains_key(&c.model))
        .map(|c| {
            (
                c.index,
                (
                    c.model.as_str(),
                    pci(&c.address).map(|a| a.bus),
                    c.numa_node,
                    c.hotplug,
                ),
            )
        })
        .collect();
    for d in &plan.devices {
        let Some(a) = pci(&d.address) else { continue };
        let (model, _, _, hp) = buses[&a.bus];
        if d.hotplug == Some(true) {
            assert!(
                cat.pci[model].bus.hotplug && hp != Some(false),
                "{} needs hotplug but sits on {model}",
                d.id
            );
        }
        if let Some(n) = d.numa_node {
            let mut cur = a.bus;
            let mut found = None;
            for _ in 0..300 {
                let (m, parent, node, _) = buses[&cur];
                if cat.pci[m].numa {
                    found = node;
                    break;
                }
                match parent {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            assert_eq!(found, Some(n), "{} is not below node {n}'s expander", d.id);
        }
    }
    // Groups share a slot.
    let mut groups: BTreeMap<&str, BTreeSet<(u32, u8)>> = BTreeMap::new();
    for d in &plan.devices {
        if let (Some(g), Some(a)) = (&d.group, pci(&d.address)) {
            groups.entry(g).or_default().insert((a.bus, a.slot));
        }
    }
    for (g, slots) in groups {
        assert_eq!(slots.len(), 1, "group {g} spread over {slots:?}");
    }
    // Reserves.
    let free: u32 = plan
        .free
        .hotplug_pcie_ports
        .values()
        .chain(plan.free.hotplug_pci_slots.values())
        .sum();
    assert!(free >= plan.policy.hotplug_reserve.unwrap_or(0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn random_specs_plan_correctly(g in gen()) {
        let spec = to_spec(&g);
        match devaddr::plan(&spec) {
            Ok(plan) => {
                check_invariants(&spec, &plan);
                // The library's own verifier agrees.
                let findings = devaddr::check(&plan.to_spec()).unwrap();
                prop_assert!(findings.is_empty(), "{findings:?}");
                // Determinism: same input, byte-identical output.
                let again = devaddr::plan(&spec).unwrap();
                prop_assert_eq!(again.to_yaml(), plan.to_yaml());
                // The direct YAML writer writes serde_yaml's text, byte for byte.
                prop_assert_eq!(plan.to_yaml(), serde_yaml::to_string(&plan).unwrap());
                // Idempotence: a plan planned again is unchanged (also through YAML text).
                let replanned = devaddr::plan(&plan.to_spec()).unwrap();
                prop_assert_eq!(&replanned, &plan);
                let reparsed = Spec::parse(&plan.to_yaml(), "plan").unwrap();
                prop_assert_eq!(devaddr::plan(&reparsed).unwrap().to_yaml(), plan.to_yaml());
            }
            Err(Error::Infeasible { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e} for {spec:?}"),
        }
    }
}

/// Edits of a planned guest: which devices stay (by mask) and which new ones come.
fn edits() -> impl Strategy<Value = (Gen, Vec<bool>, Vec<(usize, bool)>)> {
    gen().prop_flat_map(|g| {
        let n = g.devices.len();
        (
            Just(g),
            prop::collection::vec(prop::bool::weighted(0.75), n),
            prop::collection::vec((0usize..X86_PCI.len() + OTHER.len(), any::<bool>()), 0..8),
        )
    })
}

fn address_of<'a>(plan: &'a Plan, id: &str) -> Option<&'a Address> {
    plan.devices.iter().find(|d| d.id == id)?.address.as_ref()
}

/// A kept UEFI port's `io_reserve` (OVMF's I/O padding, a next-boot firmware hint) may
/// change in a replan only from unset to 0, and only when unavoidable: with that port
/// padded as before and every port new to the plan giving its padding up instead, the
/// I/O windows would not fit the firmware's budget (the checker's `io-windows`).
fn kept_ports_give_io_padding_up_only_when_unavoidable(
    first: &Plan,
    second: &Plan,
) -> Result<(), TestCaseError> {
    let before = |id: &str| first.controllers.iter().find(|c| c.id == id);
    for c in &second.controllers {
        let Some(b) = before(&c.id) else { continue };
        if b.io_reserve == c.io_reserve {
            continue;
        }
        prop_assert_eq!(
            (b.io_reserve, c.io_reserve),
            (None, Some(0)),
            "kept port {} changed its io_reserve other than by giving the padding up",
            &c.id
        );
        let mut alt = second.clone();
        for x in alt.controllers.iter_mut() {
            if x.id == c.id {
                x.io_reserve = None;
            } else if before(&x.id).is_none() && x.model == "pcie-root-port" {
                x.io_reserve = Some(0);
            }
        }
        let findings = devaddr::check(&alt.to_spec()).unwrap();
        prop_assert!(
            findings.iter().any(|f| f.rule == devaddr::Rule::IoWindows),
            "kept port {} gave its I/O padding up though the new ports giving theirs up \
             would have been enough",
            &c.id
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// spec → plan → random edits → replan: no surviving device moves, no controller
    /// changes, every address is used once, and replanning the result changes nothing.
    #[test]
    fn replans_keep_every_surviving_address((g, keep, new) in edits()) {
        let spec = to_spec(&g);
        let Ok(first) = devaddr::plan(&spec) else { return Ok(()) };
        let mut edited = spec.clone();
        edited.devices = spec
            .devices
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(d, _)| d.clone())
            .collect();
        // Groups must stay whole: drop the grouped survivors whose group lost a member.
        let groups: BTreeSet<String> = spec
            .devices
            .iter()
            .zip(&keep)
            .filter(|(d, k)| !**k && d.group.is_some())
            .filter_map(|(d, _)| d.group.clone())
            .collect();
        edited.devices.retain(|d| d.group.as_ref().is_none_or(|g| !groups.contains(g)));
        for (i, &(k, hp)) in new.iter().enumerate() {
            let kind = if k < X86_PCI.len() { X86_PCI[k] } else { OTHER[k - X86_PCI.len()] };
            if matches!(kind, "virtio-balloon" | "e1000" | "e1000e")
                || (g.machine == "virt" && kind == "ich9-intel-hda")
            {
                continue;
            }
            let hotplug = hp && Catalog::embedded().kind(kind).unwrap().hotplug;
            edited.devices.push(DeviceEntry {
                id: format!("new{i}"),
                kind: kind.into(),
                hotplug: hotplug.then_some(true),
                ..Default::default()
            });
        }
        match devaddr::replan(&edited, &first) {
            Ok(second) => {
                check_invariants(&edited, &second);
                for d in &edited.devices {
                    if let Some(before) = address_of(&first, &d.id) {
                        prop_assert_eq!(Some(before), address_of(&second, &d.id), "{} moved", d.id);
                    }
                }
                for c in &first.controllers {
                    // The same controller at the same address; only the multifunction flag of
                    // a function 0 may turn on when new functions join its slot, and a UEFI
                    // port's `io_reserve` only as checked below.
                    let strip = |c: &devaddr::ControllerEntry| {
                        let mut c = c.clone();
                        c.io_reserve = None;
                        if let Some(Address::Pci(a)) = &mut c.address {
                            a.multifunction = None;
                        }
                        c
                    };
                    let now = second.controllers.iter().find(|x| x.id == c.id).map(strip);
                    prop_assert_eq!(Some(strip(c)), now, "controller {} changed", &c.id);
                }
                kept_ports_give_io_padding_up_only_when_unavoidable(&first, &second)?;
                let again = devaddr::replan(&edited, &second).unwrap();
                prop_assert_eq!(again.to_yaml(), second.to_yaml());
                // Fewest moves: when nothing has to move, --allow-moves moves nothing.
                let m = devaddr::replan_with(&edited, &first, true, Default::default()).unwrap();
                prop_assert!(m.moves.is_empty(), "{:?}", m.moves);
                prop_assert_eq!(m.plan, second);
            }
            Err(Error::Infeasible { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    /// Live hotplug of NICs moves nothing and adds no controller; when it refuses, no more
    /// fit than capacity --live said.
    #[test]
    fn hotplug_moves_nothing((g, _, new) in edits()) {
        let spec = to_spec(&g);
        let Ok(running) = devaddr::plan(&spec) else { return Ok(()) };
        let add: Vec<DeviceEntry> = (0..new.len())
            .map(|i| DeviceEntry { id: format!("hp{i}"), kind: "virtio-net".into(), ..Default::default() })
            .collect();
        let q = devaddr::CapacityQuery::new(vec!["virtio-net".into()], None);
        let live = devaddr::capacity(&running.to_spec(), &q).unwrap()[0].live as usize;
        match devaddr::hotplug(&running, &add) {
            Ok(h) => {
                prop_assert!(add.len() <= live, "{} added, capacity said {live}", add.len());
                prop_assert_eq!(&h.plan.controllers, &running.controllers);
                for d in &running.devices {
                    prop_assert_eq!(address_of(&h.plan, &d.id), d.address.as_ref());
                }
                let findings = devaddr::check(&h.plan.to_spec()).unwrap();
                prop_assert!(findings.is_empty(), "{findings:?}");
            }
            Err(Error::Infeasible { .. }) => prop_assert!(add.len() > live, "{} refused, capacity said {live}", add.len()),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

/// `spec` as YAML text with every PCI pin (devices and controllers) written as a string
/// (`"0000:03:00.0"`, `"03:00.0"`, upper or lower case, by `style`) instead of a map.
/// Pins carrying a multifunction flag stay maps (a string cannot say it).
fn with_string_pins(spec: &Spec, style: u8) -> String {
    let mut v = serde_yaml::to_value(spec).unwrap();
    for list in ["devices", "controllers"] {
        let Some(items) = v.get_mut(list).and_then(|l| l.as_sequence_mut()) else {
            continue;
        };
        for item in items {
            let Some(a) = item.get_mut("address") else {
                continue;
            };
            let Ok(Address::Pci(p)) = serde_yaml::from_value::<Address>(a.clone()) else {
                continue;
            };
            if p.multifunction.is_some() {
                continue;
            }
            let mut s = if style.is_multiple_of(2) {
                format!(
                    "{:04x}:{:02x}:{:02x}.{}",
                    p.domain, p.bus, p.slot, p.function
                )
            } else {
                format!("{:x}:{:x}.{}", p.bus, p.slot, p.function)
            };
            if style >= 2 {
                s = s.to_uppercase();
            }
            *a = serde_yaml::Value::String(s);
        }
    }
    serde_yaml::to_string(&v).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A pin written as a string (`"0000:03:00.0"`, `"3:0.0"`) reads as the same map pin:
    /// the parsed specs are equal and their plans (or errors) identical, and the plan
    /// writes the map form.
    #[test]
    fn string_and_map_pins_give_identical_plans(
        g in gen(),
        style in 0u8..4,
        (bus, slot, function) in prop_oneof![
            // Places that usually fit: a free root-bus slot, a root port's slot 0...
            3 => (Just(0u32), 2u8..16, Just(0u8)),
            3 => (1u32..7, Just(0u8), Just(0u8)),
            // ...and anywhere at all.
            1 => (0u32..12, 0u8..32, 0u8..8),
        ],
    ) {
        let mut spec = to_spec(&g);
        // One more device, pinned anywhere (often infeasible: both forms must agree).
        spec.devices.push(DeviceEntry {
            id: "pinned".into(),
            kind: "virtio-net".into(),
            address: Some(Address::Pci(PciAddress::new(bus, slot, function))),
            ..Default::default()
        });
        let map_text = spec.to_yaml();
        let string_text = with_string_pins(&spec, style);
        prop_assert!(string_text.contains("address: "), "{string_text}");
        let from_map = Spec::parse(&map_text, "map").unwrap();
        let from_string = Spec::parse(&string_text, "string").unwrap();
        prop_assert_eq!(&from_map, &from_string);
        let plan_text = |s: &Spec| match devaddr::plan(s) {
            Ok(p) => p.to_yaml(),
            Err(e) => format!("error: {e}"),
        };
        let a = plan_text(&from_map);
        prop_assert_eq!(&a, &plan_text(&from_string));
        if !a.starts_with("error") {
            let v: serde_yaml::Value = serde_yaml::from_str(&a).unwrap();
            let devices = v["devices"].as_sequence().unwrap();
            let pinned = devices.iter().find(|d| d["id"].as_str() == Some("pinned")).unwrap();
            prop_assert_eq!(pinned["address"]["slot"].as_u64(), Some(u64::from(slot)), "{}", a);
            prop_assert!(devices.iter().all(|d| !d["address"].is_string()), "{}", a);
        }
    }
}

/// Random placement constraints over a generated spec's PCI devices: a `placement: root`
/// flag, apart sets and together sets, each drawn from the devices by position.
/// A generated spec, a root draw per device, apart sets and together sets (positions).
type Constrained = (Gen, Vec<u8>, Vec<Vec<usize>>, Vec<Vec<usize>>);

fn constrained() -> impl Strategy<Value = Constrained> {
    gen().prop_flat_map(|g| {
        let n = g.devices.len().max(1);
        let set = prop::collection::vec(0..n, 2..5);
        (
            Just(g),
            prop::collection::vec(0u8..12, n),
            prop::collection::vec(set.clone(), 0..3),
            prop::collection::vec(set, 0..3),
        )
    })
}

/// Apply the drawn constraints to PCI devices only (others are bad input, tested apart).
fn with_constraints(spec: &mut Spec, root: &[u8], apart: &[Vec<usize>], together: &[Vec<usize>]) {
    let cat = Catalog::embedded();
    let is_pci = |d: &DeviceEntry| {
        cat.kind(&d.kind)
            .is_some_and(|k| k.family == devaddr::catalog::Family::Pci)
    };
    for (d, &r) in spec.devices.iter_mut().zip(root) {
        if r == 0 && is_pci(d) && d.address.is_none() && d.group.is_none() {
            d.placement = Some(devaddr::Placement::Root);
            d.numa_node = None;
            d.hotplug = None;
            if cat.kind(&d.kind).unwrap().pci == Some(devaddr::catalog::PciType::Either) {
                d.bus = None;
            }
        }
    }
    let ids = |set: &Vec<usize>| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for &i in set {
            let Some(d) = spec.devices.get(i) else {
                continue;
            };
            if is_pci(d) && !v.contains(&d.id) {
                v.push(d.id.clone());
            }
        }
        v
    };
    // Mostly satisfiable: apart sets from even positions, together sets from odd ones,
    // each together set on its first device's NUMA node and without root placement
    // (what remains contradictory — through groups — must be refused with exit 1).
    let pick = |sets: &[Vec<usize>], parity: usize| -> Vec<Vec<usize>> {
        sets.iter()
            .map(|s| s.iter().map(|&i| i - i % 2 + parity).collect())
            .collect()
    };
    spec.apart = pick(apart, 0)
        .iter()
        .map(ids)
        .filter(|v| v.len() >= 2)
        .collect();
    spec.together = pick(together, 1)
        .iter()
        .map(ids)
        .filter(|v| v.len() >= 2)
        .collect();
    for set in spec.together.clone() {
        let node = spec
            .devices
            .iter()
            .find(|d| d.id == set[0])
            .unwrap()
            .numa_node;
        for d in spec.devices.iter_mut().filter(|d| set.contains(&d.id)) {
            d.numa_node = node;
            d.placement = None;
            d.address = None;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random root/apart/together constraints: the plan satisfies them (checked on its
    /// bus tree here), passes the verifier, is deterministic and plans again to itself;
    /// or the spec is refused as infeasible (exit 1), never otherwise.
    #[test]
    fn placement_constraints_hold_or_are_refused((g, root, apart, together) in constrained()) {
        let mut spec = to_spec(&g);
        with_constraints(&mut spec, &root, &apart, &together);
        match devaddr::plan(&spec) {
            Ok(plan) => {
                check_invariants(&spec, &plan);
                placement::holds(&plan, &spec);
                let findings = devaddr::check(&plan.to_spec()).unwrap();
                prop_assert!(findings.is_empty(), "{findings:?}");
                prop_assert_eq!(devaddr::plan(&spec).unwrap().to_yaml(), plan.to_yaml());
                let replanned = devaddr::plan(&plan.to_spec()).unwrap();
                prop_assert_eq!(&replanned, &plan);
            }
            Err(e @ Error::Infeasible { .. }) => {
                prop_assert_eq!(e.exit_code(), 1);
                // When the guest plans without the constraints, the refusal names one.
                let mut free = spec.clone();
                free.apart.clear();
                free.together.clear();
                for d in &mut free.devices {
                    d.placement = None;
                }
                if devaddr::plan(&free).is_ok() {
                    use devaddr::Binding::*;
                    let b = e.explanation().unwrap().binding;
                    prop_assert!(
                        matches!(b, RootPlacement | Apart | Together | Contradiction),
                        "{b:?}: {e}"
                    );
                }
            }
            Err(e) => prop_assert!(false, "unexpected error {e} for {spec:?}"),
        }
    }
}
