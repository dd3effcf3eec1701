//! `devaddr models`: list the catalog, describe one entry for people, or give its data.

use crate::catalog::{
    Family, IoBar, Kind, MachineModel, PciModel, PciType, ReserveKind, StorageModel,
};
use crate::vocab::{ConnectKind, ControllerType};
use crate::{Catalog, Error, Result};
use std::fmt::Write;

/// List every machine, controller model and device kind (`name` None), or describe one
/// for people: what it is, its slots and limits, which buses it plugs into.
pub fn render(cat: &Catalog, name: Option<&str>) -> Result<String> {
    let Some(name) = name else {
        return Ok(list(cat));
    };
    let mut parts = Vec::new();
    if let Some(m) = cat.machine(name) {
        parts.push(machine(cat, m));
    }
    if let Some(m) = cat.pci.get(name) {
        parts.push(pci_controller(cat, m));
    }
    if let Some(m) = cat.storage.get(name) {
        parts.push(storage_controller(cat, m));
    }
    if let Some(k) = cat.kind(name) {
        parts.push(kind(cat, k));
    }
    if parts.is_empty() {
        return Err(not_found(cat, name));
    }
    Ok(parts.join("\n"))
}

/// The catalog's data (`name` None: all of it) as a JSON value: a mapping with
/// `machines`, `pci_controllers`, `storage_controllers` and `kinds`, or for one name
/// whichever of `machine`, `pci_controller`, `storage_controller` and `kind` it is.
/// `devaddr models --format json|yaml` prints it.
pub fn data(cat: &Catalog, name: Option<&str>) -> Result<serde_json::Value> {
    use serde_json::{json, to_value, Map, Value};
    let v = |x: std::result::Result<Value, serde_json::Error>| x.unwrap_or(Value::Null);
    let Some(name) = name else {
        return Ok(json!({
            "machines": v(to_value(&cat.machines)),
            "pci_controllers": v(to_value(cat.pci.values().collect::<Vec<_>>())),
            "storage_controllers": v(to_value(cat.storage.values().collect::<Vec<_>>())),
            "kinds": v(to_value(&cat.kinds)),
        }));
    };
    let mut out = Map::new();
    if let Some(m) = cat.machine(name) {
        out.insert("machine".into(), v(to_value(m)));
    }
    if let Some(m) = cat.pci.get(name) {
        out.insert("pci_controller".into(), v(to_value(m)));
    }
    if let Some(m) = cat.storage.get(name) {
        out.insert("storage_controller".into(), v(to_value(m)));
    }
    if let Some(k) = cat.kind(name) {
        out.insert("kind".into(), v(to_value(k)));
    }
    if out.is_empty() {
        return Err(not_found(cat, name));
    }
    Ok(Value::Object(out))
}

fn not_found(cat: &Catalog, name: &str) -> Error {
    let machines = cat.machine_names();
    let all = machines
        .iter()
        .copied()
        .chain(cat.pci.keys().map(String::as_str))
        .chain(cat.storage.keys().map(String::as_str))
        .chain(cat.kinds.iter().map(|k| k.kind.as_str()));
    let near = crate::catalog::did_you_mean(name, all);
    Error::Input {
        location: Box::new(crate::Location::default()),
        code: crate::Code::UnknownName,
        message: format!(
            "no machine, controller model or device kind named `{name}`{}",
            if near.is_empty() {
                "; run `devaddr models` for the list"
            } else {
                &near
            }
        ),
    }
}

