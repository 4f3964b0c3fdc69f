//! Ops that change the image's size, returning a new buffer: torchvision's
//! `CenterCrop`, antialiased bilinear `Resize` (Pillow's algorithm, which torchvision's
//! uint8 kernel follows) and `RandomResizedCrop(size)`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result, Shape};

/// The centre `height x width` window (`center_crop`), zero-padded where the image
/// is smaller: as torchvision, a side that is padded gets `(crop - side) / 2` (floor)
/// before the image, a side that is cropped starts at `(side - crop) / 2` rounded
/// half to even, as Python's `round`.
pub fn center_crop(img: &[u8], s: Shape, height: usize, width: usize) -> Result<(Vec<u8>, Shape)> {
    let anchor = |inside: usize, crop: usize| match crop > inside {
        true => -(((crop - inside) / 2) as i64),
        false => ((inside - crop) as f64 / 2.0).round_ties_even() as i64,
    };
    crop(img, s, anchor(s.height, height), anchor(s.width, width), height, width)
}

/// Fixed-point precision of Pillow's 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's `precompute_coeffs` for the bilinear (triangle) filter: for each output
/// index its first input index and integer weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let weights: Vec<f64> =
                (xmin..xmax).map(|x| (1.0 - ((x as f64 - center + 0.5) / filter_scale).abs()).max(0.0)).collect();
            let total: f64 = weights.iter().sum();
            let one = f64::from(1u32 << PRECISION_BITS);
            let fixed = weights
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    if w < 0.0 {
                        (-0.5 + w * one) as i32
                    } else {
                        (0.5 + w * one) as i32
                    }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes to `height x width` with an antialiased bilinear filter (`resize(...,
/// antialias=True)`, torchvision's default; Pillow's `BILINEAR`): horizontal pass,
/// then vertical, each rounded to u8 as Pillow does.
pub fn resize(img: &[u8], s: Shape, height: usize, width: usize) -> Result<(Vec<u8>, Shape)> {
    if !s.checked(img)? && height * width > 0 {
        return Err(Error::InvalidArgument {
            function: "resize",
            argument: "height",
            message: format!("cannot resize an empty {}x{} image to {height}x{width}", s.height, s.width),
        });
    }
    let c = s.channels;
    // Horizontal pass: s.height rows of `width` pixels.
    let mut mid = vec![0u8; s.height * width * c];
    if width == s.width {
        mid.copy_from_slice(img);
    } else {
        let coeffs = coefficients(s.width, width);
        for y in 0..s.height {
            for (x, (xmin, k)) in coeffs.iter().enumerate() {
                for ch in 0..c {
                    let mut sum: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &w) in k.iter().enumerate() {
                        sum += i64::from(img[(y * s.width + xmin + i) * c + ch]) * i64::from(w);
                    }
                    mid[(y * width + x) * c + ch] = clip8(sum);
                }
            }
        }
    }
    let out = Shape::new(height, width, c);
    if height == s.height {
        return Ok((mid, out));
    }
    let mut buf = vec![0u8; out.len()];
    for (y, (ymin, k)) in coefficients(s.height, height).iter().enumerate() {
        for x in 0..width * c {
            let mut sum: i64 = 1 << (PRECISION_BITS - 1);
            for (i, &w) in k.iter().enumerate() {
                sum += i64::from(mid[(ymin + i) * width * c + x]) * i64::from(w);
            }
            buf[y * width * c + x] = clip8(sum);
        }
    }
    Ok((buf, out))
}

/// The `height x width` window at `(top, left)` (`crop`), zero where it leaves the
/// image.
pub fn crop(img: &[u8], s: Shape, top: i64, left: i64, height: usize, width: usize) -> Result<(Vec<u8>, Shape)> {
    s.checked(img)?;
    let out = Shape::new(height, width, s.channels);
    let mut buf = vec![0u8; out.len()];
    for y in 0..height {
        let sy = top + y as i64;
        if !(0..s.height as i64).contains(&sy) {
            continue;
        }
        // The columns of the window inside the image, copied as one slice.
        let x0 = (-left).clamp(0, width as i64) as usize;
        let x1 = (s.width as i64 - left).clamp(0, width as i64) as usize;
        if x0 < x1 {
            let c = s.channels;
            let from = (sy as usize * s.width) as i64 + left + x0 as i64;
            let from = from as usize * c;
            buf[(y * width + x0) * c..(y * width + x1) * c].copy_from_slice(&img[from..from + (x1 - x0) * c]);
        }
    }
    Ok((buf, out))
}

/// torchvision's `RandomResizedCrop(size=(height, width), scale, ratio)`: a box of
/// random area and aspect ratio, cropped and resized (antialiased) to the size; the
/// box is a pure function of `(seed, index)`.
pub fn random_resized_crop(
    img: &[u8],
    s: Shape,
    (height, width): (usize, usize),
    scale: [f64; 2],
    ratio: [f64; 2],
    (seed, index): (u64, u64),
) -> Result<(Vec<u8>, Shape)> {
    let boxes = 0.0 < scale[0] && scale[0] <= scale[1] && scale[1] <= 1.0 && 0.0 < ratio[0] && ratio[0] <= ratio[1];
    if !(boxes && ratio[1].is_finite()) {
        let message = "needs 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]".into();
        return Err(Error::InvalidArgument { function: "random_resized_crop", argument: "scale", message });
    }
    if !s.checked(img)? {
        return resize(img, s, height, width);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(crate::pipeline::mix(seed, index));
    let (left, top, w, h) = crate::sample::resized_crop_box(&mut rng, s, scale, ratio);
    let (cropped, cs) = crop(img, s, top as i64, left as i64, h as usize, w as usize)?;
    resize(&cropped, cs, height, width)
}
