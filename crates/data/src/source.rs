//! Where datasets live on disk and how each layout is read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, ImageShape, Label, Splits};
use crate::error::{Error, Result};
use crate::folder::{self, FileSample, LoadReport, Skipped};
use crate::imbalance::Imbalance;
use crate::split::stratified;
use crate::{cifar, idx};

/// Where Debian's `dataset-fashion-mnist` package installs the real dataset.
pub const FASHION_MNIST_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

fn default_test_fraction() -> f64 {
    0.2
}

/// The `[data]` section of an experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `fashion-mnist`, `mnist`, `cifar10`, `simpsons`, `pets`, `image-folder` or
    /// `shapes` (generated, built in).
    pub dataset: String,
    /// `image-folder`: the root (`root/<class>/*.jpg`, or `root/train/<class>` and
    /// `root/test/<class>`), relative to the data dir unless absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Side of the square images decoded files are resized to (folder layouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// 1 (grey) or 3 (RGB) for decoded files; default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// Fraction of each class's training images held out for validation (0: the
    /// test split is used for per-epoch evaluation).
    #[serde(default)]
    pub val_fraction: f64,
    /// Fraction held out for testing when the layout has no test split of its own.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Drop images whose width or height is below this (before resizing; seed 001).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_side: Option<u32>,
    /// Drop images whose width or height is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_side: Option<u32>,
    /// Class-imbalance strategy for the training split.
    #[serde(default)]
    pub imbalance: Imbalance,
    /// Cap named classes of the training split at these counts (a seeded draw), to
    /// make a balanced dataset imbalanced like a real one: `{ Sandal = 50 }`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub class_counts: std::collections::BTreeMap<String, usize>,
    /// Caps like `class_counts`, applied only when the dataset was found as its
    /// fallback copy (`simpsons`: the balanced Simpsons-MNIST instead of Kaggle's
    /// journey-springfield), to make that copy imbalanced like the original.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fallback_class_counts: std::collections::BTreeMap<String, usize>,
    /// Train on a seeded random subset of at most this many images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_train: Option<usize>,
    /// Evaluate on a seeded random subset of at most this many test images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_test: Option<usize>,
    /// Seed of the splits and subsets.
    #[serde(default)]
    pub seed: u64,
    /// Keep decoded images under `<data-dir>/.cnnlab-cache/` and reuse them while the
    /// source files and the image size are unchanged (n x H x W x C bytes per split).
    #[serde(default)]
    pub cache: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: String::new(),
            path: None,
            image_size: None,
            channels: None,
            val_fraction: 0.0,
            test_fraction: default_test_fraction(),
            min_side: None,
            max_side: None,
            imbalance: Imbalance::None,
            class_counts: Default::default(),
            fallback_class_counts: Default::default(),
            max_train: None,
            max_test: None,
            seed: 0,
            cache: false,
        }
    }
}

impl DataConfig {
    /// Rejects settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| Err(Error::InvalidKey { key: key.to_owned(), message });
        for (key, f) in [("val_fraction", self.val_fraction), ("test_fraction", self.test_fraction)] {
            if !(0.0..1.0).contains(&f) {
                return bad(key, format!("{f} is outside [0, 1)"));
            }
        }
        if self.val_fraction + self.test_fraction >= 1.0 {
            return bad("val_fraction", "plus data.test_fraction must leave images for training".into());
        }
        if !matches!(self.channels, None | Some(1) | Some(3)) {
            return bad("channels", "must be 1 or 3".into());
        }
        if self.image_size == Some(0) {
            return bad("image_size", "must be at least 1".into());
        }
        if let (Some(lo), Some(hi)) = (self.min_side, self.max_side) {
            if lo > hi {
                return bad("min_side", format!("{lo} is larger than data.max_side = {hi}"));
            }
        }
        self.imbalance.validate().map_err(Error::Invalid)
    }

    /// The image shape and class count of the dataset in its full public form, known
    /// without reading it (for model summaries); `None` for `image-folder`.
    pub fn nominal(&self) -> Option<(ImageShape, usize)> {
        match self.dataset.as_str() {
            "fashion-mnist" | "mnist" => Some((ImageShape { channels: 1, height: 28, width: 28 }, 10)),
            "cifar10" => Some((self.shape(32), 10)),
            "pets" => Some((self.shape(224), 37)),
            // Kaggle's journey-springfield: 42 characters in simpsons_dataset/.
            "simpsons" => Some((self.shape(64), 42)),
            "shapes" => Some((self.shape(32), crate::shapes::SHAPES_CLASSES.len())),
            _ => None,
        }
    }

    fn shape(&self, default_size: usize) -> ImageShape {
        let side = self.image_size.unwrap_or(default_size);
        ImageShape { channels: self.channels.unwrap_or(3), height: side, width: side }
    }
}

