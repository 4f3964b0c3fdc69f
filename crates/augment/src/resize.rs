//! Ops that change the image's size, returning a new buffer: torchvision's
//! `CenterCrop`, antialiased bilinear `Resize` (Pillow's algorithm, which torchvision's
//! uint8 kernel follows) and `RandomResizedCrop(size)`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{Error, Interpolation, Result, Shape};

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

/// The separable filter of an antialiased resize: its support (in input pixels at
/// scale 1) and its kernel, as Pillow's `filters`.
#[derive(Clone, Copy)]
struct Filter {
    support: f64,
    kernel: fn(f64) -> f64,
}

const TRIANGLE: Filter = Filter { support: 1.0, kernel: |x| (1.0 - x.abs()).max(0.0) };
/// Keys' cubic with `a = -0.5` (Pillow's and torchvision's antialiased bicubic).
const CUBIC: Filter = Filter {
    support: 2.0,
    kernel: |x| {
        const A: f64 = -0.5;
        let x = x.abs();
        if x < 1.0 {
            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            (((x - 5.0) * x + 8.0) * x - 4.0) * A
        } else {
            0.0
        }
    },
};

/// Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc`: for each output index
/// its first input index, and `taps` integer weights per index (zero beyond its own).
struct Coefficients {
    start: Vec<usize>,
    len: Vec<usize>,
    taps: usize,
    weights: Vec<i32>,
}

impl Coefficients {
    fn new(in_size: usize, out_size: usize, filter: Filter) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let support = filter.support * filter_scale;
        let taps = (support.ceil() as usize) * 2 + 1;
        let (mut start, mut len) = (Vec::with_capacity(out_size), Vec::with_capacity(out_size));
        let mut weights = vec![0i32; out_size * taps];
        let one = f64::from(1u32 << PRECISION_BITS);
        for (xx, fixed) in weights.chunks_exact_mut(taps).enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax).map(|x| (filter.kernel)((x as f64 - center + 0.5) / filter_scale)).collect();
            let total: f64 = w.iter().sum();
            for (f, w) in fixed.iter_mut().zip(&w) {
                let w = if total != 0.0 { w / total } else { *w };
                *f = if w < 0.0 { (-0.5 + w * one) as i32 } else { (0.5 + w * one) as i32 };
            }
            start.push(xmin);
            len.push(w.len().min(taps));
        }
        Coefficients { start, len, taps, weights }
    }

    /// Output index `i`'s first input index and weights.
    fn at(&self, i: usize) -> (usize, &[i32]) {
        (self.start[i], &self.weights[i * self.taps..][..self.len[i]])
    }
}

/// A fixed-point sum back to u8, as Pillow's `clip8`.
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Half of one in fixed point: the rounding every sum starts from.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// `rows x width` pixels of `C` values, transposed to `width x rows` (in tiles, so
/// both sides stay in cache).
fn transpose<const C: usize>(src: &[u8], rows: usize, width: usize) -> Vec<u8> {
    const TILE: usize = 16;
    let mut out = vec![0u8; src.len()];
    let (from, to) = (src.as_chunks::<C>().0, out.as_chunks_mut::<C>().0);
    for x0 in (0..width).step_by(TILE) {
        for y0 in (0..rows).step_by(TILE) {
            // Writes run along the output's rows (contiguous), reads down a tile's column.
            for x in x0..(x0 + TILE).min(width) {
                let column = &mut to[x * rows + y0..x * rows + (y0 + TILE).min(rows)];
                for (k, px) in column.iter_mut().enumerate() {
                    *px = from[(y0 + k) * width + x];
                }
            }
        }
    }
    out
}

/// The horizontal pass as the vertical one on the transposed rows: the same sums
/// and rounding (so the same bytes), but the inner loop runs along contiguous
/// memory, which the compiler vectorises; the sums along a row of interleaved
/// pixels do not.
fn horizontal_transposed<const C: usize>(src: &[u8], rows: usize, in_width: usize, co: &Coefficients) -> Vec<u8> {
    let columns = transpose::<C>(src, rows, in_width);
    let out_width = co.start.len();
    let mut summed = vec![0u8; out_width * rows * C];
    vertical(&columns, rows * C, co, &mut summed);
    transpose::<C>(&summed, out_width, rows)
}

