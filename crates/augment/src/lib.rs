//! cnnlab-augment: seeded image augmentation on raw HWC u8 buffers.
//!
//! A [`Pipeline`] is an ordered list of [`Op`]s, each applied with its probability.
//! Randomness is derived from `(seed, epoch, sample index)` alone, so the same sample
//! in the same epoch gets the same augmentation whichever thread handles it.
//!
//! ```
//! use cnnlab_augment::{Op, Pipeline, Shape};
//! let pipe = Pipeline::new(vec![Op::RandomCrop { padding: 4 }, Op::Hflip { p: 0.5 }], 42);
//! let shape = Shape { height: 32, width: 32, channels: 3 };
//! let mut img = vec![128u8; shape.len()];
//! pipe.apply(&mut img, shape, 0, 7);
//! ```
//!
//! No tensors here and no dependency on `tch`: anyone can use this crate alone.

mod ops;

pub use ops::{hflip, translate, vflip};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Size of one HWC image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl Shape {
    pub fn len(&self) -> usize {
        self.height * self.width * self.channels
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn half() -> f64 {
    0.5
}

/// One augmentation, as written in the `[augment] ops` list:
/// `{ op = "random_crop", padding = 4 }`, `{ op = "hflip", p = 0.5 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Mirror left-right with probability `p`.
    Hflip {
        #[serde(default = "half")]
        p: f64,
    },
    /// Mirror top-bottom with probability `p`.
    Vflip {
        #[serde(default = "half")]
        p: f64,
    },
    /// Zero-pad by `padding` on every side, then crop back to the original size at a
    /// random offset (torchvision's `RandomCrop(size, padding)`).
    RandomCrop { padding: usize },
}

/// The `[augment]` section of an experiment file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    #[serde(default)]
    pub ops: Vec<Op>,
}

/// Ops plus the seed their randomness derives from.
#[derive(Debug, Clone)]
pub struct Pipeline {
    ops: Vec<Op>,
    seed: u64,
}

impl Pipeline {
    pub fn new(ops: Vec<Op>, seed: u64) -> Self {
        Self { ops, seed }
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Augments `img` (HWC, `shape`) in place, deterministically for
    /// `(seed, epoch, index)`.
    pub fn apply(&self, img: &mut [u8], shape: Shape, epoch: u64, index: u64) {
        assert_eq!(img.len(), shape.len(), "image buffer does not match its shape");
        if self.ops.is_empty() {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(mix(mix(self.seed, epoch), index));
        for op in &self.ops {
            match *op {
                Op::Hflip { p } => {
                    if rng.gen_bool(p.clamp(0.0, 1.0)) {
                        hflip(img, shape);
                    }
                }
                Op::Vflip { p } => {
                    if rng.gen_bool(p.clamp(0.0, 1.0)) {
                        vflip(img, shape);
                    }
                }
                Op::RandomCrop { padding } => {
                    // Cropping a padded image at offset (ox, oy) is a shift by
                    // (padding - ox, padding - oy) with zero fill.
                    let p = padding as i64;
                    let dx = p - rng.gen_range(0..=2 * p);
                    let dy = p - rng.gen_range(0..=2 * p);
                    translate(img, shape, dx, dy);
                }
            }
        }
    }
}

/// SplitMix64's finalizer over `a ^ b`, so nearby (seed, epoch, index) triples get
/// unrelated streams.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
