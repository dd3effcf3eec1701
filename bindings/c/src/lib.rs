//! The C ABI of devaddr (`libdevaddr`, header `include/devaddr.h`, generated from this
//! file by cbindgen).
//!
//! Every function takes NUL-terminated UTF-8 strings and returns a `DevaddrResult`
//! owned by the caller, freed with `devaddr_result_free`. The work is the library's
//! facade ([`devaddr_core::api`]) — the same calls the `devaddr` command makes — so the
//! output is byte-identical to the CLI's and errors carry the same report (`--error-format
//! json`). No panic crosses the boundary (it becomes an internal error), and nothing is
//! global or mutable: calls may run from many threads at once.

#![allow(clippy::missing_safety_doc)] // said once, in the header's preamble

mod result;

use devaddr_core::api::{self, Named, Source};
use devaddr_core::report::Report;
use devaddr_core::Error;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use result::{DevaddrResult, DevaddrStatus};

/// The version of this C ABI: it changes whenever a function, a struct or a meaning
/// changes incompatibly. Compare `devaddr_abi_version()` with it at run time.
pub const DEVADDR_ABI_VERSION: u32 = 2;

/// Options of a call. A NULL `const DevaddrOptions *` means all defaults; so does a
/// zeroed struct.
#[repr(C)]
pub struct DevaddrOptions {
    /// How errors name the input (a file name); NULL: `<input>`.
    pub name: *const c_char,
    /// How errors name the second input (the previous plan of a replan, the devices of
    /// a hotplug); NULL: `<previous>` or `<add>`.
    pub other_name: *const c_char,
    /// The search budget of each integer program (the CLI's `--work-limit`); 0: the
    /// default.
    pub work_limit: u64,
    /// A hardware catalog directory laid out like `models/` (the CLI's `--models`);
    /// NULL: the built-in catalog.
    pub models_dir: *const c_char,
}

/// The inputs and options of a call, read from C.
struct Call {
    name: String,
    other_name: Option<String>,
    engine: api::Engine,
}

impl Call {
    unsafe fn new(opts: *const DevaddrOptions) -> Result<Call, Error> {
        let Some(o) = opts.as_ref() else {
            return Ok(Call {
                name: "<input>".into(),
                other_name: None,
                engine: api::Engine::new(None, None)?,
            });
        };
        let models = opt_str(o.models_dir, "options.models_dir")?;
        Ok(Call {
            name: opt_str(o.name, "options.name")?.unwrap_or_else(|| "<input>".into()),
            other_name: opt_str(o.other_name, "options.other_name")?,
            engine: api::Engine::new(
                models.as_deref().map(std::path::Path::new),
                (o.work_limit != 0).then_some(o.work_limit),
            )?,
        })
    }

    fn engine(&self) -> devaddr_core::Options<'_> {
        self.engine.options()
    }

    fn other(&self, default: &str) -> String {
        self.other_name.clone().unwrap_or_else(|| default.into())
    }
}

/// A C string argument that may be NULL, as UTF-8.
unsafe fn opt_str(p: *const c_char, what: &str) -> Result<Option<String>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    devaddr_core::input::from_bytes(CStr::from_ptr(p).to_bytes(), what).map(Some)
}

/// A C string argument that must be given.
unsafe fn req_str(p: *const c_char, what: &str) -> Result<String, Error> {
    opt_str(p, what)?.ok_or_else(|| Error::input(what, "is NULL; expected a string"))
}

/// An option value by name (NULL: None).
unsafe fn opt_named<T: Named>(p: *const c_char) -> Result<Option<T>, Error> {
    opt_str(p, T::OPTION)?.map(|s| T::from_name(&s)).transpose()
}

/// Run `f`, catching a panic as an internal error: nothing unwinds into C.
fn guarded(f: impl FnOnce() -> Result<DevaddrResult, Error>) -> *mut DevaddrResult {
    let r = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => DevaddrResult::failed(&e.report()),
        Err(panic) => DevaddrResult::failed(&Report::from_panic(panic.as_ref())),
    };
    Box::into_raw(Box::new(r))
}

