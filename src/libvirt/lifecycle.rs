//! A libvirt domain's life after `virsh define`, under libvirt's rules: where libvirt
//! puts a device added to the guest (hotplug) and how many more devices of a kind the
//! guest takes (capacity).
//!
//! Both add device elements to the domain where libvirt inserts them into its device
//! lists and let the libvirt addresser place them, so the answers are libvirt's: a
//! domain with one more device is what `virsh attach-device --config` makes of it (the
//! whole domain addressed again, existing addresses kept, controllers added as libvirt
//! adds them), and a live hot-add is the same first fit restricted to hotpluggable buses
//! with no PCI controller added (libvirt cannot attach one to a running guest).

use super::domain::Dev;
use super::policy::Policy;
use super::{address, emit, fail, parse_domain, read_parsed, LibvirtOptions};
use crate::catalog::{Catalog, Family};
use crate::lifecycle::{CapacityQuery, CapacityRow};
use crate::xml::{Document, Element, Node};
use crate::{Binding, DeviceEntry, Error, Explanation};
use std::collections::{BTreeMap, BTreeSet};

/// Indentation of `<devices>`'s start tag in a domain libvirt writes.
const DEVICES_INDENT: &str = "  ";

/// Attribute marking the elements devaddr adds (removed before the domain is written).
const MARK: &str = "devaddr-new";

/// The most PCI devices of one kind capacity counts (a PCI domain's 256 buses of 32
/// slots hold fewer).
const COUNT_LIMIT: u32 = 8192;

/// The most USB or drive devices of one kind capacity counts: libvirt adds USB hubs and
/// SCSI controllers far beyond what a guest uses, so this count means "at least".
const BUS_COUNT_LIMIT: u32 = 1024;

/// The result of [`hotplug_domain_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HotpluggedDomain {
    /// The whole domain with the new devices in it, addressed as libvirt addresses a
    /// device attached to the running guest; every other element as it was.
    pub xml: String,
    /// What must be attached, in order, each as `(id, device XML)` for `virsh
    /// attach-device --live`: controllers the new devices need (a SCSI controller for a
    /// SCSI disk), then the new devices in the order given. The id is the YAML entry's
    /// id, the element's user alias without `ua-`, or the element's name and position in
    /// the input (`interface0`).
    pub added: Vec<(String, String)>,
}

/// The device elements of device XML as `virsh attach-device` takes it: one device
/// element (`<interface>`, `<disk>`, …), or several inside `<devices>`. Each comes with
/// the id it is named by: its user alias without `ua-`, else its name and position
/// (`interface0`).
pub(super) fn parse_device_xml(text: &str, file: &str) -> Result<Vec<(String, Element)>, Error> {
    let doc = super::parse_xml(text, file)?;
    let root = doc.root;
    let root_line = root.line;
    let els: Vec<Element> = match root.name.as_str() {
        "devices" => root.elements().cloned().collect(),
        "domain" => {
            return Err(fail(
                file,
                root.line,
                "<domain>",
                "found a whole <domain>; expected device XML as `virsh attach-device` takes \
                 it: one device element such as <interface> or <disk>, or several inside \
                 <devices>"
                    .into(),
            ))
        }
        _ => vec![root],
    };
    let mut out = Vec::new();
    for (i, el) in els.into_iter().enumerate() {
        if super::domain::read_device(&el, 0, file)?.is_none() {
            return Err(fail(
                file,
                el.line,
                &format!("<{}>", el.name),
                format!(
                    "<{}> is not a device element libvirt attaches; expected one such as \
                     <interface>, <disk>, <hostdev>, <controller>, <input>, <rng>",
                    el.name
                ),
            ));
        }
        let id = el
            .child("alias")
            .and_then(|a| a.attr("name"))
            .and_then(|a| super::id_from_alias(&a).map(str::to_string))
            .unwrap_or_else(|| format!("{}{i}", el.name));
        out.push((id, el));
    }
    if out.is_empty() {
        return Err(fail(
            file,
            root_line,
            "<devices>",
            "no device element; expected at least one".into(),
        ));
    }
    Ok(out)
}

