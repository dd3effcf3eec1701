//! The verifier is independent of the planner (DESIGN §1: "an independent checker that
//! knows nothing of the ILP"): src/verify.rs and every crate module it reaches must not
//! use the planner's code — normalize, solve (and the solver contract re-exported as
//! `backend`), the stages that work on their output (assemble, order), the lifecycle
//! commands and libvirt's own addresser, which all run the planner — nor the planning
//! entry points of lib.rs. A shared helper belongs in a neutral module (spec, catalog,
//! topology, vocab, limits).
//!
//! The test reads the sources: it follows `crate::module` references (grouped `use
//! crate::{a, b}` included) from src/verify.rs, through the whole directory of every
//! module reached, and fails naming the file and the reference that crosses the line.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// Modules of the planner.
const PLANNER: &[&str] = &[
    "normalize",
    "solve",
    "backend",
    "assemble",
    "order",
    "lifecycle",
    "libvirt",
];

/// Items defined in lib.rs itself that the verifier may use (the rest of lib.rs is the
/// planning entry points: plan, plan_with, Options…).
const LIB_ITEMS_ALLOWED: &[&str] = &["check", "check_with"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The text without `//` comments (doc comments name other modules freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// First path segments after `crate::`, with grouped imports (`crate::{a, b::c}`) split.
fn crate_refs(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        // `crate::` preceded by an identifier character is another path (`mycrate::`).
        let before = rest[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            rest = after;
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut end = group.len();
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = k;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut depth = 0;
            let mut start = 0;
            let inner = &group[..end];
            for (k, c) in inner.char_indices().chain([(inner.len(), ',')]) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(first_segment(&inner[start..k]));
                        start = k + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(first_segment(after));
        }
        rest = after;
    }
    out.retain(|s| !s.is_empty());
    out
}

fn first_segment(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every `.rs` file of a top-level module (`src/name.rs`, or all of `src/name/`).
fn module_files(name: &str) -> Option<Vec<PathBuf>> {
    let file = src().join(format!("{name}.rs"));
    if file.is_file() {
        return Some(vec![file]);
    }
    let dir = src().join(name);
    if !dir.is_dir() {
        return None;
    }
    let mut files = Vec::new();
    let mut todo = vec![dir];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    Some(files)
}

/// Root names lib.rs re-exports (`pub use topology::{Plan, …}`, `pub use backend::X`),
/// with the module each comes from; and the inline modules lib.rs defines.
fn lib_reexports() -> BTreeMap<String, String> {
    let lib = code(&std::fs::read_to_string(src().join("lib.rs")).unwrap());
    let mut map = BTreeMap::new();
    let flat = lib.replace('\n', " ");
    for stmt in flat.split(';') {
        let stmt = stmt.trim();
        let Some(path) = stmt
            .strip_prefix("pub use ")
            .or_else(|| stmt.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let module = first_segment(path);
        let names = match (path.find('{'), path.rfind('}')) {
            (Some(a), Some(b)) => path[a + 1..b].to_string(),
            _ => path.rsplit("::").next().unwrap_or("").to_string(),
        };
        for n in names.split(',') {
            let n = n.trim().rsplit(" as ").next().unwrap_or("").trim();
            if !n.is_empty() {
                map.insert(n.to_string(), module.clone());
            }
        }
    }
    for stmt in flat.split("pub mod ").skip(1) {
        let m = first_segment(stmt);
        map.insert(m.clone(), m);
    }
    map
}

/// The crossings found from `start` (file, reference) and the modules reached.
fn scan(start: &str) -> (Vec<String>, BTreeSet<String>) {
    let reexports = lib_reexports();
    let mut bad = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo: VecDeque<String> = VecDeque::from([start.to_string()]);
    seen.insert(start.to_string());
    while let Some(module) = todo.pop_front() {
        for file in module_files(&module).unwrap_or_default() {
            let text = code(&std::fs::read_to_string(&file).unwrap());
            let shown = file.strip_prefix(src()).unwrap().display().to_string();
            // Any path through the planner's two core modules, however it is spelled
            // (`crate::solve`, `super::normalize`, a re-export's path).
            for pat in ["normalize::", "solve::"] {
                if contains_word(&text, pat) {
                    bad.push(format!("src/{shown}: `{pat}`"));
                }
            }
            for r in crate_refs(&text) {
                let target = if module_files(&r).is_some() {
                    r.clone()
                } else if let Some(m) = reexports.get(&r) {
                    m.clone()
                } else if LIB_ITEMS_ALLOWED.contains(&r.as_str()) {
                    continue;
                } else {
                    // An item defined in lib.rs: a planning entry point.
                    bad.push(format!(
                        "src/{shown}: `crate::{r}` (a planning entry point)"
                    ));
                    continue;
                };
                if PLANNER.contains(&target.as_str()) {
                    bad.push(format!("src/{shown}: `crate::{r}` (module {target})"));
                } else if seen.insert(target.clone()) {
                    todo.push_back(target);
                }
            }
        }
    }
    bad.sort();
    bad.dedup();
    (bad, seen)
}

/// `pat` occurs not as the tail of a longer identifier (`denormalize::` is not
/// `normalize::`).
fn contains_word(text: &str, pat: &str) -> bool {
    text.match_indices(pat).any(|(i, _)| {
        !text[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn the_verifier_uses_no_planner_code() {
    let (bad, reached) = scan("verify");
    assert!(
        bad.is_empty(),
        "the verifier reaches the planner's code:\n  {}\nmove the shared helper to a neutral \
         module (spec, catalog, topology, vocab, limits)",
        bad.join("\n  ")
    );
    // The scan is not vacuous: it follows the verifier into the modules it does use.
    for m in ["spec", "catalog", "topology", "vocab", "error"] {
        assert!(reached.contains(m), "scan did not reach `{m}`: {reached:?}");
    }
}

#[test]
fn the_scanner_sees_every_form_of_reference() {
    let refs = crate_refs(&code(
        "use crate::normalize::Problem;\n\
         use crate::{catalog::Catalog, solve::{backend::Ilp, x}, spec};\n\
         let s = crate::order::sequence(spec); // crate::assemble in a comment\n\
         let t = mycrate::lifecycle::x;",
    ));
    assert_eq!(
        refs,
        ["normalize", "catalog", "solve", "spec", "order"],
        "{refs:?}"
    );
    assert!(contains_word("x = super::solve::y", "solve::"));
    assert!(!contains_word("x = resolve::y", "solve::"));
    let lib = lib_reexports();
    assert_eq!(lib.get("Plan").map(String::as_str), Some("topology"));
    assert_eq!(lib.get("MicroLp").map(String::as_str), Some("backend"));
    assert_eq!(lib.get("replan").map(String::as_str), Some("lifecycle"));
}
