//! What an op does to one image: its parameters drawn from the sample's stream, then
//! the op's function (`ops.rs`, `color.rs`, `geometry.rs`, `policy.rs`). The pipeline
//! (`pipeline.rs`) calls [`apply_op`] for every op it does not fuse into a warp.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::ops::{
    brightness_rounded_in, colour_values, contrast_rounded_in, crop_resize_in, cutout_in, erase_in, rotate_zoom_in,
};
use crate::ops::{hflip_in, saturation_rounded_in, translate_in, vflip_in};
use crate::{color, geometry, policy, resize, Affine, Error, Fill, Op, PadMode, Result, Shape};

/// A uniform draw from `[lo, hi]`, or `lo` when the range is empty (no draw).
pub(crate) fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
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

/// Applies `op` (its coin already drawn) to `img`, drawing its parameters from `rng`.
pub(crate) fn apply_op(op: &Op, img: &mut [u8], s: Shape, rng: &mut ChaCha8Rng) {
    match *op {
        Op::Hflip { .. } => hflip_in(img, s),
        Op::Vflip { .. } => vflip_in(img, s),
        Op::Brightness { min, max, .. } => brightness_rounded_in(img, s, uniform(rng, min, max)),
        Op::Contrast { min, max, .. } => contrast_rounded_in(img, s, uniform(rng, min, max)),
        Op::Saturation { min, max, .. } => saturation_rounded_in(img, s, uniform(rng, min, max)),
        Op::Grayscale { .. } => color::grayscale_in(img, s),
        Op::Invert { .. } => color::invert_in(img, s),
        Op::Solarize { threshold, .. } => color::solarize_in(img, s, threshold),
        Op::Posterize { bits, .. } => color::posterize_in(img, s, bits),
        Op::Autocontrast { .. } => color::autocontrast_in(img, s),
        Op::Equalize { .. } => color::equalize_in(img, s),
        Op::Sharpness { factor, .. } => color::sharpness_in(img, s, factor),
        Op::Hue { min, max, .. } => color::hue_in(img, s, uniform(rng, min, max)),
        Op::GaussianBlur { kernel, sigma, .. } => {
            color::gaussian_blur_in(img, s, kernel, uniform(rng, sigma[0], sigma[1]))
        }
        Op::ColorJitter { brightness, contrast, saturation, hue, .. } => {
            color_jitter(img, s, rng, [brightness, contrast, saturation, hue])
        }
        Op::Noise { std, .. } => noise(img, s, rng, std),
        Op::Custom { ref op, .. } => op.run(img, s, rng),
        Op::Jpeg { quality, .. } => {
            let q = rng.gen_range(quality[0]..=quality[1]);
            jpeg_in(img, s, q);
        }
        Op::RandAugment { num_ops, magnitude, bins, .. } => policy::rand_augment(img, s, rng, num_ops, magnitude, bins),
        Op::AutoAugment { policy, .. } => policy::auto_augment(img, s, rng, policy),
        Op::TrivialAugmentWide { bins, .. } => policy::trivial_augment_wide(img, s, rng, bins),
        Op::AugMix { severity, width, depth, alpha, all_ops, .. } => {
            policy::aug_mix(img, s, rng, severity, width, depth, alpha, all_ops)
        }
        Op::OneOf { .. } | Op::SomeOf { .. } | Op::RandomApply { .. } | Op::RandomOrder { .. } => {
            combine(op, img, s, rng)
        }
        _ => geometric(op, img, s, rng),
    }
}

