//! A libvirt domain lowered to devaddr's plan model, so that `check` of a domain runs the
//! independent verifier ([`crate::verify`]) instead of trusting the addresser.
//!
//! The lowering reads the `<devices>` of a domain document — not the addresser's device
//! list — and keeps only what PCI addressing is about: every PCI controller becomes a
//! plan controller (its model, index, address and `<target>` attributes), every other
//! device element with a PCI `<address>` a plan device of a generic endpoint kind
//! (elements libvirt does not know are skipped, as libvirt skips them). libvirt
//! accepts a conventional or PCIe device on either kind of bus when the address is
//! given (a pci-bridge too: [`crate::verify::Rules::controller_connect`]), and knows nothing of hotplug reserves or firmware I/O windows, so the
//! generic kinds ask for neither. The machine's builtin controllers (q35's SATA
//! controller 0 at 00:1f.2, i440fx's IDE controller at 00:01.1) are the verifier's own
//! and are not lowered. The verifier applies [`crate::verify::Rules::LibvirtDomain`]:
//! QEMU's start-time properties that libvirt passes through as written (multifunction,
//! chassis numbers) are the author's, since `plan` of a domain reproduces libvirt and
//! its output must pass `check`. Findings name the element (and its line) instead of
//! plan ids.

use super::domain::number;
use crate::catalog::{Catalog, Kind};
use crate::spec::{DeviceEntry, Spec, Tunables};
use crate::topology::{Address, ControllerEntry, PciAddress};
use crate::verify::{Finding, Subject};
use crate::xml::Element;
use crate::Error;
use std::collections::BTreeMap;

/// The device kind of a lowered element: a PCI endpoint of either bus type that
/// needs no hotplug and no I/O window.
pub(super) const ENDPOINT_KIND: &str = "libvirt-pci-endpoint";

/// [`ENDPOINT_KIND`] as a catalog entry.
pub(super) fn endpoint_kind() -> Kind {
    crate::yaml::from_str(&format!(
        "{{kind: {ENDPOINT_KIND}, qemu: '', element: '', family: pci, pci: either, \
         io_bar: none, hotplug: false, attach: false}}"
    ))
    .expect("the lowering's endpoint kind is a valid catalog kind")
}

/// A lowered domain: the plan (as a spec the verifier reads), the catalog it refers to,
/// for every plan id the element it stands for, and for every lowered element the id and
/// catalog kind a plan shown to people gives it ([`to_plan`]).
struct Lowered {
    spec: Spec,
    catalog: Catalog,
    names: BTreeMap<String, String>,
    display: BTreeMap<String, (String, Option<String>)>,
}

/// The catalog kind an element stands for, if one of the libvirt element templates
/// (models/libvirt.yaml) describes it: same tag, and the template's type, model and bus
/// where it has them (an interface's or disk's own type — user, network, file, block —
/// is its backend, not its kind).
pub(super) fn recognize(el: &Element, cat: &Catalog) -> Option<String> {
    let d = super::domain::read_device(el, 0, "").ok().flatten()?;
    templates().iter().find_map(|(kind, t)| {
        cat.kind(kind)?;
        let same = |a: &Option<String>, b: &Option<String>| a.is_none() || a == b;
        let backend_type = matches!(d.tag.as_str(), "interface" | "disk");
        (t.tag == d.tag
            && (backend_type || same(&t.ty, &d.ty))
            && same(&t.model, &d.model)
            && same(&t.bus, &d.bus))
        .then(|| kind.clone())
    })
}

/// The device element of each kind in the policy's `elements` table as
/// [`super::domain::read_device`] reads it, placeholders filled with values of the right
/// shape; read once per process (templates that do not read as a device are left out).
fn templates() -> &'static [(String, super::domain::Dev)] {
    static TEMPLATES: std::sync::OnceLock<Vec<(String, super::domain::Dev)>> =
        std::sync::OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let policy = super::policy::Policy::get();
        policy
            .elements
            .iter()
            .filter_map(|(kind, template)| {
                let t = template
                    .replace("{index}", "0")
                    .replace("{ports}", "")
                    .replace("{mac}", "52:54:00:00:00:00")
                    .replace("{dev}", "vda")
                    .replace("{file}", "f")
                    .replace("{host}", "");
                let t = Element::parse(&t).ok()?;
                let t = super::domain::read_device(&t, 0, "").ok().flatten()?;
                Some((kind.clone(), t))
            })
            .collect()
    })
}

