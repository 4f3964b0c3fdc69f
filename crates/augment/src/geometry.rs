//! torchvision v2's grid warps on u8 images: `affine`, `rotate` and `perspective`,
//! computed as torchvision's tensor kernels compute them (a float32 sampling grid,
//! `grid_sample` with `align_corners=False`, the fill blended through a mask channel,
//! then rounding half to even). On the fixtures of `tests/torchvision_colour.py`
//! bilinear results are within one grey level of torchvision 0.28's and nearest
//! results identical but for the rare pixel whose source lies on a rounding tie.

use crate::{Error, Fill, Result, Shape};

/// How a warp reads the source between pixel centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Interpolation {
    /// The nearest pixel (torchvision's default for `RandomAffine` and the policies).
    Nearest,
    /// Bilinear between the four nearest pixels (the default for `RandomPerspective`).
    #[default]
    Bilinear,
    /// Keys' cubic (`a = -0.5`) over 4x4 pixels, antialiased: for resizing only (the
    /// warps here refuse it).
    Bicubic,
}

/// What a warp puts where the source does not reach: torchvision's `fill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Border {
    /// `fill=None`: zero padding, bilinear edges blend towards black.
    Zeros,
    /// `fill=v`: the value `v`, bilinear edges blend towards it.
    Value(u8),
    /// `grid_sample(padding_mode="reflection")`: the image mirrored at its border.
    Reflect,
}

impl From<Fill> for Border {
    fn from(fill: Fill) -> Self {
        match fill {
            Fill::Constant => Border::Value(0),
            Fill::Reflect => Border::Reflect,
        }
    }
}

/// An affine map as torchvision's `F.affine` takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Degrees clockwise, as torchvision's `affine` (its `rotate` turns
    /// counter-clockwise).
    pub angle: f64,
    /// Pixels right and down.
    pub translate: [f64; 2],
    /// Overall scale.
    pub scale: f64,
    /// Shear angles in degrees along x and y.
    pub shear: [f64; 2],
    /// The fixed point in pixel coordinates; `None` is the image centre.
    pub center: Option<[f64; 2]>,
}

impl Default for Affine {
    /// The identity.
    fn default() -> Self {
        Affine { angle: 0.0, translate: [0.0; 2], scale: 1.0, shear: [0.0; 2], center: None }
    }
}

/// torchvision's `_get_inverse_affine_matrix`: output pixel to source pixel, both
/// relative to the image centre.
fn inverse_matrix(center: [f64; 2], angle: f64, translate: [f64; 2], scale: f64, shear: [f64; 2]) -> [f64; 6] {
    let rot = angle.to_radians();
    let (sx, sy) = (shear[0].to_radians(), shear[1].to_radians());
    let [cx, cy] = center;
    let (cos_sy, tan_sx) = (sy.cos(), sx.tan());
    let (cx_tx, cy_ty) = (cx + translate[0], cy + translate[1]);
    let a = (rot - sy).cos() / cos_sy;
    let b = -(a * tan_sx + rot.sin());
    let c = (rot - sy).sin() / cos_sy;
    let d = rot.cos() - c * tan_sx;
    let mut m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0];
    m[2] += cx - m[0] * cx_tx - m[1] * cy_ty;
    m[5] += cy - m[3] * cx_tx - m[4] * cy_ty;
    m
}

/// The warps sample nearest or bilinear; bicubic is an error naming `function`.
fn warp_interpolation(function: &'static str, interpolation: Interpolation) -> Result<()> {
    match interpolation {
        Interpolation::Bicubic => Err(Error::InvalidArgument {
            function,
            argument: "interpolation",
            message: "bicubic is for resizing; warps sample nearest or bilinear".into(),
        }),
        _ => Ok(()),
    }
}

