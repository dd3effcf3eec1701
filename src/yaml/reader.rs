//! A fast reader for the YAML that specs and plans are actually written in, in front of
//! serde_yaml.
//!
//! It reads a small, common subset — block mappings and sequences, single-line plain and
//! quoted scalars, single-line flow collections (`[a, b]`, `{id: n0, kind: virtio-net}`,
//! compact JSON), comments, blank lines and one leading `---` — into a flat list of events,
//! and deserializes from them resolving scalars exactly as serde_yaml 0.9 does (YAML 1.2
//! core schema: `~`/`null`/empty, `true`/`True`/`TRUE`, integers with sign, `0x`, `0o`,
//! `0b`, floats, `.inf`, `.nan`; a quoted scalar is always a string).
//!
//! It answers only when sure. Whatever it does not know (anchors, aliases, tags, block
//! scalars, multi-line scalars or flow collections, complex keys, tabs, odd indentation,
//! escapes it does not handle, a second document, …) and every failure to deserialize
//! returns `None`, and the caller hands the text to serde_yaml, so errors and their
//! locations stay serde_yaml's. The invariant: when this returns a value, serde_yaml
//! returns the same value.

use crate::limits::MAX_YAML_DEPTH;
use crate::yaml::{drop_trailing_spaces, skip_spaces};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use std::borrow::Cow;
use std::fmt;

/// `text` deserialized as a `T` when the fast reader is sure of the result, else `None`
/// (read it with serde_yaml then).
#[cfg(test)]
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Option<T> {
    from_lines(text, &crate::yaml::lines(text))
}

/// [`from_str`] of `text` already split into its `lines` (`crate::yaml::lines`).
pub(crate) fn from_lines<T: DeserializeOwned>(text: &str, lines: &[&str]) -> Option<T> {
    let events = parse(text, lines)?;
    let mut reader = Reader {
        events: &events,
        pos: 0,
        depth: 0,
    };
    let value = T::deserialize(&mut reader).ok()?;
    (reader.pos == events.len()).then_some(value)
}

/// One event of the document, in order.
#[derive(Debug, Clone, PartialEq)]
enum Event<'a> {
    /// A scalar: its value and whether it was plain (unquoted, so resolved by its text).
    Scalar(Cow<'a, str>, bool),
    SeqStart,
    SeqEnd,
    MapStart,
    MapEnd,
}

const EMPTY: Event<'static> = Event::Scalar(Cow::Borrowed(""), true);

/// The longest implicit key taken (libyaml refuses keys of more than 1024 characters).
const MAX_KEY: usize = 1000;

