//! A domain with devaddr's hints ([`super::hints`]), addressed by the integer program
//! under the hints' policy instead of libvirt's rules: libvirt's post-parse defaults
//! (default controllers and models, implicit controllers, virtio-serial ports) are
//! applied as for any domain, then the domain is lowered to a spec — every PCI
//! controller kept at its index and address, every element libvirt gives a PCI address
//! a device (its id the user alias without `ua-`, its kind the catalog kind its element
//! stands for), existing addresses pinned, the hints as the spec's fields — planned, and
//! the plan's addresses and added controllers written back. Everything else of the
//! document (the hints among it) is kept, so planning the result again changes nothing
//! and a device added to it is placed by its hints while nothing else moves.

use super::domain::Dev;
use super::hints::Hints;
use super::policy::Policy;
use super::{emit, fail, lower, pci, ports, postparse, validate, LibvirtOptions, Machine};
use crate::catalog::Catalog;
use crate::spec::{BusType, DeviceEntry, Placement, Spec};
use crate::topology::{Address, Plan};
use crate::xml::{Document, Element};
use crate::Error;
use std::collections::BTreeMap;

/// Where each spec entry came from: the element position (among `<devices>`' element
/// children) of each spec device, by spec position.
struct Lowered {
    spec: Spec,
    catalog: Catalog,
    positions: Vec<usize>,
    /// How a message names each spec device: its element and alias.
    names: Vec<String>,
    /// Elements at fixed addresses, by element position: the machine's builtin
    /// controllers (q35's SATA controller 0; not planned) and chipset functions libvirt
    /// insists on (pinned), written where they have no address.
    fixed: Vec<(usize, crate::topology::PciAddress)>,
}

/// Address `doc` under its hints (see the module documentation).
pub(super) fn address(
    doc: &mut Document,
    m: &Machine,
    hints: &Hints,
    opts: &LibvirtOptions,
    engine: crate::Options<'_>,
    file: &str,
) -> Result<(), Error> {
    let lowered = prepare(doc, m, hints, engine.catalog, file)?;
    let plan = crate::plan_with(&lowered.spec, engine.with_catalog(&lowered.catalog))
        .map_err(|e| located(e, &lowered, file))?;
    write_plan(&mut doc.root, &lowered, &plan, engine.catalog)?;
    super::hinted_firmware::write(&mut doc.root, &plan, engine.catalog)?;
    let devs = finish(doc, m, opts.new_domain, file)?;
    emit::write_back(&mut doc.root, &devs);
    Ok(())
}

/// libvirt's post-parse defaults and virtio-serial ports, written into `doc`; then the
/// domain lowered to a spec under its hints.
fn prepare(
    doc: &mut Document,
    m: &Machine,
    hints: &Hints,
    cat: &Catalog,
    file: &str,
) -> Result<Lowered, Error> {
    let (_, mut devs) = super::read_parsed(doc, file)?;
    postparse::run(Policy::get(), m, &mut devs, file)?;
    ports::virtio_serial(&mut devs, file)?;
    emit::write_back(&mut doc.root, &devs);
    lower_hinted(&doc.root, m, hints, cat, file)
}

/// After the PCI placement: USB ports (as libvirt gives them), the console alias and
/// libvirt's validation; the devices with what is still to write back.
fn finish(doc: &Document, m: &Machine, new_domain: bool, file: &str) -> Result<Vec<Dev>, Error> {
    let policy = Policy::get();
    let (_, mut devs) = super::read_parsed(doc, file)?;
    let all_addressed = devs
        .iter()
        .filter(|d| ports::is_usb(d))
        .all(|d| matches!(&d.addr, super::domain::Addr::Usb { port, .. } if !port.is_empty()));
    if new_domain || all_addressed {
        ports::usb(policy, &mut devs, file)?;
    }
    super::console_alias(&mut devs);
    validate::run(policy, &m.arch, &devs, file)?;
    Ok(devs)
}