/// Dataset layouts this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// MNIST-style IDX files (Fashion-MNIST, MNIST).
    Idx,
    /// CIFAR-10 binary batches.
    CifarBin,
    /// `root/<class>/*` (split by fraction) or `root/{train,test}/<class>/*`.
    Folder,
    /// Oxford-IIIT Pet: `images/*.jpg` + `annotations/{trainval,test}.txt`.
    Pets,
}

/// A dataset found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub name: String,
    pub dir: PathBuf,
    kind: Kind,
    /// Found as a later candidate (a copy standing in for the full dataset).
    pub fallback: bool,
}

/// Finds dataset `name` under `data_dir` (for Fashion-MNIST also where Debian puts
/// it; for `image-folder`, at `path`).
pub fn locate(name: &str, data_dir: &Path) -> Result<Located> {
    locate_with(name, data_dir, None)
}

fn locate_with(name: &str, data_dir: &Path, path: Option<&Path>) -> Result<Located> {
    let d = |p: &str| data_dir.join(p);
    // (kind, folder, file or folder that must exist inside it)
    let (candidates, hint): (Vec<(Kind, PathBuf, &str)>, String) = match name {
        "fashion-mnist" => (
            vec![
                (Kind::Idx, d("fashion-mnist"), "train-images-idx3-ubyte"),
                (Kind::Idx, PathBuf::from(FASHION_MNIST_SYSTEM_DIR), "train-images-idx3-ubyte"),
            ],
            format!(
                "install Debian's package (`apt-get install dataset-fashion-mnist`) or put the four IDX files in {}",
                d("fashion-mnist").display()
            ),
        ),
        "mnist" => (
            vec![(Kind::Idx, d("mnist"), "train-images-idx3-ubyte")],
            format!("put the four MNIST IDX files in {}", d("mnist").display()),
        ),
        "cifar10" => (
            vec![
                (Kind::CifarBin, d("cifar10/cifar-10-batches-bin"), "data_batch_1.bin"),
                (Kind::Folder, d("cifar10-jpg"), "train"),
            ],
            format!(
                "extract the CIFAR-10 binary version so that {} exists, or the JPEG copy as {}",
                d("cifar10/cifar-10-batches-bin/data_batch_1.bin").display(),
                d("cifar10-jpg/train").display()
            ),
        ),
        "simpsons" => (
            vec![(Kind::Folder, d("simpsons/simpsons_dataset"), ""), (Kind::Folder, d("simpsons-mnist-rgb/train"), "")],
            format!(
                "unzip Kaggle's journey-springfield into {} (or the Simpsons-MNIST copy as {})",
                d("simpsons").display(),
                d("simpsons-mnist-rgb/train").display()
            ),
        ),
        "pets" => (
            vec![
                (Kind::Pets, d("oxford-iiit-pet"), "annotations/trainval.txt"),
                (Kind::Pets, d("oxford-pets-sample"), "annotations/trainval.txt"),
            ],
            format!("extract images.tar.gz and annotations.tar.gz into {}", d("oxford-iiit-pet").display()),
        ),
        "image-folder" => {
            let Some(path) = path else {
                return Err(Error::Invalid("data.path is required for dataset = \"image-folder\"".into()));
            };
            let root = if path.is_absolute() { path.to_path_buf() } else { data_dir.join(path) };
            (vec![(Kind::Folder, root.clone(), "")], format!("no folder {}", root.display()))
        }
        other => return Err(Error::UnknownDataset(other.to_owned())),
    };
    for (index, (kind, dir, marker)) in candidates.iter().enumerate() {
        let present = if marker.is_empty() {
            dir.is_dir()
        } else {
            [marker.to_string(), format!("{marker}.gz")].iter().any(|f| dir.join(f).exists())
        };
        if present {
            return Ok(Located { name: name.to_owned(), dir: dir.clone(), kind: *kind, fallback: index > 0 });
        }
    }
    let tried = candidates.iter().map(|(_, d, _)| d.display().to_string()).collect::<Vec<_>>().join(", ");
    Err(Error::NotFound { name: name.to_owned(), tried, hint })
}

