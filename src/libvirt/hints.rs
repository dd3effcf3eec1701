//! devaddr's hints inside a libvirt domain: one `<devaddr:hints
//! xmlns:devaddr="urn:devaddr:hints:1">` element under `<metadata>` (libvirt keeps one
//! top-level element per namespace, byte for byte) holding the spec's tunables and
//! per-device fields keyed by the device's user alias:
//!
//! ```xml
//! <metadata>
//!   <devaddr:hints xmlns:devaddr="urn:devaddr:hints:1">
//!     <devaddr:policy preset="numa" numa_nodes="2" hotplug_reserve_per_node="1"/>
//!     <devaddr:device alias="ua-net0" numa_node="1" hotplug="yes"/>
//!     <devaddr:device alias="ua-disk0" placement="root"/>
//!     <devaddr:apart aliases="ua-net0 ua-net1"/>
//!     <devaddr:together aliases="ua-gpu0 ua-gpu1"/>
//!   </devaddr:hints>
//! </metadata>
//! ```
//!
//! `policy` attributes are the spec's `policy:` fields, `device` attributes the spec's
//! device fields, by the same names (`docs/devaddr-hints.rng` is the schema). A domain
//! with hints is addressed by the integer program under that policy (see
//! [`super::hinted`]), not by libvirt's rules. Bad hints are bad input naming the element
//! and the attribute.

use super::fail;
use crate::spec::{DeviceEntry, Tunables};
use crate::xml::Element;
use crate::Error;
use schemars::JsonSchema;
use serde_json::{Map, Value};

/// The namespace of devaddr's hints: a domain with an element `hints` of it under
/// `<metadata>` is planned by devaddr's integer program under them (see the README,
/// "Hints", and `docs/devaddr-hints.rng`).
///
/// ```
/// let xml = r#"<domain type='kvm'><name>g</name>
///   <metadata>
///     <devaddr:hints xmlns:devaddr="urn:devaddr:hints:1">
///       <devaddr:policy multifunction="group"/>
///       <devaddr:device alias="ua-disk0" placement="root"/>
///       <devaddr:apart aliases="ua-net0 ua-net1"/>
///     </devaddr:hints>
///   </metadata>
///   <os><type arch='x86_64' machine='q35'>hvm</type></os>
///   <devices>
///     <disk type='file' device='disk'><source file='/d.img'/><target dev='vda' bus='virtio'/>
///       <alias name='ua-disk0'/></disk>
///     <interface type='user'><model type='virtio'/><alias name='ua-net0'/></interface>
///     <interface type='user'><model type='virtio'/><alias name='ua-net1'/></interface>
///   </devices>
/// </domain>"#;
/// let out = devaddr::libvirt::plan_domain(xml, "g.xml", &Default::default())?;
/// // The disk is an integrated endpoint on pcie.0 (bus 0), the NICs on root ports of
/// // their own, and the hints are kept.
/// assert!(out.contains("<alias name='ua-disk0'/>\n      <address type='pci' domain='0x0000' bus='0x00'"));
/// assert!(out.contains(devaddr::libvirt::HINTS_NAMESPACE));
/// // Planning the result again changes nothing.
/// assert_eq!(devaddr::libvirt::plan_domain(&out, "g.xml", &Default::default())?, out);
/// # Ok::<(), devaddr::Error>(())
/// ```
pub const HINTS_NAMESPACE: &str = "urn:devaddr:hints:1";

/// The hints of a domain.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Hints {
    /// `<policy>`: the tunables.
    pub policy: Tunables,
    /// `<device alias=…>`: the spec device fields it sets (by name, as JSON values), by
    /// alias, in document order.
    pub devices: Vec<(String, Map<String, Value>)>,
    /// `<apart aliases=…>` and `<together aliases=…>`, as alias lists.
    pub apart: Vec<Vec<String>>,
    pub together: Vec<Vec<String>>,
}

/// The type of an attribute's value, for reading it as the spec field of its name.
#[derive(Clone, Copy)]
enum Ty {
    Number,
    Flag,
    Word,
    /// A field that is a mapping in YAML (`hotplug_reserve_bar64`): written as its YAML
    /// flow mapping, `{ports: 2, size: 128G}`.
    Mapping,
}

/// Spec device fields a `<device>` hint does not set: what the domain's element says
/// (its id is its alias, its kind its element, its address its `<address>`).
const NOT_HINTS: &[&str] = &["id", "kind", "address", "ports", "host"];

