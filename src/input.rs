//! Reading an input file (spec, plan, device list, domain XML): bounded in size
//! ([`crate::limits::MAX_INPUT_BYTES`]) and valid UTF-8, with the byte offset and line
//! of the first invalid byte when it is not.

use crate::error::{Error, Location};
use crate::limits::MAX_INPUT_BYTES;
use std::io::Read;

fn bad(file: &str, line: Option<usize>, message: String) -> Error {
    Error::Input {
        location: Location {
            file: Some(file.to_string()),
            line,
            ..Default::default()
        },
        message,
    }
}

/// Read `path` (`-` is standard input) as text.
pub fn read(path: &str) -> Result<String, Error> {
    let name = if path == "-" { "<stdin>" } else { path };
    let mut bytes = Vec::new();
    let limit = MAX_INPUT_BYTES as u64 + 1;
    let r = if path == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    r.map_err(|e| bad(name, None, format!("cannot read: {e}")))?;
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
            ))
        }
    }
}
