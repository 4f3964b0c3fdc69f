//! cnnlab-augment: seeded image augmentation on raw HWC u8 buffers and
//! `image::RgbImage`.
//!
//! A [`Pipeline`] is an ordered list of [`Op`]s, each applied with its probability
//! `p`. Randomness is derived from `(seed, epoch, sample index)` alone, so the same
//! sample in the same epoch gets the same augmentation whichever thread handles it.
//!
//! ```
//! use cnnlab_augment::{Op, Pipeline, Shape, Fill};
//! // Seed 002's recipe: rotate 10 degrees, zoom 10%, brightness 0.7..1.3, hflip.
//! let pipe = Pipeline::new(vec![
//!     Op::Rotate { degrees: 10.0, fill: Fill::Constant, p: 1.0 },
//!     Op::Zoom { range: 0.1, fill: Fill::Constant, p: 1.0 },
//!     Op::Brightness { min: 0.7, max: 1.3, p: 1.0 },
//!     Op::Hflip { p: 0.5 },
//! ], 42);
//! let shape = Shape { height: 32, width: 32, channels: 3 };
//! let mut img = vec![128u8; shape.len()];
//! pipe.apply(&mut img, shape, 0, 7);
//! ```
//!
//! No tensors here and no dependency on `tch`: anyone can use this crate alone.

mod ops;

pub use ops::{
    brightness, contrast, crop_resize, cutout, hflip, normalize_to_chw, rotate_zoom, saturation, translate, vflip, Fill,
};
use ops::{brightness_lut, rotate_zoom_then, Post};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Size of one HWC image (also the data crate's `ImageShape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

fn always() -> f64 {
    1.0
}

fn default_scale() -> [f64; 2] {
    [0.08, 1.0]
}

fn default_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}

/// One augmentation, as written in the `[augment] ops` list, e.g.
/// `{ op = "rotate", degrees = 10 }`, `{ op = "hflip", p = 0.5 }`. Every op has a
/// probability `p` (flips default to 0.5, the others to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Mirror left-right.
    Hflip {
        #[serde(default = "half")]
        p: f64,
    },
    /// Mirror top-bottom.
    Vflip {
        #[serde(default = "half")]
        p: f64,
    },
    /// Rotate by a uniform angle in `[-degrees, degrees]`.
    Rotate {
        degrees: f64,
        #[serde(default)]
        fill: Fill,
        #[serde(default = "always")]
        p: f64,
    },
    /// Scale by a uniform factor in `[1 - range, 1 + range]` about the centre, then
    /// crop or pad back to size (Keras `RandomZoom(range)`).
    Zoom {
        range: f64,
        #[serde(default)]
        fill: Fill,
        #[serde(default = "always")]
        p: f64,
    },
    /// Multiply by a uniform factor in `[min, max]`.
    Brightness {
        min: f64,
        max: f64,
        #[serde(default = "always")]
        p: f64,
    },
    /// Blend with the mean grey by a uniform factor in `[min, max]`.
    Contrast {
        min: f64,
        max: f64,
        #[serde(default = "always")]
        p: f64,
    },
    /// Blend with each pixel's grey by a uniform factor in `[min, max]`.
    Saturation {
        min: f64,
        max: f64,
        #[serde(default = "always")]
        p: f64,
    },
    /// Pad by `padding` on every side, crop back at a random offset (torchvision
    /// `RandomCrop(size, padding)`; `fill = "reflect"` for `padding_mode="reflect"`).
    RandomCrop {
        padding: usize,
        #[serde(default)]
        fill: Fill,
        #[serde(default = "always")]
        p: f64,
    },
    /// torchvision `RandomResizedCrop(size, scale, ratio)`, back to the input size.
    RandomResizedCrop {
        #[serde(default = "default_scale")]
        scale: [f64; 2],
        #[serde(default = "default_ratio")]
        ratio: [f64; 2],
        #[serde(default = "always")]
        p: f64,
    },
    /// Zero a `size x size` square at a uniform centre (DeVries & Taylor's cutout).
    Cutout {
        size: usize,
        #[serde(default = "always")]
        p: f64,
    },
    /// Add gaussian noise with standard deviation `std` (on the 0..1 scale).
    Noise {
        std: f64,
        #[serde(default = "always")]
        p: f64,
    },
}

