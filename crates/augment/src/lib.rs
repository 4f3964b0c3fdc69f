//! Seeded image augmentation on raw HWC `u8` buffers (and `image::RgbImage`), with
//! torchvision's parameter conventions.
//!
//! A [`Pipeline`] is an ordered list of [`Op`]s, each applied with its probability
//! `p`. Randomness is derived from `(seed, epoch, sample index)` alone, so the same
//! sample in the same epoch gets the same augmentation whichever thread handles it,
//! and a training run that resumes mid-way augments exactly as before.
//!
//! ```
//! use cnnlab_augment::{Pipeline, Shape};
//! // Rotate up to 10 degrees, zoom 10%, brightness 0.7..1.3, horizontal flip.
//! let pipe = Pipeline::builder().rotate(10.0).zoom(0.1).brightness(0.7, 1.3).hflip(0.5).seed(42).build().unwrap();
//! let shape = Shape::new(32, 32, 3);
//! let mut img = vec![128u8; shape.len()];
//! pipe.apply(&mut img, shape, 0, 7).unwrap();
//! ```
//!
//! Every op is also a plain function on one buffer (`hflip`, `rotate_zoom`,
//! `solarize`, ...). Features (all default): `image` ([`Pipeline::apply_rgb`]),
//! `rayon` (a parallel [`Pipeline::apply_batch`]; sequential without it), `serde`
//! (ops and [`AugmentConfig`] as TOML/JSON). `default-features = false` leaves a small
//! crate on raw buffers. No tensors here: the crate never depends on a tensor library.

#![deny(missing_docs)]

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod color;
mod error;
mod geometry;
mod ops;
mod policy;
mod resize;

