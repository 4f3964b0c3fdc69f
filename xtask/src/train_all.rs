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
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::setup;

/// Exit code of `cnnlab train` when the config's dataset is not on disk.
const EXIT_DATASET_MISSING: i32 = 3;
/// Marks `tried_download` once a download found no network.
const OFFLINE: &str = "(offline)";

/// The start of the summary line of a run whose dataset is missing.
const SKIPPED_MISSING: &str = "skipped, dataset not present; fetch it with";

/// Exit code of `cnnlab train` when another process holds the run folder's lock.
const EXIT_BUSY: i32 = 4;
/// Exit code of `cnnlab train --if-unfinished` when the run has finished already.
const EXIT_FINISHED: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shard {
    /// (I, N): the units whose index modulo N is I - 1.
    Fixed(usize, usize),
    /// From the scheduler's environment (see [`resolve_shard`]).
    Auto,
}

struct Options {
    only: Option<glob::Pattern>,
    /// `--seeds N`: seeds 0..N of every experiment, each a unit of work.
    seeds: Option<u64>,
    force: bool,
    quick: bool,
    shard: Option<Shard>,
    /// `--shard-count N`: the shard count of `--shard auto` under Kubernetes.
    shard_count: Option<usize>,
    /// `--jobs N`: trainings at once, each with 1/N of the CPUs.
    jobs: usize,
    /// `--requeue`: passed to `cnnlab train` (Slurm requeue after SIGTERM/SIGUSR1).
    requeue: bool,
    /// `--dev`: use the dev build of cnnlab (optimized in this workspace; what CI
    /// has built already) instead of building the release one.
    dev: bool,
    /// `--runs DIR`: where the run folders go (default runs/, runs-quick/ with --quick).
    runs: Option<PathBuf>,
    passthrough: Vec<String>,
}

fn parse_shard(s: &str) -> Result<Shard> {
    if s == "auto" {
        return Ok(Shard::Auto);
    }
    let bad = || anyhow::anyhow!("--shard takes I/N with 1 <= I <= N, or auto, got `{s}`");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if i == 0 || i > n {
        return Err(bad());
    }
    Ok(Shard::Fixed(i, n))
}

/// The checked options of `flags::TrainAll` (counts of at least 1, the shard, the glob).
fn parse(f: &crate::flags::TrainAll) -> Result<Options> {
    let at_least_one = |name: &str, v: Option<usize>| match v {
        Some(0) => bail!("{name} takes a count of at least 1, got `0`"),
        v => Ok(v),
    };
    let mut passthrough = Vec::new();
    if let Some(epochs) = f.epochs {
        passthrough.extend(["--epochs".to_owned(), epochs.to_string()]);
    }
    if let Some(dir) = &f.data_dir {
        passthrough.extend(["--data-dir".to_owned(), dir.display().to_string()]);
    }
    let only = f.only.as_deref().map(|p| glob::Pattern::new(p).with_context(|| format!("bad --only pattern `{p}`")));
    Ok(Options {
        only: only.transpose()?,
        seeds: match f.seeds {
            Some(0) => bail!("--seeds takes a count of at least 1, got `0`"),
            seeds => seeds,
        },
        force: f.force,
        quick: f.quick,
        shard: f.shard.as_deref().map(parse_shard).transpose()?,
        shard_count: at_least_one("--shard-count", f.shard_count)?,
        jobs: at_least_one("--jobs", f.jobs)?.unwrap_or(1),
        requeue: f.requeue,
        dev: f.dev,
        runs: f.runs.clone(),
        passthrough,
    })
}

/// `configs/<group>/<stem>.toml` files that are experiments, sorted, with their
/// `<group>/<stem>` names (not bases, not tune files: those have a `[tune]` section
/// and run with `cnnlab tune`).
fn experiments(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let pattern = root.join("configs").join("*").join("*.toml");
    let mut found = Vec::new();
    for path in glob::glob(&pattern.to_string_lossy()).context("listing configs/")? {
        let path = path?;
        let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        if stem.starts_with("base") || stem.starts_with('_') || is_tune_file(&path) {
            continue;
        }
        let group = path.parent().and_then(Path::file_name).unwrap_or_default().to_string_lossy().into_owned();
        found.push((format!("{group}/{stem}"), path));
    }
    found.sort();
    Ok(found)
}

