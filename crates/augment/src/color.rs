//! torchvision v2's deterministic colour ops on u8 images (`rgb_to_grayscale`,
//! `invert`, `solarize`, `posterize`, `autocontrast`, `equalize`, `adjust_sharpness`),
//! computed as torchvision computes them on uint8 tensors (float32 arithmetic, then a
//! truncating cast): on the fixtures of `tests/torchvision_colour.py` every value is
//! identical to torchvision 0.28's. An alpha channel (the 4th) is left alone.

use crate::{Error, Result, Shape};

/// Colour channels of a pixel: 3 of RGB or RGBA, 1 of grey (or grey + alpha).
fn colour_channels(s: Shape) -> usize {
    if s.channels >= 3 {
        3
    } else {
        1
    }
}

/// Replaces each RGB pixel by its luma `0.2989 R + 0.587 G + 0.114 B` in all three
/// channels (`rgb_to_grayscale(num_output_channels=3)`); grey images are unchanged.
pub fn grayscale(img: &mut [u8], s: Shape) -> Result<()> {
    if s.checked(img)? {
        grayscale_in(img, s);
    }
    Ok(())
}

/// [`grayscale`] on a buffer already checked (the pipeline's).
pub(crate) fn grayscale_in(img: &mut [u8], s: Shape) {
    let luma = |r: u8, g: u8, b: u8| (r as f32 * 0.2989 + g as f32 * 0.587 + b as f32 * 0.114) as u8;
    match s.channels {
        0..=2 => {}
        3 => grayscale_rgb(img),
        c => img.chunks_exact_mut(c).for_each(|px| {
            let l = luma(px[0], px[1], px[2]);
            px[..3].fill(l);
        }),
    }
}

/// Where byte `i` of 16 RGB pixels split into planes (16 reds, 16 greens, 16 blues)
/// comes from.
const PLANAR_RGB: [usize; 48] = {
    let mut from = [0usize; 48];
    let mut i = 0;
    while i < 48 {
        from[i] = (i % 16) * 3 + i / 16;
        i += 1;
    }
    from
};

/// [`grayscale_in`] on RGB: blocks of 16 pixels split into planes by a constant byte
/// shuffle (`pshufb`), the luma of 16 at once (the same float32 sums in the same
/// order), spread back to all three channels.
#[multiversion::multiversion(targets("x86_64+sse4.1"))]
fn grayscale_rgb(img: &mut [u8]) {
    let (blocks, rest) = img.as_chunks_mut::<48>();
    for block in blocks {
        let bytes = *block;
        let mut planes = [0u8; 48];
        for (p, &i) in planes.iter_mut().zip(&PLANAR_RGB) {
            *p = bytes[i];
        }
        // Truncation as `as u8` for these values (0 to 255), by floor and the float
        // bits of `2^23 + n`, which the compiler vectorises (`as u8` it does not).
        let l: [u8; 16] = std::array::from_fn(|i| {
            let l = planes[i] as f32 * 0.2989 + planes[16 + i] as f32 * 0.587 + planes[32 + i] as f32 * 0.114;
            (l.floor() + 8_388_608.0).to_bits() as u8
        });
        let mut out = [0u8; 48];
        for (j, v) in out.iter_mut().enumerate() {
            *v = l[j / 3];
        }
        *block = out;
    }
    for px in rest.as_chunks_mut::<3>().0 {
        *px = [(px[0] as f32 * 0.2989 + px[1] as f32 * 0.587 + px[2] as f32 * 0.114) as u8; 3];
    }
}

/// The luma of an RGB image as its only channel (`rgb_to_grayscale(img,
/// num_output_channels=1)`); other images come back as they are.
pub fn grayscale_1(img: &[u8], s: Shape) -> Result<(Vec<u8>, Shape)> {
    s.check(img)?;
    Ok(grayscale_1_in(img, s))
}

