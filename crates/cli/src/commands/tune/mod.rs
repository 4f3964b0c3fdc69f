//! `cnnlab tune FILE`: a hyper-parameter search over the experiment FILE extends.
//! Each trial is an ordinary run folder `<study>/trial-<k>/` trained from
//! `<study>/trial-<k>.toml` (the experiment resolved, with the trial's values), so any
//! trial can be trained again alone. A pruned trial stops at the end of an epoch with
//! a resumable checkpoint: successive halving trains to the next rung, asks, and
//! resumes the same run (same schedule, same draws) only if it is promoted. The study
//! is `<study>/study.jsonl` (`cnnlab_cli::tune::study`): killed at any point, `tune`
//! goes on from it. TensorBoard's HParams tab shows the study (`hparams`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use cnnlab_cli::experiment::{default_run_dir, Experiment};
use cnnlab_cli::tune::{self, Event, Study, TrialState, TuneConfig, Value};
use cnnlab_train::{files, RunDir};
use serde::Deserialize;

use super::train::TrainRequest;
use crate::checks;
use crate::exit::{Failure, Kind, Outcome};

mod hparams;

pub(crate) struct TuneArgs<'a> {
    pub file: &'a Path,
    pub out: Option<&'a Path>,
    pub data_dir: &'a Path,
    pub quiet: bool,
    /// `--shard auto`: one of several workers on the study.
    pub shard: bool,
    /// `--jobs N`: start N workers.
    pub jobs: usize,
    /// `--check`: check the file and say what it would search.
    pub check: bool,
}

/// The study a tune file describes: its `[tune]`, the experiment it tunes (resolved,
/// as a table the trials' values are written into) and where it lives.
struct Plan {
    tune: TuneConfig,
    base: toml::Table,
    epochs: usize,
    dir: PathBuf,
}

