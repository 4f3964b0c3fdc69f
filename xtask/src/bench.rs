//! `cargo xtask bench`: cnnlab against PyTorch + torchvision on this machine, in one run.
//!
//! Training throughput (images/s, end to end: decoded cache -> augmentation ->
//! forward/backward/step) of `cnnlab train --max-batches N` (the `images_per_sec` of
//! its history.csv) against `xtask/bench/torch_ref.py train` (a 2-worker DataLoader with
//! the same network, batch size and augmentation), and the data pipeline alone (JPEG
//! decode + resize + augmentation: cnnlab-data's `pipeline_rate` example against
//! PIL/torchvision in a 2-worker DataLoader), and inference of exported models
//! (`predict_rate` against onnxruntime on the run's `cnnlab export`, the `inference_*`
//! rows, whose reference column is onnxruntime's). Each comparison is written to
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
    /// `--repeats N`: each side of each row measured N times, alternating (the table
    /// shows the median ratio and the spread of the repeats' ratios).
    repeats: usize,
}

impl Options {
    fn selected(&self, name: &str) -> bool {
        self.only.as_ref().is_none_or(|o| name.contains(o.as_str()))
    }

    fn batches(&self, full: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

fn parse(f: &crate::flags::Bench) -> Result<Options> {
    let repeats = f.repeats.unwrap_or(1);
    anyhow::ensure!(repeats >= 1, "--repeats: `{repeats}` is not a whole number of at least 1");
    let data_dir = f.data_dir.clone().or_else(|| std::env::var_os("CNNLAB_DATA").map(PathBuf::from));
    Ok(Options {
        data_dir: data_dir.unwrap_or_else(|| PathBuf::from("data")),
        quick: f.quick,
        only: f.only.clone(),
        repeats,
    })
}

/// One comparison row: every repeat's images/s on each side (PyTorch's in the same order).
struct Row {
    name: String,
    what: String,
    cnnlab: Vec<f64>,
    /// The reference's: PyTorch's, or onnxruntime's for the inference rows.
    pytorch: Vec<f64>,
    goal: Option<f64>,
}

impl Row {
    /// Each repeat's ratio cnnlab / PyTorch, sorted.
    fn ratios(&self) -> Vec<f64> {
        let mut r: Vec<f64> = self.cnnlab.iter().zip(&self.pytorch).map(|(c, p)| c / p).collect();
        r.sort_by(f64::total_cmp);
        r
    }
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// What every benchmark needs: paths, the built binaries, the datasets.
struct Bench {
    root: PathBuf,
    opts: Options,
    python: PathBuf,
    /// The release `cnnlab`.
    cnnlab: PathBuf,
    script: PathBuf,
    out: PathBuf,
    data: PathBuf,
    cifar: PathBuf,
    pets: PathBuf,
}

pub(crate) fn run(root: &Path, f: &crate::flags::Bench) -> Result<()> {
    let bench = prepare(root, parse(f)?)?;
    let mut rows = bench.trainings()?;
    rows.extend(bench.pipelines()?);
    rows.extend(bench.inference()?);
    bench.write_table(&rows)
}

/// Set-up, release builds and the datasets' presence.
fn prepare(root: &Path, opts: Options) -> Result<Bench> {
    crate::setup::run(root)?;
    let python = root.join(".venv").join("bin").join("python");
    ensure_torchvision(root, &python)?;
    let cnnlab = crate::build_cnnlab(root, false)?;
    run_cmd(root, cargo().args(["build", "--release", "-p", "cnnlab-data", "--example", "pipeline_rate"]))?;
    run_cmd(root, cargo().args(["build", "--release", "-p", "cnnlab-train", "--example", "predict_rate"]))?;
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
    let script = root.join("xtask").join("bench").join("torch_ref.py");
    Ok(Bench { root: root.to_owned(), opts, python, cnnlab, script, out, data, cifar, pets })
}

/// One training row: a config trained `batches` batches a side with cnnlab and torch_ref.py.
struct Training<'a> {
    name: &'a str,
    what: &'a str,
    config: PathBuf,
    /// torch_ref.py's task name.
    task: &'a str,
    batches: usize,
    dataset: &'a Path,
    goal: Option<f64>,
}

impl Bench {
    /// Training, end to end.
    fn trainings(&self) -> Result<Vec<Row>> {
        let root = &self.root;
        let q = |full: usize, quick: usize| self.opts.batches(full, quick);
        let device_cfg = self.variant(
            "seed3-final-device.toml",
            "seed3-final with the device-resident feed",
            "configs/cifar10/seed3-final.toml",
            "pipeline = \"device\"",
        )?;
        // Fine-tuning EfficientNet-Lite0 with everything trainable (freeze_epochs = 0),
        // from the real weights (installed into the data dir when missing).
        if self.opts.selected("train_finetune_lite0") {
            crate::setup::reference_packages(root)?;
            if !crate::download::lite0_weights(&self.data).exists() {
                let names = vec!["efficientnet-lite0".to_owned()];
                let fetch = crate::flags::Download { names, data_dir: Some(self.data.clone()), from_zip: None };
                crate::download::run(root, &fetch)?;
            }
        }
        let finetune_cfg = self.variant(
            "finetune-lite0-unfrozen.toml",
            "finetune-lite0 with the backbone trainable from the start",
            "configs/pets/finetune-lite0.toml",
            "freeze_epochs = 0",
        )?;
        let trainings = [
            Training {
                name: "train_finetune_lite0",
                what: "EfficientNet-Lite0 fine-tuning 224x224, seed 002 augmentation, batch 32, 2 epochs",
                config: finetune_cfg,
                task: "finetune-lite0",
                batches: q(10, 3),
                dataset: &self.pets,
                goal: None,
            },
            Training {
                name: "train_seed3_final",
                what: "seed3-final 32x32, pad-crop-flip, batch 64",
                config: root.join("configs/cifar10/seed3-final.toml"),
                task: "seed3-final",
                batches: q(200, 40),
                dataset: &self.cifar,
                goal: Some(1.3),
            },
            Training {
                name: "train_seed3_final_device",
                what: "seed3-final, device-resident feed",
                config: device_cfg,
                task: "seed3-final",
                batches: q(200, 40),
                dataset: &self.cifar,
                goal: Some(1.3),
            },
            Training {
                name: "train_fast94",
                what: "airbench-style fast94, device feed, batch 1024",
                config: root.join("configs/cifar10/fast94.toml"),
                task: "fast94",
                batches: q(6, 2),
                dataset: &self.cifar,
                goal: None,
            },
            Training {
                name: "train_seed2_model3",
                what: "seed2-model3 224x224, seed 002 augmentation, batch 32",
                config: root.join("configs/pets/seed2-model4.toml"),
                task: "seed2-model3",
                batches: q(9, 3),
                dataset: &self.pets,
                goal: Some(1.3),
            },
        ];
        let mut rows: Vec<Row> = Vec::new();
        for t in trainings.into_iter().filter(|t| self.opts.selected(t.name)) {
            let mut row =
                Row { name: t.name.into(), what: t.what.into(), cnnlab: vec![], pytorch: vec![], goal: t.goal };
            for repeat in 1..=self.opts.repeats {
                row.cnnlab.push(self.train_cnnlab(&t, repeat)?);
                // The device-fed row is compared with PyTorch's host-fed one (measured above).
                let theirs = if t.name.ends_with("_device") {
                    rows.iter().find(|r| r.name == "train_seed3_final").and_then(|r| r.pytorch.get(repeat - 1).copied())
                } else {
                    Some(self.train_pytorch(&t)?)
                };
                row.pytorch.extend(theirs);
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// `target/bench/<file>`: the repository's `base` config with one `[train]` line changed.
    fn variant(&self, file: &str, what: &str, base: &str, train_line: &str) -> Result<PathBuf> {
        let path = self.out.join(file);
        let text = format!(
            "# {what} (written by cargo xtask bench)\nextends = \"{}\"\n\n[train]\n{train_line}\n",
            self.root.join(base).display()
        );
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The fine-tuning row runs two epochs a side (over a minute each on 2 cores):
    /// cnnlab reports its second epoch, PyTorch the whole run.
    fn epochs(t: &Training) -> usize {
        if t.task == "finetune-lite0" {
            2
        } else {
            1
        }
    }

    fn train_cnnlab(&self, t: &Training, repeat: usize) -> Result<f64> {
        let epochs = Self::epochs(t);
        let repeats = self.opts.repeats;
        eprintln!("\nxtask bench: {} ({} batches x {epochs} epochs, repeat {repeat}/{repeats})", t.name, t.batches);
        let run_dir = self.out.join("runs").join(t.name);
        let _ = std::fs::remove_dir_all(&run_dir);
        let mut cmd = Command::new(&self.cnnlab);
        cmd.args(["-q", "train"]).arg(&t.config).args(["--epochs", &epochs.to_string()]);
        cmd.args(["--max-batches", &t.batches.to_string()]);
        cmd.arg("--out").arg(&run_dir).arg("--data-dir").arg(&self.data);
        run_cmd(&self.root, &mut cmd)?;
        crate::train_all::run_state(&self.cnnlab, &run_dir)?
            .last_images_per_sec
            .with_context(|| format!("{}: no epoch in its history", run_dir.display()))
    }

    fn train_pytorch(&self, t: &Training) -> Result<f64> {
        let images = if t.task.starts_with("seed2") || t.task.starts_with("finetune") {
            t.dataset.join("images")
        } else {
            t.dataset.join("train")
        };
        let mut cmd = Command::new(&self.python);
        let batches = t.batches * Self::epochs(t);
        cmd.arg(&self.script).args(["train", t.task]).arg(&images).args(["--batches", &batches.to_string()]);
        cmd.args(["--limit", &self.opts.batches(20_000, 4_000).to_string()]);
        json_rate(&self.root, &mut cmd)
    }

    /// The data pipeline alone.
    fn pipelines(&self) -> Result<Vec<Row>> {
        let example = self.root.join("target/release/examples/pipeline_rate");
        let pipelines = [
            (
                "pipeline_pets224",
                "JPEG decode + resize to 224 + seed 002 augmentation",
                "pets224",
                self.pets.join("images"),
                0,
            ),
            (
                "pipeline_cifar32",
                "JPEG decode (32x32) + pad-crop-flip",
                "cifar32",
                self.cifar.join("train"),
                self.opts.batches(20_000, 5_000),
            ),
        ];
        let mut rows = Vec::new();
        for (name, what, task, dir, limit) in pipelines {
            if !self.opts.selected(name) {
                continue;
            }
            let mut row =
                Row { name: name.into(), what: what.into(), cnnlab: vec![], pytorch: vec![], goal: Some(2.0) };
            for repeat in 1..=self.opts.repeats {
                eprintln!("\nxtask bench: {name} (repeat {repeat}/{})", self.opts.repeats);
                let mut ours = Command::new(&example);
                ours.arg(task).arg(&dir);
                let mut theirs = Command::new(&self.python);
                theirs.arg(&self.script).args(["pipeline", task]).arg(&dir);
                if limit > 0 {
                    ours.arg(limit.to_string());
                    theirs.args(["--limit", &limit.to_string()]);
                }
                row.cnnlab.push(json_rate(&self.root, &mut ours)?);
                row.pytorch.push(json_rate(&self.root, &mut theirs)?);
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// Inference of an exported model: cnnlab's own predictor (`predict_rate`, what
    /// `cnnlab predict` runs, batch 64, 2 threads) against onnxruntime on the run's
    /// `cnnlab export` (`crates/train/benches/onnx_rate.py`, the same batch and
    /// threads), one after the other. Its runs: seed3-final trained a few batches (the
    /// speed does not depend on the weights) and `cnnlab pretrained efficientnet_lite0`.
    fn inference(&self) -> Result<Vec<Row>> {
        let rows = [
            ("inference_seed3_onnx", "predict seed3-final 32x32, batch 64, 2 threads; reference: onnxruntime"),
            ("inference_lite0_onnx", "predict EfficientNet-Lite0 224x224, batch 64, 2 threads; reference: onnxruntime"),
        ];
        let mut out = Vec::new();
        for (name, what) in rows.into_iter().filter(|(name, _)| self.opts.selected(name)) {
            crate::setup::reference_packages(&self.root)?;
            let run = self.out.join("runs").join(name);
            if !run.join("metrics.json").exists() {
                let _ = std::fs::remove_dir_all(&run);
                let mut cmd = Command::new(&self.cnnlab);
                if name.contains("lite0") {
                    if !crate::download::lite0_weights(&self.data).exists() {
                        let names = vec!["efficientnet-lite0".to_owned()];
                        let fetch = crate::flags::Download { names, data_dir: Some(self.data.clone()), from_zip: None };
                        crate::download::run(&self.root, &fetch)?;
                    }
                    cmd.args(["-q", "pretrained", "efficientnet_lite0", "--data-dir"]).arg(&self.data);
                } else {
                    cmd.args(["-q", "train"]).arg(self.root.join("configs/cifar10/seed3-final.toml"));
                    cmd.args(["--epochs", "1", "--max-batches", "5", "--data-dir"]).arg(&self.data);
                }
                run_cmd(&self.root, cmd.arg("--out").arg(&run))?;
            }
            let onnx = run.join("model.onnx");
            if !onnx.exists() {
                run_cmd(&self.root, Command::new(&self.cnnlab).args(["-q", "export", "--run"]).arg(&run))?;
            }
            let seconds = if self.opts.quick { "3" } else { "10" };
            let mut row = Row { name: name.into(), what: what.into(), cnnlab: vec![], pytorch: vec![], goal: None };
            for repeat in 1..=self.opts.repeats {
                eprintln!("\nxtask bench: {name} (repeat {repeat}/{})", self.opts.repeats);
                let mut ours = Command::new(self.root.join("target/release/examples/predict_rate"));
                ours.arg(&run).args(["2", seconds]);
                let mut theirs = Command::new(&self.python);
                theirs.arg(self.root.join("crates/train/benches/onnx_rate.py")).arg(&onnx).args(["2", seconds]);
                row.cnnlab.push(json_rate(&self.root, &mut ours)?);
                row.pytorch.push(json_rate(&self.root, &mut theirs)?);
            }
            out.push(row);
        }
        Ok(out)
    }

    /// `target/bench/<name>.json` per row and the table (printed and in table.txt).
    fn write_table(&self, rows: &[Row]) -> Result<()> {
        let machine = machine();
        let mut table = format!(
            "\n{:<26} {:>12} {:>12} {:>7} {:>15} {:>6}  what\n",
            "benchmark", "cnnlab img/s", "ref img/s", "ratio", "spread", "goal"
        );
        for r in rows {
            let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            let ratios = r.ratios();
            let ratio = median(&ratios);
            let json = json!({
                "name": r.name,
                "what": r.what,
                "cnnlab_images_per_sec": mean(&r.cnnlab),
                "pytorch_images_per_sec": mean(&r.pytorch),
                "cnnlab_repeats": r.cnnlab,
                "pytorch_repeats": r.pytorch,
                "ratio": ratio,
                "ratio_repeats": ratios,
                "goal_ratio": r.goal,
                "quick": self.opts.quick,
                "machine": machine,
            });
            let path = self.out.join(format!("{}.json", r.name));
            std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            let spread = match (ratios.first(), ratios.last()) {
                (Some(lo), Some(hi)) if ratios.len() > 1 => format!("{lo:.2}-{hi:.2}x"),
                _ => "-".into(),
            };
            table += &format!(
                "{:<26} {:>12.1} {:>12} {:>7} {:>15} {:>6}  {}\n",
                r.name,
                mean(&r.cnnlab).unwrap_or(f64::NAN),
                mean(&r.pytorch).map_or("-".into(), |p| format!("{p:.1}")),
                ratio.map_or("-".into(), |x| format!("{x:.2}x")),
                spread,
                r.goal.map_or("-".into(), |g| format!(">={g}x")),
                r.what
            );
        }
        table += &format!("\nmachine: {machine}\nrepeats: {}\nJSON: {}\n", self.opts.repeats, self.out.display());
        std::fs::write(self.out.join("table.txt"), &table)?;
        print!("{table}");
        Ok(())
    }
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