/// Applies a size-changing op (its coin already drawn; [`Op::changes_size`]) to
/// `img`, drawing its parameters from `rng`: the new image and its shape.
pub(crate) fn apply_resizing(op: &Op, img: &[u8], s: Shape, rng: &mut ChaCha8Rng) -> Result<(Vec<u8>, Shape)> {
    match *op {
        Op::Resize { size, interpolation, .. } => {
            let [h, w] = size.resized(s.height, s.width);
            resize::resize_with(img, s, h, w, interpolation)
        }
        Op::CenterCrop { size, .. } => {
            let [h, w] = size.crop();
            resize::center_crop(img, s, h, w)
        }
        Op::Pad { padding, ref fill, mode, .. } => resize::pad(img, s, padding.sides(), mode, fill.values()),
        Op::RandomZoomOut { ref fill, side_range, .. } => {
            // RandomZoomOut.make_params: the canvas side, then where the image sits.
            let r = side_range[0] + rng.gen::<f64>() * (side_range[1] - side_range[0]);
            let (cw, ch) = ((s.width as f64 * r) as usize, (s.height as f64 * r) as usize);
            let (rx, ry): (f64, f64) = (rng.gen(), rng.gen());
            let left = ((cw.saturating_sub(s.width)) as f64 * rx) as usize;
            let top = ((ch.saturating_sub(s.height)) as f64 * ry) as usize;
            let right = cw.saturating_sub(left + s.width);
            let bottom = ch.saturating_sub(top + s.height);
            resize::pad(img, s, [left, top, right, bottom], PadMode::Constant, fill.values())
        }
        Op::RandomResizedCrop { size: Some(size), interpolation, scale, ratio, .. } => {
            let [h, w] = size.crop();
            if s.height * s.width == 0 {
                return resize::resize_with(img, s, h, w, interpolation);
            }
            let (left, top, cw, ch) = resized_crop_box(rng, s, scale, ratio);
            let (cropped, cs) = resize::crop(img, s, top as i64, left as i64, ch as usize, cw as usize)?;
            resize::resize_with(&cropped, cs, h, w, interpolation)
        }
        Op::RandomCrop { size: Some(size), padding, pad_if_needed, fill, .. } => {
            random_crop_to(img, s, rng, size.crop(), padding, pad_if_needed, fill)
        }
        Op::Grayscale { .. } => Ok(color::grayscale_1_in(img, s)),
        _ => unreachable!("{} keeps the size", op.name()),
    }
}

/// torchvision `RandomCrop(size, padding, pad_if_needed, padding_mode)`: pad, then a
/// `size` window at a random offset (top drawn before left, each only when there is
/// room); a window larger than the padded image is an error.
fn random_crop_to(
    img: &[u8],
    s: Shape,
    rng: &mut ChaCha8Rng,
    [height, width]: [usize; 2],
    padding: usize,
    pad_if_needed: bool,
    fill: Fill,
) -> Result<(Vec<u8>, Shape)> {
    let [mut left, mut top, mut right, mut bottom] = [padding; 4];
    let (mut ph, mut pw) = (s.height + 2 * padding, s.width + 2 * padding);
    if pad_if_needed && ph < height {
        let d = height - ph;
        (top, bottom, ph) = (top + d, bottom + d, ph + 2 * d);
    }
    if pad_if_needed && pw < width {
        let d = width - pw;
        (left, right, pw) = (left + d, right + d, pw + 2 * d);
    }
    if ph < height || pw < width {
        return Err(Error::InvalidArgument {
            function: "random_crop",
            argument: "size",
            message: format!("a {height}x{width} crop is larger than the padded {ph}x{pw} image"),
        });
    }
    let y = if ph > height { rng.gen_range(0..=ph - height) } else { 0 };
    let x = if pw > width { rng.gen_range(0..=pw - width) } else { 0 };
    let mode = match fill {
        Fill::Constant => PadMode::Constant,
        Fill::Reflect => PadMode::Reflect,
    };
    // The window in the unpadded image's coordinates; only the padding it covers is made.
    let (y, x) = (y as i64 - top as i64, x as i64 - left as i64);
    let inside = y >= 0 && x >= 0 && y as usize + height <= s.height && x as usize + width <= s.width;
    if mode == PadMode::Constant || inside {
        return resize::crop(img, s, y, x, height, width);
    }
    let (padded, ps) = resize::pad(img, s, [left, top, right, bottom], mode, &[0])?;
    resize::crop(&padded, ps, y + top as i64, x + left as i64, height, width)
}