pub(crate) fn tune_command(a: TuneArgs<'_>) -> Outcome {
    let plan = plan(a.file, a.out)?;
    if a.check {
        let t = &plan.tune;
        let limits =
            [t.trials.map(|n| format!("{n} trials")), t.budget_minutes.map(|m| format!("{m} minutes of training"))];
        println!(
            "{}: {} over {} keys ({:?} sampler, {:?} pruner), {} epochs a trial, {}; study folder {}",
            a.file.display(),
            t.metric.name(),
            t.space.len(),
            t.sampler,
            t.pruner,
            plan.epochs,
            limits.into_iter().flatten().collect::<Vec<_>>().join(" and "),
            plan.dir.display()
        );
        for (key, dist) in &t.space {
            println!("  {key}: {dist:?}");
        }
        return Ok(());
    }
    let dir = &plan.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if a.jobs > 1 {
        return jobs(&a, &plan);
    }
    // Alone, a tune holds the study; with --shard auto it is one of several workers.
    let _alone = match a.shard {
        true => None,
        false => Some(RunDir::new(dir).lock().map_err(|e| {
            let busy = matches!(e, cnnlab_run::Error::Locked { .. });
            let hint = anyhow!("{e}: another cnnlab tune holds the study (several workers: --shard auto or --jobs N)");
            Failure::new(if busy { Kind::Busy } else { Kind::Error }, hint)
        })?),
    };
    let direction = plan.tune.metric.direction();
    let mut study = Study::open(dir, &plan.tune.space, plan.tune.pruner, direction)?;
    study.begin(plan.tune.metric.name())?;
    tracing::info!("study {}: {} trials so far", dir.display(), study.trials.len());
    loop {
        study.reload()?;
        hparams::write(dir, &plan.tune, &study, false)?;
        // A running trial whose folder no live worker holds (one a killed tune left,
        // or one another worker paused), else a new trial.
        let running: Vec<usize> =
            (0..study.trials.len()).filter(|&k| study.trials[k].record.state == TrialState::Running).collect();
        let mut took = false;
        for k in running {
            if run_trial(&plan, &mut study, k, a.data_dir, a.quiet)? {
                took = true;
                break;
            }
        }
        if took {
            continue;
        }
        let started = study.start_trial(|study| {
            if !more_trials(&plan.tune, study) {
                return None;
            }
            let k = study.trials.len();
            let seen = tune::observations(study, direction);
            let params = tune::sampler::suggest(plan.tune.sampler, &plan.tune.space, plan.tune.seed, k, &seen);
            Some(params.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
        })?;
        match started {
            Some(k) => {
                run_trial(&plan, &mut study, k, a.data_dir, a.quiet)?;
            }
            None => break,
        }
    }
    study.reload()?;
    hparams::write(dir, &plan.tune, &study, true)?;
    let confirmed = match (plan.tune.confirm, a.shard) {
        (Some(c), false) => confirm(&plan, &study, c, a.data_dir, a.quiet)?,
        (Some(_), true) => {
            tracing::info!("--shard auto: the confirmation runs in a plain `cnnlab tune` once the workers are done");
            None
        }
        (None, _) => None,
    };
    summarise(a.file, &plan, &study, confirmed.as_ref())?;
    Ok(())
}

/// A confirmed trial: its test accuracy over seeds against the untuned experiment's.
#[derive(Debug, Clone, serde::Serialize)]
struct Confirmed {
    trial: usize,
    accuracies: Vec<f64>,
    mean: f64,
    /// mean(trial) - mean(untuned).
    difference: f64,
    p_value: f64,
    holm_p_value: f64,
    better: bool,
}

/// The confirmation: the untuned experiment and each of the best `top` trials'
/// values trained over `seeds` seeds (`<study>/confirm/<name>/seed-<k>/`, resumable
/// like any seed set), their test accuracies compared by Welch's t-test over seeds
/// with Holm's correction over the `top` comparisons (alpha 0.05). Printed, and
/// written to `<study>/confirm.json`.
fn confirm(
    plan: &Plan,
    study: &Study,
    c: tune::Confirm,
    data_dir: &Path,
    quiet: bool,
) -> Outcome<Option<(Vec<f64>, Vec<Confirmed>)>> {
    use cnnlab_metrics::stats;
    let direction = plan.tune.metric.direction();
    let mut ranked: Vec<(usize, f64)> = study
        .trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.record.state == TrialState::Complete)
        .filter_map(|(k, t)| t.value.filter(|v| !v.is_nan()).map(|v| (k, v)))
        .collect();
    if direction == tune::Direction::Minimize {
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    } else {
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    }
    ranked.truncate(c.top);
    if ranked.is_empty() {
        tracing::warn!("no trial completed: nothing to confirm");
        return Ok(None);
    }
    let dir = plan.dir.join("confirm");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let seeds = toml::Value::Array((0..c.seeds as i64).map(toml::Value::Integer).collect());
    let train_set = |name: &str, params: Option<&BTreeMap<String, Value>>| -> Outcome<Vec<f64>> {
        let mut config = plan.base.clone();
        for (key, value) in params.into_iter().flatten() {
            tune::space::set(&mut config, key, value.to_toml())?;
        }
        tune::space::set(&mut config, "train.seeds", seeds.clone())?;
        let path = dir.join(format!("{name}.toml"));
        cnnlab_run::write_bytes(&path, toml::to_string(&config).context("writing a confirmation config")?.as_bytes())?;
        let out = dir.join(name);
        tracing::info!("confirm: {name} over {} seeds", c.seeds);
        let req = TrainRequest {
            config: path,
            out: out.clone(),
            resume: false,
            seed: None,
            epochs: None,
            quick: false,
            max_batches: None,
            force: false,
            if_unfinished: false,
            requeue: false,
            data_dir: data_dir.to_path_buf(),
            stop_after: None,
            lock_held: false,
        };
        super::train::run(&req, quiet)?;
        let evidence = cnnlab_cli::compare::Evidence::load(&out)?;
        Ok(evidence.per_seed(stats::Metric::Accuracy)?)
    };
    let base = train_set("untuned", None)?;
    let mut confirmed = Vec::new();
    for &(k, _) in &ranked {
        let accuracies = train_set(&format!("trial-{k}"), Some(&study.trials[k].params))?;
        let w = stats::welch(&base, &accuracies).context("Welch's test over seeds")?;
        let mean = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
        confirmed.push(Confirmed {
            trial: k,
            accuracies,
            mean,
            difference: w.difference,
            p_value: w.p_value,
            holm_p_value: f64::NAN,
            better: false,
        });
    }
    let p: Vec<f64> = confirmed.iter().map(|c| c.p_value).collect();
    for (c, h) in confirmed.iter_mut().zip(stats::holm(&p, 0.05).context("Holm's correction")?) {
        c.holm_p_value = h.adjusted;
        c.better = h.reject && c.difference > 0.0;
    }
    let json = serde_json::json!({ "metric": "test accuracy", "seeds": c.seeds, "untuned": base, "trials": confirmed });
    cnnlab_run::write_json(&plan.dir.join("confirm.json"), &json)?;
    Ok(Some((base, confirmed)))
}

