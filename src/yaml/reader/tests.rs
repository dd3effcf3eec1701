//! The fast reader against serde_yaml: whenever it answers, serde_yaml gives the same
//! value; it answers for the repository's specs and devaddr's own plans; the public
//! parse gives the same result (value or error) as serde_yaml alone.

use super::from_str;
use crate::{Plan, Spec};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

#[allow(dead_code, clippy::all)]
#[path = "../../../tests/common/specgen.rs"]
mod specgen;

/// Whether the fast reader answered for `text` as a `T`; panics if its value differs
/// from serde_yaml's or serde_yaml refuses what it read.
fn agree<T: DeserializeOwned + Debug>(text: &str) -> bool {
    let Some(fast) = from_str::<T>(text) else {
        return false;
    };
    match serde_yaml::from_str::<T>(text) {
        Ok(slow) => assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "\n{text}"),
        Err(e) => panic!("read {fast:?}, serde_yaml refused: {e}\n{text}"),
    }
    true
}

/// The public parse (fast path first) and the serde_yaml path alone give the same
/// result, value or error.
fn same_result<T: DeserializeOwned + Debug>(text: &str) {
    let new = crate::yaml::from_str::<T>(text);
    let old =
        crate::yaml::check_shape(text).and_then(|_| crate::yaml::serde_from_checked_str::<T>(text));
    assert_eq!(format!("{new:?}"), format!("{old:?}"), "\n{text}");
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.yaml` file below `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The examples and benchmark specs: each read by the fast path, as serde_yaml reads it,
/// and so is the plan devaddr writes for it.
#[test]
fn repository_specs_and_their_plans_take_the_fast_path() {
    let mut plans = 0;
    for dir in ["examples", "benches/specs", "tests/qemu-specs"] {
        for file in yaml_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(agree::<Spec>(&text), "fell back: {}", file.display());
            same_result::<Spec>(&text);
            let spec = Spec::parse(&text, "spec").unwrap();
            let Ok(plan) = crate::plan(&spec) else {
                continue;
            };
            let yaml = plan.to_yaml();
            assert!(agree::<Plan>(&yaml), "plan fell back: {}", file.display());
            assert!(
                agree::<Spec>(&yaml),
                "plan as spec fell back: {}",
                file.display()
            );
            same_result::<Plan>(&yaml);
            // JSON is YAML too: the plan's JSON (multi-line) may fall back, never differ.
            agree::<Plan>(&plan.to_json());
            plans += 1;
        }
    }
    assert!(plans >= 15, "only {plans} plans");
}

/// Every other YAML file of the repository (fuzz regressions, replan cases, …): never a
/// value serde_yaml would not give; the plans among them are read by the fast path.
#[test]
fn every_repository_yaml_file_agrees() {
    let (mut files, mut fast) = (0, 0);
    for dir in ["tests", "examples", "benches", "docs"] {
        let d = root().join(dir);
        if !d.is_dir() {
            continue;
        }
        for file in yaml_files(&d) {
            let text = std::fs::read_to_string(&file).unwrap();
            files += 1;
            let spec = agree::<Spec>(&text);
            let plan = agree::<Plan>(&text);
            agree::<serde_yaml::Value>(&text);
            same_result::<Spec>(&text);
            same_result::<Plan>(&text);
            if spec || plan {
                fast += 1;
            }
            if serde_yaml::from_str::<Plan>(&text).is_ok() {
                assert!(plan, "a plan fell back: {}", file.display());
            }
        }
    }
    assert!(
        files > 50 && fast * 10 >= files * 8,
        "{fast} of {files} fast"
    );
}

/// The first generator's specs (tests/common/specgen.rs), seeds 0..80.
#[test]
fn generated_specs_take_the_fast_path() {
    for seed in 0..80 {
        let text = specgen::spec(seed, specgen::Sizes::default());
        assert!(agree::<Spec>(&text), "seed {seed} fell back");
    }
}

