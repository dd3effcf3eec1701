//! A direct YAML writer for [`super::to_string`]: the text serde_yaml writes, byte for
//! byte, for the values devaddr emits (block mappings and sequences of plain scalars),
//! written straight into a `String` instead of through libyaml's event emitter.
//!
//! Anything it does not write itself the way serde_yaml would is handed back to
//! serde_yaml: a string scalar that is not a simple word (one that would need quotes, or
//! looks like a number, a boolean or null) is written by serde_yaml alone (a one-line
//! scalar looks the same wherever it stands in a block document), and a value with a
//! multi-line string, an enum variant with data (a YAML tag), a map key that is not a
//! simple word or a float makes [`write`] return `None`, so that the caller writes the
//! whole document with serde_yaml.

use serde::ser::{self, Serialize};
use std::fmt;

/// `value` as serde_yaml writes it, or `None` when it holds something this writer leaves
/// to serde_yaml (see the module documentation).
pub(super) fn write<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    let mut out = String::with_capacity(64 * 1024);
    value
        .serialize(Value {
            out: &mut out,
            pos: Pos::Top,
        })
        .ok()?;
    Some(out)
}

/// Where a node stands, which decides what goes before and after it.
#[derive(Clone, Copy)]
enum Pos {
    /// The document itself.
    Top,
    /// The value of a mapping entry whose key starts at this column (`key:` is written).
    MapValue(usize),
    /// An entry of a sequence whose `-` is at this column (`- ` is written).
    SeqItem(usize),
}

impl Pos {
    /// The column of a mapping's keys at this position.
    fn map_column(self) -> usize {
        match self {
            Pos::Top => 0,
            Pos::MapValue(c) | Pos::SeqItem(c) => c + 2,
        }
    }

    /// The column of a sequence's `-` at this position (a sequence in a mapping is not
    /// indented, as serde_yaml writes it).
    fn seq_column(self) -> usize {
        match self {
            Pos::Top => 0,
            Pos::MapValue(c) => c,
            Pos::SeqItem(c) => c + 2,
        }
    }
}

/// Why this writer hands a value back to serde_yaml.
#[derive(Debug)]
pub(super) struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to serde_yaml")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Unsupported
    }
}

type Result<T = ()> = std::result::Result<T, Unsupported>;

/// Bytes a plain word may hold after its first: letters, digits, `.`, `_`, `-`, `/`.
const WORD_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/');
        c += 1;
    }
    table
};

/// Whether serde_yaml writes `s` as a plain scalar exactly as it is, decided
/// conservatively: a letter or `/` first, then letters, digits, `.`, `_`, `-`, `/`; none of
/// the words YAML reads as a boolean or null. Everything else goes to serde_yaml.
fn plain_word(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    // The words are compared only for a short word starting with one of their letters.
    (first.is_ascii_alphabetic() || first == b'/')
        && b.len() <= 128
        && b.iter().all(|&c| WORD_BYTE[usize::from(c)])
        && !(b.len() <= 5
            && matches!(first.to_ascii_lowercase(), b't' | b'f' | b'n' | b'y' | b'o')
            && ["true", "false", "null", "yes", "no", "on", "off", "y", "n"]
                .iter()
                .any(|w| w.eq_ignore_ascii_case(s)))
}

/// Writes one node at its position.
struct Value<'a> {
    out: &'a mut String,
    pos: Pos,
}

impl<'a> Value<'a> {
    /// A scalar's text, already in its final form.
    fn scalar(self, text: &str) -> Result {
        if let Pos::MapValue(_) = self.pos {
            self.out.push(' ');
        }
        self.out.push_str(text);
        self.out.push('\n');
        Ok(())
    }

    /// A string scalar: plain when it is a simple word, else as serde_yaml writes it alone
    /// (when that is one line).
    fn string(self, s: &str) -> Result {
        if plain_word(s) {
            return self.scalar(s);
        }
        if s.contains(['\n', '\r']) || !s.is_ascii() {
            return Err(Unsupported);
        }
        let alone = serde_yaml::to_string(s).map_err(|_| Unsupported)?;
        let line = alone.strip_suffix('\n').ok_or(Unsupported)?;
        if line.contains('\n') {
            return Err(Unsupported);
        }
        self.scalar(line)
    }

    fn compound(self, seq: bool) -> Compound<'a> {
        Compound {
            out: self.out,
            pos: self.pos,
            seq,
            count: 0,
        }
    }
}

/// A mapping or a sequence being written: its opening is written with its first entry, so
/// that an empty one can still be written `{}` or `[]`.
struct Compound<'a> {
    out: &'a mut String,
    pos: Pos,
    seq: bool,
    count: usize,
}

