//! `devaddr hotplug`: new devices into a running guest, given as its plan or its libvirt
//! domain.

use super::plan::left_out_warning;
use super::{Output, Source};
use crate::error::{Error, Result};
use crate::formats;
use crate::input::Kind;
use crate::libvirt;
use crate::{Options, Plan};

/// Output formats of `hotplug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HotplugFormat {
    /// The updated plan as YAML.
    Yaml,
    /// The updated plan as JSON.
    Json,
    /// libvirt XML: the new devices (for a plan) or the whole domain (for a domain);
    /// [`Output::files`] holds one device XML per device to attach.
    Libvirt,
    /// QMP commands that hot-add the new devices (for a plan).
    Qemu,
}

/// Place the devices of `add` (YAML/JSON entries for a plan, device XML for a domain)
/// into the running guest `running` (a plan or a domain XML), as `devaddr hotplug` does.
pub fn hotplug(
    running: Source<'_>,
    add: Source<'_>,
    format: HotplugFormat,
    opts: Options<'_>,
) -> Result<Output> {
    let what = "a plan or a libvirt <domain>";
    if crate::input::detect(running.text, running.name, what)? == Kind::Domain {
        return hotplug_domain(running, add, format, opts);
    }
    if add.text.trim_start().starts_with('<') {
        return Err(Error::input(
            add.name,
            "device XML goes with a libvirt domain; for a plan, expected YAML/JSON \
             device entries (a list, or `devices:` with one)",
        ));
    }
    let before = Plan::parse(running.text, running.name)?;
    let devices = crate::spec::parse_devices(add.text, add.name)?;
    // Errors about the devices to add name that file, the rest the plan.
    let h = crate::hotplug_with(&before, &devices, opts).map_err(|e| {
        e.in_file_by(|location| {
            let about_add = location
                .path
                .as_deref()
                .is_some_and(|p| p.starts_with("add["));
            if about_add { add.name } else { running.name }.to_string()
        })
    })?;
    let cat = opts.catalog;
    let mut out = Output::default();
    match format {
        HotplugFormat::Yaml => out.text = h.plan.to_yaml(),
        HotplugFormat::Json => out.text = h.plan.to_json(),
        HotplugFormat::Qemu => {
            out.warnings = formats::qemu::substitutions(&h.plan, cat, Some(&h.added));
            out.text = formats::qemu::hotplug_commands(&h.plan, cat, &h.added)
                .into_iter()
                .map(|l| l + "\n")
                .collect();
        }
        HotplugFormat::Libvirt => {
            out.files = libvirt::device_xml(&h.plan, cat, &h.added)?;
            out.text = out.files.iter().map(|(_, x)| x.as_str()).collect();
        }
    }
    Ok(out)
}

fn hotplug_domain(
    running: Source<'_>,
    add: Source<'_>,
    format: HotplugFormat,
    opts: Options<'_>,
) -> Result<Output> {
    let h = libvirt::hotplug_domain_with(running.text, running.name, add.text, add.name, opts)?;
    match format {
        HotplugFormat::Libvirt => Ok(Output {
            text: h.xml,
            files: h.added,
            ..Default::default()
        }),
        HotplugFormat::Yaml | HotplugFormat::Json => {
            let dp = libvirt::domain_plan_with(&h.xml, running.name, &Default::default(), opts)?;
            let text = if format == HotplugFormat::Yaml {
                dp.plan.to_yaml()
            } else {
                dp.plan.to_json()
            };
            Ok(Output {
                text,
                warnings: left_out_warning(&dp),
                ..Default::default()
            })
        }
        HotplugFormat::Qemu => Err(Error::input(
            "--format",
            "libvirt hot-adds the devices of a libvirt domain (`virsh \
             attach-device --live`); expected --format libvirt, yaml or json",
        )),
    }
}