/// [`grayscale_1`] on a buffer already checked.
pub(crate) fn grayscale_1_in(img: &[u8], s: Shape) -> (Vec<u8>, Shape) {
    if s.channels != 3 {
        return (img.to_vec(), s);
    }
    let luma = |px: &[u8]| (px[0] as f32 * 0.2989 + px[1] as f32 * 0.587 + px[2] as f32 * 0.114) as u8;
    (img.chunks_exact(3).map(luma).collect(), Shape { channels: 1, ..s })
}

/// `255 - v` (`invert`).
pub fn invert(img: &mut [u8], s: Shape) -> Result<()> {
    if s.checked(img)? {
        invert_in(img, s);
    }
    Ok(())
}

/// [`invert`] on a buffer already checked (the pipeline's).
pub(crate) fn invert_in(img: &mut [u8], s: Shape) {
    each_colour_value(img, s, |v| 255 - v);
}

/// `255 - v` where `v >= threshold` (`solarize`).
pub fn solarize(img: &mut [u8], s: Shape, threshold: u8) -> Result<()> {
    if s.checked(img)? {
        solarize_in(img, s, threshold);
    }
    Ok(())
}

/// [`solarize`] on a buffer already checked (the pipeline's).
pub(crate) fn solarize_in(img: &mut [u8], s: Shape, threshold: u8) {
    each_colour_value(img, s, |v| if v >= threshold { 255 - v } else { v });
}

/// Keeps the `bits` highest bits of every value (`posterize`); `bits >= 8` changes
/// nothing.
pub fn posterize(img: &mut [u8], s: Shape, bits: u8) -> Result<()> {
    if s.checked(img)? {
        posterize_in(img, s, bits);
    }
    Ok(())
}

/// [`posterize`] on a buffer already checked (the pipeline's).
pub(crate) fn posterize_in(img: &mut [u8], s: Shape, bits: u8) {
    if bits >= 8 {
        return;
    }
    let mask = (((1u16 << bits) - 1) << (8 - bits)) as u8;
    each_colour_value(img, s, |v| v & mask);
}

fn each_colour_value(img: &mut [u8], s: Shape, f: impl Fn(u8) -> u8) {
    let c = colour_channels(s);
    if c == s.channels {
        // Every byte: one flat loop the compiler vectorises.
        img.iter_mut().for_each(|v| *v = f(*v));
        return;
    }
    // Alpha to skip: a table of 256 values, then one lookup per colour byte.
    let lut: [u8; 256] = std::array::from_fn(|v| f(v as u8));
    for px in img.chunks_exact_mut(s.channels.max(1)) {
        px[..c].iter_mut().for_each(|v| *v = lut[*v as usize]);
    }
}

/// torchvision's `_blend` on uint8: `v * ratio + other * (1 - ratio)` in float32
/// (`1 - ratio` taken in double, as Python computes the `alpha` it passes), clamped,
/// truncated.
fn blend(v: u8, other: f32, ratio: f64) -> u8 {
    (v as f32 * ratio as f32 + other * (1.0 - ratio) as f32).clamp(0.0, 255.0) as u8
}

/// The luma torchvision's contrast and saturation blend towards, floored to an
/// integer as for uint8 images.
fn luma_floor(px: &[u8]) -> f32 {
    (px[0] as f32 * 0.2989 + px[1] as f32 * 0.587 + px[2] as f32 * 0.114).floor()
}

/// torchvision `adjust_brightness`: every colour value times `factor`, truncated.
/// (The pipeline's `brightness` op rounds instead, its historical behaviour.)
pub fn adjust_brightness(img: &mut [u8], s: Shape, factor: f64) -> Result<()> {
    if !(factor >= 0.0 && factor.is_finite()) {
        return Err(Error::InvalidArgument {
            function: "adjust_brightness",
            argument: "factor",
            message: "must be >= 0".into(),
        });
    }
    if s.checked(img)? {
        adjust_brightness_in(img, s, factor);
    }
    Ok(())
}

