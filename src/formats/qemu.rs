//! QEMU command-line arguments, one per element, so that
//! `qemu-system-x86_64 $(devaddr plan --format qemu spec.yaml)` starts the planned guest.
//! Backends are placeholders: user-mode networking, null block devices, null chardevs;
//! vfio-pci without `host:` becomes a stand-in endpoint of the same bus type, which
//! [`substitutions`] reports (the CLI prints it as a warning).

use crate::catalog::Catalog;
use crate::topology::{Address, ControllerEntry, PciAddress, Plan};
use crate::vocab::ControllerType;

/// QEMU bus names of the plan's buses and storage controllers.
pub(crate) struct Names<'a> {
    plan: &'a Plan,
    cat: &'a Catalog,
    root_bus: String,
}

impl<'a> Names<'a> {
    pub fn new(plan: &'a Plan, cat: &'a Catalog) -> Self {
        let root_bus = cat
            .machine(&plan.machine)
            .map_or("pcie.0".to_string(), |m| m.root_bus_name.clone());
        Names {
            plan,
            cat,
            root_bus,
        }
    }
    /// QEMU name of PCI bus `index`.
    pub fn pci_bus(&self, index: u32) -> String {
        if index == 0 {
            return self.root_bus.clone();
        }
        self.plan
            .controllers
            .iter()
            .find(|c| c.index == index && self.cat.pci.contains_key(&c.model))
            .map_or(crate::topology::pci_bus_id(index), |c| c.id.clone())
    }
    /// The storage/USB controller providing `provides` with `index`: (qemu bus prefix).
    pub fn storage_bus(&self, provides: ControllerType, index: u32) -> Option<String> {
        let machine = self.cat.machine(&self.plan.machine)?;
        if let Some(b) = machine.builtin_controllers.iter().find(|b| {
            b.index == index
                && self
                    .cat
                    .storage
                    .get(&b.model)
                    .is_some_and(|m| m.provides == provides)
        }) {
            return Some(b.qemu_bus_prefix.clone());
        }
        let from_ctl = self.plan.controllers.iter().find(|c| {
            c.index == index
                && self
                    .cat
                    .storage
                    .get(&c.model)
                    .is_some_and(|m| m.provides == provides)
        });
        if let Some(c) = from_ctl {
            return Some(c.id.clone());
        }
        // A spec device that is a controller: indexes follow spec order after the others.
        self.storage_devices(provides)
            .into_iter()
            .find(|(i, _)| *i == index)
            .map(|(_, id)| id)
    }
    /// Controllers of `provides` declared as spec devices, with their indexes (see
    /// [`crate::topology::storage_device_indexes`]).
    pub fn storage_devices(&self, provides: ControllerType) -> Vec<(u32, String)> {
        crate::topology::storage_device_indexes(self.plan, self.cat, provides)
    }
}

fn addr(a: &PciAddress) -> String {
    let mut s = format!("addr={:#x}.{:#x}", a.slot, a.function);
    if a.multifunction == Some(true) {
        s.push_str(",multifunction=on");
    }
    s
}

/// Controllers in an order where every parent comes before its children.
fn parent_first<'p>(plan: &'p Plan, cat: &Catalog) -> Vec<&'p ControllerEntry> {
    let pci: Vec<&ControllerEntry> = plan
        .controllers
        .iter()
        .filter(|c| cat.pci.get(&c.model).is_some_and(|m| m.connect.is_some()))
        .collect();
    let mut done: Vec<u32> = vec![0];
    let mut out = Vec::new();
    for _ in 0..=pci.len() {
        for c in &pci {
            if done.contains(&c.index) {
                continue;
            }
            let parent = match &c.address {
                Some(Address::Pci(a)) => a.bus,
                _ => 0,
            };
            if done.contains(&parent) {
                done.push(c.index);
                out.push(*c);
            }
        }
    }
    out
}

/// The UEFI firmware's flash drives when the plan boots UEFI (`firmware: uefi`, or a
/// machine that boots nothing else): the code read-only, the variable store as a
/// throw-away copy (`snapshot=on`, a placeholder like the other backends).
fn firmware_drives(plan: &Plan, machine: &crate::catalog::MachineModel) -> Vec<String> {
    let firmware = plan.policy.firmware.unwrap_or_default();
    let uefi = firmware == crate::spec::Firmware::Uefi || !machine.bios;
    match &machine.uefi {
        Some(u) if uefi => vec![
            "-drive".into(),
            format!("if=pflash,format=raw,unit=0,readonly=on,file={}", u.code),
            "-drive".into(),
            format!("if=pflash,format=raw,unit=1,snapshot=on,file={}", u.vars),
        ],
        _ => Vec::new(),
    }
}