impl Compound<'_> {
    /// What goes before an entry: the line break after `key:` for the first one, the
    /// indentation for the next ones (the first entry of a sequence entry follows its `- `).
    fn begin_entry(&mut self, column: usize) {
        match (self.count, self.pos) {
            (0, Pos::Top | Pos::SeqItem(_)) => {}
            (0, Pos::MapValue(_)) => {
                self.out.push('\n');
                indent(self.out, column);
            }
            _ => indent(self.out, column),
        }
        self.count += 1;
    }

    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        let column = self.pos.seq_column();
        self.begin_entry(column);
        self.out.push_str("- ");
        value.serialize(Value {
            out: self.out,
            pos: Pos::SeqItem(column),
        })
    }

    fn key(&mut self, key: &str) -> Result {
        if !plain_word(key) {
            return Err(Unsupported);
        }
        let column = self.pos.map_column();
        self.begin_entry(column);
        self.out.push_str(key);
        self.out.push(':');
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        value.serialize(Value {
            out: self.out,
            pos: Pos::MapValue(self.pos.map_column()),
        })
    }

    fn finish(self) -> Result {
        if self.count == 0 {
            let empty = if self.seq { "[]" } else { "{}" };
            Value {
                out: self.out,
                pos: self.pos,
            }
            .scalar(empty)?;
        }
        Ok(())
    }
}

fn indent(out: &mut String, column: usize) {
    const SPACES: &str = "                                ";
    let mut left = column;
    while left > 0 {
        let n = left.min(SPACES.len());
        out.push_str(&SPACES[..n]);
        left -= n;
    }
}

/// Map keys: strings only (a struct's field names, a `BTreeMap<String, _>`'s keys).
struct Key<'a, 'b>(&'a mut Compound<'b>);

macro_rules! unsupported {
    ($($name:ident($($arg:ty),*);)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<Self::Ok> {
            Err(Unsupported)
        })*
    };
}

