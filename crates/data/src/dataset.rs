//! Datasets: every image decoded once into one contiguous u8 buffer, in memory or
//! memory-mapped from the decode cache.

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::error::{Error, Result};

/// Shape of one image, stored HWC: the augment crate's, so samples go to the
/// augmentation ops without conversion.
pub use cnnlab_augment::Shape as ImageShape;

/// A class index. 16 bits: ImageNet-1k, iNaturalist subsets and any folder of up to
/// 65,536 classes.
pub type Label = u16;

/// The most a read fault maps at once: Linux maps, besides the page that faulted, the
/// pages around it that are in the page cache (`fault_around_bytes`, 64 KiB by default)
/// and, since 6.x, a whole large folio of the page cache: at most a PMD, 2 MiB (x86-64;
/// arm64 with 4 KiB pages).
const MAPPED_AT_ONCE: usize = 2 << 20;

/// The images' bytes: owned, or a range of a memory-mapped decode cache (then a clone
/// shares the map, and only the pages read are resident).
#[derive(Clone)]
pub(crate) enum Pixels {
    Owned(Vec<u8>),
    Mapped { map: Arc<memmap2::Mmap>, start: usize, end: usize },
}

impl Pixels {
    pub(crate) fn mapped(map: Arc<memmap2::Mmap>, start: usize, end: usize) -> Pixels {
        assert!(start <= end && end <= map.len(), "{start}..{end} of a {}-byte map", map.len());
        Pixels::Mapped { map, start, end }
    }

    /// Whether the bytes are a mapped file's.
    pub(crate) fn is_mapped(&self) -> bool {
        matches!(self, Pixels::Mapped { .. })
    }

    /// Lets the kernel drop `range`'s pages from this process's memory (they stay in the
    /// page cache and are read again on the next access); nothing for owned bytes.
    ///
    /// A page fault maps not only the page read but the page cache's pages around it,
    /// up to [`MAPPED_AT_ONCE`] bytes: a neighbouring image's pages, read and released
    /// before, come back with it. So the release covers the whole aligned windows of
    /// that size that `range` touches, or those pages stay resident: releasing the
    /// image's own pages alone left half of a freshly written cache mapped (the test
    /// `released_images_leave_no_page_of_the_map_resident`), and 84% of a 1.2 GB one
    /// read in order from a cold page cache. (Another thread reading a neighbour
    /// meanwhile faults its pages in again: the map is read-only, the bytes the same.)
    pub(crate) fn release(&self, range: std::ops::Range<usize>) {
        if let Pixels::Mapped { map, start, .. } = self {
            let base = map.as_ptr() as usize;
            let lo = (base + start + range.start) / MAPPED_AT_ONCE * MAPPED_AT_ONCE;
            let hi = (base + start + range.end).next_multiple_of(MAPPED_AT_ONCE);
            let (lo, hi) = (lo.max(base) - base, hi.min(base + map.len()) - base);
            // SAFETY: a shared read-only file mapping: the pages come back from the file.
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, lo, hi - lo) };
        }
    }

    /// Asks the kernel to start reading `range`'s pages into the page cache, without
    /// waiting; nothing for owned bytes.
    pub(crate) fn prefetch(&self, range: std::ops::Range<usize>) {
        if let Pixels::Mapped { map, start, .. } = self {
            let _ = map.advise_range(memmap2::Advice::WillNeed, start + range.start, range.len());
        }
    }
}

impl std::ops::Deref for Pixels {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Pixels::Owned(v) => v,
            Pixels::Mapped { map, start, end } => &map[*start..*end],
        }
    }
}

impl From<Vec<u8>> for Pixels {
    fn from(v: Vec<u8>) -> Self {
        Pixels::Owned(v)
    }
}

impl std::fmt::Debug for Pixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_mapped() { "mapped" } else { "owned" };
        write!(f, "Pixels({} bytes, {kind})", self.len())
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Pixels {
    fn eq(&self, other: &[u8; N]) -> bool {
        self[..] == other[..]
    }
}

/// Labelled images, decoded and stored as `n x H x W x C` bytes, in memory or mapped.
/// In memory, that is exactly `n * H * W * C` bytes plus two bytes per label. A
/// selection of a mapped dataset (a validation split, a subset) keeps the map and
/// lists which stored images it has, four bytes each, instead of copying them.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub shape: ImageShape,
    /// HWC pixels of the stored images, one after another.
    pixels: Pixels,
    /// Which stored image image `i` is, for a selection of a mapped dataset (`None`:
    /// image `i` is stored image `i`).
    order: Option<Arc<[u32]>>,
    /// Class index of each image.
    pub labels: Vec<Label>,
    /// Class names, indexed by label.
    pub classes: Vec<String>,
}

