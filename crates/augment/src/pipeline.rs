//! The [`Pipeline`]: validated ops applied to one image (or a batch) with randomness
//! from `(seed, epoch, index)`; runs of rotations and zooms fused into one warp, with
//! the brightness tables and left-right flips that follow folded into its pass
//! (bit-exact against the ops one by one: the test below). [`Builder`] collects ops.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
#[cfg(feature = "rayon")]
use rayon::prelude::*;

use crate::ops::{brightness_lut, rotate_zoom_then, Post};
use crate::sample::{apply_op, apply_resizing, uniform};
use crate::{Error, Fill, Op, Result, Shape, Size};

/// Validated ops plus the seed their randomness derives from.
#[derive(Debug, Clone)]
pub struct Pipeline {
    ops: Vec<Op>,
    seed: u64,
}

impl Pipeline {
    /// A pipeline of `ops` drawing from `seed`; an op with a parameter out of range
    /// (`p` outside [0, 1], brightness `min > max`, zoom `range >= 1`, ...) is an
    /// [`Error::InvalidOp`](crate::Error::InvalidOp) naming it.
    pub fn new(ops: Vec<Op>, seed: u64) -> Result<Self> {
        ops.iter().enumerate().try_for_each(|(i, op)| op.validate(i))?;
        Ok(Self { ops, seed })
    }

    /// A [`Builder`] of ops with torchvision's defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The ops, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether there is no op.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The shape the pipeline makes of an image of shape `input`: `input` unless it
    /// holds size-changing ops ([`Op::changes_size`]); `None` when that varies from
    /// image to image (a size-changing op with `p < 1`, `random_zoom_out`).
    pub fn output_shape(&self, input: Shape) -> Option<Shape> {
        self.ops.iter().try_fold(input, |s, op| op.output_shape(s))
    }

    /// Augments `img` (HWC, `shape`) in place, deterministically for
    /// `(seed, epoch, index)`; a buffer that does not match `shape` is an error and
    /// stays untouched, and so is a pipeline whose output has another shape (use
    /// [`Pipeline::transform`]).
    pub fn apply(&self, img: &mut [u8], shape: Shape, epoch: u64, index: u64) -> Result<()> {
        shape.check(img)?;
        // No op, or no value to change (a 0-wide, 0-high or 0-channel image): done.
        if self.ops.is_empty() || shape.is_empty() {
            return Ok(());
        }
        if self.ops.iter().any(Op::changes_size) {
            if self.output_shape(shape) != Some(shape) {
                return Err(Error::ChangesShape { input: shape, output: self.output_shape(shape) });
            }
            let (out, _) = self.transform(img, shape, epoch, index)?;
            img.copy_from_slice(&out);
            return Ok(());
        }
        let mut rng = self.rng(epoch, index);
        run_in_place(&self.ops, img, shape, &mut rng);
        Ok(())
    }

    /// Augments a copy of `img` (HWC, `shape`) with every op, size-changing ones
    /// included (`resize`, `center_crop`, sized `random_resized_crop` and
    /// `random_crop`, `pad`, `random_zoom_out`, one-channel `grayscale`): the new image
    /// and its shape, deterministically for `(seed, epoch, index)`. Without
    /// size-changing ops it equals [`Pipeline::apply`] on a copy.
    ///
    /// ```
    /// use cnnlab_augment::{Op, Pipeline, Shape};
    /// // torchvision's ImageNet training recipe.
    /// let pipe = Pipeline::builder().random_resized_crop(224).hflip(0.5).build().unwrap();
    /// let shape = Shape::new(375, 500, 3);
    /// let photo = vec![90u8; shape.len()];
    /// let (out, out_shape) = pipe.transform(&photo, shape, 3, 17).unwrap();
    /// assert_eq!((out.len(), out_shape), (224 * 224 * 3, Shape::new(224, 224, 3)));
    /// ```
    pub fn transform(&self, img: &[u8], shape: Shape, epoch: u64, index: u64) -> Result<(Vec<u8>, Shape)> {
        shape.check(img)?;
        let (mut buf, mut shape) = (img.to_vec(), shape);
        let mut rng = self.rng(epoch, index);
        // Runs of ops that keep the size go through the in-place path (its fused
        // warps); each size-changing op draws its coin in the same stream.
        let mut rest = self.ops.as_slice();
        while let Some(at) = rest.iter().position(Op::changes_size) {
            if !shape.is_empty() {
                run_in_place(&rest[..at], &mut buf, shape, &mut rng);
            }
            let op = &rest[at];
            let coin: f64 = rng.gen();
            if coin < op.probability() {
                (buf, shape) = apply_resizing(op, &buf, shape, &mut rng)?;
            }
            rest = &rest[at + 1..];
        }
        if !shape.is_empty() {
            run_in_place(rest, &mut buf, shape, &mut rng);
        }
        Ok((buf, shape))
    }