/// Names already taken in a domain, so that added elements get fresh ones: disk targets,
/// MAC addresses, controller indexes by type, host PCI addresses of passed-through
/// devices.
struct Names {
    guest: String,
    disks: BTreeSet<String>,
    macs: BTreeSet<String>,
    indexes: BTreeMap<String, BTreeSet<u32>>,
    hosts: BTreeSet<String>,
    next_disk: BTreeMap<String, u32>,
    next_host: u32,
}

impl Names {
    fn of(root: &Element) -> Names {
        let mut n = Names {
            guest: root
                .child("name")
                .and_then(|e| {
                    e.children.iter().find_map(|c| match c {
                        Node::Text(t) => Some(t.trim().to_string()),
                        _ => None,
                    })
                })
                .unwrap_or_else(|| "guest".into()),
            disks: BTreeSet::new(),
            macs: BTreeSet::new(),
            indexes: BTreeMap::new(),
            hosts: BTreeSet::new(),
            next_disk: BTreeMap::new(),
            next_host: 0,
        };
        for el in root
            .child("devices")
            .into_iter()
            .flat_map(Element::elements)
        {
            n.take(el);
        }
        n
    }

    /// Record the names `el` takes.
    fn take(&mut self, el: &Element) {
        if let Some(dev) = el.child("target").and_then(|t| t.attr("dev")) {
            if el.name == "disk" {
                self.disks.insert(dev);
            }
        }
        if let Some(mac) = el.child("mac").and_then(|m| m.attr("address")) {
            self.macs.insert(mac.to_ascii_lowercase());
        }
        if el.name == "controller" {
            let ty = el.attr("type").unwrap_or_else(|| "ide".into());
            if let Some(i) = el.attr("index").and_then(|i| super::domain::number(&i)) {
                self.indexes.entry(ty).or_default().insert(i as u32);
            }
        }
        if el.name == "hostdev" {
            if let Some(a) = el.child("source").and_then(|s| s.child("address")) {
                let f = |n: &str| a.attr(n).and_then(|v| super::domain::number(&v));
                self.hosts.insert(format!(
                    "{:?}:{:?}:{:?}.{:?}",
                    f("domain"),
                    f("bus"),
                    f("slot"),
                    f("function")
                ));
            }
        }
    }

    /// A MAC address not in use, stable for `id` in this guest (FNV-1a of both).
    fn mac(&self, id: &str) -> String {
        let mut salt = 0u32;
        loop {
            let h = format!("{}/{id}/{salt}", self.guest)
                .bytes()
                .fold(0xcbf29ce484222325u64, |h, b| {
                    (h ^ b as u64).wrapping_mul(0x100000001b3)
                });
            let mac = format!(
                "52:54:00:{:02x}:{:02x}:{:02x}",
                (h >> 16) as u8,
                (h >> 8) as u8,
                h as u8
            );
            if !self.macs.contains(&mac) {
                return mac;
            }
            salt += 1;
        }
    }

    /// The first disk target name of `prefix` not in use (`vda`, `vdb`, …), searched
    /// from the last one given.
    fn disk(&mut self, prefix: &str) -> String {
        let from = self.next_disk.get(prefix).copied().unwrap_or(0);
        let (n, name) = (from..)
            .map(|n| (n, format!("{prefix}{}", super::from_plan::letters(n))))
            .find(|(_, d)| !self.disks.contains(d))
            .unwrap_or_default();
        self.next_disk.insert(prefix.to_string(), n);
        name
    }

    /// A host PCI address no passed-through device of the guest uses (a stand-in: the
    /// domain is defined, not started, when only its addresses matter).
    fn host(&mut self) -> String {
        let from = self.next_host;
        let (n, (b, s, f)) = (from..)
            .map(|n| (n, (0xffu32.saturating_sub(n / 256), (n % 256) / 8, n % 8)))
            .find(|&(_, (b, s, f))| {
                !self.hosts.contains(&format!(
                    "{:?}:{:?}:{:?}.{:?}",
                    Some(0),
                    Some(b),
                    Some(s),
                    Some(f)
                ))
            })
            .unwrap_or_default();
        self.next_host = n + 1;
        format!("<address domain='0x0000' bus='{b:#04x}' slot='{s:#04x}' function='{f:#x}'/>")
    }

