//! The verifier's checks whose bookkeeping was restructured for speed (issue 15: ids in a
//! hash set, addresses in a hash map, the functions of a slot grouped by sorting, the
//! buses in a table by index, the plan's devices found by id in a hash map) still refuse
//! every plan breaking them, with the same findings in the same order.

use devaddr::{Catalog, Finding, Plan, Rule, Spec, Subject};

fn check(text: &str) -> Vec<Finding> {
    let spec = Spec::parse(text, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    devaddr::check(&spec).unwrap_or_else(|e| panic!("{e}"))
}

/// The findings of rule `rule`, as (subject, message).
fn of(findings: &[Finding], rule: Rule) -> Vec<(Subject, String)> {
    findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| (f.subject.clone(), f.to_string()))
        .collect()
}

fn pci(slot: u8, function: u8) -> String {
    format!("{{type: pci, bus: 0, slot: {slot}, function: {function}}}")
}

#[test]
fn an_id_used_twice_is_refused_at_each_repetition() {
    let text = format!(
        "machine: q35\ncontrollers:\n\
         - {{id: x, model: pcie-root-port, index: 1, address: {}}}\n\
         devices:\n\
         - {{id: x, kind: virtio-net, address: {}}}\n\
         - {{id: y, kind: virtio-net, address: {}}}\n\
         - {{id: y, kind: virtio-net, address: {}}}\n\
         - {{id: z, kind: virtio-net, address: {}}}\n",
        pci(2, 0),
        pci(3, 0),
        pci(4, 0),
        pci(5, 0),
        pci(6, 0)
    );
    let found = of(&check(&text), Rule::UniqueId);
    let subjects: Vec<&Subject> = found.iter().map(|(s, _)| s).collect();
    assert_eq!(
        subjects,
        [&Subject::device("x"), &Subject::device("y")],
        "{found:?}"
    );
    assert!(found[0].1.contains("id `x` is used twice"), "{found:?}");
    assert!(found[1].1.contains("id `y` is used twice"), "{found:?}");
    // Unique ids: no finding.
    let fixed = text.replacen("{id: y, kind", "{id: w, kind", 1);
    let fixed = fixed.replacen("{id: x, kind", "{id: v, kind", 1);
    assert!(of(&check(&fixed), Rule::UniqueId).is_empty());
}

#[test]
fn slots_with_functions_are_checked_slot_by_slot_in_bus_order() {
    // Slot 5: function 0 not multifunction; slot 3: no function 0; slot 4: fine; the
    // functions of one slot listed apart from each other.
    let text = format!(
        "machine: q35\ndevices:\n\
         - {{id: a, kind: virtio-net, address: {}}}\n\
         - {{id: b, kind: virtio-net, address: {}}}\n\
         - {{id: c, kind: virtio-net, address: {}}}\n\
         - {{id: d, kind: virtio-net, address: {}}}\n\
         - {{id: e, kind: virtio-net, address: {}}}\n\
         - {{id: f, kind: virtio-net, address: {}}}\n",
        pci(5, 0),
        pci(3, 2),
        pci(4, 1),
        pci(5, 1),
        pci(4, 0).replace('}', ", multifunction: true}"),
        pci(5, 2),
    );
    let found = check(&text);
    let zero = of(&found, Rule::FunctionZero);
    let multi = of(&found, Rule::Multifunction);
    assert_eq!(
        zero,
        [(
            Subject::Slot { bus: 0, slot: 3 },
            "bus 0 slot 3 uses functions without function 0".to_string()
        )],
        "{found:?}"
    );
    assert_eq!(
        multi,
        [(
            Subject::Slot { bus: 0, slot: 5 },
            "bus 0 slot 5 has 3 functions but function 0 is not multifunction".to_string()
        )],
        "{found:?}"
    );
    // Findings come slot by slot in (bus, slot) order.
    let slots: Vec<&Subject> = found
        .iter()
        .filter(|f| matches!(f.rule, Rule::FunctionZero | Rule::Multifunction))
        .map(|f| &f.subject)
        .collect();
    assert_eq!(
        slots,
        [
            &Subject::Slot { bus: 0, slot: 3 },
            &Subject::Slot { bus: 0, slot: 5 }
        ]
    );
}

#[test]
fn two_owners_of_one_address_are_refused_naming_both() {
    let text = format!(
        "machine: q35\ndevices:\n\
         - {{id: a, kind: virtio-net, address: {}}}\n\
         - {{id: b, kind: virtio-net, address: {}}}\n\
         - {{id: c, kind: virtio-net, address: {}}}\n",
        pci(3, 0),
        pci(4, 0),
        pci(3, 0)
    );
    let found = of(&check(&text), Rule::UniqueAddress);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, Subject::device("c"));
    assert!(
        found[0].1.contains("device `c` and device `a` both use"),
        "{found:?}"
    );
}

