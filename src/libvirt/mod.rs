//! libvirt domain XML in and out, addressed the way libvirt's QEMU driver does it.
//!
//! [`plan_domain`] reads a domain, applies libvirt's post-parse defaults (root bus,
//! default USB/SATA/memballoon, default models, drive addresses from target names,
//! implicit controllers), assigns virtio-serial, PCI (libvirt's two passes: the dry run
//! decides which controllers are added, the real pass places controllers first, then
//! devices group by group, first fit) and optionally USB addresses, and writes the same
//! document back with every address and added controller filled in. Every element and
//! attribute devaddr does not own is kept as it was.
//!
//! ```
//! let xml = r#"<domain type='kvm'>
//!   <name>demo</name>
//!   <os><type arch='x86_64' machine='q35'>hvm</type></os>
//!   <devices>
//!     <interface type='user'><model type='virtio'/></interface>
//!   </devices>
//! </domain>"#;
//! let out = devaddr::libvirt::plan_domain(xml, "demo.xml", &Default::default())?;
//! // The NIC gets its own pcie-root-port (index 1 at 00:01.0), libvirt's choice.
//! assert!(out.contains("<controller type='pci' index='1' model='pcie-root-port'>"));
//! assert!(out.contains("bus='0x01' slot='0x00' function='0x0'"));
//! # Ok::<(), devaddr::Error>(())
//! ```

mod chipset;
mod domain;
mod emit;
mod from_plan;
mod hinted;
mod hinted_firmware;
mod hints;
mod ilp;
mod lifecycle;
mod lower;
mod pci;
mod policy;
mod ports;
mod postparse;
mod refusals;
mod validate;

use crate::error::Location;
use crate::verify::{Finding, Rule, Subject};
use crate::xml::{Document, Element};
use crate::Error;
use domain::Dev;
pub use from_plan::{device_xml, id_from_alias, plan_to_domain, user_alias, USER_ALIAS_PREFIX};
pub use hints::HINTS_NAMESPACE;
pub use lifecycle::{capacity_domain_with, hotplug_domain_with, HotpluggedDomain};
use policy::{MachineRule, Policy};

/// Knobs of the libvirt policy.
#[derive(Clone, Debug, Default)]
pub struct LibvirtOptions {
    /// Address the domain as `virsh define` does for a *new* domain (libvirt's "ABI
    /// update" parse): USB devices get ports and USB hubs are added when ports run out.
    /// Off (the default), devaddr does what libvirt does when it loads a stored
    /// configuration — and what libvirt's own test suite expects — USB devices keep no
    /// address and no hub is added.
    pub new_domain: bool,
}

/// The machine of a domain and libvirt's rules for it.
pub struct Machine {
    /// The domain's machine type as written (`pc-q35-9.2`).
    pub name: String,
    /// The domain's architecture (`x86_64`).
    pub arch: String,
    /// libvirt's rules for that machine family (models/libvirt.yaml), if it is known.
    pub rule: Option<&'static MachineRule>,
    /// Whether the root bus is `pcie-root` (PCI Express) rather than `pci-root`.
    pub pcie_root: bool,
}

impl Machine {
    fn root(&self) -> Option<String> {
        self.rule.map(|r| r.root.clone())
    }
}

/// A bad-input error at an element of the domain.
pub(crate) fn fail(file: &str, line: usize, path: &str, message: String) -> Error {
    // `<controller type='usb' index='1'>` is an element; `XML` or a YAML-like path is not.
    let element = path.starts_with('<');
    Error::Input {
        location: Box::new(Location {
            file: Some(file.to_string()),
            path: (!element).then(|| path.to_string()),
            element: element.then(|| path.to_string()),
            line: (line > 0).then_some(line),
            ..Default::default()
        }),
        code: if path == "XML" {
            crate::Code::Syntax
        } else {
            crate::Code::Invalid
        },
        message,
    }
}

/// Whether `text` looks like a libvirt domain (its root element is `<domain>`).
pub fn is_domain_xml(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('<') && {
        match Document::parse(text) {
            Ok(d) => d.root.name == "domain",
            Err(_) => t.starts_with("<domain") || t.starts_with("<?xml"),
        }
    }
}