impl Op {
    /// The op's name as written in `[augment]` (`op = "..."`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Hflip { .. } => "hflip",
            Op::Vflip { .. } => "vflip",
            Op::Rotate { .. } => "rotate",
            Op::Zoom { .. } => "zoom",
            Op::Brightness { .. } => "brightness",
            Op::Contrast { .. } => "contrast",
            Op::Saturation { .. } => "saturation",
            Op::RandomCrop { .. } => "random_crop",
            Op::RandomResizedCrop { .. } => "random_resized_crop",
            Op::Cutout { .. } => "cutout",
            Op::Noise { .. } => "noise",
        }
    }

    fn probability(&self) -> f64 {
        match *self {
            Op::Hflip { p }
            | Op::Vflip { p }
            | Op::Rotate { p, .. }
            | Op::Zoom { p, .. }
            | Op::Brightness { p, .. }
            | Op::Contrast { p, .. }
            | Op::Saturation { p, .. }
            | Op::RandomCrop { p, .. }
            | Op::RandomResizedCrop { p, .. }
            | Op::Cutout { p, .. }
            | Op::Noise { p, .. } => p,
        }
    }

    /// Rejects ranges that make no sense, naming the op's position in the list and
    /// the field: `augment.ops[2].min: ...`.
    fn validate(&self, index: usize) -> Result<(), String> {
        let bad = |field: &str, why: &str| Err(format!("augment.ops[{index}].{field}: {why}"));
        let p = self.probability();
        if !(0.0..=1.0).contains(&p) {
            return bad("p", &format!("{p} is outside [0, 1]"));
        }
        match *self {
            Op::Brightness { min, max, .. } | Op::Contrast { min, max, .. } | Op::Saturation { min, max, .. }
                if !(0.0 <= min && min <= max && max.is_finite()) =>
            {
                bad("min", &format!("needs 0 <= min <= max, got min = {min}, max = {max}"))
            }
            Op::Zoom { range, .. } if !(0.0..1.0).contains(&range) => {
                bad("range", &format!("{range} is outside [0, 1)"))
            }
            Op::Rotate { degrees, .. } if !degrees.is_finite() => bad("degrees", "must be a number"),
            Op::Noise { std, .. } if !(std >= 0.0 && std.is_finite()) => bad("std", "must be >= 0"),
            Op::RandomResizedCrop { scale, ratio, .. }
                if !(0.0 < scale[0]
                    && scale[0] <= scale[1]
                    && scale[1] <= 1.0
                    && 0.0 < ratio[0]
                    && ratio[0] <= ratio[1]) =>
            {
                bad("scale", "needs 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]")
            }
            _ => Ok(()),
        }
    }
}

/// The `[augment]` section of an experiment file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    #[serde(default)]
    pub ops: Vec<Op>,
}