/// A line that holds content: its indentation and its text without the indentation and
/// trailing spaces.
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// The events of `text`, or `None` when it is not in the subset.
fn parse<'a>(text: &'a str, raw_lines: &[&'a str]) -> Option<Vec<Event<'a>>> {
    if !printable(text) {
        return None;
    }
    let mut lines = Vec::new();
    let mut marker = false;
    for &raw in raw_lines {
        let body = skip_spaces(raw);
        let indent = raw.len() - body.len();
        let body = drop_trailing_spaces(body);
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if indent == 0 && (body.starts_with("---") || body.starts_with("...")) {
            // One `---` before any content; any other marker is not for this reader.
            if body == "---" && lines.is_empty() && !marker {
                marker = true;
                continue;
            }
            return None;
        }
        lines.push(Line { indent, text: body });
    }
    let first = lines.first()?;
    let mut p = Parser {
        lines: &lines,
        at: 1,
        events: Vec::with_capacity(lines.len() * 6),
        depth: 0,
    };
    p.node(first.indent, first.text)?;
    (p.at == lines.len()).then_some(p.events)
}

/// Only `\n` and characters libyaml takes as printable, and no line or paragraph
/// separators, byte order marks, tabs or carriage returns.
fn printable(text: &str) -> bool {
    let plain = |b: u8| b == b'\n' || (b' '..=b'~').contains(&b);
    if text.bytes().all(plain) {
        return true;
    }
    text.chars().all(|c| {
        c.is_ascii() && plain(c as u8)
            || matches!(c, '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
                && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
    })
}

struct Parser<'a, 'l> {
    lines: &'l [Line<'a>],
    /// The next line to read.
    at: usize,
    events: Vec<Event<'a>>,
    /// Collections open (deeper than devaddr's limit is not read here).
    depth: usize,
}

/// Whether `text` opens a block sequence entry (`- x` or a lone `-`).
fn seq_entry(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// Whether nothing but a comment is left of a line.
fn done(rest: &str) -> bool {
    rest.is_empty() || rest.starts_with('#')
}

impl<'a> Parser<'a, '_> {
    /// A block node whose first line's content `text` starts at column `col` (its line
    /// already read).
    fn node(&mut self, col: usize, text: &'a str) -> Option<()> {
        if seq_entry(text) {
            return self.seq(col, text);
        }
        if let Some((key, rest)) = key(text)? {
            return self.map(col, key, rest);
        }
        self.inline(text)
    }

    /// A block sequence at column `col`, `text` its first entry.
    fn seq(&mut self, col: usize, mut text: &'a str) -> Option<()> {
        self.open(Event::SeqStart)?;
        loop {
            let item = skip_spaces(&text[1..]);
            if done(item) {
                self.below(col, false)?;
            } else {
                self.node(col + text.len() - item.len(), item)?;
            }
            match self.lines.get(self.at) {
                Some(l) if l.indent == col && seq_entry(l.text) => {
                    text = l.text;
                    self.at += 1;
                }
                Some(l) if l.indent > col => return None,
                _ => break,
            }
        }
        self.close(Event::SeqEnd)
    }

    /// A block mapping at column `col`, its first key read (`rest` follows its `:`).
    fn map(&mut self, col: usize, mut k: Event<'a>, mut rest: &'a str) -> Option<()> {
        self.open(Event::MapStart)?;
        loop {
            self.events.push(k);
            if done(rest) {
                self.below(col, true)?;
            } else if seq_entry(rest) {
                return None;
            } else {
                self.inline(rest)?;
            }
            match self.lines.get(self.at) {
                Some(l) if l.indent == col => match key(l.text)? {
                    Some((next, r)) => {
                        (k, rest) = (next, r);
                        self.at += 1;
                    }
                    None => break,
                },
                Some(l) if l.indent > col => return None,
                _ => break,
            }
        }
        self.close(Event::MapEnd)
    }

    fn open(&mut self, e: Event<'a>) -> Option<()> {
        self.depth += 1;
        self.events.push(e);
        (self.depth <= MAX_YAML_DEPTH).then_some(())
    }

    fn close(&mut self, e: Event<'a>) -> Option<()> {
        self.depth -= 1;
        self.events.push(e);
        Some(())
    }

    /// The value of an entry at column `col` with nothing after its indicator: the node
    /// on the lines below, more indented (or a sequence at the same column, for a mapping
    /// value: `same`), else an empty scalar.
    fn below(&mut self, col: usize, same: bool) -> Option<()> {
        match self.lines.get(self.at) {
            Some(l) if l.indent > col => {
                self.at += 1;
                self.node(l.indent, l.text)
            }
            Some(l) if same && l.indent == col && seq_entry(l.text) => {
                self.at += 1;
                self.seq(col, l.text)
            }
            _ => {
                self.events.push(EMPTY);
                Some(())
            }
        }
    }

    /// A scalar or flow collection that must take the rest of its line.
    fn inline(&mut self, text: &'a str) -> Option<()> {
        let rest = match text.as_bytes()[0] {
            b'[' | b'{' => self.flow(text)?,
            b'\'' | b'"' => {
                let (value, rest) = quoted(text)?;
                self.events.push(Event::Scalar(value, false));
                rest
            }
            _ => {
                let (value, rest) = plain(text, false)?;
                if rest.starts_with(':') {
                    return None; // a `: ` inside the value
                }
                self.events.push(Event::Scalar(Cow::Borrowed(value), true));
                return Some(());
            }
        };
        comment_only(rest)
    }

    /// A flow collection on one line, `text` starting at its `[` or `{`: the rest of
    /// the line after its closing bracket.
    fn flow(&mut self, text: &'a str) -> Option<&'a str> {
        let seq = text.starts_with('[');
        let close = if seq { ']' } else { '}' };
        self.open(if seq {
            Event::SeqStart
        } else {
            Event::MapStart
        })?;
        let mut s = skip_spaces(&text[1..]);
        let end = if seq { Event::SeqEnd } else { Event::MapEnd };
        if let Some(r) = s.strip_prefix(close) {
            self.close(end)?;
            return Some(r);
        }
        loop {
            if !seq {
                let (k, r) = match s.as_bytes().first()? {
                    b'\'' | b'"' => {
                        let (v, r) = quoted(s)?;
                        // A quoted key may be followed by its `:` directly (JSON).
                        (Event::Scalar(v, false), r.strip_prefix(':')?)
                    }
                    _ => {
                        let (v, r) = plain(s, true)?;
                        (Event::Scalar(Cow::Borrowed(v), true), r.strip_prefix(": ")?)
                    }
                };
                if s.len() - r.len() > MAX_KEY {
                    return None;
                }
                self.events.push(k);
                s = skip_spaces(r);
            }
            s = skip_spaces(match s.as_bytes().first()? {
                b'[' | b'{' => self.flow(s)?,
                b'\'' | b'"' => {
                    let (v, r) = quoted(s)?;
                    self.events.push(Event::Scalar(v, false));
                    r
                }
                _ => {
                    let (v, r) = plain(s, true)?;
                    self.events.push(Event::Scalar(Cow::Borrowed(v), true));
                    r
                }
            });
            if let Some(r) = s.strip_prefix(',') {
                s = skip_spaces(r);
                if s.is_empty() || s.starts_with([']', '}', ',']) {
                    return None; // a trailing comma or an empty entry
                }
            } else {
                let r = s.strip_prefix(close)?;
                self.close(end)?;
                return Some(r);
            }
        }
    }
}

/// Nothing, or a comment set off by a space, left on a line.
fn comment_only(rest: &str) -> Option<()> {
    let t = skip_spaces(rest);
    (t.is_empty() || (t.starts_with('#') && t.len() < rest.len())).then_some(())
}

/// The implicit key opening `text` (a plain or quoted scalar followed by `:` and a space
/// or the end of the line) and what follows the `: `; `Some(None)` when `text` opens
/// no key, `None` when it is not sure.
#[allow(clippy::type_complexity)]
fn key(text: &str) -> Option<Option<(Event<'_>, &str)>> {
    let (k, rest) = match text.as_bytes()[0] {
        b'\'' | b'"' => {
            let (v, rest) = quoted(text)?;
            (Event::Scalar(v, false), rest)
        }
        b'[' | b'{' => return Some(None),
        _ => match plain(text, false) {
            Some((v, rest)) => (Event::Scalar(Cow::Borrowed(v), true), rest),
            None => return Some(None),
        },
    };
    let Some(after) = rest.strip_prefix(':') else {
        return if rest.is_empty() || comment_only(rest).is_some() {
            Some(None)
        } else {
            None
        };
    };
    if !(after.is_empty() || after.starts_with(' ')) || text.len() - rest.len() > MAX_KEY {
        return None;
    }
    Some(Some((k, skip_spaces(after))))
}

/// A plain scalar opening `s` on one line: its value and the rest of the line from the
/// first `: `, `:` at the end, ` #` (or, in a flow collection, `,`, `[`, `]`, `{`, `}`
/// or a `:` before one of them). `None` when it opens with an indicator or holds
/// something this reader does not decide (in flow: `?`, `#`).
fn plain(s: &str, flow: bool) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    match b[0] {
        b'-' if b.len() > 1 && (b[1].is_ascii_alphanumeric() || b[1] == b'.') => {}
        b'-' | b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!'
        | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' | b' ' => return None,
        _ => {}
    }
    let mut end = b.len();
    for i in 1..b.len() {
        if !PLAIN_MARK[usize::from(b[i])] {
            continue; // the common case, decided by one look-up
        }
        let stop = match b[i] {
            b':' => b
                .get(i + 1)
                .is_none_or(|&n| n == b' ' || (flow && b",[]{}?".contains(&n))),
            b'#' if b[i - 1] == b' ' => true,
            b',' | b'[' | b']' | b'{' | b'}' => flow,
            b'?' | b'#' => return if flow { None } else { continue },
            _ => false,
        };
        if stop {
            end = i;
            break;
        }
    }
    Some((drop_trailing_spaces(&s[..end]), &s[end..]))
}

/// The bytes [`plain`] looks at inside a scalar: `:`, `#`, `?` and the flow indicators.
const PLAIN_MARK: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    let marks = b":#?,[]{}";
    while i < marks.len() {
        table[marks[i] as usize] = true;
        i += 1;
    }
    table
};

