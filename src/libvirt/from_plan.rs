//! A devaddr plan written as a complete libvirt domain that `virsh define` accepts as is:
//! every device and controller with its address, placeholder backends (user-mode NICs,
//! sparse image files), and every default device libvirt would otherwise add stated
//! explicitly (USB controller or `model='none'`, memballoon or `model='none'`, PS/2 on
//! x86), so libvirt adds nothing and moves nothing.

use super::emit::{drive_address, pci_address};
use super::policy::Policy;
use crate::catalog::Catalog;
use crate::topology::{Address, ControllerEntry, Plan};
use crate::vocab::ControllerType;
use crate::xml::Element;
use crate::Error;

pub(super) fn address(a: &Address) -> Element {
    match a {
        Address::Pci(p) => {
            // A plan says multifunction only where it is on.
            let multi = (p.multifunction == Some(true)).then_some(true);
            pci_address(p.bus, p.slot, p.function, multi)
        }
        Address::Drive(d) => drive_address(d.controller, d.bus, d.target, d.unit),
        Address::Usb(u) => Element::new("address")
            .with_attr("type", "usb")
            .with_attr("bus", &u.bus.to_string())
            .with_attr("port", &u.port),
    }
}

/// The prefix libvirt keeps user aliases by (`<alias name='ua-net0'/>`).
pub const USER_ALIAS_PREFIX: &str = "ua-";

/// The user alias that carries a spec id through libvirt: `ua-ID`. libvirt 9.0 keeps a
/// user alias only when it is made of ASCII letters, digits, `_` and `-` (it drops
/// `ua-net.0` or `ua-net 0` on `virsh define` without a word), so an id with any other
/// character is refused rather than lost; `what` names it in the error.
pub fn user_alias(id: &str, what: &str) -> Result<String, Error> {
    let bad: Vec<char> = id
        .chars()
        .filter(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
        .collect();
    if id.is_empty() || !bad.is_empty() {
        let found = if id.is_empty() {
            "it is empty".to_string()
        } else {
            let mut b: Vec<String> = bad.iter().map(|c| format!("{c:?}")).collect();
            b.dedup();
            format!("it contains {}", b.join(", "))
        };
        return Err(Error::input(
            what,
            format!(
                "id `{id}` cannot travel through libvirt as the user alias `{USER_ALIAS_PREFIX}{id}`: \
                 {found}, and libvirt keeps only aliases of ASCII letters, digits, `_` and `-` \
                 (it drops others silently); rename it, e.g. `{}`",
                suggest_alias_id(id)
            ),
        ));
    }
    Ok(format!("{USER_ALIAS_PREFIX}{id}"))
}

/// `id` with every character libvirt refuses in an alias replaced by `-`.
fn suggest_alias_id(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        "dev0".into()
    } else {
        s
    }
}

/// The spec id a user alias carries (`ua-net0` → `net0`); None for libvirt's own
/// aliases and an empty one.
pub fn id_from_alias(alias: &str) -> Option<&str> {
    alias
        .strip_prefix(USER_ALIAS_PREFIX)
        .filter(|s| !s.is_empty())
}

/// Put `<alias name='ALIAS'/>` where libvirt writes it: before the element's own
/// `<address>`, else last.
pub(super) fn insert_alias(el: &mut Element, alias: &str) {
    let at = el
        .elements()
        .position(|c| c.name == "address")
        .unwrap_or(usize::MAX);
    el.insert_element(at, Element::new("alias").with_attr("name", alias), "");
}

fn template(policy: &Policy, key: &str, what: &str) -> Result<String, Error> {
    policy.elements.get(key).cloned().ok_or_else(|| {
        Error::input(
            what,
            format!("'{key}' has no libvirt element devaddr knows; libvirt output cannot express it (use --format yaml, json or qemu)"),
        )
    })
}

pub(super) fn element(text: &str, what: &str) -> Result<Element, Error> {
    Element::parse(text)
        .map_err(|e| Error::input(what, format!("bad element template: {}", e.message)))
}

