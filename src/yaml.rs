//! The one place that touches the YAML library, so it can be swapped (serde_norway is a
//! drop-in replacement for serde_yaml) in one line.

use crate::error::{Code, Error, Location};
use crate::limits::MAX_YAML_DEPTH;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn at_line(line: usize, message: String) -> Error {
    let code = if message.contains("nested more than") {
        Code::TooLarge
    } else if message.starts_with("empty input") {
        Code::Invalid
    } else {
        Code::Syntax
    };
    Error::Input {
        location: Box::new(Location {
            line: Some(line),
            ..Default::default()
        }),
        message,
        code,
    }
}

/// `s` without its leading spaces (`trim_start_matches(' ')` by a byte loop: the
/// general pattern search costs more than the few spaces of a YAML line).
#[inline]
pub(crate) fn skip_spaces(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| b == b' ').count();
    &s[n..]
}

/// `s` without its trailing spaces (`trim_end_matches(' ')` by a byte loop).
#[inline]
pub(crate) fn drop_trailing_spaces(s: &str) -> &str {
    let n = s.bytes().rev().take_while(|&b| b == b' ').count();
    &s[..s.len() - n]
}

/// Whether a line holds nothing but whitespace or a comment.
fn blank(line: &str) -> bool {
    line.trim_start()
        .as_bytes()
        .first()
        .is_none_or(|&b| b == b'#')
}

/// `text.lines()` collected (lines end at `\n`, a `\r` before it is dropped, a last empty
/// line is not one), found by a plain byte loop: `str::lines` searches each line's end
/// with `memchr`, whose set-up costs more than the short lines of a spec or plan.
pub(crate) fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::with_capacity(text.len() / 16 + 1);
    let mut start = 0;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if b == b'\n' {
            let line = &text[start..i];
            out.push(line.strip_suffix('\r').unwrap_or(line));
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Refuse what the YAML parser would take without a location, or take too long over:
/// no document at all, a second document, collections nested deeper than
/// [`MAX_YAML_DEPTH`]. The text's lines ([`lines`]) when it passes.
fn check_shape(text: &str) -> Result<Vec<&str>, Error> {
    let lines = lines(text);
    let mut content = false;
    let mut ended = false;
    for (i, l) in lines.iter().enumerate() {
        let marker = l.starts_with("---") && l[3..].chars().next().is_none_or(char::is_whitespace);
        let end = l.starts_with("...") && l[3..].chars().next().is_none_or(char::is_whitespace);
        if marker && content {
            // Even an empty second document makes the parser refuse the input.
            return Err(at_line(
                i + 1,
                "a second YAML document starts here; expected exactly one document".into(),
            ));
        }
        if end && content {
            ended = true;
            continue;
        }
        if l.starts_with('%') && content {
            // A directive after content can only open another document.
            return Err(at_line(
                i + 1,
                "a YAML directive here starts a second document; expected exactly one document"
                    .into(),
            ));
        }
        let rest = if marker { &l[3..] } else { l };
        if blank(rest) || end || (l.starts_with('%') && !content) {
            continue;
        }
        if ended {
            return Err(at_line(
                i + 1,
                "a second YAML document starts here; expected exactly one document".into(),
            ));
        }
        content = true;
    }
    if !content {
        return Err(at_line(
            lines.len().max(1),
            "empty input: expected a spec with `machine:` and `devices:`".into(),
        ));
    }
    let (depth, line) = max_depth(&lines);
    if depth > MAX_YAML_DEPTH {
        return Err(at_line(
            line,
            format!(
                "collections nested more than {MAX_YAML_DEPTH} levels deep (devaddr's limit); \
                 a spec or plan nests about 4"
            ),
        ));
    }
    Ok(lines)
}

/// Bytes that mean nothing to [`max_depth`] outside quotes: ASCII but for the
/// indicators, brackets, quotes and `#` (whitespace included: it is told apart where a
/// run of them ends).
const ORDINARY: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 128 {
        table[c] = !matches!(
            c as u8,
            b'#' | b'-' | b'?' | b'[' | b']' | b'{' | b'}' | b'\'' | b'"'
        );
        c += 1;
    }
    table
};

/// [`ORDINARY`] once a line has content: `-` and `?` are indicators only before it.
const ORDINARY_AFTER_CONTENT: [bool; 256] = {
    let mut table = ORDINARY;
    table[b'-' as usize] = true;
    table[b'?' as usize] = true;
    table
};