    /// A libvirt element of catalog kind `kind` (its models/libvirt.yaml template) with
    /// fresh names, recorded as taken. `host`: the host PCI address of a passed-through
    /// device (`0000:65:00.0`); None gives a stand-in.
    fn instance(
        &mut self,
        cat: &Catalog,
        kind: &str,
        id: &str,
        host: Option<&str>,
        what: &str,
    ) -> Result<Element, Error> {
        let k = cat.kind(kind).ok_or_else(|| {
            Error::input(
                what,
                format!("unknown device kind `{kind}`{}", cat.kind_hint(kind)),
            )
            .with_code(crate::Code::UnknownName)
        })?;
        let t = Policy::get().elements.get(kind).ok_or_else(|| {
            Error::input(
                what,
                format!("a {kind} has no libvirt device element devaddr can write"),
            )
        })?;
        let prefix = match k.drive_bus {
            Some(crate::vocab::ControllerType::Ide) => "hd",
            Some(_) => "sd",
            None => "vd",
        };
        let host = match host {
            Some(h) => host_address(h, what)?,
            None => self.host(),
        };
        let t = t
            .replace("{mac}", &self.mac(id))
            .replace("{dev}", &self.disk(prefix))
            .replace(
                "{file}",
                &format!("/var/lib/libvirt/images/{}-{id}.img", self.guest),
            )
            .replace("{ports}", "")
            .replace("{host}", &host)
            .replace("{index}", "0");
        let mut el = Element::parse(&t)
            .map_err(|e| Error::input(what, format!("bad element template: {}", e.message)))?;
        if el.name == "controller" {
            let ty = el.attr("type").unwrap_or_default();
            let used = self.indexes.get(&ty);
            let i = (0..).find(|i| used.is_none_or(|u| !u.contains(i)));
            el.set_attr("index", &i.unwrap_or(0).to_string());
        }
        self.take(&el);
        Ok(el)
    }
}

/// `0000:65:00.0` or `65:00.0` as a hostdev `<source>` address.
fn host_address(host: &str, what: &str) -> Result<String, Error> {
    let parts: Vec<&str> = host.split([':', '.']).collect();
    let (d, b, s, f) = match parts.as_slice() {
        [d, b, s, f] => (*d, *b, *s, *f),
        [b, s, f] => ("0000", *b, *s, *f),
        _ => {
            return Err(Error::input(
                what,
                format!("cannot read host address '{host}': expected DDDD:BB:SS.F"),
            ))
        }
    };
    Ok(format!(
        "<address domain='0x{d}' bus='0x{b}' slot='0x{s}' function='0x{f}'/>"
    ))
}

/// YAML device entries (`hotplug --add`) as libvirt elements of their kinds, with their
/// pinned addresses.
fn entries_to_elements(
    entries: &[DeviceEntry],
    cat: &Catalog,
    names: &mut Names,
) -> Result<Vec<(String, Element)>, Error> {
    let mut out = Vec::new();
    for (i, d) in entries.iter().enumerate() {
        let what = format!("add[{i}]");
        let passthrough = Policy::get()
            .elements
            .get(&d.kind)
            .is_some_and(|t| t.contains("{host}"));
        if passthrough && d.host.is_none() {
            return Err(Error::input(
                format!("{what}.host"),
                format!(
                    "device `{}` ({}) passes a host PCI device through: it needs `host:` \
                     (the host's PCI address, e.g. \"0000:65:00.0\"); devaddr does not make one up",
                    d.id, d.kind
                ),
            ));
        }
        let mut el = names.instance(cat, &d.kind, &d.id, d.host.as_deref(), &what)?;
        let alias = super::user_alias(&d.id, &format!("{what}.id"))?;
        super::from_plan::insert_alias(&mut el, &alias);
        if let Some(a) = &d.address {
            el.insert_element(usize::MAX, super::from_plan::address(a), "");
        }
        out.push((d.id.clone(), el));
    }
    Ok(out)
}