/// The second generator's specs (tests/specgen2.py), seeds 0..60; skipped without
/// python3 (failing under CI=true).
#[test]
fn second_generator_specs_take_the_fast_path() {
    let dir = std::env::temp_dir().join(format!("devaddr-reader-gen2-{}", std::process::id()));
    let run = std::process::Command::new("python3")
        .arg(root().join("tests/specgen2.py"))
        .arg(&dir)
        .arg("0..60")
        .status();
    if !run.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is needed for tests/specgen2.py"
        );
        eprintln!("skipped: python3 could not run tests/specgen2.py");
        return;
    }
    let files = yaml_files(&dir);
    assert_eq!(files.len(), 60);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(agree::<Spec>(&text), "fell back: {}", file.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum Untagged {
    Int(u64),
    Neg(i64),
    Float(f64),
    Flag(bool),
    Text(String),
    List(Vec<Untagged>),
    Map(BTreeMap<String, Untagged>),
    Nothing(()),
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Choice {
    On,
    Off,
    #[serde(rename = "123")]
    Number,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[allow(dead_code)]
enum Tagged {
    A { n: u8 },
    B { s: Option<String> },
}

/// A bit of every shape a spec field takes.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Fields {
    a: Option<u8>,
    b: Option<String>,
    n: Option<i64>,
    u: Option<u64>,
    w: Option<u128>,
    i: Option<i128>,
    f: Option<f64>,
    flag: Option<bool>,
    unit: Option<()>,
    choice: Option<Choice>,
    any: Option<Untagged>,
    tagged: Option<Tagged>,
    list: Option<Vec<String>>,
    map: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    plain: Vec<Option<String>>,
}

/// Scalars near the edges of serde_yaml's resolution.
const SCALARS: &[&str] = &[
    "",
    "~",
    "null",
    "Null",
    "NULL",
    "nul",
    "true",
    "True",
    "TRUE",
    "tRue",
    "false",
    "yes",
    "on",
    "off",
    "0",
    "-0",
    "+0",
    "00",
    "007",
    "-007",
    "+007",
    "8",
    "-8",
    "+8",
    "++8",
    "+-8",
    "-+8",
    "255",
    "256",
    "65536",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "340282366920938463463374607431768211456",
    "0x1f",
    "0x1F",
    "-0x1f",
    "+0x1f",
    "0x+1",
    "0x-1",
    "0x",
    "0o17",
    "-0o17",
    "0o8",
    "0b101",
    "-0b101",
    "0b2",
    "1_000",
    "1e3",
    "1E3",
    "-1.5",
    "+1.5",
    ".5",
    "5.",
    "1e400",
    "-1e400",
    ".inf",
    ".Inf",
    ".INF",
    "-.inf",
    "+.inf",
    ".nan",
    ".NaN",
    "+.nan",
    "-.nan",
    "nan",
    "inf",
    "infinity",
    "0.0",
    "-0.0",
    "123abc",
    "1.2.3",
    "0000:65:00.0",
    "1.3",
    "on",
    "123",
    "a b",
    "a:b",
    "a #b",
    "a#b",
    "-a",
    "-1x",
    ".x",
    "é",
    "x y z",
];

#[test]
fn scalars_resolve_as_serde_yaml_does() {
    for s in SCALARS {
        for text in [
            format!("{s}\n"),
            format!("'{}'\n", s.replace('\'', "''")),
            format!("\"{s}\"\n"),
            format!("- {s}\n"),
            format!("[{s}]\n"),
            format!("k: {s}\n"),
            format!("{{k: {s}}}\n"),
        ] {
            agree::<serde_yaml::Value>(&text);
            agree::<Untagged>(&text);
            agree::<String>(&text);
            agree::<Option<String>>(&text);
            agree::<u8>(&text);
            agree::<u64>(&text);
            agree::<i64>(&text);
            agree::<u128>(&text);
            agree::<i128>(&text);
            agree::<f64>(&text);
            agree::<bool>(&text);
            agree::<()>(&text);
            agree::<Option<u32>>(&text);
            agree::<Choice>(&text);
            agree::<Vec<String>>(&text);
            agree::<Vec<Option<u8>>>(&text);
            agree::<BTreeMap<String, Option<u16>>>(&text);
            agree::<BTreeMap<String, Untagged>>(&text);
            for key in [
                "a", "b", "n", "u", "w", "i", "f", "flag", "unit", "choice", "any",
            ] {
                agree::<Fields>(&format!("{key}: {s}\n"));
            }
        }
    }
}

#[test]
fn the_subset_is_read() {
    let text = "\
# a comment
---
name: x   # trailing
list:
- a
-   b
- - c
  - 'd''e'
map:
    k: \"q\\\"\\\\\\u00e9\"
    empty:
    flow: {a: [1, -2, 'x'], \"b\":3}
seq:
  -
    id: n0
  - id: n1
    kind: virtio-net
";
    assert!(agree::<serde_yaml::Value>(text));
    assert!(agree::<Fields>(
        "tagged: {type: a, n: 3}\nany: [1, x, {y: ~}]\nplain: [a, null, '']\n"
    ));
    assert!(
        agree::<Fields>("map: {a: 1, a: 2}\n"),
        "duplicate map keys: the last wins"
    );
}

#[test]
fn what_it_does_not_know_falls_back() {
    for text in [
        "a: &x 1\nb: *x\n",
        "a: !tag 1\n",
        "a: |\n  text\n",
        "a: >\n  text\n",
        "a: b\n  c\n",
        "a: 'b\n  c'\n",
        "a:\n\t- 1\n",
        "a: 1\r\nb: 2\r\n",
        "? a\n: b\n",
        "[a,\n b]\n",
        "a: 1\n---\nb: 2\n",
        "---\n---\na: 1\n",
        "%YAML 1.2\n---\na: 1\n",
        "a: 1\n...\n",
        "a: [b, ]\n",
        "a: \"\\x41\"\n",
        "a:\n  b: 1\n c: 2\n",
        "- a\n - b\n",
        "a: - b\n",
        "a: b: c\n",
        "\u{feff}a: 1\n",
        "a: \u{2028}\n",
    ] {
        assert!(from_str::<serde_yaml::Value>(text).is_none(), "{text:?}");
        same_result::<serde_yaml::Value>(text);
    }
    // A failure to deserialize falls back too: serde_yaml words the error.
    assert!(from_str::<Fields>("a: 300\n").is_none());
    same_result::<Fields>("a: 300\n");
    assert!(from_str::<Spec>("machine: q35\ndevices: []\nextra: 1\n").is_none());
}

/// A YAML-ish node: scalars from [`SCALARS`] and a few more, keys from a small set
/// (so duplicates and struct fields come up).
#[derive(Debug, Clone)]
enum Node {
    Scalar(String, u8),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

fn node() -> impl Strategy<Value = Node> {
    let extra = prop::sample::select(vec![
        "a: b", "a #b", " a", "a ", "[x", "{x}", "x]", "- x", "-", "'", "\"", "\\", "a,b", "?x",
        ":x", "x:", "#", "&a", "*a", "!t", "|", ">", "%", "@", "`", "é", "\t", "a\nb",
    ]);
    let scalar = prop_oneof![
        prop::sample::select(SCALARS.to_vec()).prop_map(str::to_string),
        extra.prop_map(str::to_string),
        "[a-z0-9.:-]{0,6}",
    ];
    let leaf = (scalar, 0u8..4).prop_map(|(s, style)| Node::Scalar(s, style));
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Node::Seq),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "a", "b", "n", "f", "any", "list", "map", "x y", "é"
                    ]),
                    inner
                ),
                0..4
            )
            .prop_map(|v| Node::Map(v.into_iter().map(|(k, n)| (k.to_string(), n)).collect())),
        ]
    })
}