/// Hot-add the elements at `new` (positions among `<devices>`' elements) to the running
/// guest `doc` under its hints: devaddr's live hotplug ([`crate::hotplug_additions_with`])
/// of the domain as it is (every address kept, no PCI controller added), the new devices
/// with their hints and the sets that name them. Returns the devices with what is still
/// to write back.
pub(super) fn hot_add(
    doc: &mut Document,
    m: &Machine,
    hints: &Hints,
    new: &std::collections::BTreeSet<usize>,
    engine: crate::Options<'_>,
    file: &str,
) -> Result<Vec<Dev>, Error> {
    let lowered = prepare(doc, m, hints, engine.catalog, file)?;
    let is_new = |i: usize| new.contains(&lowered.positions[i]);
    let new_ids: Vec<&str> = (0..lowered.spec.devices.len())
        .filter(|&i| is_new(i))
        .map(|i| lowered.spec.devices[i].id.as_str())
        .collect();
    let mut running = lowered.spec.clone();
    running.devices = (0..lowered.spec.devices.len())
        .filter(|&i| !is_new(i))
        .map(|i| lowered.spec.devices[i].clone())
        .collect();
    // The guest as it runs: its reserve is what live hotplug consumes, not something to
    // restore by adding ports.
    running.policy.hotplug_reserve = Some(0);
    running.policy.hotplug_reserve_per_node = Some(0);
    let names_new = |set: &Vec<String>| set.iter().any(|id| new_ids.contains(&id.as_str()));
    running.apart.retain(|s| !names_new(s));
    running.together.retain(|s| !names_new(s));
    let mut additions = crate::spec::Additions::devices(
        (0..lowered.spec.devices.len())
            .filter(|&i| is_new(i))
            .map(|i| lowered.spec.devices[i].clone())
            .collect(),
    );
    additions.apart = lowered
        .spec
        .apart
        .iter()
        .filter(|s| names_new(s))
        .cloned()
        .collect();
    additions.together = lowered
        .spec
        .together
        .iter()
        .filter(|s| names_new(s))
        .cloned()
        .collect();
    let opts = engine.with_catalog(&lowered.catalog);
    let located = |e| located(e, &lowered, file);
    let before = crate::plan_with(&running, opts).map_err(located)?;
    let h = crate::hotplug_additions_with(&before, &additions, opts).map_err(located)?;
    write_plan(&mut doc.root, &lowered, &h.plan, engine.catalog)?;
    finish(doc, m, true, file)
}

/// The alias of an element (`<alias name='ua-net0'/>`), if it has one.
fn alias_of(el: &Element) -> Option<String> {
    el.child("alias").and_then(|a| a.attr("name"))
}

