//! Batch mixing as torchvision v2's `MixUp(alpha)` and `CutMix(alpha)`: each image is
//! mixed with the one before it in the batch (the batch rolled by one, so shuffle the
//! batch first), and its one-hot label weighted alike. [`BatchMix::draw`] makes the
//! random decision from a seeded stream (cnnlab's trainer draws it so and mixes its
//! tensors itself); [`MixDraw::apply`] mixes float buffers, value for value as
//! torchvision does.

use rand::Rng;
use rand_distr::{Beta, Distribution};

use crate::{Error, Result, Shape};

/// MixUp or CutMix, with the concentration of the Beta distribution `lam` is drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchMix {
    /// `MixUp(alpha)`: `lam * image + (1 - lam) * previous image`.
    MixUp {
        /// The Beta distribution's concentration (torchvision's default 1).
        alpha: f64,
    },
    /// `CutMix(alpha)`: a box of the previous image pasted, `lam` its complement's share.
    CutMix {
        /// The Beta distribution's concentration (torchvision's default 1).
        alpha: f64,
    },
}

/// A box of an image: rows `top..top + height`, columns `left..left + width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// One batch's random decision: the weight of each image's own label, and CutMix's box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixDraw {
    /// The weight of the image's own label (`lam`; CutMix: the share of pixels kept).
    pub lam: f64,
    /// CutMix's pasted box; `None` for MixUp.
    pub patch: Option<Patch>,
}

/// How a batch's floats are laid out per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Channels first (`CHW`, a tensor's `NCHW`).
    #[default]
    Chw,
    /// Channels last (`HWC`, this crate's images).
    Hwc,
}

impl BatchMix {
    /// The concentration, checked: finite and above 0.
    fn alpha(&self) -> Result<f64> {
        let (BatchMix::MixUp { alpha } | BatchMix::CutMix { alpha }) = *self;
        if alpha > 0.0 && alpha.is_finite() {
            return Ok(alpha);
        }
        Err(Error::InvalidArgument { function: "BatchMix", argument: "alpha", message: format!("{alpha} must be > 0") })
    }

    /// `make_params`: `lam ~ Beta(alpha, alpha)`; for CutMix then a centre (column,
    /// then row) and the box of side `sqrt(1 - lam)` around it, clipped to the image,
    /// `lam` becoming the share of pixels outside it.
    pub fn draw(&self, rng: &mut impl Rng, height: usize, width: usize) -> Result<MixDraw> {
        let lam = Beta::new(self.alpha()?, self.alpha()?)
            .map_err(|e| Error::InvalidArgument { function: "BatchMix", argument: "alpha", message: e.to_string() })?
            .sample(rng);
        if let BatchMix::MixUp { .. } = self {
            return Ok(MixDraw { lam, patch: None });
        }
        let (h, w) = (height as i64, width as i64);
        if h == 0 || w == 0 {
            return Ok(MixDraw { lam: 1.0, patch: None });
        }
        let (cx, cy) = (rng.gen_range(0..w), rng.gen_range(0..h));
        let r = 0.5 * (1.0 - lam).sqrt();
        let (half_w, half_h) = ((r * w as f64) as i64, (r * h as f64) as i64);
        let (x1, x2) = ((cx - half_w).max(0), (cx + half_w).min(w));
        let (y1, y2) = ((cy - half_h).max(0), (cy + half_h).min(h));
        let patch =
            Patch { top: y1 as usize, left: x1 as usize, height: (y2 - y1) as usize, width: (x2 - x1) as usize };
        let lam = 1.0 - ((x2 - x1) * (y2 - y1)) as f64 / (w * h) as f64;
        Ok(MixDraw { lam, patch: Some(patch) })
    }
}

impl MixDraw {
    /// Mixes a batch in place: `images` holds `n` float images of `shape` in
    /// `layout`, `labels` their one-hot (or already soft) labels, `n` rows of
    /// `classes`. Image `i` is mixed with image `i - 1` (the first with the last) as
    /// the draw says; the labels as torchvision's `_mixup_label`.
    pub fn apply(
        &self,
        images: &mut [f32],
        shape: Shape,
        layout: Layout,
        labels: &mut [f32],
        classes: usize,
    ) -> Result<()> {
        let per_image = shape.len();
        let n = images.len().checked_div(per_image).unwrap_or(labels.len() / classes.max(1));
        if images.len() != n * per_image || labels.len() != n * classes {
            return Err(Error::InvalidArgument {
                function: "BatchMix::apply",
                argument: "labels",
                message: format!(
                    "{} image values and {} label values are not n images of {per_image} and n rows of {classes}",
                    images.len(),
                    labels.len()
                ),
            });
        }
        if n == 0 {
            return Ok(());
        }
        mix_rows(labels, classes, self.lam);
        match self.patch {
            None => mix_rows(images, per_image, self.lam),
            Some(patch) => paste(images, shape, layout, patch)?,
        }
        Ok(())
    }
}

/// `x.roll(1, 0).mul_(1 - lam).add_(x.mul(lam))` over rows of `len` values, in
/// float32 as torch (the scalars cast to float32, no fused multiply-add).
fn mix_rows(values: &mut [f32], len: usize, lam: f64) {
    if len == 0 {
        return;
    }
    let (own, other) = (lam as f32, (1.0 - lam) as f32);
    let previous: Vec<f32> = values.to_vec();
    let n = values.len() / len;
    for (i, row) in values.chunks_exact_mut(len).enumerate() {
        let prev = &previous[((i + n - 1) % n) * len..][..len];
        for (v, &p) in row.iter_mut().zip(prev) {
            *v = p * other + *v * own;
        }
    }
}

/// CutMix's paste: the box of image `i - 1` into image `i`.
fn paste(images: &mut [f32], s: Shape, layout: Layout, patch: Patch) -> Result<()> {
    if patch.top + patch.height > s.height || patch.left + patch.width > s.width {
        return Err(Error::InvalidArgument {
            function: "BatchMix::apply",
            argument: "patch",
            message: format!("{patch:?} leaves the {}x{} image", s.height, s.width),
        });
    }
    let len = s.len();
    let previous: Vec<f32> = images.to_vec();
    let n = images.len() / len;
    // The runs of values inside the box: per row (HWC), or per channel and row (CHW).
    let runs: Vec<(usize, usize)> = match layout {
        Layout::Hwc => (patch.top..patch.top + patch.height)
            .map(|y| ((y * s.width + patch.left) * s.channels, patch.width * s.channels))
            .collect(),
        Layout::Chw => (0..s.channels)
            .flat_map(|c| {
                (patch.top..patch.top + patch.height)
                    .map(move |y| ((c * s.height + y) * s.width + patch.left, patch.width))
            })
            .collect(),
    };
    for (i, img) in images.chunks_exact_mut(len).enumerate() {
        let prev = &previous[((i + n - 1) % n) * len..][..len];
        for &(start, run) in &runs {
            img[start..start + run].copy_from_slice(&prev[start..start + run]);
        }
    }
    Ok(())
}