/// The attributes an element of type `T` takes: the fields of `T` (from its JSON
/// Schema, so a field added to the spec is a hint too) but `skip`, with their types.
fn attributes<T: JsonSchema>(skip: &[&str]) -> Vec<(String, Ty)> {
    let schema = serde_json::to_value(crate::schema::generate::<T>()).unwrap_or_default();
    let mentions = |p: &Value, ty: &str| -> bool {
        fn has(p: &Value, ty: &str) -> bool {
            match p.get("type") {
                Some(Value::String(t)) if t == ty => return true,
                Some(Value::Array(ts)) if ts.iter().any(|t| t == ty) => return true,
                _ => {}
            }
            ["oneOf", "anyOf"].iter().any(|k| {
                p.get(*k)
                    .and_then(Value::as_array)
                    .is_some_and(|alts| alts.iter().any(|a| has(a, ty)))
            })
        }
        has(p, ty)
    };
    // A property whose type (through `$ref` into `$defs`, or an Option's `anyOf`) is an
    // object.
    let is_object = |p: &Value| -> bool {
        fn object(schema: &Value, p: &Value, depth: u8) -> bool {
            if depth > 4 {
                return false;
            }
            if p.get("type").and_then(Value::as_str) == Some("object") {
                return true;
            }
            if let Some(r) = p.get("$ref").and_then(Value::as_str) {
                let def = r
                    .strip_prefix("#/$defs/")
                    .and_then(|n| schema.get("$defs")?.get(n));
                return def.is_some_and(|d| object(schema, d, depth + 1));
            }
            ["oneOf", "anyOf", "allOf"].iter().any(|k| {
                p.get(*k)
                    .and_then(Value::as_array)
                    .is_some_and(|alts| alts.iter().any(|a| object(schema, a, depth + 1)))
            })
        }
        object(&schema, p, 0)
    };
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(name, _)| !skip.contains(&name.as_str()))
        .map(|(name, p)| {
            let ty = if is_object(p) {
                Ty::Mapping
            } else if mentions(p, "integer") {
                Ty::Number
            } else if mentions(p, "boolean") {
                Ty::Flag
            } else {
                Ty::Word
            };
            (name.clone(), ty)
        })
        .collect()
}

/// The `hints` element of `<metadata>` in devaddr's namespace and its prefix, if any.
fn hints_element<'e>(
    root: &'e Element,
    file: &str,
) -> Result<Option<(&'e Element, String)>, Error> {
    let Some(metadata) = root.child("metadata") else {
        return Ok(None);
    };
    let mut found: Option<(&Element, String)> = None;
    for el in metadata.elements() {
        let (prefix, local) = match el.name.split_once(':') {
            Some((p, l)) => (p.to_string(), l),
            None => (String::new(), el.name.as_str()),
        };
        let xmlns = if prefix.is_empty() {
            "xmlns".to_string()
        } else {
            format!("xmlns:{prefix}")
        };
        if el.attr(&xmlns).as_deref() != Some(HINTS_NAMESPACE) {
            continue;
        }
        if local != "hints" {
            return Err(fail(
                file,
                el.line,
                &format!("<{}>", el.name),
                format!(
                    "unknown element `{local}` in namespace {HINTS_NAMESPACE}; expected \
                     <{}hints>",
                    qualified(&prefix, "")
                ),
            ));
        }
        if found.is_some() {
            return Err(fail(
                file,
                el.line,
                &format!("<{}>", el.name),
                format!(
                    "a second hints element; libvirt keeps one element per namespace \
                     under <metadata>: expected one <{}>",
                    el.name
                ),
            ));
        }
        found = Some((el, prefix));
    }
    Ok(found)
}

fn qualified(prefix: &str, local: &str) -> String {
    if prefix.is_empty() {
        local.to_string()
    } else {
        format!("{prefix}:{local}")
    }
}

/// Read the hints of a domain (None: it has none, and libvirt's rules apply).
pub(crate) fn read(root: &Element, file: &str) -> Result<Option<Hints>, Error> {
    let Some((hints, prefix)) = hints_element(root, file)? else {
        return Ok(None);
    };
    let mut out = Hints::default();
    let mut errors = Vec::new();
    let mut policies = 0;
    for el in hints.elements() {
        let local = if prefix.is_empty() {
            el.name.as_str()
        } else {
            el.name
                .strip_prefix(&format!("{prefix}:"))
                .unwrap_or_default()
        };
        let at = format!("<{}>", el.name);
        let r = match local {
            "policy" => {
                policies += 1;
                if policies > 1 {
                    Err(fail(
                        file,
                        el.line,
                        &at,
                        "a second policy element; expected one".into(),
                    ))
                } else {
                    fields(el, &attributes::<Tunables>(&[]), &[], file, |m| {
                        serde_json::from_value::<Tunables>(Value::Object(m)).map(drop)
                    })
                    .and_then(|m| {
                        serde_json::from_value::<Tunables>(Value::Object(m))
                            .map_err(|e| fail(file, el.line, &at, e.to_string()))
                    })
                    .map(|t| out.policy = t)
                }
            }
            "device" => device(el, file).map(|d| out.devices.push(d)),
            "apart" => aliases(el, file).map(|a| out.apart.push(a)),
            "together" => aliases(el, file).map(|a| out.together.push(a)),
            _ => Err(fail(
                file,
                el.line,
                &at,
                format!(
                    "unknown hint element; expected {} (namespace {HINTS_NAMESPACE})",
                    ["policy", "device", "apart", "together"]
                        .map(|l| format!("<{}>", qualified(&prefix, l)))
                        .join(", ")
                ),
            )),
        };
        if let Err(e) = r {
            errors.push(e);
        }
    }
    Error::collect(errors)?;
    Ok(Some(out))
}

