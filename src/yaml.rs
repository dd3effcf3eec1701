//! The one place that touches the YAML library, so it can be swapped (serde_norway is a
//! drop-in replacement for serde_yaml) in one line.

use crate::error::{Error, Location};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Parse YAML (JSON is valid YAML) into `T`; errors carry the YAML path, line and column.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
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
        Error::Input {
            location: Location {
                file: None,
                path: (!path.is_empty() && path != ".").then_some(path),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
            },
            message,
        }
    })
}

/// Serialize `value` as YAML.
pub fn to_string<T: Serialize>(value: &T) -> String {
    serde_yaml::to_string(value).unwrap_or_else(|e| format!("# serialization failed: {e}\n"))
}