/// What the 64-bit MMIO statement asks of QEMU and the firmware: the host bridge's
/// `pci-hole64-size`, OVMF's `X-PciMmio64Mb` (fw_cfg; SeaBIOS ignores it) unless the plan
/// boots BIOS only, and the CPU's `phys-bits` when the policy sets them, with the CPU
/// features the firmware needs to map the aperture (`+pdpe1gb`).
fn mmio64_args(plan: &Plan, machine: &crate::catalog::MachineModel) -> Vec<String> {
    let mut args = Vec::new();
    let features = plan.mmio64.iter().flat_map(|m| &m.cpu_features);
    if let Some(cpu) = &machine.qemu_cpu {
        let opts: Vec<String> = plan
            .policy
            .phys_bits
            .map(|b| format!("phys-bits={b}"))
            .into_iter()
            .chain(features.map(|f| format!("+{f}")))
            .collect();
        if !opts.is_empty() {
            args.extend(["-cpu".into(), format!("{cpu},{}", opts.join(","))]);
        }
    }
    let Some(m) = &plan.mmio64 else {
        return args;
    };
    if let Some(host) = &machine.qemu_pci_host {
        args.extend([
            "-global".into(),
            format!("{host}.pci-hole64-size={}", m.aperture),
        ]);
    }
    let firmware = plan.policy.firmware.unwrap_or_default();
    if machine.uefi.is_some() && machine.bios && firmware != crate::spec::Firmware::Bios {
        args.extend([
            "-fw_cfg".into(),
            format!("name=opt/ovmf/X-PciMmio64Mb,string={}", m.aperture.mib()),
        ]);
    }
    args
}

/// The argument list.
pub fn render(plan: &Plan, cat: &Catalog) -> Vec<String> {
    let names = Names::new(plan, cat);
    let Some(machine) = cat.machine(&plan.machine) else {
        return Vec::new();
    };
    let mut args: Vec<String> = vec!["-machine".into(), machine.qemu_machine.clone()];
    args.extend(machine.qemu_extra.iter().cloned());
    args.push("-nodefaults".into());
    args.extend(firmware_drives(plan, machine));
    args.extend(mmio64_args(plan, machine));
    let nodes = plan.policy.numa_nodes.unwrap_or(0);
    if nodes > 0 {
        args.extend(["-m".into(), format!("{}M", 256 * nodes)]);
        args.extend(["-smp".into(), nodes.to_string()]);
        for k in 0..nodes {
            args.push("-object".into());
            args.push(format!("memory-backend-ram,id=ram-node{k},size=256M"));
            args.push("-numa".into());
            args.push(format!("node,nodeid={k},cpus={k},memdev=ram-node{k}"));
        }
    } else {
        args.extend(["-m".into(), "512M".into()]);
    }
    let mut device = |s: String| {
        args.push("-device".into());
        args.push(s);
    };
    for c in parent_first(plan, cat) {
        let m = &cat.pci[&c.model];
        let Some(Address::Pci(a)) = &c.address else {
            continue;
        };
        let mut s = format!(
            "{},id={},bus={},{}",
            m.qemu.as_deref().unwrap_or_default(),
            c.id,
            names.pci_bus(a.bus),
            addr(a)
        );
        if let Some(v) = c.chassis {
            s.push_str(&format!(",chassis={v}"));
        }
        if let Some(v) = c.port {
            s.push_str(&format!(",port={v:#x}"));
        }
        if let Some(v) = c.chassis_nr {
            s.push_str(&format!(",chassis_nr={v}"));
        }
        if let Some(v) = c.bus_nr {
            s.push_str(&format!(",bus_nr={v}"));
        }
        if m.numa {
            if let Some(n) = c.numa_node {
                s.push_str(&format!(",numa_node={n}"));
            }
        }
        if c.hotplug == Some(false) && m.hotplug_settable {
            s.push_str(",hotplug=off");
        }
        if let (Some(size), true) = (c.pref64_reserve, m.resource_reserve) {
            // Room for a big PCIe device later, which has no I/O BAR: no I/O window.
            s.push_str(&format!(",pref64-reserve={size},io-reserve=0"));
        } else if let (Some(io), true) = (c.io_reserve, m.resource_reserve) {
            s.push_str(&format!(",io-reserve={io}"));
        }
        device(s);
    }
    for c in &plan.controllers {
        if c.builtin == Some(true) || !cat.storage.contains_key(&c.model) {
            continue;
        }
        let Some(k) = cat.kind(&c.model) else {
            continue;
        };
        let Some(Address::Pci(a)) = &c.address else {
            continue;
        };
        let mut s = format!(
            "{},id={},bus={},{}",
            k.qemu,
            c.id,
            names.pci_bus(a.bus),
            addr(a)
        );
        if let Some(p) = c.ports.filter(|_| k.qemu == "qemu-xhci") {
            s.push_str(&format!(",p2={p},p3={p}"));
        }
        device(s);
    }
    let mut backends: Vec<String> = Vec::new();
    for i in 0..plan.devices.len() {
        let Some((dev, back)) = device_args(plan, cat, &names, i) else {
            continue;
        };
        for b in back {
            backends.extend([b.option.to_string(), b.value]);
        }
        device(dev);
    }
    args.extend(backends);
    args
}