/// `--jobs N`: N workers (`cnnlab tune --shard auto`, each with its share of the
/// CPUs) on the study, then the summary.
fn jobs(a: &TuneArgs<'_>, plan: &Plan) -> Outcome {
    let exe = std::env::current_exe().context("finding the cnnlab-torch binary")?;
    let mut children = Vec::new();
    for _ in 0..a.jobs {
        let mut cmd = std::process::Command::new(&exe);
        if a.quiet {
            cmd.arg("-q");
        }
        cmd.arg("tune").arg(a.file).arg("--out").arg(&plan.dir).arg("--shard").arg("auto");
        cmd.arg("--data-dir").arg(a.data_dir).env("CNNLAB_THREAD_SHARE", a.jobs.to_string());
        children.push(cmd.stdout(std::process::Stdio::null()).spawn().context("starting a tune worker")?);
    }
    let mut failed = 0;
    for mut child in children {
        if !child.wait().is_ok_and(|s| s.success()) {
            failed += 1;
        }
    }
    let study = Study::open(&plan.dir, &plan.tune.space, plan.tune.pruner, plan.tune.metric.direction())?;
    hparams::write(&plan.dir, &plan.tune, &study, true)?;
    let confirmed = match plan.tune.confirm {
        Some(c) => confirm(plan, &study, c, a.data_dir, a.quiet)?,
        None => None,
    };
    summarise(a.file, plan, &study, confirmed.as_ref())?;
    if failed > 0 {
        return Err(Failure::new(
            Kind::Error,
            anyhow!("{failed} of {} tune workers failed (their errors are above)", a.jobs),
        ));
    }
    Ok(())
}

/// Whether the study starts another trial: fewer than `trials`, within the budget.
fn more_trials(t: &TuneConfig, study: &Study) -> bool {
    let count_ok = t.trials.is_none_or(|n| study.trials.len() < n);
    let budget_ok = t.budget_minutes.is_none_or(|m| study.seconds() < m * 60.0);
    count_ok && budget_ok
}

/// Reads FILE: its `[tune]`, the experiment it extends, and checks every key of the
/// space against that experiment before anything trains.
fn plan(file: &Path, out: Option<&Path>) -> anyhow::Result<Plan> {
    let (mut table, sources) = Experiment::read_table(file)?;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let at = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map_or_else(|| file.display().to_string(), |i| format!("{}:{}", file.display(), i + 1))
    };
    let Some(tune_value) = table.remove("tune") else {
        anyhow::bail!(
            "{}: no [tune] section (a tune file extends an experiment and adds [tune] and [tune.space])",
            file.display()
        );
    };
    let tune_table = tune_value.as_table().ok_or_else(|| anyhow!("{}: `tune` must be a table", file.display()))?;
    let tune = TuneConfig::parse(tune_table).map_err(|e| {
        let msg = e.to_string();
        let key = msg.split(':').next().unwrap_or("").rsplit('.').next().unwrap_or("").trim_matches('"').to_owned();
        anyhow!("{}: {msg}", at(&key))
    })?;
    let exp = Experiment::deserialize(toml::Value::Table(table.clone()))
        .map_err(|e| anyhow!("{}: {}", file.display(), e.message().trim()))?;
    checks::validate(&exp).map_err(|invalid| sources.locate(invalid))?;
    for (key, dist) in &tune.space {
        let probe = match dist {
            tune::Dist::Uniform { low, .. } | tune::Dist::LogUniform { low, .. } => toml::Value::Float(*low),
            tune::Dist::Int { low, .. } => toml::Value::Integer(*low),
            tune::Dist::Choice(values) => values[0].clone(),
        };
        let mut config = table.clone();
        let place = at(&format!("\"{key}\""));
        tune::space::set(&mut config, key, probe).map_err(|e| anyhow!("{place}: tune.space.\"{key}\": {e}"))?;
        let exp = Experiment::deserialize(toml::Value::Table(config)).map_err(|e| {
            let msg = e.message().trim().replace('\n', " ");
            if msg.contains("unknown field") {
                anyhow!("{place}: tune.space.\"{key}\": no such key ({msg})")
            } else {
                anyhow!("{place}: tune.space.\"{key}\": {msg}")
            }
        })?;
        checks::validate(&exp).map_err(|invalid| anyhow!("{place}: tune.space.\"{key}\": {}", invalid.message))?;
    }
    let dir = out.map_or_else(|| default_run_dir(file), Path::to_path_buf);
    Ok(Plan { tune, epochs: exp.train.epochs, base: table, dir })
}