/// torchvision `F.affine(img, angle, translate, scale, shear, interpolation, fill,
/// center)` in place.
///
/// ```
/// use cnnlab_augment::{affine, Affine, Border, Interpolation, Shape};
/// let s = Shape::new(8, 8, 1);
/// let mut img: Vec<u8> = (0..64).collect();
/// let shift = Affine { translate: [1.0, 0.0], ..Affine::default() };
/// affine(&mut img, s, shift, Interpolation::Nearest, Border::Value(0)).unwrap();
/// assert_eq!(&img[..3], &[0, 0, 1]);
/// ```
pub fn affine(img: &mut [u8], s: Shape, a: Affine, interpolation: Interpolation, border: Border) -> Result<()> {
    let finite = a.angle.is_finite() && a.translate.iter().chain(&a.shear).all(|v| v.is_finite());
    if !(a.scale > 0.0 && a.scale.is_finite() && finite) {
        return Err(Error::InvalidArgument {
            function: "affine",
            argument: "scale",
            message: "needs finite parameters and a scale above 0".into(),
        });
    }
    warp_interpolation("affine", interpolation)?;
    if s.checked(img)? {
        affine_in(img, s, a, interpolation, border);
    }
    Ok(())
}

/// [`affine`] on a buffer already checked (the pipeline's).
pub(crate) fn affine_in(img: &mut [u8], s: Shape, a: Affine, interpolation: Interpolation, border: Border) {
    let (w, h) = (s.width as f64, s.height as f64);
    let center = a.center.map_or([0.0, 0.0], |[x, y]| [x - w * 0.5, y - h * 0.5]);
    let m = inverse_matrix(center, a.angle, a.translate, a.scale, a.shear).map(|v| v as f32);
    affine_grid(img, s, m, interpolation, border);
}

/// torchvision `F.rotate(img, angle, interpolation, fill=...)` without `expand`:
/// `angle` degrees counter-clockwise about the centre.
pub fn rotate(img: &mut [u8], s: Shape, angle: f64, interpolation: Interpolation, border: Border) -> Result<()> {
    if !angle.is_finite() {
        return Err(Error::InvalidArgument {
            function: "rotate",
            argument: "angle",
            message: "must be a number".into(),
        });
    }
    warp_interpolation("rotate", interpolation)?;
    if s.checked(img)? {
        rotate_in(img, s, angle, interpolation, border);
    }
    Ok(())
}

/// [`rotate`] on a buffer already checked (the pipeline's).
pub(crate) fn rotate_in(img: &mut [u8], s: Shape, angle: f64, interpolation: Interpolation, border: Border) {
    let angle = angle.rem_euclid(360.0);
    if angle == 0.0 {
        return;
    }
    let m = inverse_matrix([0.0, 0.0], -angle, [0.0, 0.0], 1.0, [0.0, 0.0]).map(|v| v as f32);
    affine_grid(img, s, m, interpolation, border);
}

/// torchvision's `_affine_grid` then `_apply_grid_transform`.
fn affine_grid(img: &mut [u8], s: Shape, m: [f32; 6], interpolation: Interpolation, border: Border) {
    let (w, h) = (s.width as f32, s.height as f32);
    // theta^T / [w / 2, h / 2]: the grid comes out normalised to [-1, 1].
    let [r00, r10, r20, r01, r11, r21] = rescaled(&m, w, h);
    let grid = |x: usize, y: usize| {
        let bx = x as f32 - (w - 1.0) * 0.5;
        let by = y as f32 - (h - 1.0) * 0.5;
        (bx * r00 + by * r10 + r20, bx * r01 + by * r11 + r21)
    };
    sample_any(img, s, grid, interpolation, border);
}

/// `theta^T / [w / 2, h / 2]` of torchvision's grids: the first three coefficients
/// (the x row) over half the width, the next three over half the height, in float32.
fn rescaled(m: &[f32], w: f32, h: f32) -> [f32; 6] {
    std::array::from_fn(|i| m[i] / (0.5 * if i < 3 { w } else { h }))
}

/// torchvision `F.perspective(img, startpoints, endpoints, interpolation, fill)`:
/// the quadrilateral `start` (corner points `[x, y]`) moves to `end`.
pub fn perspective(
    img: &mut [u8],
    s: Shape,
    start: [[f64; 2]; 4],
    end: [[f64; 2]; 4],
    interpolation: Interpolation,
    border: Border,
) -> Result<()> {
    if !start.iter().chain(&end).flatten().all(|v| v.is_finite()) {
        return Err(Error::InvalidArgument {
            function: "perspective",
            argument: "end",
            message: "needs finite corners".into(),
        });
    }
    warp_interpolation("perspective", interpolation)?;
    if s.checked(img)? {
        perspective_in(img, s, start, end, interpolation, border);
    }
    Ok(())
}