pub use color::{
    adjust_brightness, adjust_contrast, adjust_saturation, autocontrast, equalize, gaussian_blur, grayscale, hue,
    invert, posterize, sharpness, solarize,
};
pub use error::{Error, Result};
pub use geometry::{affine, perspective, rotate, Affine, Border, Interpolation};
pub use ops::{
    brightness, contrast, crop_resize, cutout, erase, hflip, normalize_to_chw, rotate_zoom, saturation, translate,
    vflip, Fill,
};
use ops::{brightness_lut, rotate_zoom_then, Post};
pub use resize::{center_crop, crop, random_resized_crop, resize};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
#[cfg(feature = "rayon")]
use rayon::prelude::*;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Size of one image stored row by row, channels interleaved (HWC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Shape {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Values per pixel (1 grey, 3 RGB, 4 RGBA).
    pub channels: usize,
}

impl Shape {
    /// A shape of `height` rows, `width` columns and `channels` values per pixel.
    pub fn new(height: usize, width: usize, channels: usize) -> Self {
        Shape { height, width, channels }
    }

    /// Bytes of one image.
    pub fn len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Whether the image has no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that `buf` holds exactly one image of this shape.
    fn check(&self, buf: &[u8]) -> Result<()> {
        if buf.len() == self.len() {
            return Ok(());
        }
        Err(Error::BufferSize {
            len: buf.len(),
            expected: self.len(),
            height: self.height,
            width: self.width,
            channels: self.channels,
        })
    }
}

#[cfg(feature = "serde")]
fn half() -> f64 {
    0.5
}

fn default_sigma() -> [f64; 2] {
    [0.1, 2.0]
}

#[cfg(feature = "serde")]
fn tenth() -> f64 {
    0.1
}

#[cfg(feature = "serde")]
fn always() -> f64 {
    1.0
}

fn unit_range() -> [f64; 2] {
    [1.0, 1.0]
}

#[cfg(feature = "serde")]
fn nearest() -> Interpolation {
    Interpolation::Nearest
}

fn erase_scale() -> [f64; 2] {
    [0.02, 0.33]
}

fn erase_ratio() -> [f64; 2] {
    [0.3, 3.3]
}

#[cfg(feature = "serde")]
fn two() -> usize {
    2
}

#[cfg(feature = "serde")]
fn three() -> usize {
    3
}

#[cfg(feature = "serde")]
fn nine() -> usize {
    9
}

#[cfg(feature = "serde")]
fn bins() -> usize {
    31
}

#[cfg(feature = "serde")]
fn one() -> f64 {
    1.0
}

#[cfg(feature = "serde")]
fn yes() -> bool {
    true
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
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "op", rename_all = "snake_case", deny_unknown_fields))]
pub enum Op {
    /// Mirror left-right.
    Hflip {
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        p: f64,
    },
    /// Mirror top-bottom.
    Vflip {
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        p: f64,
    },
    /// Rotate by a uniform angle in `[-degrees, degrees]`.
    Rotate {
        /// The largest angle, in degrees.
        degrees: f64,
        /// What fills the area the source does not reach.
        #[cfg_attr(feature = "serde", serde(default))]
        fill: Fill,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// Scale by a uniform factor in `[1 - range, 1 + range]` about the centre, then
    /// crop or pad back to size (Keras `RandomZoom(range)`).
    Zoom {
        /// The largest relative change of scale.
        range: f64,
        /// What fills the area the source does not reach.
        #[cfg_attr(feature = "serde", serde(default))]
        fill: Fill,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// Multiply by a uniform factor in `[min, max]`.
    Brightness {
        /// The smallest factor.
        min: f64,
        /// The largest factor.
        max: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// Blend with the mean grey by a uniform factor in `[min, max]`.
    Contrast {
        /// The smallest factor.
        min: f64,
        /// The largest factor.
        max: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// Blend with each pixel's grey by a uniform factor in `[min, max]`.
    Saturation {
        /// The smallest factor.
        min: f64,
        /// The largest factor.
        max: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// Pad by `padding` on every side, crop back at a random offset (torchvision
    /// `RandomCrop(size, padding)`; `fill = "reflect"` for `padding_mode="reflect"`).
    RandomCrop {
        /// Pixels of padding on every side.
        padding: usize,
        /// What fills the area the source does not reach.
        #[cfg_attr(feature = "serde", serde(default))]
        fill: Fill,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// torchvision `RandomResizedCrop(size, scale, ratio)`, back to the input size.
    RandomResizedCrop {
        /// The range of the crop's area, as a share of the image.
        #[cfg_attr(feature = "serde", serde(default = "default_scale"))]
        scale: [f64; 2],
        /// The range of the crop's aspect ratio (width / height).
        #[cfg_attr(feature = "serde", serde(default = "default_ratio"))]
        ratio: [f64; 2],
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// Zero a `size x size` square at a uniform centre (DeVries & Taylor's cutout).
    Cutout {
        /// The side of the square, in pixels.
        size: usize,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// Add gaussian noise with standard deviation `std` (on the 0..1 scale).
    Noise {
        /// The standard deviation, on the 0..1 scale.
        std: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// Turn the hue by a uniform share of the colour circle in `[min, max]`, within
    /// `[-0.5, 0.5]` (`ColorJitter(hue=h)` draws from `[-h, h]`).
    Hue {
        /// The smallest turn.
        min: f64,
        /// The largest turn.
        max: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// Luma in every RGB channel (torchvision `RandomGrayscale(p)`, p 0.1 there).
    Grayscale {
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "tenth"))]
        p: f64,
    },
    /// `255 - v` (`RandomInvert(p)`).
    Invert {
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        p: f64,
    },
    /// `255 - v` for values at or above `threshold` (`RandomSolarize(threshold, p)`).
    Solarize {
        /// The threshold, 0..=255.
        threshold: u8,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        p: f64,
    },
    /// Keep the `bits` highest bits (`RandomPosterize(bits, p)`).
    Posterize {
        /// Bits kept, 0..=8.
        bits: u8,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        p: f64,
    },
    /// Stretch each channel to 0..255 (`RandomAutocontrast(p)`).
    Autocontrast {
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        p: f64,
    },
    /// Equalize each channel's histogram (`RandomEqualize(p)`).
    Equalize {
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        p: f64,
    },
    /// Gaussian blur with an odd `kernel` size and a sigma drawn uniformly from
    /// `sigma` (torchvision `GaussianBlur(kernel_size, sigma=(0.1, 2.0))`).
    GaussianBlur {
        /// The kernel's side, odd.
        kernel: usize,
        /// The range sigma is drawn from.
        #[cfg_attr(feature = "serde", serde(default = "default_sigma"))]
        sigma: [f64; 2],
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// Blend with a 3x3 smoothing by `factor` (`RandomAdjustSharpness(factor, p)`).
    Sharpness {
        /// 0 blurs, 1 keeps, 2 sharpens.
        factor: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        p: f64,
    },
    /// torchvision `RandomAffine`: a uniform angle in `[-degrees, degrees]`
    /// (clockwise), a shift of up to `translate[0] * width` and `translate[1] *
    /// height` pixels, a scale uniform in `scale`, x shear uniform in
    /// `[shear[0], shear[1]]` and y shear in `[shear[2], shear[3]]` degrees.
    RandomAffine {
        /// The largest angle, in degrees.
        degrees: f64,
        /// The largest shift as a fraction of width and height.
        #[cfg_attr(feature = "serde", serde(default))]
        translate: [f64; 2],
        /// The range of the scale factor.
        #[cfg_attr(feature = "serde", serde(default = "unit_range"))]
        scale: [f64; 2],
        /// The ranges of the x and y shear angles, in degrees.
        #[cfg_attr(feature = "serde", serde(default))]
        shear: [f64; 4],
        /// How the source is sampled (torchvision's default: nearest).
        #[cfg_attr(feature = "serde", serde(default = "nearest"))]
        interpolation: Interpolation,
        /// What fills the area the source does not reach.
        #[cfg_attr(feature = "serde", serde(default))]
        fill: Fill,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// torchvision `RandomPerspective`: each corner moves inwards by up to
    /// `distortion` of half the width and height.
    RandomPerspective {
        /// How far corners move, 0 (not at all) to 1.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        distortion: f64,
        /// How the source is sampled (torchvision's default: bilinear).
        #[cfg_attr(feature = "serde", serde(default))]
        interpolation: Interpolation,
        /// What fills the area the source does not reach.
        #[cfg_attr(feature = "serde", serde(default))]
        fill: Fill,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        p: f64,
    },
    /// torchvision `RandomErasing`: a box of a uniform fraction `scale` of the area
    /// and log-uniform aspect ratio in `ratio`, set to `value` (or to random bytes).
    RandomErasing {
        /// The range of the box's area as a fraction of the image's.
        #[cfg_attr(feature = "serde", serde(default = "erase_scale"))]
        scale: [f64; 2],
        /// The range of the box's aspect ratio (height / width).
        #[cfg_attr(feature = "serde", serde(default = "erase_ratio"))]
        ratio: [f64; 2],
        /// The value the box is set to.
        #[cfg_attr(feature = "serde", serde(default))]
        value: u8,
        /// Random bytes instead of `value` (torchvision `value="random"`).
        #[cfg_attr(feature = "serde", serde(default))]
        random: bool,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "half"))]
        p: f64,
    },
    /// torchvision `ColorJitter`: brightness, contrast, saturation and hue, each by a
    /// uniform factor of its range, in a random order (ranges of `[1, 1]`, or
    /// `[0, 0]` for hue, are skipped).
    ColorJitter {
        /// The brightness factor's range.
        #[cfg_attr(feature = "serde", serde(default = "unit_range"))]
        brightness: [f64; 2],
        /// The contrast factor's range.
        #[cfg_attr(feature = "serde", serde(default = "unit_range"))]
        contrast: [f64; 2],
        /// The saturation factor's range.
        #[cfg_attr(feature = "serde", serde(default = "unit_range"))]
        saturation: [f64; 2],
        /// The hue shift's range, within `[-0.5, 0.5]`.
        #[cfg_attr(feature = "serde", serde(default))]
        hue: [f64; 2],
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// torchvision `RandAugment`: `num_ops` ops of its 14, each at magnitude bin
    /// `magnitude` of `bins`.
    RandAugment {
        /// Ops per image.
        #[cfg_attr(feature = "serde", serde(default = "two"))]
        num_ops: usize,
        /// The magnitude bin, below `bins`.
        #[cfg_attr(feature = "serde", serde(default = "nine"))]
        magnitude: usize,
        /// Magnitude bins.
        #[cfg_attr(feature = "serde", serde(default = "bins"))]
        bins: usize,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// torchvision `TrivialAugmentWide`: one op of its 14 at a random magnitude bin.
    TrivialAugmentWide {
        /// Magnitude bins.
        #[cfg_attr(feature = "serde", serde(default = "bins"))]
        bins: usize,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// torchvision `AugMix`: `width` chains of ops mixed by Dirichlet weights, then
    /// blended with the original.
    AugMix {
        /// Magnitude bins drawn from, 1 to 10.
        #[cfg_attr(feature = "serde", serde(default = "three"))]
        severity: usize,
        /// Chains mixed.
        #[cfg_attr(feature = "serde", serde(default = "three"))]
        width: usize,
        /// Ops per chain; 0 draws 1 to 3 per chain (torchvision's `-1`).
        #[cfg_attr(feature = "serde", serde(default))]
        depth: usize,
        /// The Dirichlet and Beta concentration.
        #[cfg_attr(feature = "serde", serde(default = "one"))]
        alpha: f64,
        /// Colour ops too (brightness, colour, contrast, sharpness).
        #[cfg_attr(feature = "serde", serde(default = "yes"))]
        all_ops: bool,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// One of `ops`, chosen uniformly (torchvision `RandomChoice`); the chosen op
    /// then applies with its own probability.
    OneOf {
        /// The ops to choose from.
        ops: Vec<Op>,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// A uniform number in `n[0]..=n[1]` of distinct ops of `ops`, applied in their
    /// listed order (imgaug/albumentations `SomeOf`).
    SomeOf {
        /// The ops to choose from.
        ops: Vec<Op>,
        /// The least and most ops applied.
        n: [usize; 2],
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
    /// All of `ops` in a random order (torchvision `RandomOrder`).
    RandomOrder {
        /// The ops.
        ops: Vec<Op>,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "always"))]
        p: f64,
    },
}

/// Binds an op's probability field (every op has one) as `$p` in `$body`: the one
/// list of the variants that [`Op::probability`] and [`Op::with_p`] share.
macro_rules! with_probability {
    ($op:expr, $p:ident => $body:expr) => {
        match $op {
            Op::Hflip { p: $p }
            | Op::Vflip { p: $p }
            | Op::Rotate { p: $p, .. }
            | Op::Zoom { p: $p, .. }
            | Op::Brightness { p: $p, .. }
            | Op::Contrast { p: $p, .. }
            | Op::Saturation { p: $p, .. }
            | Op::RandomCrop { p: $p, .. }
            | Op::RandomResizedCrop { p: $p, .. }
            | Op::Cutout { p: $p, .. }
            | Op::Noise { p: $p, .. }
            | Op::Grayscale { p: $p }
            | Op::Invert { p: $p }
            | Op::Solarize { p: $p, .. }
            | Op::Posterize { p: $p, .. }
            | Op::Autocontrast { p: $p }
            | Op::Equalize { p: $p }
            | Op::Sharpness { p: $p, .. }
            | Op::GaussianBlur { p: $p, .. }
            | Op::Hue { p: $p, .. }
            | Op::RandomAffine { p: $p, .. }
            | Op::RandomPerspective { p: $p, .. }
            | Op::RandomErasing { p: $p, .. }
            | Op::ColorJitter { p: $p, .. }
            | Op::RandAugment { p: $p, .. }
            | Op::TrivialAugmentWide { p: $p, .. }
            | Op::AugMix { p: $p, .. }
            | Op::OneOf { p: $p, .. }
            | Op::SomeOf { p: $p, .. }
            | Op::RandomOrder { p: $p, .. } => $body,
        }
    };
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
            Op::Grayscale { .. } => "grayscale",
            Op::Invert { .. } => "invert",
            Op::Solarize { .. } => "solarize",
            Op::Posterize { .. } => "posterize",
            Op::Autocontrast { .. } => "autocontrast",
            Op::Equalize { .. } => "equalize",
            Op::Sharpness { .. } => "sharpness",
            Op::GaussianBlur { .. } => "gaussian_blur",
            Op::Hue { .. } => "hue",
            Op::RandomAffine { .. } => "random_affine",
            Op::RandomPerspective { .. } => "random_perspective",
            Op::RandomErasing { .. } => "random_erasing",
            Op::ColorJitter { .. } => "color_jitter",
            Op::RandAugment { .. } => "rand_augment",
            Op::TrivialAugmentWide { .. } => "trivial_augment_wide",
            Op::AugMix { .. } => "aug_mix",
            Op::OneOf { .. } => "one_of",
            Op::SomeOf { .. } => "some_of",
            Op::RandomOrder { .. } => "random_order",
        }
    }

    fn probability(&self) -> f64 {
        with_probability!(self, p => *p)
    }

    /// Rejects parameters that make no sense, naming the op's position in the list
    /// and the field.
    pub fn validate(&self, index: usize) -> Result<()> {
        let op = self.name();
        let bad = |field: &'static str, why: &str| Err(Error::InvalidOp { index, op, field, message: why.to_owned() });
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
            Op::Hue { min, max, .. } if !(-0.5 <= min && min <= max && max <= 0.5) => {
                bad("min", &format!("needs -0.5 <= min <= max <= 0.5, got min = {min}, max = {max}"))
            }
            Op::GaussianBlur { kernel, .. } if kernel.is_multiple_of(2) => {
                bad("kernel", &format!("{kernel} must be odd"))
            }
            Op::GaussianBlur { sigma, .. } if !(0.0 < sigma[0] && sigma[0] <= sigma[1] && sigma[1].is_finite()) => {
                bad("sigma", "needs 0 < sigma[0] <= sigma[1]")
            }
            Op::Posterize { bits, .. } if bits > 8 => bad("bits", &format!("{bits} is outside 0..=8")),
            Op::Sharpness { factor, .. } if !(factor >= 0.0 && factor.is_finite()) => {
                bad("factor", &format!("{factor} must be >= 0"))
            }
            Op::RandomResizedCrop { scale, ratio, .. }
                if !(0.0 < scale[0]
                    && scale[0] <= scale[1]
                    && scale[1] <= 1.0
                    && 0.0 < ratio[0]
                    && ratio[0] <= ratio[1]) =>
            {
                bad("scale", "needs 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]")
            }
            Op::RandomAffine { degrees, translate, scale, shear, .. } => {
                if !degrees.is_finite() {
                    bad("degrees", "must be a number")
                } else if !translate.iter().all(|t| (0.0..=1.0).contains(t)) {
                    bad("translate", "needs fractions in [0, 1]")
                } else if !(0.0 < scale[0] && scale[0] <= scale[1] && scale[1].is_finite()) {
                    bad("scale", "needs 0 < scale[0] <= scale[1]")
                } else if !(shear[0] <= shear[1] && shear[2] <= shear[3] && shear.iter().all(|s| s.abs() < 90.0)) {
                    bad("shear", "needs [x_min, x_max, y_min, y_max] in (-90, 90) degrees")
                } else {
                    Ok(())
                }
            }
            Op::RandomPerspective { distortion, .. } if !(0.0..=1.0).contains(&distortion) => {
                bad("distortion", &format!("{distortion} is outside [0, 1]"))
            }
            Op::RandomErasing { scale, ratio, .. }
                if !(0.0 < scale[0]
                    && scale[0] <= scale[1]
                    && scale[1] <= 1.0
                    && 0.0 < ratio[0]
                    && ratio[0] <= ratio[1]) =>
            {
                bad("scale", "needs 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]")
            }
            Op::ColorJitter { brightness, contrast, saturation, hue, .. } => {
                let factor = |r: [f64; 2]| 0.0 <= r[0] && r[0] <= r[1] && r[1].is_finite();
                match () {
                    _ if !factor(brightness) => bad("brightness", "needs 0 <= min <= max"),
                    _ if !factor(contrast) => bad("contrast", "needs 0 <= min <= max"),
                    _ if !factor(saturation) => bad("saturation", "needs 0 <= min <= max"),
                    _ if !(-0.5 <= hue[0] && hue[0] <= hue[1] && hue[1] <= 0.5) => {
                        bad("hue", "needs -0.5 <= min <= max <= 0.5")
                    }
                    _ => Ok(()),
                }
            }
            Op::RandAugment { magnitude, bins, .. } if magnitude >= bins => {
                bad("magnitude", &format!("bin {magnitude} is not below bins = {bins}"))
            }
            Op::TrivialAugmentWide { bins: 0, .. } => bad("bins", "must be > 0"),
            Op::AugMix { severity, width, alpha, .. } => match () {
                _ if !(1..=10).contains(&severity) => bad("severity", &format!("{severity} is outside 1..=10")),
                _ if width == 0 => bad("width", "must be > 0"),
                _ if !(alpha > 0.0 && alpha.is_finite()) => bad("alpha", "must be > 0"),
                _ => Ok(()),
            },
            Op::SomeOf { ref ops, n, .. } if !(n[0] <= n[1] && n[1] <= ops.len()) => {
                bad("n", &format!("needs n[0] <= n[1] <= {} (the number of ops)", ops.len()))
            }
            Op::OneOf { ref ops, .. } | Op::SomeOf { ref ops, .. } | Op::RandomOrder { ref ops, .. } => {
                ops.iter().try_for_each(|op| op.validate(index))
            }
            _ => Ok(()),
        }
    }
}

/// An `[augment]` table of ops, as a config file writes it:
/// `ops = [{ op = "rotate", degrees = 10 }, { op = "hflip" }]`.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct AugmentConfig {
    /// The ops, in order.
    #[cfg_attr(feature = "serde", serde(default))]
    pub ops: Vec<Op>,
}

impl AugmentConfig {
    /// Checks every op's ranges; the message names `augment.ops[i].<field>`, the key
    /// in a config file.
    pub fn validate(&self) -> Result<(), String> {
        self.ops.iter().enumerate().try_for_each(|(i, op)| op.validate(i)).map_err(|e| match e {
            Error::InvalidOp { index, field, message, .. } => format!("augment.ops[{index}].{field}: {message}"),
            other => other.to_string(),
        })
    }
}

/// Validated ops plus the seed their randomness derives from.
#[derive(Debug, Clone)]
pub struct Pipeline {
    ops: Vec<Op>,
    seed: u64,
}

impl Pipeline {
    /// A pipeline of `ops` drawing from `seed`; an op with a parameter out of range
    /// (`p` outside [0, 1], brightness `min > max`, zoom `range >= 1`, ...) is an
    /// [`Error::InvalidOp`] naming it.
    pub fn new(ops: Vec<Op>, seed: u64) -> Result<Self> {
        ops.iter().enumerate().try_for_each(|(i, op)| op.validate(i))?;
        Ok(Self { ops, seed })
    }

    /// A [`Builder`] of ops with torchvision's defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The ops, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether there is no op.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Augments `img` (HWC, `shape`) in place, deterministically for
    /// `(seed, epoch, index)`; a buffer that does not match `shape` is an error and
    /// stays untouched.
    pub fn apply(&self, img: &mut [u8], shape: Shape, epoch: u64, index: u64) -> Result<()> {
        shape.check(img)?;
        if self.ops.is_empty() {
            return Ok(());
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
        Ok(())
    }

    /// Augments `n` images stored one after another in `batch` (in parallel with the
    /// `rayon` feature); image `i` uses sample index `indices[i]`.
    pub fn apply_batch(&self, batch: &mut [u8], shape: Shape, epoch: u64, indices: &[u64]) -> Result<()> {
        let all = Shape { height: shape.height * indices.len(), ..shape };
        all.check(batch)?;
        if shape.is_empty() {
            return Ok(());
        }
        #[cfg(feature = "rayon")]
        let images = batch.par_chunks_exact_mut(shape.len()).zip(indices.par_iter());
        #[cfg(not(feature = "rayon"))]
        let mut images = batch.chunks_exact_mut(shape.len()).zip(indices.iter());
        images.try_for_each(|(img, &index)| self.apply(img, shape, epoch, index))
    }

    /// Augments an `image::RgbImage` in place.
    #[cfg(feature = "image")]
    pub fn apply_rgb(&self, img: &mut image::RgbImage, epoch: u64, index: u64) {
        let shape = Shape::new(img.height() as usize, img.width() as usize, 3);
        self.apply(img, shape, epoch, index).unwrap_or_else(|e| unreachable!("an RgbImage matches its shape: {e}"));
    }
}

impl Op {
    /// Mirror left-right with probability `p` (torchvision `RandomHorizontalFlip(p)`).
    pub fn hflip(p: f64) -> Op {
        Op::Hflip { p }
    }

    /// Mirror top-bottom with probability `p` (torchvision `RandomVerticalFlip(p)`).
    pub fn vflip(p: f64) -> Op {
        Op::Vflip { p }
    }

    /// Rotate by up to `degrees` either way, black corners (`RandomRotation(degrees)`).
    pub fn rotate(degrees: f64) -> Op {
        Op::Rotate { degrees, fill: Fill::Constant, p: 1.0 }
    }

    /// Zoom in or out by up to `range` (Keras `RandomZoom(range)`), black borders.
    pub fn zoom(range: f64) -> Op {
        Op::Zoom { range, fill: Fill::Constant, p: 1.0 }
    }

    /// Multiply by a factor in `[min, max]` (`ColorJitter(brightness=...)`'s factor).
    pub fn brightness(min: f64, max: f64) -> Op {
        Op::Brightness { min, max, p: 1.0 }
    }

    /// Blend with the mean grey by a factor in `[min, max]`.
    pub fn contrast(min: f64, max: f64) -> Op {
        Op::Contrast { min, max, p: 1.0 }
    }

    /// Blend with each pixel's grey by a factor in `[min, max]`.
    pub fn saturation(min: f64, max: f64) -> Op {
        Op::Saturation { min, max, p: 1.0 }
    }

    /// Pad by `padding` and crop back at a random offset (`RandomCrop(size, padding)`).
    pub fn random_crop(padding: usize) -> Op {
        Op::RandomCrop { padding, fill: Fill::Constant, p: 1.0 }
    }

    /// `RandomResizedCrop` with torchvision's scale (0.08, 1) and ratio (3/4, 4/3),
    /// back to the input size.
    pub fn random_resized_crop() -> Op {
        Op::RandomResizedCrop { scale: default_scale(), ratio: default_ratio(), p: 1.0 }
    }

    /// Zero a `size x size` square at a random centre.
    pub fn cutout(size: usize) -> Op {
        Op::Cutout { size, p: 1.0 }
    }

    /// Add gaussian noise of standard deviation `std` (0..1 scale).
    pub fn noise(std: f64) -> Op {
        Op::Noise { std, p: 1.0 }
    }

    /// Turn the hue by up to `max` either way (`ColorJitter(hue=max)`).
    pub fn hue(max: f64) -> Op {
        Op::Hue { min: -max, max, p: 1.0 }
    }

    /// Luma in every RGB channel with probability `p` (`RandomGrayscale(p)`).
    pub fn grayscale(p: f64) -> Op {
        Op::Grayscale { p }
    }

    /// Invert with probability 0.5 (`RandomInvert()`).
    pub fn invert() -> Op {
        Op::Invert { p: 0.5 }
    }

    /// Solarize above `threshold` with probability 0.5 (`RandomSolarize(threshold)`).
    pub fn solarize(threshold: u8) -> Op {
        Op::Solarize { threshold, p: 0.5 }
    }

    /// Keep `bits` bits with probability 0.5 (`RandomPosterize(bits)`).
    pub fn posterize(bits: u8) -> Op {
        Op::Posterize { bits, p: 0.5 }
    }

    /// Autocontrast with probability 0.5 (`RandomAutocontrast()`).
    pub fn autocontrast() -> Op {
        Op::Autocontrast { p: 0.5 }
    }

    /// Equalize with probability 0.5 (`RandomEqualize()`).
    pub fn equalize() -> Op {
        Op::Equalize { p: 0.5 }
    }

    /// Adjust sharpness by `factor` with probability 0.5 (`RandomAdjustSharpness`).
    pub fn sharpness(factor: f64) -> Op {
        Op::Sharpness { factor, p: 0.5 }
    }

    /// Gaussian blur of `kernel` size, sigma from torchvision's (0.1, 2.0)
    /// (`GaussianBlur(kernel_size)`).
    pub fn gaussian_blur(kernel: usize) -> Op {
        Op::GaussianBlur { kernel, sigma: default_sigma(), p: 1.0 }
    }

    /// torchvision `RandomAffine(degrees)`: rotation only, nearest, zero fill; set
    /// the other fields for translation, scale and shear.
    pub fn random_affine(degrees: f64) -> Op {
        Op::RandomAffine {
            degrees,
            translate: [0.0, 0.0],
            scale: unit_range(),
            shear: [0.0; 4],
            interpolation: Interpolation::Nearest,
            fill: Fill::Constant,
            p: 1.0,
        }
    }

    /// torchvision `RandomPerspective(distortion_scale, p=0.5)`, bilinear, zero fill.
    pub fn random_perspective(distortion: f64) -> Op {
        Op::RandomPerspective { distortion, interpolation: Interpolation::Bilinear, fill: Fill::Constant, p: 0.5 }
    }

    /// torchvision `RandomErasing()`: p 0.5, scale (0.02, 0.33), ratio (0.3, 3.3),
    /// value 0.
    pub fn random_erasing() -> Op {
        Op::RandomErasing { scale: erase_scale(), ratio: erase_ratio(), value: 0, random: false, p: 0.5 }
    }

    /// torchvision `ColorJitter(brightness, contrast, saturation, hue)`: factors in
    /// `[max(0, 1 - b), 1 + b]` and hue in `[-h, h]`.
    pub fn color_jitter(brightness: f64, contrast: f64, saturation: f64, hue: f64) -> Op {
        let range = |v: f64| [(1.0 - v).max(0.0), 1.0 + v];
        Op::ColorJitter {
            brightness: range(brightness),
            contrast: range(contrast),
            saturation: range(saturation),
            hue: [-hue, hue],
            p: 1.0,
        }
    }

    /// torchvision `RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31)`.
    pub fn rand_augment(num_ops: usize, magnitude: usize) -> Op {
        Op::RandAugment { num_ops, magnitude, bins: 31, p: 1.0 }
    }

    /// torchvision `TrivialAugmentWide()`: 31 magnitude bins.
    pub fn trivial_augment_wide() -> Op {
        Op::TrivialAugmentWide { bins: 31, p: 1.0 }
    }

    /// torchvision `AugMix()`: severity 3, width 3, random depth, alpha 1, all ops.
    pub fn aug_mix() -> Op {
        Op::AugMix { severity: 3, width: 3, depth: 0, alpha: 1.0, all_ops: true, p: 1.0 }
    }

    /// One of `ops`, chosen uniformly (torchvision `RandomChoice`).
    pub fn one_of(ops: Vec<Op>) -> Op {
        Op::OneOf { ops, p: 1.0 }
    }

    /// Between `min` and `max` distinct ops of `ops`, in their order.
    pub fn some_of(ops: Vec<Op>, min: usize, max: usize) -> Op {
        Op::SomeOf { ops, n: [min, max], p: 1.0 }
    }

    /// All of `ops` in a random order (torchvision `RandomOrder`).
    pub fn random_order(ops: Vec<Op>) -> Op {
        Op::RandomOrder { ops, p: 1.0 }
    }

    /// The same op with probability `p`.
    pub fn with_p(mut self, p: f64) -> Op {
        with_probability!(&mut self, q => *q = p);
        self
    }

    /// The same geometric op with another fill (ops without one are unchanged).
    pub fn with_fill(mut self, fill: Fill) -> Op {
        if let Op::Rotate { fill: f, .. }
        | Op::Zoom { fill: f, .. }
        | Op::RandomCrop { fill: f, .. }
        | Op::RandomAffine { fill: f, .. }
        | Op::RandomPerspective { fill: f, .. } = &mut self
        {
            *f = fill;
        }
        self
    }
}

/// Builds a [`Pipeline`] op by op, with torchvision's defaults:
/// `Pipeline::builder().random_crop(4).hflip(0.5).seed(1).build()`.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    ops: Vec<Op>,
    seed: u64,
}

impl Builder {
    /// Adds any op.
    pub fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    /// Adds [`Op::hflip`].
    pub fn hflip(self, p: f64) -> Self {
        self.op(Op::hflip(p))
    }

    /// Adds [`Op::vflip`].
    pub fn vflip(self, p: f64) -> Self {
        self.op(Op::vflip(p))
    }

    /// Adds [`Op::rotate`].
    pub fn rotate(self, degrees: f64) -> Self {
        self.op(Op::rotate(degrees))
    }

    /// Adds [`Op::zoom`].
    pub fn zoom(self, range: f64) -> Self {
        self.op(Op::zoom(range))
    }

    /// Adds [`Op::brightness`].
    pub fn brightness(self, min: f64, max: f64) -> Self {
        self.op(Op::brightness(min, max))
    }

    /// Adds [`Op::contrast`].
    pub fn contrast(self, min: f64, max: f64) -> Self {
        self.op(Op::contrast(min, max))
    }

    /// Adds [`Op::saturation`].
    pub fn saturation(self, min: f64, max: f64) -> Self {
        self.op(Op::saturation(min, max))
    }

    /// Adds [`Op::random_crop`].
    pub fn random_crop(self, padding: usize) -> Self {
        self.op(Op::random_crop(padding))
    }

    /// Adds [`Op::random_resized_crop`].
    pub fn random_resized_crop(self) -> Self {
        self.op(Op::random_resized_crop())
    }

    /// Adds [`Op::cutout`].
    pub fn cutout(self, size: usize) -> Self {
        self.op(Op::cutout(size))
    }

    /// Adds [`Op::noise`].
    pub fn noise(self, std: f64) -> Self {
        self.op(Op::noise(std))
    }

    /// Adds [`Op::hue`].
    pub fn hue(self, max: f64) -> Self {
        self.op(Op::hue(max))
    }

    /// Adds [`Op::grayscale`].
    pub fn grayscale(self, p: f64) -> Self {
        self.op(Op::grayscale(p))
    }

    /// Adds [`Op::invert`].
    pub fn invert(self) -> Self {
        self.op(Op::invert())
    }

    /// Adds [`Op::solarize`].
    pub fn solarize(self, threshold: u8) -> Self {
        self.op(Op::solarize(threshold))
    }

    /// Adds [`Op::posterize`].
    pub fn posterize(self, bits: u8) -> Self {
        self.op(Op::posterize(bits))
    }

    /// Adds [`Op::autocontrast`].
    pub fn autocontrast(self) -> Self {
        self.op(Op::autocontrast())
    }

    /// Adds [`Op::equalize`].
    pub fn equalize(self) -> Self {
        self.op(Op::equalize())
    }

    /// Adds [`Op::gaussian_blur`].
    pub fn gaussian_blur(self, kernel: usize) -> Self {
        self.op(Op::gaussian_blur(kernel))
    }

    /// Adds [`Op::sharpness`].
    pub fn sharpness(self, factor: f64) -> Self {
        self.op(Op::sharpness(factor))
    }

    /// Adds [`Op::random_affine`].
    pub fn random_affine(self, degrees: f64) -> Self {
        self.op(Op::random_affine(degrees))
    }

    /// Adds [`Op::random_perspective`].
    pub fn random_perspective(self, distortion: f64) -> Self {
        self.op(Op::random_perspective(distortion))
    }

    /// Adds [`Op::random_erasing`].
    pub fn random_erasing(self) -> Self {
        self.op(Op::random_erasing())
    }

    /// Adds [`Op::color_jitter`].
    pub fn color_jitter(self, brightness: f64, contrast: f64, saturation: f64, hue: f64) -> Self {
        self.op(Op::color_jitter(brightness, contrast, saturation, hue))
    }

    /// Adds [`Op::rand_augment`].
    pub fn rand_augment(self, num_ops: usize, magnitude: usize) -> Self {
        self.op(Op::rand_augment(num_ops, magnitude))
    }

    /// Adds [`Op::trivial_augment_wide`].
    pub fn trivial_augment_wide(self) -> Self {
        self.op(Op::trivial_augment_wide())
    }

    /// Adds [`Op::aug_mix`].
    pub fn aug_mix(self) -> Self {
        self.op(Op::aug_mix())
    }

    /// Adds [`Op::one_of`].
    pub fn one_of(self, ops: Vec<Op>) -> Self {
        self.op(Op::one_of(ops))
    }

    /// Adds [`Op::some_of`].
    pub fn some_of(self, ops: Vec<Op>, min: usize, max: usize) -> Self {
        self.op(Op::some_of(ops, min, max))
    }

    /// Adds [`Op::random_order`].
    pub fn random_order(self, ops: Vec<Op>) -> Self {
        self.op(Op::random_order(ops))
    }

    /// The seed the randomness derives from (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The pipeline, or the first op whose parameters are out of range.
    pub fn build(self) -> Result<Pipeline> {
        Pipeline::new(self.ops, self.seed)
    }
}

fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.gen_range(lo..=hi)
    } else {
        lo
    }
}

/// Draws `op`'s coin and applies it when the coin falls below its `p` (the ops inside
/// a combinator).
fn apply_maybe(op: &Op, img: &mut [u8], s: Shape, rng: &mut ChaCha8Rng) {
    let coin: f64 = rng.gen();
    if coin < op.probability() {
        apply_op(op, img, s, rng);
    }
}

fn apply_op(op: &Op, img: &mut [u8], s: Shape, rng: &mut ChaCha8Rng) {
    match *op {
        Op::Hflip { .. } => hflip(img, s),
        Op::Vflip { .. } => vflip(img, s),
        // Inside combinators (the pipeline fuses runs of them into one warp).
        Op::Rotate { degrees, fill, .. } => rotate_zoom(img, s, uniform(rng, -degrees.abs(), degrees.abs()), 1.0, fill),
        Op::Zoom { range, fill, .. } => rotate_zoom(img, s, 0.0, uniform(rng, 1.0 - range, 1.0 + range), fill),
        Op::RandomAffine { degrees, translate, scale, shear, interpolation, fill, .. } => {
            // RandomAffine.make_params: angle, translation (rounded pixels), scale, shear.
            let angle = uniform(rng, -degrees.abs(), degrees.abs());
            let mut shift = |fraction: f64, size: usize| {
                let max = fraction * size as f64;
                uniform(rng, -max, max).round_ties_even()
            };
            let translate = [shift(translate[0], s.width), shift(translate[1], s.height)];
            let scale = uniform(rng, scale[0], scale[1]);
            let shear = [uniform(rng, shear[0], shear[1]), uniform(rng, shear[2], shear[3])];
            let a = Affine { angle, translate, scale, shear, center: None };
            affine(img, s, a, interpolation, fill.into());
        }
        Op::RandomPerspective { distortion, interpolation, fill, .. } => {
            let (w, h) = (s.width as i64, s.height as i64);
            let bw = (distortion * (w / 2) as f64) as i64 + 1;
            let bh = (distortion * (h / 2) as f64) as i64 + 1;
            let mut at = |lo: i64, hi: i64| rng.gen_range(lo..hi.max(lo + 1)) as f64;
            let end = [
                [at(0, bw), at(0, bh)],
                [at(w - bw, w), at(0, bh)],
                [at(w - bw, w), at(h - bh, h)],
                [at(0, bw), at(h - bh, h)],
            ];
            let (r, b) = ((w - 1) as f64, (h - 1) as f64);
            perspective(img, s, [[0.0, 0.0], [r, 0.0], [r, b], [0.0, b]], end, interpolation, fill.into());
        }
        Op::RandomErasing { scale, ratio, value, random, .. } => {
            let (w, h) = (s.width as f64, s.height as f64);
            let (log_lo, log_hi) = (ratio[0].ln(), ratio[1].ln());
            for _ in 0..10 {
                let area = w * h * uniform(rng, scale[0], scale[1]);
                let aspect = uniform(rng, log_lo, log_hi).exp();
                let (eh, ew) = ((area * aspect).sqrt().round_ties_even(), (area / aspect).sqrt().round_ties_even());
                if !(eh < h && ew < w) {
                    continue;
                }
                let (eh, ew) = (eh as usize, ew as usize);
                let top = rng.gen_range(0..=s.height - eh);
                let left = rng.gen_range(0..=s.width - ew);
                if random {
                    for y in top..top + eh {
                        let row = (y * s.width + left) * s.channels;
                        rng.fill(&mut img[row..row + ew * s.channels]);
                    }
                } else {
                    erase(img, s, top, left, eh, ew, value);
                }
                break;
            }
        }
        Op::ColorJitter { brightness, contrast, saturation, hue: hue_range, .. } => {
            // ColorJitter.make_params: a random order, then the four factors.
            let mut order = [0, 1, 2, 3];
            order.shuffle(rng);
            let factors = [brightness, contrast, saturation, hue_range].map(|r| uniform(rng, r[0], r[1]));
            for i in order {
                let identity = if i == 3 { [0.0, 0.0] } else { [1.0, 1.0] };
                if [brightness, contrast, saturation, hue_range][i] == identity {
                    continue;
                }
                match i {
                    0 => adjust_brightness(img, s, factors[0]),
                    1 => adjust_contrast(img, s, factors[1]),
                    2 => adjust_saturation(img, s, factors[2]),
                    _ => hue(img, s, factors[3]),
                }
            }
        }
        Op::RandAugment { num_ops, magnitude, bins, .. } => policy::rand_augment(img, s, rng, num_ops, magnitude, bins),
        Op::TrivialAugmentWide { bins, .. } => policy::trivial_augment_wide(img, s, rng, bins),
        Op::AugMix { severity, width, depth, alpha, all_ops, .. } => {
            policy::aug_mix(img, s, rng, severity, width, depth, alpha, all_ops)
        }
        Op::OneOf { ref ops, .. } => {
            if !ops.is_empty() {
                let i = rng.gen_range(0..ops.len());
                apply_maybe(&ops[i], img, s, rng);
            }
        }
        Op::SomeOf { ref ops, n, .. } => {
            let k = rng.gen_range(n[0]..=n[1]);
            let mut chosen = rand::seq::index::sample(rng, ops.len(), k).into_vec();
            chosen.sort_unstable();
            chosen.into_iter().for_each(|i| apply_maybe(&ops[i], img, s, rng));
        }
        Op::RandomOrder { ref ops, .. } => {
            let mut order: Vec<usize> = (0..ops.len()).collect();
            order.shuffle(rng);
            order.into_iter().for_each(|i| apply_maybe(&ops[i], img, s, rng));
        }
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
        Op::Grayscale { .. } => grayscale(img, s),
        Op::Invert { .. } => invert(img, s),
        Op::Solarize { threshold, .. } => solarize(img, s, threshold),
        Op::Posterize { bits, .. } => posterize(img, s, bits),
        Op::Autocontrast { .. } => autocontrast(img, s),
        Op::Equalize { .. } => equalize(img, s),
        Op::Sharpness { factor, .. } => sharpness(img, s, factor),
        Op::Hue { min, max, .. } => hue(img, s, uniform(rng, min, max)),
        Op::GaussianBlur { kernel, sigma, .. } => gaussian_blur(img, s, kernel, uniform(rng, sigma[0], sigma[1])),
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
pub(crate) fn resized_crop_box(
    rng: &mut ChaCha8Rng,
    s: Shape,
    scale: [f64; 2],
    ratio: [f64; 2],
) -> (f64, f64, f64, f64) {
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
pub(crate) fn mix(a: u64, b: u64) -> u64 {
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
        let rotate = || Rotate { degrees: 15.0, fill: Fill::Constant, p: 0.8 };
        let zoom = || Zoom { range: 0.2, fill: Fill::Reflect, p: 0.8 };
        let bright = || Brightness { min: 0.6, max: 1.4, p: 0.7 };
        let flip = || Hflip { p: 0.5 };
        let contrast = || Contrast { min: 0.8, max: 1.2, p: 0.5 };
        let lists = [
            vec![rotate(), zoom(), bright(), flip()],
            vec![rotate(), bright(), flip(), bright(), flip(), zoom(), bright()],
            vec![flip(), bright(), rotate(), contrast(), flip(), zoom(), flip(), bright()],
            vec![zoom(), flip(), flip(), rotate(), bright(), contrast()],
        ];
        for (c, (h, w)) in [(3usize, (9usize, 13usize)), (1, (8, 5)), (4, (6, 7))] {
            let shape = Shape { height: h, width: w, channels: c };
            let base: Vec<u8> = (0..shape.len()).map(|i| (i * 37 % 251) as u8).collect();
            for ops in &lists {
                let p = Pipeline::new(ops.clone(), 3).unwrap();
                for index in 0..40 {
                    let (mut fused, mut reference) = (base.clone(), base.clone());
                    p.apply(&mut fused, shape, 1, index).unwrap();
                    apply_op_by_op(&p, &mut reference, shape, 1, index);
                    assert_eq!(fused, reference, "ops {ops:?}, {c} channels, index {index}");
                }
            }
        }
    }
}