/// Trains trial `k` on from where it is, asking the pruner after each epoch, holding
/// its run folder's lock throughout (so no other worker trains it too). `false` when
/// another worker holds it.
fn run_trial(plan: &Plan, study: &mut Study, k: usize, data_dir: &Path, quiet: bool) -> Outcome<bool> {
    let config_path = plan.dir.join(format!("trial-{k}.toml"));
    let run_dir = plan.dir.join(format!("trial-{k}"));
    let _held = match RunDir::new(&run_dir).lock() {
        Ok(lock) => lock,
        Err(cnnlab_run::Error::Locked { .. }) => return Ok(false),
        Err(e) => return Err(Failure::new(Kind::Error, e)),
    };
    // What other workers recorded while this one waited.
    study.reload()?;
    if study.trials[k].record.state != TrialState::Running {
        return Ok(false);
    }
    let trial = &study.trials[k];
    let mut config = plan.base.clone();
    for (key, value) in &trial.params {
        tune::space::set(&mut config, key, value.to_toml())?;
    }
    let shown: Vec<String> = trial.params.iter().map(|(k, v)| format!("{k}={}", v.shown())).collect();
    // A sampled combination that the checks refuse is a failed trial, not a crash.
    let exp = Experiment::deserialize(toml::Value::Table(config.clone()));
    let invalid = match &exp {
        Ok(exp) => checks::validate(exp).err().map(|i| format!("{}: {}", i.key, i.message)),
        Err(e) => Some(e.message().trim().to_owned()),
    };
    if let Some(reason) = invalid {
        tracing::warn!("trial {k} ({}): {reason}", shown.join(", "));
        study.record(Event::End { trial: k, state: TrialState::Failed, value: None, reason: Some(reason) })?;
        return Ok(true);
    }
    if !config_path.exists() {
        let text = format!(
            "# trial {k} of the study {} ({})\n{}",
            plan.dir.display(),
            shown.join(", "),
            toml::to_string(&config)?
        );
        cnnlab_run::write_bytes(&config_path, text.as_bytes())?;
    }
    tracing::info!("trial {k}: {}", shown.join(", "));
    loop {
        // The epochs the trial's history has and the study has not seen (all of a
        // segment just trained, or what a killed `tune` trained before recording it).
        if report_epochs(plan, study, k, &run_dir)? {
            return Ok(true);
        }
        let done = study.trials[k].record.values.len();
        if RunDir::new(&run_dir).has(files::METRICS) || done >= plan.epochs {
            let value = study.trials[k].record.values.values().next_back().copied().filter(|v| !v.is_nan());
            tracing::info!(
                "trial {k}: complete, {} {}",
                plan.tune.metric.name(),
                value.map_or("NaN".into(), |v| format!("{v:.4}"))
            );
            study.record(Event::End { trial: k, state: TrialState::Complete, value, reason: None })?;
            return Ok(true);
        }
        let stop = plan.tune.pruner.stops(done, plan.epochs);
        let resume = RunDir::new(&run_dir).has(files::RESUME);
        let req = TrainRequest {
            config: if resume { RunDir::new(&run_dir).file(files::CONFIG) } else { config_path.clone() },
            out: run_dir.clone(),
            resume,
            seed: None,
            epochs: None,
            quick: false,
            max_batches: None,
            force: !resume,
            if_unfinished: false,
            requeue: false,
            data_dir: data_dir.to_path_buf(),
            stop_after: (stop < plan.epochs).then_some(stop),
            lock_held: true,
        };
        match super::train::run(&req, quiet) {
            Ok(()) => {}
            Err(f) if f.kind == Kind::Stopped || f.kind == Kind::DatasetMissing => return Err(f),
            Err(f) if is_pause(&f) => {}
            Err(f) => {
                report_epochs(plan, study, k, &run_dir)?;
                let reason = format!("{:#}", f.error).replace('\n', " ");
                tracing::warn!("trial {k} failed: {reason}");
                study.record(Event::End { trial: k, state: TrialState::Failed, value: None, reason: Some(reason) })?;
                return Ok(true);
            }
        }
    }
}