/// The character at byte `at` of `text` (a character boundary), read without decoding
/// when it is ASCII.
#[inline(always)]
fn char_at(text: &str, at: usize) -> Option<char> {
    match text.as_bytes().get(at) {
        Some(&b) if b.is_ascii() => Some(char::from(b)),
        Some(_) => text[at..].chars().next(),
        None => None,
    }
}

/// An upper estimate of how deep YAML collections nest, and the line where the depth
/// first passes the limit (or the deepest line): block levels by indentation, one level
/// per `- `/`? ` indicator opening a line, one per open `[`/`{`. Quoted scalars,
/// comments and block scalars are skipped. Linear in the size of the text: one pass over
/// the characters, ASCII read as bytes (a test holds it equal to the plain
/// character-by-character reading).
fn max_depth(lines: &[&str]) -> (usize, usize) {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    let mut block_scalar: Option<usize> = None;
    let (mut best, mut best_line) = (0, 1);
    for (n, line) in lines.iter().enumerate() {
        let indent = line.len() - skip_spaces(line).len();
        if let Some(parent) = block_scalar {
            if blank(line) || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        if quote.is_none() && flow == 0 && !blank(line) {
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let mut depth = indents.len() + flow;
        let mut prev: Option<char> = None; // last non-space character outside quotes
        let text = &line[indent..];
        let bytes = text.as_bytes();
        let mut leading = quote.is_none() && flow == 0;
        let mut raw_prev: Option<char> = None;
        let mut i = 0;
        while i < bytes.len() {
            // A run of ordinary ASCII characters outside quotes, or of ones that are not
            // the quote's end (nor an escape) inside them: they change nothing but the
            // last character seen (and, outside quotes, the last non-space one), so the
            // run is taken at once.
            let start = i;
            match quote {
                None => {
                    let ordinary = if leading {
                        &ORDINARY
                    } else {
                        &ORDINARY_AFTER_CONTENT
                    };
                    while i < bytes.len() && ordinary[usize::from(bytes[i])] {
                        i += 1;
                    }
                    if i > start {
                        // char::is_whitespace of an ASCII byte.
                        let space = |c: u8| c.is_ascii_whitespace() || c == 0x0b;
                        if let Some(&c) = bytes[start..i].iter().rev().find(|&&c| !space(c)) {
                            leading = false;
                            prev = Some(char::from(c));
                        }
                        if depth > best {
                            best = depth;
                            best_line = n + 1;
                        }
                    }
                }
                Some(q) => {
                    let (q, escapes) = (q as u8, q == '"');
                    while i < bytes.len()
                        && bytes[i].is_ascii()
                        && bytes[i] != q
                        && !(escapes && bytes[i] == b'\\')
                    {
                        i += 1;
                    }
                }
            }
            if i > start {
                raw_prev = Some(char::from(bytes[i - 1]));
                continue;
            }
            let Some(c) = char_at(text, i) else {
                break;
            };
            i += c.len_utf8();
            let peek = char_at(text, i);
            // Skip the character after this one.
            let mut skip = || {
                if let Some(p) = peek {
                    i += p.len_utf8();
                }
            };
            let before = raw_prev.replace(c);
            if let Some(q) = quote {
                if c == '\\' && q == '"' {
                    skip();
                } else if c == q {
                    if q == '\'' && peek == Some('\'') {
                        skip();
                    } else {
                        quote = None;
                        prev = Some(c);
                    }
                }
                continue;
            }
            let next_blank = peek.is_none_or(|c| c.is_whitespace());
            match c {
                // A comment starts at a `#` after whitespace (or opening the line).
                '#' if before.is_none_or(char::is_whitespace) => break,
                '-' | '?' if leading && next_blank => depth += 1,
                // Outside a flow collection a `[` or `{` opens one only as a node of its own:
                // at the start of the line's content or after whitespace (an indicator, a
                // tag or an anchor before it; in a plain scalar that over-counts, which is
                // safe). Glued to other text (`0000:66:[1]`: a `:` without a space after it
                // is text too) it is that text, and a closing one outside a collection closes
                // nothing. Inside a flow collection every one counts.
                '[' | '{' if flow == 0 && !before.is_none_or(char::is_whitespace) => {}
                '[' | '{' => {
                    flow += 1;
                    depth += 1;
                }
                ']' | '}' => {
                    flow = flow.saturating_sub(1);
                    depth = depth.saturating_sub(1);
                }
                '\'' | '"' if matches!(prev, None | Some('[' | '{' | ',' | ':' | '-' | '?')) => {
                    quote = Some(c)
                }
                _ => {}
            }
            if !c.is_whitespace() {
                if !(matches!(c, '-' | '?') && leading && next_blank) {
                    leading = false;
                }
                prev = Some(c);
            }
            if depth > best {
                best = depth;
                best_line = n + 1;
            }
        }
        if depth > best {
            best = depth;
            best_line = n + 1;
        }
        if best > MAX_YAML_DEPTH {
            return (best, best_line);
        }
        // A block scalar (`key: |`, `- >-`) swallows the more indented lines below (its
        // header ends in `|`, `>`, a chomping `-`/`+` or an indentation digit).
        let t = line.trim_end();
        let header_end = |c: u8| matches!(c, b'|' | b'>' | b'-' | b'+') || c.is_ascii_digit();
        if quote.is_none() && flow == 0 && t.bytes().last().is_some_and(header_end) {
            let head = t.trim_end_matches(|c: char| c == '-' || c == '+' || c.is_ascii_digit());
            if head.ends_with(" |") || head.ends_with(" >") || head == "|" || head == ">" {
                block_scalar = Some(indent);
            }
        }
    }
    (best, best_line)
}

/// Parse YAML (JSON is valid YAML) into `T`; errors carry the YAML path, line and column,
/// in the user's words (see [`translate`]).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    let lines = check_shape(text)?;
    from_checked_str(text, &lines)
}

/// [`from_str`] of a text whose shape [`check_shape`] has passed: the fast reader
/// ([`reader`]) when it is sure of the value, else serde_yaml (always on an error, so
/// its message and location are serde_yaml's).
fn from_checked_str<T: DeserializeOwned>(text: &str, lines: &[&str]) -> Result<T, Error> {
    if let Some(value) = reader::from_lines(text, lines) {
        return Ok(value);
    }
    serde_from_checked_str(text)
}

/// [`from_checked_str`] by serde_yaml alone.
fn serde_from_checked_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(convert)
}

