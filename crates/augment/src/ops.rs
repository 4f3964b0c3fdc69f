//! The ops themselves, on one HWC u8 image, in place. Every function is public so the
//! crate can be used without the [`crate::Pipeline`].

use crate::{Error, Result, Shape};

/// What geometric ops put where the source image does not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Fill {
    /// Zeros (black), like torchvision's default.
    #[default]
    Constant,
    /// Mirror the image at its border without repeating the edge pixel
    /// (`numpy.pad(mode="reflect")`, Keras `fill_mode="reflect"`).
    Reflect,
}

/// Mirrors left-right.
pub fn hflip(img: &mut [u8], s: Shape) -> Result<()> {
    if s.checked(img)? {
        hflip_in(img, s);
    }
    Ok(())
}

/// [`hflip`] on a buffer already checked (the pipeline's).
pub(crate) fn hflip_in(img: &mut [u8], s: Shape) {
    // Whole pixels reversed as arrays: the compiler's block reversal instead of a
    // bounds-checked byte swap per value.
    fn rows<const C: usize>(img: &mut [u8], width: usize) {
        for row in img.chunks_exact_mut(width * C) {
            row.as_chunks_mut::<C>().0.reverse();
        }
    }
    match s.channels {
        1 => rows::<1>(img, s.width),
        2 => rows::<2>(img, s.width),
        3 => img.chunks_exact_mut(s.width * 3).for_each(reverse_rgb_row),
        4 => rows::<4>(img, s.width),
        c => {
            for row in img.chunks_exact_mut(s.width * c) {
                for x in 0..s.width / 2 {
                    let (a, b) = (x * c, (s.width - 1 - x) * c);
                    let (left, right) = row.split_at_mut(b);
                    left[a..a + c].swap_with_slice(&mut right[..c]);
                }
            }
        }
    }
}

/// Where byte `i` of a block of 16 RGB pixels comes from when the block is reversed.
const REVERSED_RGB: [usize; 48] = {
    let mut from = [0usize; 48];
    let mut i = 0;
    while i < 48 {
        from[i] = (15 - i / 3) * 3 + i % 3;
        i += 1;
    }
    from
};

/// Block `a` of 16 RGB pixels reversed: a constant byte shuffle, which the compiler
/// turns into a few `pshufb`s (SSSE3) or `vpermb`s (AVX-512 VBMI).
#[inline(always)]
fn reversed_rgb_block(a: [u8; 48]) -> [u8; 48] {
    let mut out = [0u8; 48];
    for (o, &i) in out.iter_mut().zip(&REVERSED_RGB) {
        *o = a[i];
    }
    out
}

/// One row of RGB pixels mirrored: blocks of 16 pixels from both ends swapped and
/// reversed, the middle pixel by pixel.
#[multiversion::multiversion(targets("x86_64+ssse3"))]
fn reverse_rgb_row(row: &mut [u8]) {
    let pixels = row.as_chunks_mut::<3>().0;
    let (mut i, mut j) = (0, pixels.len());
    while j - i >= 32 {
        let (left, right) = pixels.split_at_mut(j - 16);
        let (a, b) = (&mut left[i..i + 16], &mut right[..16]);
        let a_bytes: [u8; 48] = a.as_flattened().try_into().expect("16 pixels");
        let b_bytes: [u8; 48] = b.as_flattened().try_into().expect("16 pixels");
        a.as_flattened_mut().copy_from_slice(&reversed_rgb_block(b_bytes));
        b.as_flattened_mut().copy_from_slice(&reversed_rgb_block(a_bytes));
        (i, j) = (i + 16, j - 16);
    }
    pixels[i..j].reverse();
}

/// Mirrors top-bottom.
pub fn vflip(img: &mut [u8], s: Shape) -> Result<()> {
    if s.checked(img)? {
        vflip_in(img, s);
    }
    Ok(())
}

/// [`vflip`] on a buffer already checked (the pipeline's).
pub(crate) fn vflip_in(img: &mut [u8], s: Shape) {
    let stride = s.width * s.channels;
    for y in 0..s.height / 2 {
        let (top, bottom) = img.split_at_mut((s.height - 1 - y) * stride);
        top[y * stride..(y + 1) * stride].swap_with_slice(&mut bottom[..stride]);
    }
}

