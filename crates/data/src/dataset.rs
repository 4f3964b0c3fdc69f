//! In-memory datasets: every image decoded once into one contiguous u8 buffer.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::error::{Error, Result};

/// Shape of one image, stored HWC: the augment crate's, so samples go to the
/// augmentation ops without conversion.
pub use cnnlab_augment::Shape as ImageShape;

/// Labelled images, decoded and stored as `n x H x W x C` bytes.
/// Memory is exactly `n * H * W * C` bytes plus one byte per label.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub shape: ImageShape,
    /// HWC pixels of every image, one after another.
    pub pixels: Vec<u8>,
    /// Class index of each image.
    pub labels: Vec<u8>,
    /// Class names, indexed by label.
    pub classes: Vec<String>,
}

impl Dataset {
    /// Checks that pixels, labels and classes agree.
    pub fn new(shape: ImageShape, pixels: Vec<u8>, labels: Vec<u8>, classes: Vec<String>) -> Result<Self> {
        if shape.is_empty() {
            return Err(Error::Invalid(format!("image shape {shape:?} has no pixels")));
        }
        if pixels.len() != labels.len() * shape.len() {
            return Err(Error::Invalid(format!(
                "{} pixel bytes for {} images of {} bytes",
                pixels.len(),
                labels.len(),
                shape.len()
            )));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= classes.len()) {
            return Err(Error::Invalid(format!("label {bad} but only {} classes", classes.len())));
        }
        Ok(Self { shape, pixels, labels, classes })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// HWC bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Images per class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// A new dataset holding the given images, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut pixels = Vec::with_capacity(indices.len() * self.shape.len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Dataset { shape: self.shape, pixels, labels, classes: self.classes.clone() }
    }

    /// A seeded random subset of at most `n` images (all of them, reordered, if `n >= len`).
    pub fn subsample(&self, n: usize, seed: u64) -> Dataset {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        order.truncate(n);
        order.sort_unstable();
        self.select(&order)
    }

    /// Per-channel mean and standard deviation of the pixels, scaled to 0..1.
    /// Used to normalize inputs the way `transforms.Normalize(mean, std)` does.
    pub fn channel_stats(&self) -> (Vec<f32>, Vec<f32>) {
        let c = self.shape.channels;
        let mut sum = vec![0u64; c];
        let mut sum_sq = vec![0u64; c];
        for px in self.pixels.chunks_exact(c) {
            for (k, &v) in px.iter().enumerate() {
                sum[k] += v as u64;
                sum_sq[k] += (v as u64) * (v as u64);
            }
        }
        let n = (self.pixels.len() / c).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|&s| s as f64 / n / 255.0).collect();
        let std = sum_sq
            .iter()
            .zip(&mean)
            .map(|(&s, &m)| ((s as f64 / n / (255.0 * 255.0) - m * m).max(0.0).sqrt().max(1e-6)) as f32)
            .collect();
        (mean.into_iter().map(|m| m as f32).collect(), std)
    }
}

/// The files behind each split, when the dataset came from image files (saved with
/// every run so a split can be audited and reproduced).
/// File names are data: one that is not UTF-8 is written lossily (U+FFFD for each bad
/// byte), never a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SplitFiles {
    #[serde(serialize_with = "lossy::paths")]
    pub train: Vec<std::path::PathBuf>,
    #[serde(serialize_with = "lossy::paths")]
    pub val: Vec<std::path::PathBuf>,
    #[serde(serialize_with = "lossy::paths")]
    pub test: Vec<std::path::PathBuf>,
}

/// Paths serialized as lossy UTF-8 strings (serde's own `PathBuf` impl fails on
/// invalid UTF-8).
pub(crate) mod lossy {
    use serde::Serializer;
    use std::path::{Path, PathBuf};

    pub(crate) fn path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.to_string_lossy())
    }

    pub(crate) fn paths<S: Serializer>(ps: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ps.iter().map(|p| p.to_string_lossy()))
    }
}

/// A dataset's splits. Without a validation split, per-epoch evaluation uses test.
#[derive(Debug, Clone)]
pub struct Splits {
    pub train: Dataset,
    pub val: Option<Dataset>,
    pub test: Dataset,
    pub files: Option<SplitFiles>,
    /// Files skipped or filtered while loading.
    pub report: crate::folder::LoadReport,
}

impl Splits {
    pub fn new(train: Dataset, test: Dataset) -> Self {
        Self { train, val: None, test, files: None, report: Default::default() }
    }

    /// The split evaluated after every epoch: validation if there is a non-empty one
    /// (a tiny dataset can leave it empty), else test.
    pub fn eval(&self) -> &Dataset {
        self.val.as_ref().filter(|v| !v.is_empty()).unwrap_or(&self.test)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        let shape = ImageShape { channels: 1, height: 1, width: 2 };
        Dataset::new(shape, vec![0, 255, 10, 20, 30, 40], vec![0, 1, 1], vec!["a".into(), "b".into()]).unwrap()
    }

    #[test]
    fn select_counts_and_stats() {
        let d = tiny();
        assert_eq!(d.class_counts(), [1, 2]);
        let s = d.select(&[2, 0]);
        assert_eq!(s.pixels, [30, 40, 0, 255]);
        assert_eq!(s.labels, [1, 0]);
        let (mean, std) = d.channel_stats();
        let vals = [0.0, 255.0, 10.0, 20.0, 30.0, 40.0].map(|v: f64| v / 255.0);
        let m = vals.iter().sum::<f64>() / 6.0;
        let sd = (vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 6.0).sqrt();
        assert!((mean[0] as f64 - m).abs() < 1e-6 && (std[0] as f64 - sd).abs() < 1e-6);
        let sub = d.subsample(2, 7);
        assert_eq!(sub.len(), 2);
        assert_eq!(sub.pixels, d.subsample(2, 7).pixels, "seeded");
    }

    #[test]
    fn rejects_inconsistent_parts() {
        let shape = ImageShape { channels: 1, height: 1, width: 2 };
        let err = Dataset::new(shape, vec![0; 5], vec![0, 0, 0], vec!["a".into()]).unwrap_err();
        assert_eq!(err.to_string(), "5 pixel bytes for 3 images of 2 bytes");
        let err = Dataset::new(shape, vec![0; 2], vec![4], vec!["a".into()]).unwrap_err();
        assert_eq!(err.to_string(), "label 4 but only 1 classes");
    }
}