/// One `<device>` hint: its alias and the device fields it sets.
fn device(el: &Element, file: &str) -> Result<(String, Map<String, Value>), Error> {
    let at = format!("<{}>", el.name);
    let alias = el.attr("alias").ok_or_else(|| {
        fail(
            file,
            el.line,
            &at,
            "missing attribute `alias`; expected the device's user alias (alias=\"ua-net0\")"
                .into(),
        )
    })?;
    if super::id_from_alias(&alias).is_none() {
        return Err(fail(
            file,
            el.line,
            &at,
            format!(
                "attribute `alias`: found `{alias}`; expected a user alias such as `ua-net0` \
                 (the device's <alias name='ua-…'/>)"
            ),
        ));
    }
    let hint = fields(
        el,
        &attributes::<DeviceEntry>(NOT_HINTS),
        &["alias"],
        file,
        |mut m| {
            m.insert("id".into(), Value::from("x"));
            m.insert("kind".into(), Value::from("x"));
            serde_json::from_value::<DeviceEntry>(Value::Object(m)).map(drop)
        },
    )?;
    Ok((alias, hint))
}

/// The `aliases` attribute of `<apart>`/`<together>`: user aliases, space-separated.
fn aliases(el: &Element, file: &str) -> Result<Vec<String>, Error> {
    let at = format!("<{}>", el.name);
    for a in &el.attrs {
        if a.name != "aliases" {
            return Err(fail(
                file,
                el.line,
                &at,
                format!("unknown attribute `{}`; expected `aliases`", a.name),
            ));
        }
    }
    let list = el.attr("aliases").ok_or_else(|| {
        fail(
            file,
            el.line,
            &at,
            "missing attribute `aliases`; expected user aliases separated by spaces \
             (aliases=\"ua-net0 ua-net1\")"
                .into(),
        )
    })?;
    let out: Vec<String> = list.split_whitespace().map(str::to_string).collect();
    if out.len() < 2 {
        return Err(fail(
            file,
            el.line,
            &at,
            format!(
                "attribute `aliases`: found {} alias{}; expected at least two user aliases \
                 separated by spaces",
                out.len(),
                if out.len() == 1 { "" } else { "es" }
            ),
        ));
    }
    if let Some(bad) = out.iter().find(|a| super::id_from_alias(a).is_none()) {
        return Err(fail(
            file,
            el.line,
            &at,
            format!("attribute `aliases`: found `{bad}`; expected user aliases such as `ua-net0`"),
        ));
    }
    Ok(out)
}

/// The attributes of `el` read as the fields of the same names (`table`: their types;
/// `skip`: read elsewhere), each checked on its own by `check` (so an error names it).
fn fields(
    el: &Element,
    table: &[(String, Ty)],
    skip: &[&str],
    file: &str,
    check: impl Fn(Map<String, Value>) -> Result<(), serde_json::Error>,
) -> Result<Map<String, Value>, Error> {
    let at = format!("<{}>", el.name);
    let mut all = Map::new();
    for a in &el.attrs {
        if skip.contains(&a.name.as_str()) || a.name.starts_with("xmlns") {
            continue;
        }
        let raw = a.value();
        let Some((_, ty)) = table.iter().find(|(n, _)| *n == a.name) else {
            let names: Vec<&str> = skip
                .iter()
                .copied()
                .chain(table.iter().map(|(n, _)| n.as_str()))
                .collect();
            return Err(fail(
                file,
                el.line,
                &at,
                format!(
                    "unknown attribute `{}`; expected one of {}",
                    a.name,
                    names.join(", ")
                ),
            ));
        };
        let bad = |expected: &str| {
            fail(
                file,
                el.line,
                &at,
                format!("attribute `{}`: found `{raw}`; expected {expected}", a.name),
            )
        };
        let value = match ty {
            Ty::Number => Value::from(raw.parse::<u64>().map_err(|_| bad("a whole number"))?),
            Ty::Flag => match raw.as_str() {
                "yes" | "on" | "true" => Value::Bool(true),
                "no" | "off" | "false" => Value::Bool(false),
                _ => return Err(bad("yes or no")),
            },
            Ty::Word => Value::String(raw.clone()),
            Ty::Mapping => serde_yaml::from_str::<Value>(&raw)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| bad("a YAML flow mapping such as {ports: 2, size: 128G}"))?,
        };
        let one: Map<String, Value> = [(a.name.clone(), value.clone())].into_iter().collect();
        if let Err(e) = check(one) {
            return Err(bad(&expected(&e.to_string())));
        }
        all.insert(a.name.clone(), value);
    }
    Ok(all)
}

/// What serde's words for a bad value say is expected.
fn expected(msg: &str) -> String {
    match msg.split_once(", expected ") {
        Some((_, expected)) => expected.to_string(),
        None => msg.to_string(),
    }
}