/// The primary video: the one marked `primary='yes'`, else the first; none when it
/// takes no PCI address (none, ramfb).
fn primary_video(policy: &Policy, devs: &[Dev]) -> Option<usize> {
    let i = devs
        .iter()
        .position(|d| d.tag == "video" && d.primary)
        .or_else(|| devs.iter().position(|d| d.tag == "video"))?;
    let d = &devs[i];
    let rule = policy.device_rule("video", None, d.model.as_deref(), None)?;
    (rule.connect != policy::DeviceConnect::None).then_some(i)
}

/// A controller's place in libvirt's controller list: the written ones by `seq`, then
/// the added ones in the order they were added (`i`, their place in the device list).
fn controller_rank(d: &Dev, i: usize) -> (usize, usize) {
    match d.pos {
        Some(_) => (0, d.seq),
        None => (1, i),
    }
}

/// The order in which libvirt places unaddressed PCI devices: by group; controllers
/// as `def->controllers` keeps them (the written ones in the parser's order, then the
/// ones libvirt added, in the order it added them: defaults, implicit controllers,
/// virtio-serial controllers for ports, PCI controllers); virtio disks by target name;
/// everything else in document order.
fn placement_order(policy: &Policy, cat: &crate::Catalog, m: &Machine, devs: &[Dev]) -> Vec<usize> {
    let primary = primary_video(policy, devs);
    let mut keyed: Vec<((u8, usize, u64, usize), usize)> = devs
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let (flags, group) = pci::device_flags(policy, cat, m, d);
            if flags == 0 {
                return None;
            }
            let key = match d.tag.as_str() {
                "controller" => {
                    let (added, seq) = controller_rank(d, i);
                    (group, added, seq as u64, i)
                }
                "disk" => (group, 0, d.index.unwrap_or(0) as u64, i),
                // libvirt moves the primary video to the front of the list.
                "video" => (group, usize::from(Some(i) != primary), 0, i),
                // A hostdev interface is one of libvirt's host devices, listed before
                // the `<hostdev>` elements (it joins the list when the NIC is read).
                "hostdev" => (group, 1, 0, i),
                _ => (group, 0, 0, i),
            };
            Some((key, i))
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// Add a controller libvirt creates (kept after the existing ones).
fn insert_controller(devs: &mut Vec<Dev>, c: Dev) {
    devs.push(c);
}

/// The machine libvirt 9.0 gives a domain whose `<type>` names none: QEMU's default
/// machine of the architecture, else the first one QEMU lists. Both `plan_domain` and
/// `check_domain` read the machine here, so they always agree. Observed with `virsh
/// define` (libvirt 9.0, QEMU 7.2): x86 gets `pc-i440fx-7.2` (the `pc` alias); ARM,
/// where QEMU has no default, gets `integratorcp` (libvirt 9.0 does not prefer `virt`).
/// Other architectures: `pc`, which no rule matches for them, so they have no PCI here.
fn default_machine(arch: &str) -> &'static str {
    if arch.starts_with("aarch") || arch.starts_with("arm") {
        "integratorcp"
    } else {
        "pc"
    }
}

fn machine_of(root: &Element, file: &str) -> Result<Machine, Error> {
    let policy = Policy::get();
    let ty = root
        .child("os")
        .and_then(|o| o.child("type"))
        .ok_or_else(|| {
            fail(
                file,
                root.line,
                "<domain>/<os>",
                "missing <os><type arch='…' machine='…'>: devaddr needs the guest architecture and machine type".into(),
            )
        })?;
    let arch = ty.attr("arch").unwrap_or_else(|| "x86_64".into());
    let name = ty
        .attr("machine")
        .unwrap_or_else(|| default_machine(&arch).into());
    let rule = policy.machines.iter().find(|r| r.matches(&name, &arch));
    Ok(Machine {
        pcie_root: rule.is_some_and(|r| r.root == "pcie-root"),
        name,
        arch,
        rule,
    })
}