/// The domain as a spec under its hints.
fn lower_hinted(
    root: &Element,
    m: &Machine,
    hints: &Hints,
    cat: &Catalog,
    file: &str,
) -> Result<Lowered, Error> {
    let policy = Policy::get();
    // The machine as libvirt knows it (its rules) and as the catalog models it.
    let machine = m
        .rule
        .and_then(|_| cat.machine(&m.name))
        .filter(|c| c.arch == m.arch)
        .ok_or_else(|| {
            fail(
                file,
                root.line,
                "<domain>/<os>/<type>",
                format!(
                    "machine '{}' ({}) has no PCI topology devaddr knows, so its hints cannot \
                     be planned; run `devaddr models` for the machines",
                    m.name, m.arch
                ),
            )
        })?;
    let mut catalog = cat.clone();
    catalog.kinds.push(lower::endpoint_kind());
    catalog.kinds.push(video_kind());
    let mut spec = Spec {
        machine: m.name.clone(),
        policy: hints.policy.clone(),
        ..Default::default()
    };
    let mut positions = Vec::new();
    let mut names = Vec::new();
    let mut fixed = Vec::new();
    let mut counts = BTreeMap::new();
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    let elements: Vec<&Element> = root
        .child("devices")
        .into_iter()
        .flat_map(Element::elements)
        .collect();
    let devs = match root.child("devices") {
        Some(d) => super::read_devices(d, file)?,
        None => Vec::new(),
    };
    for dev in &devs {
        let Some(pos) = dev.pos else { continue };
        let el = elements[pos];
        if dev.is("controller", "pci") {
            let (Some(index), Some(model)) = (dev.index, dev.model.clone()) else {
                continue;
            };
            if index != 0 {
                spec.controllers.push(lower::pci_controller(
                    el,
                    crate::topology::pci_bus_id(index),
                    index,
                    model,
                ));
            }
            continue;
        }
        let flags = pci::device_flags(policy, cat, m, dev).0;
        if flags == 0 {
            continue;
        }
        if let Some(a) = builtin_address(cat, machine, dev) {
            if lower::pci_address(el).is_none() {
                fixed.push((pos, a));
            }
            continue;
        }
        let id = lower::display_id(el, &mut counts);
        if let Some(a) = alias_of(el) {
            aliases.insert(a, id.clone());
        }
        names.push(match alias_of(el) {
            Some(a) => format!("<{}> with alias {a} (line {})", el.name, el.line),
            None => format!("{} (line {})", dev.describe(), el.line),
        });
        let mut e = entry(el, dev, id, flags, m, &catalog);
        // A chipset function libvirt insists on (the PIIX3 USB controller at 00:01.2):
        // pinned, and written like the machine's builtins.
        if e.address.is_none() {
            if let Some(a) = super::chipset::forced_home(policy, m, &devs, dev) {
                let a = crate::topology::PciAddress::new(a.bus, a.slot, a.function);
                e.address = Some(Address::Pci(a));
                fixed.push((pos, a));
            }
        }
        spec.devices.push(e);
        positions.push(pos);
    }
    apply(hints, &mut spec, &aliases, file)?;
    Ok(Lowered {
        spec,
        catalog,
        positions,
        names,
        fixed,
    })
}

/// A bad-input error of the lowered spec, located in the domain: a device's path
/// (`devices[3].numa_node`) names its element and the field (a hint attribute), a set's
/// path (`apart[0][1]`) the hint element.
fn located(e: Error, lowered: &Lowered, file: &str) -> Error {
    match e {
        Error::Several { errors } => Error::Several {
            errors: errors
                .into_iter()
                .map(|e| located(e, lowered, file))
                .collect(),
        },
        Error::Input {
            mut location,
            message,
            code,
        } => {
            let path = location.path.take().unwrap_or_default();
            let device = path
                .strip_prefix("devices[")
                .and_then(|r| r.split_once(']'))
                .and_then(|(i, rest)| Some((i.parse::<usize>().ok()?, rest)));
            let (element, message) = match device {
                Some((i, rest)) if i < lowered.names.len() => {
                    let field = rest.trim_start_matches('.');
                    let message = if field.is_empty() {
                        message
                    } else {
                        format!("{field}: {message}")
                    };
                    (lowered.names[i].clone(), message)
                }
                _ if path.starts_with("apart") || path.starts_with("together") => {
                    let what = path.split('[').next().unwrap_or_default();
                    (format!("<devaddr:{what}> ({path})"), message)
                }
                _ if path.is_empty() => (String::new(), message),
                _ => ("<devaddr:policy>".to_string(), format!("{path}: {message}")),
            };
            location.file = Some(file.to_string());
            location.element = (!element.is_empty()).then_some(element);
            Error::Input {
                location,
                message,
                code,
            }
        }
        other => other,
    }
}

/// The address of the machine's builtin controller `dev` stands for (same controller
/// type and index), if it is one.
fn builtin_address(
    cat: &Catalog,
    machine: &crate::catalog::MachineModel,
    dev: &Dev,
) -> Option<crate::topology::PciAddress> {
    if dev.tag != "controller" {
        return None;
    }
    // A controller without `type` is an IDE controller to libvirt.
    let ty = dev.ty.as_deref().unwrap_or("ide");
    machine
        .builtin_controllers
        .iter()
        .find(|b| {
            Some(b.index) == dev.index
                && cat
                    .storage
                    .get(&b.model)
                    .is_some_and(|s| ty.parse() == Ok(s.provides))
        })
        .map(|b| crate::topology::PciAddress::new(0, b.slot.get(), b.function.get()))
}