/// [`adjust_brightness`] on a buffer already checked (the pipeline's).
pub(crate) fn adjust_brightness_in(img: &mut [u8], s: Shape, factor: f64) {
    let lut: [u8; 256] = std::array::from_fn(|v| blend(v as u8, 0.0, factor));
    each_colour_value(img, s, |v| lut[v as usize]);
}

/// torchvision `adjust_contrast`: blend with the mean of the floored luma (the mean
/// grey value for grey images).
pub fn adjust_contrast(img: &mut [u8], s: Shape, factor: f64) -> Result<()> {
    if !(factor >= 0.0 && factor.is_finite()) {
        return Err(Error::InvalidArgument {
            function: "adjust_contrast",
            argument: "factor",
            message: "must be >= 0".into(),
        });
    }
    if s.checked(img)? {
        adjust_contrast_in(img, s, factor);
    }
    Ok(())
}

/// [`adjust_contrast`] on a buffer already checked (the pipeline's).
pub(crate) fn adjust_contrast_in(img: &mut [u8], s: Shape, factor: f64) {
    let n = (s.width * s.height) as f64;
    if n == 0.0 {
        return;
    }
    let sum: f64 = if s.channels >= 3 {
        img.chunks_exact(s.channels).map(|px| luma_floor(px) as f64).sum()
    } else {
        img.iter().step_by(s.channels.max(1)).map(|&v| v as f64).sum()
    };
    let mean = (sum / n) as f32;
    let lut: [u8; 256] = std::array::from_fn(|v| blend(v as u8, mean, factor));
    each_colour_value(img, s, |v| lut[v as usize]);
}

/// torchvision `adjust_saturation`: blend each RGB pixel with its floored luma; grey
/// images are unchanged.
pub fn adjust_saturation(img: &mut [u8], s: Shape, factor: f64) -> Result<()> {
    if !(factor >= 0.0 && factor.is_finite()) {
        return Err(Error::InvalidArgument {
            function: "adjust_saturation",
            argument: "factor",
            message: "must be >= 0".into(),
        });
    }
    if s.checked(img)? {
        adjust_saturation_in(img, s, factor);
    }
    Ok(())
}

/// [`adjust_saturation`] on a buffer already checked (the pipeline's).
pub(crate) fn adjust_saturation_in(img: &mut [u8], s: Shape, factor: f64) {
    if s.channels < 3 {
        return;
    }
    for px in img.chunks_exact_mut(s.channels) {
        let l = luma_floor(px);
        px[..3].iter_mut().for_each(|v| *v = blend(*v, l, factor));
    }
}

/// Stretches each channel to span 0..255 (`autocontrast`): `(v - min) / ((max - min)
/// / 255)`; a flat channel is unchanged.
pub fn autocontrast(img: &mut [u8], s: Shape) -> Result<()> {
    if s.checked(img)? {
        autocontrast_in(img, s);
    }
    Ok(())
}

/// [`autocontrast`] on a buffer already checked (the pipeline's).
pub(crate) fn autocontrast_in(img: &mut [u8], s: Shape) {
    let (c, colour) = (s.channels, colour_channels(s));
    // Every channel's extremes in one pass: lane-wise min and max over blocks of 16
    // pixels (vectorised), folded by channel at the end.
    let (mut lo, mut hi) = (vec![u8::MAX; 16 * c], vec![0u8; 16 * c]);
    let mut blocks = img.chunks_exact(16 * c);
    for block in &mut blocks {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(block) {
            (*l, *h) = ((*l).min(v), (*h).max(v));
        }
    }
    for (i, &v) in blocks.remainder().iter().enumerate() {
        (lo[i], hi[i]) = (lo[i].min(v), hi[i].max(v));
    }
    let extreme =
        |lanes: &[u8], ch: usize, pick: fn(u8, u8) -> u8| lanes.iter().skip(ch).step_by(c).copied().reduce(pick);
    let tables: Vec<[u8; 256]> = (0..colour)
        .map(|ch| {
            let (lo, hi) = (extreme(&lo, ch, u8::min).unwrap_or(0), extreme(&hi, ch, u8::max).unwrap_or(0));
            if lo == hi {
                return std::array::from_fn(|v| v as u8);
            }
            let inv_scale = (hi - lo) as f32 * (1.0f32 / 255.0);
            std::array::from_fn(|v| ((v as f32 - lo as f32) / inv_scale).clamp(0.0, 255.0) as u8)
        })
        .collect();
    for px in img.chunks_exact_mut(c) {
        for (v, table) in px.iter_mut().zip(&tables) {
            *v = table[*v as usize];
        }
    }
}