/// Locates and reads the dataset `cfg` names, quietly.
pub fn load(cfg: &DataConfig, data_dir: &Path) -> Result<Splits> {
    load_with_progress(cfg, data_dir, true)
}

/// Locates and reads the dataset `cfg` names; decoding shows a progress bar unless
/// `quiet`. Unusable files are skipped and listed in [`Splits::report`].
pub fn load_with_progress(cfg: &DataConfig, data_dir: &Path, quiet: bool) -> Result<Splits> {
    cfg.validate()?;
    let (splits, fallback) = if cfg.dataset == "shapes" {
        // Generated, not read: test images come from another seed's stream.
        let shape = cfg.shape(32);
        let per_class = crate::shapes::SHAPES_PER_CLASS;
        check_memory(cfg, (per_class + per_class / 4) * crate::shapes::SHAPES_CLASSES.len(), shape, 32)?;
        let train = crate::shapes::generate(shape, per_class, cfg.seed)?;
        (
            Splits::new(train, crate::shapes::generate(shape, per_class / 4, cfg.seed ^ crate::shapes::TEST_STREAM)?),
            false,
        )
    } else {
        read_located(cfg, data_dir, quiet)?
    };
    finish_splits(cfg, splits, fallback)
}

fn read_located(cfg: &DataConfig, data_dir: &Path, quiet: bool) -> Result<(Splits, bool)> {
    let found = locate_with(&cfg.dataset, data_dir, cfg.path.as_deref())?;
    let cache_dir = cfg.cache.then(|| data_dir.join(".cnnlab-cache"));
    let splits = match found.kind {
        Kind::Idx => {
            let classes: Vec<String> = if found.name == "fashion-mnist" {
                FASHION_CLASSES.iter().map(|s| s.to_string()).collect()
            } else {
                (0..10).map(|d| d.to_string()).collect()
            };
            Splits::new(read_idx_split(&found.dir, "train", &classes)?, read_idx_split(&found.dir, "t10k", &classes)?)
        }
        Kind::CifarBin => read_cifar(&found.dir)?,
        Kind::Folder => read_folder(cfg, &found.dir, quiet, cache_dir.as_deref())?,
        Kind::Pets => read_pets(cfg, &found.dir, quiet, cache_dir.as_deref())?,
    };
    Ok((splits, found.fallback))
}

/// Refuses a dataset whose decoded images (`images` of `shape`, one byte per value)
/// cannot fit in this machine's memory, before any of it is allocated: one line
/// naming `data.image_size`, the bytes needed and the memory there is, instead of an
/// out-of-memory abort in the middle of decoding.
fn check_memory(cfg: &DataConfig, images: usize, shape: ImageShape, default_size: usize) -> Result<()> {
    let needed = images as u128 * shape.height as u128 * shape.width as u128 * shape.channels as u128;
    let Some(memory) = machine_memory() else { return Ok(()) };
    // The process needs room besides the images (the network, batches, the decoder).
    if needed <= memory as u128 * 9 / 10 {
        return Ok(());
    }
    let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
    let size = match cfg.image_size {
        Some(side) => side.to_string(),
        None => format!("{default_size} (the default)"),
    };
    Err(Error::Invalid(format!(
        "data.image_size = {size}: {images} images of {}x{}x{} need {needed} bytes ({:.1} GiB) decoded, and this \
         machine has {memory} bytes ({:.1} GiB) of memory: lower data.image_size, or max_train / max_test",
        shape.channels,
        shape.height,
        shape.width,
        gib(needed),
        gib(memory as u128)
    )))
}

