//! Where datasets live on disk and how each layout is read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, ImageShape, Splits};
use crate::error::{Error, Result};
use crate::{cifar, idx};

/// Where Debian's `dataset-fashion-mnist` package installs the real dataset.
pub const FASHION_MNIST_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The `[data]` section of an experiment file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `fashion-mnist`, `mnist` or `cifar10`.
    pub dataset: String,
    /// Train on a seeded random subset of at most this many images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_train: Option<usize>,
    /// Evaluate on a seeded random subset of at most this many test images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_test: Option<usize>,
    /// Seed of the subsets above.
    #[serde(default)]
    pub seed: u64,
}

/// Dataset layouts this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// MNIST-style IDX files (Fashion-MNIST, MNIST).
    Idx,
    /// CIFAR-10 binary batches.
    CifarBin,
}

/// A dataset found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub name: String,
    pub dir: PathBuf,
    kind: Kind,
}

/// Finds dataset `name` under `data_dir` (and, for Fashion-MNIST, where Debian puts it).
pub fn locate(name: &str, data_dir: &Path) -> Result<Located> {
    let (kind, candidates, marker, hint): (Kind, Vec<PathBuf>, &str, String) = match name {
        "fashion-mnist" => (
            Kind::Idx,
            vec![data_dir.join("fashion-mnist"), PathBuf::from(FASHION_MNIST_SYSTEM_DIR)],
            "train-images-idx3-ubyte",
            format!(
                "install Debian's package (`apt-get install dataset-fashion-mnist`) or put the four IDX files in {}",
                data_dir.join("fashion-mnist").display()
            ),
        ),
        "mnist" => (
            Kind::Idx,
            vec![data_dir.join("mnist")],
            "train-images-idx3-ubyte",
            format!("put the four MNIST IDX files in {}", data_dir.join("mnist").display()),
        ),
        "cifar10" => (
            Kind::CifarBin,
            vec![data_dir.join("cifar10").join("cifar-10-batches-bin")],
            "data_batch_1.bin",
            format!(
                "extract the CIFAR-10 binary version (cifar-10-binary.tar.gz) so that {} exists",
                data_dir.join("cifar10/cifar-10-batches-bin/data_batch_1.bin").display()
            ),
        ),
        other => return Err(Error::UnknownDataset(other.to_owned())),
    };
    for dir in &candidates {
        let present = [marker.to_owned(), format!("{marker}.gz")].iter().any(|f| dir.join(f).is_file());
        if present {
            return Ok(Located { name: name.to_owned(), dir: dir.clone(), kind });
        }
    }
    let tried = candidates.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    Err(Error::NotFound { name: name.to_owned(), tried, hint })
}

/// Locates and reads the dataset `cfg` names, applying its subsets.
pub fn load(cfg: &DataConfig, data_dir: &Path) -> Result<Splits> {
    let found = locate(&cfg.dataset, data_dir)?;
    let mut splits = match found.kind {
        Kind::Idx => {
            let classes: Vec<String> = if found.name == "fashion-mnist" {
                FASHION_CLASSES.iter().map(|s| s.to_string()).collect()
            } else {
                (0..10).map(|d| d.to_string()).collect()
            };
            Splits {
                train: read_idx_split(&found.dir, "train", &classes)?,
                test: read_idx_split(&found.dir, "t10k", &classes)?,
            }
        }
        Kind::CifarBin => read_cifar(&found.dir)?,
    };
    if let Some(n) = cfg.max_train {
        splits.train = splits.train.subsample(n, cfg.seed);
    }
    if let Some(n) = cfg.max_test {
        splits.test = splits.test.subsample(n, cfg.seed.wrapping_add(1));
    }
    Ok(splits)
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
    Dataset::new(shape, pixels, labs, classes.to_vec()).map_err(|e| Error::format(&labels, e.to_string()))
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
    Ok(Splits { train: read(&train)?, test: read(&["test_batch.bin".to_owned()])? })
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
