//! A direct YAML writer for [`super::to_string`]: the text serde_yaml writes, byte for
//! byte, for the values devaddr emits (block mappings and sequences of plain scalars),
//! written straight into one buffer, sized by the caller, instead of through libyaml's
//! event emitter. Written for speed (a 200-device plan is 4,000 lines): a struct's field
//! names are checked once and their `name:` copied as fixed-size blocks, like the
//! indentation and the numbers; words are checked eight bytes at a time.
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
/// to serde_yaml (see the module documentation). `capacity`: the bytes to reserve, the
/// expected length of the text (so that the text is written once, without regrowing).
pub(super) fn write<T: Serialize + ?Sized>(value: &T, capacity: usize) -> Option<String> {
    let mut w = Writer {
        out: Vec::with_capacity(capacity),
        slots: [0; FIELD_SLOTS],
        fields: Vec::new(),
    };
    value
        .serialize(Value {
            w: &mut w,
            pos: Pos::Top,
        })
        .ok()?;
    // Only whole `str`s and ASCII are written: this holds, and costs one ASCII scan.
    String::from_utf8(w.out).ok()
}

/// The slots of the field names' hash table ([`Writer::field`]; 255 names at most).
const FIELD_SLOTS: usize = 256;

/// The longest field name remembered (`name:` in [`Field::text`]).
const FIELD_TEXT: usize = 32;

/// A struct field name found to be a plain word, and its `name:` ready to copy.
#[derive(Clone, Copy)]
struct Field {
    /// The name's address and length (a `&'static str`: the same name is the same text).
    id: (usize, usize),
    /// `name:`, then zeros.
    text: [u8; FIELD_TEXT],
}

/// The text being written, and the struct field names seen so far.
struct Writer {
    out: Vec<u8>,
    /// Field names found plain, by the slot their address hashes to (the index in
    /// `fields` plus one; 0: none): a struct's field names are `&'static str`s, the same
    /// few written thousands of times, so each is checked once (not at every entry), and
    /// its `name:` is copied as a fixed-size block.
    slots: [u8; FIELD_SLOTS],
    fields: Vec<Field>,
}

impl Writer {
    /// Writes `key:` for the field name `key` when it is a plain word ([`plain_word`],
    /// remembered), else fails.
    #[inline(always)]
    fn field(&mut self, key: &'static str) -> Result {
        let id = (key.as_ptr() as usize, key.len());
        // Fibonacci hashing of the address: the top bits pick the first slot; the next
        // ones are tried in turn (there is always a free one: 255 names at most).
        let mut slot = (id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) % FIELD_SLOTS;
        loop {
            let Some(field) = usize::from(self.slots[slot])
                .checked_sub(1)
                .and_then(|i| self.fields.get(i))
            else {
                return self.new_field(key, slot);
            };
            if field.id == id {
                put_first(&mut self.out, &field.text, key.len() + 1);
                return Ok(());
            }
            slot = (slot + 1) % FIELD_SLOTS;
        }
    }

    /// [`Writer::field`] of a name not remembered, `slot` the free slot for it: checked,
    /// written, and remembered there (unless too long, or the table is full).
    #[cold]
    fn new_field(&mut self, key: &'static str, slot: usize) -> Result {
        if !plain_word(key) {
            return Err(Unsupported);
        }
        if let (true, Ok(index)) = (key.len() < FIELD_TEXT, u8::try_from(self.fields.len() + 1)) {
            let mut text = [0; FIELD_TEXT];
            text[..key.len()].copy_from_slice(key.as_bytes());
            text[key.len()] = b':';
            self.fields.push(Field {
                id: (key.as_ptr() as usize, key.len()),
                text,
            });
            self.slots[slot] = index;
        }
        self.out.extend_from_slice(key.as_bytes());
        self.out.push(b':');
        Ok(())
    }
}

/// Appends the first `len` bytes of `block` (`len` at most `N`) to `out`: a copy of
/// the whole fixed-size block (a few vector moves, no call) cut back to `len`.
#[inline]
fn put_first<const N: usize>(out: &mut Vec<u8>, block: &[u8; N], len: usize) {
    let at = out.len();
    out.extend_from_slice(block);
    out.truncate(at + len);
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
/// the words YAML reads as a boolean or null (in any case). Everything else goes to
/// serde_yaml.
fn plain_word(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'/')
        && b.len() <= 128
        && word_bytes(b)
        && (b.len() > 5
            || !matches!(first | 0x20, b't' | b'f' | b'n' | b'y' | b'o')
            || !boolean_or_null(b))
}

