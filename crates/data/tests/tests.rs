//! Reading real layouts from tiny generated files.

use std::io::Write;
use std::path::Path;

use cnnlab_data::{encode_cifar_batch, idx, load, locate, DataConfig, Error};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes an IDX dataset of `n` 4x3 images per split; gzipped or plain.
fn write_idx(dir: &Path, n: u32, gzipped: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for prefix in ["train", "t10k"] {
        let pixels: Vec<u8> = (0..n * 12).map(|i| (i * 7 % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let files = [
            (format!("{prefix}-images-idx3-ubyte"), idx::encode(&[n, 4, 3], &pixels)),
            (format!("{prefix}-labels-idx1-ubyte"), idx::encode(&[n], &labels)),
        ];
        for (name, bytes) in files {
            if gzipped {
                std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).unwrap();
            } else {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }
}

fn cfg(name: &str) -> DataConfig {
    DataConfig { dataset: name.into(), ..Default::default() }
}

#[test]
fn reads_idx_gzipped_and_plain() {
    for gzipped in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        write_idx(&tmp.path().join("mnist"), 20, gzipped);
        let splits = load(&cfg("mnist"), tmp.path()).unwrap();
        assert_eq!(splits.train.len(), 20);
        assert_eq!((splits.train.shape.height, splits.train.shape.width, splits.train.shape.channels), (4, 3, 1));
        assert_eq!(splits.train.labels[13], 3);
        assert_eq!(splits.train.image(1)[0], 84);
        assert_eq!(splits.test.num_classes(), 10);
    }
}

#[test]
fn subsets_are_seeded() {
    let tmp = tempfile::tempdir().unwrap();
    write_idx(&tmp.path().join("mnist"), 50, false);
    let mut c = cfg("mnist");
    c.max_train = Some(10);
    c.max_test = Some(5);
    let a = load(&c, tmp.path()).unwrap();
    let b = load(&c, tmp.path()).unwrap();
    assert_eq!((a.train.len(), a.test.len()), (10, 5));
    assert_eq!(a.train.labels, b.train.labels);
    c.seed = 1;
    assert_ne!(load(&c, tmp.path()).unwrap().train.pixels, a.train.pixels);
}

#[test]
fn truncated_idx_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    write_idx(&dir, 20, false);
    let f = dir.join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 5]).unwrap();
    let err = load(&cfg("mnist"), tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("train-images-idx3-ubyte: IDX header [20, 4, 3] announces 240 data bytes, file has 235"),
        "{err}"
    );

    // A gzip file cut short is a corrupt stream, also named.
    write_idx(&dir, 20, true);
    std::fs::remove_file(&f).unwrap();
    let gzf = dir.join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&gzf).unwrap();
    std::fs::write(&gzf, &bytes[..bytes.len() / 2]).unwrap();
    let err = load(&cfg("mnist"), tmp.path()).unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte.gz: corrupt gzip stream"), "{err}");
}

#[test]
fn label_count_must_match_image_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    write_idx(&dir, 20, false);
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx::encode(&[19], &[0; 19])).unwrap();
    let err = load(&cfg("mnist"), tmp.path()).unwrap_err().to_string();
    assert!(err.contains("19 labels for 20 images"), "{err}");
}

fn write_cifar(root: &Path, per_batch: usize) -> std::path::PathBuf {
    let dir = root.join("cifar10").join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let img: Vec<u8> = (0..3072).map(|i| (i % 200) as u8).collect();
    let records: Vec<(u8, &[u8])> = (0..per_batch).map(|i| ((i % 10) as u8, &img[..])).collect();
    let batch = encode_cifar_batch(&records);
    for i in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{i}.bin")), &batch).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), &batch).unwrap();
    dir
}

#[test]
fn reads_cifar_batches() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar(tmp.path(), 4);
    let splits = load(&cfg("cifar10"), tmp.path()).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (20, 4));
    assert_eq!(splits.train.shape.channels, 3);
    assert_eq!(splits.train.classes[9], "truck");
    let img: Vec<u8> = (0..3072).map(|i| (i % 200) as u8).collect();
    assert_eq!(splits.test.image(3), &img[..]);
}

#[test]
fn truncated_cifar_batch_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_cifar(tmp.path(), 4);
    let f = dir.join("data_batch_3.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 1000]).unwrap();
    let err = load(&cfg("cifar10"), tmp.path()).unwrap_err().to_string();
    assert!(err.contains("data_batch_3.bin: 11292 bytes is not a whole number of 3073-byte CIFAR-10 records"), "{err}");
    std::fs::remove_file(dir.join("test_batch.bin")).unwrap();
    std::fs::write(&f, &bytes).unwrap();
    let err = load(&cfg("cifar10"), tmp.path()).unwrap_err().to_string();
    assert!(err.contains("test_batch.bin: No such file"), "{err}");
}

#[test]
fn missing_and_unknown_datasets() {
    let tmp = tempfile::tempdir().unwrap();
    let err = locate("cifar10", tmp.path()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    let msg = err.to_string();
    assert!(msg.contains("dataset `cifar10` not found") && msg.contains("cifar-10-batches-bin"), "{msg}");
    assert!(!msg.contains('\n'));
    let err = locate("cifar100", tmp.path()).unwrap_err().to_string();
    assert_eq!(err, "unknown dataset `cifar100` (known: fashion-mnist, mnist, cifar10)");
}

#[test]
fn config_rejects_unknown_keys() {
    let err = toml::from_str::<DataConfig>("dataset = \"mnist\"\nmax_trian = 5\n").unwrap_err();
    assert!(err.message().contains("unknown field `max_trian`"), "{}", err.message());
}
