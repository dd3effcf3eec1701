//! Sizes of memory windows and BARs (`bar64: 128G`): a power of two, written with a binary
//! unit as QEMU writes them.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes that is a power of two (PCI BARs and the windows that hold them are),
/// written `128G`, `512M`, `1T` (or `128GiB`, `128GB`: units are binary) or as a plain
/// number of bytes; plans write the largest exact unit.
///
/// ```
/// use devaddr::spec::ByteSize;
/// let s: ByteSize = "128G".parse().unwrap();
/// assert_eq!(s.bytes(), 128 << 30);
/// assert_eq!(s.to_string(), "128G");
/// assert!("100G".parse::<ByteSize>().is_err()); // not a power of two
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

const UNITS: [(char, u32); 5] = [('E', 60), ('T', 40), ('G', 30), ('M', 20), ('K', 10)];

impl ByteSize {
    /// The size of `bytes` bytes, if that is a power of two.
    pub fn new(bytes: u64) -> Option<ByteSize> {
        bytes.is_power_of_two().then_some(ByteSize(bytes))
    }
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
    /// The size in MiB, rounded up (QEMU's `X-PciMmio64Mb`).
    pub fn mib(self) -> u64 {
        self.0.div_ceil(1 << 20)
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (unit, shift) in UNITS {
            if self.0 >= 1 << shift && self.0.trailing_zeros() >= shift {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<ByteSize, String> {
        let expected = "expected a power of two such as 512M, 64G or 1T (units K, M, G, T, \
                        binary)";
        let t = s.trim();
        let digits = t.chars().take_while(char::is_ascii_digit).count();
        let (num, unit) = t.split_at(digits);
        let unit = unit.trim().to_ascii_uppercase();
        let unit = unit
            .strip_suffix("IB")
            .or_else(|| unit.strip_suffix('B'))
            .unwrap_or(&unit);
        let shift = match unit {
            "" => 0,
            u => match UNITS
                .iter()
                .find(|(c, _)| u.len() == 1 && u.starts_with(*c))
            {
                Some(&(_, shift)) => shift,
                None => return Err(format!("`{s}` is not a size: {expected}")),
            },
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size: {expected}"))?;
        let bytes = n
            .checked_mul(1 << shift)
            .filter(|b| n == b >> shift)
            .ok_or_else(|| format!("`{s}` is too large: at most 8E"))?;
        ByteSize::new(bytes).ok_or_else(|| format!("`{s}` is not a power of two: {expected}"))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::N(n) => n.to_string(),
            Raw::S(s) => s,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A power of two: 512M, 64G, 1T (binary units K, M, G, T, E; \
                            optional iB/B) or a number of bytes",
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^\\s*[0-9]+\\s*([KMGTEkmgte]([iI]?[bB])?|[bB])?\\s*$"}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn sizes_read_and_write_back() {
        for (text, bytes, back) in [
            ("128G", 128u64 << 30, "128G"),
            ("128GiB", 128 << 30, "128G"),
            ("1024M", 1 << 30, "1G"),
            ("1t", 1 << 40, "1T"),
            ("4096", 4096, "4K"),
            ("1", 1, "1"),
        ] {
            let s: ByteSize = text.parse().unwrap();
            assert_eq!((s.bytes(), s.to_string().as_str()), (bytes, back), "{text}");
        }
        for bad in ["", "G", "100G", "12X", "-1G", "99999999999E", "0"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }
}