/// Whether every byte of `b` is a [`WORD_BYTE`]: eight at a time ([`word_chunk`]; the
/// last eight overlap the ones before when the length is not a multiple of eight), one
/// at a time below eight.
#[inline]
fn word_bytes(b: &[u8]) -> bool {
    let n = b.len();
    if n < 8 {
        return b.iter().all(|&c| WORD_BYTE[usize::from(c)]);
    }
    let chunk = |at: usize| {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(eight)
    };
    let mut at = 0;
    while at + 8 <= n {
        if !word_chunk(chunk(at)) {
            return false;
        }
        at += 8;
    }
    at == n || word_chunk(chunk(n - 8))
}

/// Whether all eight bytes of `x` are [`WORD_BYTE`]s, by arithmetic on the whole word:
/// each byte's top bit says whether it is in a range (`-` to `9`: `-`, `.`, `/` and the
/// digits; the letters, with capitals folded onto small ones by `| 0x20`) or `_`.
fn word_chunk(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    const LOWS: u64 = !TOPS;
    if x & TOPS != 0 {
        return false;
    }
    // With every byte below 0x80, byte + (0x80 - lo) carries into no other byte and has
    // its top bit set exactly when the byte is at least `lo`.
    let at_least = |x: u64, lo: u8| x + ONES * u64::from(0x80 - lo);
    let within = |x: u64, lo: u8, hi: u8| at_least(x, lo) & !at_least(x, hi + 1);
    let letters = within(x | (ONES * 0x20), b'a', b'z');
    let punctuation = within(x, b'-', b'9');
    // A zero byte of `z` (a `_` of `x`), exactly: its low bits plus 0x7f do not reach
    // the top bit, and its own top bit is clear.
    let z = x ^ (ONES * u64::from(b'_'));
    let underscore = !(((z & LOWS) + LOWS) | z | LOWS);
    (letters | punctuation | underscore) & TOPS == TOPS
}

/// Whether `b` (at most 5 bytes) is, in any case, one of the words YAML may read as a
/// boolean or null.
fn boolean_or_null(b: &[u8]) -> bool {
    let mut lower = [0u8; 5];
    for (l, c) in lower.iter_mut().zip(b) {
        *l = c.to_ascii_lowercase();
    }
    matches!(
        &lower[..b.len().min(5)],
        b"true" | b"false" | b"null" | b"yes" | b"no" | b"on" | b"off" | b"y" | b"n"
    )
}

/// Writes one node at its position.
struct Value<'a> {
    w: &'a mut Writer,
    pos: Pos,
}

impl<'a> Value<'a> {
    /// A scalar's text, already in its final form.
    #[inline]
    fn scalar(self, text: &[u8]) -> Result {
        let out = &mut self.w.out;
        if let Pos::MapValue(_) = self.pos {
            out.push(b' ');
        }
        out.extend_from_slice(text);
        out.push(b'\n');
        Ok(())
    }

    /// A string scalar: plain when it is a simple word, else as serde_yaml writes it alone
    /// (when that is one line).
    #[inline]
    fn string(self, s: &str) -> Result {
        if plain_word(s) {
            return self.scalar(s.as_bytes());
        }
        self.quoted(s)
    }

    /// A string scalar that is not a simple word, as serde_yaml writes it alone (when
    /// that is one line).
    #[cold]
    fn quoted(self, s: &str) -> Result {
        if s.contains(['\n', '\r']) || !s.is_ascii() {
            return Err(Unsupported);
        }
        let alone = serde_yaml::to_string(s).map_err(|_| Unsupported)?;
        let line = alone.strip_suffix('\n').ok_or(Unsupported)?;
        if line.contains('\n') {
            return Err(Unsupported);
        }
        self.scalar(line.as_bytes())
    }

    /// An integer as its decimal digits (as serde_yaml writes it, with itoa): ` -digits\n`
    /// put together in a fixed block and copied in one piece.
    #[inline(always)]
    fn integer(self, negative: bool, n: u64) -> Result {
        let mut block = [b' '; 24];
        let mut len = usize::from(matches!(self.pos, Pos::MapValue(_)));
        if negative {
            block[len] = b'-';
            len += 1;
        }
        let digits = crate::digits::digit_count(n);
        crate::digits::write_digits(n, &mut block[len..len + digits]);
        len += digits;
        block[len] = b'\n';
        put_first(&mut self.w.out, &block, len + 1);
        Ok(())
    }

    fn compound(self, seq: bool) -> Compound<'a> {
        Compound {
            w: self.w,
            pos: self.pos,
            seq,
            first: true,
        }
    }
}

