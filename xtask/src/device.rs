//! `cargo xtask device-bundle`: everything the GPU machine needs, in `.device/`.
//!
//! That machine (one H200; its own PyTorch 2.11 + CUDA 13 in `/opt/torch/.venv`; no
//! Rust, no network, at most 64 MiB carried to it) cannot build cnnlab, so the bundle
//! is built here:
//!
//! - `bin/cnnlab` and `bin/cnnlab-torch`, stripped, built against libtorch 2.11.0:
//!   `torch==2.11.0` from PyPI in a second venv, `.venv-device/`. tch 0.26 does not
//!   compile against 2.11's headers (its generated wrappers call ops 2.11 lacks:
//!   `_philox_*`, `_flash_attention_forward_no_dropout_inplace`), so this build uses
//!   tch 0.24, the release made for 2.11, whose API is the same for everything
//!   cnnlab calls: the workspace is copied to `target/device-src/` with
//!   `tch = "=0.24.0"` in its Cargo.toml (a lockfile of its own), and built into
//!   `target/device/`. The binaries' rpath names the device's `torch/lib` first, so
//!   they start there with nothing set;
//! - `data/cifar10-jpg.tar.gz`, `configs/cifar10/{seed3-final,fast94}.toml`,
//!   `ref/torch_ref.py` (the PyTorch side of `cargo xtask bench`) and `gpu-check.sh`
//!   (`xtask/device/gpu-check.sh`), which measures everything in one go.
//!
//! `--local` bundles the workspace's own build instead (libtorch 2.13 from `.venv/`,
//! release, or with `--dev` what `cargo test` built): CI runs
//! `gpu-check.sh --cpu-smoke` from such a bundle so that the script, the configs and
//! the reference cannot rot between the GPU machine's rare visits.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cargo, run_cmd, setup};

/// The GPU machine's PyTorch.
pub(crate) const DEVICE_TORCH: &str = "2.11.0";
/// The tch (and torch-sys) release made for [`DEVICE_TORCH`].
const DEVICE_TCH: &str = "0.24.0";
/// torchvision for that torch (the PyTorch reference's transforms, for `--cpu-smoke` here).
const DEVICE_TORCHVISION: &str = "torchvision==0.26.0";
/// Where the GPU machine's libtorch is.
const DEVICE_TORCH_LIB: &str = "/opt/torch/.venv/lib/python3.12/site-packages/torch/lib";
/// What one call may carry to the GPU machine is 64 MiB, with the repository's files.
const MAX_BUNDLE_BYTES: u64 = 60 * 1024 * 1024;

struct Options {
    local: bool,
    dev: bool,
    out: PathBuf,
    archive: Option<PathBuf>,
}

fn parse(root: &Path, f: &crate::flags::DeviceBundle) -> Result<Options> {
    let out = f.out.clone().unwrap_or_else(|| root.join(".device"));
    let opts = Options { local: f.local, dev: f.dev, out, archive: f.cifar_archive.clone() };
    if opts.dev && !opts.local {
        bail!("device-bundle: --dev goes with --local (the device build is always a release build)");
    }
    Ok(opts)
}

pub(crate) fn run(root: &Path, f: &crate::flags::DeviceBundle) -> Result<()> {
    if f.smoke {
        let alone = !(f.local || f.dev || f.out.is_some() || f.cifar_archive.is_some());
        anyhow::ensure!(alone, "device-bundle --smoke takes no other option (it is --local --dev into target/)");
        return smoke(root);
    }
    let opts = parse(root, f)?;
    let bin = match opts.local {
        true => crate::build_cnnlab(root, opts.dev)?.parent().expect("cnnlab lives in a folder").to_path_buf(),
        false => build_for_device(root)?,
    };
    let size = assemble(root, &opts, &bin)?;
    if !opts.local {
        // `gpu-check.sh --cpu-smoke` here loads the libtorch the binaries were built with.
        let python = root.join(".venv-device/bin/python");
        std::fs::write(opts.out.join("local-python"), python.display().to_string()).context("writing local-python")?;
    }
    eprintln!(
        "xtask: bundle {} is {:.1} MiB (limit {} MiB); on the GPU machine: {}/gpu-check.sh OUTDIR",
        opts.out.display(),
        size as f64 / 1048576.0,
        MAX_BUNDLE_BYTES / 1048576,
        opts.out.strip_prefix(root).unwrap_or(&opts.out).display()
    );
    Ok(())
}

