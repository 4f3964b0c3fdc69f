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
    assert_ne!(load(&c, tmp.path()).unwrap().train.pixels(), a.train.pixels());
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
    assert_eq!(
        err,
        "unknown dataset `cifar100` (known: fashion-mnist, mnist, cifar10, simpsons, pets, shapes, image-folder)"
    );
}

#[test]
fn config_rejects_unknown_keys() {
    let err = toml::from_str::<DataConfig>("dataset = \"mnist\"\nmax_trian = 5\n").unwrap_err();
    assert!(err.message().contains("unknown field `max_trian`"), "{}", err.message());
}

// ---- image folders -------------------------------------------------------------

/// Writes a `w x h` RGB image whose colour encodes `seed`, as JPEG or PNG by extension.
fn write_image(path: &Path, w: u32, h: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([seed, (x * 7) as u8, (y * 5) as u8]));
    img.save(path).unwrap();
}

fn folder_cfg(path: &Path) -> DataConfig {
    DataConfig {
        dataset: "image-folder".into(),
        path: Some(path.to_path_buf()),
        image_size: Some(16),
        test_fraction: 0.25,
        ..Default::default()
    }
}

#[test]
fn bad_files_are_skipped_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pics");
    for i in 0..4 {
        write_image(&root.join(format!("cat/{i}.jpg")), 40, 30, 10);
        write_image(&root.join(format!("dog/{i}.png")), 30, 40, 200);
    }
    std::fs::write(root.join("cat/empty.jpg"), b"").unwrap();
    let good = std::fs::read(root.join("cat/0.jpg")).unwrap();
    std::fs::write(root.join("cat/truncated.jpg"), &good[..good.len() / 2]).unwrap();
    std::fs::write(root.join("dog/notes.txt"), b"not an image").unwrap();

    let splits = load(&folder_cfg(&root), tmp.path()).unwrap();
    assert_eq!(splits.train.len() + splits.test.len(), 8);
    assert_eq!(splits.train.classes, ["cat", "dog"]);
    assert_eq!((splits.train.shape.height, splits.train.shape.width, splits.train.shape.channels), (16, 16, 3));
    let mut bad: Vec<String> =
        splits.report.skipped.iter().map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
    bad.sort();
    assert_eq!(bad, ["empty.jpg", "notes.txt", "truncated.jpg"], "{:?}", splits.report.skipped);
    let summary = splits.report.summary().unwrap();
    assert!(summary.starts_with("skipped 3 unusable file(s):") && summary.contains("truncated JPEG"), "{summary}");
    // The dog images are red = 200 after decoding and resizing.
    let dog = splits.train.labels.iter().position(|&l| l == 1).unwrap();
    assert!(splits.train.image(dog)[0].abs_diff(200) <= 2);
    let files = splits.files.as_ref().unwrap();
    assert_eq!(files.train.len(), splits.train.len());
}

/// `<dir>/pics/{a,b}/0..6.png`, 20x20; returns the folder.
fn two_classes_of_six(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("pics");
    for i in 0..6 {
        write_image(&root.join(format!("a/{i}.png")), 20, 20, 10 * i);
        write_image(&root.join(format!("b/{i}.png")), 20, 20, 100 + i);
    }
    root
}

/// The files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Replaces the cache file `name` in `dir` with a full disk: this process's temporary
/// file for it becomes a link to `/dev/full`, so writing it fails with ENOSPC.
fn fill_disk_for(dir: &Path, name: &str) {
    std::fs::remove_file(dir.join(name)).unwrap();
    let tmp_name = name.replace(".bin", &format!(".{}.tmp", std::process::id()));
    std::os::unix::fs::symlink("/dev/full", dir.join(tmp_name)).unwrap();
}