#[test]
fn buses_are_found_by_index_whatever_the_indexes() {
    // Ports of indexes 1 and 200, a device on each, one on a bus no controller makes,
    // one asking hotplug on a port that has it off.
    let text = format!(
        "machine: q35\ncontrollers:\n\
         - {{id: p1, model: pcie-root-port, index: 1, chassis: 1, port: 16, address: {}}}\n\
         - {{id: p200, model: pcie-root-port, index: 200, chassis: 200, port: 17, hotplug: false, address: {}}}\n\
         devices:\n\
         - {{id: a, kind: virtio-net, address: {{type: pci, bus: 1, slot: 0, function: 0}}}}\n\
         - {{id: b, kind: virtio-net, hotplug: true, address: {{type: pci, bus: 200, slot: 0, function: 0}}}}\n\
         - {{id: c, kind: virtio-net, address: {{type: pci, bus: 7, slot: 0, function: 0}}}}\n\
         - {{id: d, kind: virtio-net, address: {{type: pci, bus: 1, slot: 9, function: 0}}}}\n",
        pci(2, 0).replace('}', ", multifunction: true}"),
        pci(2, 1)
    );
    let found = check(&text);
    assert_eq!(
        of(&found, Rule::MissingBus),
        [(
            Subject::device("c"),
            "device `c`: bus 7 has no PCI controller".to_string()
        )],
        "{found:?}"
    );
    assert_eq!(
        of(&found, Rule::Hotplug),
        [(
            Subject::device("b"),
            "device `b` needs hotplug but bus 200 is not hotpluggable".to_string()
        )],
        "{found:?}"
    );
    let range = of(&found, Rule::SlotRange);
    assert_eq!(range.len(), 1, "{found:?}");
    assert_eq!(range[0].0, Subject::device("d"));
    assert!(range[0].1.contains("slot 9 outside pcie-root-port `p1`"));
    // Nothing about the devices on existing buses within their slots.
    assert!(!found.iter().any(|f| f.subject == Subject::device("a")));
}

#[test]
fn a_plan_that_lost_changed_or_moved_a_spec_device_is_refused() {
    let spec = Spec::parse(
        "machine: q35\ndevices:\n\
         - {id: a, kind: virtio-net}\n\
         - {id: b, kind: virtio-blk, address: {type: pci, bus: 0, slot: 9, function: 0}}\n\
         - {id: c, kind: virtio-net}\n",
        "spec.yaml",
    )
    .unwrap();
    let cat = Catalog::embedded();
    let plan: Plan = devaddr::plan(&spec).unwrap();
    assert!(devaddr::verify::verify_against(&plan, &spec, cat).is_empty());
    // The same devices in another order: still the spec's plan.
    let mut reordered = plan.clone();
    reordered.devices.reverse();
    assert!(devaddr::verify::verify_against(&reordered, &spec, cat).is_empty());

    let mut broken = plan.clone();
    broken.devices[0].kind = "e1000e".into();
    let b = broken.devices.iter_mut().find(|d| d.id == "b").unwrap();
    if let Some(devaddr::Address::Pci(a)) = &mut b.address {
        a.slot = 10;
    }
    broken.devices.retain(|d| d.id != "c");
    let found = devaddr::verify::verify_against(&broken, &spec, cat);
    assert_eq!(
        of(&found, Rule::Changed),
        [(Subject::device("a"), "device `a` changed kind".to_string())],
        "{found:?}"
    );
    let pinned = of(&found, Rule::PinnedAddress);
    assert_eq!(pinned.len(), 1, "{found:?}");
    assert_eq!(pinned[0].0, Subject::device("b"));
    assert!(pinned[0].1.contains("device `b` was pinned at"));
    let missing = of(&found, Rule::Missing);
    assert!(
        missing.contains(&(
            Subject::device("c"),
            "device `c` of the spec is missing".to_string()
        )),
        "{found:?}"
    );
    // A plan with a device the spec does not name.
    let mut extra = plan.clone();
    let mut d = extra.devices[0].clone();
    d.id = "z".into();
    extra.devices.push(d);
    let found = devaddr::verify::verify_against(&extra, &spec, cat);
    assert!(
        of(&found, Rule::Missing).contains(&(
            Subject::Plan,
            "the plan has devices the spec does not name".to_string()
        )),
        "{found:?}"
    );
}
