//! `cargo xtask train-all`: every experiment under `configs/`, one after another.
//!
//! A config is `configs/<group>/<stem>.toml`; its run lands in `runs/<group>/<stem>/`
//! (`runs-quick/` with `--quick`, a few batches per config). An interrupted run
//! (`cnnlab status` says "unfinished") is resumed. `--shard I/N` runs every N-th
//! selected config starting at the I-th, to spread the matrix over machines.
//! `--seeds N` trains seeds 0..N of each experiment into `runs/<group>/<stem>/seed-<k>/`
//! (each seed a unit of work for `--shard` and resume). At
//! the end, `cnnlab report` writes the comparison report of the runs folder.
//! Files whose stem starts with `base` or `_` are shared bases, not experiments.
//! A run whose dataset is absent is skipped with the one-line reason cnnlab gives
//! (exit code 3); a finished run is not redone without `--force` (which passes on to
//! `cnnlab train --force`). The run folders' files are cnnlab's business: this asks
//! `cnnlab status --json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cargo, run_cmd, setup};

/// Exit code of `cnnlab train` when the config's dataset is not on disk.
const EXIT_DATASET_MISSING: i32 = 3;

struct Options {
    only: Option<glob::Pattern>,
    /// `--seeds N`: seeds 0..N of every experiment, each a unit of work.
    seeds: Option<u64>,
    force: bool,
    quick: bool,
    /// (I, N): run the configs whose index modulo N is I - 1.
    shard: Option<(usize, usize)>,
    passthrough: Vec<String>,
}

fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--shard takes I/N with 1 <= I <= N, got `{s}`");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

fn parse(args: &[String]) -> Result<Options> {
    let mut opts =
        Options { only: None, seeds: None, force: false, quick: false, shard: None, passthrough: Vec::new() };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--only" => {
                let pattern = value("--only")?;
                opts.only =
                    Some(glob::Pattern::new(&pattern).with_context(|| format!("bad --only pattern `{pattern}`"))?);
            }
            "--seeds" => {
                let n = value("--seeds")?;
                opts.seeds = Some(
                    n.parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .with_context(|| format!("--seeds takes a count of at least 1, got `{n}`"))?,
                );
            }
            "--force" => opts.force = true,
            "--quick" => opts.quick = true,
            "--shard" => opts.shard = Some(parse_shard(&value("--shard")?)?),
            "--epochs" | "--data-dir" => {
                let v = value(arg)?;
                opts.passthrough.extend([arg.clone(), v]);
            }
            other => bail!("unknown train-all option `{other}` (see `cargo xtask help`)"),
        }
    }
    Ok(opts)
}

/// `configs/<group>/<stem>.toml` files that are experiments, sorted, with their
/// `<group>/<stem>` names.
fn experiments(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let pattern = root.join("configs").join("*").join("*.toml");
    let mut found = Vec::new();
    for path in glob::glob(&pattern.to_string_lossy()).context("listing configs/")? {
        let path = path?;
        let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        if stem.starts_with("base") || stem.starts_with('_') {
            continue;
        }
        let group = path.parent().and_then(Path::file_name).unwrap_or_default().to_string_lossy().into_owned();
        found.push((format!("{group}/{stem}"), path));
    }
    found.sort();
    Ok(found)
}