#[test]
fn decode_cache_is_reused_and_invalidated() {
    let tmp = tempfile::tempdir().unwrap();
    let root = two_classes_of_six(tmp.path());
    std::fs::write(root.join("a/empty.jpg"), b"").unwrap();
    let mut cfg = folder_cfg(&root);
    cfg.cache = true;
    let first = load(&cfg, tmp.path()).unwrap();
    assert!(first.report.cache.iter().all(|m| m.starts_with("wrote")), "{:?}", first.report.cache);
    let second = load(&cfg, tmp.path()).unwrap();
    assert!(second.report.cache.iter().all(|m| m.starts_with("mapped")), "{:?}", second.report.cache);
    assert!(first.train.is_mapped() && second.train.is_mapped(), "the cache is the dataset");
    assert_eq!((first.train.pixels(), &first.train.labels), (second.train.pixels(), &second.train.labels));
    assert_eq!(first.test.pixels(), second.test.pixels());
    assert_eq!(second.report.skipped.len(), 1, "the bad file is still reported");
    assert_eq!(first.files, second.files);

    // Another size, or a changed file, misses the cache.
    cfg.image_size = Some(8);
    assert!(load(&cfg, tmp.path()).unwrap().report.cache.iter().all(|m| m.starts_with("wrote")));
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_image(&root.join("b/0.png"), 20, 20, 250);
    let changed = load(&cfg, tmp.path()).unwrap();
    assert!(changed.report.cache.iter().any(|m| m.starts_with("wrote")), "{:?}", changed.report.cache);
    // (Its maps end before the files are rewritten in place below, as nothing but
    // this test ever does: cnnlab replaces a cache by renaming a new file over it.)
    let changed_pixels = changed.train.pixels().into_owned();
    drop(changed);

    drop((first, second));
    // A corrupt cache file is ignored and rewritten, never trusted.
    for entry in std::fs::read_dir(tmp.path().join(".cnnlab-cache")).unwrap() {
        std::fs::write(entry.unwrap().path(), b"CNNLABC1garbage").unwrap();
    }
    let again = load(&cfg, tmp.path()).unwrap();
    assert!(again.report.cache.iter().all(|m| m.starts_with("wrote")), "{:?}", again.report.cache);
    assert_eq!(*again.train.pixels(), changed_pixels[..]);
}

/// A cache that cannot be written because the disk is full (the kernel's own ENOSPC:
/// its temporary file is `/dev/full`) is one line naming it, leaves no file a later
/// run could read, and the split is decoded into memory with the same pixels; once
/// there is room, the next run writes the cache.
#[test]
fn a_cache_on_a_full_disk_is_one_line_and_decodes_into_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = two_classes_of_six(tmp.path());
    let mut cfg = folder_cfg(&root);
    cfg.cache = true;
    let cached = load(&cfg, tmp.path()).unwrap();
    let dir = tmp.path().join(".cnnlab-cache");
    let written = names(&dir);
    assert!(!written.is_empty() && written.iter().all(|n| n.ends_with(".bin")), "{written:?}");
    // The same caches again, but every write goes to a full disk.
    for name in &written {
        fill_disk_for(&dir, name);
    }
    let full = load(&cfg, tmp.path()).unwrap();
    let mut said = full.report.cache.clone();
    said.sort();
    let expected: Vec<String> = written
        .iter()
        .map(|name| {
            let path = dir.join(name).display().to_string();
            format!("could not write the cache {path}: No space left on device (os error 28); decoded into memory")
        })
        .collect();
    assert_eq!(said, expected);
    assert!(names(&dir).is_empty(), "no temporary and no cache left: {:?}", names(&dir));
    assert!(!full.train.is_mapped() && !full.test.is_mapped());
    assert_eq!((full.train.pixels(), &full.train.labels), (cached.train.pixels(), &cached.train.labels));
    assert_eq!(full.test.pixels(), cached.test.pixels());
    assert_eq!(full.files, cached.files);

    let again = load(&cfg, tmp.path()).unwrap();
    assert!(again.report.cache.iter().all(|m| m.starts_with("wrote")), "{:?}", again.report.cache);
    assert_eq!(names(&dir), written);

    // Images that would not fit in memory either: one error naming both.
    let mut report = cnnlab_data::LoadReport::default();
    let (classes, files) = cnnlab_data::folder::list_class_folders(&root, &mut report).unwrap();
    let (other, shape) = (tmp.path().join("other-cache"), cached.train.shape);
    let decode = |fits: &dyn Fn() -> Result<(), Error>, report: &mut cnnlab_data::LoadReport| {
        cnnlab_data::folder::decode_all_cached(&files, &classes, shape, true, Some(&other), report, fits)
    };
    decode(&|| Ok(()), &mut report).unwrap();
    let name = names(&other).remove(0);
    fill_disk_for(&other, &name);
    let no_room = || Err(Error::Invalid("12 images need more than this machine has".into()));
    let err = decode(&no_room, &mut report).unwrap_err();
    let expected = format!(
        "could not write the cache {}: No space left on device (os error 28), and decoding into memory instead: \
         12 images need more than this machine has",
        other.join(&name).display()
    );
    assert_eq!(err.to_string(), expected);
    assert!(names(&other).is_empty(), "{:?}", names(&other));
}