/// `el` laid out as libvirt writes a device (two spaces per level, inside `<devices>`).
fn indented(el: &Element) -> Element {
    let mut text = String::new();
    el.pretty(2, &mut text);
    Element::parse(text.trim()).unwrap_or_else(|_| el.clone())
}

/// Where libvirt keeps `el` among the elements `els` of `<devices>` (the element
/// position to insert it at): a disk among the disks of its bus by target name
/// (`virDomainDiskInsert`), a controller among those of its type by index, anything
/// else after the last element of its name (or of a name libvirt writes earlier).
fn insertion_point(els: &[&Element], el: &Element) -> usize {
    let same: Vec<usize> = (0..els.len()).filter(|&i| els[i].name == el.name).collect();
    // Before the last element of the same group that sorts after `el`, else after the
    // group's last element.
    let sorted = |group: &dyn Fn(&Element) -> Option<String>,
                  key: &dyn Fn(&Element) -> Option<u64>| {
        let mut at = None;
        for &i in same.iter().rev() {
            if group(els[i]) == group(el) {
                if key(els[i]) > key(el) {
                    at = Some(i);
                } else if at.is_none() {
                    at = Some(i + 1);
                }
            }
        }
        at
    };
    let at = match el.name.as_str() {
        "disk" => sorted(
            &|e| {
                super::domain::read_device(e, 0, "")
                    .ok()
                    .flatten()
                    .and_then(|d| d.bus)
            },
            &|e| {
                e.child("target")
                    .and_then(|t| t.attr("dev"))
                    .and_then(|d| super::domain::disk_name_index(&d))
                    .map(u64::from)
            },
        ),
        "controller" => sorted(
            &|e| Some(e.attr("type").unwrap_or_else(|| "ide".into())),
            &|e| e.attr("index").and_then(|i| super::domain::number(&i)),
        ),
        _ => None,
    };
    at.or_else(|| same.last().map(|i| i + 1))
        .unwrap_or_else(|| {
            let r = emit::rank(&el.name);
            els.iter()
                .enumerate()
                .filter(|(_, e)| emit::rank(&e.name) <= r)
                .map(|(i, _)| i + 1)
                .max()
                .unwrap_or(0)
        })
}

/// Insert the elements `new` into `<devices>` where libvirt keeps them (see
/// [`insertion_point`]; among themselves, in the order given), laid out as libvirt
/// writes devices. Each place is found among the elements that were there before, so
/// adding many elements takes time linear in their number.
fn insert_all(devices: &mut Element, new: Vec<Element>) {
    let points: Vec<usize> = {
        let els: Vec<&Element> = devices.elements().collect();
        new.iter().map(|el| insertion_point(&els, el)).collect()
    };
    let mut by_point: BTreeMap<usize, Vec<Element>> = BTreeMap::new();
    for (el, at) in new.into_iter().zip(points) {
        by_point.entry(at).or_default().push(indented(&el));
    }
    if devices.elements().next().is_none() {
        for el in by_point.into_values().flatten() {
            let n = devices.elements().count();
            devices.insert_element(n, el, DEVICES_INDENT);
        }
        return;
    }
    // Rebuild the children: each new element with the whitespace that precedes an
    // element child.
    let indent = format!("\n{DEVICES_INDENT}  ");
    let old = std::mem::take(&mut devices.children);
    let mut seen = 0;
    let mut last_el = 0;
    for (i, n) in old.iter().enumerate() {
        if matches!(n, Node::Element(_)) {
            last_el = i;
        }
    }
    for (i, n) in old.into_iter().enumerate() {
        if matches!(n, Node::Element(_)) {
            for el in by_point.remove(&seen).into_iter().flatten() {
                devices.children.push(Node::Element(el));
                devices.children.push(Node::Text(indent.clone()));
            }
            seen += 1;
        }
        devices.children.push(n);
        if i == last_el {
            for el in by_point.remove(&seen).into_iter().flatten() {
                devices.children.push(Node::Text(indent.clone()));
                devices.children.push(Node::Element(el));
            }
        }
    }
}

