//! Datasets larger than memory (the decode cache mapped as the dataset, trained inside
//! a memory cgroup smaller than the cache) and with more than 256 classes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::util::{assert_ok, cnnlab, command_in_cgroup, history_without_timing, read_json};

/// A memory cgroup of `limit` bytes (cgroup v1's memory controller, or v2 where the
/// memory controller is delegated), removed when dropped.
struct MemoryCgroup {
    dir: PathBuf,
    v1: bool,
}

impl MemoryCgroup {
    fn new(limit: u64) -> MemoryCgroup {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("cnnlab-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
        let root = if v1 { PathBuf::from("/sys/fs/cgroup/memory") } else { PathBuf::from("/sys/fs/cgroup") };
        let dir = root.join(name);
        std::fs::create_dir(&dir).unwrap_or_else(|e| {
            panic!("this test gives cnnlab a memory limit through a cgroup and needs to create {}: {e}", dir.display())
        });
        let file = if v1 { "memory.limit_in_bytes" } else { "memory.max" };
        std::fs::write(dir.join(file), limit.to_string()).unwrap();
        MemoryCgroup { dir, v1 }
    }

    /// How many times the group's memory reached its limit (and the kernel reclaimed).
    fn limit_hits(&self) -> u64 {
        let read = |file: &str| std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        let hits = if self.v1 {
            read("memory.failcnt").trim().parse().ok()
        } else {
            read("memory.events").lines().find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())
        };
        hits.unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `classes` class folders of `per_class` smooth `side x side` PNGs each, every image
/// different.
fn image_folder(root: &Path, classes: usize, per_class: usize, side: u32) {
    (0..classes * per_class).into_par_iter().for_each(|k| {
        let (c, i) = (k / per_class, k % per_class);
        let dir = root.join(format!("c{c:04}"));
        std::fs::create_dir_all(&dir).unwrap();
        let img = image::RgbImage::from_fn(side, side, |x, y| {
            image::Rgb([
                ((x * 2 + i as u32 * 3) % 256) as u8,
                ((y * 2 + c as u32 * 37) % 256) as u8,
                ((x + y + (c * 11 + i * 5) as u32) % 256) as u8,
            ])
        });
        img.save(dir.join(format!("{i:04}.png"))).unwrap();
    });
}

fn config(dir: &Path, root: &Path, side: u32, cache: bool, epochs: usize) -> PathBuf {
    let path = dir.join(format!("big-{cache}.toml"));
    let text = format!(
        "[data]\ndataset = \"image-folder\"\npath = \"{}\"\nimage_size = {side}\ntest_fraction = 0.1\ncache = {cache}\n\n\
         [model]\nlayers = [{{ type = \"avgpool\", kernel = 4 }}, {{ type = \"flatten\" }}, {{ type = \"linear\" }}]\n\n\
         [train]\nepochs = {epochs}\nbatch_size = 64\neval_batch_size = 64\noptimizer = \"sgd\"\nlr = 0.05\nseed = 0\ndevice = \"cpu\"\n",
        root.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The acceptance test of datasets larger than memory: a decode cache larger than the
/// memory limit of the cgroup cnnlab runs in is built (decoded a chunk at a time,
/// never all in memory) and then trained from, mapped, without the kernel killing it,
/// although the limit was reached (the page cache reclaimed); the history equals that
/// of the same data decoded into memory without a limit.
#[test]
fn a_cache_larger_than_the_memory_limit_trains_as_in_memory() {
    // cnnlab's own memory (libtorch, the batches, glibc's arenas) is about 290 MB here.
    const LIMIT: u64 = 400 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("big");
    // 4 x 2500 images of 128x128x3: 491 MB decoded, the train split's cache alone
    // larger than the limit.
    image_folder(&root, 4, 2500, 128);
    let data = tmp.path().join("data");

    let cgroup = MemoryCgroup::new(LIMIT);
    let mapped = tmp.path().join("mapped");
    let config_mapped = config(tmp.path(), &root, 128, true, 2);
    let out = command_in_cgroup(&data, &cgroup.dir)
        .args(["train", config_mapped.to_str().unwrap(), "--out", mapped.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "killed or failed under a {LIMIT}-byte limit: {:?} {stderr}", out.status);
    assert!(stderr.contains("mapped from the decode cache"), "{stderr}");
    let cache: u64 =
        std::fs::read_dir(data.join(".cnnlab-cache")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(cache > LIMIT, "the caches ({cache} bytes) are larger than the limit ({LIMIT})");
    assert!(cgroup.limit_hits() > 0, "the limit held: the kernel had to reclaim");

    let in_memory = tmp.path().join("in-memory");
    let config_memory = config(tmp.path(), &root, 128, false, 2);
    assert_ok(&cnnlab(&["-q", "train", config_memory.to_str().unwrap(), "--out", in_memory.to_str().unwrap()], &data));
    assert_eq!(history_without_timing(&mapped), history_without_timing(&in_memory));
    assert_eq!(
        read_json(&mapped.join("metrics.json"))["accuracy"],
        read_json(&in_memory.join("metrics.json"))["accuracy"]
    );
}

/// 1,000 classes (labels past 255): a folder of 1,000 class folders trains through the
/// decode cache, its run lists the 1,000 classes, its predictions name classes past
/// the 256th, `predict` names one, and `report` reports the run.
#[test]
fn a_thousand_classes_train_predict_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("k1000");
    image_folder(&root, 1000, 3, 8);
    let config = tmp.path().join("k1000.toml");
    let text = format!(
        "[data]\ndataset = \"image-folder\"\npath = \"{}\"\nimage_size = 8\ntest_fraction = 0.34\ncache = true\n\n\
         [model]\nlayers = [{{ type = \"flatten\" }}, {{ type = \"linear\" }}]\n\n\
         [train]\nepochs = 2\nbatch_size = 100\noptimizer = \"adam\"\nlr = 0.01\nseed = 0\ndevice = \"cpu\"\n",
        root.display()
    );
    std::fs::write(&config, text).unwrap();
    let runs = tmp.path().join("runs");
    let run = runs.join("k1000");
    let out = cnnlab(&["-q", "train", config.to_str().unwrap(), "--out", run.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let classes: Vec<String> = serde_json::from_value(read_json(&run.join("classes.json"))).unwrap();
    assert_eq!(classes.len(), 1000);
    assert_eq!(classes[999], "c0999");
    let predictions = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    assert_eq!(
        predictions.lines().next().unwrap().split(',').count(),
        3 + 1000 + 1,
        "file, y_true, y_pred, p_<class>..., sha"
    );
    let mut truths: Vec<&str> = predictions.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
    truths.dedup();
    assert_eq!(truths.len(), 1000, "every class has test images");
    assert!(truths.contains(&"c0999") && truths.contains(&"c0300"), "classes past the 256th are in the test split");
    let metrics = read_json(&run.join("metrics.json"));
    assert_eq!(metrics["confusion_matrix"].as_array().unwrap().len(), 1000);

    let image = root.join("c0777/0000.png");
    let out = cnnlab(&["predict", "--run", run.to_str().unwrap(), "--top", "3", image.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let top: Vec<&str> = stdout.lines().skip(3).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(top.len(), 3, "{stdout}");
    assert!(top.iter().all(|c| classes.iter().any(|k| k == c)), "class names: {stdout}");

    let out = cnnlab(&["-q", "report", runs.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let report = std::fs::read_to_string(runs.join("REPORT.md")).unwrap();
    assert!(report.contains("k1000"), "{report}");
}
