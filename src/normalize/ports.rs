//! Given USB and drive addresses checked against the controllers the problem has, before
//! anything is solved: the controller exists, the port or unit is within it, and no two
//! devices share one.

use super::Problem;
use crate::catalog::Catalog;
use crate::error::Error;
use crate::spec::Spec;
use crate::topology::Address;
use crate::vocab::{scsi, ControllerType};
use std::collections::{BTreeMap, BTreeSet};

/// USB controllers by index, with their port counts.
pub(crate) fn usb_ports(p: &Problem) -> BTreeMap<u32, u32> {
    p.storage
        .iter()
        .filter(|s| s.provides == ControllerType::Usb)
        .map(|s| (s.index, s.capacity))
        .collect()
}

/// Drive controllers by (bus type, index), with their buses and units per bus.
pub(crate) fn drive_shapes(
    p: &Problem,
    cat: &Catalog,
) -> BTreeMap<(ControllerType, u32), (u32, u32)> {
    p.storage
        .iter()
        .filter(|s| s.provides != ControllerType::Usb)
        .map(|s| {
            let m = &cat.storage[&s.model];
            (
                (s.provides, s.index),
                (m.buses.unwrap_or(1), m.units.unwrap_or(1)),
            )
        })
        .collect()
}

/// Every given USB or drive address that cannot stand, by device position (the first
/// finding of each device), in spec order.
pub(crate) fn findings(p: &Problem, cat: &Catalog, spec: &Spec) -> Vec<(usize, Error)> {
    let usb = usb_ports(p);
    let drives = drive_shapes(p, cat);
    let mut used_usb: BTreeSet<(u32, u32)> = BTreeSet::new();
    let mut used_drive: BTreeSet<(ControllerType, u32, u32, u32, u32)> = BTreeSet::new();
    let mut out = Vec::new();
    for (i, d) in spec.devices.iter().enumerate() {
        let bad = |m: String| Error::device_input(i, "address", format!("device `{}`: {m}", d.id));
        match &d.address {
            Some(Address::Usb(u)) => {
                let Some(&ports) = usb.get(&u.bus) else {
                    out.push((i, bad(format!("USB bus {} has no USB controller", u.bus))));
                    continue;
                };
                let Ok(port) = u.port.parse::<u32>() else {
                    out.push((
                        i,
                        bad(format!(
                            "USB port `{}`; expected a root port number (hubs are not planned)",
                            u.port
                        )),
                    ));
                    continue;
                };
                if port == 0 || port > ports {
                    out.push((
                        i,
                        bad(format!(
                            "USB port {port} is outside 1-{ports} of controller {}",
                            u.bus
                        )),
                    ));
                } else if !used_usb.insert((u.bus, port)) {
                    out.push((
                        i,
                        bad(format!("USB bus {} port {port} is used twice", u.bus)),
                    ));
                }
            }
            Some(Address::Drive(a)) => {
                let drive_bus = p.devs[i].kind.drive_bus;
                let Some((bus_type, &(buses, units))) =
                    drive_bus.and_then(|t| drives.get(&(t, a.controller)).map(|shape| (t, shape)))
                else {
                    out.push((
                        i,
                        bad(format!(
                            "{} controller {} does not exist",
                            drive_bus.map_or("", ControllerType::name),
                            a.controller
                        )),
                    ));
                    continue;
                };
                let (max_target, max_unit) = if bus_type == ControllerType::Scsi {
                    (scsi::MAX_TARGET, scsi::MAX_UNIT)
                } else {
                    (0, units - 1)
                };
                if a.bus >= buses || a.unit > max_unit || a.target > max_target {
                    out.push((
                        i,
                        bad(format!(
                            "drive address bus {} target {} unit {} is outside controller {} \
                             ({buses} bus(es), units 0-{max_unit})",
                            a.bus, a.target, a.unit, a.controller
                        )),
                    ));
                } else if !used_drive.insert((bus_type, a.controller, a.bus, a.target, a.unit)) {
                    out.push((i, bad("drive address used twice".into())));
                }
            }
            _ => {}
        }
    }
    out
}
