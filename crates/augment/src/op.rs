//! [`Op`]: one augmentation as the `[augment] ops` list writes it, its defaults, its
//! name and its constructors with torchvision's defaults; [`AugmentConfig`], the list.
//! Its checks are `validate.rs`; what it does to an image is `sample.rs`.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::{AutoAugmentPolicy, Colour, Fill, Interpolation, PadMode, Padding, Shape, Size};

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
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
        p: f64,
    },
    /// Mirror top-bottom.
    Vflip {
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
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
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
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
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// Multiply by a uniform factor in `[min, max]`.
    Brightness {
        /// The smallest factor.
        min: f64,
        /// The largest factor.
        max: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// Blend with the mean grey by a uniform factor in `[min, max]`.
    Contrast {
        /// The smallest factor.
        min: f64,
        /// The largest factor.
        max: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// Blend with each pixel's grey by a uniform factor in `[min, max]`.
    Saturation {
        /// The smallest factor.
        min: f64,
        /// The largest factor.
        max: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `RandomCrop(size, padding, pad_if_needed)`: pad by `padding` on
    /// every side, crop `size` at a random offset (back to the input's size without
    /// one); `fill = "reflect"` for `padding_mode="reflect"`.
    RandomCrop {
        /// The crop's size; without one, the input's (the padded image cropped back).
        #[cfg_attr(feature = "serde", serde(default))]
        size: Option<Size>,
        /// Pixels of padding on every side.
        #[cfg_attr(feature = "serde", serde(default))]
        padding: usize,
        /// Pad a side that is smaller than `size` by the difference on both ends.
        #[cfg_attr(feature = "serde", serde(default))]
        pad_if_needed: bool,
        /// What fills the area the source does not reach.
        #[cfg_attr(feature = "serde", serde(default))]
        fill: Fill,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `RandomResizedCrop(size, scale, ratio, interpolation)`: a box of
    /// random area and aspect ratio resized (antialiased) to `size`; without a size,
    /// warped back to the input's size (bilinear, reflected edges: the op cnnlab's
    /// first runs used).
    RandomResizedCrop {
        /// The output size.
        #[cfg_attr(feature = "serde", serde(default))]
        size: Option<Size>,
        /// The resampling of a sized crop.
        #[cfg_attr(feature = "serde", serde(default))]
        interpolation: Interpolation,
        /// The range of the crop's area, as a share of the image.
        #[cfg_attr(feature = "serde", serde(default = "defaults::crop_scale"))]
        scale: [f64; 2],
        /// The range of the crop's aspect ratio (width / height).
        #[cfg_attr(feature = "serde", serde(default = "defaults::crop_ratio"))]
        ratio: [f64; 2],
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `Resize(size, interpolation, antialias=True)`.
    Resize {
        /// One number: the shorter side, the aspect ratio kept; or `[height, width]`.
        size: Size,
        /// The resampling filter (bilinear and bicubic antialiased).
        #[cfg_attr(feature = "serde", serde(default))]
        interpolation: Interpolation,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `CenterCrop(size)`, zero-padded where the image is smaller.
    CenterCrop {
        /// One number for a square, or `[height, width]`.
        size: Size,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `Pad(padding, fill, padding_mode)`.
    Pad {
        /// One number, `[left/right, top/bottom]` or `[left, top, right, bottom]`.
        padding: Padding,
        /// The constant mode's colour: one value or one per channel.
        #[cfg_attr(feature = "serde", serde(default))]
        fill: Colour,
        /// `constant`, `edge`, `reflect` or `symmetric`.
        #[cfg_attr(feature = "serde", serde(default))]
        mode: PadMode,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `RandomZoomOut(fill, side_range, p=0.5)`: the image placed at a
    /// random spot of a canvas `side_range` times its size (the output size varies).
    RandomZoomOut {
        /// The canvas colour.
        #[cfg_attr(feature = "serde", serde(default))]
        fill: Colour,
        /// The range of the canvas's side as a multiple of the image's.
        #[cfg_attr(feature = "serde", serde(default = "defaults::zoom_out_range"))]
        side_range: [f64; 2],
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
        p: f64,
    },
    /// torchvision `JPEG(quality)`: encoded and decoded again at a quality drawn
    /// uniformly from `quality[0]..=quality[1]` (1 to 100); grey or RGB images (the
    /// `image` feature's encoder, not libjpeg: close to torchvision's, not equal); other
    /// channel counts pass unchanged.
    Jpeg {
        /// The range of the quality.
        quality: [u8; 2],
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// Your own op, in code only (not in TOML): [`Op::custom`].
    #[cfg_attr(feature = "serde", serde(skip))]
    Custom {
        /// The closure and its name.
        op: Custom,
        /// The probability of applying the op.
        p: f64,
    },
    /// Zero a `size x size` square at a uniform centre (DeVries & Taylor's cutout).
    Cutout {
        /// The side of the square, in pixels.
        size: usize,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// Add gaussian noise with standard deviation `std` (on the 0..1 scale).
    Noise {
        /// The standard deviation, on the 0..1 scale.
        std: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
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
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// Luma in every RGB channel (torchvision `RandomGrayscale(p)`, p 0.1 there), or
    /// as the only channel with `channels = 1` (`Grayscale(num_output_channels=1)`).
    Grayscale {
        /// Channels out: 3 (luma in each) or 1.
        #[cfg_attr(feature = "serde", serde(default = "defaults::rgb"))]
        channels: usize,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::grayscale_p"))]
        p: f64,
    },
    /// `255 - v` (`RandomInvert(p)`).
    Invert {
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
        p: f64,
    },
    /// `255 - v` for values at or above `threshold` (`RandomSolarize(threshold, p)`).
    Solarize {
        /// The threshold, 0..=255.
        threshold: u8,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
        p: f64,
    },
    /// Keep the `bits` highest bits (`RandomPosterize(bits, p)`).
    Posterize {
        /// Bits kept, 0..=8.
        bits: u8,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
        p: f64,
    },
    /// Stretch each channel to 0..255 (`RandomAutocontrast(p)`).
    Autocontrast {
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
        p: f64,
    },
    /// Equalize each channel's histogram (`RandomEqualize(p)`).
    Equalize {
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
        p: f64,
    },
    /// Gaussian blur with an odd `kernel` size and a sigma drawn uniformly from
    /// `sigma` (torchvision `GaussianBlur(kernel_size, sigma=(0.1, 2.0))`).
    GaussianBlur {
        /// The kernel's side, odd.
        kernel: usize,
        /// The range sigma is drawn from.
        #[cfg_attr(feature = "serde", serde(default = "defaults::blur_sigma"))]
        sigma: [f64; 2],
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// Blend with a 3x3 smoothing by `factor` (`RandomAdjustSharpness(factor, p)`).
    Sharpness {
        /// 0 blurs, 1 keeps, 2 sharpens.
        factor: f64,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
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
        #[cfg_attr(feature = "serde", serde(default = "defaults::unit_range"))]
        scale: [f64; 2],
        /// The ranges of the x and y shear angles, in degrees.
        #[cfg_attr(feature = "serde", serde(default))]
        shear: [f64; 4],
        /// How the source is sampled (torchvision's default: nearest).
        #[cfg_attr(feature = "serde", serde(default = "defaults::nearest"))]
        interpolation: Interpolation,
        /// What fills the area the source does not reach.
        #[cfg_attr(feature = "serde", serde(default))]
        fill: Fill,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `RandomPerspective`: each corner moves inwards by up to
    /// `distortion` of half the width and height.
    RandomPerspective {
        /// How far corners move, 0 (not at all) to 1.
        #[cfg_attr(feature = "serde", serde(default = "defaults::perspective_distortion"))]
        distortion: f64,
        /// How the source is sampled (torchvision's default: bilinear).
        #[cfg_attr(feature = "serde", serde(default))]
        interpolation: Interpolation,
        /// What fills the area the source does not reach.
        #[cfg_attr(feature = "serde", serde(default))]
        fill: Fill,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
        p: f64,
    },
    /// torchvision `RandomErasing`: a box of a uniform fraction `scale` of the area
    /// and log-uniform aspect ratio in `ratio`, set to `value` (or to random bytes).
    RandomErasing {
        /// The range of the box's area as a fraction of the image's.
        #[cfg_attr(feature = "serde", serde(default = "defaults::erase_scale"))]
        scale: [f64; 2],
        /// The range of the box's aspect ratio (height / width).
        #[cfg_attr(feature = "serde", serde(default = "defaults::erase_ratio"))]
        ratio: [f64; 2],
        /// The value the box is set to.
        #[cfg_attr(feature = "serde", serde(default))]
        value: u8,
        /// Random bytes instead of `value` (torchvision `value="random"`).
        #[cfg_attr(feature = "serde", serde(default))]
        random: bool,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
        p: f64,
    },
    /// torchvision `ColorJitter`: brightness, contrast, saturation and hue, each by a
    /// uniform factor of its range, in a random order (ranges of `[1, 1]`, or
    /// `[0, 0]` for hue, are skipped).
    ColorJitter {
        /// The brightness factor's range.
        #[cfg_attr(feature = "serde", serde(default = "defaults::unit_range"))]
        brightness: [f64; 2],
        /// The contrast factor's range.
        #[cfg_attr(feature = "serde", serde(default = "defaults::unit_range"))]
        contrast: [f64; 2],
        /// The saturation factor's range.
        #[cfg_attr(feature = "serde", serde(default = "defaults::unit_range"))]
        saturation: [f64; 2],
        /// The hue shift's range, within `[-0.5, 0.5]`.
        #[cfg_attr(feature = "serde", serde(default))]
        hue: [f64; 2],
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `RandAugment`: `num_ops` ops of its 14, each at magnitude bin
    /// `magnitude` of `bins`.
    RandAugment {
        /// Ops per image.
        #[cfg_attr(feature = "serde", serde(default = "defaults::rand_augment_ops"))]
        num_ops: usize,
        /// The magnitude bin, below `bins`.
        #[cfg_attr(feature = "serde", serde(default = "defaults::rand_augment_magnitude"))]
        magnitude: usize,
        /// Magnitude bins.
        #[cfg_attr(feature = "serde", serde(default = "defaults::magnitude_bins"))]
        bins: usize,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `AutoAugment(policy)`: one of the policy's 25 learned sub-policies
    /// of two ops each (nearest interpolation, zero fill).
    AutoAugment {
        /// `imagenet` (default), `cifar10` or `svhn`.
        #[cfg_attr(feature = "serde", serde(default))]
        policy: AutoAugmentPolicy,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `TrivialAugmentWide`: one op of its 14 at a random magnitude bin.
    TrivialAugmentWide {
        /// Magnitude bins.
        #[cfg_attr(feature = "serde", serde(default = "defaults::magnitude_bins"))]
        bins: usize,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// torchvision `AugMix`: `width` chains of ops mixed by Dirichlet weights, then
    /// blended with the original.
    AugMix {
        /// Magnitude bins drawn from, 1 to 10.
        #[cfg_attr(feature = "serde", serde(default = "defaults::aug_mix_severity"))]
        severity: usize,
        /// Chains mixed.
        #[cfg_attr(feature = "serde", serde(default = "defaults::aug_mix_width"))]
        width: usize,
        /// Ops per chain; 0 draws 1 to 3 per chain (torchvision's `-1`).
        #[cfg_attr(feature = "serde", serde(default))]
        depth: usize,
        /// The Dirichlet and Beta concentration.
        #[cfg_attr(feature = "serde", serde(default = "defaults::aug_mix_alpha"))]
        alpha: f64,
        /// Colour ops too (brightness, colour, contrast, sharpness).
        #[cfg_attr(feature = "serde", serde(default = "defaults::aug_mix_all_ops"))]
        all_ops: bool,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// One of `ops`, chosen uniformly or by `weights` (torchvision `RandomChoice`);
    /// the chosen op then applies with its own probability.
    OneOf {
        /// The ops to choose from.
        ops: Vec<Op>,
        /// Relative weights of the ops (torchvision `RandomChoice(transforms, p)`);
        /// without them, uniform.
        #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
        weights: Option<Vec<f64>>,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
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
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
    /// All of `ops` in order, each with its own probability, or none of them
    /// (torchvision `RandomApply(transforms, p)`).
    RandomApply {
        /// The ops.
        ops: Vec<Op>,
        /// The probability of applying the group.
        #[cfg_attr(feature = "serde", serde(default = "defaults::half"))]
        p: f64,
    },
    /// All of `ops` in a random order (torchvision `RandomOrder`).
    RandomOrder {
        /// The ops.
        ops: Vec<Op>,
        /// The probability of applying the op.
        #[cfg_attr(feature = "serde", serde(default = "defaults::always"))]
        p: f64,
    },
}

/// The closure of an [`Op::custom`] and its name (shown by `Debug`); two are equal
/// when they are the same closure.
#[derive(Clone)]
pub struct Custom {
    name: String,
    f: CustomFn,
}

type CustomFn = std::sync::Arc<dyn Fn(&mut [u8], Shape, &mut dyn rand::RngCore) + Send + Sync>;

impl Custom {
    /// The name given to [`Op::custom`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the closure.
    pub(crate) fn run(&self, img: &mut [u8], s: Shape, rng: &mut dyn rand::RngCore) {
        (self.f)(img, s, rng)
    }
}

impl std::fmt::Debug for Custom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Custom({:?})", self.name)
    }
}

impl PartialEq for Custom {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && std::sync::Arc::ptr_eq(&self.f, &other.f)
    }
}

/// Every default of an op's fields, in one place: serde fills missing keys with them
/// (`default = "defaults::half"`) and the [`Op`] constructors use the same functions.
#[cfg_attr(not(feature = "serde"), allow(dead_code))]
pub(crate) mod defaults {
    use crate::Interpolation;

    /// The flips', the perspective's, erasing's and the "Random*" colour ops' `p`.
    pub(crate) fn half() -> f64 {
        0.5
    }
    /// Every other op's `p`.
    pub(crate) fn always() -> f64 {
        1.0
    }
    /// `RandomGrayscale`'s `p`.
    pub(crate) fn grayscale_p() -> f64 {
        0.1
    }
    /// `GaussianBlur`'s sigma range.
    pub(crate) fn blur_sigma() -> [f64; 2] {
        [0.1, 2.0]
    }
    /// A factor range that changes nothing: `[1, 1]`.
    pub(crate) fn unit_range() -> [f64; 2] {
        [1.0, 1.0]
    }
    /// `RandomAffine`'s interpolation.
    pub(crate) fn nearest() -> Interpolation {
        Interpolation::Nearest
    }
    /// `RandomPerspective`'s `distortion_scale`.
    pub(crate) fn perspective_distortion() -> f64 {
        0.5
    }
    /// `RandomErasing`'s area share.
    pub(crate) fn erase_scale() -> [f64; 2] {
        [0.02, 0.33]
    }
    /// `RandomErasing`'s aspect ratio range.
    pub(crate) fn erase_ratio() -> [f64; 2] {
        [0.3, 3.3]
    }
    /// `RandomResizedCrop`'s area share.
    pub(crate) fn crop_scale() -> [f64; 2] {
        [0.08, 1.0]
    }
    /// `RandomResizedCrop`'s aspect ratio range.
    pub(crate) fn crop_ratio() -> [f64; 2] {
        [3.0 / 4.0, 4.0 / 3.0]
    }
    /// `RandomZoomOut`'s `side_range`.
    pub(crate) fn zoom_out_range() -> [f64; 2] {
        [1.0, 4.0]
    }
    /// `Grayscale`'s output channels when the op is `RandomGrayscale`.
    pub(crate) fn rgb() -> usize {
        3
    }
    /// `RandAugment`'s `num_ops`.
    pub(crate) fn rand_augment_ops() -> usize {
        2
    }
    /// `RandAugment`'s `magnitude`.
    pub(crate) fn rand_augment_magnitude() -> usize {
        9
    }
    /// `num_magnitude_bins` of RandAugment and TrivialAugmentWide.
    pub(crate) fn magnitude_bins() -> usize {
        31
    }
    /// `AugMix`'s `severity`.
    pub(crate) fn aug_mix_severity() -> usize {
        3
    }
    /// `AugMix`'s `mixture_width`.
    pub(crate) fn aug_mix_width() -> usize {
        3
    }
    /// `AugMix`'s `alpha`.
    pub(crate) fn aug_mix_alpha() -> f64 {
        1.0
    }
    /// `AugMix`'s `all_ops`.
    pub(crate) fn aug_mix_all_ops() -> bool {
        true
    }
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
            | Op::Jpeg { p: $p, .. }
            | Op::Custom { p: $p, .. }
            | Op::Noise { p: $p, .. }
            | Op::Grayscale { p: $p, .. }
            | Op::Resize { p: $p, .. }
            | Op::CenterCrop { p: $p, .. }
            | Op::Pad { p: $p, .. }
            | Op::RandomZoomOut { p: $p, .. }
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
            | Op::AutoAugment { p: $p, .. }
            | Op::TrivialAugmentWide { p: $p, .. }
            | Op::AugMix { p: $p, .. }
            | Op::OneOf { p: $p, .. }
            | Op::SomeOf { p: $p, .. }
            | Op::RandomApply { p: $p, .. }
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
            Op::Resize { .. } => "resize",
            Op::CenterCrop { .. } => "center_crop",
            Op::Pad { .. } => "pad",
            Op::RandomZoomOut { .. } => "random_zoom_out",
            Op::Cutout { .. } => "cutout",
            Op::Jpeg { .. } => "jpeg",
            Op::Custom { .. } => "custom",
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
            Op::AutoAugment { .. } => "auto_augment",
            Op::TrivialAugmentWide { .. } => "trivial_augment_wide",
            Op::AugMix { .. } => "aug_mix",
            Op::OneOf { .. } => "one_of",
            Op::SomeOf { .. } => "some_of",
            Op::RandomApply { .. } => "random_apply",
            Op::RandomOrder { .. } => "random_order",
        }
    }

    pub(crate) fn probability(&self) -> f64 {
        with_probability!(self, p => *p)
    }

    /// Whether the op may return an image of another size (or channel count): those
    /// run through [`Pipeline::transform`](crate::Pipeline::transform).
    pub fn changes_size(&self) -> bool {
        match self {
            Op::Resize { .. } | Op::CenterCrop { .. } | Op::Pad { .. } | Op::RandomZoomOut { .. } => true,
            Op::RandomResizedCrop { size, .. } | Op::RandomCrop { size, .. } => size.is_some(),
            Op::Grayscale { channels, .. } => *channels != 3,
            _ => false,
        }
    }

    /// The shape the op makes of an image of shape `s` when it applies; `None` when
    /// that is drawn at random (`random_zoom_out`).
    pub fn applied_shape(&self, s: Shape) -> Option<Shape> {
        let sized = |[height, width]: [usize; 2]| Some(Shape { height, width, ..s });
        match self {
            Op::Resize { size, .. } => sized(size.resized(s.height, s.width)),
            Op::CenterCrop { size, .. } | Op::RandomResizedCrop { size: Some(size), .. } => sized(size.crop()),
            Op::RandomCrop { size: Some(size), .. } => sized(size.crop()),
            Op::Pad { padding, .. } => {
                let [l, t, r, b] = padding.sides();
                sized([s.height + t + b, s.width + l + r])
            }
            Op::RandomZoomOut { side_range, .. } if side_range[0] == 1.0 && side_range[1] == 1.0 => Some(s),
            Op::RandomZoomOut { .. } => None,
            Op::Grayscale { channels, .. } if s.channels == 3 => Some(Shape { channels: *channels, ..s }),
            _ => Some(s),
        }
    }

    /// The shape the op leaves an image of shape `s` in: `None` when it varies (a
    /// size-changing op with `p < 1`, or a random size).
    pub fn output_shape(&self, s: Shape) -> Option<Shape> {
        let applied = self.applied_shape(s)?;
        (applied == s || self.probability() >= 1.0).then_some(applied)
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
        Op::Rotate { degrees, fill: Fill::Constant, p: defaults::always() }
    }

    /// Zoom in or out by up to `range` (Keras `RandomZoom(range)`), black borders.
    pub fn zoom(range: f64) -> Op {
        Op::Zoom { range, fill: Fill::Constant, p: defaults::always() }
    }

    /// Multiply by a factor in `[min, max]` (`ColorJitter(brightness=...)`'s factor).
    pub fn brightness(min: f64, max: f64) -> Op {
        Op::Brightness { min, max, p: defaults::always() }
    }

    /// Blend with the mean grey by a factor in `[min, max]`.
    pub fn contrast(min: f64, max: f64) -> Op {
        Op::Contrast { min, max, p: defaults::always() }
    }

    /// Blend with each pixel's grey by a factor in `[min, max]`.
    pub fn saturation(min: f64, max: f64) -> Op {
        Op::Saturation { min, max, p: defaults::always() }
    }

    /// Pad by `padding` and crop back at a random offset (`RandomCrop(size, padding)`).
    pub fn random_crop(padding: usize) -> Op {
        Op::RandomCrop { size: None, padding, pad_if_needed: false, fill: Fill::Constant, p: defaults::always() }
    }

    /// A `size` crop at a random offset (`RandomCrop(size)`); set `padding` and
    /// `pad_if_needed` as torchvision's.
    pub fn random_crop_to(size: impl Into<Size>) -> Op {
        Op::RandomCrop {
            size: Some(size.into()),
            padding: 0,
            pad_if_needed: false,
            fill: Fill::Constant,
            p: defaults::always(),
        }
    }

    /// `RandomResizedCrop` with torchvision's scale (0.08, 1) and ratio (3/4, 4/3),
    /// back to the input size.
    pub fn random_resized_crop() -> Op {
        Op::RandomResizedCrop {
            size: None,
            interpolation: Interpolation::Bilinear,
            scale: defaults::crop_scale(),
            ratio: defaults::crop_ratio(),
            p: defaults::always(),
        }
    }

    /// torchvision `RandomResizedCrop(size)`: scale (0.08, 1), ratio (3/4, 4/3),
    /// bilinear, antialiased.
    pub fn random_resized_crop_to(size: impl Into<Size>) -> Op {
        Op::RandomResizedCrop {
            size: Some(size.into()),
            interpolation: Interpolation::Bilinear,
            scale: defaults::crop_scale(),
            ratio: defaults::crop_ratio(),
            p: defaults::always(),
        }
    }

    /// torchvision `Resize(size)`: bilinear, antialiased; one number is the shorter
    /// side.
    pub fn resize(size: impl Into<Size>) -> Op {
        Op::Resize { size: size.into(), interpolation: Interpolation::Bilinear, p: defaults::always() }
    }

    /// torchvision `CenterCrop(size)`.
    pub fn center_crop(size: impl Into<Size>) -> Op {
        Op::CenterCrop { size: size.into(), p: defaults::always() }
    }

    /// torchvision `Pad(padding)`: zeros.
    pub fn pad(padding: Padding) -> Op {
        Op::Pad { padding, fill: Colour::default(), mode: PadMode::Constant, p: defaults::always() }
    }

    /// torchvision `RandomZoomOut()`: black canvas 1 to 4 times the side, p 0.5.
    pub fn random_zoom_out() -> Op {
        Op::RandomZoomOut { fill: Colour::default(), side_range: defaults::zoom_out_range(), p: defaults::half() }
    }

    /// torchvision `JPEG(quality)`: re-encoded at a quality in `min..=max`.
    pub fn jpeg(min: u8, max: u8) -> Op {
        Op::Jpeg { quality: [min, max], p: defaults::always() }
    }

    /// An op of your own inside a pipeline: `f(image, shape, rng)` changes the image
    /// in place (keeping its size), drawing any randomness from `rng`, the sample's
    /// stream, so it too is a pure function of `(seed, epoch, index)`.
    ///
    /// ```
    /// use cnnlab_augment::{Op, Pipeline, Shape};
    /// use rand::Rng;
    /// // Salt noise: one random pixel set to white.
    /// let salt = Op::custom("salt", |img: &mut [u8], s: Shape, rng: &mut dyn rand::RngCore| {
    ///     let at = rng.gen_range(0..s.height * s.width) * s.channels;
    ///     img[at..at + s.channels].fill(255);
    /// });
    /// let pipe = Pipeline::new(vec![Op::hflip(0.5), salt], 7).unwrap();
    /// let s = Shape::new(4, 4, 3);
    /// let mut img = vec![0u8; s.len()];
    /// pipe.apply(&mut img, s, 0, 1).unwrap();
    /// assert_eq!(img.iter().filter(|&&v| v == 255).count(), 3);
    /// ```
    pub fn custom(
        name: impl Into<String>,
        f: impl Fn(&mut [u8], Shape, &mut dyn rand::RngCore) + Send + Sync + 'static,
    ) -> Op {
        Op::Custom { op: Custom { name: name.into(), f: std::sync::Arc::new(f) }, p: defaults::always() }
    }

    /// Zero a `size x size` square at a random centre.
    pub fn cutout(size: usize) -> Op {
        Op::Cutout { size, p: defaults::always() }
    }

    /// Add gaussian noise of standard deviation `std` (0..1 scale).
    pub fn noise(std: f64) -> Op {
        Op::Noise { std, p: defaults::always() }
    }

    /// Turn the hue by up to `max` either way (`ColorJitter(hue=max)`).
    pub fn hue(max: f64) -> Op {
        Op::Hue { min: -max, max, p: defaults::always() }
    }

    /// Luma in every RGB channel with probability `p` (`RandomGrayscale(p)`).
    pub fn grayscale(p: f64) -> Op {
        Op::Grayscale { channels: defaults::rgb(), p }
    }

    /// Invert with probability 0.5 (`RandomInvert()`).
    pub fn invert() -> Op {
        Op::Invert { p: defaults::half() }
    }

    /// Solarize above `threshold` with probability 0.5 (`RandomSolarize(threshold)`).
    pub fn solarize(threshold: u8) -> Op {
        Op::Solarize { threshold, p: defaults::half() }
    }

    /// Keep `bits` bits with probability 0.5 (`RandomPosterize(bits)`).
    pub fn posterize(bits: u8) -> Op {
        Op::Posterize { bits, p: defaults::half() }
    }

    /// Autocontrast with probability 0.5 (`RandomAutocontrast()`).
    pub fn autocontrast() -> Op {
        Op::Autocontrast { p: defaults::half() }
    }

    /// Equalize with probability 0.5 (`RandomEqualize()`).
    pub fn equalize() -> Op {
        Op::Equalize { p: defaults::half() }
    }

    /// Adjust sharpness by `factor` with probability 0.5 (`RandomAdjustSharpness`).
    pub fn sharpness(factor: f64) -> Op {
        Op::Sharpness { factor, p: defaults::half() }
    }

    /// Gaussian blur of `kernel` size, sigma from torchvision's (0.1, 2.0)
    /// (`GaussianBlur(kernel_size)`).
    pub fn gaussian_blur(kernel: usize) -> Op {
        Op::GaussianBlur { kernel, sigma: defaults::blur_sigma(), p: defaults::always() }
    }

    /// torchvision `RandomAffine(degrees)`: rotation only, nearest, zero fill; set
    /// the other fields for translation, scale and shear.
    pub fn random_affine(degrees: f64) -> Op {
        Op::RandomAffine {
            degrees,
            translate: [0.0, 0.0],
            scale: defaults::unit_range(),
            shear: [0.0; 4],
            interpolation: defaults::nearest(),
            fill: Fill::Constant,
            p: defaults::always(),
        }
    }

    /// torchvision `RandomPerspective(distortion_scale, p=0.5)`, bilinear, zero fill.
    pub fn random_perspective(distortion: f64) -> Op {
        Op::RandomPerspective {
            distortion,
            interpolation: Interpolation::Bilinear,
            fill: Fill::Constant,
            p: defaults::half(),
        }
    }

    /// torchvision `RandomErasing()`: p 0.5, scale (0.02, 0.33), ratio (0.3, 3.3),
    /// value 0.
    pub fn random_erasing() -> Op {
        Op::RandomErasing {
            scale: defaults::erase_scale(),
            ratio: defaults::erase_ratio(),
            value: 0,
            random: false,
            p: defaults::half(),
        }
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
            p: defaults::always(),
        }
    }

    /// torchvision `RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31)`.
    pub fn rand_augment(num_ops: usize, magnitude: usize) -> Op {
        Op::RandAugment { num_ops, magnitude, bins: defaults::magnitude_bins(), p: defaults::always() }
    }

    /// torchvision `AutoAugment(policy)`.
    pub fn auto_augment(policy: AutoAugmentPolicy) -> Op {
        Op::AutoAugment { policy, p: defaults::always() }
    }

    /// torchvision `TrivialAugmentWide()`: 31 magnitude bins.
    pub fn trivial_augment_wide() -> Op {
        Op::TrivialAugmentWide { bins: defaults::magnitude_bins(), p: defaults::always() }
    }

    /// torchvision `AugMix()`: severity 3, width 3, random depth, alpha 1, all ops.
    pub fn aug_mix() -> Op {
        Op::AugMix {
            severity: defaults::aug_mix_severity(),
            width: defaults::aug_mix_width(),
            depth: 0,
            alpha: defaults::aug_mix_alpha(),
            all_ops: defaults::aug_mix_all_ops(),
            p: defaults::always(),
        }
    }

    /// One of `ops`, chosen uniformly (torchvision `RandomChoice`).
    pub fn one_of(ops: Vec<Op>) -> Op {
        Op::OneOf { ops, weights: None, p: defaults::always() }
    }

    /// Between `min` and `max` distinct ops of `ops`, in their order.
    pub fn some_of(ops: Vec<Op>, min: usize, max: usize) -> Op {
        Op::SomeOf { ops, n: [min, max], p: defaults::always() }
    }

    /// One of `ops`, chosen by relative `weights` (`RandomChoice(transforms, p)`).
    pub fn one_of_weighted(ops: Vec<Op>, weights: Vec<f64>) -> Op {
        Op::OneOf { ops, weights: Some(weights), p: defaults::always() }
    }

    /// All of `ops` with probability `p` (`RandomApply(transforms, p)`).
    pub fn random_apply(ops: Vec<Op>, p: f64) -> Op {
        Op::RandomApply { ops, p }
    }

    /// All of `ops` in a random order (torchvision `RandomOrder`).
    pub fn random_order(ops: Vec<Op>) -> Op {
        Op::RandomOrder { ops, p: defaults::always() }
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