/// Equalizes each channel's histogram as PIL's `ImageOps.equalize` does (`equalize`);
/// a channel whose values are nearly all one value is unchanged.
pub fn equalize(img: &mut [u8], s: Shape) -> Result<()> {
    if s.checked(img)? {
        equalize_in(img, s);
    }
    Ok(())
}

/// [`equalize`] on a buffer already checked (the pipeline's).
pub(crate) fn equalize_in(img: &mut [u8], s: Shape) {
    let n = s.width * s.height;
    for ch in 0..colour_channels(s) {
        let mut hist = [0usize; 256];
        img.iter().skip(ch).step_by(s.channels).for_each(|&v| hist[v as usize] += 1);
        // The last value present holds the pixels that are not counted in `step`.
        let Some(last) = hist.iter().rposition(|&h| h > 0) else { continue };
        let step = (n - hist[last]) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut cum = 0usize;
        for v in 1..256 {
            cum += hist[v - 1];
            lut[v] = ((cum + step / 2) / step).min(255) as u8;
        }
        img.iter_mut().skip(ch).step_by(s.channels).for_each(|v| *v = lut[*v as usize]);
    }
}

/// Blends each inner pixel with a 3x3 smoothing of it (`adjust_sharpness`): factor 0
/// blurs, 1 keeps, 2 sharpens; the border rows and columns stay.
pub fn sharpness(img: &mut [u8], s: Shape, factor: f64) -> Result<()> {
    if !(factor >= 0.0 && factor.is_finite()) {
        return Err(Error::InvalidArgument {
            function: "sharpness",
            argument: "factor",
            message: "must be >= 0".into(),
        });
    }
    if s.checked(img)? {
        sharpness_in(img, s, factor);
    }
    Ok(())
}

/// [`sharpness`] on a buffer already checked (the pipeline's).
pub(crate) fn sharpness_in(img: &mut [u8], s: Shape, factor: f64) {
    let (h, w, c) = (s.height, s.width, s.channels);
    if h <= 2 || w <= 2 {
        return;
    }
    let src = img.to_vec();
    let (a, b) = (1.0f32 / 13.0, 5.0f32 / 13.0);
    let keep = 1.0 - factor as f32;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for ch in 0..colour_channels(s) {
                let at = |yy: usize, xx: usize| src[(yy * w + xx) * c + ch] as f32;
                let mut blurred = 0.0f32;
                for (dy, dx) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)] {
                    blurred += at(y + dy - 1, x + dx - 1) * a;
                }
                let centre = at(y, x);
                blurred = (blurred + centre * b).round();
                let out = centre + keep * (blurred - centre);
                img[(y * w + x) * c + ch] = out.clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// torchvision's 1-D gaussian kernel: `softmax(-(x / sigma)^2)` over `size` points
/// evenly spaced in `[-lim, lim]`, `lim = (size - 1) / (2 sqrt 2)`, in f32.
fn gaussian_kernel(size: usize, sigma: f64) -> Vec<f32> {
    let lim = (size as f32 - 1.0) / (2.0 * 2.0f32.sqrt());
    let step = if size > 1 { 2.0 * lim / (size as f32 - 1.0) } else { 0.0 };
    let logits: Vec<f32> = (0..size)
        .map(|i| {
            let x = -lim + i as f32 * step;
            -(x / sigma as f32).powi(2)
        })
        .collect();
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = e.iter().sum();
    e.iter().map(|v| v / total).collect()
}