    /// The stream of sample `index` in `epoch`.
    fn rng(&self, epoch: u64, index: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(mix(mix(self.seed, epoch), index))
    }

    /// Augments `n` images stored one after another in `batch` (in parallel with the
    /// `rayon` feature); image `i` uses sample index `indices[i]`.
    pub fn apply_batch(&self, batch: &mut [u8], shape: Shape, epoch: u64, indices: &[u64]) -> Result<()> {
        let all = Shape { height: shape.height * indices.len(), ..shape };
        all.check(batch)?;
        if shape.is_empty() {
            return Ok(());
        }
        #[cfg(feature = "rayon")]
        let images = batch.par_chunks_exact_mut(shape.len()).zip(indices.par_iter());
        #[cfg(not(feature = "rayon"))]
        let mut images = batch.chunks_exact_mut(shape.len()).zip(indices.iter());
        images.try_for_each(|(img, &index)| self.apply(img, shape, epoch, index))
    }

    /// Augments an `image::RgbImage` in place.
    #[cfg(feature = "image")]
    pub fn apply_rgb(&self, img: &mut image::RgbImage, epoch: u64, index: u64) {
        let shape = Shape::new(img.height() as usize, img.width() as usize, 3);
        self.apply(img, shape, epoch, index).unwrap_or_else(|e| unreachable!("an RgbImage matches its shape: {e}"));
    }
}

/// Runs `ops` (none of them size-changing) on `img` in place, drawing from `rng`.
fn run_in_place(ops: &[Op], img: &mut [u8], shape: Shape, rng: &mut ChaCha8Rng) {
    // Rotations and zooms about the centre commute, so a run of them is one warp:
    // angles add, scales multiply (one resampling pass instead of several).
    // Brightness tables and left-right flips that follow the warp are folded into
    // the pass that writes its output (exactly as if run after it).
    let mut pending: Option<(f64, f64, Fill)> = None;
    let mut post = Post::NONE;
    // Whether a table or flip was folded in (two flips cancel in `post`, but the
    // warp must still not absorb a later rotation: the result stays exactly that
    // of the ops run one by one).
    let mut folded = false;
    let flush = |img: &mut [u8], pending: &mut Option<(f64, f64, Fill)>, post: &mut Post| {
        if let Some((angle, zoom, fill)) = pending.take() {
            rotate_zoom_then(img, shape, angle, zoom, fill, *post);
        }
        *post = Post::NONE;
    };
    for op in ops {
        // Draw the coin even for p = 1 so that changing one op's p does not shift
        // the random stream of the ops after it.
        let coin: f64 = rng.gen();
        let applies = coin < op.probability();
        match *op {
            Op::Rotate { .. } | Op::Zoom { .. } if applies => {
                // A table or flip already folded in must act after this op: flush.
                if folded {
                    flush(img, &mut pending, &mut post);
                    folded = false;
                }
                // The last op's fill wins.
                let (a, z, _) = pending.unwrap_or((0.0, 1.0, Fill::Constant));
                pending = Some(match *op {
                    Op::Rotate { degrees, fill, .. } => (a + uniform(rng, -degrees.abs(), degrees.abs()), z, fill),
                    Op::Zoom { range, fill, .. } => (a, z * uniform(rng, 1.0 - range, 1.0 + range), fill),
                    _ => unreachable!(),
                });
            }
            Op::Brightness { min, max, .. } if applies && pending.is_some() => {
                folded = true;
                let table = brightness_lut(uniform(rng, min, max));
                post.lut = Some(match post.lut {
                    Some(before) => before.map(|v| table[v as usize]),
                    None => table,
                });
            }
            Op::Hflip { .. } if applies && pending.is_some() => {
                folded = true;
                post.flip = !post.flip;
            }
            _ if !applies => {}
            _ => {
                flush(img, &mut pending, &mut post);
                folded = false;
                apply_op(op, img, shape, rng);
            }
        }
    }
    flush(img, &mut pending, &mut post);
}