/// [`from_str`], and when it fails, the errors of the other entries of the document's
/// lists as well (`more` finds them in the parsed document, with [`entry_errors`]): every
/// independent problem at once, in document order.
pub(crate) fn from_str_all<T: DeserializeOwned>(
    text: &str,
    more: impl FnOnce(&serde_yaml::Value) -> Vec<Error>,
) -> Result<T, Error> {
    // Refused for its shape (too deep, two documents): nothing more is parsed.
    let lines = check_shape(text)?;
    let first = match from_checked_str::<T>(text, &lines) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if first.code() == Some(Code::Syntax) || text.len() > PROBE_BUDGET {
        return Err(first);
    }
    let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
        return Err(first);
    };
    let mut all = vec![first];
    for e in more(&value) {
        let same = |a: &Error| match (a, &e) {
            (Error::Input { location: l, .. }, Error::Input { location: m, .. }) => {
                l.path == m.path && l.line == m.line && l.column == m.column
            }
            _ => false,
        };
        if !all.iter().any(same) {
            all.push(e);
        }
    }
    all.sort_by_key(|e| match e {
        Error::Input { location, .. } => (location.line.unwrap_or(usize::MAX), location.column),
        _ => (usize::MAX, None),
    });
    match Error::collect(all) {
        Err(e) => Err(e),
        Ok(()) => unreachable!("at least the first error"),
    }
}

/// How much text the search for further errors parses in all (each entry that fails
/// is parsed again from the text for its line and column).
const PROBE_BUDGET: usize = 4 << 20;

/// The most entries reported at once.
const MAX_REPORTED: usize = 20;

/// The errors of the entries of the list at `field` of `value` (the document itself when
/// `field` is None), each parsed on its own as an `E`: which ones fail is judged on the
/// parsed value, their location by parsing the text again with only that entry read.
pub(crate) fn entry_errors<E: DeserializeOwned>(
    text: &str,
    field: Option<&'static str>,
    value: &serde_yaml::Value,
) -> Vec<Error> {
    let list = match field {
        Some(f) => value.get(f),
        None => Some(value),
    };
    let Some(list) = list.and_then(serde_yaml::Value::as_sequence) else {
        return Vec::new();
    };
    let probes = (PROBE_BUDGET / text.len().max(1)).min(MAX_REPORTED);
    list.iter()
        .enumerate()
        .filter(|(_, v)| serde_yaml::from_value::<E>((*v).clone()).is_err())
        .take(probes)
        .filter_map(|(i, _)| probe::<E>(text, field, i))
        .collect()
}