impl AugmentConfig {
    /// Checks every op's ranges; the error names `augment.ops[i].<field>`.
    pub fn validate(&self) -> Result<(), String> {
        self.ops.iter().enumerate().try_for_each(|(i, op)| op.validate(i))
    }
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
        // Rotations and zooms about the centre commute, so a run of them is one warp:
        // angles add, scales multiply (one resampling pass instead of several).
        // Brightness tables and left-right flips that follow the warp are folded into
        // the pass that writes its output (exactly as if run after it).
        let mut pending: Option<(f64, f64, Fill)> = None;
        let mut post = Post::NONE;
        // Whether a table or flip was folded in (two flips cancel in `post`, but the
        // warp must still not absorb a later rotation: the result stays exactly that
        // of the ops run one by one).
        let mut folded = false;
        let flush = |img: &mut [u8], pending: &mut Option<(f64, f64, Fill)>, post: &mut Post| {
            if let Some((angle, zoom, fill)) = pending.take() {
                rotate_zoom_then(img, shape, angle, zoom, fill, *post);
            }
            *post = Post::NONE;
        };
        for op in &self.ops {
            // Draw the coin even for p = 1 so that changing one op's p does not shift
            // the random stream of the ops after it.
            let coin: f64 = rng.gen();
            let applies = coin < op.probability();
            match *op {
                Op::Rotate { .. } | Op::Zoom { .. } if applies => {
                    // A table or flip already folded in must act after this op: flush.
                    if folded {
                        flush(img, &mut pending, &mut post);
                        folded = false;
                    }
                    // The last op's fill wins.
                    let (a, z, _) = pending.unwrap_or((0.0, 1.0, Fill::Constant));
                    pending = Some(match *op {
                        Op::Rotate { degrees, fill, .. } => {
                            (a + uniform(&mut rng, -degrees.abs(), degrees.abs()), z, fill)
                        }
                        Op::Zoom { range, fill, .. } => (a, z * uniform(&mut rng, 1.0 - range, 1.0 + range), fill),
                        _ => unreachable!(),
                    });
                }
                Op::Brightness { min, max, .. } if applies && pending.is_some() => {
                    folded = true;
                    let table = brightness_lut(uniform(&mut rng, min, max));
                    post.lut = Some(match post.lut {
                        Some(before) => before.map(|v| table[v as usize]),
                        None => table,
                    });
                }
                Op::Hflip { .. } if applies && pending.is_some() => {
                    folded = true;
                    post.flip = !post.flip;
                }
                _ if !applies => {}
                _ => {
                    flush(img, &mut pending, &mut post);
                    folded = false;
                    apply_op(op, img, shape, &mut rng);
                }
            }
        }
        flush(img, &mut pending, &mut post);
    }

    /// Augments `n` images stored one after another in `batch`, in parallel (rayon);
    /// image `i` uses sample index `indices[i]`.
    pub fn apply_batch(&self, batch: &mut [u8], shape: Shape, epoch: u64, indices: &[u64]) {
        assert_eq!(batch.len(), shape.len() * indices.len(), "batch buffer does not match its shape");
        batch
            .par_chunks_exact_mut(shape.len())
            .zip(indices.par_iter())
            .for_each(|(img, &index)| self.apply(img, shape, epoch, index));
    }

    /// Augments an `image::RgbImage` in place.
    pub fn apply_rgb(&self, img: &mut image::RgbImage, epoch: u64, index: u64) {
        let shape = Shape { height: img.height() as usize, width: img.width() as usize, channels: 3 };
        self.apply(img, shape, epoch, index);
    }
}

fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.gen_range(lo..=hi)
    } else {
        lo
    }
}