#[test]
fn stratified_split_is_seeded_and_keeps_rare_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pics");
    for i in 0..12 {
        write_image(&root.join(format!("many/{i}.png")), 8, 8, i);
    }
    for i in 0..3 {
        write_image(&root.join(format!("rare/{i}.png")), 8, 8, 100 + i);
    }
    let mut cfg = folder_cfg(&root);
    cfg.val_fraction = 0.2;
    let a = load(&cfg, tmp.path()).unwrap();
    assert_eq!(a.test.class_counts(), [3, 1]);
    assert_eq!(a.val.as_ref().unwrap().class_counts()[1], 1, "a rare class keeps one in each split");
    assert_eq!(a.train.class_counts()[1], 1);
    let b = load(&cfg, tmp.path()).unwrap();
    assert_eq!(a.files.as_ref().unwrap().test, b.files.as_ref().unwrap().test);
}

#[test]
fn presplit_folders_and_their_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("split");
    for (split, n) in [("train", 3), ("test", 2)] {
        for class in ["a", "b"] {
            for i in 0..n {
                write_image(&root.join(format!("{split}/{class}/{i}.png")), 8, 8, i);
            }
        }
    }
    let splits = load(&folder_cfg(&root), tmp.path()).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (6, 4));

    write_image(&root.join("test/zebra/0.png"), 8, 8, 1);
    let err = load(&folder_cfg(&root), tmp.path()).unwrap_err().to_string();
    assert!(err.contains("zebra: class is in the test split but not in train"), "{err}");
    std::fs::remove_dir_all(root.join("test/zebra")).unwrap();

    std::fs::create_dir_all(root.join("train/c")).unwrap();
    let err = load(&folder_cfg(&root), tmp.path()).unwrap_err().to_string();
    assert!(err.contains("train/c: class folder holds no image"), "{err}");

    let err = load(&folder_cfg(&tmp.path().join("nope")), tmp.path()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn size_filter_counts_per_class() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pics");
    for i in 0..4 {
        write_image(&root.join(format!("a/{i}.png")), 20, 20, i);
        write_image(&root.join(format!("b/{i}.png")), 20, 20, i);
    }
    write_image(&root.join("a/tiny.png"), 4, 20, 0);
    write_image(&root.join("b/huge.png"), 90, 20, 0);
    write_image(&root.join("b/huge2.png"), 20, 95, 0);
    let mut cfg = folder_cfg(&root);
    cfg.min_side = Some(10);
    cfg.max_side = Some(50);
    let splits = load(&cfg, tmp.path()).unwrap();
    assert_eq!(splits.train.len() + splits.test.len(), 8);
    assert_eq!(splits.report.filtered_by_size, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
}

#[test]
fn pets_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("oxford-iiit-pet");
    std::fs::create_dir_all(root.join("annotations")).unwrap();
    let mut trainval = String::from("#Image CLASS-ID SPECIES BREED ID\n");
    let mut test = String::new();
    for (breed, id) in [("Abyssinian", 1), ("american_bulldog", 2)] {
        for i in 1..=4 {
            write_image(&root.join(format!("images/{breed}_{i}.jpg")), 50 + i * 10, 40, id);
            let line = format!("{breed}_{i} {id} 1 1\n");
            if i <= 3 {
                trainval += &line
            } else {
                test += &line
            }
        }
    }
    std::fs::write(root.join("images/Abyssinian_1.mat"), b"stray").unwrap();
    std::fs::write(root.join("annotations/trainval.txt"), trainval).unwrap();
    std::fs::write(root.join("annotations/test.txt"), test).unwrap();
    let mut cfg = cfg("pets");
    cfg.image_size = Some(24);
    let splits = load(&cfg, tmp.path()).unwrap();
    assert_eq!(splits.train.classes, ["Abyssinian", "american_bulldog"]);
    assert_eq!((splits.train.len(), splits.test.len()), (6, 2));
    assert_eq!(splits.train.shape.width, 24);
}

