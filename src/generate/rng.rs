//! Seeded random streams. Every consumer gets its own ChaCha8 stream, so adding
//! a draw in one extract never shifts the values of another, and output depends
//! only on the options and the seed.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Stream families; the tag keeps streams of different roles apart.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Person = 1,
    Profiles = 2,
    Transactions = 3,
    Communications = 4,
    Suppressions = 5,
    /// A person's purchase behaviour (rate, dropout, spend, purchase days).
    Behaviour = 6,
}

/// A generator for `family`, item `index` (a person id or a day number).
pub fn stream_rng(seed: u64, family: Stream, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((family as u64) << 56) ^ index);
    rng
}

/// The generator that person `id` is derived from.
pub fn person_rng(seed: u64, id: u64) -> ChaCha8Rng {
    stream_rng(seed, Stream::Person, id)
}

/// A well-mixed 64-bit value of `(a, b)` (SplitMix64 finaliser), for per-item
/// values that must be recomputable without a generator (e.g. a row's time).
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
