//! `cargo xtask bench`: cnnlab against PyTorch + torchvision on this machine, in one run.
//!
//! Training throughput (images/s, end to end: decoded cache -> augmentation ->
//! forward/backward/step) of `cnnlab train --max-batches N` (the `images_per_sec` of
//! its history.csv) against `xtask/bench/torch_ref.py train` (a 2-worker DataLoader with
//! the same network, batch size and augmentation), and the data pipeline alone (JPEG
//! decode + resize + augmentation: cnnlab-data's `pipeline_rate` example against
//! PIL/torchvision in a 2-worker DataLoader). Each comparison is written to
//! `target/bench/<name>.json`; a table with the ratios is printed at the end.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::{cargo, run_cmd, show};

/// torchvision matching the torch that `setup` installs.
const TORCHVISION: &str = "torchvision==0.28.0";

struct Options {
    data_dir: PathBuf,
    quick: bool,
    /// `--only TEXT`: only the benchmarks whose name contains TEXT.
    only: Option<String>,
}

impl Options {
    fn selected(&self, name: &str) -> bool {
        self.only.as_ref().is_none_or(|o| name.contains(o.as_str()))
    }
}

fn parse(args: &[String]) -> Result<Options> {
    let mut opts = Options {
        data_dir: std::env::var_os("CNNLAB_DATA").map_or_else(|| PathBuf::from("data"), PathBuf::from),
        quick: false,
        only: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data-dir" => opts.data_dir = it.next().context("--data-dir needs a folder")?.into(),
            "--quick" => opts.quick = true,
            "--only" => opts.only = Some(it.next().context("--only needs a benchmark name (or part of one)")?.clone()),
            other => bail!("bench: unknown option `{other}`"),
        }
    }
    Ok(opts)
}

