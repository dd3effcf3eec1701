//! Indexes the plan implies without writing them: a device that is itself a storage or
//! USB controller (a `virtio-scsi` device, a `qemu-xhci` device) is controller number N
//! of its bus type. Every output that names such a controller (QEMU bus names, libvirt
//! `index` attributes) numbers it the same way, from here.

use super::Plan;
use crate::catalog::Catalog;
use crate::vocab::ControllerType;

/// The controllers providing `provides` (`usb`, `scsi`…) that the plan declares as
/// devices, in plan order, each with its index: the lowest index that no plan
/// controller of that type and no earlier such device has.
pub fn storage_device_indexes(
    plan: &Plan,
    cat: &Catalog,
    provides: ControllerType,
) -> Vec<(u32, String)> {
    let provides_this = |model: &str| {
        cat.storage
            .get(model)
            .is_some_and(|m| m.provides == provides)
    };
    let mut taken: Vec<u32> = plan
        .controllers
        .iter()
        .filter(|c| provides_this(&c.model))
        .map(|c| c.index)
        .collect();
    let mut out = Vec::new();
    for d in &plan.devices {
        let Some(model) = cat.kind(&d.kind).and_then(|k| k.controller.as_ref()) else {
            continue;
        };
        if !provides_this(model) {
            continue;
        }
        let idx = (0..).find(|i| !taken.contains(i)).unwrap_or(0);
        taken.push(idx);
        out.push((idx, d.id.clone()));
    }
    out
}
