//! The firmware a plan boots: its budgets, and how explanations name it.

use super::{Limits, MachineModel};

/// The budgets of `machine` under `firmware` ([`MachineModel::limits_for`]), or bad input
/// at `policy.firmware` when the machine does not boot that firmware.
fn firmware_limits(
    machine: &MachineModel,
    firmware: crate::spec::Firmware,
) -> crate::Result<Limits> {
    machine.limits_for(firmware).ok_or_else(|| {
        let boots = if machine.bios { "bios" } else { "uefi" };
        crate::Error::input(
            "policy.firmware",
            format!(
                "machine `{}` does not boot `{}` firmware; expected `{boots}` or `any`",
                machine.name,
                firmware.name()
            ),
        )
    })
}

/// How an explanation names the firmware whose budget binds (`the firmware (OVMF 2022.11
/// …, firmware: uefi)`), and the other firmware's budget as a fix where it is larger
/// (`, or set policy.firmware: bios (13 I/O windows)`).
pub(crate) fn firmware_words(
    machine: &MachineModel,
    firmware: crate::spec::Firmware,
) -> (String, String) {
    use crate::spec::Firmware;
    let uefi_name = machine.uefi.as_ref().map_or("UEFI", |u| u.name.as_str());
    let bios_io = machine
        .limits_for(Firmware::Bios)
        .and_then(|l| l.io_windows);
    let uefi_io = machine
        .limits_for(Firmware::Uefi)
        .and_then(|l| l.io_windows);
    let (name, other) = match firmware {
        Firmware::Bios => ("SeaBIOS, firmware: bios".to_string(), None),
        Firmware::Uefi => (format!("{uefi_name}, firmware: uefi"), None),
        Firmware::Any if !machine.bios => {
            (format!("{uefi_name}, the machine's only firmware"), None)
        }
        Firmware::Any => {
            let tighter = match (bios_io, uefi_io) {
                (Some(b), Some(u)) if u < b => Some(("uefi", uefi_name, "bios", b)),
                (Some(b), Some(u)) if b < u => Some(("bios", "SeaBIOS", "uefi", u)),
                _ => None,
            };
            match tighter {
                Some((_, n, o, w)) => (
                    format!("{n}, firmware: any takes the tighter of both"),
                    Some(format!(
                        ", or set policy.firmware: {o} if the guest boots only that ({w} I/O \
                         windows)"
                    )),
                ),
                None => ("every firmware, firmware: any".to_string(), None),
            }
        }
    };
    (format!("the firmware ({name})"), other.unwrap_or_default())
}

/// The firmware of a spec or plan on `machine`: `policy.firmware` when given; for a plan
/// written before plans recorded it (a `devaddr:` header without `policy.firmware`, held
/// to the budgets it was planned within: [`spec_limits`]) the BIOS it was planned for
/// (UEFI on machines without a BIOS); else `any`.
pub(crate) fn spec_firmware(spec: &crate::Spec, machine: &MachineModel) -> crate::spec::Firmware {
    use crate::spec::Firmware;
    match spec.policy.firmware {
        Some(f) => f,
        None if spec.devaddr.is_some() && machine.bios => Firmware::Bios,
        None if spec.devaddr.is_some() => Firmware::Uefi,
        None => Firmware::Any,
    }
}

/// The budgets a spec or plan is held to on `machine`: its firmware's
/// ([`firmware_limits`]), or for a plan written before plans recorded the firmware, the
/// machine's own `limits` it was planned within (so it checks and plans again unchanged).
pub(crate) fn spec_limits(spec: &crate::Spec, machine: &MachineModel) -> crate::Result<Limits> {
    if legacy_plan(spec) {
        return Ok(machine.limits.clone());
    }
    firmware_limits(machine, spec_firmware(spec, machine))
}

/// A plan written before plans recorded `policy.firmware`.
pub(crate) fn legacy_plan(spec: &crate::Spec) -> bool {
    spec.devaddr.is_some() && spec.policy.firmware.is_none()
}
