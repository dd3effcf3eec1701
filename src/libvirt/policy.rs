//! libvirt's addressing policy tables (`models/libvirt.yaml`), loaded once.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// How a device element connects, in libvirt's terms: a conventional PCI or PCIe
/// endpoint, virtio (PCIe where the machine has a PCIe root, else conventional), no PCI
/// address at all, or a controller (PCI or USB) whose model decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceConnect {
    /// A conventional PCI endpoint.
    Pci,
    /// A PCI Express endpoint.
    Pcie,
    /// A virtio device.
    Virtio,
    /// No PCI address.
    None,
    /// A PCI controller (its model's rule decides).
    Controller,
    /// A USB controller (its model's rule decides).
    Usb,
}

/// One value or a list of values in a rule.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn contains(&self, v: &str) -> bool {
        match self {
            OneOrMany::One(s) => s == v,
            OneOrMany::Many(l) => l.iter().any(|s| s == v),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineMatch {
    #[serde(default)]
    pub equals: Vec<String>,
    #[serde(default)]
    pub prefix: Vec<String>,
}

/// Selects the device a fixed slot belongs to.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum DeviceSelector {
    /// `primary-video`.
    Named(String),
    Match {
        tag: String,
        #[serde(rename = "type")]
        ty: Option<String>,
        model: Option<String>,
        #[serde(default)]
        models: Vec<String>,
        index: Option<u32>,
        #[serde(default)]
        first: bool,
        /// Only a device written without any `<address>` element: libvirt tests the
        /// address type here, so an all-zero PCI address (which elsewhere means "assign
        /// one") keeps the device out of this chipset slot.
        #[serde(default)]
        no_address: bool,
    },
}

/// A chipset slot: always reserved, or the home of one device, or slots that devices of
/// one kind take in turn.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum Fixed {
    /// Every matching device without an address, in libvirt's controller order, takes
    /// the first of `slots` whose slot is still free (none free: it is placed later).
    Each {
        each: DeviceSelector,
        slots: Vec<[u8; 2]>,
        #[serde(default)]
        multifunction: bool,
    },
    Reserve {
        reserve: [u8; 2],
        #[serde(default)]
        multifunction: bool,
    },
    Device {
        device: DeviceSelector,
        at: [u8; 2],
        #[serde(default)]
        force: bool,
        /// When `at` is taken, the device gets the next free address at this point,
        /// before any other device is placed.
        #[serde(default)]
        or_next: bool,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineRule {
    pub name: String,
    #[serde(rename = "match")]
    pub matches: MachineMatch,
    pub arch: Vec<String>,
    pub root: String,
    pub default_usb: Option<String>,
    pub explicit_usb: String,
    pub scsi: String,
    pub nic: String,
    pub video: String,
    pub panic: String,
    pub memballoon: bool,
    pub sata: bool,
    pub builtin_ide: bool,
    #[serde(default)]
    pub spare_pci_slot: bool,
    pub fixed: Vec<Fixed>,
}

impl MachineRule {
    pub fn matches(&self, machine: &str, arch: &str) -> bool {
        self.arch.iter().any(|a| a == arch)
            && (self.matches.equals.iter().any(|m| m == machine)
                || self
                    .matches
                    .prefix
                    .iter()
                    .any(|p| machine.starts_with(p.as_str())))
    }
}

/// libvirt's policy for a bus model; the bus itself (what it accepts, its slots) is
/// the catalog's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusRule {
    /// libvirt places unaddressed devices on it by itself.
    pub autoassign: bool,
}

/// How libvirt writes a PCI controller model; how it plugs in is the catalog's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerRule {
    pub name: Option<String>,
    pub target: Option<String>,
    pub needs_root: Option<String>,
    pub root: Option<String>,
    /// libvirt refuses this controller on a bus whose index is not lower than its own.
    #[serde(default)]
    pub index_above_bus: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbRule {
    pub ports: u32,
    pub connect: DeviceConnect,
    pub usb2: Option<u8>,
    #[serde(default)]
    pub ports_attr: bool,
    /// The most ports a `ports` attribute may ask for (with `ports_attr`).
    #[serde(default)]
    pub max_ports: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRule {
    pub tag: String,
    #[serde(rename = "type")]
    pub ty: Option<OneOrMany>,
    pub model: Option<OneOrMany>,
    pub bus: Option<OneOrMany>,
    pub group: u8,
    pub connect: DeviceConnect,
    #[serde(default)]
    pub integrated: bool,
}

/// The address types libvirt accepts for the devices a rule's facets name
/// (`address_types:` in models/libvirt.yaml).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRule {
    pub tag: String,
    #[serde(rename = "type")]
    pub ty: Option<OneOrMany>,
    pub model: Option<OneOrMany>,
    pub bus: Option<OneOrMany>,
    /// The `<address type>`s it may be written with (no `<address>` is always fine).
    pub allow: Vec<String>,
    /// libvirt's refusal of any other; `{type}` stands for the type written.
    pub refusal: String,
}