/// The `<devices>` element's children, as devices.
fn read_devices(devices: &Element, file: &str) -> Result<Vec<Dev>, Error> {
    let mut devs = Vec::new();
    for (pos, el) in devices.elements().enumerate() {
        if let Some(d) = domain::read_device(el, pos, file)? {
            devs.push(d);
        }
    }
    Ok(devs)
}

/// Address a parsed domain's devices the way libvirt would, on the catalog and solver
/// of `engine`.
fn address(
    devs: &mut Vec<Dev>,
    m: &Machine,
    opts: &LibvirtOptions,
    engine: crate::Options<'_>,
    file: &str,
) -> Result<(), Error> {
    let policy = Policy::get();
    postparse::run(policy, m, devs, file)?;
    ports::virtio_serial(devs, file)?;
    ports::dimm_slots(devs);
    postparse::virtio_mmio(m, devs);
    validate::pci_wanted(policy, engine.catalog, m, devs, file)?;
    pci::assign(policy, engine, m, devs, file)?;
    // Loading a stored definition, libvirt builds the USB address set only when every
    // USB device already has a port (then it checks them and changes nothing).
    let all_addressed = devs
        .iter()
        .filter(|d| ports::is_usb(d))
        .all(|d| matches!(&d.addr, domain::Addr::Usb { port, .. } if !port.is_empty()));
    if opts.new_domain || all_addressed {
        ports::usb(policy, devs, file)?;
    }
    console_alias(devs);
    validate::run(policy, &m.arch, devs, file)
}

/// The first `<console>`, when it stands for the first `<serial>`: its target is serial
/// (written or, without a target type, by default) and a serial port exists. libvirt
/// keeps such a console as an alias of serial[0] and writes it out as a copy of that
/// serial port, address included.
fn aliased_console(devs: &[Dev]) -> Option<(usize, usize)> {
    let console = devs.iter().position(|d| d.tag == "console")?;
    let serial = devs.iter().position(|d| d.tag == "serial")?;
    matches!(devs[console].ty.as_deref(), None | Some("serial")).then_some((console, serial))
}

/// Give an aliased console[0] the address of serial[0].
fn console_alias(devs: &mut [Dev]) {
    if let Some((console, serial)) = aliased_console(devs) {
        let written = devs[console]
            .written_addr
            .clone()
            .unwrap_or(domain::Addr::None);
        devs[console].addr = devs[serial].addr.clone();
        if devs[console].addr != written {
            devs[console].addr_new = true;
        }
    }
}

/// Parse a domain document: the tree, its machine and its devices.
fn read_domain(text: &str, file: &str) -> Result<(Document, Machine, Vec<Dev>), Error> {
    let doc = parse_domain(text, file)?;
    let (m, devs) = read_parsed(&doc, file)?;
    Ok((doc, m, devs))
}

/// Parse well-formed XML, or the error naming the file and line.
fn parse_xml(text: &str, file: &str) -> Result<Document, Error> {
    Document::parse(text).map_err(|e| {
        fail(
            file,
            e.line,
            "XML",
            format!("not well-formed XML: {}", e.message),
        )
    })
}

/// Parse the text of a domain document (well-formed XML whose root is `<domain>`).
fn parse_domain(text: &str, file: &str) -> Result<Document, Error> {
    let doc = parse_xml(text, file)?;
    if doc.root.name != "domain" {
        return Err(fail(
            file,
            doc.root.line,
            &format!("<{}>", doc.root.name),
            "expected a libvirt <domain> document".into(),
        ));
    }
    Ok(doc)
}

/// The machine and the devices of a parsed domain document.
fn read_parsed(doc: &Document, file: &str) -> Result<(Machine, Vec<Dev>), Error> {
    let m = machine_of(&doc.root, file)?;
    refusals::run(Policy::get(), &doc.root, &m, false, file)?;
    let devs = match doc.root.child("devices") {
        Some(devices) => read_devices(devices, file)?,
        None => Vec::new(),
    };
    Ok((m, devs))
}