/// This machine's memory, or the cgroup's limit when lower (a container, a Slurm
/// job): bytes; `None` where neither can be read.
fn machine_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 =
        meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    let limit = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok());
    Some(limit.map_or(kb * 1024, |l| l.min(kb * 1024)))
}

/// Post-processing shared by every layout: validation split, class caps, subsets.
fn finish_splits(cfg: &DataConfig, mut splits: Splits, fallback: bool) -> Result<Splits> {
    if cfg.val_fraction > 0.0 && splits.val.is_none() {
        let s = stratified(&splits.train.labels, splits.train.num_classes(), cfg.val_fraction, 0.0, cfg.seed);
        let val = splits.train.select(&s.val);
        splits.train = splits.train.select(&s.train);
        if let Some(files) = splits.files.as_mut() {
            let pick = |idx: &[usize]| idx.iter().map(|&i| files.train[i].clone()).collect::<Vec<_>>();
            let (tr, va) = (pick(&s.train), pick(&s.val));
            files.train = tr;
            files.val = va;
        }
        splits.val = Some(val);
    }
    let fallback_caps = if fallback { &cfg.fallback_class_counts } else { &Default::default() };
    for (caps, key) in [(&cfg.class_counts, "data.class_counts"), (fallback_caps, "data.fallback_class_counts")] {
        if caps.is_empty() {
            continue;
        }
        let keep = capped(&splits.train, caps, cfg.seed)
            .map_err(|e| Error::Invalid(e.to_string().replace("data.class_counts", key)))?;
        if let Some(files) = splits.files.as_mut() {
            files.train = keep.iter().map(|&i| files.train[i].clone()).collect();
        }
        splits.train = splits.train.select(&keep);
    }
    if let Some(n) = cfg.max_train {
        splits.train = splits.train.subsample(n, cfg.seed);
        splits.files = None; // subsets are reproducible from the seed, not listed
    }
    if let Some(n) = cfg.max_test {
        splits.test = splits.test.subsample(n, cfg.seed.wrapping_add(1));
        splits.files = None;
    }
    Ok(splits)
}

/// Indices of `data` with each class in `caps` cut to at most its count (seeded).
fn capped(data: &Dataset, caps: &std::collections::BTreeMap<String, usize>, seed: u64) -> Result<Vec<usize>> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut limit = vec![usize::MAX; data.num_classes()];
    for (name, &n) in caps {
        let Some(c) = data.classes.iter().position(|c| c == name) else {
            return Err(Error::Invalid(format!(
                "data.class_counts: no class `{name}` (classes: {})",
                data.classes.join(", ")
            )));
        };
        limit[c] = n;
    }
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xCA95));
    let mut taken = vec![0usize; data.num_classes()];
    let mut keep: Vec<usize> = order
        .into_iter()
        .filter(|&i| {
            let c = data.labels[i] as usize;
            taken[c] += 1;
            taken[c] <= limit[c]
        })
        .collect();
    keep.sort_unstable();
    Ok(keep)
}

/// `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` in `dir`.
fn read_idx_split(dir: &Path, prefix: &str, classes: &[String]) -> Result<Dataset> {
    let pick = |stem: String| {
        let gz = dir.join(format!("{stem}.gz"));
        if gz.is_file() {
            gz
        } else {
            dir.join(stem)
        }
    };
    let images = pick(format!("{prefix}-images-idx3-ubyte"));
    let labels = pick(format!("{prefix}-labels-idx1-ubyte"));
    let (height, width, pixels, labs) = idx::read_pair(&images, &labels)?;
    let shape = ImageShape { channels: 1, height, width };
    Dataset::new(shape, pixels, labs.into_iter().map(Label::from).collect(), classes.to_vec())
        .map_err(|e| Error::format(&labels, e.to_string()))
}

