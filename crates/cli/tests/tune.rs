//! `cnnlab tune` on shapes with tiny trials: the study, its trials as run folders,
//! best.toml, resuming after kill -9 to the same study, and bad keys named.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{assert_ok, assert_one_line_error, cnnlab, command, small_shapes_config};

/// A tune file over the shapes config in `dir`: 5 trials of 3 epochs, successive
/// halving with rungs at epochs 1 and 2.
fn tune_file(dir: &Path, space: &str) -> std::path::PathBuf {
    let base = small_shapes_config(dir, "shapes.toml", 300, None);
    let text = std::fs::read_to_string(&base).unwrap().replace("epochs = 15", "epochs = 3");
    std::fs::write(&base, text).unwrap();
    let path = dir.join("tune.toml");
    std::fs::write(
        &path,
        format!(
            "extends = \"shapes.toml\"\n\n[tune]\nmetric = \"val_acc\"\ntrials = 5\nsampler = \"tpe\"\npruner = {{ kind = \"asha\", min_epochs = 1, reduction = 2 }}\n\n[tune.space]\n{space}\n"
        ),
    )
    .unwrap();
    path
}

const SPACE: &str = "\"train.lr\" = { log_uniform = [1e-4, 3e-2] }\n\"train.batch_size\" = { choice = [32, 64] }";

