//! `devaddr plan`: a spec (planned, or replanned with a previous plan) or a libvirt
//! domain (addressed by libvirt's rules) into the chosen output format.

use super::{Output, Source};
use crate::error::{Error, Result};
use crate::formats::{self, Format};
use crate::input::Kind;
use crate::libvirt::{self, LibvirtOptions};
use crate::spec::Preset;
use crate::topology::SolverStatus;
use crate::{Options, Plan, Spec};

/// Output formats of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanFormat {
    /// The plan as YAML.
    Yaml,
    /// The plan as JSON.
    Json,
    /// The bus hierarchy like `lspci -tv`.
    Tree,
    /// Graphviz source.
    Dot,
    /// A self-contained SVG picture.
    Svg,
    /// QEMU command-line arguments, one per line (specs only).
    Qemu,
    /// A libvirt domain XML.
    Libvirt,
}

/// What the input of `plan` is (default: judged from the content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputKind {
    /// A YAML/JSON spec or plan.
    Spec,
    /// A libvirt domain XML.
    Libvirt,
}

/// The choices of one `plan` call; [`Default`] is `devaddr plan FILE`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanRequest<'a> {
    /// Output format (default: yaml for a spec, libvirt for a domain).
    pub format: Option<PlanFormat>,
    /// Override the spec's policy preset.
    pub policy: Option<Preset>,
    /// What the input is (default: detected).
    pub input: Option<InputKind>,
    /// A domain: address it as `virsh define` does a new one.
    pub new_domain: bool,
    /// Replan keeping every address of this previous plan.
    pub previous: Option<Source<'a>>,
    /// With `previous`: move the fewest devices needed instead of failing.
    pub allow_moves: bool,
}

/// Plan `src` as `devaddr plan` does. Errors name `src.name` (and the previous plan's
/// name for what concerns it).
pub fn plan(src: Source<'_>, req: &PlanRequest<'_>, opts: Options<'_>) -> Result<Output> {
    let domain = match req.input {
        Some(k) => k == InputKind::Libvirt,
        None => {
            crate::input::detect(src.text, src.name, "a spec, a plan or a libvirt <domain>")?
                == Kind::Domain
        }
    };
    if domain {
        plan_domain(src, req, opts)
    } else {
        plan_spec(src, req, opts)
    }
}

fn plan_domain(src: Source<'_>, req: &PlanRequest<'_>, opts: Options<'_>) -> Result<Output> {
    if req.previous.is_some() {
        return Err(Error::input(
            "--previous",
            "a libvirt domain keeps its addresses by itself: plan the domain \
             without --previous (--previous replans a spec)",
        ));
    }
    if req.policy.is_some() {
        return Err(Error::input(
            "--policy",
            "a libvirt domain is addressed by libvirt's own rules (policy libvirt); \
             --policy chooses the preset of a spec: plan the domain without it",
        ));
    }
    let lv = LibvirtOptions {
        new_domain: req.new_domain,
    };
    let fmt = match req.format {
        None | Some(PlanFormat::Libvirt) => {
            let (text, warnings) = libvirt::plan_domain_warned(src.text, src.name, &lv, opts)?;
            return Ok(Output {
                text,
                warnings,
                ..Default::default()
            });
        }
        Some(PlanFormat::Qemu) => {
            return Err(Error::input(
                "--format",
                "the QEMU command line of a libvirt domain is libvirt's to write \
                 (`virsh domxml-to-native qemu-argv`); expected --format libvirt, \
                 yaml, json, tree, dot or svg",
            ))
        }
        Some(PlanFormat::Yaml) => Format::Yaml,
        Some(PlanFormat::Json) => Format::Json,
        Some(PlanFormat::Tree) => Format::Tree,
        Some(PlanFormat::Dot) => Format::Dot,
        Some(PlanFormat::Svg) => Format::Svg,
    };
    let dp = libvirt::domain_plan_with(src.text, src.name, &lv, opts)?;
    Ok(Output {
        text: formats::render(&dp.plan, fmt, &dp.catalog),
        warnings: left_out_warning(&dp),
        ..Default::default()
    })
}

fn plan_spec(src: Source<'_>, req: &PlanRequest<'_>, opts: Options<'_>) -> Result<Output> {
    if req.new_domain {
        return Err(Error::input(
            "--new-domain",
            "--new-domain addresses a libvirt domain as `virsh define` does a new one; \
             the input is a spec, which has no such choice: plan it without --new-domain",
        ));
    }
    let mut s = Spec::parse(src.text, src.name)?;
    if let Some(p) = req.policy {
        s.policy.preset = Some(p);
    }
    let mut out = Output::default();
    let plan = match &req.previous {
        None => crate::plan_with(&s, opts).map_err(|e| e.in_source(src.name, src.text))?,
        Some(prev) => {
            let before = Plan::parse(prev.text, prev.name)?;
            let r = crate::replan_with(&s, &before, req.allow_moves, opts).map_err(|e| {
                e.in_file_by(|location| {
                    let about_previous = location.path.as_deref() == Some("previous plan");
                    if about_previous { prev.name } else { src.name }.to_string()
                })
            })?;
            out.moves = r.moves;
            out.warnings.extend(r.hints);
            r.plan
        }
    };
    out.warnings.extend(unproven_warning(&plan, opts));
    let cat = opts.catalog;
    let fmt = match req.format.unwrap_or(PlanFormat::Yaml) {
        PlanFormat::Libvirt => {
            out.text = libvirt::plan_to_domain(&plan, cat)?;
            return Ok(out);
        }
        PlanFormat::Yaml => Format::Yaml,
        PlanFormat::Json => Format::Json,
        PlanFormat::Tree => Format::Tree,
        PlanFormat::Dot => Format::Dot,
        PlanFormat::Svg => Format::Svg,
        PlanFormat::Qemu => {
            out.warnings
                .extend(formats::qemu::substitutions(&plan, cat, None));
            Format::Qemu
        }
    };
    out.text = formats::render(&plan, fmt, cat);
    Ok(out)
}

/// A plan whose search stopped at the work limit is valid and verified, but not proven
/// the best: the warning that says so.
fn unproven_warning(plan: &Plan, opts: Options<'_>) -> Option<String> {
    let r = plan.devaddr.solver?;
    if r.status != SolverStatus::Feasible {
        return None;
    }
    let gap = r.gap.map_or(0.0, |g| g.0 as f64 / 100.0);
    Some(format!(
        "the search reached its work limit ({}) before proving this plan the best (gap \
         {gap:.2} %); it is valid and verified. Raise --work-limit for a proof.",
        opts.work_limit.0
    ))
}

/// Which elements of a domain its plan model leaves out (none: no warning).
pub(super) fn left_out_warning(dp: &libvirt::DomainPlan) -> Vec<String> {
    if dp.left_out.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "the plan of a domain holds its PCI controllers and PCI devices only; left out: {}",
        dp.left_out.join(", ")
    )]
}