fn read_cifar(dir: &Path) -> Result<Splits> {
    let classes = cifar_classes(dir)?;
    let shape = ImageShape { channels: 3, height: cifar::SIDE, width: cifar::SIDE };
    let read = |files: &[String]| -> Result<Dataset> {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for f in files {
            cifar::read_batch(&dir.join(f), &mut pixels, &mut labels)?;
        }
        Dataset::new(shape, pixels, labels, classes.clone())
    };
    let train: Vec<String> = (1..=5).map(|i| format!("data_batch_{i}.bin")).collect();
    Ok(Splits::new(read(&train)?, read(&["test_batch.bin".to_owned()])?))
}

/// Class names from `batches.meta.txt` when present (one per line), else CIFAR-10's.
fn cifar_classes(dir: &Path) -> Result<Vec<String>> {
    let meta = dir.join("batches.meta.txt");
    let names: Vec<String> = match std::fs::read_to_string(&meta) {
        Ok(text) => text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect(),
        Err(_) => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
    };
    if names.len() != 10 {
        return Err(Error::format(meta, format!("{} class names, CIFAR-10 has 10", names.len())));
    }
    Ok(names)
}

/// Keeps the files whose sides are within `[min_side, max_side]`; the others are
/// counted per class, and files whose header cannot be read are reported.
fn size_filter(
    cfg: &DataConfig,
    files: Vec<FileSample>,
    classes: &[String],
    report: &mut LoadReport,
) -> Vec<FileSample> {
    if cfg.min_side.is_none() && cfg.max_side.is_none() {
        return files;
    }
    use rayon::prelude::*;
    let dims: Vec<_> = files.par_iter().map(|f| folder::dimensions(&f.path)).collect();
    let (lo, hi) = (cfg.min_side.unwrap_or(0), cfg.max_side.unwrap_or(u32::MAX));
    let mut dropped = vec![0usize; classes.len()];
    let mut kept = Vec::with_capacity(files.len());
    for (f, d) in files.into_iter().zip(dims) {
        match d {
            Ok((w, h)) if w.min(h) >= lo && w.max(h) <= hi => kept.push(f),
            Ok(_) => dropped[f.label as usize] += 1,
            Err(reason) => report.skipped.push(Skipped { path: f.path, reason }),
        }
    }
    // Each split is filtered by its own call: add to what an earlier call counted.
    for (class, n) in classes.iter().zip(dropped).filter(|(_, n)| *n > 0) {
        match report.filtered_by_size.iter_mut().find(|(c, _)| c == class) {
            Some(entry) => entry.1 += n,
            None => report.filtered_by_size.push((class.clone(), n)),
        }
    }
    report.filtered_by_size.sort();
    kept
}

fn read_folder(cfg: &DataConfig, root: &Path, quiet: bool, cache_dir: Option<&Path>) -> Result<Splits> {
    let mut report = LoadReport::default();
    let default_size = if cfg.dataset == "cifar10" { 32 } else { 64 };
    let shape = cfg.shape(default_size);
    let (train_root, test_root) = (root.join("train"), root.join("test"));
    let presplit = train_root.is_dir() && test_root.is_dir();
    let (classes, train_files, val_files, test_files) = if presplit {
        let (classes, train) = folder::list_class_folders(&train_root, &mut report)?;
        let (test_classes, test) = folder::list_class_folders(&test_root, &mut report)?;
        if let Some(extra) = test_classes.iter().find(|c| !classes.contains(c)) {
            return Err(Error::format(test_root.join(extra), "class is in the test split but not in train"));
        }
        // Test labels index the test folder's classes; map them to train's.
        let test = test
            .into_iter()
            .map(|f| {
                let name = &test_classes[f.label as usize];
                let label = classes.iter().position(|c| c == name).expect("checked above") as Label;
                FileSample { path: f.path, label }
            })
            .collect();
        (classes, train, None, test)
    } else {
        // One three-way stratified split, so a class with 3 images keeps one in each.
        let (classes, files) = folder::list_class_folders(root, &mut report)?;
        let labels: Vec<Label> = files.iter().map(|f| f.label).collect();
        let s = stratified(&labels, classes.len(), cfg.val_fraction, cfg.test_fraction, cfg.seed);
        let pick = |idx: &[usize]| idx.iter().map(|&i| files[i].clone()).collect::<Vec<_>>();
        let val = (cfg.val_fraction > 0.0).then(|| pick(&s.val));
        (classes, pick(&s.train), val, pick(&s.test))
    };
    decode_splits(cfg, &classes, (train_files, val_files, test_files), shape, (quiet, cache_dir), report)
}