/// A QEMU backend a device needs (`-netdev`, `-drive`, `-chardev`): the command-line
/// option and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BackendArg {
    option: &'static str,
    value: String,
}

impl BackendArg {
    fn new(option: &'static str, value: String) -> Self {
        BackendArg { option, value }
    }
}

/// The QEMU device written in place of `d` when it names no host device: the kind's
/// stand-in, one with as large a 64-bit BAR when `d` has a `bar64`.
fn standin<'k>(k: &'k crate::catalog::Kind, d: &crate::spec::DeviceEntry) -> Option<&'k String> {
    if d.host.is_some() {
        return None;
    }
    match d.bar64 {
        Some(_) => k.standin_bar64.as_ref().or(k.standin.as_ref()),
        None => k.standin.as_ref(),
    }
}

/// The `-device` value of plan device `i` and the backends it needs.
fn device_args(
    plan: &Plan,
    cat: &Catalog,
    names: &Names,
    i: usize,
) -> Option<(String, Vec<BackendArg>)> {
    let d = &plan.devices[i];
    let mut backends: Vec<BackendArg> = Vec::new();
    {
        let k = cat.kind(&d.kind)?;
        let qemu = standin(k, d).unwrap_or(&k.qemu).clone();
        let mut s = format!("{qemu},id={}", d.id);
        if let (Some(size), true) = (d.bar64, Some(&qemu) == k.standin_bar64.as_ref()) {
            // A sparse file QEMU creates in the folder and unlinks at once.
            backends.push(BackendArg::new(
                "-object",
                format!("memory-backend-file,id=bar64mem{i},size={size},mem-path=/tmp,share=on"),
            ));
            s.push_str(&format!(",memdev=bar64mem{i}"));
        }
        match &d.address {
            Some(Address::Pci(a)) => {
                s.push_str(&format!(",bus={},{}", names.pci_bus(a.bus), addr(a)))
            }
            Some(Address::Usb(u)) => {
                if let Some(b) = names.storage_bus(ControllerType::Usb, u.bus) {
                    s.push_str(&format!(",bus={b}.0,port={}", u.port));
                }
            }
            Some(Address::Drive(a)) => {
                let provides = k.drive_bus?;
                let b = names.storage_bus(provides, a.controller)?;
                match provides {
                    ControllerType::Sata => s.push_str(&format!(",bus={b}.{}", a.unit)),
                    ControllerType::Ide => {
                        s.push_str(&format!(",bus={b}.{},unit={}", a.bus, a.unit))
                    }
                    _ => s.push_str(&format!(
                        ",bus={b}.{},channel=0,scsi-id={},lun={}",
                        a.bus, a.target, a.unit
                    )),
                }
            }
            None => {}
        }
        if let (Some(h), "vfio-pci") = (&d.host, qemu.as_str()) {
            s.push_str(&format!(",host={h}"));
        }
        if let Some(p) = d.ports.filter(|_| k.qemu == "qemu-xhci") {
            s.push_str(&format!(",p2={p},p3={p}"));
        }
        if k.serial {
            s.push_str(&format!(",serial=devaddr{i}"));
        }
        match k.backend.as_deref() {
            Some("netdev") => {
                backends.push(BackendArg::new("-netdev", format!("user,id=netdev{i}")));
                s.push_str(&format!(",netdev=netdev{i}"));
            }
            Some("drive") => {
                backends.push(BackendArg::new(
                    "-blockdev",
                    format!("driver=null-co,node-name=drive{i}"),
                ));
                s.push_str(&format!(",drive=drive{i}"));
            }
            _ => {}
        }
        if qemu == "pci-serial" {
            backends.push(BackendArg::new("-chardev", format!("null,id=chardev{i}")));
            s.push_str(&format!(",chardev=chardev{i}"));
        }
        Some((s, backends))
    }
}