/// Enum variants with data: serde_yaml writes them as YAML tags, which this writer leaves
/// to it.
macro_rules! variants_with_data {
    () => {
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result {
            Err(Unsupported)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant> {
            Err(Unsupported)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant> {
            Err(Unsupported)
        }
    };
}

impl ser::Serializer for Key<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = ser::Impossible<(), Unsupported>;
    type SerializeTuple = ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = ser::Impossible<(), Unsupported>;
    type SerializeStruct = ser::Impossible<(), Unsupported>;
    type SerializeStructVariant = ser::Impossible<(), Unsupported>;
    variants_with_data!();

    fn serialize_str(self, v: &str) -> Result {
        self.0.key(v)
    }
    unsupported! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64); serialize_f32(f32); serialize_f64(f64); serialize_char(char);
        serialize_bytes(&[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result {
        Err(Unsupported)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result {
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(Unsupported)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(Unsupported)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(Unsupported)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(Unsupported)
    }
}

/// Integers as their decimal digits (as serde_yaml writes them, with itoa).
macro_rules! integers {
    ($($name:ident($ty:ty)),*) => {
        $(fn $name(self, v: $ty) -> Result {
            let v = i128::from(v);
            let mut buf = [0u8; 40];
            self.scalar(crate::digits::decimal(v.unsigned_abs(), v < 0, &mut buf))
        })*
    };
}

impl<'a> ser::Serializer for Value<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = ser::Impossible<(), Unsupported>;
    variants_with_data!();

    fn serialize_bool(self, v: bool) -> Result {
        self.scalar(if v { "true" } else { "false" })
    }
    integers! {
        serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_u64(u64)
    }
    fn serialize_str(self, v: &str) -> Result {
        self.string(v)
    }
    fn serialize_none(self) -> Result {
        self.scalar("null")
    }
    fn serialize_unit(self) -> Result {
        self.scalar("null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result {
        self.scalar("null")
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        self.string(variant)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result {
        v.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result {
        v.serialize(self)
    }
    unsupported! {
        serialize_f32(f32); serialize_f64(f64); serialize_char(char); serialize_bytes(&[u8]);
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>> {
        Ok(self.compound(true))
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>> {
        Ok(self.compound(true))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>> {
        Ok(self.compound(true))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>> {
        Ok(self.compound(false))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>> {
        Ok(self.compound(false))
    }
}

/// The sequence-like serde traits: every element is a sequence entry.
macro_rules! sequence_like {
    ($($trait:ident::$method:ident),*) => {
        $(impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Unsupported;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result {
                self.item(v)
            }
            fn end(self) -> Result {
                self.finish()
            }
        })*
    };
}

sequence_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result {
        k.serialize(Key(self))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result {
        self.value(v)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result {
        self.key(key)?;
        self.value(v)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::write;
    use std::collections::BTreeMap;

    /// Words YAML may read as a boolean or null, in every case, and words next to them:
    /// each written as serde_yaml writes it (quoted or plain), as a value and as a key.
    #[test]
    fn boolean_and_null_like_words_match_serde_yaml() {
        let mut words = Vec::new();
        for w in [
            "true", "false", "null", "yes", "no", "on", "off", "y", "n", "tru", "yess", "nul", "o",
            "f", "t", "of", "nn", "ye", "offf", "truex", "falsey", "nulls", "onoff", "/n",
        ] {
            words.push(w.to_string());
            words.push(w.to_uppercase());
            let mut cap = w.to_string();
            cap[..1].make_ascii_uppercase();
            words.push(cap);
        }
        for w in &words {
            let seq = vec![w.as_str()];
            let map: BTreeMap<&str, u8> = [(w.as_str(), 1)].into();
            let ours = write(&seq).unwrap_or_else(|| serde_yaml::to_string(&seq).unwrap());
            assert_eq!(ours, serde_yaml::to_string(&seq).unwrap(), "{w:?}");
            let ours = write(&map).unwrap_or_else(|| serde_yaml::to_string(&map).unwrap());
            assert_eq!(ours, serde_yaml::to_string(&map).unwrap(), "{w:?}");
        }
    }

    /// The shapes serde_yaml writes in a block document, each compared with serde_yaml's
    /// own text.
    #[test]
    fn writes_what_serde_yaml_writes() {
        #[derive(serde::Serialize)]
        struct Inner {
            a: u32,
            list: Vec<String>,
            empty: Vec<u8>,
            map: BTreeMap<String, i64>,
            none: Option<u8>,
        }
        #[derive(serde::Serialize)]
        enum Mode {
            #[serde(rename = "pack")]
            Pack,
        }
        #[derive(serde::Serialize)]
        struct Outer {
            name: String,
            flag: bool,
            mode: Mode,
            nested: Inner,
            items: Vec<Inner>,
            grid: Vec<Vec<u8>>,
            words: Vec<&'static str>,
            unit: (),
            emptymap: BTreeMap<String, u8>,
        }
        let inner = |n: u32| Inner {
            a: n,
            list: vec!["x".into(), "y-1.z/w".into()],
            empty: vec![],
            map: [("k".to_string(), -3), ("l".to_string(), 4)].into(),
            none: None,
        };
        let v = Outer {
            name: "pcie-root-port".into(),
            flag: true,
            mode: Mode::Pack,
            nested: inner(1),
            items: vec![inner(2), inner(3)],
            grid: vec![vec![1, 2], vec![], vec![3]],
            words: vec![
                "true",
                "Null",
                "yes",
                "0x1f",
                "0123",
                "1.5",
                "",
                " lead",
                "a: b",
                "x #y",
                "-a",
                "[a]",
                "a,b",
                "/usr/share/x.fd",
                "host bridge (MCH)",
                "~",
                "'q'",
                ".inf",
                "@a",
                "%",
                "a\tb",
                "e1000e",
                "n",
                "y",
                "on",
            ],
            unit: (),
            emptymap: BTreeMap::new(),
        };
        let ours = write(&v).expect("written directly");
        assert_eq!(ours, serde_yaml::to_string(&v).unwrap());
        assert_eq!(
            write(&vec![inner(4)]).unwrap(),
            serde_yaml::to_string(&vec![inner(4)]).unwrap()
        );
        assert_eq!(write(&Vec::<u8>::new()).unwrap(), "[]\n");
        let ints = (0u8, u64::MAX, i64::MIN, -7i32, 10u16, 1_000_000u32);
        assert_eq!(write(&ints).unwrap(), serde_yaml::to_string(&ints).unwrap());
        assert_eq!(write("a b").unwrap(), serde_yaml::to_string("a b").unwrap());
    }

    /// What this writer leaves to serde_yaml: multi-line strings, floats, tagged variants,
    /// keys that are not simple words.
    #[test]
    fn leaves_the_rest_to_serde_yaml() {
        #[derive(serde::Serialize)]
        enum Tagged {
            V(u8),
        }
        assert!(write(&vec!["two\nlines"]).is_none());
        assert!(write(&1.5f64).is_none());
        assert!(write(&Tagged::V(1)).is_none());
        assert!(write(&BTreeMap::from([("a b", 1)])).is_none());
        assert!(write(&BTreeMap::from([(1, 1)])).is_none());
        assert!(write(&"é").is_none());
    }
}