/// CI's check that the bundle works: a `--local --dev` bundle (the binaries the cli
/// tests built) and `gpu-check.sh --cpu-smoke` from it, with the project venv's
/// PyTorch as the reference; its summary must hold every measurement and no error.
pub(crate) fn smoke(root: &Path) -> Result<()> {
    let target = root.join("target");
    let bundle = target.join("device-smoke");
    let local = crate::flags::DeviceBundle {
        local: true,
        dev: true,
        out: Some(bundle.clone()),
        cifar_archive: None,
        smoke: false,
    };
    run(root, &local)?;
    let out = target.join("gpu-check-smoke");
    let _ = std::fs::remove_dir_all(&out);
    let mut check = Command::new(bundle.join("gpu-check.sh"));
    check.arg("--cpu-smoke").arg(&out);
    check.env("CNNLAB_PYTHON", root.join(".venv/bin/python")).env("CNNLAB_WORK", target.join("gpu-check-work"));
    run_cmd(root, &mut check).context("gpu-check.sh --cpu-smoke")?;
    let path = out.join("gpu-check.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let summary: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    check_summary(&summary).with_context(|| format!("{}", path.display()))
}

/// Every measurement `gpu-check.sh` makes is in its summary, and nothing failed.
fn check_summary(s: &serde_json::Value) -> Result<()> {
    if let Some(errors) = s["errors"].as_array().filter(|e| !e.is_empty()) {
        bail!("failed steps: {errors:?}");
    }
    for side in ["cnnlab_host", "cnnlab_device", "pytorch_host"] {
        let rate = s["throughput_seed3_final"][side]["images_per_sec"].as_f64();
        if !rate.is_some_and(|r| r > 0.0) {
            bail!("no seed3-final images/s for {side}");
        }
    }
    if s["throughput_seed3_final"]["cnnlab_host"]["ratio_to_pytorch"].as_f64().is_none() {
        bail!("no cnnlab / PyTorch ratio");
    }
    for precision in ["fp32", "bf16"] {
        let f = &s["fast94"][precision];
        let acc = f["accuracy_mean"].as_f64();
        if f["runs"].as_u64() < Some(2) || !acc.is_some_and(|a| (0.0..=1.0).contains(&a)) {
            bail!("fast94 {precision}: expected at least 2 runs with a test accuracy, got {f}");
        }
        if !f["seconds_mean"].as_f64().is_some_and(|t| t > 0.0) || !f["peak_mib_max"].as_f64().is_some_and(|m| m > 0.0)
        {
            bail!("fast94 {precision}: no wall time or peak memory in {f}");
        }
    }
    Ok(())
}

/// `.venv-device/` with torch 2.11 (and torchvision, Pillow and numpy for the
/// reference script's `--cpu-smoke` run here), then a release build against it in
/// `target/device/`. Returns the folder holding the binaries.
fn build_for_device(root: &Path) -> Result<PathBuf> {
    let venv = root.join(".venv-device");
    let torch = setup::ensure_torch(root, &venv, DEVICE_TORCH)?;
    let python = venv.join("bin").join("python");
    let probe = Command::new(&python).args(["-c", "import torchvision, PIL, numpy"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        setup::pip_install(root, &python, &["--no-deps", DEVICE_TORCHVISION, "pillow", "numpy"])
            .context("installing the PyTorch reference's packages into .venv-device")?;
    }
    let src = device_workspace(root)?;
    let target = root.join("target").join("device");
    let mut build = cargo();
    build.args(["build", "--release", "-p", "cnnlab-cli", "--target-dir"]).arg(&target);
    // An explicit LIBTORCH wins over .cargo/config.toml's (which names .venv's 2.13).
    build.env("LIBTORCH", &torch).env("LIBTORCH_CXX11_ABI", "1");
    build.env("CNNLAB_EXTRA_RPATH", DEVICE_TORCH_LIB);
    run_cmd(&src, &mut build).with_context(|| format!("building cnnlab against libtorch {DEVICE_TORCH}"))?;
    Ok(target.join("release"))
}

/// `target/device-src/`: the workspace's manifests and sources with tch and torch-sys
/// pinned to [`DEVICE_TCH`]. Refreshed on every call (sources are small; unchanged
/// files keep their times, so cargo rebuilds only what changed).
fn device_workspace(root: &Path) -> Result<PathBuf> {
    let src = root.join("target").join("device-src");
    std::fs::create_dir_all(&src).with_context(|| format!("creating {}", src.display()))?;
    for dir in ["crates", "xtask"] {
        sync_tree(&root.join(dir), &src.join(dir))?;
    }
    sync_file(&root.join("Cargo.lock"), &src.join("Cargo.lock"))?;
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let pinned = pin_tch(&manifest)?;
    let path = src.join("Cargo.toml");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(pinned.as_str()) {
        std::fs::write(&path, pinned).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(src)
}

/// The workspace manifest with `tch` and `torch-sys` set to `=`[`DEVICE_TCH`].
fn pin_tch(manifest: &str) -> Result<String> {
    let mut found = 0;
    let lines: Vec<String> = manifest
        .lines()
        .map(|line| match line.split_once(" = ") {
            Some((key @ ("tch" | "torch-sys"), _)) => {
                found += 1;
                format!("{key} = \"={DEVICE_TCH}\"")
            }
            _ => line.to_owned(),
        })
        .collect();
    if found != 2 {
        bail!("Cargo.toml: expected one `tch = ...` and one `torch-sys = ...` line in [workspace.dependencies]");
    }
    Ok(lines.join("\n") + "\n")
}

/// Fills the bundle folder and returns its size in bytes.
fn assemble(root: &Path, opts: &Options, bin: &Path) -> Result<u64> {
    let out = &opts.out;
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("removing the old bundle {}", out.display()))?;
    }
    for dir in ["bin", "data", "configs/cifar10", "ref"] {
        std::fs::create_dir_all(out.join(dir)).with_context(|| format!("creating {}", out.join(dir).display()))?;
    }
    for name in ["cnnlab", "cnnlab-torch"] {
        let to = out.join("bin").join(name);
        copy(&bin.join(name), &to)?;
        run_cmd(root, Command::new("strip").arg(&to)).context("stripping the binaries (binutils' strip)")?;
    }
    for name in ["seed3-final.toml", "fast94.toml"] {
        copy(&root.join("configs/cifar10").join(name), &out.join("configs/cifar10").join(name))?;
    }
    copy(&root.join("xtask/bench/torch_ref.py"), &out.join("ref/torch_ref.py"))?;
    copy(&root.join("xtask/device/gpu-check.sh"), &out.join("gpu-check.sh"))?;
    let archive = out.join("data/cifar10-jpg.tar.gz");
    match find_archive(root, opts) {
        Some(found) => copy(&found, &archive)?,
        None if opts.local => {
            eprintln!("xtask: no CIFAR-10 JPEG archive found: bundling a generated 10-class stand-in (smoke runs only)");
            generated_archive(root, &archive)?;
        }
        None => bail!(
            "the CIFAR-10 JPEG archive is missing: pass --cifar-archive FILE, or put cifar10-jpg.tar.gz in ../shared/data/ or the data dir, or extract it into <data dir>/cifar10-jpg/"
        ),
    }
    let size = size_of(out)?;
    if size > MAX_BUNDLE_BYTES {
        bail!(
            "the bundle {} is {:.1} MiB, over the {} MiB that can travel",
            out.display(),
            size as f64 / 1048576.0,
            MAX_BUNDLE_BYTES >> 20
        );
    }
    Ok(size)
}

/// `--cifar-archive`, `$CNNLAB_CIFAR_ARCHIVE`, `../shared/data/`, `<data dir>/` (the
/// archive, or the extracted folder, archived again).
fn find_archive(root: &Path, opts: &Options) -> Option<PathBuf> {
    let data = std::env::var_os("CNNLAB_DATA").map_or_else(|| root.join("data"), PathBuf::from);
    let candidates = [
        opts.archive.clone(),
        std::env::var_os("CNNLAB_CIFAR_ARCHIVE").map(PathBuf::from),
        Some(root.join("../shared/data/cifar10-jpg.tar.gz")),
        Some(data.join("cifar10-jpg.tar.gz")),
    ];
    if let Some(found) = candidates.into_iter().flatten().find(|p| p.is_file()) {
        return Some(found);
    }
    let folder = data.join("cifar10-jpg");
    if !folder.join("test").is_dir() {
        return None;
    }
    let archive = root.join("target").join("cifar10-jpg.tar.gz");
    let mut tar = Command::new("tar");
    tar.arg("-czf").arg(&archive).arg("-C").arg(&data).args(["--exclude", ".cnnlab-cache", "cifar10-jpg"]);
    run_cmd(root, &mut tar).ok().map(|()| archive)
}

/// A CIFAR-shaped stand-in for CI machines without the archive: 10 classes of 32x32
/// JPEGs (a class is a colour, with noise), 60 train and 20 test images each, written
/// with the project venv's Pillow.
fn generated_archive(root: &Path, archive: &Path) -> Result<()> {
    let dir = root.join("target").join("device-smoke-data");
    let _ = std::fs::remove_dir_all(&dir);
    let script = r#"
import os, sys
import numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(0)
for split, n in (("train", 60), ("test", 20)):
    for c in range(10):
        d = os.path.join(root, "cifar10-jpg", split, f"class{c}")
        os.makedirs(d, exist_ok=True)
        base = np.array([(c * 25) % 256, (c * 85) % 256, (c * 145) % 256], dtype=np.float32)
        for i in range(n):
            px = np.clip(base + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(os.path.join(d, f"{i:04d}.jpg"), quality=90)
"#;
    let python = root.join(".venv").join("bin").join("python");
    run_cmd(root, Command::new(&python).args(["-c", script]).arg(&dir)).context("generating the stand-in images")?;
    run_cmd(root, Command::new("tar").arg("-czf").arg(archive).arg("-C").arg(&dir).arg("cifar10-jpg"))
}

/// Makes `to` hold what `from` holds: changed and new files written, files and folders
/// `from` no longer has removed, identical files left alone.
fn sync_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut wanted = std::collections::HashSet::new();
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        wanted.insert(entry.file_name());
        match entry.file_type()?.is_dir() {
            true => sync_tree(&src, &dst)?,
            false => sync_file(&src, &dst)?,
        }
    }
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        if !wanted.contains(&entry.file_name()) {
            let path = entry.path();
            let gone = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            gone.with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

fn sync_file(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    if std::fs::read(to).ok().as_ref() != Some(&bytes) {
        std::fs::write(to, &bytes).with_context(|| format!("writing {}", to.display()))?;
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn size_of(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { size_of(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let root = Path::new("/w");
        let bundle = |args: &[&str]| -> Result<Options> {
            match crate::flags::parse(&[&["device-bundle"], args].concat())?.subcommand {
                crate::flags::XtaskCmd::DeviceBundle(f) => parse(root, &f),
                _ => unreachable!("a device-bundle command"),
            }
        };
        let o = bundle(&[]).unwrap();
        assert!(!o.local && !o.dev && o.out == Path::new("/w/.device"));
        let o = bundle(&["--local", "--dev", "--out", "x"]).unwrap();
        assert!(o.local && o.dev && o.out == Path::new("x"));
        let e = bundle(&["--dev"]).err().unwrap();
        assert!(e.to_string().contains("--dev goes with --local"), "{e}");
        let e = bundle(&["--gpu"]).err().unwrap();
        assert!(e.to_string().contains("--gpu"), "{e}");
    }

    #[test]
    fn a_summary_missing_a_measurement_is_an_error() {
        let fast = |runs: u64| serde_json::json!({"runs": runs, "accuracy_mean": 0.4, "seconds_mean": 3.0, "peak_mib_max": 120});
        let rate = serde_json::json!({"images_per_sec": 100.0, "ratio_to_pytorch": 1.2});
        let good = serde_json::json!({
            "errors": [],
            "throughput_seed3_final": {"cnnlab_host": rate, "cnnlab_device": rate, "pytorch_host": {"images_per_sec": 80.0}},
            "fast94": {"fp32": fast(2), "bf16": fast(2)},
        });
        check_summary(&good).unwrap();
        let mut bad = good.clone();
        bad["errors"] = serde_json::json!([{"step": "info", "error": "cnnlab info failed"}]);
        assert!(check_summary(&bad).unwrap_err().to_string().contains("cnnlab info failed"));
        let mut bad = good.clone();
        bad["fast94"]["bf16"] = fast(1);
        assert!(check_summary(&bad).unwrap_err().to_string().contains("fast94 bf16"));
        let mut bad = good;
        bad["throughput_seed3_final"]["cnnlab_device"] = serde_json::json!({});
        assert!(check_summary(&bad).unwrap_err().to_string().contains("cnnlab_device"));
    }

    #[test]
    fn sync_tree_writes_only_what_changed() {
        let dir = std::env::temp_dir().join(format!("xtask-sync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (from, to) = (dir.join("from"), dir.join("to"));
        std::fs::create_dir_all(from.join("sub")).unwrap();
        std::fs::write(from.join("same.rs"), "a").unwrap();
        std::fs::write(from.join("sub/edited.rs"), "old").unwrap();
        sync_tree(&from, &to).unwrap();
        let stamp = |p: &str| std::fs::metadata(to.join(p)).unwrap().modified().unwrap();
        let (same, edited) = (stamp("same.rs"), stamp("sub/edited.rs"));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(from.join("sub/edited.rs"), "new").unwrap();
        std::fs::write(to.join("stale.rs"), "x").unwrap();
        sync_tree(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(to.join("sub/edited.rs")).unwrap(), "new");
        assert!(stamp("sub/edited.rs") > edited, "an edited file gets a new time");
        assert_eq!(stamp("same.rs"), same, "an unchanged file keeps its time");
        assert!(!to.join("stale.rs").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pins_tch_in_the_real_manifest() {
        let manifest = std::fs::read_to_string(crate::workspace_root().join("Cargo.toml")).unwrap();
        let pinned = pin_tch(&manifest).unwrap();
        assert!(pinned.contains("\ntch = \"=0.24.0\"\n") && pinned.contains("\ntorch-sys = \"=0.24.0\"\n"), "{pinned}");
        assert_eq!(pinned.lines().count(), manifest.lines().count());
        assert!(pin_tch("[workspace]\n").is_err());
    }
}