/// A quoted scalar opening `s` and closed on the same line: its value and the rest of
/// the line after the closing quote. Double-quoted: the escapes `\\ \" \/ \n \t \uXXXX`.
fn quoted(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let q = s.as_bytes()[0];
    let body = &s[1..];
    let mut owned: Option<String> = None;
    let mut from = 0;
    loop {
        let i = from + body[from..].find(|c| c == q as char || (q == b'"' && c == '\\'))?;
        let bytes = body.as_bytes();
        if bytes[i] == q && !(q == b'\'' && bytes.get(i + 1) == Some(&b'\'')) {
            let value = match owned {
                Some(mut o) => {
                    o.push_str(&body[from..i]);
                    Cow::Owned(o)
                }
                None => Cow::Borrowed(&body[..i]),
            };
            return Some((value, &body[i + 1..]));
        }
        let o = owned.get_or_insert_with(String::new);
        o.push_str(&body[from..i]);
        if q == b'\'' {
            o.push('\'');
            from = i + 2;
            continue;
        }
        let (c, len) = match *bytes.get(i + 1)? {
            b'\\' => ('\\', 2),
            b'"' => ('"', 2),
            b'/' => ('/', 2),
            b'n' => ('\n', 2),
            b't' => ('\t', 2),
            b'u' => {
                let hex = body.get(i + 2..i + 6)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                (char::from_u32(u32::from_str_radix(hex, 16).ok()?)?, 6)
            }
            _ => return None,
        };
        o.push(c);
        from = i + len;
    }
}