/// `<devices>` of `root`, created when missing.
fn devices_of(root: &mut Element) -> &mut Element {
    if root.child("devices").is_none() {
        root.insert_element(usize::MAX, Element::new("devices"), "");
    }
    root.child_mut("devices").expect("just ensured")
}

/// Add `new` to the domain `doc` and address it all as libvirt does after
/// `attach-device` (`live`: the new elements need hotpluggable slots). The new elements
/// carry the attribute [`MARK`] (their number in `new`) until the caller removes it.
fn add_and_address(
    doc: &mut Document,
    new: Vec<Element>,
    live: bool,
    engine: crate::Options<'_>,
    file: &str,
) -> Result<Vec<Dev>, Error> {
    let devices = devices_of(&mut doc.root);
    let new = new
        .into_iter()
        .enumerate()
        .map(|(i, el)| el.with_attr(MARK, &i.to_string()))
        .collect();
    insert_all(devices, new);
    let marked: BTreeSet<usize> = devices
        .elements()
        .enumerate()
        .filter(|(_, e)| e.attr(MARK).is_some())
        .map(|(pos, _)| pos)
        .collect();
    if let (true, Some(hints)) = (live, super::hints::read(&doc.root, file)?) {
        // Under devaddr's hints: devaddr's live hotplug, by the hints.
        let (m, _) = read_parsed(doc, file)?;
        return super::hinted::hot_add(doc, &m, &hints, &marked, engine, file);
    }
    let (m, mut devs) = read_parsed(doc, file)?;
    for d in &mut devs {
        d.hot = live && d.pos.is_some_and(|p| marked.contains(&p));
    }
    // `attach-device` parses as `virsh define` of a new domain does (USB ports given).
    let opts = LibvirtOptions { new_domain: true };
    address(&mut devs, &m, &opts, engine, file)?;
    Ok(devs)
}

/// The PCI controller libvirt would have to add (it cannot attach one live).
fn added_pci_controller(devs: &[Dev]) -> Option<&Dev> {
    devs.iter()
        .find(|d| d.pos.is_none() && d.is("controller", "pci"))
}

