//! What every test of the `cnnlab` binary uses: starting it as a user would, the
//! one-line error check, configs written from the shipped ones, and runs that several
//! tests read, trained once per test process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How many tests the harness runs at once (`--test-threads`, `RUST_TEST_THREADS`,
/// else one per CPU, as libtest decides). Every `cnnlab` a test starts gets
/// `CNNLAB_THREAD_SHARE` = this, so two tests at once do not oversubscribe the cores
/// (two trainings at once with all threads each took 2.8x longer in total than one
/// after the other).
fn tests_at_once() -> usize {
    let from_args = std::env::args().skip_while(|a| a != "--test-threads").nth(1);
    let from_flag = std::env::args().find_map(|a| a.strip_prefix("--test-threads=").map(str::to_owned));
    from_args
        .or(from_flag)
        .or_else(|| std::env::var("RUST_TEST_THREADS").ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `cnnlab` as a user starts it: in the workspace, datasets under `data_dir`, no
/// `LD_LIBRARY_PATH` (the binary finds libtorch itself), no `RUST_LOG`, and its share
/// of the CPUs.
pub(crate) fn command(data_dir: &Path) -> Command {
    as_a_user(Command::new(env!("CARGO_BIN_EXE_cnnlab")), data_dir)
}

/// [`command`], started inside the cgroup whose folder is `cgroup`: the limits set
/// there hold for cnnlab and everything it starts.
pub(crate) fn command_in_cgroup(data_dir: &Path, cgroup: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("echo $$ > \"$0/cgroup.procs\" && exec \"$@\"").arg(cgroup).arg(env!("CARGO_BIN_EXE_cnnlab"));
    as_a_user(cmd, data_dir)
}

fn as_a_user(mut cmd: Command, data_dir: &Path) -> Command {
    cmd.env("CNNLAB_DATA", data_dir)
        .env("CNNLAB_THREAD_SHARE", tests_at_once().to_string())
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("RUST_LOG")
        .current_dir(workspace());
    cmd
}

pub(crate) fn cnnlab(args: &[&str], data_dir: &Path) -> Output {
    command(data_dir).args(args).output().expect("cnnlab runs")
}

/// Asserts that `out` succeeded, showing its stderr when not.
pub(crate) fn assert_ok(out: &Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Asserts a failed run with this exit code and a single-line error containing `needle`.
pub(crate) fn assert_one_line_error(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

/// A JSON file of a run (metrics.json, classes.json, ...).
pub(crate) fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// history.csv of the run in `run` without the timing columns, to 4 decimals, a line
/// per epoch (the typed reader of cnnlab-train; as text so a failure shows the numbers).
pub(crate) fn history_without_timing(run: &Path) -> Vec<String> {
    let rows = cnnlab_train::RunDir::new(run).history_without_timing(Some(4)).unwrap();
    rows.iter().map(|row| row.map(|v| format!("{v:?}")).join(",")).collect()
}

/// The real Fashion-MNIST config with extra `[data]` keys, written to `dir`.
pub(crate) fn fashion_config(dir: &Path, extra_data: &str) -> PathBuf {
    let text = std::fs::read_to_string(workspace().join("configs/fashion-mnist/seed3-final.toml")).unwrap();
    let text = text.replace("dataset = \"fashion-mnist\"", &format!("dataset = \"fashion-mnist\"\n{extra_data}"));
    let path = dir.join("seed3-final.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The shapes seed-003 config on `n` training images, written to `dir/name`, with the
/// `[augment]` ops replaced when `ops` is given.
pub(crate) fn small_shapes_config(dir: &Path, name: &str, n: usize, ops: Option<&str>) -> PathBuf {
    let mut text = std::fs::read_to_string(workspace().join("configs/shapes/seed3-final.toml")).unwrap();
    text = text.replace("val_fraction = 0.1", &format!("val_fraction = 0.1\nmax_train = {n}\nmax_test = 200"));
    if let Some(ops) = ops {
        let start = text.find("ops = [").unwrap();
        let end = start + text[start..].find("\n]\n").unwrap() + 3;
        text.replace_range(start..end, &format!("ops = [\n{ops}\n]\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A folder under `target/tmp/` for runs that several tests read, one per test
/// process; the folders of earlier processes that have exited are removed.
pub(crate) fn shared_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-shared-runs");
        for old in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            let pid = old.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = parent.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A finished 3-epoch Fashion-MNIST run (6,000 training images, cosine schedule with
/// half an epoch of warm-up), trained once per test process, and its config: the
/// reference the interrupted runs resume to, and the run `predict` uses.
pub(crate) struct FashionRun {
    pub(crate) config: PathBuf,
    pub(crate) run: PathBuf,
    pub(crate) history: Vec<String>,
}

pub(crate) fn fashion_run() -> &'static FashionRun {
    static RUN: OnceLock<FashionRun> = OnceLock::new();
    RUN.get_or_init(|| {
        assert!(
            Path::new(cnnlab_data::FASHION_MNIST_SYSTEM_DIR).exists(),
            "needs the real Fashion-MNIST: apt-get install dataset-fashion-mnist (cargo xtask ci does it)"
        );
        let dir = shared_dir().join("fashion");
        std::fs::create_dir_all(&dir).unwrap();
        let config = fashion_config(&dir, "max_train = 6000\nmax_test = 1000");
        let text = std::fs::read_to_string(&config).unwrap().replace("epochs = 10", "epochs = 3");
        let text = text.replace("[train]", "[train]\nschedule = { kind = \"cosine\" }\nwarmup_epochs = 0.5");
        std::fs::write(&config, text).unwrap();
        let run = dir.join("whole");
        assert_ok(&cnnlab(&["-q", "train", config.to_str().unwrap(), "--out", run.to_str().unwrap()], &dir));
        let history = history_without_timing(&run);
        assert_eq!(history.len(), 3);
        FashionRun { config, run, history }
    })
}