/// Why the fast path gave up; never shown (the text then goes to serde_yaml).
#[derive(Debug)]
pub(crate) struct Unsure;

impl fmt::Display for Unsure {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("not read by the fast YAML reader")
    }
}

impl std::error::Error for Unsure {}

impl de::Error for Unsure {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Unsure
    }
}

/// Deserializes from the events, taking each method the way serde_yaml's does for an
/// untagged document.
struct Reader<'e, 'de> {
    events: &'e [Event<'de>],
    pos: usize,
    /// Collections and newtypes open (serde_yaml's limit is 128).
    depth: usize,
}

type R<T> = Result<T, Unsure>;

impl<'e, 'de> Reader<'e, 'de> {
    fn next(&mut self) -> R<&'e Event<'de>> {
        let e = self.events.get(self.pos).ok_or(Unsure)?;
        self.pos += 1;
        Ok(e)
    }

    /// The next event if it is a plain scalar: its text.
    fn next_plain(&mut self) -> R<&'e str> {
        match self.next()? {
            Event::Scalar(v, true) => Ok(v),
            _ => Err(Unsure),
        }
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        if self.depth >= 100 {
            return Err(Unsure);
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// A sequence's or mapping's entries given to `visitor` (its start event read); every
    /// entry must be taken.
    fn collection<V: Visitor<'de>>(&mut self, visitor: V, map: bool) -> R<V::Value> {
        let value = self.nested(|r| {
            if map {
                visitor.visit_map(Entries { r, empty: false })
            } else {
                visitor.visit_seq(Entries { r, empty: false })
            }
        })?;
        match self.next()? {
            Event::SeqEnd | Event::MapEnd => Ok(value),
            _ => Err(Unsure),
        }
    }