/// The horizontal pass for any number of values per pixel.
fn horizontal_any(src: &[u8], in_width: usize, c: usize, co: &Coefficients, out: &mut [u8]) {
    let out_width = co.start.len();
    for (row, out_row) in src.chunks_exact(in_width * c).zip(out.chunks_exact_mut(out_width * c)) {
        for (x, px) in out_row.chunks_exact_mut(c).enumerate() {
            let (xmin, k) = co.at(x);
            for (ch, o) in px.iter_mut().enumerate() {
                let values = row[xmin * c + ch..].iter().step_by(c);
                *o = clip8(k.iter().zip(values).fold(HALF, |acc, (&w, &v)| acc + i32::from(v) * w));
            }
        }
    }
}

/// The vertical pass: each output row a weighted sum of whole input rows (the inner
/// loop runs along a row, which the compiler vectorises).
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
fn vertical(src: &[u8], row_len: usize, co: &Coefficients, out: &mut [u8]) {
    let mut acc = vec![0i32; row_len];
    for (y, out_row) in out.chunks_exact_mut(row_len).enumerate() {
        let (ymin, k) = co.at(y);
        acc.fill(HALF);
        for (i, &w) in k.iter().enumerate() {
            let row = &src[(ymin + i) * row_len..][..row_len];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += i32::from(v) * w;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
}

/// Resizes to `height x width` with an antialiased bilinear filter (`resize(...,
/// antialias=True)`, torchvision's default; Pillow's `BILINEAR`): horizontal pass,
/// then vertical, each rounded to u8 as Pillow does.
pub fn resize(img: &[u8], s: Shape, height: usize, width: usize) -> Result<(Vec<u8>, Shape)> {
    resize_with(img, s, height, width, Interpolation::Bilinear)
}

/// Resizes to `height x width` with `interpolation`: `Bilinear` and `Bicubic` are
/// antialiased (Pillow's filters, which torchvision's uint8 kernels follow: within one
/// grey level of torchvision 0.28), `Nearest` takes pixel `floor(i * in / out)` as
/// `torch.nn.functional.interpolate(mode="nearest")`.
pub fn resize_with(
    img: &[u8],
    s: Shape,
    height: usize,
    width: usize,
    interpolation: Interpolation,
) -> Result<(Vec<u8>, Shape)> {
    if !s.checked(img)? && height * width > 0 {
        return Err(Error::InvalidArgument {
            function: "resize",
            argument: "height",
            message: format!("cannot resize an empty {}x{} image to {height}x{width}", s.height, s.width),
        });
    }
    let out = Shape::new(height, width, s.channels);
    if out.is_empty() {
        return Ok((Vec::new(), out));
    }
    let filter = match interpolation {
        Interpolation::Nearest => return Ok((resize_nearest(img, s, out), out)),
        Interpolation::Bilinear => TRIANGLE,
        Interpolation::Bicubic => CUBIC,
    };
    Ok((resize_filtered(img, s, out, filter), out))
}

fn resize_filtered(img: &[u8], s: Shape, out: Shape, filter: Filter) -> Vec<u8> {
    let c = s.channels;
    // Horizontal pass: the rows the vertical pass reads, `out.width` pixels each.
    let vertical_co = (out.height != s.height).then(|| Coefficients::new(s.height, out.height, filter));
    let (first, last) = match &vertical_co {
        Some(co) => {
            let first = co.start.first().copied().unwrap_or(0);
            (first, (0..out.height).map(|y| co.start[y] + co.len[y]).max().unwrap_or(first))
        }
        None => (0, s.height),
    };
    let rows = &img[first * s.width * c..last * s.width * c];
    let mid = match out.width == s.width {
        true => rows.to_vec(),
        false => {
            let co = Coefficients::new(s.width, out.width, filter);
            let n = last - first;
            match c {
                1 => horizontal_transposed::<1>(rows, n, s.width, &co),
                3 => horizontal_transposed::<3>(rows, n, s.width, &co),
                4 => horizontal_transposed::<4>(rows, n, s.width, &co),
                _ => {
                    let mut mid = vec![0u8; n * out.width * c];
                    horizontal_any(rows, s.width, c, &co, &mut mid);
                    mid
                }
            }
        }
    };
    let Some(mut co) = vertical_co else { return mid };
    co.start.iter_mut().for_each(|y| *y -= first);
    let mut buf = vec![0u8; out.len()];
    vertical(&mid, out.width * c, &co, &mut buf);
    buf
}

/// `interpolate(mode="nearest")`: source index `min(floor(i * (in / out)), in - 1)`
/// in float32, as PyTorch's `nearest_idx`.
fn resize_nearest(img: &[u8], s: Shape, out: Shape) -> Vec<u8> {
    let index = |i: usize, size_in: usize, size_out: usize| {
        if size_in == size_out {
            i
        } else if size_out == 2 * size_in {
            i >> 1
        } else {
            let scale = size_in as f32 / size_out as f32;
            ((i as f32 * scale).floor() as usize).min(size_in - 1)
        }
    };
    let c = s.channels;
    let columns: Vec<usize> = (0..out.width).map(|x| index(x, s.width, out.width) * c).collect();
    let mut buf = Vec::with_capacity(out.len());
    for y in 0..out.height {
        let row = &img[index(y, s.height, out.height) * s.width * c..][..s.width * c];
        for &x in &columns {
            buf.extend_from_slice(&row[x..x + c]);
        }
    }
    buf
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

/// How [`pad`] fills the border: torchvision's `padding_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum PadMode {
    /// The fill value.
    #[default]
    Constant,
    /// The nearest edge pixel repeated.
    Edge,
    /// The image mirrored at its border, the edge pixel not repeated (`[2, 1, 0, 1, 2]`).
    Reflect,
    /// The image mirrored at its border, the edge pixel repeated (`[1, 0, 0, 1, 2]`).
    Symmetric,
}

/// Where output index `i` (the first `before` of them are padding) reads the input of
/// `size` values, or `None` for the fill.
fn padded_index(i: usize, before: usize, size: usize, mode: PadMode) -> Option<usize> {
    let at = i as i64 - before as i64;
    let n = size as i64;
    if (0..n).contains(&at) {
        return Some(at as usize);
    }
    let mapped = match mode {
        PadMode::Constant => return None,
        PadMode::Edge => at.clamp(0, n - 1),
        PadMode::Reflect if n == 1 => 0,
        PadMode::Reflect => {
            let m = at.rem_euclid(2 * (n - 1));
            if m >= n {
                2 * (n - 1) - m
            } else {
                m
            }
        }
        PadMode::Symmetric => {
            let m = at.rem_euclid(2 * n);
            if m >= n {
                2 * n - 1 - m
            } else {
                m
            }
        }
    };
    Some(mapped as usize)
}

/// torchvision `F.pad(img, [left, top, right, bottom], fill, padding_mode)`: `fill` is
/// one value for every channel or one per channel (used by `PadMode::Constant`).
pub fn pad(
    img: &[u8],
    s: Shape,
    [left, top, right, bottom]: [usize; 4],
    mode: PadMode,
    fill: &[u8],
) -> Result<(Vec<u8>, Shape)> {
    let c = s.channels;
    if !(fill.len() == 1 || fill.len() == c) {
        return Err(Error::InvalidArgument {
            function: "pad",
            argument: "fill",
            message: format!("needs one value or one per channel ({c}), got {}", fill.len()),
        });
    }
    let has_pixels = s.checked(img)?;
    let out = Shape::new(s.height + top + bottom, s.width + left + right, c);
    if !has_pixels && mode != PadMode::Constant && !out.is_empty() {
        return Err(Error::InvalidArgument {
            function: "pad",
            argument: "padding_mode",
            message: format!("{mode:?} padding needs an image to repeat, got {}x{}", s.height, s.width),
        });
    }
    if out.is_empty() {
        return Ok((Vec::new(), out));
    }
    let fill_px: Vec<u8> = (0..c).map(|ch| fill[ch.min(fill.len() - 1)]).collect();
    let columns: Vec<Option<usize>> = (0..out.width).map(|x| padded_index(x, left, s.width, mode)).collect();
    let mut buf = Vec::with_capacity(out.len());
    for y in 0..out.height {
        match padded_index(y, top, s.height, mode) {
            None => (0..out.width).for_each(|_| buf.extend_from_slice(&fill_px)),
            Some(sy) => {
                let row = &img[sy * s.width * c..][..s.width * c];
                for &x in &columns {
                    match x {
                        Some(x) => buf.extend_from_slice(&row[x * c..x * c + c]),
                        None => buf.extend_from_slice(&fill_px),
                    }
                }
            }
        }
    }
    Ok((buf, out))
}