impl Dataset {
    /// Checks that pixels, labels and classes agree.
    pub fn new(shape: ImageShape, pixels: Vec<u8>, labels: Vec<Label>, classes: Vec<String>) -> Result<Self> {
        Self::from_pixels(shape, Pixels::Owned(pixels), labels, classes)
    }

    /// [`Dataset::new`] over pixels in memory or mapped.
    pub(crate) fn from_pixels(
        shape: ImageShape,
        pixels: Pixels,
        labels: Vec<Label>,
        classes: Vec<String>,
    ) -> Result<Self> {
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
        check_labels(&labels, &classes)?;
        Ok(Self { shape, pixels, order: None, labels, classes })
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

    /// Where image `i` is stored.
    fn stored(&self, i: usize) -> usize {
        self.order.as_ref().map_or(i, |o| o[i] as usize)
    }

    /// HWC bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let (n, j) = (self.shape.len(), self.stored(i));
        &self.pixels[j * n..(j + 1) * n]
    }

    /// The HWC bytes of every image, in order: borrowed, or gathered for a selection of
    /// a mapped dataset.
    pub fn pixels(&self) -> std::borrow::Cow<'_, [u8]> {
        match self.order {
            None => std::borrow::Cow::Borrowed(&self.pixels[..]),
            Some(_) => std::borrow::Cow::Owned((0..self.len()).flat_map(|i| self.image(i).iter().copied()).collect()),
        }
    }

    /// Whether the images are read from a mapped decode cache.
    pub fn is_mapped(&self) -> bool {
        self.pixels.is_mapped()
    }

    /// The same images with other labels and class names.
    pub fn relabelled(&self, labels: Vec<Label>, classes: Vec<String>) -> Result<Dataset> {
        if labels.len() != self.len() {
            return Err(Error::Invalid(format!("{} labels for {} images", labels.len(), self.len())));
        }
        check_labels(&labels, &classes)?;
        Ok(Dataset { labels, classes, ..self.clone() })
    }

    /// Lets a mapped dataset's `images` leave this process's memory once read (they stay
    /// in the page cache): what keeps resident memory to the batches in flight however
    /// large the dataset. One request per run of images stored one after another; a
    /// release drops the pages around them too (see `Pixels::release`), so a caller
    /// reading in parallel releases what it read once all of it is read. Nothing for a
    /// dataset in memory.
    pub fn release(&self, images: impl IntoIterator<Item = usize>) {
        self.for_each_run(images, |bytes| self.pixels.release(bytes));
    }

    /// Lets a mapped dataset's `images` start coming from disk into the page cache while
    /// the caller does something else: what keeps a read from waiting on one page
    /// fault's read after another when the cache is not in the page cache yet (the map
    /// is advised random access, so a fault reads no more than its page). One request
    /// per run of images stored one after another; nothing for a dataset in memory.
    pub fn prefetch(&self, images: impl IntoIterator<Item = usize>) {
        self.for_each_run(images, |bytes| self.pixels.prefetch(bytes));
    }

    /// Calls `f` with the stored bytes of each run of `images` stored one after
    /// another; nothing for a dataset in memory.
    fn for_each_run(&self, images: impl IntoIterator<Item = usize>, f: impl Fn(std::ops::Range<usize>)) {
        if !self.is_mapped() {
            return;
        }
        let n = self.shape.len();
        let mut run: Option<std::ops::Range<usize>> = None;
        for j in images.into_iter().map(|i| self.stored(i)) {
            match &mut run {
                Some(r) if r.end == j => r.end += 1,
                _ => {
                    if let Some(r) = run.replace(j..j + 1) {
                        f(r.start * n..r.end * n);
                    }
                }
            }
        }
        if let Some(r) = run {
            f(r.start * n..r.end * n);
        }
    }

    /// Images per class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// A new dataset holding the given images, in that order: copied for a dataset in
    /// memory, listed (the map shared) for a mapped one.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        let classes = self.classes.clone();
        if self.pixels.is_mapped() {
            let order: Arc<[u32]> = indices.iter().map(|&i| self.stored(i) as u32).collect();
            return Dataset { shape: self.shape, pixels: self.pixels.clone(), order: Some(order), labels, classes };
        }
        let mut pixels = Vec::with_capacity(indices.len() * self.shape.len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        Dataset { shape: self.shape, pixels: pixels.into(), order: None, labels, classes }
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
        // In chunks of a few MB, the next one read ahead, each released once summed.
        let chunk = ((8 << 20) / self.shape.len()).max(1);
        self.prefetch(0..chunk.min(self.len()));
        for first in (0..self.len()).step_by(chunk) {
            let images = first..(first + chunk).min(self.len());
            self.prefetch(images.end..(images.end + chunk).min(self.len()));
            for i in images.clone() {
                for px in self.image(i).chunks_exact(c) {
                    for (k, &v) in px.iter().enumerate() {
                        sum[k] += v as u64;
                        sum_sq[k] += (v as u64) * (v as u64);
                    }
                }
            }
            self.release(images);
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

/// Every label names one of `classes`.
fn check_labels(labels: &[Label], classes: &[String]) -> Result<()> {
    match labels.iter().find(|&&l| l as usize >= classes.len()) {
        Some(&bad) => Err(Error::Invalid(format!("label {bad} but only {} classes", classes.len()))),
        None => Ok(()),
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
        assert_eq!(*s.pixels(), [30, 40, 0, 255]);
        assert_eq!(s.labels, [1, 0]);
        let (mean, std) = d.channel_stats();
        let vals = [0.0, 255.0, 10.0, 20.0, 30.0, 40.0].map(|v: f64| v / 255.0);
        let m = vals.iter().sum::<f64>() / 6.0;
        let sd = (vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 6.0).sqrt();
        assert!((mean[0] as f64 - m).abs() < 1e-6 && (std[0] as f64 - sd).abs() < 1e-6);
        let sub = d.subsample(2, 7);
        assert_eq!(sub.len(), 2);
        assert_eq!(sub.pixels(), d.subsample(2, 7).pixels(), "seeded");
    }

    /// A dataset mapped from a decode cache reads, selects (a selection of a selection
    /// too), gathers and computes its statistics as the same dataset in memory does,
    /// and its selections share the map instead of copying it.
    #[test]
    fn a_mapped_dataset_reads_as_one_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let shape = ImageShape { channels: 1, height: 1, width: 2 };
        let owned = tiny();
        let mut w = crate::cache::Writer::create(&dir.path().join("c.bin"), 3, shape).unwrap();
        for i in 0..3 {
            w.push(i, owned.labels[i], owned.image(i)).unwrap();
        }
        let c = w.finish().unwrap();
        let mapped = Dataset::from_pixels(shape, c.pixels, c.labels, owned.classes.clone()).unwrap();
        assert!(mapped.is_mapped() && !owned.is_mapped());
        assert_eq!(mapped.pixels(), owned.pixels());
        assert_eq!(mapped.channel_stats(), owned.channel_stats());
        let (a, b) = (mapped.select(&[2, 0, 1]).select(&[1, 0]), owned.select(&[2, 0, 1]).select(&[1, 0]));
        assert!(a.is_mapped());
        assert_eq!((a.pixels(), &a.labels), (b.pixels(), &b.labels));
        assert_eq!(a.image(1), [30, 40]);
        a.release([1]);
        assert_eq!(a.image(1), [30, 40], "a released image reads again from the page cache");
        assert_eq!(a.subsample(5, 3).pixels(), b.subsample(5, 3).pixels());
    }

    /// The kB of `path`'s mappings resident in this process (`/proc/self/smaps`).
    fn mapped_kb(path: &std::path::Path) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut ours = false;
        let mut kb = 0;
        for line in smaps.lines() {
            if line.split_whitespace().next().is_some_and(|f| f.contains('-') && !f.ends_with(':')) {
                ours = line.ends_with(&*path.to_string_lossy());
            } else if let Some(rss) = line.strip_prefix("Rss:").filter(|_| ours) {
                kb += rss.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap();
            }
        }
        kb
    }

    /// Read in any order and released, a mapped dataset's images leave nothing of the
    /// map resident, although each page fault also maps the neighbours' pages that are
    /// in the page cache (images of 3,000 bytes straddle pages, as most sizes do).
    #[test]
    fn released_images_leave_no_page_of_the_map_resident() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let shape = ImageShape { channels: 3, height: 20, width: 50 };
        let n = 400;
        let mut w = crate::cache::Writer::create(&path, n, shape).unwrap();
        for i in 0..n {
            w.push(i, 0, &vec![i as u8; shape.len()]).unwrap();
        }
        let c = w.finish().unwrap();
        let data = Dataset::from_pixels(shape, c.pixels, c.labels, vec!["a".into()]).unwrap();
        // The whole file is in the page cache (just written); reading maps its pages.
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        for &i in &order {
            assert!(data.image(i).iter().all(|&v| v == i as u8));
        }
        assert!(mapped_kb(&path) > 0, "reading maps pages");
        for &i in &order {
            assert!(data.image(i).iter().all(|&v| v == i as u8));
            data.release([i]);
        }
        assert_eq!(mapped_kb(&path), 0);
        data.prefetch(order.iter().copied());
        data.channel_stats();
        assert_eq!(mapped_kb(&path), 0, "channel_stats releases what it reads");
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