/// Re-encodes `img` at `quality`; validation refused the op without the `image`
/// feature or on other than 1 or 3 channels, so failures (none known) leave it as is.
fn jpeg_in(img: &mut [u8], s: Shape, quality: u8) {
    #[cfg(feature = "image")]
    if let Ok(out) = crate::ops::jpeg(img, s, quality) {
        img.copy_from_slice(&out);
    }
    #[cfg(not(feature = "image"))]
    let _ = (img, s, quality);
}

/// The ops that move pixels.
fn geometric(op: &Op, img: &mut [u8], s: Shape, rng: &mut ChaCha8Rng) {
    match *op {
        // Inside combinators (the pipeline fuses runs of them into one warp).
        Op::Rotate { degrees, fill, .. } => {
            rotate_zoom_in(img, s, uniform(rng, -degrees.abs(), degrees.abs()), 1.0, fill)
        }
        Op::Zoom { range, fill, .. } => rotate_zoom_in(img, s, 0.0, uniform(rng, 1.0 - range, 1.0 + range), fill),
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
            geometry::affine_in(img, s, a, interpolation, fill.into());
        }
        Op::RandomPerspective { distortion, interpolation, fill, .. } => {
            let (start, end) = perspective_corners(rng, s, distortion);
            geometry::perspective_in(img, s, start, end, interpolation, fill.into());
        }
        Op::RandomCrop { padding, fill, .. } => {
            // Cropping the padded image at offset (ox, oy) is a shift by
            // (padding - ox, padding - oy).
            let p = padding as i64;
            let dx = p - rng.gen_range(0..=2 * p);
            let dy = p - rng.gen_range(0..=2 * p);
            translate_in(img, s, dx, dy, fill);
        }
        Op::RandomResizedCrop { scale, ratio, .. } => {
            let (left, top, w, h) = resized_crop_box(rng, s, scale, ratio);
            crop_resize_in(img, s, left, top, w, h);
        }
        Op::RandomErasing { scale, ratio, value, random, .. } => {
            random_erasing(img, s, rng, (scale, ratio), value, random)
        }
        Op::Cutout { size, .. } => {
            let cx = rng.gen_range(0..s.width.max(1)) as i64;
            let cy = rng.gen_range(0..s.height.max(1)) as i64;
            cutout_in(img, s, cx, cy, size);
        }
        _ => unreachable!("apply_op dispatches {} elsewhere", op.name()),
    }
}

/// `OneOf`, `SomeOf`, `RandomOrder`: their ops, each with its own coin.
fn combine(op: &Op, img: &mut [u8], s: Shape, rng: &mut ChaCha8Rng) {
    match *op {
        Op::OneOf { ref ops, weights: None, .. } => {
            if !ops.is_empty() {
                let i = rng.gen_range(0..ops.len());
                apply_maybe(&ops[i], img, s, rng);
            }
        }
        Op::OneOf { ref ops, weights: Some(ref weights), .. } => {
            // The first op whose cumulative weight passes a uniform share of the total.
            let target = rng.gen::<f64>() * weights.iter().sum::<f64>();
            let mut total = 0.0;
            let chosen = weights.iter().position(|w| {
                total += w;
                target < total
            });
            // Rounding can leave the draw past the last sum: the last op with a weight.
            let last = weights.iter().rposition(|&w| w > 0.0);
            if let Some(i) = chosen.or(last) {
                apply_maybe(&ops[i], img, s, rng);
            }
        }
        Op::RandomApply { ref ops, .. } => ops.iter().for_each(|op| apply_maybe(op, img, s, rng)),
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
        _ => unreachable!("{} is no combinator", op.name()),
    }
}