/// Parse `text` reading only entry `index` of the list at `field` (as an `E`), skipping
/// everything else: the error of that entry, with its line and column.
fn probe<E: DeserializeOwned>(
    text: &str,
    field: Option<&'static str>,
    index: usize,
) -> Option<Error> {
    use serde::de::DeserializeSeed;
    let de = serde_yaml::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    let seed = probe::Probe::<E>::new(field, index);
    match seed.deserialize(serde_path_to_error::Deserializer::new(de, &mut track)) {
        Ok(()) => None,
        Err(e) => {
            let e = convert(serde_path_to_error::Error::new(track.path(), e));
            // Only an error inside the entry counts (the rest was skipped).
            let prefix = match field {
                Some(f) => format!("{f}[{index}]"),
                None => format!("[{index}]"),
            };
            match &e {
                Error::Input { location, .. }
                    if location
                        .path
                        .as_deref()
                        .is_some_and(|p| p.starts_with(&prefix)) =>
                {
                    Some(e)
                }
                _ => None,
            }
        }
    }
}

mod probe {
    use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    /// Reads one entry of one list of a document as an `E` and skips the rest.
    pub(super) struct Probe<E> {
        field: Option<&'static str>,
        index: usize,
        entry: PhantomData<E>,
    }

    impl<E> Probe<E> {
        pub(super) fn new(field: Option<&'static str>, index: usize) -> Self {
            Probe {
                field,
                index,
                entry: PhantomData,
            }
        }
    }

    impl<'de, E: DeserializeOwned> DeserializeSeed<'de> for Probe<E> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            match self.field {
                Some(_) => d.deserialize_map(self),
                None => d.deserialize_seq(Entries::<E>(self.index, PhantomData)),
            }
        }
    }

    impl<'de, E: DeserializeOwned> Visitor<'de> for Probe<E> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if Some(key.as_str()) == self.field {
                    map.next_value_seed(Entries::<E>(self.index, PhantomData))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }

    /// A list whose entry `.0` is read as an `E`, the others skipped.
    struct Entries<E>(usize, PhantomData<E>);

    impl<'de, E: DeserializeOwned> DeserializeSeed<'de> for Entries<E> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de, E: DeserializeOwned> Visitor<'de> for Entries<E> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            loop {
                let more = if i == self.0 {
                    seq.next_element::<E>()?.is_some()
                } else {
                    seq.next_element::<IgnoredAny>()?.is_some()
                };
                if !more {
                    return Ok(());
                }
                i += 1;
            }
        }
    }
}

/// The line and column of the value at YAML path `path` (`devices[3].kind`, `[0].id`)
/// in `text`, when it is there: the text is read again, skipping everything off the
/// path, and the value at its end is refused, which gives its position.
pub(crate) fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    use serde::de::DeserializeSeed;
    let segments = locate::segments(path)?;
    if text.len() > PROBE_BUDGET || check_shape(text).is_err() {
        return None;
    }
    let de = serde_yaml::Deserializer::from_str(text);
    match (locate::Seek(&segments)).deserialize(de) {
        Err(e) if e.to_string().contains(locate::FOUND) => {
            e.location().map(|l| (l.line(), l.column()))
        }
        _ => None,
    }
}

mod locate {
    use serde::de::{DeserializeSeed, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    /// The message of the error raised at the value sought.
    pub(super) const FOUND: &str = "devaddr-locate-found";

    pub(super) enum Segment {
        Key(String),
        Index(usize),
    }

    /// `devices[3].kind` as keys and indexes (None for what is no YAML path).
    pub(super) fn segments(path: &str) -> Option<Vec<Segment>> {
        let mut out = Vec::new();
        for part in path.split('.') {
            let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
            if !key.is_empty() {
                if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return None;
                }
                out.push(Segment::Key(key.to_string()));
            }
            while !rest.is_empty() {
                let (n, tail) = rest.split_once(']')?;
                out.push(Segment::Index(n.parse().ok()?));
                rest = tail.strip_prefix('[').unwrap_or(tail);
            }
        }
        (!out.is_empty()).then_some(out)
    }