/// One comparison row.
struct Row {
    name: String,
    what: String,
    cnnlab: f64,
    pytorch: Option<f64>,
    goal: Option<f64>,
}

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    crate::setup::run(root)?;
    let python = root.join(".venv").join("bin").join("python");
    ensure_torchvision(root, &python)?;
    run_cmd(root, cargo().args(["build", "--release", "-p", "cnnlab-cli"]))?;
    run_cmd(root, cargo().args(["build", "--release", "-p", "cnnlab-data", "--example", "pipeline_rate"]))?;
    let out = root.join("target").join("bench");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let data = if opts.data_dir.is_absolute() { opts.data_dir.clone() } else { root.join(&opts.data_dir) };
    let cifar = data.join("cifar10-jpg");
    let pets = data.join("oxford-pets-sample");
    for (dir, name) in [(&cifar, "CIFAR-10 JPEG copy"), (&pets, "Oxford-IIIT Pet sample")] {
        if !dir.is_dir() {
            bail!(
                "{} is missing: extract the {name} of ../shared/data (see its README) into {}",
                dir.display(),
                data.display()
            );
        }
    }
    let q = |full: usize, quick: usize| if opts.quick { quick } else { full };
    let script = root.join("xtask").join("bench").join("torch_ref.py");
    let mut rows = Vec::new();

    // Training, end to end.
    let device_cfg = out.join("seed3-final-device.toml");
    std::fs::write(
        &device_cfg,
        format!(
            "# seed3-final with the device-resident feed (written by cargo xtask bench)\nextends = \"{}\"\n\n[train]\npipeline = \"device\"\n",
            root.join("configs/cifar10/seed3-final.toml").display()
        ),
    )?;
    // Fine-tuning EfficientNet-Lite0 with everything trainable (freeze_epochs = 0), from
    // the real weights (installed into the data dir when missing).
    if opts.selected("train_finetune_lite0") {
        crate::setup::reference_packages(root)?;
        if !crate::download::lite0_weights(&data).exists() {
            let args = ["efficientnet-lite0".to_owned(), "--data-dir".to_owned(), data.display().to_string()];
            crate::download::run(root, &args)?;
        }
    }
    let finetune_cfg = out.join("finetune-lite0-unfrozen.toml");
    std::fs::write(
        &finetune_cfg,
        format!(
            "# finetune-lite0 with the backbone trainable from the start (written by cargo xtask bench)\nextends = \"{}\"\n\n[train]\nfreeze_epochs = 0\n",
            root.join("configs/pets/finetune-lite0.toml").display()
        ),
    )?;
    let trainings = [
        (
            "train_finetune_lite0",
            "EfficientNet-Lite0 fine-tuning 224x224, seed 002 augmentation, batch 32, 2 epochs",
            finetune_cfg,
            "finetune-lite0",
            q(10, 3),
            &pets,
            None,
        ),
        (
            "train_seed3_final",
            "seed3-final 32x32, pad-crop-flip, batch 64",
            root.join("configs/cifar10/seed3-final.toml"),
            "seed3-final",
            q(200, 40),
            &cifar,
            Some(1.3),
        ),
        (
            "train_seed3_final_device",
            "seed3-final, device-resident feed",
            device_cfg,
            "seed3-final",
            q(200, 40),
            &cifar,
            Some(1.3),
        ),
        (
            "train_fast94",
            "airbench-style fast94, device feed, batch 1024",
            root.join("configs/cifar10/fast94.toml"),
            "fast94",
            q(6, 2),
            &cifar,
            None,
        ),
        (
            "train_seed2_model3",
            "seed2-model3 224x224, seed 002 augmentation, batch 32",
            root.join("configs/pets/seed2-model4.toml"),
            "seed2-model3",
            q(9, 3),
            &pets,
            Some(1.3),
        ),
    ];
    for (name, what, config, task, batches, dataset, goal) in trainings {
        if !opts.selected(name) {
            continue;
        }
        // The fine-tuning row runs two epochs a side (over a minute each on 2 cores):
        // cnnlab reports its second epoch, PyTorch the whole run.
        let epochs = if task == "finetune-lite0" { 2 } else { 1 };
        eprintln!("\nxtask bench: {name} ({batches} batches x {epochs} epochs)");
        let run_dir = out.join("runs").join(name);
        let _ = std::fs::remove_dir_all(&run_dir);
        let mut cmd = Command::new(root.join("target/release/cnnlab"));
        cmd.args(["-q", "train"]).arg(&config).args(["--epochs", &epochs.to_string()]);
        cmd.args(["--max-batches", &batches.to_string()]);
        cmd.arg("--out").arg(&run_dir).arg("--data-dir").arg(&data);
        run_cmd(root, &mut cmd)?;
        let ours = crate::train_all::run_state(&root.join("target/release/cnnlab"), &run_dir)?
            .last_images_per_sec
            .with_context(|| format!("{}: no epoch in its history", run_dir.display()))?;
        let images = if task.starts_with("seed2") || task.starts_with("finetune") {
            dataset.join("images")
        } else {
            dataset.join("train")
        };
        let theirs = if name.ends_with("_device") {
            rows.iter().find(|r: &&Row| r.name == "train_seed3_final").and_then(|r| r.pytorch)
        } else {
            let mut cmd = Command::new(&python);
            cmd.arg(&script).args(["train", task]).arg(&images).args(["--batches", &(batches * epochs).to_string()]);
            cmd.args(["--limit", &q(20_000, 4_000).to_string()]);
            Some(json_rate(root, &mut cmd)?)
        };
        rows.push(Row { name: name.into(), what: what.into(), cnnlab: ours, pytorch: theirs, goal });
    }

    // The data pipeline alone.
    let example = root.join("target/release/examples/pipeline_rate");
    let pipelines = [
        (
            "pipeline_pets224",
            "JPEG decode + resize to 224 + seed 002 augmentation",
            "pets224",
            pets.join("images"),
            q(0, 0),
        ),
        ("pipeline_cifar32", "JPEG decode (32x32) + pad-crop-flip", "cifar32", cifar.join("train"), q(20_000, 5_000)),
    ];
    for (name, what, task, dir, limit) in pipelines {
        if !opts.selected(name) {
            continue;
        }
        eprintln!("\nxtask bench: {name}");
        let mut cmd = Command::new(&example);
        cmd.arg(task).arg(&dir);
        let mut theirs = Command::new(&python);
        theirs.arg(&script).args(["pipeline", task]).arg(&dir);
        if limit > 0 {
            cmd.arg(limit.to_string());
            theirs.args(["--limit", &limit.to_string()]);
        }
        let ours = json_rate(root, &mut cmd)?;
        let pytorch = json_rate(root, &mut theirs)?;
        rows.push(Row { name: name.into(), what: what.into(), cnnlab: ours, pytorch: Some(pytorch), goal: Some(2.0) });
    }

    let machine = machine();
    let mut table = format!(
        "\n{:<26} {:>12} {:>12} {:>7} {:>6}  what\n",
        "benchmark", "cnnlab img/s", "torch img/s", "ratio", "goal"
    );
    for r in &rows {
        let ratio = r.pytorch.map(|p| r.cnnlab / p);
        let json = json!({
            "name": r.name,
            "what": r.what,
            "cnnlab_images_per_sec": r.cnnlab,
            "pytorch_images_per_sec": r.pytorch,
            "ratio": ratio,
            "goal_ratio": r.goal,
            "quick": opts.quick,
            "machine": machine,
        });
        let path = out.join(format!("{}.json", r.name));
        std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        table += &format!(
            "{:<26} {:>12.0} {:>12} {:>7} {:>6}  {}\n",
            r.name,
            r.cnnlab,
            r.pytorch.map_or("-".into(), |p| format!("{p:.0}")),
            ratio.map_or("-".into(), |x| format!("{x:.2}x")),
            r.goal.map_or("-".into(), |g| format!(">={g}x")),
            r.what
        );
    }
    table += &format!("\nmachine: {machine}\nJSON: {}\n", out.display());
    std::fs::write(out.join("table.txt"), &table)?;
    print!("{table}");
    Ok(())
}

/// Runs a command that prints one JSON line with `images_per_sec`.
fn json_rate(root: &Path, cmd: &mut Command) -> Result<f64> {
    let shown = show(cmd);
    eprintln!("$ {shown}");
    let output = cmd.current_dir(root).output().with_context(|| format!("could not start `{shown}`"))?;
    if !output.status.success() {
        bail!("`{shown}` failed ({}):\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line =
        stdout.lines().rev().find(|l| l.starts_with('{')).with_context(|| format!("`{shown}` printed no JSON"))?;
    eprintln!("{line}");
    let value: Value = serde_json::from_str(line).with_context(|| format!("`{shown}`: bad JSON {line}"))?;
    value["images_per_sec"].as_f64().with_context(|| format!("`{shown}`: no images_per_sec in {line}"))
}

/// torchvision, Pillow and numpy in the project's venv (the reference script needs them).
fn ensure_torchvision(root: &Path, python: &Path) -> Result<()> {
    let check = Command::new(python).args(["-c", "import torchvision, PIL, numpy"]).output();
    if check.is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    // --no-deps: torchvision must not replace the torch that libtorch links against.
    run_cmd(
        root,
        Command::new(python).args(["-m", "pip", "install", "--disable-pip-version-check", "--no-deps", TORCHVISION]),
    )?;
    run_cmd(root, Command::new(python).args(["-m", "pip", "install", "--disable-pip-version-check", "pillow", "numpy"]))
        .context("installing the reference script's packages into .venv")
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}")
}
