//! `DevaddrResult`: what every call returns — the output, or the error report — and its
//! accessors. The strings live as long as the result.

use devaddr_core::api::Output;
use devaddr_core::report::{ProblemKind, Report};
use std::ffi::{c_char, CString};
use std::ptr;

/// How a call ended; the CLI's exit code follows the same split (0, 2, 1, 1, 1).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevaddrStatus {
    /// Done: `devaddr_result_output` holds the output.
    DevaddrOk = 0,
    /// Bad input (malformed, unknown names, a NULL argument).
    DevaddrInput = 1,
    /// Well-formed, but no topology satisfies it: the report says which requirement
    /// binds and what would fix it.
    DevaddrInfeasible = 2,
    /// `devaddr_check` found rules broken: the report holds the findings.
    DevaddrCheck = 3,
    /// devaddr failed on its own (a bug, a caught panic).
    DevaddrInternal = 4,
}

/// The result of a call: an opaque object owned by the caller. Read it with the
/// `devaddr_result_*` accessors; free it with `devaddr_result_free`.
pub struct DevaddrResult {
    status: DevaddrStatus,
    output: Option<CString>,
    error_json: Option<CString>,
    error_text: Option<CString>,
    message: Option<CString>,
    warnings: Vec<CString>,
    moves: Vec<CString>,
    files: Vec<(CString, CString)>,
}

/// A Rust string as a C string (an interior NUL, which no output holds, is cut there).
fn c(s: impl Into<Vec<u8>>) -> CString {
    let mut bytes = s.into();
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(at);
    }
    CString::new(bytes).unwrap_or_default()
}

fn status_of(report: &Report) -> DevaddrStatus {
    match report.errors.first().map(|p| p.kind) {
        Some(ProblemKind::Input | ProblemKind::Usage) => DevaddrStatus::DevaddrInput,
        Some(ProblemKind::Infeasible) => DevaddrStatus::DevaddrInfeasible,
        Some(ProblemKind::Check) => DevaddrStatus::DevaddrCheck,
        _ => DevaddrStatus::DevaddrInternal,
    }
}

impl DevaddrResult {
    fn empty(status: DevaddrStatus) -> Self {
        DevaddrResult {
            status,
            output: None,
            error_json: None,
            error_text: None,
            message: None,
            warnings: Vec::new(),
            moves: Vec::new(),
            files: Vec::new(),
        }
    }

    pub(crate) fn done(out: Output) -> Self {
        DevaddrResult::empty(DevaddrStatus::DevaddrOk).with_output(out)
    }

    pub(crate) fn text(text: String) -> Self {
        DevaddrResult {
            output: Some(c(text)),
            ..DevaddrResult::empty(DevaddrStatus::DevaddrOk)
        }
    }

    pub(crate) fn failed(report: &Report) -> Self {
        DevaddrResult {
            error_json: Some(c(report.to_json())),
            error_text: Some(c(report.to_text())),
            message: report.errors.first().map(|p| c(p.message.clone())),
            ..DevaddrResult::empty(status_of(report))
        }
    }

    pub(crate) fn with_output(mut self, out: Output) -> Self {
        self.output = Some(c(out.text));
        self.warnings = out.warnings.into_iter().map(c).collect();
        self.moves = out
            .moves
            .iter()
            .map(|m| c(devaddr_core::api::move_line(m)))
            .collect();
        self.files = out.files.into_iter().map(|(id, x)| (c(id), c(x))).collect();
        self
    }
}

fn ptr_of(s: Option<&CString>) -> *const c_char {
    s.map_or(ptr::null(), |s| s.as_ptr())
}

/// How the call ended. NULL: `DEVADDR_INTERNAL`.
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_status(r: *const DevaddrResult) -> DevaddrStatus {
    r.as_ref()
        .map_or(DevaddrStatus::DevaddrInternal, |r| r.status)
}

/// The output document (what the CLI writes on stdout), or NULL when the call failed
/// (except `devaddr_check` with format `json`, whose findings are the output too).
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_output(r: *const DevaddrResult) -> *const c_char {
    r.as_ref()
        .map_or(ptr::null(), |r| ptr_of(r.output.as_ref()))
}

/// The error report as one line of JSON, exactly as `devaddr --error-format json` writes
/// it: `{"errors":[{"kind","code","location":{file,path,line,column,element},"message",
/// "binding","requirement","fix",...,"findings":[...]}]}`. NULL when the call succeeded.
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_error_json(r: *const DevaddrResult) -> *const c_char {
    r.as_ref()
        .map_or(ptr::null(), |r| ptr_of(r.error_json.as_ref()))
}

/// The error report as text, as the CLI writes it (`error: FILE:LINE:COLUMN: …` lines).
/// NULL when the call succeeded.
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_error_text(r: *const DevaddrResult) -> *const c_char {
    r.as_ref()
        .map_or(ptr::null(), |r| ptr_of(r.error_text.as_ref()))
}

/// The first problem's message (the sentence for people). NULL when the call succeeded.
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_message(r: *const DevaddrResult) -> *const c_char {
    r.as_ref()
        .map_or(ptr::null(), |r| ptr_of(r.message.as_ref()))
}

/// How many warnings the call gave (the CLI's `warning: …` lines).
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_warning_count(r: *const DevaddrResult) -> usize {
    r.as_ref().map_or(0, |r| r.warnings.len())
}

/// Warning `i` (without the `warning: ` prefix); NULL when `i` is out of range.
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_warning(
    r: *const DevaddrResult,
    i: usize,
) -> *const c_char {
    r.as_ref()
        .map_or(ptr::null(), |r| ptr_of(r.warnings.get(i)))
}

/// How many devices a replan with moves allowed moved.
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_move_count(r: *const DevaddrResult) -> usize {
    r.as_ref().map_or(0, |r| r.moves.len())
}

/// Move `i` as the CLI prints it: `moved ID: FROM -> TO (REASON)`; NULL when out of range.
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_move(r: *const DevaddrResult, i: usize) -> *const c_char {
    r.as_ref().map_or(ptr::null(), |r| ptr_of(r.moves.get(i)))
}

/// How many device XML documents a hotplug with format `libvirt` returned (one per
/// device to attach, in order).
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_file_count(r: *const DevaddrResult) -> usize {
    r.as_ref().map_or(0, |r| r.files.len())
}

/// The id of device XML document `i` (the CLI's `--output-dir` file `ID.xml`); NULL when
/// out of range.
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_file_id(
    r: *const DevaddrResult,
    i: usize,
) -> *const c_char {
    r.as_ref()
        .map_or(ptr::null(), |r| ptr_of(r.files.get(i).map(|f| &f.0)))
}

/// Device XML document `i` (for `virsh attach-device --live`); NULL when out of range.
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_file_text(
    r: *const DevaddrResult,
    i: usize,
) -> *const c_char {
    r.as_ref()
        .map_or(ptr::null(), |r| ptr_of(r.files.get(i).map(|f| &f.1)))
}

/// Free a result and every string read from it. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn devaddr_result_free(r: *mut DevaddrResult) {
    if !r.is_null() {
        drop(Box::from_raw(r));
    }
}