/// Plan a spec or plan (YAML or JSON text) as `devaddr plan` does (a domain XML, judged
/// from the content as the CLI does, is planned as `devaddr_plan_domain` does, with
/// `new_domain` false). `format`: `yaml` (NULL for a spec), `json`, `tree`, `dot`, `svg`, `qemu` or `libvirt`; `policy`: NULL (the
/// spec's own), `libvirt`, `hotplug-ready`, `numa` or `dense`.
#[no_mangle]
pub unsafe extern "C" fn devaddr_plan(
    spec: *const c_char,
    format: *const c_char,
    policy: *const c_char,
    opts: *const DevaddrOptions,
) -> *mut DevaddrResult {
    guarded(|| {
        let call = Call::new(opts)?;
        let text = req_str(spec, "spec")?;
        let req = api::PlanRequest {
            format: opt_named(format)?,
            policy: opt_named(policy)?,
            ..Default::default()
        };
        let out = api::plan(Source::new(&text, &call.name), &req, call.engine())?;
        Ok(DevaddrResult::done(out))
    })
}

/// Address a libvirt domain XML as libvirt's QEMU driver would (`devaddr plan
/// DOMAIN.xml`): every device gets its address, every controller libvirt would add is
/// added. `new_domain`: address it as `virsh define` does a new domain (USB ports,
/// hubs). `format`: `libvirt` (NULL: the domain XML), `yaml`, `json`, `tree`, `dot` or
/// `svg`.
#[no_mangle]
pub unsafe extern "C" fn devaddr_plan_domain(
    xml: *const c_char,
    new_domain: bool,
    format: *const c_char,
    opts: *const DevaddrOptions,
) -> *mut DevaddrResult {
    guarded(|| {
        let call = Call::new(opts)?;
        let text = req_str(xml, "xml")?;
        let req = api::PlanRequest {
            format: opt_named(format)?,
            input: Some(api::InputKind::Libvirt),
            new_domain,
            ..Default::default()
        };
        let out = api::plan(Source::new(&text, &call.name), &req, call.engine())?;
        Ok(DevaddrResult::done(out))
    })
}

/// Replan a spec keeping every address of `previous` (a plan), as `devaddr plan SPEC
/// --previous PLAN [--allow-moves]` does. With `allow_moves`, the devices moved are
/// `devaddr_result_move` lines. `format` as for `devaddr_plan`.
#[no_mangle]
pub unsafe extern "C" fn devaddr_replan(
    spec: *const c_char,
    previous: *const c_char,
    allow_moves: bool,
    format: *const c_char,
    opts: *const DevaddrOptions,
) -> *mut DevaddrResult {
    guarded(|| {
        let call = Call::new(opts)?;
        let text = req_str(spec, "spec")?;
        let before = req_str(previous, "previous")?;
        let before_name = call.other("<previous>");
        let req = api::PlanRequest {
            format: opt_named(format)?,
            previous: Some(Source::new(&before, &before_name)),
            allow_moves,
            ..Default::default()
        };
        let out = api::plan(Source::new(&text, &call.name), &req, call.engine())?;
        Ok(DevaddrResult::done(out))
    })
}

/// Hot-add devices to a running guest, as `devaddr hotplug` does. `running`: its plan
/// (YAML/JSON) or its libvirt domain XML; `add`: YAML/JSON device entries (for a plan) or
/// device XML (for a domain). `format`: `yaml` (NULL), `json`, `libvirt` (the device XML
/// to attach; also one `devaddr_result_file` per device) or `qemu` (QMP commands).
#[no_mangle]
pub unsafe extern "C" fn devaddr_hotplug(
    running: *const c_char,
    add: *const c_char,
    format: *const c_char,
    opts: *const DevaddrOptions,
) -> *mut DevaddrResult {
    guarded(|| {
        let call = Call::new(opts)?;
        let running = req_str(running, "running")?;
        let add = req_str(add, "add")?;
        let add_name = call.other("<add>");
        let format = opt_named(format)?.unwrap_or(api::HotplugFormat::Yaml);
        let out = api::hotplug(
            Source::new(&running, &call.name),
            Source::new(&add, &add_name),
            format,
            call.engine(),
        )?;
        Ok(DevaddrResult::done(out))
    })
}