    pub(super) struct Seek<'a>(pub(super) &'a [Segment]);

    impl<'de> DeserializeSeed<'de> for Seek<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Seek<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("anything")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let Some((Segment::Key(want), rest)) = self.0.split_first() else {
                return Err(A::Error::custom(FOUND));
            };
            while let Some(key) = map.next_key::<serde_yaml::Value>()? {
                if key.as_str() == Some(want.as_str()) {
                    return map.next_value_seed(Seek(rest));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Err(A::Error::custom("not found"))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let Some((Segment::Index(want), rest)) = self.0.split_first() else {
                return Err(A::Error::custom(FOUND));
            };
            for _ in 0..*want {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Err(A::Error::custom("not found"));
                }
            }
            seq.next_element_seed(Seek(rest))?;
            Err(A::Error::custom("not found"))
        }
        fn visit_bool<E: Error>(self, _: bool) -> Result<(), E> {
            self.leaf()
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<(), E> {
            self.leaf()
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<(), E> {
            self.leaf()
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<(), E> {
            self.leaf()
        }
        fn visit_str<E: Error>(self, _: &str) -> Result<(), E> {
            self.leaf()
        }
        fn visit_unit<E: Error>(self) -> Result<(), E> {
            self.leaf()
        }
        fn visit_none<E: Error>(self) -> Result<(), E> {
            self.leaf()
        }
    }

    impl Seek<'_> {
        fn leaf<E: Error>(self) -> Result<(), E> {
            Err(E::custom(if self.0.is_empty() {
                FOUND
            } else {
                "not found"
            }))
        }
    }
}

/// A serde_yaml error (with its path) as a bad-input error in the user's words.
fn convert(e: serde_path_to_error::Error<serde_yaml::Error>) -> Error {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let loc = inner.location();
    let mut message = inner.to_string();
    // serde_yaml appends " at line L column C"; the location is reported separately.
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    // serde_yaml may prefix the message with the path again ("devices[0]: ...").
    if let Some((head, rest)) = message.split_once(": ") {
        if !head.contains(' ') && !head.is_empty() {
            message = rest.to_string();
        }
    }
    let path = path.trim_end_matches(".?").to_string();
    let path = (!path.is_empty() && path != ".").then_some(path);
    let (code, message) = translate(path.as_deref().unwrap_or(""), &shorten_quoted(&message));
    Error::Input {
        location: Box::new(Location {
            path,
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            ..Default::default()
        }),
        message,
        code,
    }
}

use crate::topology::ADDRESS_FORMS;

/// The thing serde names as expected (`u32`, `struct DeviceEntry`), in the user's words.
fn expected_words(serde_name: &str) -> String {
    let s = serde_name.trim();
    let words = match s {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" | "u64" | "usize" => "a whole number (0 or more)",
        "i32" | "i64" => "a whole number",
        "f32" | "f64" => "a number",
        "a string" | "string" | "a borrowed string" => "a string",
        "a boolean" => "true or false",
        "a character" => "a single character",
        "a sequence" => "a list",
        "a map" => "a mapping",
        "option" => "a value",
        "struct Spec" => "a spec: a mapping with `machine:` and `devices:`",
        "struct Plan" => "a plan as `devaddr plan` writes it",
        "struct DeviceEntry" => "a device: a mapping like {id: net0, kind: virtio-net}",
        "struct ControllerEntry" => {
            "a controller: a mapping like {id: pci.1, model: pcie-root-port, index: 1}"
        }
        "struct Tunables" => {
            "policy settings: a mapping like {preset: libvirt, hotplug_reserve: 2}"
        }
        "struct PlanHeader" => {
            "the `devaddr:` header a plan starts with (as `devaddr plan` writes it)"
        }
        "struct SolverReport" => "a solver report like {status: optimal}",
        "struct Free" => "the `free:` summary of a plan",
        "struct DeviceList" => "a list of devices, or a mapping with `devices:`",
        "internally tagged enum Address"
        | "struct PciAddress"
        | "struct UsbAddress"
        | "struct DriveAddress"
        | "struct variant Address::Pci"
        | "struct variant Address::Usb"
        | "struct variant Address::Drive" => ADDRESS_FORMS,
        "untagged enum UsbPort" => "a USB port: a number, or a path like 1.3 behind a hub",
        "untagged enum OnOff" => "on or off",
        other => {
            return other
                .trim_start_matches("struct ")
                .trim_start_matches("enum ")
                .to_string()
        }
    };
    words.to_string()
}