#[test]
fn stats_and_export_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    write_idx(&tmp.path().join("mnist"), 30, true);
    let splits = load(&cfg("mnist"), tmp.path()).unwrap();
    let out = tmp.path().join("exported");
    assert_eq!(cnnlab_data::export_image_folder(&splits.train, &out.join("train")).unwrap(), 30);
    cnnlab_data::export_image_folder(&splits.test, &out.join("test")).unwrap();
    std::fs::write(out.join("train/0/junk.jpg"), b"").unwrap();

    let stats = cnnlab_data::folder_stats(&out.join("train")).unwrap();
    assert_eq!(stats.counts.len(), 10);
    assert_eq!(stats.counts[0], ("0".to_owned(), 3));
    assert_eq!((stats.width.0, stats.width.2, stats.height.0), (3, 3, 4));
    assert_eq!(stats.unreadable.len(), 1);
    assert_eq!(stats.imbalance_ratio, 1.0);

    // PNG is lossless: exported images read back with the same pixels.
    let back = image::open(out.join("test/3/000003.png")).unwrap().to_luma8();
    assert_eq!(splits.test.labels[3], 3);
    assert_eq!(back.as_raw(), splits.test.image(3));
}

#[test]
fn class_counts_make_a_dataset_imbalanced() {
    let tmp = tempfile::tempdir().unwrap();
    write_idx(&tmp.path().join("mnist"), 100, false);
    let mut c = cfg("mnist");
    c.class_counts = [("3".to_owned(), 2), ("7".to_owned(), 5)].into_iter().collect();
    let splits = load(&c, tmp.path()).unwrap();
    assert_eq!(splits.train.class_counts(), [10, 10, 10, 2, 10, 10, 10, 5, 10, 10]);
    assert_eq!(splits.test.len(), 100, "only training is capped");
    c.class_counts = [("cat".to_owned(), 2)].into_iter().collect();
    let err = load(&c, tmp.path()).unwrap_err().to_string();
    assert!(err.starts_with("data.class_counts: no class `cat`"), "{err}");
}

#[test]
fn unknown_imbalance_strategy_is_rejected() {
    let err = toml::from_str::<DataConfig>("dataset = \"mnist\"\n[imbalance]\nstrategy = \"smote\"\n").unwrap_err();
    assert!(err.message().contains("unknown variant `smote`"), "{}", err.message());
    let c: DataConfig =
        toml::from_str("dataset = \"mnist\"\n[imbalance]\nstrategy = \"min_flip\"\nper_class = 100\n").unwrap();
    assert_eq!(c.imbalance, cnnlab_data::Imbalance::MinFlip { per_class: 100 });
}

#[test]
fn shapes_are_generated_deterministically_and_imbalance_can_be_configured() {
    let shape = cnnlab_data::ImageShape { channels: 3, height: 32, width: 32 };
    let a = cnnlab_data::generate_shapes(shape, 20, 7).unwrap();
    let b = cnnlab_data::generate_shapes(shape, 20, 7).unwrap();
    let c = cnnlab_data::generate_shapes(shape, 20, 8).unwrap();
    assert_eq!(a.len(), 160);
    assert_eq!(a.class_counts(), vec![20; 8]);
    assert_eq!(a.classes, cnnlab_data::SHAPES_CLASSES);
    assert_eq!(a.pixels(), b.pixels(), "same seed, same images");
    assert_ne!(a.pixels(), c.pixels(), "another seed, other images");
    // Not blank: every image has a figure of a colour far from its noisy background.
    for i in 0..a.len() {
        let img = a.image(i);
        let (lo, hi) = (img.iter().min().unwrap(), img.iter().max().unwrap());
        assert!(hi - lo > 60, "image {i} is nearly flat");
    }
    let cfg: cnnlab_data::DataConfig = toml::from_str(
        "dataset = \"shapes\"\nimage_size = 16\nchannels = 1\nclass_counts = { smile = 30, star = 100 }",
    )
    .unwrap();
    let splits = cnnlab_data::load(&cfg, std::path::Path::new("/nonexistent")).unwrap();
    assert_eq!(splits.train.shape, cnnlab_data::ImageShape { channels: 1, height: 16, width: 16 });
    let counts = splits.train.class_counts();
    assert_eq!((counts[4], counts[6], counts[0]), (30, 100, cnnlab_data::SHAPES_PER_CLASS));
    assert_eq!(splits.test.len(), cnnlab_data::SHAPES_PER_CLASS / 4 * 8);
}

