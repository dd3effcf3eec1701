//! Library use: build a spec in code, plan it, read addresses, replan the plan.
//!
//! Run: `cargo run --example plan_spec`

use devaddr::{Address, DeviceEntry, Spec};

fn main() -> Result<(), devaddr::Error> {
    let mut spec = Spec::parse(
        "machine: q35\npolicy: {numa_nodes: 2, hotplug_reserve_per_node: 1}\ndevices: []\n",
        "inline",
    )?;
    for (id, kind, node) in [
        ("net0", "virtio-net", Some(0)),
        ("net1", "virtio-net", Some(1)),
        ("disk0", "virtio-blk", None),
    ] {
        spec.devices.push(DeviceEntry {
            id: id.into(),
            kind: kind.into(),
            numa_node: node,
            hotplug: Some(true),
            ..Default::default()
        });
    }
    let plan = devaddr::plan(&spec)?;
    for d in &plan.devices {
        if let Some(Address::Pci(a)) = &d.address {
            println!(
                "{:<6} {:<11} bus {:>2} slot {:#04x}.{}",
                d.id, d.kind, a.bus, a.slot, a.function
            );
        }
    }
    for c in plan.controllers.iter().filter(|c| c.numa_node.is_some()) {
        println!(
            "{} {} node {:?} bus_nr {:?}",
            c.id, c.model, c.numa_node, c.bus_nr
        );
    }
    println!("free hotplug ports: {:?}", plan.free.hotplug_pcie_ports);
    // A plan is a spec: planning it again changes nothing.
    assert_eq!(devaddr::plan(&plan.to_spec())?, plan);
    Ok(())
}