/// Size-filters and decodes each split's files.
fn decode_splits(
    cfg: &DataConfig,
    classes: &[String],
    (train_files, val_files, test_files): (Vec<FileSample>, Option<Vec<FileSample>>, Vec<FileSample>),
    shape: ImageShape,
    (quiet, cache_dir): (bool, Option<&Path>),
    mut report: LoadReport,
) -> Result<Splits> {
    let images = train_files.len() + val_files.as_ref().map_or(0, Vec::len) + test_files.len();
    let fits_in_memory = || check_memory(cfg, images, shape, if cfg.dataset == "cifar10" { 32 } else { 64 });
    // Mapped from the decode cache, the images need no memory of their own (unless the
    // cache cannot be written: then `decode_all_cached` asks).
    if cache_dir.is_none() {
        fits_in_memory()?;
    }
    let decode = |files: Vec<FileSample>, report: &mut LoadReport| {
        let files = size_filter(cfg, files, classes, report);
        folder::decode_all_cached(&files, classes, shape, quiet, cache_dir, report, fits_in_memory)
    };
    let (train, train_paths) = decode(train_files, &mut report)?;
    let val = val_files.map(|f| decode(f, &mut report)).transpose()?;
    let (test, test_paths) = decode(test_files, &mut report)?;
    if train.is_empty() {
        return Err(Error::Invalid("no usable training image".into()));
    }
    let mut splits = Splits::new(train, test);
    let val_paths = match val {
        Some((val, paths)) => {
            splits.val = Some(val);
            paths
        }
        None => Vec::new(),
    };
    splits.files = Some(crate::dataset::SplitFiles { train: train_paths, val: val_paths, test: test_paths });
    splits.report = report;
    Ok(splits)
}

/// Oxford-IIIT Pet: `annotations/trainval.txt` and `test.txt` list `Name_123 id
/// species breed`; the image is `images/Name_123.jpg` and the class is `Name`.
fn read_pets(cfg: &DataConfig, root: &Path, quiet: bool, cache_dir: Option<&Path>) -> Result<Splits> {
    let mut report = LoadReport::default();
    let read_list = |file: &str| -> Result<Vec<(String, PathBuf)>> {
        let path = root.join("annotations").join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let stem = line.split_whitespace().next().expect("non-empty line");
            let Some((breed, number)) = stem.rsplit_once('_') else {
                return Err(Error::format(&path, format!("line {}: `{stem}` is not Breed_Number", n + 1)));
            };
            if number.parse::<u32>().is_err() {
                return Err(Error::format(&path, format!("line {}: `{stem}` is not Breed_Number", n + 1)));
            }
            out.push((breed.to_owned(), root.join("images").join(format!("{stem}.jpg"))));
        }
        Ok(out)
    };
    let (trainval, test) = (read_list("trainval.txt")?, read_list("test.txt")?);
    let mut classes: Vec<String> = trainval.iter().map(|(b, _)| b.clone()).collect();
    classes.sort();
    classes.dedup();
    let to_samples = |list: Vec<(String, PathBuf)>, report: &mut LoadReport| -> Result<Vec<FileSample>> {
        let mut out = Vec::new();
        for (breed, path) in list {
            let Some(label) = classes.iter().position(|c| *c == breed) else {
                return Err(Error::format(&path, format!("breed `{breed}` is in test.txt but not in trainval.txt")));
            };
            if path.is_file() {
                out.push(FileSample { path, label: label as Label });
            } else {
                report.skipped.push(Skipped { path, reason: "listed in the annotations but missing".into() });
            }
        }
        Ok(out)
    };
    let train_files = to_samples(trainval, &mut report)?;
    let test_files = to_samples(test, &mut report)?;
    decode_splits(cfg, &classes, (train_files, None, test_files), cfg.shape(224), (quiet, cache_dir), report)
}
