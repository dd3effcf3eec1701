//! The PCI addresses in use while a plan is verified, each with the owner that claimed it
//! last: a hash map keyed by (domain, bus, slot, function) with a light hash.

use super::{PciKey, Who};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Addresses in use and their owners.
pub(super) type Used<'u> = HashMap<PciKey, Who<'u>, BuildHasherDefault<AddressHasher>>;

/// An empty [`Used`] with room for `n` addresses.
pub(super) fn with_capacity<'u>(n: usize) -> Used<'u> {
    Used::with_capacity_and_hasher(n, BuildHasherDefault::default())
}

/// Hashes the four numbers of a PCI address with a rotate, an xor and a multiply each
/// (the multiply-rotate hash of the Rust compiler's own tables) instead of SipHash, which
/// cost more than the rest of a claim. A plan's addresses are few and bounded: a plan
/// built to make them collide would make the map slower, never the answer different.
#[derive(Default)]
pub(super) struct AddressHasher(u64);

impl AddressHasher {
    fn mix(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.mix(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map finds what it holds and nothing else, whatever the numbers.
    #[test]
    fn finds_every_address_it_holds() {
        let mut used = with_capacity(0);
        let keys: Vec<PciKey> = (0..4u32)
            .flat_map(|d| (0..70u32).map(move |b| (d * 0x1_0000, b * 3)))
            .flat_map(|(d, b)| (0..32u8).map(move |s| (d, b, s, s % 8)))
            .collect();
        for (n, &k) in keys.iter().enumerate() {
            assert!(used.insert(k, Who::Chipset("x")).is_none(), "{n}: {k:?}");
        }
        for &k in &keys {
            assert!(used.contains_key(&k));
            assert!(!used.contains_key(&(k.0, k.1 + 1, k.2, k.3)));
        }
        assert!(used.insert(keys[5], Who::Chipset("y")).is_some());
    }
}