/// Place the devices of `add` (device XML as `virsh attach-device` takes it, or YAML/JSON
/// device entries as [`crate::hotplug`] takes them; `add_file` names it in errors) into
/// the running guest whose domain is `text`, the way libvirt hot-adds them: nothing that
/// has an address moves, each new device takes the first free hotpluggable slot its bus
/// type allows, and no PCI controller is added (none can be attached to a running
/// guest: with no free hotpluggable slot the answer is infeasible, with the next-boot
/// fix). Non-PCI needs are met as libvirt meets them (a SCSI disk gets its drive
/// address, and a SCSI controller when none has room). What libvirt's parse adds to a
/// new element devaddr adds too, so that libvirt adds nothing to the result: a `<mac>`
/// (stable, from the guest name and the id) to an interface without one, `<driver
/// name='qemu' type='raw'/>` to a local disk without a driver.
///
/// The domain must be complete as libvirt keeps it (`virsh dumpxml` of the guest, or a
/// domain `devaddr check` passes).
///
/// ```
/// let domain = devaddr::libvirt::plan_domain(
///     "<domain type='kvm'><name>g</name><os><type arch='x86_64' machine='q35'>hvm</type></os>\
///      <devices><interface type='user'><model type='virtio'/></interface></devices></domain>",
///     "g.xml", &Default::default())?;
/// let nic = "<interface type='user'><mac address='52:54:00:00:00:02'/><model type='virtio'/></interface>";
/// let h = devaddr::libvirt::hotplug_domain_with(&domain, "g.xml", nic, "nic.xml",
///     devaddr::Options::default())?;
/// // The spare root port libvirt added (index 4, after the NIC's, the USB controller's
/// // and the balloon's) takes the new NIC.
/// assert!(h.added[0].1.contains("bus='0x04' slot='0x00'"));
/// assert!(h.xml.contains("<mac address='52:54:00:00:00:02'/>"));
/// # Ok::<(), devaddr::Error>(())
/// ```
pub fn hotplug_domain_with(
    text: &str,
    file: &str,
    add: &str,
    add_file: &str,
    engine: crate::Options<'_>,
) -> Result<HotpluggedDomain, Error> {
    let cat = engine.catalog;
    let findings = super::check_domain_with(text, file, engine)?;
    if !findings.is_empty() {
        return Err(Error::input(
            "domain",
            format!(
                "the domain is not complete as libvirt keeps it ({}); hot-add into \
                 the running guest's `virsh dumpxml`, or complete it first with `devaddr \
                 plan`:\n{}",
                crate::verify::counted(&findings),
                crate::verify::bulleted(&findings)
            ),
        )
        .in_file(file));
    }
    let mut doc = parse_domain(text, file)?;
    let mut names = Names::of(&doc.root);
    let new = if super::is_domain_xml(add) || add.trim_start().starts_with('<') {
        let els = parse_device_xml(add, add_file)?;
        for (_, el) in &els {
            names.take(el);
        }
        els
    } else {
        let entries = crate::spec::parse_devices(add, add_file)?;
        entries_to_elements(&entries, cat, &mut names).map_err(|e| e.in_file(add_file))?
    };
    let mut new = new;
    for (id, el) in &mut new {
        // libvirt's parse gives a local disk without <driver> the QEMU driver and the
        // raw format.
        let local = matches!(el.attr("type").as_deref(), Some("file" | "block"));
        if el.name == "disk" && local && el.child("driver").is_none() {
            let driver = Element::new("driver")
                .with_attr("name", "qemu")
                .with_attr("type", "raw");
            el.insert_element(0, driver, "");
        }
        if el.name == "interface" && el.child("mac").is_none() {
            let mac = names.mac(id);
            names.macs.insert(mac.clone());
            el.insert_element(0, Element::new("mac").with_attr("address", &mac), "");
        }
        if let Some(kind) = super::lower::recognize(el, cat).and_then(|k| cat.kind(&k)) {
            if !kind.hotplug || !kind.attach {
                return Err(Error::from(
                    Explanation::new(
                        Binding::NotHotpluggable,
                        format!(
                            "{id}: a {} cannot be added to a running guest ({})",
                            kind.kind,
                            if kind.hotplug {
                                "libvirt's attach-device does not take it live"
                            } else {
                                "QEMU cannot hot-plug it"
                            }
                        ),
                        "add it at next boot: `virsh attach-device --config`, or define the \
                         domain with it",
                    )
                    .devices([id.clone()]),
                ));
            }
        }
    }
    let ids: Vec<String> = new.iter().map(|(id, _)| id.clone()).collect();
    let els = new.into_iter().map(|(_, el)| el).collect();
    let devs = add_and_address(&mut doc, els, true, engine, file)?;
    if let Some(c) = added_pci_controller(&devs) {
        let model = c.model.clone().unwrap_or_default();
        return Err(Error::from(
            Explanation::new(
                Binding::LiveCapacity,
                format!(
                    "the running guest has no free hotpluggable PCI slot for {}: libvirt \
                     would have to add a {model}, and no PCI controller can be attached to a \
                     running guest",
                    ids.join(", ")
                ),
                format!(
                    "at next boot: `virsh attach-device --config` (libvirt adds the {model}), \
                     or `devaddr capacity` to see what fits live"
                ),
            )
            .devices(ids),
        ));
    }
    emit::write_back(&mut doc.root, &devs);
    let xml_of = |el: &Element| {
        let mut s = String::new();
        el.pretty(0, &mut s);
        s
    };
    let devices = devices_of(&mut doc.root);
    let mut added = Vec::new();
    // Controllers libvirt added for the new devices come first: a (type, index) names
    // one controller.
    for d in devs
        .iter()
        .filter(|d| d.pos.is_none() && d.tag == "controller")
    {
        let el = devices.elements().find(|e| {
            e.name == "controller"
                && e.attr("type") == d.ty
                && e.attr("index").and_then(|i| super::domain::number(&i)) == d.index.map(u64::from)
        });
        if let Some(el) = el {
            let ty = d.ty.clone().unwrap_or_default();
            added.push((format!("{ty}{}", d.index.unwrap_or(0)), xml_of(el)));
        }
    }
    let mut new: Vec<(usize, String)> = devices
        .elements()
        .filter_map(|e| {
            let i: usize = e.attr(MARK)?.parse().ok()?;
            let mut e = e.clone();
            e.attrs.retain(|a| a.name != MARK);
            Some((i, xml_of(&e)))
        })
        .collect();
    new.sort();
    added.extend(ids.into_iter().zip(new).map(|(id, (_, x))| (id, x)));
    for n in devices.children.iter_mut() {
        if let Node::Element(e) = n {
            e.attrs.retain(|a| a.name != MARK);
        }
    }
    Ok(HotpluggedDomain {
        xml: doc.write(),
        added,
    })
}

