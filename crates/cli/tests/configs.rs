//! The shipped configs: their summaries match the seeds' parameter totals, and every
//! one loads and trains `--quick`.

use std::path::{Path, PathBuf};

use crate::util::{assert_one_line_error, cnnlab, workspace};

/// The parameter totals of the seeds' networks, exactly as torchsummary / Keras print them.
#[test]
fn summary_prints_the_seeds_totals() {
    let tmp = tempfile::tempdir().unwrap();
    for (config, line) in [
        ("configs/cifar10/seed3-simple.toml", "Trainable params: 52,202"),
        ("configs/cifar10/seed3-final.toml", "Trainable params: 288,778"),
        ("configs/cifar10/seed3-pooling.toml", "Trainable params: 532,298"),
        ("configs/pets/seed2-model1.toml", "Total params: 25,930,789"),
        ("configs/pets/seed2-model2.toml", "Total params: 1,128,997"),
        ("configs/pets/seed2-model3.toml", "Total params: 1,128,997"),
    ] {
        let out = cnnlab(&["summary", config], tmp.path());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{config}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.lines().any(|l| l == line), "{config}: no `{line}` in\n{stdout}");
        assert!(stdout.contains("Forward activations per sample (MB):"), "{stdout}");
    }
    // A shape that cannot work is rejected with the layer's index, before any training.
    let bad = tmp.path().join("bad.toml");
    let text = std::fs::read_to_string(workspace().join("configs/cifar10/seed3-pooling.toml")).unwrap();
    std::fs::write(
        &bad,
        text.replace("{ type = \"flatten\" },", "{ type = \"maxpool\", kernel = 16 },\n{ type = \"flatten\" },"),
    )
    .unwrap();
    let out = cnnlab(&["summary", bad.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "model.layers[8] (maxpool): cannot pool a 8x8 map with kernel 16");
    let out = cnnlab(&["train", bad.to_str().unwrap()], tmp.path());
    assert_eq!(out.status.code(), Some(1));
}

/// `summary` shows what `train` builds: one of a one-vs-rest config's binary
/// networks, with the total of all of them; an image folder with its `image_size` and
/// `--classes` needs no images.
#[test]
fn summary_of_one_vs_rest_and_of_an_unread_folder() {
    let tmp = tempfile::tempdir().unwrap();
    // One-vs-rest trains 42 binary networks: the table is one of them (2 outputs).
    let out = cnnlab(&["summary", "configs/simpsons/seed0-one-vs-rest.toml"], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("42 binary networks (class vs the rest) like this one"), "{stdout}");
    let head = stdout.lines().rfind(|l| l.contains("Linear-")).unwrap();
    assert!(head.contains("[-1, 2]"), "{head}");
    assert!(stdout.contains("All 42 networks: "), "{stdout}");
    // An image folder with its image_size and --classes needs no images (none here).
    let folder = tmp.path().join("folder.toml");
    let text = "[data]\ndataset = \"image-folder\"\npath = \"/nonexistent\"\nimage_size = 64\n\n\
                [model]\nlayers = [{ type = \"flatten\" }, { type = \"linear\" }]\n";
    std::fs::write(&folder, text).unwrap();
    let out = cnnlab(&["summary", folder.to_str().unwrap(), "--classes", "5"], tmp.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Trainable params: 61,445"), "{out:?}");
}

/// The experiment configs under `configs/<group>/` (base files aside), sorted.
fn shipped(group: &str) -> Vec<PathBuf> {
    let dir = workspace().join("configs").join(group);
    let mut configs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| !is_base(p) && !is_tune_file(p))
        .collect();
    configs.sort();
    configs
}

/// A `cnnlab tune` file (a `[tune]` table): checked by `tune --check`, not trained.
fn is_tune_file(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l.trim() == "[tune]"))
}

/// The tune files of `group`.
fn tune_files(group: &str) -> Vec<PathBuf> {
    let dir = workspace().join("configs").join(group);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|f| f.unwrap().path()).filter(|p| is_tune_file(p)).collect();
    files.sort();
    files
}

/// The groups under `configs/`, each tested by one test below.
const GROUPS: [&str; 5] = ["cifar10", "fashion-mnist", "pets", "shapes", "simpsons"];

#[test]
fn every_config_group_is_tested() {
    let mut groups: Vec<String> = std::fs::read_dir(workspace().join("configs"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    groups.sort();
    assert_eq!(groups, GROUPS, "a new folder under configs/ needs its test in crates/cli/tests/configs.rs");
    let total: usize = GROUPS.iter().map(|g| shipped(g).len()).sum();
    assert!(total >= 50, "{total} configs");
}

/// Every config of `group` loads, summarises and `--quick`-trains (or, when its
/// dataset is not on this machine, stops with exit 3 and says so). `CNNLAB_DATA`
/// (default: an empty folder; Fashion-MNIST and shapes are found anyway) points at
/// more datasets. Returns the configs trained.
fn loads_summarises_and_quick_trains(group: &str) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let data = std::env::var_os("CNNLAB_DATA").map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let configs = shipped(group);
    assert!(!configs.is_empty(), "no configs in configs/{group}");
    let (mut trained, mut missing) = (Vec::new(), Vec::new());
    for config in &configs {
        let name = config.strip_prefix(workspace().join("configs")).unwrap().display().to_string();
        let c = config.to_str().unwrap();
        let out = cnnlab(&["summary", c], &data);
        // A config whose model needs the data's shape (image-folder) may need the data.
        if out.status.code() != Some(3) {
            assert!(out.status.success(), "summary {name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let run = tmp.path().join("runs").join(&name);
        let out = cnnlab(&["-q", "train", c, "--quick", "--out", run.to_str().unwrap()], &data);
        match out.status.code() {
            Some(0) => trained.push(name),
            Some(3) => missing.push(name),
            _ => panic!("train --quick {name}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }
    // Tune files: every key of their space exists in the experiment they extend.
    for file in tune_files(group) {
        let out = cnnlab(&["tune", file.to_str().unwrap(), "--check"], &data);
        assert!(out.status.success(), "tune --check {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    }
    eprintln!(
        "{group}: quick-trained {} configs; {} need a dataset not here: {missing:?}",
        trained.len(),
        missing.len()
    );
    trained
}

#[test]
fn every_cifar10_config_loads_summarises_and_quick_trains() {
    loads_summarises_and_quick_trains("cifar10");
}

#[test]
fn every_fashion_mnist_config_loads_summarises_and_quick_trains() {
    let trained = loads_summarises_and_quick_trains("fashion-mnist");
    if Path::new(cnnlab_data::FASHION_MNIST_SYSTEM_DIR).is_dir() {
        assert!(trained.len() >= 15, "{trained:?}");
    }
}

#[test]
fn every_pets_config_loads_summarises_and_quick_trains() {
    loads_summarises_and_quick_trains("pets");
}

#[test]
fn every_shapes_config_loads_summarises_and_quick_trains() {
    let trained = loads_summarises_and_quick_trains("shapes");
    assert_eq!(trained.len(), shipped("shapes").len(), "shapes is built in: every config trains");
}

#[test]
fn every_simpsons_config_loads_summarises_and_quick_trains() {
    loads_summarises_and_quick_trains("simpsons");
}

/// `base*.toml` / `_*.toml` files are shared bases of other configs, not experiments.
fn is_base(path: &Path) -> bool {
    let stem = path.file_stem().unwrap().to_string_lossy();
    stem.starts_with("base") || stem.starts_with('_')
}
