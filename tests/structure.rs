//! The integer program stays a set of small, named pieces (issue 10: "no function in
//! src/solve longer than about 80 lines"): every function in src/solve (its directory,
//! recursively) spans at most [`MAX_LINES`] lines, from the line of `fn` to the line of
//! its closing brace.
//!
//! The test reads the sources with a small scanner that skips comments, string, raw-string
//! and character literals, so braces inside `format!` strings do not count.

use std::path::{Path, PathBuf};

/// The longest a function in src/solve may be, in lines.
const MAX_LINES: usize = 80;

/// A function found in a source file.
#[derive(Debug)]
struct Function {
    name: String,
    /// First and last line (1-based, inclusive).
    first: usize,
    last: usize,
}

impl Function {
    fn lines(&self) -> usize {
        self.last - self.first + 1
    }
}

/// The code's significant characters with their line numbers: comments, string literals
/// and character literals are dropped (a literal leaves a placeholder `"`), lifetimes are
/// kept as they are.
fn significant(text: &str) -> Vec<(char, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Advance over c[from..to], counting newlines.
    let skip = |from: usize, to: usize, line: &mut usize| {
        *line += c[from..to.min(c.len())]
            .iter()
            .filter(|&&ch| ch == '\n')
            .count();
        to
    };
    while i < c.len() {
        let rest = |k: usize| c.get(i + k).copied();
        match c[i] {
            '/' if rest(1) == Some('/') => {
                let end = (i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len());
                i = skip(i, end, &mut line);
            }
            '/' if rest(1) == Some('*') => {
                let mut depth = 0;
                let mut k = i;
                while k < c.len() {
                    if c[k] == '/' && c.get(k + 1) == Some(&'*') {
                        depth += 1;
                        k += 2;
                    } else if c[k] == '*' && c.get(k + 1) == Some(&'/') {
                        depth -= 1;
                        k += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        k += 1;
                    }
                }
                i = skip(i, k, &mut line);
            }
            'r' if (rest(1) == Some('"') || rest(1) == Some('#'))
                && !i
                    .checked_sub(1)
                    .is_some_and(|p| c[p].is_alphanumeric() || c[p] == '_') =>
            {
                let hashes = (i + 1..c.len()).take_while(|&k| c[k] == '#').count();
                if c.get(i + 1 + hashes) != Some(&'"') {
                    out.push(('r', line));
                    i += 1;
                    continue;
                }
                let close: Vec<char> = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let start = i + 2 + hashes;
                let end = (start..c.len())
                    .find(|&k| c[k..].starts_with(&close))
                    .map_or(c.len(), |k| k + close.len());
                out.push(('"', line));
                i = skip(i, end, &mut line);
            }
            '"' => {
                let mut k = i + 1;
                while k < c.len() && c[k] != '"' {
                    k += if c[k] == '\\' { 2 } else { 1 };
                }
                out.push(('"', line));
                i = skip(i, k + 1, &mut line);
            }
            '\'' if rest(1) == Some('\\') => {
                let end = (i + 2..c.len()).find(|&k| c[k] == '\'').unwrap_or(c.len());
                out.push(('"', line));
                i = skip(i, end + 1, &mut line);
            }
            '\'' if rest(2) == Some('\'') => {
                out.push(('"', line));
                i = skip(i, i + 3, &mut line);
            }
            ch => {
                if ch == '\n' {
                    line += 1;
                }
                out.push((ch, line));
                i += 1;
            }
        }
    }
    out
}

/// Every function with a body in `text`, nested ones included.
fn functions(text: &str) -> Vec<Function> {
    let s = significant(text);
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = Vec::new();
    for k in 0..s.len() {
        let is_fn = s[k].0 == 'f'
            && s.get(k + 1).is_some_and(|c| c.0 == 'n')
            && s.get(k + 2).is_some_and(|c| c.0.is_whitespace())
            && (k == 0 || !ident(s[k - 1].0));
        if !is_fn {
            continue;
        }
        let name: String = s[k + 2..]
            .iter()
            .map(|c| c.0)
            .skip_while(|c| c.is_whitespace())
            .take_while(|&c| ident(c))
            .collect();
        // The body: the first `{` before any `;` (a declaration without a body).
        let Some(open) = (k..s.len()).find(|&j| s[j].0 == '{' || s[j].0 == ';') else {
            continue;
        };
        if s[open].0 == ';' {
            continue;
        }
        let mut depth = 0;
        let close = (open..s.len()).find(|&j| {
            match s[j].0 {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            depth == 0
        });
        let Some(close) = close else { continue };
        out.push(Function {
            name,
            first: s[k].1,
            last: s[close].1,
        });
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_function_in_src_solve_is_longer_than_80_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/solve");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(!files.is_empty(), "no sources under {}", root.display());
    let mut long = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        for f in functions(&text) {
            if f.lines() > MAX_LINES {
                long.push(format!(
                    "src/solve/{rel}:{} `{}` is {} lines",
                    f.first,
                    f.name,
                    f.lines()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions longer than {MAX_LINES} lines (split them into named helpers):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_scanner_measures_functions_and_skips_literals() {
    let text = "/// doc {\nfn a() {\n    let s = \"{{ }\";\n    let c = '{';\n    // }\n    \
                let r = r#\"}\"#;\n}\nfn b<'x>(v: &'x str) -> &'x str {\n    fn inner() {}\n    \
                v\n}\ntrait T {\n    fn decl(&self);\n}\n";
    let fs = functions(text);
    let got: Vec<(&str, usize, usize)> = fs
        .iter()
        .map(|f| (f.name.as_str(), f.first, f.last))
        .collect();
    assert_eq!(got, [("a", 2, 7), ("b", 8, 11), ("inner", 9, 9)]);
}

/// The lengths the scanner reports, for a look by hand:
/// `cargo test --test structure -- --ignored --nocapture`.
#[test]
#[ignore = "prints; run by hand"]
fn print_lengths() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/solve");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut fs = functions(&text);
        fs.sort_by_key(|f| std::cmp::Reverse(f.lines()));
        for f in fs.iter().take(5) {
            println!("{:4} {} {}", f.lines(), file.display(), f.name);
        }
    }
}