/// Gaussian blur with an odd `kernel` size and `sigma` (`gaussian_blur`): reflect
/// padding, the 2-D kernel applied in f32, rounded to u8. Kernels larger than the image
/// allows for reflection (`kernel / 2 >= side`) leave it unchanged.
pub fn gaussian_blur(img: &mut [u8], s: Shape, kernel: usize, sigma: f64) -> Result<()> {
    if kernel.is_multiple_of(2) {
        return Err(Error::InvalidArgument {
            function: "gaussian_blur",
            argument: "kernel",
            message: "must be odd".into(),
        });
    }
    if !(sigma > 0.0 && sigma.is_finite()) {
        return Err(Error::InvalidArgument {
            function: "gaussian_blur",
            argument: "sigma",
            message: "must be above 0".into(),
        });
    }
    if kernel / 2 >= s.height.min(s.width) {
        return Err(Error::InvalidArgument {
            function: "gaussian_blur",
            argument: "kernel",
            message: "is too large for the image: kernel / 2 must be below its height and width (reflect padding)"
                .into(),
        });
    }
    if s.checked(img)? {
        gaussian_blur_in(img, s, kernel, sigma);
    }
    Ok(())
}

/// [`gaussian_blur`] on a buffer already checked (the pipeline's).
pub(crate) fn gaussian_blur_in(img: &mut [u8], s: Shape, kernel: usize, sigma: f64) {
    let r = kernel / 2;
    if kernel.is_multiple_of(2) || r >= s.height || r >= s.width || sigma <= 0.0 {
        return;
    }
    let k1 = gaussian_kernel(kernel, sigma);
    let k2: Vec<f32> = k1.iter().flat_map(|ky| k1.iter().map(move |kx| ky * kx)).collect();
    let reflect = |i: i64, n: usize| -> usize {
        let n = n as i64;
        let i = if i < 0 { -i } else { i };
        (if i >= n { 2 * (n - 1) - i } else { i }) as usize
    };
    let src = img.to_vec();
    let (w, c) = (s.width, s.channels);
    // The reflected source column of every (x, kx), as an offset into a row.
    let columns: Vec<usize> =
        (0..w).flat_map(|x| (0..kernel).map(move |kx| reflect(x as i64 + kx as i64 - r as i64, w) * c)).collect();
    let mut rows = vec![0usize; kernel];
    for y in 0..s.height {
        for (ky, row) in rows.iter_mut().enumerate() {
            *row = reflect(y as i64 + ky as i64 - r as i64, s.height) * w * c;
        }
        for x in 0..w {
            let cols = &columns[x * kernel..(x + 1) * kernel];
            for ch in 0..colour_channels(s) {
                // The same order of products as the 2-D kernel: row by row.
                let mut sum = 0.0f32;
                for (ky, &row) in rows.iter().enumerate() {
                    let weights = &k2[ky * kernel..(ky + 1) * kernel];
                    for (&col, &k) in cols.iter().zip(weights) {
                        sum += src[row + col + ch] as f32 * k;
                    }
                }
                img[(y * w + x) * c + ch] = sum.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Which of (v, p, q, t) each of R, G, B takes in each sixth of the hue circle
/// (torchvision's `_hsv_to_rgb` table).
const HSV_SELECT: [[usize; 6]; 3] = [[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]];

/// Turns the hue by `factor` of the colour circle, in `[-0.5, 0.5]` (`adjust_hue`:
/// RGB to HSV and back in f32, as torchvision computes it); grey images are unchanged.
pub fn hue(img: &mut [u8], s: Shape, factor: f64) -> Result<()> {
    if !(-0.5..=0.5).contains(&factor) {
        return Err(Error::InvalidArgument {
            function: "hue",
            argument: "factor",
            message: "must be in [-0.5, 0.5]".into(),
        });
    }
    if s.checked(img)? {
        hue_in(img, s, factor);
    }
    Ok(())
}

/// [`hue`] on a buffer already checked (the pipeline's).
pub(crate) fn hue_in(img: &mut [u8], s: Shape, factor: f64) {
    if s.channels < 3 {
        return;
    }
    let to_unit = (1.0f64 / 255.0) as f32;
    let to_u8 = 255.0f32 + 1.0 - 1e-3;
    for px in img.chunks_exact_mut(s.channels) {
        let [r, g, b] = [px[0], px[1], px[2]].map(|v| v as f32 * to_unit);
        let (maxc, minc) = (r.max(g).max(b), r.min(g).min(b));
        let flat = maxc == minc;
        let sat = (maxc - minc) / if flat { 1.0 } else { maxc };
        let divisor = if flat { 1.0 } else { maxc - minc };
        let [rc, gc, bc] = [r, g, b].map(|c| (maxc - c) / divisor);
        let (not_r, is_g) = (maxc != r, maxc == g);
        let hg = if is_g && not_r { rc + 2.0 - bc } else { 0.0 };
        let hr = if not_r { 0.0 } else { bc - gc };
        let hb = if not_r && !is_g { gc + 4.0 - rc } else { 0.0 };
        let h = ((hr + hg + hb) * (1.0f64 / 6.0) as f32 + 1.0) % 1.0;
        let h = (h + factor as f32).rem_euclid(1.0);
        let h6 = h * 6.0;
        let sector = h6.floor();
        let f = h6 - sector;
        let sector = (sector as i32).rem_euclid(6) as usize;
        let v = maxc;
        let sxf = sat * f;
        let one_minus_s = 1.0 - sat;
        let q = ((1.0 - sxf) * v).clamp(0.0, 1.0);
        let t = ((sxf + one_minus_s) * v).clamp(0.0, 1.0);
        let p = (one_minus_s * v).clamp(0.0, 1.0);
        let vpqt = [v, p, q, t];
        for (c, row) in HSV_SELECT.iter().enumerate() {
            px[c] = (vpqt[row[sector]] * to_u8) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorised grayscale and autocontrast give the bytes of the plain loops
    /// (which the torchvision goldens check) on every colour value.
    #[test]
    fn fast_paths_equal_the_plain_loops() {
        // Every (r, g) pair with b in steps of 3, and an odd tail that is no block.
        let mut img: Vec<u8> =
            (0..256 * 256 * 86).flat_map(|i| [(i % 256) as u8, (i / 256 % 256) as u8, (i / 65536 * 3) as u8]).collect();
        img.extend_from_slice(&[7, 200, 31, 255, 0, 128]);
        let s = Shape::new(1, img.len() / 3, 3);
        let plain: Vec<u8> = img
            .chunks_exact(3)
            .flat_map(|p| [(p[0] as f32 * 0.2989 + p[1] as f32 * 0.587 + p[2] as f32 * 0.114) as u8; 3])
            .collect();
        let mut fast = img.clone();
        grayscale_in(&mut fast, s);
        assert_eq!(fast, plain);

        for (h, w, c) in [(20, 24, 3), (7, 5, 4), (9, 11, 1), (3, 3, 2)] {
            let s = Shape::new(h, w, c);
            let img: Vec<u8> = (0..s.len()).map(|i| (40 + (i * 37) % 150) as u8).collect();
            let mut plain = img.clone();
            for ch in 0..colour_channels(s) {
                let values = || img.iter().skip(ch).step_by(c);
                let (lo, hi) = (*values().min().unwrap(), *values().max().unwrap());
                let inv_scale = (hi - lo) as f32 * (1.0f32 / 255.0);
                for v in plain.iter_mut().skip(ch).step_by(c) {
                    *v = ((*v as f32 - lo as f32) / inv_scale).clamp(0.0, 255.0) as u8;
                }
            }
            let mut fast = img.clone();
            autocontrast_in(&mut fast, s);
            assert_eq!(fast, plain, "{s:?}");
        }
    }
}