fn apply_op(op: &Op, img: &mut [u8], s: Shape, rng: &mut ChaCha8Rng) {
    match *op {
        Op::Hflip { .. } => hflip(img, s),
        Op::Vflip { .. } => vflip(img, s),
        Op::Rotate { .. } | Op::Zoom { .. } => unreachable!("rotations and zooms are fused in Pipeline::apply"),
        Op::Brightness { min, max, .. } => brightness(img, uniform(rng, min, max)),
        Op::Contrast { min, max, .. } => contrast(img, s, uniform(rng, min, max)),
        Op::Saturation { min, max, .. } => saturation(img, s, uniform(rng, min, max)),
        Op::RandomCrop { padding, fill, .. } => {
            // Cropping the padded image at offset (ox, oy) is a shift by
            // (padding - ox, padding - oy).
            let p = padding as i64;
            let dx = p - rng.gen_range(0..=2 * p);
            let dy = p - rng.gen_range(0..=2 * p);
            translate(img, s, dx, dy, fill);
        }
        Op::RandomResizedCrop { scale, ratio, .. } => {
            let (left, top, w, h) = resized_crop_box(rng, s, scale, ratio);
            crop_resize(img, s, left, top, w, h);
        }
        Op::Cutout { size, .. } => {
            let cx = rng.gen_range(0..s.width.max(1)) as i64;
            let cy = rng.gen_range(0..s.height.max(1)) as i64;
            cutout(img, s, cx, cy, size);
        }
        Op::Noise { std, .. } => {
            if std > 0.0 {
                let normal = Normal::new(0.0, std * 255.0).expect("std validated");
                for v in img.iter_mut() {
                    *v = (*v as f64 + normal.sample(rng)).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
}

/// torchvision's `RandomResizedCrop.get_params`: ten tries at a box of random area
/// and aspect ratio, then a centre crop of the closest allowed ratio.
fn resized_crop_box(rng: &mut ChaCha8Rng, s: Shape, scale: [f64; 2], ratio: [f64; 2]) -> (f64, f64, f64, f64) {
    let (w, h) = (s.width as f64, s.height as f64);
    let area = w * h;
    let (log_lo, log_hi) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * uniform(rng, scale[0], scale[1]);
        let aspect = uniform(rng, log_lo, log_hi).exp();
        let cw = (target * aspect).sqrt().round();
        let ch = (target / aspect).sqrt().round();
        if 0.0 < cw && cw <= w && 0.0 < ch && ch <= h {
            let top = rng.gen_range(0..=(h - ch) as u64) as f64;
            let left = rng.gen_range(0..=(w - cw) as u64) as f64;
            return (left, top, cw, ch);
        }
    }
    let in_ratio = w / h;
    let (cw, ch) = if in_ratio < ratio[0] {
        (w, (w / ratio[0]).round())
    } else if in_ratio > ratio[1] {
        ((h * ratio[1]).round(), h)
    } else {
        (w, h)
    };
    ((w - cw) / 2.0, (h - ch) / 2.0, cw, ch)
}

/// SplitMix64's finalizer over `a ^ b`, so nearby (seed, epoch, index) triples get
/// unrelated streams.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Pipeline::apply` without folding brightness and flips into the warp: every
    /// op on its own pass (runs of rotations and zooms still one warp), the same
    /// random draws.
    fn apply_op_by_op(p: &Pipeline, img: &mut [u8], shape: Shape, epoch: u64, index: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(mix(p.seed, epoch), index));
        let mut pending: Option<(f64, f64, Fill)> = None;
        for op in &p.ops {
            let coin: f64 = rng.gen();
            if coin >= op.probability() {
                continue;
            }
            match *op {
                Op::Rotate { degrees, fill, .. } => {
                    let (a, z, _) = pending.unwrap_or((0.0, 1.0, fill));
                    pending = Some((a + uniform(&mut rng, -degrees.abs(), degrees.abs()), z, fill));
                }
                Op::Zoom { range, fill, .. } => {
                    let (a, z, _) = pending.unwrap_or((0.0, 1.0, fill));
                    pending = Some((a, z * uniform(&mut rng, 1.0 - range, 1.0 + range), fill));
                }
                _ => {
                    if let Some((angle, zoom, fill)) = pending.take() {
                        rotate_zoom(img, shape, angle, zoom, fill);
                    }
                    apply_op(op, img, shape, &mut rng);
                }
            }
        }
        if let Some((angle, zoom, fill)) = pending {
            rotate_zoom(img, shape, angle, zoom, fill);
        }
    }

    #[test]
    fn folded_brightness_and_flips_change_nothing() {
        use Op::*;
        let rotate = Rotate { degrees: 15.0, fill: Fill::Constant, p: 0.8 };
        let zoom = Zoom { range: 0.2, fill: Fill::Reflect, p: 0.8 };
        let bright = Brightness { min: 0.6, max: 1.4, p: 0.7 };
        let flip = Hflip { p: 0.5 };
        let contrast = Contrast { min: 0.8, max: 1.2, p: 0.5 };
        let lists = [
            vec![rotate, zoom, bright, flip],
            vec![rotate, bright, flip, bright, flip, zoom, bright],
            vec![flip, bright, rotate, contrast, flip, zoom, flip, bright],
            vec![zoom, flip, flip, rotate, bright, contrast],
        ];
        for (c, (h, w)) in [(3usize, (9usize, 13usize)), (1, (8, 5)), (4, (6, 7))] {
            let shape = Shape { height: h, width: w, channels: c };
            let base: Vec<u8> = (0..shape.len()).map(|i| (i * 37 % 251) as u8).collect();
            for ops in &lists {
                let p = Pipeline::new(ops.clone(), 3);
                for index in 0..40 {
                    let (mut fused, mut reference) = (base.clone(), base.clone());
                    p.apply(&mut fused, shape, 1, index);
                    apply_op_by_op(&p, &mut reference, shape, 1, index);
                    assert_eq!(fused, reference, "ops {ops:?}, {c} channels, index {index}");
                }
            }
        }
    }
}
