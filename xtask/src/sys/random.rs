//! Tokens no other run can share or output can guess: the process's random hash keys (fresh
//! for each hasher), its id and the clock.

use std::hash::{BuildHasher, Hasher};

/// `bits` (a multiple of 4, at most 128) of randomness as lowercase hex.
pub fn token(bits: u32) -> String {
    let half = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    };
    let hex = format!("{:016x}{:016x}", half(), half());
    hex[..(bits.min(128) / 4) as usize].to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_differ_and_have_the_length_asked_for() {
        assert_ne!(super::token(128), super::token(128));
        assert_eq!(super::token(128).len(), 32);
        assert_eq!(super::token(48).len(), 12);
        assert!(super::token(48).bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