/// What serde names as found (`integer `5``, `string "x"`), in the user's words.
fn found_words(serde_found: &str) -> String {
    let s = serde_found.trim();
    let quoted = |rest: &str| rest.trim().trim_matches('`').to_string();
    if let Some(rest) = s.strip_prefix("integer ") {
        return format!("the number {}", quoted(rest));
    }
    if let Some(rest) = s.strip_prefix("floating point ") {
        return format!("the number {}", quoted(rest));
    }
    if let Some(rest) = s.strip_prefix("boolean ") {
        return quoted(rest);
    }
    if let Some(rest) = s.strip_prefix("string ") {
        return format!("the string {rest}");
    }
    if let Some(rest) = s.strip_prefix("character ") {
        return format!("the character {}", quoted(rest));
    }
    match s {
        "sequence" => "a list".into(),
        "map" => "a mapping".into(),
        "unit value" | "unit" | "null" => "nothing (an empty value)".into(),
        "Option value" => "a value".into(),
        "enum" => "a tagged value (`!tag`)".into(),
        other => other.to_string(),
    }
}

/// The names in a serde list of expected names: `` `a`, `b` ``, `` `a` or `b` ``.
fn names(list: &str) -> Vec<String> {
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn one_of(expected: &[String]) -> String {
    match expected {
        [] => "nothing here".into(),
        [one] => one.clone(),
        _ => format!("one of {}", expected.join(", ")),
    }
}

/// A serde or serde_yaml message at YAML path `path`, as a plain sentence and its
/// [`Code`]: `invalid type: string "x", expected u32` becomes `expected a whole number (0
/// or more), found the string "x"`; unknown fields and values list what is accepted and
/// suggest a near match.
pub(crate) fn translate(path: &str, message: &str) -> (Code, String) {
    let at_address = path.ends_with("address");
    let address_hint = |m: String| {
        if at_address && !m.contains(ADDRESS_FORMS) {
            format!("{m}; expected {ADDRESS_FORMS}")
        } else {
            m
        }
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let fields = names(tail);
        let near = crate::catalog::did_you_mean(name, fields.iter().map(String::as_str));
        let what = if fields.is_empty() {
            "nothing is accepted here".to_string()
        } else {
            format!("expected {}", one_of(&fields))
        };
        return (
            Code::UnknownField,
            address_hint(format!("unknown field `{name}`; {what}{near}")),
        );
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let values = names(tail);
        let near = crate::catalog::did_you_mean(name, values.iter().map(String::as_str));
        return (
            Code::UnknownValue,
            address_hint(format!(
                "unknown value `{name}`; expected {}{near}",
                one_of(&values)
            )),
        );
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        let m = if path.is_empty() && name == "devaddr" {
            "missing the `devaddr:` header of a plan; expected a plan as `devaddr plan` writes it"
                .to_string()
        } else if at_address && name == "type" {
            format!("missing `type:` (pci, usb or drive); expected {ADDRESS_FORMS}")
        } else {
            let last = path.rsplit('.').next().unwrap_or(path);
            let whole = if path.is_empty() {
                "the document"
            } else if last.starts_with("devices[") || last.starts_with('[') {
                "every device"
            } else if last.starts_with("controllers[") {
                "every controller"
            } else {
                path
            };
            format!("missing `{name}:`, which {whole} needs")
        };
        return (Code::MissingField, address_hint(m));
    }
    for (prefix, code) in [
        ("invalid type: ", Code::WrongType),
        ("invalid value: ", Code::WrongType),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((found, expected)) = rest.rsplit_once(", expected ") {
                return (
                    code,
                    address_hint(format!(
                        "expected {}, found {}",
                        expected_words(expected),
                        found_words(found)
                    )),
                );
            }
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        if let Some((n, expected)) = rest.split_once(", expected ") {
            return (
                Code::WrongType,
                format!("expected {}, found {n} entries", expected_words(expected)),
            );
        }
    }
    if let Some(rest) = message.strip_prefix("data did not match any variant of ") {
        return (
            Code::WrongType,
            address_hint(format!("expected {}", expected_words(rest))),
        );
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return (
            Code::Duplicate,
            format!("`{name}:` is given twice; expected it once"),
        );
    }
    if message.starts_with("expected ") {
        // Our own deserializers (`expected on or off, found `x``).
        return (Code::WrongType, address_hint(message.to_string()));
    }
    // What is left comes from the YAML parser itself: a syntax error.
    let syntax = [
        "did not find expected",
        "found ",
        "while ",
        "mapping values are not allowed",
        "block sequence entries are not allowed",
        "control characters are not allowed",
        "invalid leading UTF-8",
        "unexpected end",
        "could not find expected",
        "recursion limit",
        "repetition limit",
    ];
    if syntax.iter().any(|s| message.starts_with(s)) {
        return (Code::Syntax, format!("not valid YAML or JSON: {message}"));
    }
    (Code::Invalid, address_hint(message.to_string()))
}

/// The longest quoted value an error message repeats from the input.
const MAX_QUOTED: usize = 40;

/// `message` with every double-quoted value longer than [`MAX_QUOTED`] characters cut
/// (`"<domain type='qemu'>…"`): a message names what it found, it does not echo a
/// whole document.
fn shorten_quoted(message: &str) -> String {
    let mut out = String::new();
    let mut parts = message.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push('"');
        // Odd parts (0, 2, …) after a quote are inside it.
        if i % 2 == 0 && part.chars().count() > MAX_QUOTED {
            let head: String = part.chars().take(MAX_QUOTED).collect();
            out.push_str(head.trim_end());
            out.push('…');
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Serialize `value` as YAML.
pub fn to_string<T: Serialize>(value: &T) -> String {
    to_string_sized(value, 4096)
}

/// [`to_string`] of a value whose text is expected to be about `capacity` bytes long:
/// written into a buffer of that size at once (no regrowing and copying as it fills).
pub(crate) fn to_string_sized<T: Serialize>(value: &T, capacity: usize) -> String {
    writer::write(value, capacity).unwrap_or_else(|| {
        serde_yaml::to_string(value).unwrap_or_else(|e| format!("# serialization failed: {e}\n"))
    })
}

mod reader;
mod writer;

#[cfg(test)]
mod tests {
    /// A closed `{`/`[` no longer counts: compact JSON on one line (what `json.dumps`
    /// writes) with more objects than the depth limit counts 4 levels (the line, the
    /// map, the list, one device), not 102.
    #[test]
    fn closed_flow_collections_do_not_add_depth() {
        let devices: Vec<String> = (0..100)
            .map(|i| format!("{{\"id\": \"n{i}\", \"kind\": \"virtio-net\"}}"))
            .collect();
        let text = format!("{{\"devices\": [{}]}}", devices.join(", "));
        assert_eq!(super::max_depth(&[text.as_str()]), (4, 1));
        let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
        assert!(super::max_depth(&[deep.as_str()]).0 > super::MAX_YAML_DEPTH);
    }

    /// Brackets glued to a plain scalar's text are text (a plan writes `host:
    /// 0000:66[[…]]:00.0` unquoted, and must read it again); a flow collection after an
    /// indicator, at the start or after whitespace (a tag, an anchor) still counts.
    #[test]
    fn brackets_inside_a_plain_scalar_are_text() {
        let glued = format!("host: 0000:66{}{}:00.0", "[".repeat(100), "]".repeat(100));
        assert_eq!(super::max_depth(&[glued.as_str()]), (1, 1));
        let colon = format!("host: 0000:66:{}{}00.0", "[".repeat(100), "]".repeat(100));
        assert_eq!(super::max_depth(&[colon.as_str()]), (1, 1));
        let tagged = format!("a: {}{}", "!t [".repeat(70), "]".repeat(70));
        assert!(super::max_depth(&[tagged.as_str()]).0 > super::MAX_YAML_DEPTH);
        let nested = format!("- {}{}", "[".repeat(70), "]".repeat(70));
        assert!(super::max_depth(&[nested.as_str()]).0 > super::MAX_YAML_DEPTH);
        // A glued bracket is text, and the flow mapping after it still counts.
        let key = format!("usb_p{{a: {}1{}", "{a: ".repeat(70), "}".repeat(71));
        assert!(super::max_depth(&[key.as_str()]).0 > super::MAX_YAML_DEPTH);
    }

    /// [`super::max_depth`] as it was before its runs of ordinary characters were
    /// taken at once: the oracle the faster one must match exactly.
    fn reference_max_depth(lines: &[&str]) -> (usize, usize) {
        let mut indents: Vec<usize> = Vec::new();
        let mut flow = 0usize;
        let mut quote: Option<char> = None;
        let mut block_scalar: Option<usize> = None;
        let (mut best, mut best_line) = (0, 1);
        for (n, line) in lines.iter().enumerate() {
            let indent = line.len() - line.trim_start_matches(' ').len();
            if let Some(parent) = block_scalar {
                if super::blank(line) || indent > parent {
                    continue;
                }
                block_scalar = None;
            }
            if quote.is_none() && flow == 0 && !super::blank(line) {
                while indents.last().is_some_and(|&i| i >= indent) {
                    indents.pop();
                }
                indents.push(indent);
            }
            let mut depth = indents.len() + flow;
            let mut prev: Option<char> = None; // last non-space character outside quotes
            let mut chars = line[indent..].chars().peekable();
            let mut leading = quote.is_none() && flow == 0;
            let mut raw_prev: Option<char> = None;
            while let Some(c) = chars.next() {
                let before = raw_prev.replace(c);
                if let Some(q) = quote {
                    if c == '\\' && q == '"' {
                        chars.next();
                    } else if c == q {
                        if q == '\'' && chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            quote = None;
                            prev = Some(c);
                        }
                    }
                    continue;
                }
                let next_blank = chars.peek().is_none_or(|c| c.is_whitespace());
                match c {
                    // A comment starts at a `#` after whitespace (or opening the line).
                    '#' if before.is_none_or(char::is_whitespace) => break,
                    '-' | '?' if leading && next_blank => depth += 1,
                    // Outside a flow collection a `[` or `{` opens one only as a node of its own:
                    // at the start of the line's content or after whitespace (an indicator, a
                    // tag or an anchor before it; in a plain scalar that over-counts, which is
                    // safe). Glued to other text (`0000:66:[1]`: a `:` without a space after it
                    // is text too) it is that text, and a closing one outside a collection closes
                    // nothing. Inside a flow collection every one counts.
                    '[' | '{' if flow == 0 && !before.is_none_or(char::is_whitespace) => {}
                    '[' | '{' => {
                        flow += 1;
                        depth += 1;
                    }
                    ']' | '}' => {
                        flow = flow.saturating_sub(1);
                        depth = depth.saturating_sub(1);
                    }
                    '\'' | '"'
                        if matches!(prev, None | Some('[' | '{' | ',' | ':' | '-' | '?')) =>
                    {
                        quote = Some(c)
                    }
                    _ => {}
                }
                if !c.is_whitespace() {
                    if !(matches!(c, '-' | '?') && leading && next_blank) {
                        leading = false;
                    }
                    prev = Some(c);
                }
                if depth > best {
                    best = depth;
                    best_line = n + 1;
                }
            }
            if depth > best {
                best = depth;
                best_line = n + 1;
            }
            if best > super::MAX_YAML_DEPTH {
                return (best, best_line);
            }
            // A block scalar (`key: |`, `- >-`) swallows the more indented lines below.
            let t = line.trim_end();
            if quote.is_none() && flow == 0 {
                let head = t.trim_end_matches(|c: char| c == '-' || c == '+' || c.is_ascii_digit());
                if head.ends_with(" |") || head.ends_with(" >") || head == "|" || head == ">" {
                    block_scalar = Some(indent);
                }
            }
        }
        (best, best_line)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn max_depth_matches_the_character_by_character_reference(
            text in "([ab :,#'\"\\\\\\[\\]{}?\t\n\r|>+1-]|\u{b}|\u{a0}|\u{e9}|\u{3000}){0,120}"
        ) {
            let lines = super::lines(&text);
            proptest::prop_assert_eq!(&lines, &text.lines().collect::<Vec<_>>());
            proptest::prop_assert_eq!(super::max_depth(&lines), reference_max_depth(&lines));
        }
    }

    #[test]
    fn long_quoted_values_are_cut() {
        let long = format!(
            "invalid type: string \"{}\", expected struct Spec",
            "x".repeat(500)
        );
        let short = super::shorten_quoted(&long);
        assert!(short.len() < 120, "{short}");
        assert!(short.ends_with("…\", expected struct Spec"), "{short}");
        let kept = "unknown field `machne`, expected \"machine\"";
        assert_eq!(super::shorten_quoted(kept), kept);
    }
}