fn list(cat: &Catalog) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "machines:");
    for m in &cat.machines {
        let _ = writeln!(
            s,
            "  {:<16} {} root {}, aliases: {}",
            m.name,
            m.arch,
            m.root,
            m.aliases.join(", ")
        );
    }
    let _ = writeln!(s, "pci controllers:");
    for m in cat.pci.values() {
        let _ = writeln!(
            s,
            "  {:<28} qemu {:<20} accepts {}",
            m.model,
            m.qemu.as_deref().unwrap_or("(machine)"),
            m.bus.accepts
        );
    }
    let _ = writeln!(s, "storage/usb controllers:");
    for m in cat.storage.values() {
        let _ = writeln!(s, "  {:<28} provides {}", m.model, m.provides);
    }
    let _ = writeln!(s, "device kinds:");
    for k in &cat.kinds {
        let bus = match (k.family, k.pci) {
            (Family::Pci, Some(t)) => format!("pci/{t:?}").to_lowercase(),
            (f, _) => format!("{f:?}").to_lowercase(),
        };
        let _ = writeln!(s, "  {:<16} {:<12} qemu {}", k.kind, bus, k.qemu);
    }
    let _ = writeln!(
        s,
        "\n`devaddr models NAME` describes one; add --format yaml|json for its data."
    );
    s
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `a, b and c`.
fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => "nothing".into(),
        [one] => one.as_ref().into(),
        [init @ .., last] => format!(
            "{} and {}",
            init.iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

/// The PCI controller models whose bus accepts `kind`.
fn buses_accepting(cat: &Catalog, kind: ConnectKind) -> Vec<String> {
    cat.pci
        .values()
        .filter(|m| m.bus.accepts(kind))
        .map(|m| m.model.clone())
        .collect()
}

fn controller_type(t: ControllerType) -> &'static str {
    match t {
        ControllerType::Ide => "IDE",
        ControllerType::Sata => "SATA",
        ControllerType::Scsi => "SCSI",
        ControllerType::Usb => "USB",
    }
}

fn machine(cat: &Catalog, m: &MachineModel) -> String {
    let mut s = String::new();
    let root = cat.pci.get(&m.root);
    let _ = writeln!(
        s,
        "{}: {} machine, QEMU `-machine {}` ({}), firmware {}",
        m.name, m.arch, m.qemu_machine, m.qemu_binary, m.firmware
    );
    if !m.aliases.is_empty() {
        let _ = writeln!(s, "  also named:    {}", m.aliases.join(", "));
    }
    let _ = writeln!(
        s,
        "  versioned:     QEMU's versioned names work too (`{}-<version>`)",
        m.aliases.first().unwrap_or(&m.name)
    );
    let _ = writeln!(
        s,
        "  root bus:      {} `{}` ({}), slots {}",
        m.root,
        m.root_bus_name,
        if m.pcie {
            "PCI Express: PCIe endpoints and ports"
        } else {
            "conventional PCI only"
        },
        root.map_or("?".into(), |r| format!(
            "{}-{}",
            r.bus.slots[0], r.bus.slots[1]
        ))
    );
    for b in &m.builtin {
        for f in &b.functions {
            let _ = writeln!(
                s,
                "  built in:      0000:00:{:02x}.{} {}",
                u8::from(b.slot),
                u8::from(*f),
                b.what
            );
        }
    }
    for c in &m.builtin_controllers {
        let _ = writeln!(
            s,
            "  built in:      0000:00:{:02x}.{} {} ({}, index {})",
            u8::from(c.slot),
            u8::from(c.function),
            c.id,
            c.model,
            c.index
        );
    }
    for f in &m.fixed_controller_slots {
        let _ = writeln!(
            s,
            "  kept for:      0000:00:{:02x}.{} {} when the guest has one",
            u8::from(f.slot),
            u8::from(f.function),
            f.model
        );
    }
    if let Some(v) = &m.primary_video {
        let _ = writeln!(
            s,
            "  primary video: 0000:00:{:02x}.0 (the first video device, when free)",
            u8::from(v.slot)
        );
    }
    let g = &m.grow;
    let grow: Vec<String> = [
        (&g.pcie_port, "ports for PCIe endpoints"),
        (&g.pci_bridge_first, "the first conventional PCI bus"),
        (&g.pci_bridge, "further conventional PCI buses"),
        (
            &g.pcie_switch_upstream,
            "switches when the root bus is full",
        ),
        (&g.pcie_switch_downstream, "the switches' ports"),
        (&g.numa_expander, "one expander bus per NUMA node"),
    ]
    .iter()
    .filter_map(|(m, why)| m.as_ref().map(|m| format!("{m} ({why})")))
    .collect();
    let _ = writeln!(s, "  adds:          {}", grow.join(",\n                 "));
    let _ = writeln!(
        s,
        "  defaults:      USB {}, SATA {}, SCSI {}",
        m.defaults.usb_controller, m.defaults.sata_controller, m.defaults.scsi_controller
    );
    let limits = |l: &crate::catalog::Limits| {
        format!(
            "{} PCI bus numbers{}",
            l.bus_numbers,
            l.io_windows.map_or(String::new(), |w| format!(
                ", {w} I/O windows for bridges and ports with I/O-BAR devices"
            ))
        )
    };
    let bios = if m.bios {
        "firmware: bios"
    } else {
        "firmware: uefi"
    };
    let _ = writeln!(s, "  limits:        {} ({bios})", limits(&m.limits));
    if let Some(u) = &m.uefi {
        let _ = writeln!(
            s,
            "  UEFI:          {} ({}), firmware: uefi: {}",
            u.name,
            u.code,
            limits(&u.limits)
        );
    }
    let _ = writeln!(
        s,
        "  hotplug_reserve counts: {}",
        match m.reserve_kind {
            ReserveKind::PciePort => "empty hotpluggable PCIe ports",
            ReserveKind::PciSlot => "empty hotpluggable conventional PCI slots",
        }
    );
    if !m.capacity_kinds.is_empty() {
        let _ = writeln!(
            s,
            "  capacity asks: {} (by default)",
            m.capacity_kinds.join(", ")
        );
    }
    s
}

