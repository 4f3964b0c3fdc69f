//! `train.pipeline = "device"`: the training set lives on the device and batches are
//! gathered, flipped and translated there with batched tensor ops, as airbench does on
//! a GPU: no per-batch host work beyond a few hundred indices.

use cnnlab_augment::{Fill, Op};
use cnnlab_data::{Dataset, Variant};
use tch::{Device, Kind, Tensor};

use crate::batch::Normalizer;
use crate::error::{Error, Result};

/// An augmentation the device feed performs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DeviceOp {
    /// Mirror each image left-right with probability `p`.
    Hflip { p: f64 },
    /// Pad by `pad` (reflecting or with black) and crop back at a random offset.
    Translate { pad: i64, reflect: bool },
}

/// The whole training split on the device, as `u8` (a quarter of float's memory).
#[derive(Debug)]
pub(crate) struct DeviceFeed {
    /// `[N, H, W, C]`, as the host feed holds them: a batch is a channels-last view,
    /// the same memory layout (and so the same libtorch kernels) as the host feed's.
    images: Tensor,
    /// `[N]`, int64.
    labels: Tensor,
    ops: Vec<DeviceOp>,
}

impl DeviceFeed {
    /// Uploads `data`; `augment` may hold only what the device does in batch.
    pub(crate) fn new(data: &Dataset, augment: &[Op], device: Device) -> Result<Self> {
        let ops = augment
            .iter()
            .enumerate()
            .map(|(i, op)| match *op {
                Op::Hflip { p } => Ok(DeviceOp::Hflip { p }),
                Op::RandomCrop { padding, fill, p } if p >= 1.0 => {
                    Ok(DeviceOp::Translate { pad: padding as i64, reflect: fill == Fill::Reflect })
                }
                _ => Err(Error::Config(format!(
                    "train.pipeline = \"device\" does hflip and random_crop (p = 1) on the device; augment.ops[{i}] \
                     is `{}`: use pipeline = \"host\" for it",
                    op.name()
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let s = data.shape;
        let n = data.len() as i64;
        let images = Tensor::from_slice(&data.pixels)
            .view([n, s.height as i64, s.width as i64, s.channels as i64])
            .to_device(device);
        let labels = Tensor::from_slice(&data.labels).to_kind(Kind::Int64).to_device(device);
        Ok(DeviceFeed { images, labels, ops })
    }

    /// The planned samples `items`, augmented and standardized, with their labels.
    /// Randomness comes from libtorch's generator (seeded per batch by the trainer).
    pub(crate) fn batch(
        &self,
        items: &[(usize, Variant)],
        norm: &Normalizer,
        augment: bool,
    ) -> Result<(Tensor, Tensor)> {
        let device = self.images.device();
        let index: Vec<i64> = items.iter().map(|&(i, _)| i as i64).collect();
        let index = Tensor::from_slice(&index).to_device(device);
        // Contiguous NCHW while augmenting: gathers along H and W over a channels-last
        // tensor are several times slower on a CPU.
        let mut xs = self
            .images
            .index_select(0, &index)
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            .contiguous()
            .g_mul_scalar(1.0 / 255.0);
        // The imbalance strategies' mirrored copies.
        for (variant, dim) in [(Variant::Hflip, 3), (Variant::Vflip, 2)] {
            let flags: Vec<bool> = items.iter().map(|&(_, v)| v == variant).collect();
            if flags.iter().any(|&f| f) {
                let mask = Tensor::from_slice(&flags).to_device(device).view([-1, 1, 1, 1]);
                xs = xs.flip([dim]).where_self(&mask, &xs);
            }
        }
        if items.iter().any(|&(_, v)| v == Variant::Augmented) {
            return Err(Error::Config(
                "train.pipeline = \"device\" cannot make the augmented copies this imbalance strategy asks for; \
                 use pipeline = \"host\""
                    .into(),
            ));
        }
        if augment {
            for op in &self.ops {
                xs = match *op {
                    DeviceOp::Hflip { p } => random_flip(&xs, p),
                    DeviceOp::Translate { pad, reflect } => random_translate(&xs, pad, reflect),
                };
            }
        }
        // Channels-last memory, as the host feed's permuted NHWC batches: libtorch's CPU
        // convolutions run ~1.5x faster on it than on contiguous NCHW (measured on
        // seed3-final: 30 vs 46 ms per batch of 64).
        let xs = norm.standardize(&xs).permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
        Ok((xs, self.labels.index_select(0, &index)))
    }
}

/// Mirrors each image of `[n, C, H, W]` left-right with probability `p`.
pub(crate) fn random_flip(xs: &Tensor, p: f64) -> Tensor {
    let n = xs.size()[0];
    let mask = Tensor::rand([n, 1, 1, 1], (Kind::Float, xs.device())).lt(p);
    xs.flip([3]).where_self(&mask, xs)
}

/// Shifts each image of `[n, C, H, W]` by an independent random offset in
/// `[-pad, pad]` on both axes, filling the border by reflection or with zeros
/// (torchvision's `RandomCrop(size, padding=pad)`), as one gather.
pub(crate) fn random_translate(xs: &Tensor, pad: i64, reflect: bool) -> Tensor {
    if pad == 0 {
        return xs.shallow_clone();
    }
    let (n, c, h, w) = xs.size4().expect("a batch of images");
    let device = xs.device();
    let padded =
        if reflect { xs.reflection_pad2d([pad, pad, pad, pad]) } else { xs.constant_pad_nd([pad, pad, pad, pad]) };
    let offsets = |side: i64| {
        let start = Tensor::randint_low(0, 2 * pad + 1, [n, 1], (Kind::Int64, device));
        start + Tensor::arange(side, (Kind::Int64, device)).view([1, side])
    };
    // Two gathers, rows then columns (cheaper on a CPU than one 4-D advanced index).
    let rows = offsets(h).view([n, 1, h, 1]).expand([n, c, h, w + 2 * pad], false);
    let cols = offsets(w).view([n, 1, 1, w]).expand([n, c, h, w], false);
    padded.gather(2, &rows, false).gather(3, &cols, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: i64, h: i64, w: i64) -> Tensor {
        Tensor::arange(n * 2 * h * w, (Kind::Float, Device::Cpu)).view([n, 2, h, w])
    }

    #[test]
    fn translate_is_a_shift_of_each_image() {
        tch::manual_seed(1);
        let xs = ramp(64, 6, 5);
        let ys = random_translate(&xs, 2, false);
        assert_eq!(ys.size(), [64, 2, 6, 5]);
        let mut shifts = std::collections::HashSet::new();
        for i in 0..64 {
            let (x, y) = (xs.get(i), ys.get(i));
            // Find the shift (dy, dx) that explains the output; zeros fill the border.
            let found = (-2..=2i64).flat_map(|dy| (-2..=2i64).map(move |dx| (dy, dx))).find(|&(dy, dx)| {
                let shifted = x.constant_pad_nd([2, 2, 2, 2]).narrow(1, 2 + dy, 6).narrow(2, 2 + dx, 5);
                shifted.equal(&y)
            });
            shifts.insert(found.unwrap_or_else(|| panic!("image {i} is not a shift of its input")));
        }
        assert!(shifts.len() > 10, "offsets vary per image: {shifts:?}");
    }

    #[test]
    fn reflect_translate_keeps_values_from_the_image_and_flip_mirrors_about_half() {
        tch::manual_seed(2);
        let xs = ramp(32, 4, 4);
        let ys = random_translate(&xs, 1, true);
        // Reflection never brings in a value from outside the image.
        let (lo, hi) = (f64::try_from(ys.min()).unwrap(), f64::try_from(ys.max()).unwrap());
        assert!(lo >= 0.0 && hi <= f64::try_from(xs.max()).unwrap());
        let flipped = random_flip(&xs, 0.5);
        let mirrored = (0..32).filter(|&i| flipped.get(i).equal(&xs.get(i).flip([2]))).count();
        let kept = (0..32).filter(|&i| flipped.get(i).equal(&xs.get(i))).count();
        assert_eq!(mirrored + kept, 32);
        assert!((6..=26).contains(&mirrored), "{mirrored} of 32 mirrored");
    }
}