/// The largest `n` in 0..=`cap` with `fits(n)`, `fits` taken as monotone (if `n` more
/// fit, fewer do).
fn largest(cap: u32, mut fits: impl FnMut(u32) -> Result<bool, Error>) -> Result<u32, Error> {
    if cap == 0 || !fits(1)? {
        return Ok(0);
    }
    let (mut ok, mut bad) = (1u32, None);
    while bad.is_none() && ok < cap {
        let next = (ok * 2).min(cap);
        if fits(next)? {
            ok = next;
        } else {
            bad = Some(next);
        }
    }
    let Some(mut bad) = bad else { return Ok(ok) };
    while bad - ok > 1 {
        let mid = ok + (bad - ok) / 2;
        if fits(mid)? {
            ok = mid;
        } else {
            bad = mid;
        }
    }
    Ok(ok)
}

/// Whether the first `n` of `instances` (elements of one kind with fresh names) fit
/// into the domain `doc`: libvirt accepts the domain with them (`live`: hot-added, on
/// hotpluggable buses, without a PCI controller added).
fn fits(
    doc: &Document,
    instances: &[Element],
    n: u32,
    live: bool,
    engine: crate::Options<'_>,
    file: &str,
) -> Result<bool, Error> {
    let mut doc = doc.clone();
    let new = instances[..n as usize].to_vec();
    match add_and_address(&mut doc, new, live, engine, file) {
        Ok(devs) => Ok(!live || added_pci_controller(&devs).is_none()),
        // libvirt refuses the domain: they do not fit.
        Err(Error::Input { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// How many more devices of each kind the domain `text` takes, the way libvirt would
/// address them: `next_boot`, defined with that many more (libvirt adds the
/// pcie-root-ports, bridges and storage controllers they need, as `virsh define` and
/// `attach-device --config` do); `live`, hot-added to the running guest (first fit on
/// hotpluggable buses, no PCI controller added). A kind libvirt cannot attach live
/// counts 0 live. The domain is first completed as `virsh define` completes it.
///
/// libvirt places devices without regard to guest NUMA nodes, so `q.node` is refused;
/// every row has `node: None`. A domain with devaddr's hints ([`super::HINTS_NAMESPACE`])
/// is counted by devaddr's program under them instead ([`crate::capacity_with`], per NUMA
/// node). Kinds default to the machine's representative set.
/// Counts stop at 8192 for PCI kinds and at 1024 for USB and drive kinds (libvirt adds
/// USB hubs and SCSI controllers far beyond what a guest uses): there, 1024 means "at
/// least 1024".
///
/// ```
/// let xml = "<domain type='kvm'><name>g</name><os><type arch='x86_64' machine='q35'>hvm</type></os>\
///   <devices><interface type='user'><model type='virtio'/></interface></devices></domain>";
/// let q = devaddr::CapacityQuery::new(vec!["virtio-net".into()], None);
/// let rows = devaddr::libvirt::capacity_domain_with(xml, "g.xml", &q, devaddr::Options::default())?;
/// assert_eq!(rows[0].live, 1); // the spare root port libvirt adds with the first NIC
/// assert!(rows[0].next_boot > 200); // libvirt adds root ports, eight to a slot
/// # Ok::<(), devaddr::Error>(())
/// ```
pub fn capacity_domain_with(
    text: &str,
    file: &str,
    q: &CapacityQuery,
    engine: crate::Options<'_>,
) -> Result<Vec<CapacityRow>, Error> {
    if let Some(hints) = super::hints::read(&parse_domain(text, file)?.root, file)? {
        // Under devaddr's hints: devaddr's capacity of the domain as it plans it.
        let opts = LibvirtOptions { new_domain: true };
        let planned = super::plan_domain_with(text, file, &opts, engine)?;
        return super::hinted::capacity(&planned, &hints, q, engine, file);
    }
    if q.node.is_some() {
        return Err(Error::input(
            "--node",
            "libvirt places the devices of a domain without regard to guest NUMA nodes; \
             --node applies to specs and plans",
        ));
    }
    if q.bar64.is_some() {
        return Err(Error::input(
            "--bar64",
            "libvirt's own addressing knows nothing of 64-bit BAR room; --bar64 applies to \
             specs and plans",
        ));
    }
    let cat = engine.catalog;
    let opts = LibvirtOptions { new_domain: true };
    let planned = super::plan_domain_with(text, file, &opts, engine)?;
    let doc = parse_domain(&planned, file)?;
    let (m, _) = read_parsed(&doc, file)?;
    let machine = m.rule.and_then(|_| cat.machine(&m.name)).ok_or_else(|| {
        fail(
            file,
            doc.root.line,
            "<domain>/<os>/<type>",
            format!(
                "machine '{}' ({}) has no PCI topology devaddr knows; run `devaddr models` \
                 for the machines",
                m.name, m.arch
            ),
        )
    })?;
    let kinds = if q.kinds.is_empty() {
        machine.capacity_kinds.clone()
    } else {
        q.kinds.clone()
    };
    Error::collect(
        kinds
            .iter()
            .filter_map(|k| crate::lifecycle::unknown_kind(cat, k))
            .collect(),
    )?;
    let mut rows = Vec::new();
    for name in &kinds {
        let what = "--kind".to_string();
        let Some(kind) = cat.kind(name) else {
            continue;
        };
        if !Policy::get().elements.contains_key(name) {
            return Err(Error::input(
                what,
                format!("a {name} has no libvirt device element devaddr can write"),
            ));
        }
        let have = doc
            .root
            .child("devices")
            .into_iter()
            .flat_map(Element::elements)
            .filter(|e| super::lower::recognize(e, cat).as_deref() == Some(name.as_str()))
            .count() as u32;
        let limit = match kind.family {
            Family::Pci => COUNT_LIMIT,
            Family::Usb | Family::Drive => BUS_COUNT_LIMIT,
        };
        let cap = kind
            .max_per_guest
            .map_or(limit, |m| m.saturating_sub(have).min(limit));
        let mut names = Names::of(&doc.root);
        let instances = (0..cap)
            .map(|j| names.instance(cat, name, &format!("capacity{j}"), None, &what))
            .collect::<Result<Vec<_>, _>>()?;
        let next_boot = largest(cap, |n| fits(&doc, &instances, n, false, engine, file))?;
        let live = if kind.hotplug && kind.attach {
            let cap = cap.min(next_boot);
            largest(cap, |n| fits(&doc, &instances, n, true, engine, file))?
        } else {
            0
        };
        rows.push(CapacityRow {
            kind: name.clone(),
            node: None,
            live,
            next_boot,
        });
    }
    Ok(rows)
}
