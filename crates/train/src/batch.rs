//! Samples (HWC u8 from the data crate) to normalized NCHW float tensors.

use std::sync::mpsc;

use cnnlab_augment::Pipeline;
use cnnlab_data::{Dataset, ImageShape};
use tch::{Device, Kind, Tensor};

/// Pixels scaled to 0..1, then `(x - mean) / std` per channel, like torchvision's
/// `ToTensor()` + `Normalize(mean, std)`.
#[derive(Debug)]
pub struct Normalizer {
    mean: Tensor,
    std: Tensor,
    shape: ImageShape,
    device: Device,
}

impl Normalizer {
    pub fn new(mean: &[f32], std: &[f32], shape: ImageShape, device: Device) -> Self {
        let c = shape.channels as i64;
        let mean = Tensor::from_slice(mean).view([1, c, 1, 1]).to_device(device);
        let std = Tensor::from_slice(std).view([1, c, 1, 1]).to_device(device);
        Self { mean, std, shape, device }
    }

    /// From the training split's per-channel statistics.
    pub fn fit(train: &Dataset, device: Device) -> Self {
        let (mean, std) = train.channel_stats();
        Self::new(&mean, &std, train.shape, device)
    }

    /// `n` HWC images, one after another, to an `[n, C, H, W]` float tensor on the
    /// device. The u8 bytes travel to the device before conversion (4x less traffic).
    pub fn to_tensor(&self, pixels: &[u8]) -> Tensor {
        let s = self.shape;
        let n = (pixels.len() / s.len()) as i64;
        Tensor::from_slice(pixels)
            .view([n, s.height as i64, s.width as i64, s.channels as i64])
            .to_device(self.device)
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            .g_mul_scalar(1.0 / 255.0)
            .g_sub(&self.mean)
            .g_div(&self.std)
    }
}

/// One batch assembled on the host.
#[derive(Debug)]
pub struct HostBatch {
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
}

/// Gathers the images at `indices` into one buffer, augmenting each copy.
pub fn gather(data: &Dataset, indices: &[usize], augment: Option<(&Pipeline, u64)>) -> HostBatch {
    let s = data.shape;
    let ashape = cnnlab_augment::Shape { height: s.height, width: s.width, channels: s.channels };
    let mut pixels = Vec::with_capacity(indices.len() * s.len());
    for &i in indices {
        let start = pixels.len();
        pixels.extend_from_slice(data.image(i));
        if let Some((pipe, epoch)) = augment {
            pipe.apply(&mut pixels[start..], ashape, epoch, i as u64);
        }
    }
    let labels = indices.iter().map(|&i| data.labels[i] as i64).collect();
    HostBatch { pixels, labels }
}

/// Runs `consume` on every batch of `order`, while a second thread assembles the
/// next batches (a bounded queue of 4), so the model does not wait on gathering and
/// augmentation.
pub(crate) fn for_each_batch<E>(
    data: &Dataset,
    order: &[usize],
    batch_size: usize,
    augment: Option<(&Pipeline, u64)>,
    mut consume: impl FnMut(usize, HostBatch) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(4);
        scope.spawn(move || {
            for chunk in order.chunks(batch_size) {
                if tx.send(gather(data, chunk, augment)).is_err() {
                    break; // the consumer stopped early (an error); stop producing
                }
            }
        });
        for (i, batch) in rx.into_iter().enumerate() {
            consume(i, batch)?;
        }
        Ok(())
    })
}