/// `ColorJitter.make_params`: a random order, then the four factors (brightness,
/// contrast, saturation, hue); ranges that change nothing are skipped.
fn color_jitter(img: &mut [u8], s: Shape, rng: &mut ChaCha8Rng, ranges: [[f64; 2]; 4]) {
    let mut order = [0, 1, 2, 3];
    order.shuffle(rng);
    let factors = ranges.map(|r| uniform(rng, r[0], r[1]));
    for i in order {
        let identity = if i == 3 { [0.0, 0.0] } else { [1.0, 1.0] };
        if ranges[i] == identity {
            continue;
        }
        match i {
            0 => color::adjust_brightness_in(img, s, factors[0]),
            1 => color::adjust_contrast_in(img, s, factors[1]),
            2 => color::adjust_saturation_in(img, s, factors[2]),
            _ => color::hue_in(img, s, factors[3]),
        }
    }
}

/// Gaussian noise of `std` on the 0..1 scale on the colour values (alpha left
/// alone), rounded and clamped.
fn noise(img: &mut [u8], s: Shape, rng: &mut ChaCha8Rng, std: f64) {
    if std > 0.0 {
        let normal = Normal::new(0.0, std * 255.0).expect("std validated");
        let colour = colour_values(s.channels);
        for px in img.chunks_exact_mut(s.channels) {
            for v in &mut px[..colour] {
                *v = (*v as f64 + normal.sample(rng)).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// `RandomPerspective.get_params`: the corners, and where each moves (inwards by up
/// to `distortion` of half the width and height).
fn perspective_corners(rng: &mut ChaCha8Rng, s: Shape, distortion: f64) -> ([[f64; 2]; 4], [[f64; 2]; 4]) {
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
    ([[0.0, 0.0], [r, 0.0], [r, b], [0.0, b]], end)
}

/// Up to ten draws of a box of a random share `scale` of `area` and a log-uniform
/// aspect ratio in `ratio`, each side rounded by `round`: the first `(sqrt(area *
/// aspect), sqrt(area / aspect))` that `fits`, or `None`. torchvision's
/// `RandomResizedCrop` and `RandomErasing` draw their boxes so (the first reads the
/// pair as width and height, the second as height and width).
fn random_box(
    rng: &mut ChaCha8Rng,
    area: f64,
    (scale, ratio): ([f64; 2], [f64; 2]),
    round: fn(f64) -> f64,
    fits: impl Fn(f64, f64) -> bool,
) -> Option<(f64, f64)> {
    let (log_lo, log_hi) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * uniform(rng, scale[0], scale[1]);
        let aspect = uniform(rng, log_lo, log_hi).exp();
        let (a, b) = (round((target * aspect).sqrt()), round((target / aspect).sqrt()));
        if fits(a, b) {
            return Some((a, b));
        }
    }
    None
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
    let fits = |cw: f64, ch: f64| 0.0 < cw && cw <= w && 0.0 < ch && ch <= h;
    if let Some((cw, ch)) = random_box(rng, w * h, (scale, ratio), f64::round, fits) {
        let top = rng.gen_range(0..=(h - ch) as u64) as f64;
        let left = rng.gen_range(0..=(w - cw) as u64) as f64;
        return (left, top, cw, ch);
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

/// torchvision's `RandomErasing`: a box of random area and aspect ratio (height /
/// width) at a random place, set to `value` or to random bytes; no box fits, no change.
fn random_erasing(
    img: &mut [u8],
    s: Shape,
    rng: &mut ChaCha8Rng,
    boxes: ([f64; 2], [f64; 2]),
    value: u8,
    random: bool,
) {
    let (w, h) = (s.width as f64, s.height as f64);
    let fits = |eh: f64, ew: f64| eh < h && ew < w;
    let Some((eh, ew)) = random_box(rng, w * h, boxes, f64::round_ties_even, fits) else { return };
    let (eh, ew) = (eh as usize, ew as usize);
    let top = rng.gen_range(0..=s.height - eh);
    let left = rng.gen_range(0..=s.width - ew);
    if random {
        for y in top..top + eh {
            let row = (y * s.width + left) * s.channels;
            rng.fill(&mut img[row..row + ew * s.channels]);
        }
    } else {
        erase_in(img, s, top, left, eh, ew, value);
    }
}