/// Builds a [`Pipeline`] op by op: `Pipeline::builder().op(Op::random_crop(4))
/// .op(Op::hflip(0.5)).seed(1).build()`. The [`Op`] constructors carry torchvision's
/// defaults; the builder adds the seed and the validation.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    ops: Vec<Op>,
    seed: u64,
}

impl Builder {
    /// Appends `op`.
    pub fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    /// torchvision `RandomResizedCrop(size)` ([`Op::random_resized_crop_to`]).
    pub fn random_resized_crop(self, size: impl Into<Size>) -> Self {
        self.op(Op::random_resized_crop_to(size))
    }

    /// torchvision `Resize(size)` ([`Op::resize`]).
    pub fn resize(self, size: impl Into<Size>) -> Self {
        self.op(Op::resize(size))
    }

    /// torchvision `CenterCrop(size)` ([`Op::center_crop`]).
    pub fn center_crop(self, size: impl Into<Size>) -> Self {
        self.op(Op::center_crop(size))
    }

    /// torchvision `RandomHorizontalFlip(p)`.
    pub fn hflip(self, p: f64) -> Self {
        self.op(Op::hflip(p))
    }

    /// The seed the randomness derives from (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The pipeline, or the first op whose parameters are out of range.
    pub fn build(self) -> Result<Pipeline> {
        Pipeline::new(self.ops, self.seed)
    }
}

/// SplitMix64's finalizer over `a ^ b`, so nearby (seed, epoch, index) triples get
/// unrelated streams.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::rotate_zoom;

    /// `Pipeline::apply` without folding brightness and flips into the warp: every
    /// op on its own pass (runs of rotations and zooms still one warp), the same
    /// random draws.
    fn apply_op_by_op(p: &Pipeline, img: &mut [u8], shape: Shape, epoch: u64, index: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(mix(p.seed, epoch), index));
        let mut pending: Option<(f64, f64, Fill)> = None;
        for op in &p.ops {
            let coin: f64 = rng.gen();
            if coin >= op.probability() {
                continue;
            }
            match *op {
                Op::Rotate { degrees, fill, .. } => {
                    let (a, z, _) = pending.unwrap_or((0.0, 1.0, fill));
                    pending = Some((a + uniform(&mut rng, -degrees.abs(), degrees.abs()), z, fill));
                }
                Op::Zoom { range, fill, .. } => {
                    let (a, z, _) = pending.unwrap_or((0.0, 1.0, fill));
                    pending = Some((a, z * uniform(&mut rng, 1.0 - range, 1.0 + range), fill));
                }
                _ => {
                    if let Some((angle, zoom, fill)) = pending.take() {
                        rotate_zoom(img, shape, angle, zoom, fill).unwrap();
                    }
                    apply_op(op, img, shape, &mut rng);
                }
            }
        }
        if let Some((angle, zoom, fill)) = pending {
            rotate_zoom(img, shape, angle, zoom, fill).unwrap();
        }
    }

    #[test]
    fn folded_brightness_and_flips_change_nothing() {
        use Op::*;
        let rotate = || Rotate { degrees: 15.0, fill: Fill::Constant, p: 0.8 };
        let zoom = || Zoom { range: 0.2, fill: Fill::Reflect, p: 0.8 };
        let bright = || Brightness { min: 0.6, max: 1.4, p: 0.7 };
        let flip = || Hflip { p: 0.5 };
        let contrast = || Contrast { min: 0.8, max: 1.2, p: 0.5 };
        let lists = [
            vec![rotate(), zoom(), bright(), flip()],
            vec![rotate(), bright(), flip(), bright(), flip(), zoom(), bright()],
            vec![flip(), bright(), rotate(), contrast(), flip(), zoom(), flip(), bright()],
            vec![zoom(), flip(), flip(), rotate(), bright(), contrast()],
        ];
        for (c, (h, w)) in [(3usize, (9usize, 13usize)), (1, (8, 5)), (4, (6, 7))] {
            let shape = Shape { height: h, width: w, channels: c };
            let base: Vec<u8> = (0..shape.len()).map(|i| (i * 37 % 251) as u8).collect();
            for ops in &lists {
                let p = Pipeline::new(ops.clone(), 3).unwrap();
                for index in 0..40 {
                    let (mut fused, mut reference) = (base.clone(), base.clone());
                    p.apply(&mut fused, shape, 1, index).unwrap();
                    apply_op_by_op(&p, &mut reference, shape, 1, index);
                    assert_eq!(fused, reference, "ops {ops:?}, {c} channels, index {index}");
                }
            }
        }
    }
}