fn pci_controller(cat: &Catalog, m: &PciModel) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: PCI controller{}",
        m.model,
        m.qemu.as_ref().map_or(
            " (the machine's root bus: QEMU creates it, index 0)".to_string(),
            |q| format!(", QEMU `-device {q}`")
        )
    );
    match m.connect {
        Some(c) => {
            let _ = writeln!(
                s,
                "  plugs into:    a slot of {} (as {c})",
                and_list(&buses_accepting(cat, c))
            );
        }
        None => {
            let _ = writeln!(s, "  plugs into:    nothing (it is the root)");
        }
    }
    if m.aggregate {
        let _ = writeln!(
            s,
            "  packing:       up to 8 share one slot as functions 0-7"
        );
    }
    let b = &m.bus;
    let _ = writeln!(
        s,
        "  its bus:       {}, slots {}-{} ({} slot{}), {}",
        if b.express {
            "PCI Express"
        } else {
            "conventional PCI"
        },
        b.slots[0],
        b.slots[1],
        b.slot_count(),
        if b.slot_count() == 1 { "" } else { "s" },
        match (b.hotplug, m.hotplug_settable) {
            (true, true) => "hotpluggable (can be switched off: hotplug: false)",
            (true, false) => "hotpluggable",
            (false, _) => "not hotpluggable",
        }
    );
    let _ = writeln!(s, "  accepts:       {}", b.accepts);
    let _ = writeln!(
        s,
        "  uses:          {} PCI bus number{}",
        m.bus_numbers,
        if m.bus_numbers == 1 { "" } else { "s" }
    );
    if m.numa {
        let _ = writeln!(s, "  NUMA:          carries a guest NUMA node (numa_node)");
    }
    if !m.attrs.is_empty() {
        let attrs: Vec<String> = m.attrs.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(s, "  plan fills in: {}", attrs.join(", "));
    }
    s
}

