//! Samples (HWC u8 from the data crate) to normalized NCHW float tensors.

use std::sync::mpsc;

use cnnlab_augment::Pipeline;
use cnnlab_data::{Dataset, ImageShape, Variant};
use tch::{Device, Kind, Tensor};

/// Pixels scaled to 0..1, then `(x - mean) / std` per channel, like torchvision's
/// `ToTensor()` + `Normalize(mean, std)`.
#[derive(Debug)]
pub struct Normalizer {
    mean: Tensor,
    std: Tensor,
    shape: ImageShape,
    device: Device,
    /// ImageNet's statistics rather than the training split's.
    imagenet: bool,
}

/// torchvision's ImageNet channel means and standard deviations.
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Normalizer {
    pub fn new(mean: &[f32], std: &[f32], shape: ImageShape, device: Device) -> Self {
        let c = shape.channels as i64;
        let mean = Tensor::from_slice(mean).view([1, c, 1, 1]).to_device(device);
        let std = Tensor::from_slice(std).view([1, c, 1, 1]).to_device(device);
        Self { mean, std, shape, device, imagenet: false }
    }

    /// From the training split's per-channel statistics.
    pub fn fit(train: &Dataset, device: Device) -> Self {
        let (mean, std) = train.channel_stats();
        Self::new(&mean, &std, train.shape, device)
    }

    /// ImageNet's statistics (torchvision's `Normalize(IMAGENET_MEAN, IMAGENET_STD)`),
    /// for pretrained weights; RGB images only.
    pub fn imagenet(shape: ImageShape, device: Device) -> crate::Result<Self> {
        if shape.channels != 3 {
            return Err(crate::Error::invalid("model.pretrained", "ImageNet weights need RGB images (3 channels)"));
        }
        let mut norm = Self::new(&IMAGENET_MEAN, &IMAGENET_STD, shape, device);
        norm.imagenet = true;
        Ok(norm)
    }

    /// Saves mean and std as JSON (`cnnlab predict` normalizes new images with them),
    /// and where they come from (`"imagenet"` or `"train split"`).
    pub fn save(&self, path: &std::path::Path) -> crate::Result<()> {
        let (mean, std) = (self.mean_std(&self.mean), self.mean_std(&self.std));
        let source = if self.imagenet { "imagenet" } else { "train split" };
        Ok(crate::write_json(path, &serde_json::json!({ "mean": mean, "std": std, "source": source }))?)
    }

    /// Reads what [`Normalizer::save`] wrote.
    pub fn load(path: &std::path::Path, shape: ImageShape, device: Device) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::Error::io(path, e))?;
        let bad = |reason: String| crate::Error::Format { path: path.into(), reason };
        #[derive(serde::Deserialize)]
        struct Saved {
            mean: Vec<f32>,
            std: Vec<f32>,
        }
        let s: Saved = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if s.mean.len() != shape.channels || s.std.len() != shape.channels {
            return Err(bad(format!("expected {} channels", shape.channels)));
        }
        Ok(Self::new(&s.mean, &s.std, shape, device))
    }

    /// The per-channel mean and standard deviation.
    pub fn stats(&self) -> (Vec<f32>, Vec<f32>) {
        (self.mean_std(&self.mean), self.mean_std(&self.std))
    }

    fn mean_std(&self, t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default()
    }

    /// `n` HWC images, one after another, to an `[n, C, H, W]` float tensor on the
    /// device. The u8 bytes travel to the device before conversion (4x less traffic).
    pub fn to_tensor(&self, pixels: &[u8]) -> Tensor {
        let s = self.shape;
        let n = (pixels.len() / s.len()) as i64;
        let host = Tensor::from_slice(pixels).view([n, s.height as i64, s.width as i64, s.channels as i64]);
        // To a GPU from page-locked memory, asynchronously: the copy overlaps the
        // previous step's kernels instead of stalling the stream.
        let on_device = match self.device {
            Device::Cpu => host,
            device => host.pin_memory(device).to_device_(device, Kind::Uint8, true, false),
        };
        self.standardize(&on_device.permute([0, 3, 1, 2]).to_kind(Kind::Float).g_mul_scalar(1.0 / 255.0))
    }

    /// `[n, C, H, W]` floats in 0..1 to `(x - mean) / std` per channel.
    pub fn standardize(&self, x: &Tensor) -> Tensor {
        x.g_sub(&self.mean).g_div(&self.std)
    }
}

/// One batch assembled on the host.
#[derive(Debug)]
pub struct HostBatch {
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
}

