//! Every random stream of a run, derived from `train.seed` in one place.
//!
//! Each stream depends only on (seed, epoch, batch or sample), never on what ran
//! before in the process: that is what makes `--resume` replay a run exactly. The
//! constants are those the first runs were made with; changing one changes every
//! run's draws, so a resumed old run would no longer match its uninterrupted self.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// libtorch's global generator before the network is built: weight initialisation.
pub(crate) fn init(seed: u64) {
    tch::manual_seed(seed as i64);
}

/// libtorch's global generator before training batch `batch` of `epoch`: dropout
/// (and anything else libtorch draws inside the forward pass).
pub(crate) fn dropout(seed: u64, epoch: usize, batch: usize) {
    tch::manual_seed((seed.wrapping_mul(7_919) ^ ((epoch as u64) << 32) ^ batch as u64) as i64);
}

/// The order of an epoch's training samples.
pub(crate) fn shuffle(seed: u64, epoch: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003) + epoch as u64)
}

/// MixUp / CutMix of training batch `batch` of `epoch`.
pub(crate) fn mix(seed: u64, epoch: usize, batch: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ 0x4D49_5800_0000_0000 ^ ((epoch as u64) << 24) ^ batch as u64)
}

/// The device feed's flips and offsets for batch `batch` of `epoch`.
pub(crate) fn device_batch(seed: u64, epoch: u64, batch: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (epoch << 40) ^ batch as u64)
}

/// The `[augment]` pipeline (cnnlab-augment draws per (seed, epoch, sample)).
pub(crate) fn augment(seed: u64) -> u64 {
    seed
}

/// The augmentation of the imbalance strategies' augmented copies.
pub(crate) fn copies(seed: u64) -> u64 {
    seed ^ 0xC0FF_EE00
}

/// The imbalance strategy's per-epoch sample plan (cnnlab-data mixes in the epoch).
pub(crate) fn imbalance_plan(seed: u64) -> u64 {
    seed
}
