//! Reading an input file (spec, plan, device list, domain XML): bounded in size
//! ([`crate::limits::MAX_INPUT_BYTES`]) and valid UTF-8, with the byte offset and line
//! of the first invalid byte when it is not.

use crate::error::{Code, Error, Location};
use crate::limits::MAX_INPUT_BYTES;
use std::io::Read;

fn bad(file: &str, line: Option<usize>, message: String, code: Code) -> Error {
    Error::Input {
        location: Box::new(Location {
            file: Some(file.to_string()),
            line,
            ..Default::default()
        }),
        message,
        code,
    }
}

/// How an input path is named in messages: `-` is `<stdin>`.
pub fn display_name(path: &str) -> &str {
    if path == "-" {
        "<stdin>"
    } else {
        path
    }
}

/// What an input document is, judged by its content (never by its file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A libvirt domain: XML whose root element is `<domain>`.
    Domain,
    /// YAML or JSON: a spec, a plan or a device list.
    Yaml,
}

/// Judge what `text` (named `file` in errors) is. XML with another root element, or text
/// that starts like XML but is not, is refused with a message that says what was
/// `expected` (`"a spec, a plan or a libvirt <domain>"`) and what was found, without
/// repeating the document.
pub fn detect(text: &str, file: &str, expected: &str) -> Result<Kind, Error> {
    if crate::libvirt::is_domain_xml(text) {
        return Ok(Kind::Domain);
    }
    let t = text.trim_start();
    if !t.starts_with('<') {
        return Ok(Kind::Yaml);
    }
    let found = match crate::xml::Document::parse(text) {
        Ok(d) => format!("XML whose root element is <{}>", d.root.name),
        Err(e) => format!(
            "text starting with '<' that is not well-formed XML (line {}: {})",
            e.line, e.message
        ),
    };
    Err(bad(
        file,
        None,
        format!("found {found}; expected {expected}"),
        Code::WrongDocument,
    ))
}

/// Read `path` (`-` is standard input) as text.
pub fn read(path: &str) -> Result<String, Error> {
    let name = display_name(path);
    let mut bytes = Vec::new();
    let limit = MAX_INPUT_BYTES as u64 + 1;
    let r = if path == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    r.map_err(|e| bad(name, None, format!("cannot read: {e}"), Code::Unreadable))?;
    from_bytes(&bytes, name)
}

/// Check the size and encoding of an input already in memory.
pub fn from_bytes(bytes: &[u8], file: &str) -> Result<String, Error> {
    if bytes.len() > MAX_INPUT_BYTES {
        // Located where the limit is passed: the line holding byte MAX_INPUT_BYTES.
        let line = bytes[..MAX_INPUT_BYTES]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        return Err(bad(
            file,
            Some(line),
            format!(
                "input is larger than {} MiB ({MAX_INPUT_BYTES} bytes), devaddr's limit, from \
                 byte offset {MAX_INPUT_BYTES} on; expected a spec, plan or domain of at most \
                 that size",
                MAX_INPUT_BYTES >> 20
            ),
            Code::TooLarge,
        ));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(bad(
                file,
                Some(line),
                format!(
                    "invalid UTF-8 at byte offset {at} (byte {:#04x}); expected UTF-8 text",
                    bytes[at]
                ),
                Code::Encoding,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{detect, Kind};

    #[test]
    fn kinds_are_judged_by_content() {
        let what = "a spec, a plan or a libvirt <domain>";
        assert_eq!(
            detect("  <domain type='kvm'/>", "f", what).unwrap(),
            Kind::Domain
        );
        assert_eq!(detect("machine: q35\n", "f", what).unwrap(), Kind::Yaml);
        assert_eq!(
            detect("{\"machine\": \"q35\"}", "f", what).unwrap(),
            Kind::Yaml
        );
        let e = detect("<network><name>x</name></network>", "net.xml", what).unwrap_err();
        assert_eq!(
            e.to_string(),
            "net.xml: found XML whose root element is <network>; expected a spec, a plan or \
             a libvirt <domain>"
        );
    }
}
