//! What a hinted domain's plan asks of the firmware and QEMU, written into the domain as
//! `--format libvirt` writes it for a spec ([`super::from_plan`]): `<os firmware='efi'>`
//! (without secure boot, with the ACPI libvirt requires for it) when the hints ask for
//! UEFI and the domain boots something else; `<pcihole64>` in the root PCI controller and `<maxphysaddr>` in `<cpu>` for
//! the 64-bit aperture, with the CPU features the firmware needs to map it (`pdpe1gb`); OVMF's `X-PciMmio64Mb` and the ports' `pref64-reserve` in
//! libvirt's QEMU namespace. What devaddr wrote there before is replaced, so planning the
//! result again changes nothing; the domain's own QEMU arguments stay.

use super::from_plan::{element, qemu_passthrough, QEMU_NS};
use crate::catalog::Catalog;
use crate::spec::Firmware;
use crate::topology::Plan;
use crate::xml::{Element, Node};
use crate::Error;

/// The QEMU-namespace elements devaddr writes: a `<qemu:commandline>` carrying OVMF's
/// aperture, a `<qemu:override>` of the ports' 64-bit reserves.
fn written_by_devaddr(el: &Element) -> bool {
    let mut text = String::new();
    el.pretty(0, &mut text);
    (el.name == "qemu:commandline" && text.contains("opt/ovmf/X-PciMmio64Mb"))
        || (el.name == "qemu:override"
            && (text.contains("'pref64-reserve'") || text.contains("'io-reserve'")))
}

/// An element's text without its layout (each line trimmed, joined).
fn squeezed(el: &Element) -> String {
    let mut text = String::new();
    el.pretty(0, &mut text);
    text.lines().map(str::trim).collect()
}

/// Write the firmware settings of `plan` into the hinted domain `root`.
pub(super) fn write(root: &mut Element, plan: &Plan, cat: &Catalog) -> Result<(), Error> {
    let Some(machine) = cat.machine(&plan.machine) else {
        return Ok(());
    };
    if plan.policy.firmware == Some(Firmware::Uefi)
        && super::lower::domain_firmware(root, machine) != Firmware::Uefi
    {
        if let Some(os) = root.child_mut("os") {
            os.set_attr("firmware", "efi");
            if os.child("firmware").is_none() {
                let fw = element(
                    "<firmware><feature enabled='no' name='secure-boot'/></firmware>",
                    "firmware",
                )?;
                os.insert_element(usize::MAX, fw, "  ");
            }
        }
        // libvirt boots UEFI on x86 and aarch64 only with ACPI.
        if root.child("features").is_none() {
            let at = root
                .elements()
                .position(|e| e.name == "os")
                .map_or(usize::MAX, |i| i + 1);
            root.insert_element(at, Element::new("features"), "");
        }
        if let Some(f) = root.child_mut("features") {
            f.replace_or_append(Element::new("acpi"), "  ");
        }
    }
    if let (Some(m), Some(_)) = (&plan.mmio64, &machine.qemu_pci_host) {
        let hole = element(
            &format!(
                "<pcihole64 unit='KiB'>{}</pcihole64>",
                m.aperture.bytes() >> 10
            ),
            "pcihole64",
        )?;
        let root_controller = root.child_mut("devices").and_then(|d| {
            d.children.iter_mut().find_map(|n| match n {
                Node::Element(e)
                    if e.name == "controller"
                        && e.attr("type").as_deref() == Some("pci")
                        && e.attr("index").as_deref() == Some("0") =>
                {
                    Some(e)
                }
                _ => None,
            })
        });
        if let Some(c) = root_controller {
            c.replace_or_append(hole, "    ");
        }
    }
    let features = plan
        .mmio64
        .as_ref()
        .is_some_and(|m| !m.cpu_features.is_empty());
    if features && root.child("cpu").is_none() {
        let at = root
            .elements()
            .position(|e| e.name == "devices")
            .unwrap_or(usize::MAX);
        root.insert_element(at, Element::new("cpu").with_attr("mode", "custom"), "");
    }
    if let Some(cpu) = root.child_mut("cpu") {
        super::from_plan::require_cpu_features(cpu, plan, machine, "  ")?;
    }
    if let Some(bits) = plan.policy.phys_bits {
        let max = element(
            &format!("<maxphysaddr mode='emulate' bits='{bits}'/>"),
            "maxphysaddr",
        )?;
        if root.child("cpu").is_none() {
            let at = root
                .elements()
                .position(|e| e.name == "devices")
                .unwrap_or(usize::MAX);
            root.insert_element(at, Element::new("cpu"), "");
        }
        if let Some(cpu) = root.child_mut("cpu") {
            cpu.replace_or_append(max, "  ");
        }
    }
    // What devaddr wrote before goes (with the layout whitespace before it), unless it
    // says the same (libvirt lays it out anew: kept as libvirt wrote it).
    let fresh = qemu_passthrough(plan, machine)
        .iter()
        .map(|x| element(x, "qemu"))
        .collect::<Result<Vec<_>, _>>()?;
    let before: Vec<String> = root
        .elements()
        .filter(|e| written_by_devaddr(e))
        .map(squeezed)
        .collect();
    if before != fresh.iter().map(squeezed).collect::<Vec<_>>() {
        while let Some(i) = root
            .children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if written_by_devaddr(e)))
        {
            root.children.remove(i);
            if i > 0 && matches!(&root.children[i - 1], Node::Text(t) if t.trim().is_empty()) {
                root.children.remove(i - 1);
            }
        }
        for el in fresh {
            root.set_attr("xmlns:qemu", QEMU_NS);
            root.insert_element(usize::MAX, el, "");
        }
    }
    Ok(())
}