/// The units of work: each selected experiment, or with `--seeds N` each experiment's
/// seeds 0..N as `<group>/<stem>/seed-<k>` (so `--shard` spreads seeds too).
fn units(experiments: Vec<(String, PathBuf)>, opts: &Options) -> Vec<(String, PathBuf, Option<u64>)> {
    let selected = experiments.into_iter().filter(|(name, _)| opts.only.as_ref().is_none_or(|p| p.matches(name)));
    match opts.seeds {
        None => selected.map(|(name, config)| (name, config, None)).collect(),
        Some(n) => selected
            .flat_map(|(name, config)| (0..n).map(move |k| (format!("{name}/seed-{k}"), config.clone(), Some(k))))
            .collect(),
    }
}

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    setup::run(root)?;
    run_cmd(root, cargo().args(["build", "--release", "-p", "cnnlab-cli"]))?;
    let cnnlab = root.join("target").join("release").join("cnnlab");

    // Smoke runs go to their own folder, so they never pass for finished experiments.
    let runs = root.join(if opts.quick { "runs-quick" } else { "runs" });
    let mut summary = Vec::new();
    let mut tried_download: Vec<String> = Vec::new();
    let selected = units(experiments(root)?, &opts)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| opts.shard.is_none_or(|(k, n)| i % n == k - 1))
        .map(|(_, e)| e);
    for (name, config, seed) in selected {
        let run = runs.join(&name);
        let state = run_state(&cnnlab, &run)?;
        if state.state == "finished" && !opts.force {
            summary.push((name, format!("done earlier: {}", state.accuracy())));
            continue;
        }
        let mut cmd = Command::new(&cnnlab);
        if state.state == "unfinished" && !opts.force {
            eprintln!("\nxtask: resuming {name}");
            cmd.arg("train").arg("--resume").arg(&run);
            // A resumed run keeps its own config (epochs included); only the data dir passes.
            cmd.args(opts.passthrough.chunks(2).filter(|pair| pair[0] == "--data-dir").flatten());
        } else {
            eprintln!("\nxtask: training {name}");
            cmd.arg("train").arg(&config).arg("--out").arg(&run).args(&opts.passthrough);
            if let Some(seed) = seed {
                cmd.arg("--seed").arg(seed.to_string());
            }
            if opts.quick {
                cmd.arg("--quick");
            }
            if opts.force {
                cmd.arg("--force");
            }
        }
        let mut status = cmd.current_dir(root).status().with_context(|| format!("starting {}", cnnlab.display()))?;
        // A missing dataset: try to download it once (per dataset), then retry.
        let group = name.split('/').next().unwrap_or_default().to_string();
        if status.code() == Some(EXIT_DATASET_MISSING) && !tried_download.contains(&group) {
            tried_download.push(group.clone());
            // A config with pretrained EfficientNet-Lite0 weights may miss those instead.
            let weights = std::fs::read_to_string(&config).is_ok_and(|t| t.contains("\"efficientnet_lite0\""));
            if weights && !crate::download::lite0_weights(&data_dir(&opts.passthrough, root)).exists() {
                let mut args = vec!["efficientnet-lite0".to_owned()];
                args.extend(opts.passthrough.chunks(2).filter(|p| p[0] == "--data-dir").flat_map(|p| p.to_vec()));
                eprintln!("xtask: trying `cargo xtask download {}`", args.join(" "));
                match crate::download::run(root, &args) {
                    Ok(()) => status = cmd.status().with_context(|| format!("starting {}", cnnlab.display()))?,
                    Err(e) => eprintln!("xtask: {e:#}"),
                }
            } else if crate::download::DATASETS.contains(&group.as_str()) {
                let mut args = vec![group.clone()];
                args.extend(opts.passthrough.chunks(2).filter(|p| p[0] == "--data-dir").flat_map(|p| p.to_vec()));
                eprintln!("xtask: trying `cargo xtask download {}`", args.join(" "));
                match crate::download::run(root, &args) {
                    Ok(()) => status = cmd.status().with_context(|| format!("starting {}", cnnlab.display()))?,
                    Err(e) => eprintln!("xtask: {e:#}"),
                }
            }
        }
        let outcome = match status.code() {
            Some(0) => format!("trained: {}", run_state(&cnnlab, &run)?.accuracy()),
            Some(EXIT_DATASET_MISSING) => "skipped: dataset not present (see the message above)".to_owned(),
            _ => format!("FAILED ({status})"),
        };
        summary.push((name, outcome));
    }
    if summary.is_empty() {
        bail!("no config under configs/ matched");
    }
    eprintln!("\ntrain-all summary:");
    let width = summary.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, outcome) in &summary {
        eprintln!("  {name:width$}  {outcome}");
    }
    if runs.is_dir() {
        let status = Command::new(&cnnlab).arg("report").arg(&runs).current_dir(root).status()?;
        if !status.success() {
            eprintln!("xtask: `cnnlab report {}` failed ({status})", runs.display());
        }
    }
    let failed = summary.iter().filter(|(_, o)| o.starts_with("FAILED")).count();
    if failed > 0 {
        bail!("{failed} run(s) failed");
    }
    Ok(())
}

