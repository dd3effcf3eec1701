//! The PCI addresses in use while a plan is verified, each with the owner that claimed it
//! last: a hash map keyed by (domain, bus, slot, function) with the light hash of
//! [`crate::light_hash`].

use super::{PciKey, Who};
use crate::light_hash::LightMap;

/// Addresses in use and their owners.
pub(super) type Used<'u> = LightMap<PciKey, Who<'u>>;

/// An empty [`Used`] with room for `n` addresses.
pub(super) fn with_capacity<'u>(n: usize) -> Used<'u> {
    crate::light_hash::map(n)
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
