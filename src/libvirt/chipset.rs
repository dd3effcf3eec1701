//! The chipset's fixed PCI slots (`fixed:` of each machine in models/libvirt.yaml):
//! functions always reserved, and devices that live at a fixed address when it is free
//! (or must, when `force`).

use super::domain::{Addr, Dev, Pci};
use super::pci::AddrSet;
use super::policy::{DeviceSelector, Fixed, Policy};
use super::Machine;
use crate::Error;

/// The device a selector names, if any.
fn select(policy: &Policy, devs: &[Dev], sel: &DeviceSelector) -> Option<usize> {
    match sel {
        DeviceSelector::Named(n) if n == "primary-video" => super::primary_video(policy, devs),
        DeviceSelector::Named(_) => None,
        DeviceSelector::Match { first, .. } => {
            let i = devs.iter().position(|d| hit(sel, d))?;
            // `first`: only the first such device, and only while it has no address.
            if *first && !matches!(devs[i].addr, Addr::None) && !devs[i].addr_new {
                return None;
            }
            Some(i)
        }
    }
}

/// Whether `d` is a device a `Match` selector names (its `first` aside).
fn hit(sel: &DeviceSelector, d: &Dev) -> bool {
    let DeviceSelector::Match {
        tag,
        ty,
        model,
        models,
        index,
        no_address,
        ..
    } = sel
    else {
        return false;
    };
    !(*no_address && d.empty_pci_address)
        && d.tag == *tag
        && ty.as_ref().is_none_or(|t| d.ty.as_ref() == Some(t))
        && model.as_ref().is_none_or(|t| d.model.as_ref() == Some(t))
        && (models.is_empty() || d.model.as_ref().is_some_and(|m| models.contains(m)))
        && index.is_none_or(|i| d.index == Some(i))
}

/// The forced chipset address of `d`, if it has one.
pub fn forced_home(policy: &Policy, m: &Machine, devs: &[Dev], d: &Dev) -> Option<Pci> {
    for f in &m.rule?.fixed {
        if let Fixed::Device {
            device,
            at,
            force: true,
            ..
        } = f
        {
            if let Some(i) = select(policy, devs, device) {
                if std::ptr::eq(&devs[i], d) {
                    return Some(pci(at));
                }
            }
        }
    }
    None
}

fn pci(at: &[u8; 2]) -> Pci {
    Pci {
        bus: 0,
        slot: at[0],
        function: at[1],
        multifunction: None,
    }
}

/// Apply the machine's fixed slots to the address set (both passes).
pub fn apply(
    set: &mut AddrSet,
    policy: &Policy,
    m: &Machine,
    devs: &mut [Dev],
    file: &str,
) -> Result<(), Error> {
    let Some(rule) = m.rule else { return Ok(()) };
    if set.buses.is_empty() {
        return Ok(());
    }
    for f in &rule.fixed {
        match f {
            Fixed::Each {
                each,
                slots,
                multifunction,
            } => {
                let mut which: Vec<usize> = (0..devs.len())
                    .filter(|&i| hit(each, &devs[i]) && matches!(devs[i].addr, Addr::None))
                    .collect();
                which.sort_by_key(|&i| super::controller_rank(&devs[i], i));
                for i in which {
                    let Some(home) = slots.iter().map(pci).find(|a| !set.slot_in_use(0, a.slot))
                    else {
                        continue;
                    };
                    set.mark(home, 0);
                    devs[i].addr = Addr::Pci(Pci {
                        multifunction: multifunction.then_some(true),
                        ..home
                    });
                    devs[i].addr_new = true;
                }
            }
            Fixed::Reserve { reserve, .. } => {
                let a = pci(reserve);
                if set.function_in_use(a) {
                    let owner = devs.iter().find(|d| {
                        d.pci() == Some(a)
                            || d.pci().is_some_and(|p| {
                                p.bus == 0 && p.slot == a.slot && p.function == a.function
                            })
                    });
                    return Err(super::fail(
                        file,
                        owner.map_or(0, |d| d.line),
                        &owner.map_or("<devices>".into(), Dev::describe),
                        format!(
                            "Attempted double use of PCI Address 0000:00:{:02x}.{:x} (reserved by the {} chipset)",
                            a.slot, a.function, rule.name
                        ),
                    ));
                }
                set.mark(a, 0);
            }
            Fixed::Device {
                device,
                at,
                force,
                or_next,
            } => {
                let Some(i) = select(policy, devs, device) else {
                    continue;
                };
                let home = pci(at);
                // Another element written at this device's fixed address, if any.
                let rival = devs
                    .iter()
                    .enumerate()
                    .find(|(j, o)| {
                        *j != i
                            && o.pci().is_some_and(|q| {
                                q.bus == 0 && q.slot == home.slot && q.function == home.function
                            })
                    })
                    .map(|(_, o)| (o.line, o.describe()));
                // libvirt's refusal when the fixed address is already held: it names the
                // element written there, else the device itself.
                let (line, what) = rival.unwrap_or_else(|| (devs[i].line, devs[i].describe()));
                let double_use = || {
                    super::fail(
                        file,
                        line,
                        &what,
                        format!(
                            "Attempted double use of PCI Address 0000:00:{:02x}.{:x}",
                            home.slot, home.function
                        ),
                    )
                };
                let taken = *force && set.function_in_use(home);
                let d = &mut devs[i];
                match d.addr.clone() {
                    Addr::Pci(p) if *force => {
                        if p.bus != 0 || p.slot != home.slot || p.function != home.function {
                            return Err(super::fail(
                                file,
                                d.line,
                                &d.describe(),
                                format!(
                                    "{} must have PCI address 0:0:{:x}.{:x} on this machine type",
                                    d.describe(),
                                    home.slot,
                                    home.function
                                ),
                            ));
                        }
                        // Written (or given in the first pass) while another device
                        // holds the function: libvirt's collection of written addresses
                        // meets it twice.
                        if taken {
                            return Err(double_use());
                        }
                        set.mark(home, 0);
                    }
                    Addr::None => {
                        if *force {
                            if taken {
                                return Err(double_use());
                            }
                        } else if set.slot_in_use(0, home.slot) {
                            if *or_next {
                                let (flags, _) = super::pci::device_flags(policy, set.cat, m, d);
                                let a = set.reserve_next(flags, None).map_err(|r| {
                                    super::fail(
                                        file,
                                        d.line,
                                        &d.describe(),
                                        set.refusal_text(r, flags),
                                    )
                                })?;
                                // The dry run only counts; the real pass places it.
                                if !set.dry_run {
                                    d.addr = Addr::Pci(a);
                                    d.addr_new = true;
                                }
                            }
                            continue;
                        }
                        set.mark(home, 0);
                        d.addr = Addr::Pci(home);
                        d.addr_new = true;
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