/// [`perspective`] on a buffer already checked (the pipeline's).
pub(crate) fn perspective_in(
    img: &mut [u8],
    s: Shape,
    start: [[f64; 2]; 4],
    end: [[f64; 2]; 4],
    interpolation: Interpolation,
    border: Border,
) {
    let Some(c) = perspective_coefficients(start, end) else { return };
    let c = c.map(|v| v as f32);
    let (w, h) = (s.width as f32, s.height as f32);
    let [r00, r10, r20, r01, r11, r21] = rescaled(&c, w, h);
    let grid = |x: usize, y: usize| {
        let (bx, by) = (x as f32 + 0.5, y as f32 + 0.5);
        let d = bx * c[6] + by * c[7] + 1.0;
        ((bx * r00 + by * r10 + r20) / d - 1.0, (bx * r01 + by * r11 + r21) / d - 1.0)
    };
    sample_any(img, s, grid, interpolation, border);
}

/// torchvision's `_get_perspective_coeffs`: the 8 coefficients mapping an output
/// point of `end` to its source in `start` (an exact 8x8 solve; `None` when the
/// points are degenerate).
fn perspective_coefficients(start: [[f64; 2]; 4], end: [[f64; 2]; 4]) -> Option<[f64; 8]> {
    let mut a = [[0.0f64; 9]; 8];
    for (i, (p, q)) in end.iter().zip(&start).enumerate() {
        a[2 * i] = [p[0], p[1], 1.0, 0.0, 0.0, 0.0, -q[0] * p[0], -q[0] * p[1], q[0]];
        a[2 * i + 1] = [0.0, 0.0, 0.0, p[0], p[1], 1.0, -q[1] * p[0], -q[1] * p[1], q[1]];
    }
    // Gaussian elimination with partial pivoting on the augmented matrix.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                row.iter_mut().zip(&pivot_row).skip(col).for_each(|(v, p)| *v -= f * p);
            }
        }
    }
    Some(std::array::from_fn(|i| a[i][8] / a[i][i]))
}

/// [`sample`] with the usual channel counts known to the compiler.
fn sample_any(
    img: &mut [u8],
    s: Shape,
    grid: impl Fn(usize, usize) -> (f32, f32),
    interpolation: Interpolation,
    border: Border,
) {
    match s.channels {
        1 => sample::<_, 1>(img, s, grid, interpolation, border),
        3 => sample::<_, 3>(img, s, grid, interpolation, border),
        4 => sample::<_, 4>(img, s, grid, interpolation, border),
        _ => sample::<_, 0>(img, s, grid, interpolation, border),
    }
}