    /// Skip one node.
    fn skip(&mut self) -> R<()> {
        let mut open = 0usize;
        loop {
            match self.next()? {
                Event::SeqStart | Event::MapStart => open += 1,
                Event::SeqEnd | Event::MapEnd => open -= 1,
                Event::Scalar(..) => {}
            }
            if open == 0 {
                return Ok(());
            }
        }
    }

    /// An empty plain scalar where a collection is asked for: an empty one.
    fn collection_or_empty<V: Visitor<'de>>(&mut self, visitor: V, map: bool) -> R<V::Value> {
        match self.next()? {
            Event::SeqStart if !map => self.collection(visitor, false),
            Event::MapStart if map => self.collection(visitor, true),
            Event::Scalar(v, true) if v.is_empty() => {
                let r = &mut Reader {
                    events: &[],
                    pos: 0,
                    depth: 0,
                };
                if map {
                    visitor.visit_map(Entries { r, empty: true })
                } else {
                    visitor.visit_seq(Entries { r, empty: true })
                }
            }
            _ => Err(Unsure),
        }
    }
}

/// A string event's value given to `visitor`: borrowed when it is the text itself.
fn visit_text<'de, V: Visitor<'de>>(visitor: V, v: &Cow<'de, str>) -> R<V::Value> {
    match v {
        Cow::Borrowed(b) => visitor.visit_borrowed_str(b),
        Cow::Owned(o) => visitor.visit_str(o),
    }
}

fn is_null(v: &str) -> bool {
    matches!(v, "" | "~" | "null" | "Null" | "NULL")
}

fn boolean(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// A decimal with a leading zero and more digits (`007`, `-01`): a string in YAML 1.2.
fn leading_zero(v: &str) -> bool {
    let d = v.strip_prefix(['+', '-']).unwrap_or(v);
    d.len() > 1 && d.starts_with('0') && d[1..].bytes().all(|b| b.is_ascii_digit())
}

/// `v` without one leading `+`; `None` if a second sign follows it.
fn unsigned_part(v: &str) -> Option<&str> {
    match v.strip_prefix('+') {
        Some(u) if u.starts_with(['+', '-']) => None,
        Some(u) => Some(u),
        None => Some(v),
    }
}

/// The radix prefixes: `0x`, `0o`, `0b`.
const RADIXES: [(&str, u32); 3] = [("0x", 16), ("0o", 8), ("0b", 2)];

/// Integer parsing as serde_yaml does it, generic over the width.
trait Int: Sized {
    fn radix(s: &str, radix: u32) -> Option<Self>;
}

macro_rules! int {
    ($($t:ty)*) => {$(impl Int for $t {
        fn radix(s: &str, radix: u32) -> Option<Self> {
            <$t>::from_str_radix(s, radix).ok()
        }
    })*};
}
int!(u64 u128 i64 i128);

/// `u` read after a `0x`/`0o`/`0b` prefix: `Some(Some(n))`; `Some(None)` when a sign follows
/// the prefix (no integer at all); `None` when no prefix reads it.
fn prefixed<T: Int>(u: &str) -> Option<Option<T>> {
    for (prefix, radix) in RADIXES {
        if let Some(rest) = u.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return Some(None);
            }
            if let Some(n) = T::radix(rest, radix) {
                return Some(Some(n));
            }
        }
    }
    None
}