pub(super) fn letters(mut n: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

pub(super) fn pci_controller(c: &ControllerEntry) -> Element {
    let mut e = Element::new("controller")
        .with_attr("type", "pci")
        .with_attr("index", &c.index.to_string())
        .with_attr("model", &c.model);
    let policy = Policy::get();
    if let Some(name) = policy
        .controllers
        .get(&c.model)
        .and_then(|r| r.name.clone())
    {
        e.insert_element(
            usize::MAX,
            Element::new("model").with_attr("name", &name),
            "",
        );
    }
    let mut t = Element::new("target");
    if let Some(v) = c.chassis_nr {
        t.set_attr("chassisNr", &v.to_string());
    }
    if let Some(v) = c.chassis {
        t.set_attr("chassis", &v.to_string());
    }
    if let Some(v) = c.port {
        t.set_attr("port", &format!("{v:#x}"));
    }
    if let Some(v) = c.bus_nr {
        t.set_attr("busNr", &v.to_string());
    }
    if c.hotplug == Some(false) {
        t.set_attr("hotplug", "off");
    }
    if let Some(n) = c.numa_node {
        let mut node = Element::new("node");
        node.children.push(crate::xml::Node::Text(n.to_string()));
        t.insert_element(0, node, "");
    }
    if !t.attrs.is_empty() || t.elements().next().is_some() {
        e.insert_element(usize::MAX, t, "");
    }
    e
}

/// libvirt's namespace for QEMU arguments it has no element for.
pub(super) const QEMU_NS: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

/// What libvirt 9.0 has no element for, in its QEMU namespace: OVMF's 64-bit aperture
/// (`X-PciMmio64Mb`, fw_cfg, `<qemu:commandline>`) when the plan states 64-bit MMIO and
/// may boot UEFI, and the root ports' 64-bit hotplug room and I/O reserve
/// (`pref64-reserve`, `io-reserve`: `<qemu:override>` of the port's properties, by
/// libvirt's alias `pci.N`).
pub(super) fn qemu_passthrough(plan: &Plan, machine: &crate::catalog::MachineModel) -> Vec<String> {
    let mut out = Vec::new();
    let firmware = plan.policy.firmware.unwrap_or_default();
    let ovmf = machine.uefi.is_some() && machine.bios && firmware != crate::spec::Firmware::Bios;
    if let (Some(m), true) = (&plan.mmio64, ovmf) {
        out.push(format!(
            "<qemu:commandline><qemu:arg value='-fw_cfg'/><qemu:arg \
             value='name=opt/ovmf/X-PciMmio64Mb,string={}'/></qemu:commandline>",
            m.aperture.mib()
        ));
    }
    let ports: String = plan
        .controllers
        .iter()
        .filter_map(|c| {
            let pref64 = c.pref64_reserve.map(|size| {
                format!(
                    "<qemu:property name='pref64-reserve' type='unsigned' value='{}'/>",
                    size.bytes()
                )
            });
            let io = c.io_reserve.or(c.pref64_reserve.map(|_| 0))?;
            Some(format!(
                "<qemu:device alias='pci.{}'><qemu:frontend>{}\
                 <qemu:property name='io-reserve' type='unsigned' value='{io}'/>\
                 </qemu:frontend></qemu:device>",
                c.index,
                pref64.unwrap_or_default()
            ))
        })
        .collect();
    if !ports.is_empty() {
        out.push(format!("<qemu:override>{ports}</qemu:override>"));
    }
    out
}

/// Write `plan` as a libvirt domain.
pub fn plan_to_domain(plan: &Plan, cat: &Catalog) -> Result<String, Error> {
    let policy = Policy::get();
    let machine = cat
        .machine(&plan.machine)
        .ok_or_else(|| cat.unknown_machine(&plan.machine))?;
    let name = plan.name.clone().unwrap_or_else(|| "devaddr-guest".into());
    let uefi = plan.policy.firmware == Some(crate::spec::Firmware::Uefi);
    let mut dom = element(
        &format!(
            "<domain type='qemu'><name>{name}</name><memory unit='MiB'>1024</memory><vcpu>2</vcpu><os{}><type arch='{}' machine='{}'>hvm</type>{}</os></domain>",
            if uefi { " firmware='efi'" } else { "" },
            machine.arch,
            plan.machine,
            // Without secure boot: libvirt would otherwise pick a firmware that needs SMM.
            if uefi { "<firmware><feature enabled='no' name='secure-boot'/></firmware>" } else { "" }
        ),
        "domain",
    )?;
    // Guest NUMA cells for the expander buses' nodes; a CPU model libvirt accepts on TCG.
    let used = plan
        .controllers
        .iter()
        .filter_map(|c| c.numa_node)
        .chain(plan.devices.iter().filter_map(|d| d.numa_node))
        .map(|n| n + 1)
        .max()
        .unwrap_or(0);
    let nodes = plan.policy.numa_nodes.unwrap_or(0).max(used);
    let mut cpu = element("<cpu mode='custom'/>", "cpu")?;
    if machine.arch == "aarch64" {
        cpu.insert_element(0, element("<model>cortex-a57</model>", "cpu")?, "");
    }
    if nodes > 0 {
        let cells: String = (0..nodes)
            .map(|i| {
                format!(
                    "<cell id='{i}' cpus='{i}' memory='{}' unit='MiB'/>",
                    1024 / nodes
                )
            })
            .collect();
        cpu.insert_element(
            usize::MAX,
            element(&format!("<numa>{cells}</numa>"), "cpu")?,
            "",
        );
        if let Some(v) = dom.child_mut("vcpu") {
            v.children = vec![crate::xml::Node::Text(nodes.max(2).to_string())];
        }
    }
    if let Some(f) = policy.domain_features.get(&machine.arch) {
        dom.insert_element(usize::MAX, element(f, "features")?, "");
    }
    if let Some(bits) = plan.policy.phys_bits {
        let max = element(
            &format!("<maxphysaddr mode='emulate' bits='{bits}'/>"),
            "cpu",
        )?;
        cpu.insert_element(usize::MAX, max, "");
    }
    require_cpu_features(&mut cpu, plan, machine, "")?;
    if cpu.elements().next().is_some() {
        dom.insert_element(usize::MAX, cpu, "");
    }
    let mut devices = Element::new("devices");
    let push = |devices: &mut Element, mut el: Element, addr: Option<&Address>| {
        if let Some(a) = addr {
            el.insert_element(usize::MAX, address(a), "");
        }
        devices.insert_element(usize::MAX, el, "");
    };
    // Aliases must be unique in a domain (libvirt refuses a repeated one).
    let mut aliased = std::collections::BTreeSet::new();
    let named = plan
        .controllers
        .iter()
        .filter(|c| !cat.pci.contains_key(&c.model))
        .map(|c| &c.id)
        .chain(plan.devices.iter().map(|d| &d.id));
    for id in named {
        if !aliased.insert(id) {
            return Err(Error::input(
                format!("devices.{id}.id"),
                format!(
                    "a device and a controller are both named `{id}`: the libvirt output names \
                     each by the user alias `{USER_ALIAS_PREFIX}{id}`, and aliases must be unique; \
                     rename one"
                ),
            ));
        }
    }
    let mut has_usb = false;
    for c in &plan.controllers {
        has_usb |= cat
            .storage
            .get(&c.model)
            .is_some_and(|m| m.provides == ControllerType::Usb);
        let mut el = controller_element(c, cat)?;
        let root = c.index == 0 && cat.pci.contains_key(&c.model);
        if let (true, Some(m), Some(_)) = (root, &plan.mmio64, &machine.qemu_pci_host) {
            // libvirt's element for the host bridge's pci-hole64-size.
            let kib = m.aperture.bytes() >> 10;
            let hole = element(
                &format!("<pcihole64 unit='KiB'>{kib}</pcihole64>"),
                "pcihole64",
            )?;
            el.insert_element(usize::MAX, hole, "");
        }
        devices.insert_element(usize::MAX, el, "");
    }
    for el in device_elements(plan, cat, &name)? {
        devices.insert_element(usize::MAX, el, "");
    }
    for d in &plan.devices {
        let kind = cat.kind(&d.kind);
        has_usb |= kind
            .and_then(|k| k.controller.as_ref())
            .and_then(|m| cat.storage.get(m))
            .is_some_and(|m| m.provides == ControllerType::Usb);
    }
    let has_balloon = plan.devices.iter().any(|d| d.kind == "virtio-balloon");
    if !has_usb {
        push(
            &mut devices,
            element("<controller type='usb' index='0' model='none'/>", "usb")?,
            None,
        );
    }
    if !has_balloon {
        push(
            &mut devices,
            element("<memballoon model='none'/>", "memballoon")?,
            None,
        );
    }
    for extra in policy
        .explicit_defaults
        .get(&machine.arch)
        .into_iter()
        .flatten()
    {
        push(&mut devices, element(extra, "defaults")?, None);
    }
    dom.insert_element(usize::MAX, devices, "");
    for (i, extra) in qemu_passthrough(plan, machine).iter().enumerate() {
        if i == 0 {
            dom.set_attr("xmlns:qemu", QEMU_NS);
        }
        dom.insert_element(usize::MAX, element(extra, "qemu")?, "");
    }
    let mut out = String::new();
    dom.pretty(0, &mut out);
    complete_for_libvirt(&out, cat)?;
    Ok(out)
}

/// The written domain as libvirt would take it: libvirt's own rules accept it and add or
/// move nothing (else the plan cannot be written for libvirt, and the error says why).
fn complete_for_libvirt(out: &str, cat: &Catalog) -> Result<(), Error> {
    let engine = crate::Options::default().with_catalog(cat);
    let findings = match super::check_domain_with(out, "domain", engine) {
        Ok(f) => f,
        Err(Error::Input { message, .. }) => {
            return Err(Error::input(
                "devices",
                format!(
                    "libvirt would refuse this plan written as a domain: {message} \
                     (the YAML, JSON and QEMU formats are not bound by this rule)"
                ),
            ))
        }
        Err(e) => return Err(e),
    };
    if findings.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    Err(Error::input(
        "devices",
        format!(
            "the plan written as a domain is not complete for libvirt: {}",
            what.join("; ")
        ),
    ))
}

/// The libvirt element of a plan controller (PCI or storage/USB), with its address.
pub(super) fn controller_element(c: &ControllerEntry, cat: &Catalog) -> Result<Element, Error> {
    let mut el = if cat.pci.contains_key(&c.model) {
        pci_controller(c)
    } else {
        let t = template(Policy::get(), &c.model, &format!("controllers.{}", c.id))?
            .replace("{index}", &c.index.to_string())
            .replace(
                "{ports}",
                &c.ports.map(|p| format!(" ports='{p}'")).unwrap_or_default(),
            );
        let mut el = element(&t, &c.id)?;
        // PCI controllers are named by index (`pci.N`, libvirt's own name for them).
        insert_alias(
            &mut el,
            &user_alias(&c.id, &format!("controllers.{}.id", c.id))?,
        );
        el
    };
    if let Some(a) = &c.address {
        el.insert_element(usize::MAX, address(a), "");
    }
    Ok(el)
}

/// One libvirt device element per plan device (with its address), in plan order.
fn device_elements(plan: &Plan, cat: &Catalog, name: &str) -> Result<Vec<Element>, Error> {
    let policy = Policy::get();
    let mut out = Vec::new();
    let mut disk_n: std::collections::BTreeMap<&str, u32> = Default::default();
    for d in &plan.devices {
        let kind = cat.kind(&d.kind);
        let mut t = template(policy, &d.kind, &format!("devices.{}", d.id))?;
        if let Some(model) = kind.and_then(|k| k.controller.as_ref()) {
            let index = cat
                .storage
                .get(model)
                .map(|m| crate::topology::storage_device_indexes(plan, cat, m.provides))
                .unwrap_or_default()
                .into_iter()
                .find(|(_, id)| *id == d.id)
                .map_or(0, |(i, _)| i);
            t = t.replace("{index}", &index.to_string());
        }
        if t.contains("{dev}") {
            let prefix = match kind.and_then(|k| k.drive_bus) {
                Some(ControllerType::Ide) => "hd",
                Some(_) => "sd",
                None => "vd",
            };
            let n = disk_n.entry(prefix).or_insert(0);
            t = t.replace("{dev}", &format!("{prefix}{}", letters(*n)));
            *n += 1;
        }
        if t.contains("{index}") {
            // Controllers written as devices (virtio-serial): numbered per kind.
            let n = plan
                .devices
                .iter()
                .take_while(|o| o.id != d.id)
                .filter(|o| o.kind == d.kind)
                .count();
            t = t.replace("{index}", &n.to_string());
        }
        if t.contains("{mac}") {
            // A stable MAC from the guest name and device id (FNV-1a).
            let h = format!("{name}/{}", d.id)
                .bytes()
                .fold(0xcbf29ce484222325u64, |h, b| {
                    (h ^ b as u64).wrapping_mul(0x100000001b3)
                });
            t = t.replace(
                "{mac}",
                &format!(
                    "52:54:00:{:02x}:{:02x}:{:02x}",
                    (h >> 16) as u8,
                    (h >> 8) as u8,
                    h as u8
                ),
            );
        }
        t = t.replace(
            "{file}",
            &format!("/var/lib/libvirt/images/{name}-{}.img", d.id),
        );
        t = t.replace(
            "{ports}",
            &d.ports.map(|p| format!(" ports='{p}'")).unwrap_or_default(),
        );
        if t.contains("{host}") {
            let host = d.host.as_deref().ok_or_else(|| {
                Error::input(
                    format!("devices.{}.host", d.id),
                    "a passed-through device needs its host PCI address (host: 0000:65:00.0) for libvirt output",
                )
            })?;
            let parts: Vec<&str> = host.split([':', '.']).collect();
            let (dom_, bus, slot, func) = match parts.as_slice() {
                [a, b, c, d] => (*a, *b, *c, *d),
                [b, c, d] => ("0000", *b, *c, *d),
                _ => {
                    return Err(Error::input(
                        format!("devices.{}.host", d.id),
                        format!("cannot read host address '{host}': expected DDDD:BB:SS.F"),
                    ))
                }
            };
            t = t.replace(
                "{host}",
                &format!("<address domain='0x{dom_}' bus='0x{bus}' slot='0x{slot}' function='0x{func}'/>"),
            );
        }
        let mut el = element(&t, &d.id)?;
        insert_alias(
            &mut el,
            &user_alias(&d.id, &format!("devices.{}.id", d.id))?,
        );
        if let Some(a) = &d.address {
            el.insert_element(usize::MAX, address(a), "");
        }
        out.push(el);
    }
    Ok(out)
}

/// The device XML of some plan devices or controllers (by id), for `virsh attach-device`:
/// one element each, with its planned address. Names, MACs and disk targets are those the whole
/// domain gets from [`plan_to_domain`].
pub fn device_xml(
    plan: &Plan,
    cat: &Catalog,
    ids: &[String],
) -> Result<Vec<(String, String)>, Error> {
    let name = plan.name.clone().unwrap_or_else(|| "devaddr-guest".into());
    let els = device_elements(plan, cat, &name)?;
    let mut out = Vec::new();
    for id in ids {
        let el = match plan.devices.iter().position(|d| &d.id == id) {
            Some(i) => els[i].clone(),
            None => match plan.controllers.iter().find(|c| &c.id == id) {
                Some(c) => controller_element(c, cat)?,
                None => return Err(Error::input(id.clone(), "no such device in the plan")),
            },
        };
        let mut text = String::new();
        el.pretty(0, &mut text);
        out.push((id.clone(), text));
    }
    Ok(out)
}

/// Require in `cpu` (a domain's `<cpu>`, its start tag indented by `indent`) the CPU
/// features the plan's 64-bit aperture needs (`<feature policy='require' name='pdpe1gb'/>`),
/// each once. libvirt takes features only with a CPU model: a custom CPU without one
/// names the machine's (`qemu64`), which is QEMU's default CPU anyway.
pub(super) fn require_cpu_features(
    cpu: &mut Element,
    plan: &Plan,
    machine: &crate::catalog::MachineModel,
    indent: &str,
) -> Result<(), Error> {
    let features = plan.mmio64.iter().flat_map(|m| &m.cpu_features);
    for f in features {
        let custom = cpu.attr("mode").is_none_or(|m| m == "custom");
        if custom && cpu.child("model").is_none() {
            if let Some(model) = &machine.qemu_cpu {
                let m = element(&format!("<model fallback='allow'>{model}</model>"), "cpu")?;
                cpu.insert_element(0, m, indent);
            }
        }
        let present = cpu
            .elements()
            .any(|e| e.name == "feature" && e.attr("name").as_deref() == Some(f.as_str()));
        if !present {
            let el = element(&format!("<feature policy='require' name='{f}'/>"), "cpu")?;
            let at = cpu
                .elements()
                .position(|e| e.name == "numa")
                .unwrap_or(usize::MAX);
            cpu.insert_element(at, el, indent);
        }
    }
    Ok(())
}