/// A mapping or a sequence being written: its opening is written with its first entry, so
/// that an empty one can still be written `{}` or `[]`.
struct Compound<'a> {
    w: &'a mut Writer,
    pos: Pos,
    seq: bool,
    /// No entry written yet.
    first: bool,
}

/// A line break and the most indentation written with one fixed-size copy (deeper is
/// written in parts).
const BREAK_AND_SPACES: [u8; 65] = {
    let mut block = [b' '; 65];
    block[0] = b'\n';
    block
};

/// Spaces for the indentation of one line.
const SPACES: [u8; 64] = [b' '; 64];

impl Compound<'_> {
    /// What goes before an entry: the line break after `key:` for the first one, the
    /// indentation for the next ones (the first entry of a sequence entry follows its `- `).
    #[inline(always)]
    fn begin_entry(&mut self, column: usize) {
        let out = &mut self.w.out;
        if !self.first {
            if column < SPACES.len() {
                put_first(out, &SPACES, column);
            } else {
                out.resize(out.len() + column, b' ');
            }
        } else {
            self.first = false;
            if let Pos::MapValue(_) = self.pos {
                if column < SPACES.len() {
                    put_first(out, &BREAK_AND_SPACES, column + 1);
                } else {
                    out.push(b'\n');
                    out.resize(out.len() + column, b' ');
                }
            }
        }
    }

    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        let column = self.pos.seq_column();
        self.begin_entry(column);
        self.w.out.extend_from_slice(b"- ");
        value.serialize(Value {
            w: self.w,
            pos: Pos::SeqItem(column),
        })
    }

    /// `key:` at its place (a map's key: any string that is a plain word).
    fn key(&mut self, key: &str) -> Result {
        if !plain_word(key) {
            return Err(Unsupported);
        }
        self.begin_entry(self.pos.map_column());
        let out = &mut self.w.out;
        out.extend_from_slice(key.as_bytes());
        out.push(b':');
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        value.serialize(Value {
            w: self.w,
            pos: Pos::MapValue(self.pos.map_column()),
        })
    }

    fn finish(self) -> Result {
        if self.first {
            let empty: &[u8] = if self.seq { b"[]" } else { b"{}" };
            Value {
                w: self.w,
                pos: self.pos,
            }
            .scalar(empty)?;
        }
        Ok(())
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

/// Integers as their decimal digits: the signed types, the unsigned types.
macro_rules! integers {
    ($($name:ident($ty:ty)),*; $($uname:ident($uty:ty)),*) => {
        $(fn $name(self, v: $ty) -> Result {
            self.integer(v < 0, i64::from(v).unsigned_abs())
        })*
        $(fn $uname(self, v: $uty) -> Result {
            self.integer(false, u64::from(v))
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
        self.scalar(if v { b"true" } else { b"false" })
    }
    integers! {
        serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64);
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_u64(u64)
    }
    fn serialize_str(self, v: &str) -> Result {
        self.string(v)
    }
    fn serialize_none(self) -> Result {
        self.scalar(b"null")
    }
    fn serialize_unit(self) -> Result {
        self.scalar(b"null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result {
        self.scalar(b"null")
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
        // A name that is not a plain word fails the whole text (its indentation written
        // before that does not matter).
        self.begin_entry(self.pos.map_column());
        self.w.field(key)?;
        self.value(v)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    /// [`super::write`] from an empty buffer (the text grows as it is written).
    fn write<T: serde::Serialize + ?Sized>(value: &T) -> Option<String> {
        super::write(value, 0)
    }

    /// The word check eight bytes at a time agrees with the byte table: every byte value
    /// at every position of words of every length up to 24 (the rest of each word a
    /// valid byte), and random byte strings.
    #[test]
    fn word_bytes_match_the_byte_table() {
        use super::{word_bytes, WORD_BYTE};
        let reference = |b: &[u8]| b.iter().all(|&c| WORD_BYTE[usize::from(c)]);
        for len in 1..=24 {
            for at in 0..len {
                for c in 0..=255u8 {
                    for fill in [b'a', b'Z', b'_', b'-', b'9', b'/'] {
                        let mut word = vec![fill; len];
                        word[at] = c;
                        assert_eq!(word_bytes(&word), reference(&word), "{word:?}");
                    }
                }
            }
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let word: Vec<u8> = (0..len)
                .map(|i| {
                    let r = seed.rotate_left(i as u32 * 7) as u8;
                    // Mostly bytes near the ranges' edges, some anything.
                    if r.is_multiple_of(4) {
                        r
                    } else {
                        b"-./09:@AZ[`az{_^,"[usize::from(r) % 17]
                    }
                })
                .collect();
            assert_eq!(word_bytes(&word), reference(&word), "{word:?}");
        }
    }

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
