//! Seeded image augmentation on raw HWC `u8` buffers (and `image::RgbImage`), with
//! torchvision's parameter conventions.
//!
//! A [`Pipeline`] is an ordered list of [`Op`]s, each applied with its probability
//! `p`. Randomness is derived from `(seed, epoch, sample index)` alone, so the same
//! sample in the same epoch gets the same augmentation whichever thread handles it,
//! and a training run that resumes mid-way augments exactly as before.
//!
//! ```
//! use cnnlab_augment::{Op, Pipeline, Shape};
//! // Rotate up to 10 degrees, zoom 10%, brightness 0.7..1.3, horizontal flip.
//! let ops = vec![Op::rotate(10.0), Op::zoom(0.1), Op::brightness(0.7, 1.3), Op::hflip(0.5)];
//! let pipe = Pipeline::new(ops, 42).unwrap();
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
//!
//! Where things are: `shape.rs` ([`Shape`]), `op.rs` ([`Op`], its defaults and
//! constructors, [`AugmentConfig`]), `validate.rs` (their checks), `pipeline.rs`
//! ([`Pipeline`], its fusion of warps, [`Builder`]), `sample.rs` (each op's random
//! parameters), and the functions themselves: `ops.rs` (flips, shifts, the fused warp,
//! the pipeline's rounding colour ops, erasing), `color.rs` (torchvision's colour ops,
//! blur, hue), `geometry.rs` (affine and perspective warps), `resize.rs` (size-changing
//! ops), `policy.rs` (RandAugment, TrivialAugmentWide, AugMix).

#![deny(missing_docs)]

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod color;
mod error;
mod geometry;
pub mod mix;
mod op;
mod ops;
mod pipeline;
mod policy;
mod resize;
mod sample;
mod shape;
mod validate;

pub use color::{
    adjust_brightness, adjust_contrast, adjust_saturation, autocontrast, equalize, gaussian_blur, grayscale,
    grayscale_1, hue, invert, posterize, sharpness, solarize,
};
pub use error::{Error, Result};
pub use geometry::{affine, perspective, rotate, Affine, Border, Interpolation};
pub use op::{AugmentConfig, Custom, Op};
#[cfg(feature = "image")]
pub use ops::jpeg;
pub use ops::{
    brightness_rounded, contrast_rounded, crop_resize, cutout, erase, hflip, normalize_to_chw, rotate_zoom,
    saturation_rounded, translate, vflip, Fill,
};
pub use pipeline::{Builder, Pipeline};
pub use policy::AutoAugmentPolicy;
pub use resize::{center_crop, crop, pad, random_resized_crop, resize, resize_with, PadMode};
pub use shape::{Colour, Padding, Shape, Size};