/// The id a plan shown to people gives an element: the user alias without its `ua-`
/// prefix (`<alias name='ua-net0'/>` → `net0`), else libvirt's own kind of name (`net0`,
/// the disk's target `vda`, `usb0`, `balloon0`), numbered per name in document order.
pub(super) fn display_id(el: &Element, counts: &mut BTreeMap<String, usize>) -> String {
    if let Some(alias) = el.child("alias").and_then(|a| a.attr("name")) {
        if let Some(id) = super::id_from_alias(&alias) {
            return id.to_string();
        }
    }
    if el.name == "disk" {
        if let Some(dev) = el.child("target").and_then(|t| t.attr("dev")) {
            return dev;
        }
    }
    let base = match el.name.as_str() {
        "interface" => "net".to_string(),
        "memballoon" => "balloon".to_string(),
        "filesystem" => "fs".to_string(),
        "controller" => el.attr("type").unwrap_or_else(|| "ide".into()),
        other => other.to_string(),
    };
    let n = counts.entry(base.clone()).or_default();
    *n += 1;
    format!("{base}{}", *n - 1)
}

/// The device elements of a domain that its plan model leaves out: those with an
/// address of another type than PCI (USB ports, drive units, virtio-serial ports…),
/// each as `ID (TYPE address)`, ID as [`display_id`] names it.
pub(super) fn left_out(root: &Element) -> Vec<String> {
    let mut counts = BTreeMap::new();
    root.child("devices")
        .into_iter()
        .flat_map(Element::elements)
        .filter(|el| super::domain::is_device_tag(&el.name))
        .filter_map(|el| {
            let ty = el.child("address").and_then(|a| a.attr("type"))?;
            (ty != "pci").then(|| format!("{} ({ty} address)", display_id(el, &mut counts)))
        })
        .collect()
}

/// `<interface type='user'> model 'virtio' (line 12)`: how a finding names an element.
fn describe(el: &Element) -> String {
    let mut s = format!("<{}", el.name);
    for a in ["type", "index", "model"] {
        if let Some(v) = el.attr(a) {
            s.push_str(&format!(" {a}='{v}'"));
        }
    }
    s.push('>');
    let model = el.child("model").and_then(|m| m.attr("type"));
    if let (None, Some(m)) = (el.attr("model"), model) {
        s.push_str(&format!(" model '{m}'"));
    }
    if el.line > 0 {
        s.push_str(&format!(" (line {})", el.line));
    }
    s
}

fn num(el: &Element, name: &str) -> Option<u32> {
    el.attr(name)
        .and_then(|v| number(&v))
        .and_then(|n| u32::try_from(n).ok())
}

/// The character data of an element (`<node>1</node>`).
pub(super) fn text(el: &Element) -> Option<String> {
    el.children.iter().find_map(|n| match n {
        crate::xml::Node::Text(t) => Some(t.trim().to_string()),
        _ => None,
    })
}

/// The element's own PCI `<address>`, if it has one: libvirt reads the first `<address>`
/// child (a second one is ignored), so only that one counts.
pub(super) fn pci_address(el: &Element) -> Option<PciAddress> {
    let a = el
        .elements()
        .find(|c| c.name == "address")
        .filter(|c| c.attr("type").as_deref() == Some("pci"))?;
    let (domain, bus) = (num(a, "domain").unwrap_or(0), num(a, "bus").unwrap_or(0));
    // domain, bus and slot all zero is no address to libvirt (it assigns one, or keeps
    // the bare `<address type='pci'/>` of a device that takes no slot).
    if domain == 0 && bus == 0 && num(a, "slot").unwrap_or(0) == 0 {
        return None;
    }
    Some(PciAddress {
        domain,
        bus,
        slot: u8::try_from(num(a, "slot").unwrap_or(0)).ok()?,
        function: u8::try_from(num(a, "function").unwrap_or(0)).ok()?,
        multifunction: a.attr("multifunction").map(|v| v == "on"),
    })
}