/// Index `i` folded into `0..n` by reflection at the borders (edge not repeated).
fn reflect(mut i: i64, n: i64) -> i64 {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    i = i.rem_euclid(period);
    if i >= n {
        period - i
    } else {
        i
    }
}

/// Shifts the image by `(dx, dy)` pixels (right and down are positive). With
/// [`Fill::Constant`] this is exactly torchvision's `RandomCrop(size, padding)` for one
/// offset: pad, then crop at `(padding - dx, padding - dy)`.
pub fn translate(img: &mut [u8], s: Shape, dx: i64, dy: i64, fill: Fill) -> Result<()> {
    if s.checked(img)? {
        translate_in(img, s, dx, dy, fill);
    }
    Ok(())
}

/// [`translate`] on a buffer already checked (the pipeline's).
pub(crate) fn translate_in(img: &mut [u8], s: Shape, dx: i64, dy: i64, fill: Fill) {
    if dx == 0 && dy == 0 {
        return;
    }
    let (w, h, c) = (s.width as i64, s.height as i64, s.channels);
    let src = img.to_vec();
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = (x - dx, y - dy);
            let to = ((y * w + x) as usize) * c;
            let inside = (0..w).contains(&sx) && (0..h).contains(&sy);
            if inside || fill == Fill::Reflect {
                let from = ((reflect(sy, h) * w + reflect(sx, w)) as usize) * c;
                img[to..to + c].copy_from_slice(&src[from..from + c]);
            } else {
                img[to..to + c].fill(0);
            }
        }
    }
}

/// What a fused warp does to each value it writes: a lookup table (brightness, or
/// several composed) and a left-right mirror of the output. Both act after the
/// resampling, so the result is exactly that of the separate ops run afterwards.
#[derive(Clone, Copy)]
pub(crate) struct Post {
    pub(crate) lut: Option<[u8; 256]>,
    pub(crate) flip: bool,
}

impl Post {
    pub(crate) const NONE: Post = Post { lut: None, flip: false };

    /// Applies the table and the mirror alone (when there is no warp to fuse them into).
    pub(crate) fn apply(&self, img: &mut [u8], s: Shape) {
        if let Some(lut) = &self.lut {
            apply_lut(img, s, lut);
        }
        if self.flip {
            hflip_in(img, s);
        }
    }
}