/// Records the epochs of trial `k`'s history the study has not seen, asking the
/// pruner after each; `true` when it pruned the trial (and recorded that).
fn report_epochs(plan: &Plan, study: &mut Study, k: usize, run_dir: &Path) -> anyhow::Result<bool> {
    let history = if RunDir::new(run_dir).has(files::HISTORY) { RunDir::new(run_dir).read_history()? } else { vec![] };
    let seen = study.trials[k].record.values.len();
    for row in history.iter().filter(|r| r.epoch > seen) {
        let value = match plan.tune.metric {
            tune::Metric::ValAcc => row.val_acc,
            tune::Metric::ValF1Macro => row.val_f1,
            tune::Metric::ValLoss => row.val_loss,
        };
        let value = Some(value).filter(|v| !v.is_nan());
        let prune = study.record(Event::Epoch { trial: k, epoch: row.epoch, value, seconds: row.seconds })?;
        // A trial that has trained all its epochs is complete whatever its last rung says.
        if prune && row.epoch < plan.epochs {
            let shown = value.map_or("NaN".into(), |v| format!("{v:.4}"));
            tracing::info!("trial {k}: pruned after epoch {} ({} {shown})", row.epoch, plan.tune.metric.name());
            study.record(Event::End { trial: k, state: TrialState::Pruned, value, reason: None })?;
            return Ok(true);
        }
    }
    Ok(false)
}

fn is_pause(f: &Failure) -> bool {
    f.error.chain().any(|e| matches!(e.downcast_ref::<cnnlab_train::Error>(), Some(cnnlab_train::Error::Paused { .. })))
}

/// The trials table on stdout and `best.toml` beside the study.
fn summarise(
    file: &Path,
    plan: &Plan,
    study: &Study,
    confirmed: Option<&(Vec<f64>, Vec<Confirmed>)>,
) -> anyhow::Result<()> {
    print_trials(plan, study);
    let Some((searched, _)) = study.best() else {
        println!("no trial completed: no best.toml");
        return Ok(());
    };
    // With a confirmation, the best is the confirmed trial whose test accuracy over
    // seeds is highest.
    let (k, why) = confirmed
        .and_then(|(base, confirmed)| print_confirmation(base, confirmed))
        .unwrap_or((searched, String::new()));
    let path = write_best(file, plan, study, k, &why)?;
    let value = study.trials[k].value.unwrap_or(f64::NAN);
    println!("best: trial {k} ({} {value:.4}) -> {}", plan.tune.metric.name(), path.display());
    Ok(())
}

/// The study's line and its table of trials: state, epochs, metric, values.
fn print_trials(plan: &Plan, study: &Study) {
    let metric = plan.tune.metric.name();
    let keys: Vec<&String> = plan.tune.space.keys().collect();
    println!(
        "study {}: {} trials, {:.1} CPU-minutes of training",
        plan.dir.display(),
        study.trials.len(),
        study.seconds() / 60.0
    );
    let mut header = format!("{:>5}  {:<9} {:>6} {:>10}", "trial", "state", "epochs", metric);
    for k in &keys {
        header.push_str(&format!("  {k}"));
    }
    println!("{header}");
    for (i, t) in study.trials.iter().enumerate() {
        let state = match t.record.state {
            TrialState::Running => "running",
            TrialState::Complete => "complete",
            TrialState::Pruned => "pruned",
            TrialState::Failed => "failed",
        };
        let value = t.value.or_else(|| t.record.values.values().next_back().copied());
        let mut row = format!(
            "{i:>5}  {state:<9} {:>6} {:>10}",
            t.record.values.len(),
            value.map_or("-".into(), |v| format!("{v:.4}"))
        );
        for k in &keys {
            row.push_str(&format!("  {}", t.params.get(*k).map_or("-".into(), Value::shown)));
        }
        println!("{row}");
    }
}