/// How many more devices fit, as `devaddr capacity` does. `input`: a spec, a plan or a
/// domain XML. `kinds`: `n_kinds` device kinds (NULL/0: the machine's representative
/// set); `node`: a NUMA node, or -1 for all; `bar64`: the devices counted have a 64-bit
/// BAR this large (`128G`, as `--bar64`; NULL: none); `live`: the table shows only what
/// fits now.
/// `format`: `table` (NULL) or `json` (a list of rows: kind, node, live, next_boot).
#[no_mangle]
pub unsafe extern "C" fn devaddr_capacity(
    input: *const c_char,
    kinds: *const *const c_char,
    n_kinds: usize,
    node: i64,
    bar64: *const c_char,
    live: bool,
    format: *const c_char,
    opts: *const DevaddrOptions,
) -> *mut DevaddrResult {
    guarded(|| {
        let call = Call::new(opts)?;
        let text = req_str(input, "input")?;
        let mut names = Vec::new();
        if !kinds.is_null() {
            for i in 0..n_kinds {
                names.push(req_str(*kinds.add(i), &format!("kinds[{i}]"))?);
            }
        }
        let node = match node {
            n if n < 0 => None,
            n => Some(u32::try_from(n).map_err(|_| {
                Error::input(
                    "node",
                    format!("{n} is out of range; expected 0 to {}", u32::MAX),
                )
            })?),
        };
        let bar64 = opt_str(bar64, "bar64")?
            .map(|t| api::CapacityRequest::parse_bar64(&t))
            .transpose()?;
        let req = api::CapacityRequest {
            kinds: names,
            node,
            bar64,
            live,
            format: opt_named(format)?,
        };
        let out = api::capacity(Source::new(&text, &call.name), &req, call.engine())?;
        Ok(DevaddrResult::done(out))
    })
}

/// Verify a plan, a fully addressed spec or a domain XML, as `devaddr check` does.
/// Valid: status `DEVADDR_OK`. Rules broken: status `DEVADDR_CHECK`, the findings in the
/// error report (and, with `format` `json`, in the output document too). `format`:
/// `text` (NULL: `NAME: ok`) or `json`.
#[no_mangle]
pub unsafe extern "C" fn devaddr_check(
    input: *const c_char,
    format: *const c_char,
    opts: *const DevaddrOptions,
) -> *mut DevaddrResult {
    guarded(|| {
        let call = Call::new(opts)?;
        let text = req_str(input, "input")?;
        let format = opt_named(format)?.unwrap_or(api::CheckFormat::Text);
        let checked = api::check(Source::new(&text, &call.name), format, call.engine())?;
        Ok(match checked.report() {
            None => DevaddrResult::done(checked.output),
            Some(report) => DevaddrResult::failed(&report).with_output(checked.output),
        })
    })
}

/// The hardware catalog (`name` NULL) or one machine, controller model or device kind,
/// as `devaddr models` prints it. `format`: `text` (NULL), `yaml` or `json`.
#[no_mangle]
pub unsafe extern "C" fn devaddr_models(
    name: *const c_char,
    format: *const c_char,
    opts: *const DevaddrOptions,
) -> *mut DevaddrResult {
    guarded(|| {
        let call = Call::new(opts)?;
        let name = opt_str(name, "name")?;
        let format = opt_named(format)?.unwrap_or(api::ModelsFormat::Text);
        let text = api::models(call.engine.catalog(), name.as_deref(), format)?;
        Ok(DevaddrResult::text(text))
    })
}

/// devaddr's version (`"0.1.0"`): a static string, never freed.
#[no_mangle]
pub extern "C" fn devaddr_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI version of the library loaded (see `DEVADDR_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn devaddr_abi_version() -> u32 {
    DEVADDR_ABI_VERSION
}
