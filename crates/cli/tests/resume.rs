//! Resuming: a run stopped by SIGKILL mid-epoch, or by Ctrl-C (SIGINT), SIGTERM (a
//! time limit, `kill`, Kubernetes) or SIGUSR1 (Slurm's `--signal` warning), resumes
//! with `--resume` to the history of an uninterrupted run (to 4 decimals) and its
//! test accuracy; the signals save a checkpoint and exit 128 + the signal. A finished
//! run trains on with `--resume --epochs N`.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::util::{
    assert_ok, assert_one_line_error, cnnlab, command, fashion_run, history_without_timing, read_json,
    small_shapes_config,
};

/// Starts a training run and waits until it is `after` into its second epoch.
fn start_and_wait_for_epoch_2(config: &Path, run: &Path, data_dir: &Path, after: Duration) -> Child {
    let child = command(data_dir)
        .args(["-q", "train", config.to_str().unwrap(), "--out", run.to_str().unwrap()])
        .spawn()
        .unwrap();
    let history = run.join("history.csv");
    let deadline = Instant::now() + Duration::from_secs(600);
    while std::fs::read_to_string(&history).map_or(0, |t| t.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "epoch 1 never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(after);
    child
}

/// Stops the shared Fashion-MNIST recipe with `signal` `wait_ms` into its second
/// epoch, checks the exit (`code`, or killed by signal 9), resumes it and compares
/// the history and test accuracy with the uninterrupted run's.
fn stop_and_resume(signal: &str, wait_ms: u64, code: Option<i32>) {
    let whole = fashion_run();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("cut");
    let mut child = start_and_wait_for_epoch_2(&whole.config, &run, tmp.path(), Duration::from_millis(wait_ms));
    let killed = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(!run.join("metrics.json").exists(), "{signal}: the run finished before the signal");
    match code {
        Some(code) => assert_eq!(status.code(), Some(code), "{signal}: exits {code} after saving"),
        None => assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9)),
    }
    assert!(run.join("resume.safetensors").exists());
    // A kill between epoch 2's history row and its checkpoint leaves a row that the
    // resumed run redoes: `status` goes by the checkpoint, as `--resume` does.
    let history = run.join("history.csv");
    let text = std::fs::read_to_string(&history).unwrap();
    let row = text.lines().last().unwrap().replacen("1,", "2,", 1);
    std::fs::write(&history, format!("{text}{row}\n")).unwrap();
    let status = cnnlab(&["status", "--json", run.to_str().unwrap()], tmp.path());
    assert_eq!(read_json_bytes(&status.stdout)["epochs_done"], 1, "{signal}");
    let out = cnnlab(&["-q", "train", "--resume", run.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{signal}: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(history_without_timing(&run), whole.history, "{signal}: resumed history differs");
    let (a, b) = (read_json(&run.join("metrics.json")), read_json(&whole.run.join("metrics.json")));
    assert_eq!(a["accuracy"], b["accuracy"], "{signal}");
}

fn read_json_bytes(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

#[test]
fn killed_mid_epoch_resumes_to_the_same_history() {
    stop_and_resume("-KILL", 400, None);
}

#[test]
fn ctrl_c_saves_exits_130_and_resumes_to_the_same_history() {
    stop_and_resume("-INT", 200, Some(130));
}

#[test]
fn sigterm_saves_exits_143_and_resumes_to_the_same_history() {
    stop_and_resume("-TERM", 300, Some(143));
}

#[test]
fn sigusr1_saves_exits_138_and_resumes_to_the_same_history() {
    stop_and_resume("-USR1", 100, Some(138));
}

/// `--resume RUN --epochs N` trains a finished run on to N epochs, as Keras'
/// `initial_epoch` does: with a constant learning rate, 1 epoch then 1 more gives the
/// history of 2 epochs in one go (timing columns aside).
#[test]
fn a_finished_run_trains_on_with_resume_and_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_shapes_config(tmp.path(), "small.toml", 300, None);
    let text = std::fs::read_to_string(&config).unwrap().replace("schedule = { kind = \"cosine\" }", "");
    std::fs::write(&config, text).unwrap();
    let (c, once) = (config.to_str().unwrap(), tmp.path().join("once"));
    assert_ok(&cnnlab(&["-q", "train", c, "--epochs", "2", "--out", once.to_str().unwrap()], tmp.path()));
    let out = cnnlab(&["-q", "train", "--resume", once.to_str().unwrap(), "--epochs", "1"], tmp.path());
    assert_one_line_error(&out, 1, "--epochs 1 is fewer than the 2 epochs");
    let twice2 = tmp.path().join("twice2");
    assert_ok(&cnnlab(&["-q", "train", c, "--epochs", "1", "--out", twice2.to_str().unwrap()], tmp.path()));
    assert_ok(&cnnlab(&["-q", "train", "--resume", twice2.to_str().unwrap(), "--epochs", "2"], tmp.path()));
    assert_eq!(history_without_timing(&twice2), history_without_timing(&once));
    let metrics = |d: &Path| read_json(&d.join("metrics.json"));
    assert_eq!(metrics(&twice2)["epochs"], 2);
    assert_eq!(metrics(&twice2)["accuracy"], metrics(&once)["accuracy"]);
    assert!(std::fs::read_to_string(twice2.join("config.toml")).unwrap().contains("epochs = 2"));

    // A run started with --max-batches resumes with it, as `--resume RUN` (the hint a
    // stopped run prints) says nothing of it: the same history as in one go.
    let (short, cut) = (tmp.path().join("short"), tmp.path().join("cut"));
    let first = ["-q", "train", c, "--max-batches", "2", "--epochs"];
    assert_ok(&cnnlab(&[&first[..], &["2", "--out", short.to_str().unwrap()]].concat(), tmp.path()));
    assert_ok(&cnnlab(&[&first[..], &["1", "--out", cut.to_str().unwrap()]].concat(), tmp.path()));
    assert_eq!(read_json(&cut.join("options.json"))["max_batches"], 2);
    assert_ok(&cnnlab(&["-q", "train", "--resume", cut.to_str().unwrap(), "--epochs", "2"], tmp.path()));
    assert_eq!(history_without_timing(&cut), history_without_timing(&short));
}

/// A second signal quits at once with 128 + its number, whatever the process is
/// doing: training, writing the checkpoint of the first signal, or exiting through
/// libtorch's destructors. 50 tries, the second signal at a random moment up to
/// 100 ms after the first: never a crash (101, 134, 139, a backtrace, an INTERNAL
/// ASSERT) and never a message that denies a checkpoint another one reports saved.
#[test]
fn a_second_signal_quits_at_once_with_128_plus_the_signal() {
    let tmp = tempfile::tempdir().unwrap();
    // 40 tiny images and a linear model: a process starts and trains an epoch in a
    // fraction of a second, so 50 tries cost under a minute.
    let pics = tmp.path().join("pics");
    for (class, shade) in [("dark", 40u8), ("light", 200)] {
        std::fs::create_dir_all(pics.join(class)).unwrap();
        for i in 0..20u8 {
            image::GrayImage::from_fn(8, 8, |x, y| image::Luma([shade.wrapping_add(i * 3) ^ (x * y) as u8]))
                .save(pics.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let config = tmp.path().join("tiny.toml");
    let text = format!(
        "[data]\ndataset = \"image-folder\"\npath = \"{}\"\nimage_size = 8\ntest_fraction = 0.25\n\n[model]\nlayers = [{{ type = \"flatten\" }}, {{ type = \"linear\" }}]\n",
        pics.display()
    );
    std::fs::write(&config, text).unwrap();
    let (mut state, signals) = (0x9e37_79b9_7f4a_7c15_u64, [("-INT", 2), ("-TERM", 15), ("-USR1", 10)]);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..50 {
        let run = tmp.path().join(format!("run-{i}"));
        let child = command(tmp.path())
            .args(["-q", "train", config.to_str().unwrap(), "--epochs", "100000", "--out", run.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The handlers are in place once the first epoch is written.
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::fs::read_to_string(run.join("history.csv")).map_or(0, |t| t.lines().count()) < 2 {
            assert!(Instant::now() < deadline, "try {i}: epoch 1 never finished");
            std::thread::sleep(Duration::from_millis(5));
        }
        let (first, first_number) = signals[(next() % 3) as usize];
        let (second, second_number) = signals[(next() % 3) as usize];
        let pid = child.id().to_string();
        std::process::Command::new("kill").args([first, &pid]).status().unwrap();
        std::thread::sleep(Duration::from_micros(next() % 100_000));
        // The process may be gone already: then the first signal's exit is the one seen.
        let _ = std::process::Command::new("kill").args([second, &pid]).stderr(std::process::Stdio::null()).status();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(
            code == Some(128 + first_number) || code == Some(128 + second_number),
            "try {i}: {first} then {second} gave {:?}: {stderr}",
            out.status
        );
        for crash in ["panicked", "INTERNAL ASSERT", "backtrace", "Segmentation"] {
            assert!(!stderr.contains(crash), "try {i}: {first} then {second}: {stderr}");
        }
        assert!(!stderr.contains("without a checkpoint"), "try {i}: {stderr}");
    }
}