/// A `cnnlab tune` file: one with a `[tune]` table.
fn is_tune_file(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l.trim() == "[tune]"))
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

/// What every worker shares: the cnnlab binary, options, and who is training now.
struct Ctx<'a> {
    root: &'a Path,
    cnnlab: PathBuf,
    runs: PathBuf,
    opts: &'a Options,
    /// Datasets whose download was tried (once each), and the lock that serializes
    /// downloads between workers.
    tried_download: Mutex<Vec<String>>,
    stop: &'a Stop,
}

/// The first stopping signal (SIGINT, SIGTERM, SIGUSR1) this process got, and the
/// pids of the `cnnlab train` children it forwards signals to. The children run in
/// their own process group, so a signal to train-all's group (Ctrl-C in a terminal)
/// reaches each child once, through here: a second signal would make a child quit
/// without its checkpoint.
#[derive(Default)]
struct Stop {
    signal: AtomicI32,
    children: Mutex<Vec<u32>>,
}

impl Stop {
    fn stopped(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// Forwards every signal to the children; the first one also stops new runs.
    fn listen(stop: &'static Stop) -> Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGUSR1]).context("installing signal handlers")?;
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if stop.signal.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    eprintln!(
                        "\nxtask: signal {signal}: the running trainings save a checkpoint and stop; no new ones start"
                    );
                }
                for &pid in stop.children.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    // SAFETY: kill(2) with a pid of our own child and a valid signal.
                    unsafe { libc::kill(pid as libc::pid_t, signal) };
                }
            }
        });
        Ok(())
    }
}

/// train-all ended because of a signal: it exits with 128 + its number, as the
/// trainings it stopped did (Slurm's requeue and Kubernetes' restart see a stop, not
/// a failure).
#[derive(Debug)]
pub(crate) struct StoppedBySignal(pub(crate) i32);

impl std::fmt::Display for StoppedBySignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped by signal {}: the interrupted runs resume on the next train-all", self.0)
    }
}

impl std::error::Error for StoppedBySignal {}

pub(crate) fn run(root: &Path, f: &crate::flags::TrainAll) -> Result<()> {
    let opts = parse(f)?;
    // Resolved before anything is built, so a wrong environment fails at once.
    let shard = resolve_shard(&opts, |k| std::env::var(k).ok())?;
    if let Some((k, n)) = shard {
        eprintln!("xtask: shard {k}/{n}");
    }
    static STOP: std::sync::OnceLock<Stop> = std::sync::OnceLock::new();
    let stop = STOP.get_or_init(Stop::default);
    Stop::listen(stop)?;
    setup::run(root)?;
    let cnnlab = crate::build_cnnlab(root, opts.dev)?;
    let ctx = Ctx {
        root,
        cnnlab,
        // Smoke runs go to their own folder, so they never pass for finished experiments.
        runs: opts.runs.clone().unwrap_or_else(|| root.join(if opts.quick { "runs-quick" } else { "runs" })),
        opts: &opts,
        tried_download: Mutex::new(Vec::new()),
        stop,
    };
    let selected: Vec<_> = units(experiments(root)?, &opts)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|(k, n)| i % n == k - 1))
        .map(|(_, e)| e)
        .collect();
    if selected.is_empty() {
        bail!("no config under configs/ matched");
    }
    // Up to --jobs workers take the next unit in order; each training gets its share
    // of the CPUs (cnnlab divides its thread budget by CNNLAB_THREAD_SHARE).
    let queue = Mutex::new(selected.into_iter().enumerate().collect::<std::collections::VecDeque<_>>());
    let summary = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs {
            scope.spawn(|| loop {
                if ctx.stop.stopped().is_some() {
                    break;
                }
                let Some((i, (name, config, seed))) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
                else {
                    break;
                };
                let outcome = train_unit(&ctx, &name, &config, seed).unwrap_or_else(|e| format!("FAILED ({e:#})"));
                summary.lock().unwrap_or_else(|e| e.into_inner()).push((i, name, outcome));
            });
        }
    });
    let mut summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    summary.sort();
    eprintln!("\ntrain-all summary:");
    for line in summary_lines(&summary) {
        eprintln!("  {line}");
    }
    if let Some(signal) = stop.stopped() {
        return Err(StoppedBySignal(signal).into());
    }
    if ctx.runs.is_dir() {
        let status = Command::new(&ctx.cnnlab).arg("report").arg(&ctx.runs).current_dir(root).status()?;
        if !status.success() {
            eprintln!("xtask: `cnnlab report {}` failed ({status})", ctx.runs.display());
        }
    }
    let failed = summary.iter().filter(|(_, _, o)| o.starts_with("FAILED")).count();
    if failed > 0 {
        bail!("{failed} run(s) failed");
    }
    Ok(())
}