/// One line of `cnnlab status --json RUN`: the run folder's own account of itself.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct RunStatus {
    /// "empty", "unfinished" or "finished".
    pub(crate) state: String,
    #[serde(default)]
    accuracy: Option<f64>,
    /// images/s of the last epoch in history.csv.
    #[serde(default)]
    pub(crate) last_images_per_sec: Option<f64>,
}

impl RunStatus {
    fn accuracy(&self) -> String {
        self.accuracy.map_or_else(|| "no test accuracy".to_owned(), |a| format!("test accuracy {a:.4}"))
    }
}

/// Asks `cnnlab status --json` where the run in `run` stands.
pub(crate) fn run_state(cnnlab: &Path, run: &Path) -> Result<RunStatus> {
    let out = Command::new(cnnlab)
        .args(["status", "--json"])
        .arg(run)
        .output()
        .with_context(|| format!("starting {}", cnnlab.display()))?;
    if !out.status.success() {
        bail!("`cnnlab status {}` failed: {}", run.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("reading `cnnlab status --json {}`", run.display()))
}

/// The data dir a `--data-dir` in `passthrough` names, else `CNNLAB_DATA`, else
/// `<root>/data` (as `cnnlab` and `download` resolve it).
fn data_dir(passthrough: &[String], root: &Path) -> PathBuf {
    passthrough
        .chunks(2)
        .find(|p| p[0] == "--data-dir")
        .and_then(|p| p.get(1))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CNNLAB_DATA").map(PathBuf::from))
        .unwrap_or_else(|| root.join("data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_experiments_but_not_bases() {
        let dir = std::env::temp_dir().join(format!("xtask-configs-{}", std::process::id()));
        let configs = dir.join("configs");
        std::fs::create_dir_all(configs.join("cifar10")).unwrap();
        std::fs::create_dir_all(configs.join("pets")).unwrap();
        for f in ["cifar10/seed3-final.toml", "cifar10/base.toml", "pets/_shared.toml", "pets/m1.toml"] {
            std::fs::write(configs.join(f), "").unwrap();
        }
        let names: Vec<String> = experiments(&dir).unwrap().into_iter().map(|(n, _)| n).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["cifar10/seed3-final", "pets/m1"]);
        let only = glob::Pattern::new("cifar10/*").unwrap();
        assert!(only.matches("cifar10/seed3-final") && !only.matches("pets/m1"));
    }

    #[test]
    fn seeds_are_units_of_work() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let exps = vec![("fm/a".to_owned(), PathBuf::from("a.toml")), ("fm/b".to_owned(), PathBuf::from("b.toml"))];
        let opts = parse(&args(&["--seeds", "2", "--only", "fm/*"])).unwrap();
        let names: Vec<(String, Option<u64>)> =
            units(exps.clone(), &opts).into_iter().map(|(n, _, s)| (n, s)).collect();
        assert_eq!(
            names,
            [
                ("fm/a/seed-0".to_owned(), Some(0)),
                ("fm/a/seed-1".to_owned(), Some(1)),
                ("fm/b/seed-0".to_owned(), Some(0)),
                ("fm/b/seed-1".to_owned(), Some(1))
            ]
        );
        let plain = parse(&[]).unwrap();
        assert_eq!(units(exps, &plain).iter().map(|u| u.2).collect::<Vec<_>>(), [None, None]);
        for bad in ["0", "x", "-1"] {
            let err = parse(&args(&["--seeds", bad])).err().unwrap().to_string();
            assert!(err.contains("--seeds takes a count of at least 1"), "{err}");
        }
    }

    #[test]
    fn rejects_unknown_options() {
        let err = parse(&["--epoch".to_owned(), "3".to_owned()]).err().unwrap();
        assert!(err.to_string().contains("--epoch"), "{err}");
        let opts = parse(&["--epochs".to_owned(), "3".to_owned(), "--force".to_owned()]).unwrap();
        assert!(opts.force);
        assert_eq!(opts.passthrough, ["--epochs", "3"]);
        let opts = parse(&["--shard".to_owned(), "2/4".to_owned(), "--quick".to_owned()]).unwrap();
        assert_eq!(opts.shard, Some((2, 4)));
        assert!(opts.quick);
        for bad in ["0/4", "5/4", "x/2", "3"] {
            let err = parse(&["--shard".to_owned(), bad.to_owned()]).err().unwrap();
            assert!(err.to_string().contains("I/N"), "{bad}: {err}");
        }
    }
}