fn storage_controller(cat: &Catalog, m: &StorageModel) -> String {
    let mut s = String::new();
    let t = controller_type(m.provides);
    let _ = writeln!(
        s,
        "{}: {t} controller (a PCI device itself: see its kind)",
        m.model
    );
    if m.provides == ControllerType::Usb {
        let _ = writeln!(
            s,
            "  ports:         {} by default{}",
            m.ports.unwrap_or(0),
            m.max_ports
                .map_or(String::new(), |p| format!(", up to {p} (`ports:`)"))
        );
    } else {
        let _ = writeln!(
            s,
            "  holds:         {} bus{} × {} unit{} = {} disk{}",
            m.buses.unwrap_or(1),
            if m.buses.unwrap_or(1) == 1 { "" } else { "es" },
            m.units.unwrap_or(1),
            if m.units.unwrap_or(1) == 1 { "" } else { "s" },
            m.capacity(None),
            if m.capacity(None) == 1 { "" } else { "s" }
        );
    }
    let users: Vec<&str> = cat
        .kinds
        .iter()
        .filter(|k| match m.provides {
            ControllerType::Usb => k.family == Family::Usb,
            t => k.drive_bus == Some(t),
        })
        .map(|k| k.kind.as_str())
        .collect();
    if !users.is_empty() {
        let _ = writeln!(s, "  takes:         {}", and_list(&users));
    }
    s
}

fn kind(cat: &Catalog, k: &Kind) -> String {
    let mut s = String::new();
    let what = match k.family {
        Family::Pci => "PCI device",
        Family::Usb => "USB device",
        Family::Drive => "disk",
    };
    let _ = writeln!(
        s,
        "{}: {what}, QEMU `-device {}`, libvirt <{}>",
        k.kind, k.qemu, k.element
    );
    match k.family {
        Family::Pci => {
            let (bus, kinds): (&str, &[ConnectKind]) = match k.pci {
                Some(PciType::Pcie) => ("PCI Express endpoint", &[ConnectKind::PcieDevice]),
                Some(PciType::Pci) => ("conventional PCI only", &[ConnectKind::PciDevice]),
                _ => (
                    "PCI Express or conventional PCI (modern virtio on a PCIe port, \
                     transitional on a conventional bus; `bus:` or `prefer:` chooses)",
                    &[ConnectKind::PcieDevice, ConnectKind::PciDevice],
                ),
            };
            let _ = writeln!(s, "  bus type:      {bus}");
            let mut into: Vec<String> = Vec::new();
            for c in kinds {
                for m in buses_accepting(cat, *c) {
                    if !into.contains(&m) {
                        into.push(m);
                    }
                }
            }
            let _ = writeln!(s, "  plugs into:    a slot of {}", and_list(&into));
            let _ = writeln!(
                s,
                "  I/O BAR:       {}",
                match k.io_bar {
                    IoBar::None => "none",
                    IoBar::Always => "yes (takes an I/O window in every bridge above it)",
                    IoBar::Legacy => "only as conventional PCI",
                }
            );
        }
        Family::Usb => {
            let usb: Vec<&str> = cat
                .storage
                .values()
                .filter(|m| m.provides == ControllerType::Usb)
                .map(|m| m.model.as_str())
                .collect();
            let _ = writeln!(
                s,
                "  plugs into:    a USB port of {} (one is added when the guest has none)",
                and_list(&usb)
            );
        }
        Family::Drive => {
            if let Some(t) = k.drive_bus {
                let ctl: Vec<&str> = cat
                    .storage
                    .values()
                    .filter(|m| m.provides == t)
                    .map(|m| m.model.as_str())
                    .collect();
                let _ = writeln!(
                    s,
                    "  plugs into:    a {} unit of {} (one is added when needed)",
                    controller_type(t),
                    and_list(&ctl)
                );
            }
        }
    }
    if let Some(c) = &k.controller {
        let _ = writeln!(
            s,
            "  controller:    it is a {c} controller (`devaddr models {c}`)"
        );
    }
    if k.video {
        let _ = writeln!(
            s,
            "  video:         the first one goes to the machine's primary video slot"
        );
    }
    if let Some(n) = k.max_per_guest {
        let _ = writeln!(s, "  limit:         at most {n} per guest");
    }
    if let Some(b) = &k.backend {
        let _ = writeln!(s, "  QEMU backend:  a placeholder {b} in --format qemu");
    }
    if let Some(sd) = &k.standin {
        let _ = writeln!(
            s,
            "  stand-in:      {sd} in --format qemu when no `host:` is given"
        );
    }
    let _ = writeln!(
        s,
        "  hotplug:       {}; live attach (virsh attach-device --live): {}",
        yes_no(k.hotplug),
        yes_no(k.attach)
    );
    s
}