/// A `<controller type='pci'>` as a plan controller.
pub(super) fn pci_controller(
    el: &Element,
    id: String,
    index: u32,
    model: String,
) -> ControllerEntry {
    let target = el.child("target");
    let t = |name: &str| target.and_then(|t| num(t, name));
    ControllerEntry {
        id,
        model,
        index,
        numa_node: target
            .and_then(|t| t.child("node"))
            .and_then(text)
            .and_then(|n| number(&n))
            .and_then(|n| u32::try_from(n).ok()),
        hotplug: target.and_then(|t| t.attr("hotplug")).map(|v| v != "off"),
        chassis: t("chassis"),
        port: t("port"),
        chassis_nr: t("chassisNr"),
        bus_nr: t("busNr"),
        address: pci_address(el).map(Address::Pci),
        ..Default::default()
    }
}

/// Whether `el` is the machine's builtin controller of its type and index, at the
/// builtin's address.
pub(super) fn is_builtin(
    cat: &Catalog,
    machine: &crate::catalog::MachineModel,
    el: &Element,
) -> bool {
    // A controller without `type` is an IDE controller to libvirt.
    let ty = Some(el.attr("type").unwrap_or_else(|| "ide".into()));
    let (Some(ty), Some(index), Some(a)) = (ty, num(el, "index"), pci_address(el)) else {
        return false;
    };
    machine.builtin_controllers.iter().any(|b| {
        b.index == index
            && b.slot == a.slot
            && b.function == a.function
            && a.bus == 0
            && cat
                .storage
                .get(&b.model)
                .is_some_and(|m| ty.parse() == Ok(m.provides))
    })
}

/// The firmware a domain boots: UEFI with `<os firmware='efi'>` or a UEFI `<loader>`
/// (`type='pflash'`, or a file whose name says UEFI, OVMF or AAVMF), else the machine's
/// BIOS (UEFI on machines that boot nothing else).
pub(crate) fn domain_firmware(
    root: &Element,
    machine: &crate::catalog::MachineModel,
) -> crate::spec::Firmware {
    use crate::spec::Firmware;
    let os = root.child("os");
    let efi = os.is_some_and(|os| {
        os.attr("firmware").as_deref() == Some("efi")
            || os.child("loader").is_some_and(|l| {
                let file: String = l
                    .children
                    .iter()
                    .filter_map(|n| match n {
                        crate::xml::Node::Text(t) => Some(t.to_ascii_uppercase()),
                        _ => None,
                    })
                    .collect();
                l.attr("type").as_deref() == Some("pflash")
                    || ["OVMF", "AAVMF", "UEFI", "EDK2", "QEMU_EFI"]
                        .iter()
                        .any(|w| file.contains(w))
            })
    });
    if efi || !machine.bios {
        Firmware::Uefi
    } else {
        Firmware::Bios
    }
}