/// Renders nodes as YAML text, taking its style choices (indentation, flow or block,
/// quoting, comments, blank lines, stray spaces or tabs) from `knobs`.
struct Render<'k> {
    knobs: &'k [u8],
    at: usize,
    out: String,
}

impl Render<'_> {
    fn knob(&mut self, n: u8) -> u8 {
        let k = self.knobs[self.at % self.knobs.len()];
        self.at += 1;
        k % n
    }

    fn scalar(&mut self, s: &str, style: u8) -> String {
        match style {
            1 => format!("'{}'", s.replace('\'', "''")),
            2 => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
            _ => s.to_string(),
        }
    }

    fn flow(&mut self, n: &Node) -> String {
        match n {
            Node::Scalar(s, style) => self.scalar(s, *style),
            Node::Seq(items) => {
                let parts: Vec<String> = items.iter().map(|i| self.flow(i)).collect();
                format!(
                    "[{}]",
                    parts.join(if self.knob(3) == 0 { "," } else { ", " })
                )
            }
            Node::Map(entries) => {
                let parts: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", self.flow(v)))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
        }
    }

    fn line_end(&mut self) {
        match self.knob(16) {
            0 => self.out.push_str(" # c"),
            1 => self.out.push(' '),
            2 => self.out.push_str("\n\n"),
            3 => self.out.push_str("\n  # comment"),
            4 => self.out.push('\t'),
            _ => {}
        }
        self.out.push('\n');
    }

    fn indent(&mut self, n: usize) {
        let odd = usize::from(self.knob(40) == 0);
        self.out.push_str(&" ".repeat(n + odd));
    }

    /// `n` as the value after an indicator (`key:` or `-`) at column `col`.
    fn value(&mut self, n: &Node, col: usize) {
        let flow = self.knob(4) == 0;
        match n {
            Node::Seq(v) if !v.is_empty() && !flow => {
                self.line_end();
                let step = usize::from(self.knob(3));
                self.block(n, col + step);
            }
            Node::Map(v) if !v.is_empty() && !flow => {
                self.line_end();
                let step = 1 + usize::from(self.knob(3));
                self.block(n, col + step);
            }
            _ => {
                let s = self.flow(n);
                if !s.is_empty() {
                    self.out.push(' ');
                }
                self.out.push_str(&s);
                self.line_end();
            }
        }
    }

    fn block(&mut self, n: &Node, col: usize) {
        match n {
            Node::Seq(items) if !items.is_empty() => {
                for i in items {
                    self.indent(col);
                    self.out.push('-');
                    self.value(i, col);
                }
            }
            Node::Map(entries) if !entries.is_empty() => {
                for (k, v) in entries {
                    self.indent(col);
                    self.out.push_str(k);
                    self.out.push(':');
                    self.value(v, col);
                }
            }
            other => {
                self.indent(col);
                let s = self.flow(other);
                self.out.push_str(&s);
                self.line_end();
            }
        }
    }
}

fn render(n: &Node, knobs: &[u8]) -> String {
    let mut r = Render {
        knobs,
        at: 0,
        out: String::new(),
    };
    if r.knob(8) == 0 {
        r.out.push_str("---\n");
    }
    r.block(n, 0);
    r.out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whenever the fast path answers, serde_yaml gives the same value; the public
    /// parse gives what serde_yaml alone gives, value or error.
    #[test]
    fn fast_path_agrees_with_serde_yaml(
        n in node(),
        knobs in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let text = render(&n, &knobs);
        agree::<serde_yaml::Value>(&text);
        agree::<Untagged>(&text);
        agree::<Fields>(&text);
        agree::<BTreeMap<String, Option<String>>>(&text);
        agree::<Vec<Untagged>>(&text);
        same_result::<serde_yaml::Value>(&text);
        same_result::<Fields>(&text);
        same_result::<Spec>(&text);
    }
}