/// The device kind of a `<video>` element no catalog kind describes (qxl, vga, bochs…):
/// a video device, so that the first one takes the machine's primary video slot.
const VIDEO_KIND: &str = "libvirt-pci-video";

/// [`VIDEO_KIND`] as a catalog entry.
fn video_kind() -> crate::catalog::Kind {
    crate::yaml::from_str(&format!(
        "{{kind: {VIDEO_KIND}, qemu: '', element: video, family: pci, pci: either, \
         io_bar: none, hotplug: false, attach: false, video: true}}"
    ))
    .expect("the hinted lowering's video kind is a valid catalog kind")
}

/// The spec device of a PCI element: its kind, its address as a pin.
fn entry(
    el: &Element,
    dev: &Dev,
    id: String,
    flags: u32,
    m: &Machine,
    cat: &Catalog,
) -> DeviceEntry {
    let video = (dev.tag == "video").then(|| VIDEO_KIND.to_string());
    let recognized = lower::recognize(el, cat).or(video);
    let generic = recognized.is_none();
    let pcie = flags & pci::flag::PCIE != 0;
    let bus = (generic && m.pcie_root).then_some(if pcie { BusType::Pcie } else { BusType::Pci });
    let integrated = generic && flags & pci::flag::INTEGRATED != 0;
    DeviceEntry {
        id,
        kind: recognized.unwrap_or_else(|| lower::ENDPOINT_KIND.to_string()),
        bus,
        placement: integrated.then_some(Placement::Root),
        address: lower::pci_address(el)
            .filter(|_| !dev.empty_pci_address)
            .map(Address::Pci),
        ..Default::default()
    }
}