/// A non-negative integer: `+` allowed once, `0x`/`0o`/`0b`, no leading zeros.
fn unsigned<T: Int>(v: &str) -> Option<T> {
    let u = v.strip_prefix('+').unwrap_or(v);
    if let Some(read) = prefixed(u) {
        return read;
    }
    if u.starts_with(['+', '-']) || leading_zero(v) {
        return None;
    }
    T::radix(u, 10)
}

/// `-0x…`, `-0o…`, `-0b…` read in their radix (None for anything else, or out of range).
fn negative_prefixed<T: Int>(v: &str) -> Option<T> {
    let rest = v.strip_prefix('-')?;
    RADIXES
        .iter()
        .find_map(|&(prefix, radix)| T::radix(&format!("-{}", rest.strip_prefix(prefix)?), radix))
}

/// A negative (or any decimal) integer: `-0x`/`-0o`/`-0b` too.
fn negative<T: Int>(v: &str) -> Option<T> {
    if let Some(n) = negative_prefixed(v) {
        return Some(n);
    }
    if leading_zero(v) {
        return None;
    }
    T::radix(v, 10)
}

/// A signed integer for an `i64` field: either sign, any prefix.
fn signed<T: Int>(v: &str) -> Option<T> {
    let u = unsigned_part(v)?;
    if let Some(read) = prefixed(u) {
        return read;
    }
    // `u` keeps a `-` (only `+` is taken off), so no prefix matched it above.
    if let Some(n) = negative_prefixed(v) {
        return Some(n);
    }
    if leading_zero(v) {
        return None;
    }
    T::radix(u, 10)
}

/// A float: decimal or exponent forms Rust reads, `.inf`, `-.inf`, `.nan` (three
/// spellings each); nothing that is not finite otherwise.
fn float(v: &str) -> Option<f64> {
    let u = unsigned_part(v)?;
    if matches!(u, ".inf" | ".Inf" | ".INF") {
        return Some(f64::INFINITY);
    }
    if matches!(v, "-.inf" | "-.Inf" | "-.INF") {
        return Some(f64::NEG_INFINITY);
    }
    if matches!(v, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN.copysign(1.0));
    }
    u.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A plain scalar resolved by its text, as `deserialize_any` sees it.
fn visit_plain<'de, V: Visitor<'de>>(visitor: V, v: &Cow<'de, str>) -> R<V::Value> {
    if is_null(v) {
        return visitor.visit_unit();
    }
    if let Some(b) = boolean(v) {
        return visitor.visit_bool(b);
    }
    if let Some(n) = unsigned::<u64>(v) {
        return visitor.visit_u64(n);
    }
    if let Some(n) = negative::<i64>(v) {
        return visitor.visit_i64(n);
    }
    if let Some(n) = unsigned::<u128>(v) {
        return visitor.visit_u128(n);
    }
    if let Some(n) = negative::<i128>(v) {
        return visitor.visit_i128(n);
    }
    if !leading_zero(v) {
        if let Some(f) = float(v) {
            return visitor.visit_f64(f);
        }
    }
    visit_text(visitor, v)
}

/// Methods that take a plain scalar only, read by `parse` (a quoted one is a string).
macro_rules! plain_scalars {
    ($($method:ident => $visit:ident($parse:ident),)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
            visitor.$visit($parse(self.next_plain()?).ok_or(Unsure)?)
        }
    )*};
}

