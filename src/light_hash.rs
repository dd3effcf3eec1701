//! A light hash for the maps of one planning run (PCI addresses, plan ids): a rotate, an
//! xor and a multiply per word (the multiply-rotate hash of the Rust compiler's own
//! tables) instead of SipHash, which costs more than the rest of a lookup. The keys are a
//! plan's own and few: a plan built to make them collide makes a map slower, never an
//! answer different.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A [`HashMap`] with the light hash.
pub(crate) type LightMap<K, V> = HashMap<K, V, BuildHasherDefault<LightHasher>>;
/// A [`HashSet`] with the light hash.
pub(crate) type LightSet<K> = HashSet<K, BuildHasherDefault<LightHasher>>;

/// An empty [`LightMap`] with room for `n` entries.
pub(crate) fn map<K, V>(n: usize) -> LightMap<K, V> {
    LightMap::with_capacity_and_hasher(n, BuildHasherDefault::default())
}

/// An empty [`LightSet`] with room for `n` entries.
pub(crate) fn set<K>(n: usize) -> LightSet<K> {
    LightSet::with_capacity_and_hasher(n, BuildHasherDefault::default())
}

/// The hasher of [`LightMap`] and [`LightSet`].
#[derive(Default)]
pub(crate) struct LightHasher(u64);

impl LightHasher {
    fn mix(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for LightHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            self.mix(u64::from_le_bytes(word));
        }
        for &b in words.remainder() {
            self.mix(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

#[cfg(test)]
mod tests {
    /// Sets find what they hold and nothing else: strings of every length around the
    /// word size, and prefixes of each other.
    #[test]
    fn finds_every_string_it_holds() {
        let keys: Vec<String> = (0..40)
            .flat_map(|n| (0..20u8).map(move |c| format!("{}{}", "x".repeat(n), c)))
            .collect();
        let mut set = super::set(0);
        for k in &keys {
            assert!(set.insert(k.as_str()), "{k}");
        }
        for k in &keys {
            assert!(set.contains(k.as_str()));
            assert!(!set.contains(format!("{k}y").as_str()));
        }
        assert!(!set.insert(keys[7].as_str()));
    }
}