/// The hints as the spec's fields, by alias.
fn apply(
    hints: &Hints,
    spec: &mut Spec,
    aliases: &BTreeMap<String, String>,
    file: &str,
) -> Result<(), Error> {
    let unknown = |what: &str, alias: &str| {
        fail(
            file,
            0,
            &format!("<devaddr:{what}>"),
            format!(
                "alias `{alias}`: no PCI device of the domain has <alias name='{alias}'/>; \
                 expected one of {}",
                if aliases.is_empty() {
                    "none (no device has a user alias)".to_string()
                } else {
                    aliases.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        )
    };
    for (alias, fields) in &hints.devices {
        let id = aliases.get(alias).ok_or_else(|| unknown("device", alias))?;
        let d = spec
            .devices
            .iter_mut()
            .find(|d| &d.id == id)
            .expect("every alias names a lowered device");
        // The hint's fields over the device's (each was read as that field already).
        let mut v = serde_json::to_value(&*d).expect("a device entry is JSON");
        if let Some(o) = v.as_object_mut() {
            o.extend(fields.clone());
        }
        *d = serde_json::from_value(v).map_err(|e| {
            fail(
                file,
                0,
                &format!("<devaddr:device alias='{alias}'>"),
                e.to_string(),
            )
        })?;
    }
    let sets = |lists: &[Vec<String>], what: &str| -> Result<Vec<Vec<String>>, Error> {
        lists
            .iter()
            .map(|l| {
                l.iter()
                    .map(|a| aliases.get(a).cloned().ok_or_else(|| unknown(what, a)))
                    .collect()
            })
            .collect()
    };
    spec.apart = sets(&hints.apart, "apart")?;
    spec.together = sets(&hints.together, "together")?;
    Ok(())
}

/// Write the plan's PCI addresses into the elements, and its added PCI controllers.
fn write_plan(
    root: &mut Element,
    lowered: &Lowered,
    plan: &Plan,
    cat: &Catalog,
) -> Result<(), Error> {
    let Some(devices) = root.child_mut("devices") else {
        return Ok(());
    };
    let item_indent = "    ";
    let mut by_pos: BTreeMap<usize, Address> = BTreeMap::new();
    let placed: BTreeMap<&str, &Option<Address>> = plan
        .devices
        .iter()
        .map(|d| (d.id.as_str(), &d.address))
        .collect();
    for (i, d) in lowered.spec.devices.iter().enumerate() {
        let placed = placed.get(d.id.as_str()).copied().and_then(Option::as_ref);
        if let Some(a) = placed.filter(|a| d.address.as_ref() != Some(*a)) {
            by_pos.insert(lowered.positions[i], a.clone());
        }
    }
    for &(pos, a) in &lowered.fixed {
        by_pos.entry(pos).or_insert(Address::Pci(a));
    }
    let mut controllers: BTreeMap<u32, Address> = BTreeMap::new();
    for c in &plan.controllers {
        let given = lowered.spec.controllers.iter().find(|g| g.index == c.index);
        if let (Some(g), Some(a)) = (given, &c.address) {
            if g.address.as_ref() != Some(a) {
                controllers.insert(c.index, a.clone());
            }
        }
    }
    for (pos, el) in devices
        .children
        .iter_mut()
        .filter_map(|n| match n {
            crate::xml::Node::Element(e) => Some(e),
            _ => None,
        })
        .enumerate()
    {
        let index = (el.name == "controller" && el.attr("type").as_deref() == Some("pci"))
            .then(|| el.attr("index").and_then(|i| super::domain::number(&i)))
            .flatten()
            .map(|i| i as u32);
        let addr = by_pos
            .get(&pos)
            .or_else(|| index.and_then(|i| controllers.get(&i)));
        if let Some(Address::Pci(a)) = addr {
            let e = emit::pci_address(a.bus, a.slot, a.function, a.multifunction);
            el.replace_or_append(e, item_indent);
        }
    }
    let given: Vec<u32> = lowered.spec.controllers.iter().map(|c| c.index).collect();
    for c in &plan.controllers {
        if c.index == 0 || given.contains(&c.index) || !cat.pci.contains_key(&c.model) {
            continue;
        }
        let mut el = super::from_plan::controller_element(c, cat)?;
        shift(&mut el, item_indent);
        let r = emit::rank("controller");
        let at = devices
            .elements()
            .enumerate()
            .filter(|(_, e)| {
                emit::rank(&e.name) < r
                    || (e.name == "controller"
                        && (e.attr("type").as_deref() != Some("pci")
                            || e.attr("index")
                                .and_then(|i| super::domain::number(&i))
                                .is_none_or(|i| i <= u64::from(c.index))))
            })
            .map(|(i, _)| i + 1)
            .max()
            .unwrap_or(0);
        devices.insert_element(at, el, "  ");
    }
    Ok(())
}

/// Indent an element built at depth zero (its layout whitespace) by `by`, to sit among
/// siblings indented that much.
fn shift(el: &mut Element, by: &str) {
    for n in &mut el.children {
        match n {
            crate::xml::Node::Text(t) if t.trim().is_empty() && t.starts_with('\n') => {
                *t = t.replacen('\n', &format!("\n{by}"), 1);
            }
            crate::xml::Node::Element(e) => shift(e, by),
            _ => {}
        }
    }
}

/// How many more of each kind the planned domain `planned` takes under its hints:
/// devaddr's capacity ([`crate::capacity_with`]) of the domain lowered to a spec.
pub(super) fn capacity(
    planned: &str,
    hints: &Hints,
    q: &crate::CapacityQuery,
    engine: crate::Options<'_>,
    file: &str,
) -> Result<Vec<crate::CapacityRow>, Error> {
    let doc = super::parse_domain(planned, file)?;
    let (m, _) = super::read_parsed(&doc, file)?;
    let lowered = lower_hinted(&doc.root, &m, hints, engine.catalog, file)?;
    crate::capacity_with(&lowered.spec, q, engine.with_catalog(&lowered.catalog))
        .map_err(|e| located(e, &lowered, file))
}