/// Plan a libvirt domain with the built-in catalog and the default solver: read it,
/// assign every address and add every controller libvirt would, and return the domain
/// XML with all of it filled in. See [`plan_domain_with`].
pub fn plan_domain(text: &str, file: &str, opts: &LibvirtOptions) -> Result<String, Error> {
    plan_domain_with(text, file, opts, crate::Options::default())
}

/// [`plan_domain`] on an explicit engine: the buses (what each controller model
/// accepts, its slots) come from `engine.catalog`, and libvirt's controller growth is
/// solved with `engine.backend` within `engine.work_limit`.
pub fn plan_domain_with(
    text: &str,
    file: &str,
    opts: &LibvirtOptions,
    engine: crate::Options<'_>,
) -> Result<String, Error> {
    Ok(plan_domain_warned(text, file, opts, engine)?.0)
}

/// [`plan_domain_with`], and the warnings about the domain as libvirt defines it: a PCI
/// controller libvirt's addressing plugs into a bus below itself (a loop `virsh define`
/// accepts and QEMU cannot build). The CLI prints them on stderr.
///
/// ```
/// let xml = "<domain type='kvm'><name>loop</name>\
///   <os><type arch='x86_64' machine='q35'>hvm</type></os><devices>\
///   <controller type='pci' index='0' model='pcie-root'/>\
///   <controller type='pci' model='pcie-switch-upstream-port'/>\
///   <controller type='pci' model='pcie-switch-downstream-port'/>\
///   </devices></domain>";
/// let (out, warnings) = devaddr::libvirt::plan_domain_warned(xml, "loop.xml",
///     &Default::default(), devaddr::Options::default())?;
/// assert!(out.contains("bus='0x02'"));
/// assert!(warnings[0].contains("QEMU cannot build the loop"));
/// # Ok::<(), devaddr::Error>(())
/// ```
pub fn plan_domain_warned(
    text: &str,
    file: &str,
    opts: &LibvirtOptions,
    engine: crate::Options<'_>,
) -> Result<(String, Vec<String>), Error> {
    let mut doc = parse_domain(text, file)?;
    let (_, loops) = address_document(&mut doc, opts, engine, file)?;
    let warnings = loops.into_iter().map(|w| format!("{file}: {w}")).collect();
    Ok((doc.write(), warnings))
}

/// Address a parsed domain document in place: under its devaddr hints when it has them
/// ([`hints`], the integer program under their policy), else by libvirt's rules. Returns
/// the machine and the warnings about the result (controller loops libvirt defines).
fn address_document(
    doc: &mut Document,
    opts: &LibvirtOptions,
    engine: crate::Options<'_>,
    file: &str,
) -> Result<(Machine, Vec<String>), Error> {
    let (m, mut devs) = read_parsed(doc, file)?;
    if opts.new_domain {
        refusals::run(Policy::get(), &doc.root, &m, true, file)?;
    }
    // Under hints, devaddr's own program places the controllers: no loop.
    let loops = match hints::read(&doc.root, file)? {
        Some(h) => {
            hinted::address(doc, &m, &h, opts, engine, file)?;
            Vec::new()
        }
        None => {
            address(&mut devs, &m, opts, engine, file)?;
            emit::write_back(&mut doc.root, &devs);
            validate::controller_loops(&devs)
        }
    };
    Ok((m, loops))
}

/// A libvirt domain as libvirt completes it, in devaddr's plan model: what
/// `devaddr plan DOMAIN --format yaml|json|tree` shows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DomainPlan {
    /// The plan: the domain's PCI controllers, every element with a PCI address as a
    /// device (its id the user alias without `ua-`, else a libvirt-style name such as
    /// `net0` or the disk target `vda`), and what is left free.
    pub plan: crate::Plan,
    /// The catalog the plan refers to: the engine's, plus the generic
    /// `libvirt-pci-endpoint` kind of elements no catalog kind describes. Render the plan
    /// with it ([`crate::formats::render`]).
    pub catalog: crate::Catalog,
    /// The elements the plan leaves out, as `ID (TYPE address)`: those with an address
    /// of another type than PCI (USB ports, drive units). The CLI warns about them.
    pub left_out: Vec<String>,
}