/// Whether an element's facet (`v`) is one a rule asks for (`None`: any).
fn facet(rule: &Option<OneOrMany>, v: Option<&str>) -> bool {
    match (rule, v) {
        (None, _) => true,
        (Some(r), Some(v)) => r.contains(v),
        (Some(_), None) => false,
    }
}

/// The facets of a rule: tag, and type, model and bus if given.
type Facets<'a> = (
    &'a str,
    &'a Option<OneOrMany>,
    &'a Option<OneOrMany>,
    &'a Option<OneOrMany>,
);

/// A rule that names device elements by facets.
trait Faceted {
    fn facets(&self) -> Facets<'_>;
}

impl Faceted for DeviceRule {
    fn facets(&self) -> Facets<'_> {
        (&self.tag, &self.ty, &self.model, &self.bus)
    }
}

impl Faceted for AddressRule {
    fn facets(&self) -> Facets<'_> {
        (&self.tag, &self.ty, &self.model, &self.bus)
    }
}

/// The first rule naming an element with these facets.
fn first_match<'r, R: Faceted>(
    rules: &'r [R],
    tag: &str,
    ty: Option<&str>,
    model: Option<&str>,
    bus: Option<&str>,
) -> Option<&'r R> {
    rules.iter().find(|r| {
        let (t, rt, rm, rb) = r.facets();
        t == tag && facet(rt, ty) && facet(rm, model) && facet(rb, bus)
    })
}

/// All of libvirt's policy tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub machines: Vec<MachineRule>,
    pub buses: BTreeMap<String, BusRule>,
    pub controllers: BTreeMap<String, ControllerRule>,
    pub usb: BTreeMap<String, UsbRule>,
    pub devices: Vec<DeviceRule>,
    /// Element templates for writing a plan as a domain.
    pub elements: BTreeMap<String, String>,
    /// Per architecture: devices libvirt would add, written out explicitly.
    pub explicit_defaults: BTreeMap<String, Vec<String>>,
    /// `<features>` written into whole domains, by architecture.
    #[serde(default)]
    pub domain_features: BTreeMap<String, String>,
    /// Device elements a domain may hold once, with libvirt's refusal of a second one.
    #[serde(default)]
    pub single: BTreeMap<String, String>,
    /// Devices that take only some address types, with libvirt's refusal of the others.
    #[serde(default)]
    pub address_types: Vec<AddressRule>,
    /// x86 machine types without PCI (libvirt refuses any device that wants a slot).
    #[serde(default)]
    pub no_pci_machines: Vec<String>,
    /// The model libvirt writes on a device element given none, on every machine.
    #[serde(default)]
    pub default_models: BTreeMap<String, String>,
    /// Domains libvirt refuses for reasons outside addressing, with its words.
    #[serde(default)]
    pub refusals: Vec<super::refusals::RefusalRule>,
    /// The QEMU version (major, minor) of the live libvirt 9.0 devaddr follows with
    /// `--new-domain`: newer versioned machine types are unknown to it.
    pub live_qemu: [u32; 2],
    /// Per host architecture, the guest architectures KVM runs (`--new-domain` refuses a
    /// `type='kvm'` domain of any other on the host devaddr runs on).
    #[serde(default)]
    pub live_kvm: BTreeMap<String, Vec<String>>,
    /// The element kinds in the order libvirt collects written addresses.
    #[serde(default)]
    pub address_collect_order: Vec<String>,
}

impl Policy {
    /// The embedded tables.
    pub fn get() -> &'static Policy {
        static P: OnceLock<Policy> = OnceLock::new();
        P.get_or_init(|| {
            crate::yaml::from_str(include_str!("../../models/libvirt.yaml"))
                .expect("embedded models/libvirt.yaml is valid (checked by tests)")
        })
    }

    /// The first device rule matching these facets.
    pub fn device_rule(
        &self,
        tag: &str,
        ty: Option<&str>,
        model: Option<&str>,
        bus: Option<&str>,
    ) -> Option<&DeviceRule> {
        first_match(&self.devices, tag, ty, model, bus)
    }

    /// The address-type rule for a device with these facets, if any.
    pub fn address_rule(
        &self,
        tag: &str,
        ty: Option<&str>,
        model: Option<&str>,
        bus: Option<&str>,
    ) -> Option<&AddressRule> {
        first_match(&self.address_types, tag, ty, model, bus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_fail_the_load() {
        // The bus table holds only libvirt's own flag; what a bus accepts is the catalog's.
        let err =
            crate::yaml::from_str::<BusRule>("{autoassign: true, accepts: [pcie]}").unwrap_err();
        assert!(err.to_string().contains("accepts"), "{err}");
        let err = crate::yaml::from_str::<DeviceRule>("{tag: rng, group: 9, connect: virtual}")
            .unwrap_err();
        assert!(err.to_string().contains("`virtual`"), "{err}");
    }
}
