//! `devaddr models`: list or show the catalog.

use crate::{Catalog, Error, Result};
use std::fmt::Write;

/// List every machine, controller model and device kind, or show one as YAML.
pub fn render(cat: &Catalog, name: Option<&str>) -> Result<String> {
    let mut s = String::new();
    let Some(name) = name else {
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
                (crate::catalog::Family::Pci, Some(t)) => format!("pci/{t:?}").to_lowercase(),
                (f, _) => format!("{f:?}").to_lowercase(),
            };
            let _ = writeln!(s, "  {:<16} {:<12} qemu {}", k.kind, bus, k.qemu);
        }
        return Ok(s);
    };
    if let Some(m) = cat.machine(name) {
        return Ok(crate::yaml::to_string(m));
    }
    if let Some(m) = cat.pci.get(name) {
        return Ok(crate::yaml::to_string(m));
    }
    if let Some(m) = cat.storage.get(name) {
        s.push_str(&crate::yaml::to_string(m));
    }
    if let Some(k) = cat.kind(name) {
        s.push_str(&crate::yaml::to_string(k));
    }
    if !s.is_empty() {
        return Ok(s);
    }
    let machines = cat.machine_names();
    let all = machines
        .iter()
        .copied()
        .chain(cat.pci.keys().map(String::as_str))
        .chain(cat.storage.keys().map(String::as_str))
        .chain(cat.kinds.iter().map(|k| k.kind.as_str()));
    let near = crate::catalog::did_you_mean(name, all);
    Err(Error::Input {
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
    })
}