/// `grid_sample(align_corners=False)` of `img` at the normalised source coordinates
/// `grid(x, y)` of every output pixel, then torchvision's fill and rounding.
///
/// Built for SSE4.1 and AVX2 too (picked at run time): there `floor` and
/// `round_ties_even` are one instruction instead of a libm call (the sums are the same
/// float32 operations: the compiler never fuses them).
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1", "aarch64+neon"))]
fn sample<G: Fn(usize, usize) -> (f32, f32), const C: usize>(
    img: &mut [u8],
    s: Shape,
    grid: G,
    interpolation: Interpolation,
    border: Border,
) {
    let src = img.to_vec();
    // `C` channels known at compile time (0: any, read from the shape).
    let (w, h, c) = (s.width, s.height, if C == 0 { s.channels } else { C });
    let (half_w, half_h) = (w as f32 / 2.0, h as f32 / 2.0);
    let reflect = border == Border::Reflect;
    let fill = match border {
        Border::Value(v) => Some(v as f32),
        _ => None,
    };
    // A source pixel's offset, or None outside the image (zero padding).
    let at =
        |x: i64, y: i64| (0 <= x && x < w as i64 && 0 <= y && y < h as i64).then(|| (y as usize * w + x as usize) * c);
    for y in 0..h {
        for x in 0..w {
            let (gx, gy) = grid(x, y);
            let mut ix = (gx + 1.0) * half_w - 0.5;
            let mut iy = (gy + 1.0) * half_h - 0.5;
            if reflect {
                ix = reflect_coordinate(ix, w);
                iy = reflect_coordinate(iy, h);
            }
            // A near-degenerate perspective sends points to huge or NaN coordinates:
            // keep them just outside the image so the integer corners cannot overflow.
            let (ix, iy) = (outside_safe(ix, w), outside_safe(iy, h));
            let out = &mut img[(y * w + x) * c..][..c];
            match interpolation {
                Interpolation::Nearest => match at(ix.round_ties_even() as i64, iy.round_ties_even() as i64) {
                    Some(o) => out.copy_from_slice(&src[o..o + c]),
                    None => out.fill(fill.unwrap_or(0.0) as u8),
                },
                // Bicubic never gets here: `warp_interpolation` and `Op::validate` refuse it.
                Interpolation::Bilinear | Interpolation::Bicubic => {
                    let (x0, y0) = (ix.floor(), iy.floor());
                    let (dx, dy) = (ix - x0, iy - y0);
                    let (x0, y0) = (x0 as i64, y0 as i64);
                    if 0 <= x0 && x0 + 1 < w as i64 && 0 <= y0 && y0 + 1 < h as i64 {
                        // All four corners inside (most pixels): no bounds per corner,
                        // the same sums in the same order as below.
                        let weights = [(1.0 - dy) * (1.0 - dx), (1.0 - dy) * dx, dy * (1.0 - dx), dy * dx];
                        let mask = weights[0] + weights[1] + weights[2] + weights[3];
                        let o = (y0 as usize * w + x0 as usize) * c;
                        let rows = [&src[o..o + 2 * c], &src[o + w * c..o + w * c + 2 * c]];
                        for (k, v) in out.iter_mut().enumerate() {
                            let mut acc = rows[0][k] as f32 * weights[0];
                            acc += rows[0][c + k] as f32 * weights[1];
                            acc += rows[1][k] as f32 * weights[2];
                            acc += rows[1][c + k] as f32 * weights[3];
                            if let Some(f) = fill {
                                acc = (acc - f) * mask + f;
                            }
                            *v = acc.round_ties_even().clamp(0.0, 255.0) as u8;
                        }
                        continue;
                    }
                    let corners = [
                        (at(x0, y0), (1.0 - dy) * (1.0 - dx)),
                        (at(x0 + 1, y0), (1.0 - dy) * dx),
                        (at(x0, y0 + 1), dy * (1.0 - dx)),
                        (at(x0 + 1, y0 + 1), dy * dx),
                    ];
                    let mask: f32 = corners.iter().filter(|(o, _)| o.is_some()).map(|(_, wt)| wt).sum();
                    for (k, v) in out.iter_mut().enumerate() {
                        let mut acc = 0.0f32;
                        for (o, wt) in corners {
                            if let Some(o) = o {
                                acc += src[o + k] as f32 * wt;
                            }
                        }
                        if let Some(f) = fill {
                            acc = (acc - f) * mask + f;
                        }
                        *v = acc.round_ties_even().clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }
}

/// `x` clamped to `[-2, size + 1]`, NaN to `-2`: every coordinate beyond the image
/// samples nothing either way, and its corners then fit in an `i64`.
fn outside_safe(x: f32, size: usize) -> f32 {
    if x.is_nan() {
        -2.0
    } else {
        x.clamp(-2.0, size as f32 + 1.0)
    }
}

/// `grid_sample`'s reflection padding for `align_corners=False`: mirror about the
/// pixel edges `-0.5` and `size - 0.5`, then clip.
fn reflect_coordinate(x: f32, size: usize) -> f32 {
    let span = size as f32;
    let d = (x + 0.5).abs();
    let flips = (d / span).floor();
    let extra = d - flips * span;
    let r = if flips as i64 % 2 == 0 { extra - 0.5 } else { span - extra - 0.5 };
    r.clamp(0.0, span - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perspective_of_the_identity_quadrilateral_is_the_identity() {
        let q = [[0.0, 0.0], [9.0, 0.0], [9.0, 7.0], [0.0, 7.0]];
        let c = perspective_coefficients(q, q).unwrap();
        let want = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        assert!(c.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{c:?}");
        assert_eq!(perspective_coefficients([[0.0; 2]; 4], q), None);
    }

    #[test]
    fn reflection_mirrors_at_pixel_edges() {
        let r: Vec<f32> = [-0.5, -1.0, 4.5, 5.0, 2.0, 10.25].iter().map(|&x| reflect_coordinate(x, 5)).collect();
        assert_eq!(r, [0.0, 0.0, 4.0, 4.0, 2.0, 0.25]);
    }
}
