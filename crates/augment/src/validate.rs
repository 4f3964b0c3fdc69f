//! Whether an op's parameters make sense: [`Op::validate`] and
//! [`AugmentConfig::validate`], as the crate's typed [`Error::InvalidOp`] (op index,
//! op name, field, message).

use crate::{AugmentConfig, Error, Interpolation, Op, Result, Size};

/// A bad field and why.
type Problem = Option<(&'static str, String)>;

impl Op {
    /// Rejects parameters that make no sense, naming the op's position in the list
    /// and the field; the ops inside a combinator are checked with its position.
    pub fn validate(&self, index: usize) -> Result<()> {
        let p = self.probability();
        let problem = match (0.0..=1.0).contains(&p) {
            false => Some(("p", format!("{p} is outside [0, 1]"))),
            true => self.colour_problem().or_else(|| self.geometry_problem()).or_else(|| self.policy_problem()),
        };
        if let Some((field, message)) = problem {
            return Err(Error::InvalidOp { index, op: self.name(), field, message });
        }
        match self {
            Op::OneOf { ops, .. }
            | Op::SomeOf { ops, .. }
            | Op::RandomApply { ops, .. }
            | Op::RandomOrder { ops, .. } => {
                if let Some(inner) = ops.iter().find(|op| op.changes_size()) {
                    let message = format!("{} changes the image's size, which a combinator cannot hold", inner.name());
                    return Err(Error::InvalidOp { index, op: self.name(), field: "ops", message });
                }
                ops.iter().try_for_each(|op| op.validate(index))
            }
            _ => Ok(()),
        }
    }

    /// The colour ops' and the noise's ranges.
    fn colour_problem(&self) -> Problem {
        let factor = |r: [f64; 2]| 0.0 <= r[0] && r[0] <= r[1] && r[1].is_finite();
        let hue = |r: [f64; 2]| -0.5 <= r[0] && r[0] <= r[1] && r[1] <= 0.5;
        let why = |field, message: &str| Some((field, message.to_owned()));
        match *self {
            Op::Brightness { min, max, .. } | Op::Contrast { min, max, .. } | Op::Saturation { min, max, .. }
                if !factor([min, max]) =>
            {
                Some(("min", format!("needs 0 <= min <= max, got min = {min}, max = {max}")))
            }
            Op::Hue { min, max, .. } if !hue([min, max]) => {
                Some(("min", format!("needs -0.5 <= min <= max <= 0.5, got min = {min}, max = {max}")))
            }
            Op::Noise { std, .. } if !(std >= 0.0 && std.is_finite()) => why("std", "must be >= 0"),
            Op::Jpeg { quality, .. } if !(1 <= quality[0] && quality[0] <= quality[1] && quality[1] <= 100) => {
                why("quality", "needs 1 <= quality[0] <= quality[1] <= 100")
            }
            Op::Jpeg { .. } if cfg!(not(feature = "image")) => {
                why("quality", "JPEG needs cnnlab-augment's `image` feature")
            }
            Op::GaussianBlur { kernel, .. } if kernel.is_multiple_of(2) => {
                Some(("kernel", format!("{kernel} must be odd")))
            }
            Op::GaussianBlur { sigma, .. } if !(0.0 < sigma[0] && sigma[0] <= sigma[1] && sigma[1].is_finite()) => {
                why("sigma", "needs 0 < sigma[0] <= sigma[1]")
            }
            Op::Posterize { bits, .. } if bits > 8 => Some(("bits", format!("{bits} is outside 0..=8"))),
            Op::Sharpness { factor, .. } if !(factor >= 0.0 && factor.is_finite()) => {
                Some(("factor", format!("{factor} must be >= 0")))
            }
            Op::ColorJitter { brightness, contrast, saturation, hue: hues, .. } => match () {
                _ if !factor(brightness) => why("brightness", "needs 0 <= min <= max"),
                _ if !factor(contrast) => why("contrast", "needs 0 <= min <= max"),
                _ if !factor(saturation) => why("saturation", "needs 0 <= min <= max"),
                _ if !hue(hues) => why("hue", "needs -0.5 <= min <= max <= 0.5"),
                _ => None,
            },
            _ => None,
        }
    }

    /// The geometric ops' ranges.
    fn geometry_problem(&self) -> Problem {
        let boxes = |scale: [f64; 2], ratio: [f64; 2]| {
            0.0 < scale[0] && scale[0] <= scale[1] && scale[1] <= 1.0 && 0.0 < ratio[0] && ratio[0] <= ratio[1]
        };
        let why = |field, message: &str| Some((field, message.to_owned()));
        match *self {
            Op::Zoom { range, .. } if !(0.0..1.0).contains(&range) => {
                Some(("range", format!("{range} is outside [0, 1)")))
            }
            Op::Rotate { degrees, .. } if !degrees.is_finite() => why("degrees", "must be a number"),
            Op::RandomResizedCrop { scale, ratio, .. } | Op::RandomErasing { scale, ratio, .. }
                if !boxes(scale, ratio) =>
            {
                why("scale", "needs 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]")
            }
            Op::RandomAffine { degrees, translate, scale, shear, interpolation, .. } => match () {
                _ if !degrees.is_finite() => why("degrees", "must be a number"),
                _ if interpolation == Interpolation::Bicubic => {
                    why("interpolation", "bicubic is for resizing; warps sample nearest or bilinear")
                }
                _ if !translate.iter().all(|t| (0.0..=1.0).contains(t)) => {
                    why("translate", "needs fractions in [0, 1]")
                }
                _ if !(0.0 < scale[0] && scale[0] <= scale[1] && scale[1].is_finite()) => {
                    why("scale", "needs 0 < scale[0] <= scale[1]")
                }
                _ if !(shear[0] <= shear[1] && shear[2] <= shear[3] && shear.iter().all(|s| s.abs() < 90.0)) => {
                    why("shear", "needs [x_min, x_max, y_min, y_max] in (-90, 90) degrees")
                }
                _ => None,
            },
            Op::RandomPerspective { distortion, .. } if !(0.0..=1.0).contains(&distortion) => {
                Some(("distortion", format!("{distortion} is outside [0, 1]")))
            }
            Op::RandomPerspective { interpolation: Interpolation::Bicubic, .. } => {
                why("interpolation", "bicubic is for resizing; warps sample nearest or bilinear")
            }
            _ => self.size_problem(),
        }
    }

    /// The size-changing ops' sizes and ranges.
    fn size_problem(&self) -> Problem {
        let why = |field, message: &str| Some((field, message.to_owned()));
        let empty = |size: Size| size.crop().contains(&0);
        match *self {
            Op::Resize { size, .. } | Op::CenterCrop { size, .. } if empty(size) => why("size", "must be above 0"),
            Op::RandomResizedCrop { size: Some(size), .. } | Op::RandomCrop { size: Some(size), .. } if empty(size) => {
                why("size", "must be above 0")
            }
            Op::RandomZoomOut { side_range, .. } if !(1.0 <= side_range[0] && side_range[0] <= side_range[1]) => {
                why("side_range", "needs 1 <= side_range[0] <= side_range[1]")
            }
            Op::RandomZoomOut { side_range, .. } if side_range[1] > 64.0 => {
                why("side_range", "above 64 times the side is no zoom out but a blank canvas")
            }
            Op::Grayscale { channels, .. } if channels != 1 && channels != 3 => {
                Some(("channels", format!("{channels} is neither 1 nor 3")))
            }
            _ => None,
        }
    }

    /// The policies' and combinators' settings.
    fn policy_problem(&self) -> Problem {
        let why = |field, message: &str| Some((field, message.to_owned()));
        match *self {
            Op::RandAugment { magnitude, bins, .. } if magnitude >= bins => {
                Some(("magnitude", format!("bin {magnitude} is not below bins = {bins}")))
            }
            Op::TrivialAugmentWide { bins: 0, .. } => why("bins", "must be > 0"),
            Op::AugMix { severity, width, alpha, .. } => match () {
                _ if !(1..=10).contains(&severity) => Some(("severity", format!("{severity} is outside 1..=10"))),
                _ if width == 0 => why("width", "must be > 0"),
                _ if !(alpha > 0.0 && alpha.is_finite()) => why("alpha", "must be > 0"),
                _ => None,
            },
            Op::OneOf { ref ops, weights: Some(ref w), .. } if w.len() != ops.len() => {
                Some(("weights", format!("{} weights for {} ops", w.len(), ops.len())))
            }
            Op::OneOf { weights: Some(ref w), .. }
                if !(w.iter().all(|w| *w >= 0.0 && w.is_finite()) && w.iter().sum::<f64>() > 0.0) =>
            {
                why("weights", "needs finite weights >= 0 with a positive sum")
            }
            Op::SomeOf { ref ops, n, .. } if !(n[0] <= n[1] && n[1] <= ops.len()) => {
                Some(("n", format!("needs n[0] <= n[1] <= {} (the number of ops)", ops.len())))
            }
            _ => None,
        }
    }
}

impl AugmentConfig {
    /// Checks every op's ranges: the first bad one as [`Error::InvalidOp`], whose
    /// `index` and `field` make the config key `augment.ops[index].field`.
    pub fn validate(&self) -> Result<()> {
        self.ops.iter().enumerate().try_for_each(|(i, op)| op.validate(i))
    }
}