/// The `[augment]` pipeline of a run on images of `shape`: cnnlab trains at the data's
/// size, so ops that change it (`resize`, sized crops, `pad`, ...) are refused with the
/// shape they would make (size images in `[data]`).
pub(crate) fn training_pipeline(
    augment: &[cnnlab_augment::Op],
    seed: u64,
    shape: ImageShape,
) -> crate::Result<Pipeline> {
    let pipeline = Pipeline::new(augment.to_vec(), seed)?;
    let dims = |s: ImageShape| format!("{}x{}x{}", s.height, s.width, s.channels);
    match pipeline.output_shape(shape) {
        Some(out) if out == shape => Ok(pipeline),
        out => Err(crate::Error::Unsupported {
            key: "augment.ops",
            message: format!(
                "the ops turn the data's {} images into {}: training keeps the data's size (set it in [data])",
                dims(shape),
                out.map_or("sizes drawn at random".to_owned(), dims)
            ),
        }),
    }
}

/// Augmentation for one epoch: the regular pipeline, and the one that makes the
/// "augmented copies" imbalance strategies ask for.
#[derive(Debug, Clone, Copy)]
pub struct EpochAugment<'a> {
    pub regular: &'a Pipeline,
    pub copies: &'a Pipeline,
    pub epoch: u64,
}

/// Gathers the planned samples into one buffer. `first` is the position of
/// `items[0]` in the epoch's plan: copies of one image at different positions get
/// different random augmentations.
pub fn gather(
    data: &Dataset,
    items: &[(usize, Variant)],
    first: usize,
    augment: Option<EpochAugment<'_>>,
) -> HostBatch {
    use rayon::prelude::*;
    let s = data.shape;
    let mut pixels = vec![0u8; items.len() * s.len()];
    // Images are augmented in parallel (rayon's pool, beside the thread that trains);
    // each one's randomness depends only on its position, not on the thread.
    let per_task = (65536 / s.len()).max(1);
    // From a mapped cache not (all) in the page cache, the batch's reads are under way
    // at once rather than one page fault after another.
    data.prefetch(items.iter().map(|&(i, _)| i));
    pixels.par_chunks_mut(s.len()).zip(items.par_iter()).with_min_len(per_task).enumerate().for_each(
        |(k, (img, &(i, variant)))| {
            img.copy_from_slice(data.image(i));
            let position = (first + k) as u64;
            // `img` is one chunk of `s.len()` bytes: the shape always matches.
            let fits = |r: cnnlab_augment::Result<()>| r.unwrap_or_else(|e| unreachable!("{e}"));
            match (variant, augment) {
                (Variant::Original, _) => {}
                (Variant::Hflip, _) => fits(cnnlab_augment::hflip(img, s)),
                (Variant::Vflip, _) => fits(cnnlab_augment::vflip(img, s)),
                (Variant::Augmented, Some(a)) => fits(a.copies.apply(img, s, a.epoch, position)),
                // Evaluation never plans augmented copies; without pipelines, keep as is.
                (Variant::Augmented, None) => {}
            }
            if let Some(a) = augment {
                fits(a.regular.apply(img, s, a.epoch, position));
            }
        },
    );
    data.release(items.iter().map(|&(i, _)| i));
    let labels = items.iter().map(|&(i, _)| data.labels[i] as i64).collect();
    HostBatch { pixels, labels }
}

/// Runs `consume` on every batch of `items` from batch `start` on, while a second
/// thread assembles the next batches (a bounded queue of 4), so the model does not
/// wait on gathering and augmentation. `consume` gets the batch's index in `items`.
pub(crate) fn for_each_batch<E>(
    data: &Dataset,
    items: &[(usize, Variant)],
    batch_size: usize,
    start: usize,
    augment: Option<EpochAugment<'_>>,
    mut consume: impl FnMut(usize, HostBatch) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(4);
        scope.spawn(move || {
            for (b, chunk) in items.chunks(batch_size).enumerate().skip(start) {
                if tx.send(gather(data, chunk, b * batch_size, augment)).is_err() {
                    break; // the consumer stopped early (an error); stop producing
                }
            }
        });
        for (i, batch) in rx.into_iter().enumerate() {
            consume(start + i, batch)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use cnnlab_augment::{Op, Padding};

    use super::*;

    #[test]
    fn training_refuses_ops_that_change_the_data_size() {
        let s = ImageShape::new(32, 32, 3);
        let keeps = [Op::pad(Padding::All(4)), Op::random_crop_to(32), Op::hflip(0.5)];
        assert!(training_pipeline(&keeps, 1, s).is_ok());
        let err = training_pipeline(&[Op::random_resized_crop_to(24)], 1, s).unwrap_err().to_string();
        assert!(err.contains("augment.ops") && err.contains("32x32x3") && err.contains("24x24x3"), "{err}");
        let err = training_pipeline(&[Op::random_zoom_out()], 1, s).unwrap_err().to_string();
        assert!(err.contains("sizes drawn at random"), "{err}");
    }
}