/// The study's events without their timings.
fn events(study: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(study.join("study.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

/// A study killed (SIGKILL) in the middle and run again ends with the same trials,
/// values, epochs and prune decisions as one that ran through; every trial is a run
/// folder with its resolved config, the best is written as best.toml, and some trial
/// was pruned at a rung. TensorBoard's HParams tab shows the study.
#[test]
fn tune_resumes_after_kill_to_the_same_study() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tune_file(tmp.path(), SPACE);
    let whole = tmp.path().join("whole");
    let out = cnnlab(&["-q", "tune", file.to_str().unwrap(), "--out", whole.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reference = events(&whole);
    let ends: Vec<&serde_json::Value> = reference.iter().filter(|e| e["event"] == "end").collect();
    assert_eq!(ends.len(), 5, "{stdout}");
    assert!(ends.iter().any(|e| e["state"] == "pruned"), "successive halving prunes some trial: {stdout}");
    assert!(ends.iter().any(|e| e["state"] == "complete"), "{stdout}");
    for k in 0..5 {
        assert!(whole.join(format!("trial-{k}/config.toml")).is_file(), "trial {k} is a run folder");
    }
    assert!(whole.join("best.toml").is_file() && stdout.contains("best: trial"), "{stdout}");
    // best.toml is an experiment: it extends the tuned config and sets the winner's values.
    let best = std::fs::read_to_string(whole.join("best.toml")).unwrap();
    assert!(best.contains("shapes.toml") && best.contains("lr = ") && best.contains("batch_size = "), "{best}");
    assert_ok(&cnnlab(&["summary", whole.join("best.toml").to_str().unwrap()], tmp.path()));

    tensorboard_shows_the_study(&whole, &reference);

    // The same study, killed once it has recorded some epochs, then run again.
    let cut = tmp.path().join("cut");
    let mut child = command(tmp.path())
        .args(["-q", "tune", file.to_str().unwrap(), "--out", cut.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let lines = std::fs::read_to_string(cut.join("study.jsonl")).map_or(0, |t| t.lines().count());
        if lines >= 4 || start.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = events(&cut);
    assert!(partial.len() < reference.len(), "killed before the end ({} events)", partial.len());
    assert_ok(&cnnlab(&["-q", "tune", file.to_str().unwrap(), "--out", cut.to_str().unwrap()], tmp.path()));
    assert_eq!(events(&cut), reference, "the resumed study is the uninterrupted one");
    // Run again on a finished study: nothing to train, the same summary.
    let again = cnnlab(&["-q", "tune", file.to_str().unwrap(), "--out", cut.to_str().unwrap()], tmp.path());
    assert_ok(&again);
    assert_eq!(events(&cut), reference);
}

/// A key the experiment does not have is named with its file and line before
/// anything trains; so is a bad [tune] value.
#[test]
fn tune_names_a_bad_key_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tune_file(
        tmp.path(),
        "\"train.lr\" = { log_uniform = [1e-3, 1e-1] }\n\"train.lrr\" = { uniform = [0.1, 0.2] }",
    );
    let out = cnnlab(&["tune", file.to_str().unwrap(), "--out", tmp.path().join("s").to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "tune.toml:11: tune.space.\"train.lrr\": no such key");
    assert!(!tmp.path().join("s/study.jsonl").exists(), "nothing ran");
    let file = tune_file(tmp.path(), "\"augment.ops[7].p\" = { uniform = [0.1, 0.2] }");
    let out = cnnlab(&["tune", file.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "tune.space.\"augment.ops[7].p\": augment.ops[7] does not exist");
    let text = std::fs::read_to_string(&file).unwrap().replace("sampler = \"tpe\"", "sampler = \"bayes\"");
    std::fs::write(&file, text).unwrap();
    let out = cnnlab(&["tune", file.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "tune.toml:6: tune.sampler: `bayes` is not random, sobol, grid or tpe");
}

/// Two `tune --shard auto` workers on one study folder, started together, share it:
/// every trial is started once, no epoch of any trial is trained twice (each trial's
/// train.log), and the study ends with all its trials. A plain `tune` on a study
/// another plain `tune` holds is refused (exit 4).
#[test]
fn two_shard_workers_never_train_the_same_trial() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tune_file(tmp.path(), SPACE);
    let text = std::fs::read_to_string(&file).unwrap().replace("trials = 5", "trials = 6");
    std::fs::write(&file, text).unwrap();
    let study = tmp.path().join("shared");
    let worker = || {
        command(tmp.path())
            .args(["-q", "tune", file.to_str().unwrap(), "--out", study.to_str().unwrap(), "--shard", "auto"])
            .env("CNNLAB_THREAD_SHARE", "2")
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (worker(), worker());
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let all = events(&study);
    let starts: Vec<u64> = all.iter().filter(|e| e["event"] == "start").map(|e| e["trial"].as_u64().unwrap()).collect();
    assert_eq!(starts, (0..6).collect::<Vec<u64>>(), "each trial started once, in order");
    assert_eq!(all.iter().filter(|e| e["event"] == "end").count(), 6);
    for k in 0..6 {
        let log = std::fs::read_to_string(study.join(format!("trial-{k}/train.log"))).unwrap_or_default();
        for epoch in 1..=3 {
            let trained = log.lines().filter(|l| l.contains(&format!("epoch {epoch}/3:"))).count();
            assert!(trained <= 1, "trial {k} trained epoch {epoch} {trained} times:\n{log}");
        }
        let epochs: Vec<u64> = all
            .iter()
            .filter(|e| e["event"] == "epoch" && e["trial"] == k)
            .map(|e| e["epoch"].as_u64().unwrap())
            .collect();
        assert_eq!(epochs, (1..=epochs.len() as u64).collect::<Vec<_>>(), "trial {k}'s epochs recorded once each");
    }

    // Alone, a tune holds its study: a second plain one is refused while it runs.
    let alone = tmp.path().join("alone");
    let mut first = command(tmp.path())
        .args(["-q", "tune", file.to_str().unwrap(), "--out", alone.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !alone.join("study.jsonl").exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = cnnlab(&["tune", file.to_str().unwrap(), "--out", alone.to_str().unwrap()], tmp.path());
    first.kill().unwrap();
    first.wait().unwrap();
    assert_one_line_error(&second, 4, "another cnnlab tune holds the study");
}

/// `confirm = { top = 1, seeds = 2 }`: the best trial's values and the untuned
/// experiment are each trained over 2 seeds (seed sets under confirm/), compared by
/// Welch over seeds with Holm, and best.toml says the verdict.
#[test]
fn tune_confirms_the_winner_over_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tune_file(tmp.path(), SPACE);
    let text =
        std::fs::read_to_string(&file).unwrap().replace("trials = 5", "trials = 3\nconfirm = { top = 1, seeds = 2 }");
    std::fs::write(&file, text).unwrap();
    let study = tmp.path().join("study");
    let out = cnnlab(&["-q", "tune", file.to_str().unwrap(), "--out", study.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("confirmation: test accuracy over 2 seeds"), "{stdout}");
    let confirm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study.join("confirm.json")).unwrap()).unwrap();
    assert_eq!(confirm["untuned"].as_array().unwrap().len(), 2);
    let trial = &confirm["trials"][0];
    assert_eq!(trial["accuracies"].as_array().unwrap().len(), 2);
    let k = trial["trial"].as_u64().unwrap();
    for seed in 0..2 {
        assert!(study.join(format!("confirm/untuned/seed-{seed}/metrics.json")).is_file());
        assert!(study.join(format!("confirm/trial-{k}/seed-{seed}/metrics.json")).is_file());
    }
    let p = trial["holm_p_value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p), "{trial}");
    let best = std::fs::read_to_string(study.join("best.toml")).unwrap();
    assert!(best.contains("# Confirmed over 2 seeds: test accuracy"), "{best}");
    assert!(best.contains(&format!("The best trial ({k},")), "{best}");

    // The report's tuning section: the trials, the plots, the verdict in words; the
    // trials are not run rows, the confirmation's seed sets are.
    assert_ok(&cnnlab(&["report", tmp.path().to_str().unwrap()], tmp.path()));
    let report = std::fs::read_to_string(tmp.path().join("REPORT.md")).unwrap();
    assert!(report.contains("## Tuning: study") && report.contains("| trial | state | epochs | val_acc |"), "{report}");
    assert!(report.contains(&format!("Trial {k} is ")) && report.contains("Holm-adjusted p ="), "{report}");
    for plot in ["best_so_far.png", "parallel_coordinates.png"] {
        assert!(study.join("plots").join(plot).is_file(), "{plot}");
        assert!(report.contains(&format!("study/plots/{plot}")), "{report}");
    }
    assert!(!report.contains("| study/trial-"), "trials are not runs of the report: {report}");
    assert!(report.contains("study/confirm/untuned"), "{report}");
    let html = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
    assert!(html.contains("<h2>Tuning: study</h2>"));
}

/// A real TensorBoard server (`read_hparams.py`, tensorboard from PyPI in .venv) on the
/// study folder answers the HParams tab's requests with the study: the space as its
/// hparams (the log-uniform range as an interval, the choice as its values), the
/// validation accuracy of each trial's own scalars as the first metric, and one session
/// per trial with the trial's sampled values, its state (complete: success; pruned:
/// unknown, ended) and its last epoch's accuracy from history.csv at that epoch.
fn tensorboard_shows_the_study(study: &Path, events: &[serde_json::Value]) {
    let trials: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "start").collect();
    let read = std::process::Command::new(crate::util::workspace().join(".venv/bin/python"))
        .arg(crate::util::workspace().join("crates/cli/tests/read_hparams.py"))
        .arg(study)
        .arg(trials.len().to_string())
        .output()
        .expect(".venv's python runs (cargo xtask setup)");
    assert!(read.status.success(), "read_hparams.py: {}", String::from_utf8_lossy(&read.stderr));
    let board: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    let experiment = &board["experiment"];
    let infos = experiment["hparamInfos"].as_array().unwrap();
    let names: Vec<&str> = infos.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["train.batch_size", "train.lr"], "{experiment}");
    assert_eq!(infos[0]["domainDiscrete"], serde_json::json!([32.0, 64.0]), "{experiment}");
    assert_eq!(infos[1]["domainInterval"], serde_json::json!({ "minValue": 1e-4, "maxValue": 3e-2 }), "{experiment}");
    assert_eq!(infos[1]["type"], "DATA_TYPE_FLOAT64");
    assert_eq!(experiment["metricInfos"][0]["name"], serde_json::json!({ "group": "tb", "tag": "accuracy/val" }));

    let groups = board["session_groups"]["sessionGroups"].as_array().unwrap();
    assert_eq!(groups.len(), trials.len(), "{board}");
    for start in trials {
        let k = start["trial"].as_u64().unwrap();
        let name = format!("trial-{k}");
        let group = groups.iter().find(|g| g["name"] == name.as_str()).unwrap_or_else(|| panic!("no {name}: {board}"));
        let lr = start["params"]["train.lr"].as_f64().unwrap();
        assert_eq!(group["hparams"]["train.lr"].as_f64(), Some(lr), "{name}");
        assert_eq!(
            group["hparams"]["train.batch_size"].as_f64(),
            start["params"]["train.batch_size"].as_f64(),
            "{name}"
        );
        let end = events.iter().find(|e| e["event"] == "end" && e["trial"] == k).unwrap();
        let session = &group["sessions"][0];
        let status = session["status"].as_str().unwrap_or("STATUS_UNKNOWN");
        let want = if end["state"] == "complete" { "STATUS_SUCCESS" } else { "STATUS_UNKNOWN" };
        assert_eq!(status, want, "{name} ended {}: {session}", end["state"]);
        assert!(
            session["endTimeSecs"].as_f64().unwrap_or(0.0) >= session["startTimeSecs"].as_f64().unwrap(),
            "{session}"
        );

        let history = std::fs::read_to_string(study.join(&name).join("history.csv")).unwrap();
        let header: Vec<&str> = history.lines().next().unwrap().split(',').collect();
        let last: Vec<f64> = history.lines().last().unwrap().split(',').map(|v| v.parse().unwrap()).collect();
        let column = |c: &str| last[header.iter().position(|h| *h == c).unwrap()];
        let accuracy = group["metricValues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"]["tag"] == "accuracy/val")
            .unwrap_or_else(|| panic!("{name} has no accuracy/val: {group}"));
        assert_eq!(accuracy["value"].as_f64().unwrap() as f32, column("val_acc") as f32, "{name}");
        assert_eq!(accuracy["trainingStep"].as_f64(), Some(column("epoch")), "{name}");
    }
}