/// An image size whose decoded dataset cannot fit in memory is one error naming
/// `data.image_size`, the bytes and the machine's memory, before anything is decoded
/// or allocated (not an out-of-memory abort): generated shapes at 4096x4096 need
/// 10,000 x 4096^2 x 3 = 503,316,480,000 bytes; two PNGs of a folder at 300,000.
#[test]
fn a_dataset_too_large_for_memory_is_refused_before_decoding() {
    let cfg: DataConfig = toml::from_str("dataset = \"shapes\"\nimage_size = 4096").unwrap();
    let err = load(&cfg, Path::new("/nonexistent")).unwrap_err().to_string();
    assert!(err.starts_with("data.image_size = 4096: 10000 images of 3x4096x4096 need 503316480000 bytes"), "{err}");
    assert!(err.contains("GiB) of memory") && err.lines().count() == 1, "{err}");

    let dir = tempfile::tempdir().unwrap();
    for class in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        image::GrayImage::new(4, 4).save(dir.path().join(class).join("x.png")).unwrap();
    }
    let text = format!("dataset = \"image-folder\"\npath = \"{}\"\nimage_size = 300000", dir.path().display());
    let cfg: DataConfig = toml::from_str(&text).unwrap();
    let err = load(&cfg, Path::new("/nonexistent")).unwrap_err().to_string();
    assert!(err.starts_with("data.image_size = 300000: 2 images of 3x300000x300000 need"), "{err}");
}

/// File names are data: a class folder and a file whose names are not UTF-8 load, a
/// link to nothing is reported, and the split serializes (lossily) instead of failing.
#[cfg(unix)]
#[test]
fn non_utf8_names_and_dangling_links_load_and_are_reported() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pics");
    let cafe = root.join(OsStr::from_bytes(b"caf\xe9"));
    for i in 0..4 {
        write_image(&cafe.join(format!("{i}.png")), 20, 20, 10);
        write_image(&root.join(format!("dog/{i}.png")), 20, 20, 200);
    }
    write_image(&root.join("dog").join(OsStr::from_bytes(b"\xff\xfe.png")), 20, 20, 90);
    std::os::unix::fs::symlink(root.join("nowhere.png"), root.join("dog/dangling.png")).unwrap();
    let splits = load(&folder_cfg(&root), tmp.path()).unwrap();
    assert_eq!(splits.train.classes, ["caf\u{fffd}", "dog"]);
    assert_eq!(splits.train.len() + splits.test.len(), 9);
    let skipped = &splits.report.skipped;
    assert!(
        skipped.len() == 1 && skipped[0].path.ends_with("dangling.png") && skipped[0].reason.contains("link"),
        "{skipped:?}"
    );
    let json = serde_json::to_string(splits.files.as_ref().unwrap()).unwrap();
    assert!(json.contains("\u{fffd}\u{fffd}.png") && json.contains("caf\u{fffd}/"), "{json}");
    serde_json::to_string(&splits.report.skipped).unwrap();
}

/// Fuzzing the image-folder lister and loader: trees of odd names (dots, spaces,
/// non-UTF-8, no extension), empty folders and files that are not images end in a
/// dataset or an error, never a panic.
#[cfg(unix)]
mod fuzz_folders {
    use super::*;
    use proptest::prelude::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    fn name() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"cat".to_vec()),
            Just(b".hidden".to_vec()),
            Just(b"a b".to_vec()),
            Just(b"caf\xe9".to_vec()),
            Just(b"x.JPG".to_vec()),
            Just(b"y.png".to_vec()),
            Just(b"z.txt".to_vec()),
            Just(b"noext".to_vec()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32),
            ..ProptestConfig::default()
        })]

        #[test]
        fn odd_trees_never_panic(
            entries in proptest::collection::vec((name(), name(), 0u8..4), 0..12),
            size in 1usize..20,
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("pics");
            std::fs::create_dir_all(&root).unwrap();
            for (class, file, kind) in entries {
                // Names collide (a file where a folder was): such a step is skipped.
                let dir = root.join(OsStr::from_bytes(&class));
                if std::fs::create_dir_all(&dir).is_err() {
                    continue;
                }
                let path = dir.join(OsStr::from_bytes(&file));
                let _ = match kind {
                    0 => image::RgbImage::new(10, 12).save(path.with_extension("png")).map_err(|_| ()),
                    1 => std::fs::write(&path, b"").map_err(|_| ()),
                    2 => std::fs::write(&path, b"\x89PNG\r\n\x1a\ngarbage").map_err(|_| ()),
                    _ => std::fs::create_dir_all(&path).map_err(|_| ()),
                };
            }
            let mut cfg = folder_cfg(&root);
            cfg.image_size = Some(size);
            if let Ok(splits) = load(&cfg, tmp.path()) {
                prop_assert!(!splits.train.is_empty());
                prop_assert_eq!(splits.train.pixels().len(), splits.train.len() * splits.train.shape.len());
                serde_json::to_string(&splits.files).unwrap();
                serde_json::to_string(&splits.report.skipped).unwrap();
            }
        }
    }
}