/// The confirmation's verdicts against the untuned experiment's accuracies `base`;
/// the confirmed trial of highest mean accuracy and best.toml's line saying so.
fn print_confirmation(base: &[f64], confirmed: &[Confirmed]) -> Option<(usize, String)> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "confirmation: test accuracy over {} seeds, Welch's t-test against the untuned experiment, Holm over {} trials",
        base.len(),
        confirmed.len()
    );
    println!(
        "  untuned     {:.4}  ({})",
        mean(base),
        base.iter().map(|a| format!("{a:.4}")).collect::<Vec<_>>().join(", ")
    );
    for c in confirmed {
        let verdict = if c.better {
            "better than untuned"
        } else if c.holm_p_value < 0.05 {
            "worse than untuned"
        } else {
            "not distinguishable from untuned"
        };
        println!(
            "  trial {:<4} {:.4}  {:+.4}, p = {:.3}, Holm p = {:.3}: {verdict}",
            c.trial, c.mean, c.difference, c.p_value, c.holm_p_value
        );
    }
    let top = confirmed.iter().max_by(|a, b| a.mean.total_cmp(&b.mean))?;
    let why = format!(
        "# Confirmed over {} seeds: test accuracy {:.4} vs untuned {:.4} ({:+.4}, Holm-adjusted p = {:.3}{}).\n",
        top.accuracies.len(),
        top.mean,
        mean(base),
        top.difference,
        top.holm_p_value,
        if top.better { ": better" } else { ": not shown better" }
    );
    Some((top.trial, why))
}

/// Writes `<study>/best.toml`: trial `k`'s values over what the tune file sets beside
/// `[tune]`, extending what the tune file extends; `why` is the confirmation's line.
fn write_best(file: &Path, plan: &Plan, study: &Study, k: usize, why: &str) -> anyhow::Result<PathBuf> {
    let best = &study.trials[k];
    let extends = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    let mut text = format!(
        "# The best trial ({k}, {} {:.4}) of the study {}: the tuned experiment with its values.\n{why}",
        plan.tune.metric.name(),
        best.value.unwrap_or(f64::NAN),
        plan.dir.display()
    );
    text.push_str(&format!("extends = {}\n\n", toml::Value::String(extends.display().to_string())));
    // What the tune file itself sets beside [tune] (a validation split, the trials'
    // epochs), then the tuned keys, written as the sections they belong to (a list
    // element's whole list, since TOML has no dotted key into an array).
    let mut chosen = std::fs::read_to_string(file)?.parse::<toml::Table>()?;
    chosen.remove("tune");
    let parent = chosen.remove("extends");
    for (key, value) in &best.params {
        let top = key.split('.').next().unwrap_or(key);
        let section = key.split(['.', '[']).nth(1).unwrap_or("");
        if key.contains('[') {
            let mut config = plan.base.clone();
            for (k2, v2) in &best.params {
                tune::space::set(&mut config, k2, v2.to_toml())?;
            }
            if let Some(list) = config.get(top).and_then(|t| t.get(section)) {
                let entry = chosen.entry(top.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                entry.as_table_mut().expect("a section").insert(section.to_owned(), list.clone());
            }
        } else {
            tune::space::set(&mut chosen, key, value.to_toml())?;
        }
    }
    // `best.toml` extends the tune file's own base: drop `[tune]` by extending what it extends.
    if let Some(toml::Value::String(parent)) = &parent {
        let parent = file.parent().unwrap_or(Path::new(".")).join(parent);
        let parent = parent.canonicalize().unwrap_or(parent);
        text = text.replace(
            &format!("extends = {}", toml::Value::String(extends.display().to_string())),
            &format!("extends = {}", toml::Value::String(parent.display().to_string())),
        );
    }
    text.push_str(&toml::to_string(&chosen)?);
    let path = plan.dir.join("best.toml");
    cnnlab_run::write_bytes(&path, text.as_bytes())?;
    Ok(path)
}
