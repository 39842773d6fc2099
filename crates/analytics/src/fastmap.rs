//! A fast, fixed hash for the hot aggregation maps (model names, team keys, dates).
//!
//! The std SipHash costs more than the rest of the per-record work when a million records each
//! touch five maps. This is the FxHash mixing function (as in rustc): not DoS-resistant, which is
//! acceptable because a tenant's keys can only slow that tenant's own analysis. It must not be
//! used for maps keyed by anything crossing tenants.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_as_a_map() {
        let mut m: FastMap<&str, u32> = FastMap::default();
        for (i, k) in ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "a", ""]
            .iter()
            .enumerate()
        {
            m.insert(k, i as u32);
        }
        assert_eq!(m.get("gpt-4o-mini"), Some(&1));
        assert_eq!(m.get(""), Some(&4));
        assert_eq!(m.len(), 5);
    }
}
