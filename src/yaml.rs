//! The one place that touches the YAML library, so it can be swapped (serde_norway is a
//! drop-in replacement for serde_yaml) in one line.

use crate::error::{Error, Location};
use crate::limits::MAX_YAML_DEPTH;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn at_line(line: usize, message: String) -> Error {
    Error::Input {
        location: Location {
            line: Some(line),
            ..Default::default()
        },
        message,
    }
}

/// Whether a line holds nothing but whitespace or a comment.
fn blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Refuse what the YAML parser would take without a location, or take too long over:
/// no document at all, a second document, collections nested deeper than
/// [`MAX_YAML_DEPTH`].
fn check_shape(text: &str) -> Result<(), Error> {
    let lines: Vec<&str> = text.lines().collect();
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
    Ok(())
}

/// An upper estimate of how deep YAML collections nest, and the line where the depth
/// first passes the limit (or the deepest line): block levels by indentation, one level
/// per `- `/`? ` indicator opening a line, one per open `[`/`{`. Quoted scalars,
/// comments and block scalars are skipped. Linear in the size of the text.
fn max_depth(lines: &[&str]) -> (usize, usize) {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    let mut block_scalar: Option<usize> = None;
    let (mut best, mut best_line) = (0, 1);
    for (n, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
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
                '[' | '{' => {
                    flow += 1;
                    depth += 1;
                }
                ']' | '}' => flow = flow.saturating_sub(1),
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

/// Parse YAML (JSON is valid YAML) into `T`; errors carry the YAML path, line and column.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    check_shape(text)?;
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
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
        let message = shorten_quoted(&message);
        Error::Input {
            location: Location {
                file: None,
                path: (!path.is_empty() && path != ".").then_some(path),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                device: None,
            },
            message,
        }
    })
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
    serde_yaml::to_string(value).unwrap_or_else(|e| format!("# serialization failed: {e}\n"))
}

#[cfg(test)]
mod tests {
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