/// Lower the `<devices>` of `root` for the catalog machine `machine`.
fn lower(root: &Element, cat: &Catalog, machine: &crate::catalog::MachineModel) -> Lowered {
    let mut catalog = cat.clone();
    catalog.kinds.push(endpoint_kind());
    // libvirt holds a chipset controller's function only for a controller the domain
    // has (i440fx's IDE at 00:01.1 without an IDE controller is free to libvirt; q35's
    // SATA controller 0 it always adds).
    let listed = |b: &crate::catalog::BuiltinController| {
        root.child("devices")
            .into_iter()
            .flat_map(Element::elements)
            .any(|el| {
                el.name == "controller"
                    && num(el, "index").unwrap_or(0) == b.index
                    && cat.storage.get(&b.model).is_some_and(|m| {
                        el.attr("type").unwrap_or_else(|| "ide".into()).parse() == Ok(m.provides)
                    })
            })
    };
    if let Some(own) = catalog.machines.iter_mut().find(|x| x.name == machine.name) {
        own.builtin_controllers.retain(|b| listed(b));
    }
    let mut spec = Spec {
        machine: machine.name.clone(),
        policy: Tunables {
            hotplug_reserve: Some(0),
            hotplug_reserve_per_node: Some(0),
            firmware: Some(domain_firmware(root, machine)),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut names = BTreeMap::new();
    let mut display = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let devices = root
        .child("devices")
        .into_iter()
        .flat_map(Element::elements);
    for (i, el) in devices.enumerate() {
        // libvirt ignores an element it does not know (a stray `<source>` with an
        // `<address>` is no device), and so does the planner.
        if !super::domain::is_device_tag(&el.name) {
            continue;
        }
        let pci_ctl = el.name == "controller" && el.attr("type").as_deref() == Some("pci");
        if pci_ctl {
            let (Some(index), Some(model)) = (num(el, "index"), el.attr("model")) else {
                continue;
            };
            // The root bus is the verifier's own; libvirt has refused a wrong one.
            if index == 0 {
                continue;
            }
            let id = crate::topology::pci_bus_id(index);
            names.insert(id.clone(), describe(el));
            let mut c = pci_controller(el, id, index, model);
            // libvirt and QEMU take an expander bus without a `<node>`; the plan model
            // has one on every expander. Node 0 stands in: no lowered device asks for
            // a node, so nothing else depends on it.
            if c.numa_node.is_none() && cat.pci.get(&c.model).is_some_and(|m| m.numa) {
                c.numa_node = Some(0);
            }
            spec.controllers.push(c);
        } else if let Some(a) = pci_address(el) {
            if is_builtin(cat, machine, el) {
                continue;
            }
            let id = format!("element{i}");
            names.insert(id.clone(), describe(el));
            display.insert(
                id.clone(),
                (display_id(el, &mut counts), recognize(el, cat)),
            );
            spec.devices.push(DeviceEntry {
                id,
                kind: ENDPOINT_KIND.into(),
                hotplug: Some(false),
                address: Some(Address::Pci(a)),
                ..Default::default()
            });
        }
    }
    Lowered {
        spec,
        catalog,
        names,
        display,
    }
}

/// Run the verifier on the domain `root` (as libvirt completes it) of machine `m`:
/// its findings, each naming the element, in its message and as its subject. A machine
/// the catalog does not describe, or one without PCI in libvirt's policy, has nothing
/// to verify.
pub fn verify(root: &Element, m: &super::Machine, cat: &Catalog) -> Result<Vec<Finding>, Error> {
    let Some(machine) = m.rule.and_then(|_| cat.machine(&m.name)) else {
        return Ok(Vec::new());
    };
    let Lowered {
        spec,
        catalog,
        names,
        ..
    } = lower(root, cat, machine);
    let rules = crate::verify::Rules::LibvirtDomain;
    let mut findings = crate::verify::verify_named(&spec, &catalog, rules, &names)?;
    for f in &mut findings {
        if let Some(element) = f.subject.id().and_then(|id| names.get(id)) {
            f.subject = Subject::Element {
                element: element.clone(),
            };
        }
    }
    Ok(findings)
}

/// The plan model of a domain as libvirt completes it (`root`, of machine `m`): every
/// PCI controller with its index, address and `<target>` numbers, every element with a
/// PCI address a device at that address, and what is left free, planned on `engine`
/// (a fully addressed plan plans to itself). Devices an element template describes get
/// that catalog kind (`virtio-net` for `<interface>` with `<model type='virtio'/>`), the
/// others the generic `libvirt-pci-endpoint` kind, which the returned catalog holds.
pub fn to_plan(
    root: &Element,
    m: &super::Machine,
    engine: crate::Options<'_>,
    file: &str,
) -> Result<(crate::Plan, Catalog), Error> {
    let cat = engine.catalog;
    let machine = m.rule.and_then(|_| cat.machine(&m.name)).ok_or_else(|| {
        super::fail(
            file,
            root.line,
            "<domain>/<os>/<type>",
            format!(
                "machine '{}' ({}) has no PCI topology devaddr knows; run `devaddr models` \
                 for the machines",
                m.name, m.arch
            ),
        )
    })?;
    let Lowered {
        mut spec,
        catalog,
        display,
        ..
    } = lower(root, cat, machine);
    spec.name = root.child("name").and_then(text).filter(|n| !n.is_empty());
    spec.policy.preset = Some(crate::spec::Preset::Libvirt);
    let mut plan = crate::plan_with(&spec, engine.with_catalog(&catalog))?;
    for d in &mut plan.devices {
        if let Some((id, kind)) = display.get(&d.id) {
            d.id = id.clone();
            if let Some(k) = kind {
                d.kind = k.clone();
            }
            d.hotplug = None;
        }
    }
    Ok((plan, catalog))
}

#[cfg(test)]
mod tests {
    /// libvirt's rule for a controller whose address is given widens what a pci-bridge
    /// may plug into (any slot an endpoint may take), and no other controller's.
    #[test]
    fn only_a_pci_bridge_may_sit_where_an_endpoint_may() {
        let domain = |model: &str| {
            format!(
                "<domain><os><type arch='x86_64' machine='q35'>hvm</type></os><devices>\n\
                 <controller type='pci' index='0' model='pcie-root'/>\n\
                 <controller type='pci' index='1' model='{model}'><address type='pci' bus='0' slot='2'/></controller>\n\
                 </devices></domain>"
            )
        };
        let findings = |model: &str| {
            let (doc, m, _) = super::super::read_domain(&domain(model), "t.xml").unwrap();
            super::verify(&doc.root, &m, crate::Catalog::embedded()).unwrap()
        };
        assert_eq!(findings("pci-bridge"), vec![]);
        let f = findings("pcie-switch-upstream-port");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, crate::verify::Rule::ConnectKind);
    }

    /// The lowering on its own (no addresser first): the verifier's findings name the
    /// elements.
    #[test]
    fn findings_name_the_elements() {
        let xml = "<domain><os><type arch='x86_64' machine='q35'>hvm</type></os><devices>\n\
            <interface type='user'><model type='virtio'/><address type='pci' bus='0' slot='3'/></interface>\n\
            <sound model='ich9'><address type='pci' bus='0' slot='3'/></sound>\n\
            <controller type='pci' index='1' model='pcie-root-port'><address type='pci' bus='0' slot='2'/></controller>\n\
            <rng model='virtio'><address type='pci' bus='1' slot='4'/></rng>\n\
            <controller type='sata' index='0'><address type='pci' bus='0' slot='0x1f' function='2'/></controller>\n\
            </devices></domain>";
        let (doc, m, _) = super::super::read_domain(xml, "t.xml").unwrap();
        let f = super::verify(&doc.root, &m, crate::Catalog::embedded()).unwrap();
        assert_eq!(f.len(), 2, "{f:?}");
        // The subject is the element, as data.
        use crate::verify::{Rule, Subject};
        let element = |e: &str| Subject::Element {
            element: e.to_string(),
        };
        assert_eq!(f[0].rule, Rule::UniqueAddress);
        assert_eq!(f[0].subject, element("<sound model='ich9'> (line 3)"));
        assert_eq!(f[1].rule, Rule::SlotRange);
        assert_eq!(f[1].subject, element("<rng model='virtio'> (line 5)"));
        let f: Vec<String> = f.iter().map(ToString::to_string).collect();
        assert!(
            f[0].contains("<sound model='ich9'> (line 3) and <interface type='user'> model 'virtio' (line 2) both use"),
            "{f:?}"
        );
        assert!(
            f[1].starts_with("<rng model='virtio'> (line 5): slot 4 outside pcie-root-port <controller type='pci' index='1' model='pcie-root-port'> (line 4)"),
            "{f:?}"
        );
    }
}