/// The devices the QEMU output writes as something else than the plan names, one
/// sentence each (the CLI prints them as `warning: …`): a kind with a stand-in
/// (vfio-pci) and no `host:` becomes its stand-in at the planned address, since QEMU
/// cannot create a passed-through device without the host device. `ids`: only those
/// devices (hotplug), else every device of the plan.
pub fn substitutions(plan: &Plan, cat: &Catalog, ids: Option<&[String]>) -> Vec<String> {
    plan.devices
        .iter()
        .filter(|d| ids.is_none_or(|ids| ids.contains(&d.id)))
        .filter(|d| d.host.is_none())
        .filter_map(|d| {
            let k = cat.kind(&d.kind)?;
            let standin = standin(k, d)?;
            Some(format!(
                "device `{}` ({}) has no `host:`, so the QEMU output puts a placeholder {standin} \
                 at its planned address instead of passing a host device through; add \
                 `host: \"0000:65:00.0\"` (the host's PCI address) for the real device",
                d.id, d.kind
            ))
        })
        .collect()
}

/// QMP commands that hot-add some plan devices or storage controllers (by id) to the running guest, one JSON
/// object per line: the backend (`netdev_add`, `blockdev-add`, `chardev-add`) first, then
/// `device_add` with the planned bus and address.
pub fn hotplug_commands(plan: &Plan, cat: &Catalog, ids: &[String]) -> Vec<String> {
    let names = Names::new(plan, cat);
    let mut out = Vec::new();
    for id in ids {
        let found = match plan.devices.iter().position(|d| &d.id == id) {
            Some(i) => device_args(plan, cat, &names, i),
            None => plan.controllers.iter().find(|c| &c.id == id).and_then(|c| {
                let k = cat.kind(&c.model)?;
                let Some(Address::Pci(a)) = &c.address else {
                    return None;
                };
                let dev = format!(
                    "{},id={},bus={},{}",
                    k.qemu,
                    c.id,
                    names.pci_bus(a.bus),
                    addr(a)
                );
                Some((dev, Vec::new()))
            }),
        };
        let Some((dev, backends)) = found else {
            continue;
        };
        for b in backends {
            let mut props = keyval(&b.value);
            let cmd = match b.option {
                "-netdev" => {
                    let ty = b.value.split(',').next().unwrap_or("user").to_string();
                    props.remove(&ty);
                    props.insert("type".into(), ty.into());
                    serde_json::json!({"execute": "netdev_add", "arguments": props})
                }
                "-blockdev" => serde_json::json!({"execute": "blockdev-add", "arguments": props}),
                "-object" => {
                    // QMP is typed: the size a number, `share` a boolean.
                    let ty = b.value.split(',').next().unwrap_or_default().to_string();
                    props.remove(&ty);
                    props.insert("qom-type".into(), ty.into());
                    if let Some(size) = props
                        .get("size")
                        .and_then(|v| v.as_str()?.parse::<crate::spec::ByteSize>().ok())
                    {
                        props.insert("size".into(), size.bytes().into());
                    }
                    if let Some(on) = props.get("share").and_then(|v| v.as_str()) {
                        let on = on == "on";
                        props.insert("share".into(), on.into());
                    }
                    serde_json::json!({"execute": "object-add", "arguments": props})
                }
                _ => {
                    let id = props.get("id").cloned().unwrap_or_default();
                    let backend = b.value.split(',').next().unwrap_or("null").to_string();
                    serde_json::json!({"execute": "chardev-add", "arguments": {"id": id, "backend": {"type": backend, "data": {}}}})
                }
            };
            out.push(cmd.to_string());
        }
        let mut props = keyval(&dev);
        let driver = dev.split(',').next().unwrap_or_default().to_string();
        props.remove(&driver);
        props.insert("driver".into(), driver.into());
        out.push(serde_json::json!({"execute": "device_add", "arguments": props}).to_string());
    }
    out
}

/// `a=b,c=d` as a JSON object of strings (a bare word maps to an empty string).
fn keyval(s: &str) -> serde_json::Map<String, serde_json::Value> {
    s.split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), serde_json::Value::String(v.to_string())),
            None => (kv.to_string(), serde_json::Value::String(String::new())),
        })
        .collect()
}