macro_rules! forward {
    ($($method:ident => $target:ident,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
            self.$target(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Reader<'_, 'de> {
    type Error = Unsure;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.next()? {
            Event::Scalar(v, true) => visit_plain(visitor, v),
            Event::Scalar(v, false) => visit_text(visitor, v),
            Event::SeqStart => self.collection(visitor, false),
            Event::MapStart => self.collection(visitor, true),
            _ => Err(Unsure),
        }
    }

    plain_scalars! {
        deserialize_bool => visit_bool(boolean),
        deserialize_i64 => visit_i64(signed),
        deserialize_i128 => visit_i128(signed),
        deserialize_u64 => visit_u64(unsigned),
        deserialize_u128 => visit_u128(unsigned),
        deserialize_f64 => visit_f64(float),
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.next()? {
            Event::Scalar(v, _) => visit_text(visitor, v),
            _ => Err(Unsure),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _: V) -> R<V::Value> {
        Err(Unsure)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _: V) -> R<V::Value> {
        Err(Unsure)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.events.get(self.pos).ok_or(Unsure)? {
            Event::Scalar(v, true) if is_null(v) => {
                self.pos += 1;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        if is_null(self.next_plain()?) {
            visitor.visit_unit()
        } else {
            Err(Unsure)
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> R<V::Value> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> R<V::Value> {
        self.nested(|r| v.visit_newtype_struct(r))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.collection_or_empty(visitor, false)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> R<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> R<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.collection_or_empty(visitor, true)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> R<V::Value> {
        self.deserialize_map(visitor)
    }

    /// A plain or quoted scalar names a unit variant; anything else (serde_yaml wants a
    /// tag for a variant with data) is not read here.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> R<V::Value> {
        match self.next()? {
            Event::Scalar(v, _) => visitor.visit_enum(UnitVariant(v)),
            _ => Err(Unsure),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }

    forward! {
        deserialize_i8 => deserialize_i64,
        deserialize_i16 => deserialize_i64,
        deserialize_i32 => deserialize_i64,
        deserialize_u8 => deserialize_u64,
        deserialize_u16 => deserialize_u64,
        deserialize_u32 => deserialize_u64,
        deserialize_f32 => deserialize_f64,
        deserialize_char => deserialize_str,
        deserialize_string => deserialize_str,
        deserialize_identifier => deserialize_str,
    }
}

/// The entries of a sequence or mapping being read (none when `empty`).
struct Entries<'r, 'e, 'de> {
    r: &'r mut Reader<'e, 'de>,
    empty: bool,
}

impl Entries<'_, '_, '_> {
    fn at_end(&self) -> bool {
        self.empty
            || matches!(
                self.r.events.get(self.r.pos),
                Some(Event::SeqEnd | Event::MapEnd)
            )
    }
}

impl<'de> de::SeqAccess<'de> for Entries<'_, '_, 'de> {
    type Error = Unsure;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<Option<T::Value>> {
        if self.at_end() {
            return Ok(None);
        }
        seed.deserialize(&mut *self.r).map(Some)
    }
}

impl<'de> de::MapAccess<'de> for Entries<'_, '_, 'de> {
    type Error = Unsure;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> R<Option<K::Value>> {
        if self.at_end() {
            return Ok(None);
        }
        seed.deserialize(&mut *self.r).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> R<V::Value> {
        seed.deserialize(&mut *self.r)
    }
}

/// A unit variant named by a scalar.
struct UnitVariant<'e, 'de>(&'e Cow<'de, str>);

impl<'de> de::EnumAccess<'de> for UnitVariant<'_, 'de> {
    type Error = Unsure;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> R<(V::Value, Self)> {
        let name = match self.0 {
            Cow::Borrowed(b) => seed.deserialize(de::value::BorrowedStrDeserializer::new(b))?,
            Cow::Owned(o) => seed.deserialize(o.as_str().into_deserializer())?,
        };
        Ok((name, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_, 'de> {
    type Error = Unsure;
    fn unit_variant(self) -> R<()> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _: T) -> R<T::Value> {
        Err(Unsure)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> R<V::Value> {
        Err(Unsure)
    }
    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], _: V) -> R<V::Value> {
        Err(Unsure)
    }
}

#[cfg(test)]
mod tests;