thread_local! {
    /// The warp's copy of its source, kept between calls: no allocation (and no fresh
    /// zeroed pages from the kernel) per image.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Resamples bilinearly through an affine map: output pixel centre `(x, y)` reads
/// the source at `(ax*x + bx*y + cx, ay*x + by*y + cy)` (pixel-centre coordinates),
/// with `fill` outside, then applies `post`. Coordinates advance incrementally along
/// each row, and pixels whose four neighbours are inside take a branch-free integer
/// path, specialised for 1 and 3 channels.
fn warp_affine(img: &mut [u8], s: Shape, fill: Fill, m: [f32; 6], post: Post) {
    if img.is_empty() {
        return;
    }
    SCRATCH.with(|cell| {
        let mut src = cell.borrow_mut();
        src.clear();
        src.extend_from_slice(img);
        match s.channels {
            1 => warp_rows::<1>(&src, img, s, fill, m, post),
            3 => warp_rows::<3>(&src, img, s, fill, m, post),
            _ => warp_rows::<0>(&src, img, s, fill, m, post),
        }
    });
}

/// [`warp_affine`]'s loop; `C` is the channel count, or 0 for "read it from `s`".
fn warp_rows<const C: usize>(src: &[u8], img: &mut [u8], s: Shape, fill: Fill, m: [f32; 6], post: Post) {
    let c = if C == 0 { s.channels } else { C };
    let (w, h) = (s.width as i32, s.height as i32);
    let stride = s.width * c;
    let [ax, bx, cx, ay, by, cy] = m;
    let identity: [u8; 256] = std::array::from_fn(|v| v as u8);
    let lut = post.lut.unwrap_or(identity);
    // The table is the colour values' (brightness): an alpha value takes the identity.
    let colour = colour_values(c);
    let table = |k: usize| if k < colour { &lut } else { &identity };
    let fetch = |x: i32, y: i32, k: usize| -> f32 {
        match fill {
            Fill::Reflect => {
                src[(reflect(y as i64, h as i64) as usize) * stride + (reflect(x as i64, w as i64) as usize) * c + k]
                    as f32
            }
            Fill::Constant if x >= 0 && x < w && y >= 0 && y < h => {
                src[y as usize * stride + x as usize * c + k] as f32
            }
            Fill::Constant => 0.0,
        }
    };
    // Source coordinates advance in 16.16 fixed point: no float-to-int conversion per
    // pixel, and an arithmetic shift floors negative coordinates correctly.
    const ONE: f32 = 65536.0;
    let (step_x, step_y) = ((ax * ONE).round() as i32, (ay * ONE).round() as i32);
    for (y, out_row) in img.chunks_exact_mut(stride).enumerate() {
        // Source position of this row's first pixel centre, minus the half pixel that
        // turns centres into indices.
        let yc = y as f32 + 0.5;
        let mut fx = ((ax * 0.5 + bx * yc + cx - 0.5) * ONE).round() as i32;
        let mut fy = ((ay * 0.5 + by * yc + cy - 0.5) * ONE).round() as i32;
        for x in 0..s.width {
            let (x0, y0) = (fx >> 16, fy >> 16);
            let to = if post.flip { (s.width - 1 - x) * c } else { x * c };
            let out = &mut out_row[to..to + c];
            if x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h {
                // Interior: 8-bit fixed-point weights, integer arithmetic only.
                let (qx, qy) = (((fx >> 8) & 0xFF) as u32, ((fy >> 8) & 0xFF) as u32);
                let p00 = y0 as usize * stride + x0 as usize * c;
                let (a, b) = (&src[p00..p00 + 2 * c], &src[p00 + stride..p00 + stride + 2 * c]);
                for k in 0..c {
                    let top = a[k] as u32 * (256 - qx) + a[c + k] as u32 * qx;
                    let bottom = b[k] as u32 * (256 - qx) + b[c + k] as u32 * qx;
                    out[k] = table(k)[((top * (256 - qy) + bottom * qy + 32768) >> 16) as usize];
                }
            } else {
                let (wx, wy) = ((fx & 0xFFFF) as f32 / ONE, (fy & 0xFFFF) as f32 / ONE);
                for (k, o) in out.iter_mut().enumerate() {
                    let top = fetch(x0, y0, k) * (1.0 - wx) + fetch(x0 + 1, y0, k) * wx;
                    let bottom = fetch(x0, y0 + 1, k) * (1.0 - wx) + fetch(x0 + 1, y0 + 1, k) * wx;
                    *o = table(k)[(top * (1.0 - wy) + bottom * wy + 0.5).clamp(0.0, 255.0) as usize];
                }
            }
            fx += step_x;
            fy += step_y;
        }
    }
}

/// Rotates by `degrees` (counter-clockwise) and scales by `scale` (> 1 zooms in)
/// about the centre, bilinearly.
pub fn rotate_zoom(img: &mut [u8], s: Shape, degrees: f64, scale: f64, fill: Fill) -> Result<()> {
    if !(scale > 0.0 && scale.is_finite() && degrees.is_finite()) {
        return Err(Error::InvalidArgument {
            function: "rotate_zoom",
            argument: "scale",
            message: "needs a finite angle and a scale above 0".into(),
        });
    }
    if s.checked(img)? {
        rotate_zoom_in(img, s, degrees, scale, fill);
    }
    Ok(())
}

/// [`rotate_zoom`] on a buffer already checked (the pipeline's).
pub(crate) fn rotate_zoom_in(img: &mut [u8], s: Shape, degrees: f64, scale: f64, fill: Fill) {
    rotate_zoom_then(img, s, degrees, scale, fill, Post::NONE);
}

/// [`rotate_zoom`], then `post` in the same pass.
pub(crate) fn rotate_zoom_then(img: &mut [u8], s: Shape, degrees: f64, scale: f64, fill: Fill, post: Post) {
    if degrees == 0.0 && scale == 1.0 {
        post.apply(img, s);
        return;
    }
    let (cx, cy) = (s.width as f64 / 2.0, s.height as f64 / 2.0);
    let (sin, cos) = degrees.to_radians().sin_cos();
    // Inverse map, output -> source: src = c + R * (out - c) / scale. Image y grows
    // downwards, so a counter-clockwise turn on screen is clockwise in these axes.
    let (a, b, d, e) = (cos / scale, -sin / scale, sin / scale, cos / scale);
    let m = [a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy];
    warp_affine(img, s, fill, m.map(|v| v as f32), post);
}

/// Crops the rectangle `(left, top, width, height)` and resizes it back to the full
/// image in one bilinear warp (no antialiasing, reflected at the borders): the
/// pipeline's same-size `random_resized_crop` op, fast. For torchvision's
/// `RandomResizedCrop` values (crop, then antialiased resize to any size) use
/// [`random_resized_crop`](crate::random_resized_crop).
pub fn crop_resize(img: &mut [u8], s: Shape, left: f64, top: f64, width: f64, height: f64) -> Result<()> {
    if !(width > 0.0 && height > 0.0 && left.is_finite() && top.is_finite() && width.is_finite() && height.is_finite())
    {
        return Err(Error::InvalidArgument {
            function: "crop_resize",
            argument: "width",
            message: "needs a finite box of positive width and height".into(),
        });
    }
    if s.checked(img)? {
        crop_resize_in(img, s, left, top, width, height);
    }
    Ok(())
}

/// [`crop_resize`] on a buffer already checked (the pipeline's).
pub(crate) fn crop_resize_in(img: &mut [u8], s: Shape, left: f64, top: f64, width: f64, height: f64) {
    let (sx, sy) = (width / s.width as f64, height / s.height as f64);
    let m = [sx, 0.0, left, 0.0, sy, top];
    warp_affine(img, s, Fill::Reflect, m.map(|v| v as f32), Post::NONE);
}

/// The table [`brightness_rounded`] applies: `v * factor`, rounded and clamped.
pub(crate) fn brightness_lut(factor: f64) -> [u8; 256] {
    std::array::from_fn(|v| (v as f64 * factor).round().clamp(0.0, 255.0) as u8)
}

/// The colour values of a pixel of `channels`: 3 of RGB or RGBA (and more), 1 of grey
/// or grey + alpha. The others (alpha) are left alone by the colour ops.
pub(crate) fn colour_values(channels: usize) -> usize {
    if channels >= 3 {
        3
    } else {
        1
    }
}

/// Replaces every colour value `v` by `lut[v]` (alpha left alone).
fn apply_lut(img: &mut [u8], s: Shape, lut: &[u8; 256]) {
    let colour = colour_values(s.channels);
    if colour == s.channels {
        img.iter_mut().for_each(|v| *v = lut[*v as usize]);
    } else {
        img.chunks_exact_mut(s.channels).for_each(|px| px[..colour].iter_mut().for_each(|v| *v = lut[*v as usize]));
    }
}

/// Multiplies every colour value by `factor` (alpha left alone), rounded: the
/// `brightness` op's (the configs' since the first seed). Not torchvision's, which
/// truncates: [`adjust_brightness`](crate::adjust_brightness) is.
pub fn brightness_rounded(img: &mut [u8], s: Shape, factor: f64) -> Result<()> {
    if !factor.is_finite() {
        let message = "must be a number".into();
        return Err(Error::InvalidArgument { function: "brightness_rounded", argument: "factor", message });
    }
    if s.checked(img)? {
        brightness_rounded_in(img, s, factor);
    }
    Ok(())
}

/// [`brightness_rounded`] on a buffer already checked (the pipeline's).
pub(crate) fn brightness_rounded_in(img: &mut [u8], s: Shape, factor: f64) {
    // 256 products instead of one per byte.
    apply_lut(img, s, &brightness_lut(factor));
}

fn gray(px: &[u8]) -> f64 {
    if px.len() >= 3 {
        0.299 * px[0] as f64 + 0.587 * px[1] as f64 + 0.114 * px[2] as f64
    } else {
        px[0] as f64
    }
}

/// Blends with the mean grey level of the image (luma 0.299/0.587/0.114), rounded:
/// the `contrast` op's. Not torchvision's, which floors the luma and truncates:
/// [`adjust_contrast`](crate::adjust_contrast) is.
pub fn contrast_rounded(img: &mut [u8], s: Shape, factor: f64) -> Result<()> {
    if s.checked(img)? {
        contrast_rounded_in(img, s, factor);
    }
    Ok(())
}

/// [`contrast_rounded`] on a buffer already checked (the pipeline's).
pub(crate) fn contrast_rounded_in(img: &mut [u8], s: Shape, factor: f64) {
    let n = (s.width * s.height).max(1) as f64;
    let mean = img.chunks_exact(s.channels).map(gray).sum::<f64>() / n;
    let colour = colour_values(s.channels);
    for px in img.chunks_exact_mut(s.channels) {
        for v in &mut px[..colour] {
            *v = (factor * *v as f64 + (1.0 - factor) * mean).round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// Blends each pixel with its own grey level, rounded (a no-op on single-channel
/// images): the `saturation` op's. Not torchvision's, which floors the luma and
/// truncates: [`adjust_saturation`](crate::adjust_saturation) is.
pub fn saturation_rounded(img: &mut [u8], s: Shape, factor: f64) -> Result<()> {
    if s.checked(img)? {
        saturation_rounded_in(img, s, factor);
    }
    Ok(())
}

/// [`saturation_rounded`] on a buffer already checked (the pipeline's).
pub(crate) fn saturation_rounded_in(img: &mut [u8], s: Shape, factor: f64) {
    if s.channels < 3 {
        return;
    }
    for px in img.chunks_exact_mut(s.channels) {
        let g = gray(px);
        for v in px.iter_mut().take(3) {
            *v = (factor * *v as f64 + (1.0 - factor) * g).round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// Zeros a `size x size` square centred at `(cx, cy)` (DeVries & Taylor's cutout),
/// clipped at the borders: [`erase`] of the clipped box with 0.
pub fn cutout(img: &mut [u8], s: Shape, cx: i64, cy: i64, size: usize) -> Result<()> {
    if s.checked(img)? {
        cutout_in(img, s, cx, cy, size);
    }
    Ok(())
}

/// [`cutout`] on a buffer already checked (the pipeline's).
pub(crate) fn cutout_in(img: &mut [u8], s: Shape, cx: i64, cy: i64, size: usize) {
    let half = size as i64 / 2;
    let clip = |c: i64, side: usize| ((c - half).max(0), (c - half + size as i64).clamp(0, side as i64));
    let ((x0, x1), (y0, y1)) = (clip(cx, s.width), clip(cy, s.height));
    if x0 < x1 && y0 < y1 {
        erase_in(img, s, y0 as usize, x0 as usize, (y1 - y0) as usize, (x1 - x0) as usize, 0);
    }
}

/// Sets the `height x width` box at `(top, left)` to `value` (torchvision `erase`
/// with a constant), clipped at the borders.
pub fn erase(img: &mut [u8], s: Shape, top: usize, left: usize, height: usize, width: usize, value: u8) -> Result<()> {
    if s.checked(img)? {
        erase_in(img, s, top, left, height, width, value);
    }
    Ok(())
}

/// [`erase`] on a buffer already checked (the pipeline's).
pub(crate) fn erase_in(img: &mut [u8], s: Shape, top: usize, left: usize, height: usize, width: usize, value: u8) {
    let (y1, x1) = ((top + height).min(s.height), (left + width).min(s.width));
    for y in top.min(y1)..y1 {
        let row = y * s.width * s.channels;
        img[row + left.min(x1) * s.channels..row + x1 * s.channels].fill(value);
    }
}

/// HWC u8 to CHW f32: `(v / 255 - mean[c]) / std[c]` (torchvision `ToTensor` +
/// `Normalize`); `mean` and `std` need a value per channel.
pub fn normalize_to_chw(img: &[u8], s: Shape, mean: &[f32], std: &[f32]) -> Result<Vec<f32>> {
    if !s.checked(img)? {
        return Ok(Vec::new());
    }
    if mean.len() < s.channels || std.len() < s.channels {
        let message =
            format!("needs {} values, one per channel (mean has {}, std {})", s.channels, mean.len(), std.len());
        return Err(Error::InvalidArgument { function: "normalize_to_chw", argument: "mean", message });
    }
    let plane = s.width * s.height;
    let mut out = vec![0.0f32; plane * s.channels];
    for (p, px) in img.chunks_exact(s.channels).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            out[c * plane + p] = (v as f32 / 255.0 - mean[c]) / std[c];
        }
    }
    Ok(out)
}

/// torchvision `F.jpeg(img, quality)`: `img` (grey or RGB) encoded as a JPEG of
/// `quality` (1 to 100) and decoded again, with the `image` crate's codec (not
/// libjpeg's: a mean difference of about one grey level from torchvision's output).
#[cfg(feature = "image")]
pub fn jpeg(img: &[u8], s: Shape, quality: u8) -> Result<Vec<u8>> {
    let bad = |argument, message: String| Error::InvalidArgument { function: "jpeg", argument, message };
    if !(1..=100).contains(&quality) {
        return Err(bad("quality", format!("{quality} is outside 1..=100")));
    }
    let colour = match s.channels {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        c => return Err(bad("img", format!("JPEG holds grey or RGB images, not {c} channels"))),
    };
    if !s.checked(img)? {
        return Ok(img.to_vec());
    }
    let too_large = |_| bad("img", format!("a {}x{} image is too large for JPEG", s.height, s.width));
    let (w, h) = (u32::try_from(s.width).map_err(too_large)?, u32::try_from(s.height).map_err(too_large)?);
    let mut encoded = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, quality)
        .encode(img, w, h, colour)
        .map_err(|e| bad("img", e.to_string()))?;
    let decoded = image::load_from_memory_with_format(&encoded, image::ImageFormat::Jpeg)
        .map_err(|e| bad("img", e.to_string()))?;
    Ok(match s.channels {
        1 => decoded.into_luma8().into_raw(),
        _ => decoded.into_rgb8().into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_rows_reverse_as_plain_pixel_reversal() {
        for width in 0..100 {
            let row: Vec<u8> = (0..width * 3).map(|i| (i * 7 % 256) as u8).collect();
            let mut plain = row.clone();
            plain.as_chunks_mut::<3>().0.reverse();
            let mut fast = row.clone();
            reverse_rgb_row(&mut fast);
            assert_eq!(fast, plain, "width {width}");
        }
    }

    const S: Shape = Shape { height: 2, width: 3, channels: 1 };

    /// The whole-pixel reversal equals mirroring pixel by pixel, for every channel count.
    #[test]
    fn hflip_mirrors_whole_pixels() {
        for c in 1..=6 {
            for width in [1, 2, 5, 8] {
                let s = Shape { height: 3, width, channels: c };
                let orig: Vec<u8> = (0..s.len()).map(|i| (i * 31 % 256) as u8).collect();
                let mut img = orig.clone();
                hflip(&mut img, s).unwrap();
                for y in 0..3 {
                    for x in 0..width {
                        let (to, from) = ((y * width + x) * c, (y * width + width - 1 - x) * c);
                        assert_eq!(img[to..to + c], orig[from..from + c], "{c} channels, width {width}");
                    }
                }
            }
        }
    }

    #[test]
    fn flips_by_hand() {
        let mut img = [1, 2, 3, 4, 5, 6];
        hflip(&mut img, S).unwrap();
        assert_eq!(img, [3, 2, 1, 6, 5, 4]);
        vflip(&mut img, S).unwrap();
        assert_eq!(img, [6, 5, 4, 3, 2, 1]);
        let mut rgb = [1, 10, 2, 20];
        hflip(&mut rgb, Shape { height: 1, width: 2, channels: 2 }).unwrap();
        assert_eq!(rgb, [2, 20, 1, 10]);
    }

    #[test]
    fn translates_by_hand() {
        let mut img = [1, 2, 3, 4, 5, 6];
        translate(&mut img, S, 1, 0, Fill::Constant).unwrap();
        assert_eq!(img, [0, 1, 2, 0, 4, 5]);
        let mut img = [1, 2, 3, 4, 5, 6];
        translate(&mut img, S, -2, 1, Fill::Constant).unwrap();
        assert_eq!(img, [0, 0, 0, 3, 0, 0]);
        let mut img = [1, 2, 3, 4, 5, 6];
        translate(&mut img, S, 3, 0, Fill::Constant).unwrap();
        assert_eq!(img, [0; 6]);
        // Reflect: a shift right by 1 mirrors column 1 into column 0.
        let mut img = [1, 2, 3, 4, 5, 6];
        translate(&mut img, S, 1, 0, Fill::Reflect).unwrap();
        assert_eq!(img, [2, 1, 2, 5, 4, 5]);
    }

    #[test]
    fn post_without_a_warp_is_the_table_then_the_flip() {
        let s = Shape { height: 2, width: 3, channels: 2 };
        let orig: Vec<u8> = (0..12).map(|v| v * 20).collect();
        let post = Post { lut: Some(brightness_lut(1.5)), flip: true };
        let mut fused = orig.clone();
        rotate_zoom_then(&mut fused, s, 0.0, 1.0, Fill::Constant, post);
        let mut separate = orig;
        brightness_rounded(&mut separate, s, 1.5).unwrap();
        hflip(&mut separate, s).unwrap();
        assert_eq!(fused, separate);
        // Grey + alpha: the table and the mirror move the grey values; alpha keeps its own.
        assert_eq!(&fused[..6], &[120, 100, 60, 60, 0, 20]);
    }

    #[test]
    fn a_warp_with_post_equals_the_warp_then_the_ops() {
        for (c, fill) in [(3usize, Fill::Constant), (1, Fill::Reflect), (2, Fill::Constant)] {
            let s = Shape { height: 9, width: 11, channels: c };
            let orig: Vec<u8> = (0..s.len()).map(|i| (i * 37 % 251) as u8).collect();
            for (lut, flip) in [(None, true), (Some(brightness_lut(1.3)), false), (Some(brightness_lut(0.7)), true)] {
                let mut fused = orig.clone();
                rotate_zoom_then(&mut fused, s, 12.0, 1.1, fill, Post { lut, flip });
                let mut separate = orig.clone();
                rotate_zoom(&mut separate, s, 12.0, 1.1, fill).unwrap();
                if let Some(t) = lut {
                    apply_lut(&mut separate, s, &t);
                }
                if flip {
                    hflip(&mut separate, s).unwrap();
                }
                assert_eq!(fused, separate, "{c} channels, {fill:?}, flip {flip}");
            }
        }
    }

    #[test]
    fn reflect_indices() {
        let got: Vec<i64> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect(5, 1), 0);
    }

    #[test]
    fn rotations_by_hand() {
        let s = Shape { height: 3, width: 3, channels: 1 };
        let orig = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let mut img = orig;
        rotate_zoom(&mut img, s, 90.0, 1.0, Fill::Constant).unwrap();
        // Counter-clockwise on screen: the top row becomes the left column.
        assert_eq!(img, [3, 6, 9, 2, 5, 8, 1, 4, 7]);
        let mut img = orig;
        rotate_zoom(&mut img, s, 0.0, 1.0, Fill::Reflect).unwrap();
        assert_eq!(img, orig);
        let mut img = orig;
        rotate_zoom(&mut img, s, 360.0, 1.0, Fill::Constant).unwrap();
        assert_eq!(img, orig);
    }

    #[test]
    fn colour_ops_by_hand() {
        let rgb = Shape { height: 1, width: 1, channels: 3 };
        let mut img = [100, 200, 50];
        brightness_rounded(&mut img, rgb, 1.0).unwrap();
        assert_eq!(img, [100, 200, 50]);
        brightness_rounded(&mut img, rgb, 1.5).unwrap();
        assert_eq!(img, [150, 255, 75]);
        // RGBA and grey + alpha: the alpha value stays.
        let mut rgba = [100, 200, 50, 80];
        brightness_rounded(&mut rgba, Shape { height: 1, width: 1, channels: 4 }, 1.5).unwrap();
        assert_eq!(rgba, [150, 255, 75, 80]);
        let mut ga = [100, 80, 20, 40];
        contrast_rounded(&mut ga, Shape { height: 1, width: 2, channels: 2 }, 0.0).unwrap();
        assert_eq!(ga, [60, 80, 60, 40]);
        let s = Shape { height: 1, width: 2, channels: 1 };
        let mut img = [100, 200];
        contrast_rounded(&mut img, s, 0.5).unwrap();
        assert_eq!(img, [125, 175]);
        let mut px = [255, 0, 0];
        saturation_rounded(&mut px, rgb, 0.0).unwrap();
        assert_eq!(px, [76, 76, 76]);
        let mut img = [9u8; 16];
        cutout(&mut img, Shape { height: 4, width: 4, channels: 1 }, 0, 0, 2).unwrap();
        assert_eq!(img.iter().filter(|&&v| v == 0).count(), 1);
        let chw =
            normalize_to_chw(&[0, 255, 255, 0], Shape { height: 1, width: 2, channels: 2 }, &[0.5, 0.0], &[0.5, 1.0])
                .unwrap();
        assert_eq!(chw, [-1.0, 1.0, 1.0, 0.0]);
    }
}