/// The summary, a line per run, except that the runs skipped for a missing dataset
/// are one line per dataset group, with their count and the command that fetches it
/// (a fresh machine has no data: 56 configs would be 56 near-identical lines).
fn summary_lines(summary: &[(usize, String, String)]) -> Vec<String> {
    let mut missing: std::collections::BTreeMap<(String, &str), usize> = Default::default();
    let mut rows = Vec::new();
    for (_, name, outcome) in summary {
        if outcome.starts_with(SKIPPED_MISSING) {
            let group = name.split('/').next().unwrap_or_default();
            *missing.entry((format!("{group}/*"), outcome.as_str())).or_default() += 1;
        } else {
            rows.push((name.clone(), outcome.clone()));
        }
    }
    for ((group, outcome), n) in missing {
        rows.push((format!("{group} ({n} run{})", if n == 1 { "" } else { "s" }), outcome.to_owned()));
    }
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    rows.into_iter().map(|(name, outcome)| format!("{name:width$}  {outcome}")).collect()
}

/// Trains (or resumes, or skips) one unit of work; returns its summary line.
fn train_unit(ctx: &Ctx<'_>, name: &str, config: &Path, seed: Option<u64>) -> Result<String> {
    let (opts, cnnlab) = (ctx.opts, &ctx.cnnlab);
    let run = ctx.runs.join(name);
    let state = run_state(cnnlab, &run)?;
    if state.state == "finished" && !opts.force {
        return Ok(format!("done earlier: {}", state.accuracy()));
    }
    let mut cmd = Command::new(cnnlab);
    if state.state == "unfinished" && !opts.force {
        eprintln!("\nxtask: resuming {name}");
        cmd.arg("train").arg("--resume").arg(&run);
        // A resumed run keeps its own config (epochs included); only the data dir passes.
        cmd.args(opts.passthrough.chunks(2).filter(|pair| pair[0] == "--data-dir").flatten());
    } else {
        eprintln!("\nxtask: training {name}");
        cmd.arg("train").arg(config).arg("--out").arg(&run).args(&opts.passthrough);
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
    if opts.requeue {
        cmd.arg("--requeue");
    }
    // Another process may finish this run between the look above and the start.
    if !opts.force {
        cmd.arg("--if-unfinished");
    }
    if opts.jobs > 1 {
        cmd.env("CNNLAB_THREAD_SHARE", opts.jobs.to_string());
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.current_dir(ctx.root);
    let mut status = run_child(ctx, &mut cmd)?;
    // A missing dataset: try to download it once (per dataset), then retry.
    let group = name.split('/').next().unwrap_or_default().to_string();
    // What the missing dataset (or weights) is fetched with, when xtask can fetch it.
    let mut what = None;
    if status.code() == Some(EXIT_DATASET_MISSING) {
        // A config with pretrained EfficientNet-Lite0 weights may miss those instead.
        let weights = std::fs::read_to_string(config).is_ok_and(|t| t.contains("\"efficientnet_lite0\""));
        what = if weights && !crate::download::lite0_weights(&data_dir(&opts.passthrough, ctx.root)).exists() {
            Some("efficientnet-lite0".to_owned())
        } else {
            crate::download::DATASETS.contains(&group.as_str()).then(|| group.clone())
        };
        let mut tried = ctx.tried_download.lock().unwrap_or_else(|e| e.into_inner());
        // Without a network (the first download could not resolve or reach its host)
        // the others are not tried: one message, not one per dataset.
        if !tried.contains(&group) && !tried.iter().any(|t| t == OFFLINE) {
            tried.push(group.clone());
            if let Some(what) = what.clone() {
                let data_dir = data_dir(&opts.passthrough, ctx.root);
                eprintln!("xtask: trying `cargo xtask download {what} --data-dir {}`", data_dir.display());
                let fetch = crate::flags::Download { names: vec![what], data_dir: Some(data_dir), from_zip: None };
                match crate::download::run(ctx.root, &fetch) {
                    Ok(()) => status = run_child(ctx, &mut cmd)?,
                    Err(e) => {
                        eprintln!("xtask: {e:#}");
                        let text = format!("{e:#}").to_lowercase();
                        if ["dns failed", "failed to lookup address", "connection failed"]
                            .iter()
                            .any(|m| text.contains(m))
                        {
                            eprintln!("xtask: no network: the other missing datasets are not downloaded either");
                            tried.push(OFFLINE.to_owned());
                        }
                    }
                }
            }
        }
    }
    Ok(match status.code() {
        Some(0) => format!("trained: {}", run_state(cnnlab, &run)?.accuracy()),
        Some(EXIT_DATASET_MISSING) => match what {
            Some(what) => format!("{SKIPPED_MISSING}: cargo xtask download {what}"),
            None => format!("{SKIPPED_MISSING} (see cnnlab's message above)"),
        },
        Some(EXIT_BUSY) => "skipped: another process is training it (its .lock)".to_owned(),
        Some(EXIT_FINISHED) => format!("finished by another process: {}", run_state(cnnlab, &run)?.accuracy()),
        Some(code) if code > 128 => format!("stopped by signal {}: resumable", code - 128),
        _ => format!("FAILED ({status})"),
    })
}

/// Runs a `cnnlab train` child, registered for signal forwarding while it runs.
fn run_child(ctx: &Ctx<'_>, cmd: &mut Command) -> Result<std::process::ExitStatus> {
    if ctx.stop.stopped().is_some() {
        // Stopped before this child started: report it as stopped, not failed.
        return Ok(std::os::unix::process::ExitStatusExt::from_raw((128 + SIGTERM) << 8));
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {}", ctx.cnnlab.display()))?;
    let pid = child.id();
    ctx.stop.children.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    let status = child.wait();
    ctx.stop.children.lock().unwrap_or_else(|e| e.into_inner()).retain(|&p| p != pid);
    Ok(status?)
}

/// `--shard`: a fixed `I/N`, or `auto` read from the scheduler's environment: Slurm
/// array tasks (`SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_COUNT`, or MIN / MAX /
/// STEP) or a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` with `--shard-count N`).
/// Returns 1-based (I, N).
fn resolve_shard(opts: &Options, env: impl Fn(&str) -> Option<String>) -> Result<Option<(usize, usize)>> {
    let num = |k: &str| -> Result<Option<usize>> {
        env(k).map(|v| v.trim().parse::<usize>().with_context(|| format!("{k}={v} is not a number"))).transpose()
    };
    match opts.shard {
        None => Ok(None),
        Some(Shard::Fixed(k, n)) => Ok(Some((k, n))),
        Some(Shard::Auto) => {
            if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
                let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
                let count = match (num("SLURM_ARRAY_TASK_COUNT")?, num("SLURM_ARRAY_TASK_MAX")?) {
                    (Some(count), _) => count,
                    (None, Some(max)) => (max - min) / step + 1,
                    (None, None) => bail!("--shard auto: SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX"),
                };
                let index = id.checked_sub(min).map(|d| d / step).filter(|&i| i < count).with_context(|| {
                    format!("--shard auto: SLURM_ARRAY_TASK_ID={id} is outside the array (min {min}, {count} tasks)")
                })?;
                return Ok(Some((index + 1, count)));
            }
            if let Some(index) = num("JOB_COMPLETION_INDEX")? {
                let n = opts.shard_count.context(
                    "--shard auto under a Kubernetes Indexed Job needs --shard-count N (the Job's completions)",
                )?;
                anyhow::ensure!(index < n, "--shard auto: JOB_COMPLETION_INDEX={index} is not below --shard-count {n}");
                return Ok(Some((index + 1, n)));
            }
            bail!("--shard auto needs SLURM_ARRAY_TASK_ID (an `sbatch --array` job) or JOB_COMPLETION_INDEX (a Kubernetes Indexed Job, with --shard-count N)")
        }
    }
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
    // (`cnnlab status` of a folder that does not exist is an error.)
    if !run.exists() {
        return Ok(RunStatus { state: "empty".into(), accuracy: None, last_images_per_sec: None });
    }
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

    /// `cargo xtask train-all ARGS...` through the command line's grammar and checks.
    fn parse(args: &[&str]) -> Result<Options> {
        match crate::flags::parse(&[&["train-all"], args].concat())?.subcommand {
            crate::flags::XtaskCmd::TrainAll(f) => super::parse(&f),
            _ => unreachable!("a train-all command"),
        }
    }

    #[test]
    fn seeds_are_units_of_work() {
        let exps = vec![("fm/a".to_owned(), PathBuf::from("a.toml")), ("fm/b".to_owned(), PathBuf::from("b.toml"))];
        let opts = parse(&["--seeds", "2", "--only", "fm/*"]).unwrap();
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
        let err = parse(&["--seeds", "0"]).err().unwrap().to_string();
        assert!(err.contains("--seeds takes a count of at least 1"), "{err}");
        for bad in ["x", "-1"] {
            let err = parse(&["--seeds", bad]).err().unwrap().to_string();
            assert!(err.contains("can't parse `--seeds`"), "{bad}: {err}");
        }
    }

    #[test]
    fn rejects_unknown_options() {
        let err = parse(&["--epoch", "3"]).err().unwrap();
        assert!(err.to_string().contains("--epoch"), "{err}");
        let opts = parse(&["--epochs", "3", "--force"]).unwrap();
        assert!(opts.force);
        assert_eq!(opts.passthrough, ["--epochs", "3"]);
        let opts = parse(&["--shard", "2/4", "--quick"]).unwrap();
        assert_eq!(opts.shard, Some(Shard::Fixed(2, 4)));
        assert!(opts.quick);
        for bad in ["0/4", "5/4", "x/2", "3"] {
            let err = parse(&["--shard", bad]).err().unwrap();
            assert!(err.to_string().contains("I/N"), "{bad}: {err}");
        }
        let opts = parse(&["--jobs", "2", "--requeue"]).unwrap();
        assert_eq!((opts.jobs, opts.requeue), (2, true));
        assert!(parse(&["--jobs", "0"]).is_err());
    }

    /// Runs skipped for a missing dataset are one line per group and fetch command.
    #[test]
    fn missing_datasets_are_one_summary_line_each() {
        let skip = |what: &str| format!("{SKIPPED_MISSING}: cargo xtask download {what}");
        let summary: Vec<(usize, String, String)> = [
            ("cifar10/a", skip("cifar10")),
            ("cifar10/b", skip("cifar10")),
            ("pets/finetune-lite0", skip("efficientnet-lite0")),
            ("pets/m1", skip("pets")),
            ("pets/m2", skip("pets")),
            ("shapes/a", "trained: test accuracy 0.9000".to_owned()),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (n, o))| (i, n.to_owned(), o))
        .collect();
        let lines = summary_lines(&summary);
        assert_eq!(
            lines,
            [
                "shapes/a            trained: test accuracy 0.9000",
                "cifar10/* (2 runs)  skipped, dataset not present; fetch it with: cargo xtask download cifar10",
                "pets/* (1 run)      skipped, dataset not present; fetch it with: cargo xtask download efficientnet-lite0",
                "pets/* (2 runs)     skipped, dataset not present; fetch it with: cargo xtask download pets",
            ]
        );
    }

    /// `--shard auto` from Slurm's array variables or a Kubernetes Indexed Job's index.
    #[test]
    fn auto_shards_come_from_the_scheduler() {
        let auto = |extra: &[&str]| parse(&[&["--shard", "auto"], extra].concat()).unwrap();
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let slurm = env(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4")]);
        assert_eq!(resolve_shard(&auto(&[]), slurm).unwrap(), Some((3, 4)));
        // --array=10-16:2: tasks 10, 12, 14, 16.
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "14"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "16"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]);
        assert_eq!(resolve_shard(&auto(&[]), stepped).unwrap(), Some((3, 4)));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "0")]);
        assert_eq!(resolve_shard(&auto(&["--shard-count", "3"]), k8s).unwrap(), Some((1, 3)));
        let err = resolve_shard(&auto(&[]), k8s).unwrap_err().to_string();
        assert!(err.contains("--shard-count"), "{err}");
        let err = resolve_shard(&auto(&[]), env(&[])).unwrap_err().to_string();
        assert!(err.contains("SLURM_ARRAY_TASK_ID") && err.contains("JOB_COMPLETION_INDEX"), "{err}");
        let fixed = parse(&["--shard", "1/2"]).unwrap();
        assert_eq!(resolve_shard(&fixed, slurm).unwrap(), Some((1, 2)), "an explicit I/N wins");
    }
}