/// Address a libvirt domain as [`plan_domain_with`] does and return it in devaddr's plan
/// model (see [`DomainPlan`]).
///
/// ```
/// let xml = "<domain type='kvm'><name>demo</name>\
///   <os><type arch='x86_64' machine='q35'>hvm</type></os><devices>\
///   <interface type='user'><model type='virtio'/></interface></devices></domain>";
/// let dp = devaddr::libvirt::domain_plan_with(xml, "demo.xml", &Default::default(),
///     devaddr::Options::default())?;
/// let net = dp.plan.devices.iter().find(|d| d.id == "net0").unwrap();
/// assert_eq!(net.kind, "virtio-net");
/// assert_eq!(net.address.as_ref().unwrap().to_string(), "pci 0000:01:00.0");
/// # Ok::<(), devaddr::Error>(())
/// ```
pub fn domain_plan_with(
    text: &str,
    file: &str,
    opts: &LibvirtOptions,
    engine: crate::Options<'_>,
) -> Result<DomainPlan, Error> {
    let mut doc = parse_domain(text, file)?;
    let (m, loops) = address_document(&mut doc, opts, engine, file)?;
    if let Some(first) = loops.first() {
        return Err(fail(
            file,
            doc.root.line,
            "<domain>",
            format!(
                "{first}. devaddr's plan model (--format yaml, json, tree, dot, svg) has no \
                 place for such a loop: --format libvirt writes the domain as libvirt defines it"
            ),
        ));
    }
    let (plan, catalog) = lower::to_plan(&doc.root, &m, engine, file)?;
    let left_out = lower::left_out(&doc.root);
    Ok(DomainPlan {
        plan,
        catalog,
        left_out,
    })
}

/// Check a hand-written domain with the built-in catalog. See [`check_domain_with`].
pub fn check_domain(text: &str, file: &str) -> Result<Vec<Finding>, Error> {
    check_domain_with(text, file, crate::Options::default())
}

/// Check a hand-written domain: every device must already have the address libvirt
/// requires, and the addresses must be valid. Returns the findings (empty: the domain
/// is complete and valid); a domain libvirt refuses is an error, with libvirt's words.
///
/// Two questions, answered apart. *Complete*: which devices and controllers libvirt
/// would still add or address when it loads the domain — a question of libvirt's
/// policy, answered by it (each finding says what libvirt would write). *Valid*: the
/// domain as libvirt completes it is lowered to devaddr's plan model and checked by the
/// independent verifier ([`crate::verify`]) against `engine.catalog`: addresses unique,
/// buses that exist and accept what sits on them, slots within range, multifunction,
/// the controller tree, chassis numbers, bus numbers and expander ranges.
pub fn check_domain_with(
    text: &str,
    file: &str,
    engine: crate::Options<'_>,
) -> Result<Vec<Finding>, Error> {
    let (mut doc, m, before) = read_domain(text, file)?;
    let mut devs = before;
    address(&mut devs, &m, &LibvirtOptions::default(), engine, file)?;
    let mut findings = Vec::new();
    for d in &devs {
        if d.pos.is_none() {
            findings.push(Finding::new(
                Rule::LibvirtWouldAdd,
                Subject::Element {
                    element: d.describe(),
                },
                format!("{} is missing (libvirt would add it)", d.describe()),
            ));
        } else if d.addr_new {
            let element = format!("{} (line {})", d.describe(), d.line);
            findings.push(Finding::new(
                Rule::LibvirtWouldAddress,
                Subject::Element {
                    element: element.clone(),
                },
                match d.addr {
                    domain::Addr::None => {
                        format!("{element}: libvirt would drop its address")
                    }
                    domain::Addr::Other(_) => format!(
                        "{element}: libvirt would write its address as {}",
                        emit::addr_text(&d.addr)
                    ),
                    _ => format!(
                        "{element} has no address; libvirt would assign {}",
                        emit::addr_text(&d.addr)
                    ),
                },
            ));
        }
    }
    emit::write_back(&mut doc.root, &devs);
    findings.extend(lower::verify(&doc.root, &m, engine.catalog)?);
    Ok(findings)
}
