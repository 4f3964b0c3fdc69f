//! The run folder, `runs/<group>/<stem>/`: every file a run leaves, named here and
//! nowhere else, written through one atomic writer (a temporary file renamed into
//! place, removed again when the write fails), read back as typed values, and owned
//! by one process at a time (`.lock`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use cnnlab_data::ImageShape;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Tta;
use crate::error::{Error, Result};
use crate::schedule::Monitor;

/// The file names of a run folder.
pub mod files {
    /// The resolved experiment (`extends` merged, overrides applied).
    pub const CONFIG: &str = "config.toml";
    pub const CLASSES: &str = "classes.json";
    pub const SHAPE: &str = "shape.json";
    pub const CLASS_COUNTS: &str = "class_counts.json";
    pub const SPLIT: &str = "split.json";
    pub const SKIPPED: &str = "skipped.json";
    pub const NORMALIZER: &str = "normalizer.json";
    pub const HISTORY: &str = "history.csv";
    pub const LAST: &str = "last.safetensors";
    pub const BEST: &str = "best.safetensors";
    pub const RESUME: &str = "resume.safetensors";
    pub const METRICS: &str = "metrics.json";
    pub const REPORT: &str = "classification_report.txt";
    pub const PREDICTIONS: &str = "predictions.csv";
    pub const LOG: &str = "train.log";
    pub const LOCK: &str = ".lock";
    /// The `cnnlab train` options that change what is trained but are not in the
    /// config (`--max-batches`), which `--resume` restores.
    pub const OPTIONS: &str = "options.json";
    /// Folder of the run's TensorBoard event file.
    pub const TB: &str = "tb";
    /// The class pairs most often confused on the test set (`cnnlab train` writes it).
    pub const MOST_CONFUSED: &str = "most_confused.csv";
    /// The test examples with the highest loss (beside `plots/top_losses.png`).
    pub const TOP_LOSSES: &str = "top_losses.csv";
    /// Folder of a one-vs-rest run's member networks, one sub-folder per class.
    pub const OVR: &str = "ovr";
    /// Folder of the report's plots.
    pub const PLOTS: &str = "plots";
}

/// Header of `history.csv`, one row per epoch.
pub const HISTORY_HEADER: [&str; 9] =
    ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr", "seconds", "images_per_sec"];

/// One row of `history.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    /// Macro-averaged F1 on the validation split.
    pub val_f1: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    pub seconds: f64,
    pub images_per_sec: f64,
}

impl EpochRecord {
    /// The row without its timing columns (`seconds`, `images_per_sec`, which no two
    /// runs share): epoch, train loss and accuracy, validation loss, accuracy and F1,
    /// learning rate, each rounded to `decimals` places (`None`: exact). What an
    /// interrupted and resumed run must have in common with an uninterrupted one.
    pub fn without_timing(&self, decimals: Option<i32>) -> [f64; 7] {
        let values =
            [self.epoch as f64, self.train_loss, self.train_acc, self.val_loss, self.val_acc, self.val_f1, self.lr];
        match decimals {
            Some(d) => values.map(|v| (v * 10f64.powi(d)).round() / 10f64.powi(d)),
            None => values,
        }
    }

    /// The value of a validation metric in this row.
    pub fn monitored(&self, metric: Monitor) -> f64 {
        match metric {
            Monitor::ValLoss => self.val_loss,
            Monitor::ValAcc => self.val_acc,
            Monitor::ValF1 => self.val_f1,
        }
    }
}

/// What `metrics.json` holds for the final evaluation on the test split: the keys of
/// `cnnlab metrics --json` (from cnnlab-metrics) plus the run's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalMetrics {
    #[serde(flatten)]
    pub report: cnnlab_metrics::Report,
    /// Mean cross-entropy on the test split (`accuracy` is in the report).
    pub loss: f64,
    pub n_samples: usize,
    /// Epochs actually trained (fewer than configured after early stopping).
    pub epochs: usize,
    pub device: String,
    pub trainable_params: i64,
    pub train_seconds: f64,
    pub images_per_sec: f64,
    #[serde(default)]
    pub tta: Tta,
    /// The process's peak resident memory (Linux' VmHWM) when the run finished, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_mb: Option<f64>,
}

/// What `options.json` holds: the training options of a run that are not in its
/// config. A run folder without the file (written before it existed) had none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOptions {
    /// At most this many batches per epoch (`--max-batches`, `--quick`).
    #[serde(default)]
    pub max_batches: Option<usize>,
}

/// This process's peak resident set size in MB (`VmHWM` of /proc/self/status); `None`
/// where there is no such file.
pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Which trained weights of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// `best.safetensors`: the epoch with the best `train.monitor`.
    Best,
    /// `last.safetensors`: the final weights, which the run's test metrics used.
    Last,
}

impl Weights {
    pub fn file(self) -> &'static str {
        match self {
            Weights::Best => files::BEST,
            Weights::Last => files::LAST,
        }
    }
}

/// How far a run folder got.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// No run has started here (missing folder, or no `config.toml` yet).
    Empty,
    /// Training stopped before the test evaluation; `--resume` continues it.
    Unfinished {
        /// Whole epochs that `resume.safetensors` holds (where `--resume` goes on).
        epochs_done: usize,
    },
    /// `metrics.json` was written.
    Finished { accuracy: f64, epochs: usize },
}

/// A run folder. Cheap to make; nothing is touched until a method is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<run>/<name>`, for a name from [`files`].
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The folder of a one-vs-rest member network for `class`.
    pub fn member(&self, class: &str) -> RunDir {
        RunDir::new(self.path.join(files::OVR).join(safe_name(class)))
    }

    pub fn create(&self) -> Result<()> {
        if self.path.exists() && !self.path.is_dir() {
            return Err(Error::Format {
                path: self.path.clone(),
                reason: "is a file, not a run folder: give --out a folder (new or a run's)".into(),
            });
        }
        std::fs::create_dir_all(&self.path).map_err(|e| Error::io(&self.path, e))
    }

    pub fn has(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    /// Where the run stands, from the files it left.
    pub fn state(&self) -> Result<RunState> {
        if self.has(files::METRICS) {
            let m = self.read_metrics()?;
            return Ok(RunState::Finished { accuracy: m.report.accuracy, epochs: m.epochs });
        }
        if self.has(files::RESUME) {
            // The checkpoint decides where `--resume` goes on (a kill between a
            // history row and its checkpoint leaves a row the resumed run redoes).
            // (A damaged checkpoint, which `--resume` names, falls back on the history.)
            let epochs_done = match crate::checkpoint::peek_progress(&self.file(files::RESUME)) {
                Ok(progress) => progress.epochs_done(),
                Err(_) if self.has(files::HISTORY) => self.read_history()?.len(),
                Err(_) => 0,
            };
            return Ok(RunState::Unfinished { epochs_done });
        }
        // A run that wrote its config but no checkpoint yet (stopped while loading or
        // in its first epoch) is a run: not a folder another training may take.
        if self.has(files::CONFIG) {
            return Ok(RunState::Unfinished { epochs_done: 0 });
        }
        Ok(RunState::Empty)
    }

    /// Takes the folder for this process until the guard drops. The folder itself is
    /// locked with the OS (`flock` on the directory, held for the life of the
    /// process and released by the kernel however it ends), so two processes on one
    /// host can never both hold it, even when they start at the same instant or
    /// someone deletes `.lock`. `.lock` says who holds it, for people and for other
    /// hosts: our pid, host and, under Slurm, `job=<SLURM_JOB_ID>`. Its text decides
    /// only across hosts, where the OS lock does not reach: a live process on
    /// another host or a Slurm job that `squeue` still lists keeps the folder; this
    /// very job before a requeue does not.
    pub fn lock(&self) -> Result<RunLock> {
        self.create()?;
        let path = self.file(files::LOCK);
        let job = std::env::var("SLURM_JOB_ID").ok().filter(|j| !j.is_empty());
        let me = match &job {
            Some(job) => format!("{} {} job={job}\n", std::process::id(), hostname()),
            None => format!("{} {}\n", std::process::id(), hostname()),
        };
        let folder = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        match folder.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let (pid, host) = owner_being_written(&path);
                return Err(Error::Locked { dir: self.path.clone(), pid, host });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&self.path, e)),
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.trim().is_empty() {
            let other_host = text.split_whitespace().nth(1).is_some_and(|h| h != hostname());
            if let Some((pid, host)) = lock_owner_alive(&text, job.as_deref()).filter(|_| other_host) {
                return Err(Error::Locked { dir: self.path.clone(), pid, host });
            }
            tracing::warn!("{}: taking over the lock of {:?}, which is gone", path.display(), text.trim());
        }
        write_bytes(&path, me.as_bytes())?;
        Ok(RunLock { path, _folder: folder })
    }

    /// Writes `<run>/<name>` atomically.
    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_bytes(&self.file(name), bytes)
    }

    /// Pretty JSON, atomically.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> Result<()> {
        write_json(&self.file(name), value)
    }

    /// The whole `history.csv`, atomically (a resumed run rewrites it without the
    /// rows of the epochs it redoes).
    pub fn write_history(&self, rows: &[EpochRecord]) -> Result<()> {
        let path = self.file(files::HISTORY);
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        let csv_err = |error| Error::Csv { path: path.clone(), error };
        w.write_record(HISTORY_HEADER).map_err(csv_err)?;
        for row in rows {
            w.serialize(row).map_err(csv_err)?;
        }
        let bytes = w.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
        write_bytes(&path, &bytes)
    }

    /// `tb/events.out.tfevents.*` from the run's config and `history` (plus `images`,
    /// named PNGs, at the last epoch), rewritten whole like `history.csv`.
    pub fn write_tensorboard(&self, history: &[EpochRecord], images: &[(&str, &[u8])]) -> Result<()> {
        let config = std::fs::read_to_string(self.file(files::CONFIG)).unwrap_or_default();
        crate::tensorboard::EventFile::open(&self.file(files::TB))?.write(&config, history, images)
    }

    /// `history.csv` with [`EpochRecord::without_timing`] applied to every row.
    pub fn history_without_timing(&self, decimals: Option<i32>) -> Result<Vec<[f64; 7]>> {
        Ok(self.read_history()?.iter().map(|row| row.without_timing(decimals)).collect())
    }

    pub fn read_history(&self) -> Result<Vec<EpochRecord>> {
        let path = self.file(files::HISTORY);
        let csv_err = |error| Error::Csv { path: path.clone(), error };
        let mut reader = csv::Reader::from_path(&path).map_err(csv_err)?;
        reader.deserialize().map(|row| row.map_err(csv_err)).collect()
    }

    pub fn read_metrics(&self) -> Result<FinalMetrics> {
        self.read_json(files::METRICS)
    }

    pub fn read_classes(&self) -> Result<Vec<String>> {
        self.read_json(files::CLASSES)
    }

    pub fn read_shape(&self) -> Result<ImageShape> {
        self.read_json(files::SHAPE)
    }

    /// `(class, training images)` pairs, in class order.
    pub fn read_class_counts(&self) -> Result<Vec<(String, usize)>> {
        self.read_json(files::CLASS_COUNTS)
    }

    pub fn read_config_text(&self) -> Result<String> {
        let path = self.file(files::CONFIG);
        std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))
    }

    /// `options.json`, or no options for a run folder without it.
    pub fn read_options(&self) -> Result<StoredOptions> {
        if self.has(files::OPTIONS) {
            self.read_json(files::OPTIONS)
        } else {
            Ok(StoredOptions::default())
        }
    }

    fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let path = self.file(name);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Format { path, reason: e.to_string() })
    }

    /// Saves the variables of `vs` as `<run>/<name>` (safetensors), atomically.
    pub(crate) fn save_vars(&self, name: &str, vs: &tch::nn::VarStore) -> Result<()> {
        let mut named: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        self.save_tensors(name, &named)
    }

    /// Saves named tensors as `<run>/<name>` (safetensors), atomically. Tensors in
    /// another memory order (channels-last weights) are written in the standard one,
    /// which is what safetensors holds and what tch refuses to write otherwise.
    pub(crate) fn save_tensors(&self, name: &str, named: &[(String, tch::Tensor)]) -> Result<()> {
        let path = self.file(name);
        let tmp = path.with_extension("tmp.safetensors");
        let named: Vec<(&str, tch::Tensor)> = named.iter().map(|(k, t)| (k.as_str(), t.contiguous())).collect();
        commit(&tmp, &path, tch::Tensor::write_safetensors(&named, &tmp).map_err(|e| tch_reason(&e)))
    }

    /// Removes what an earlier run trained and concluded (`cnnlab train --force`): its
    /// history, checkpoints, test results, one-vs-rest members, plots and TensorBoard
    /// file. The log stays (it is appended to) and so does the lock.
    pub fn clear_results(&self) -> Result<()> {
        self.clear_test_results()?;
        self.remove_files(&[
            files::HISTORY,
            files::LAST,
            files::BEST,
            files::RESUME,
            files::NORMALIZER,
            files::SPLIT,
            files::SKIPPED,
        ])?;
        for dir in [files::OVR, files::PLOTS, files::TB] {
            let path = self.file(dir);
            if path.is_dir() {
                std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// Removes the test results (`metrics.json`, the report, `predictions.csv` and what
    /// is made of it: most_confused.csv, top_losses.csv): a run
    /// that trains on (`--resume --epochs`) is unfinished until it writes new ones.
    pub fn clear_test_results(&self) -> Result<()> {
        self.remove_files(&[files::METRICS, files::REPORT, files::PREDICTIONS, files::MOST_CONFUSED, files::TOP_LOSSES])
    }

    /// Removes these files of the run; one that is not there is fine.
    fn remove_files(&self, names: &[&str]) -> Result<()> {
        for name in names {
            let path = self.file(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&path, e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes the folder if the run never got as far as its first file of results,
    /// so that a run that fails before training leaves nothing behind.
    /// Removes the folder if this command `created` it and training never got as far
    /// as a finished epoch or a checkpoint (a bad pretrained file, a model that does
    /// not fit): what it holds then is only the set-up of a run that did not start.
    pub fn remove_if_untrained(&self, created: bool) {
        let trained = [files::HISTORY, files::RESUME, files::METRICS, files::OVR].iter().any(|f| self.has(f));
        if created && !trained {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }

    pub fn remove_if_unused(&self, created: bool) {
        let only_setup = |dir: &Path| {
            std::fs::read_dir(dir).is_ok_and(|entries| {
                entries.filter_map(|e| e.ok()).all(|e| {
                    let name = e.file_name();
                    [files::LOCK, files::LOG].iter().any(|f| name == *f)
                })
            })
        };
        if created && only_setup(&self.path) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Releases the run folder's `.lock` when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// The locked folder: closing it releases the OS lock.
    _folder: std::fs::File,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Who holds the OS lock of a folder, from its `.lock`: the holder writes it right
/// after locking, so an empty or missing file is read again for up to a second.
fn owner_being_written(path: &Path) -> (u32, String) {
    for _ in 0..50 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut words = text.split_whitespace();
        if let Some(pid) = words.next().and_then(|p| p.parse().ok()) {
            return (pid, words.next().unwrap_or("").to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (0, hostname())
}

/// The owner (pid, host) of a `.lock` holding `text` while it still runs; `None`
/// when it is gone. `job` is this process's Slurm job id.
fn lock_owner_alive(text: &str, job: Option<&str>) -> Option<(u32, String)> {
    let mut words = text.split_whitespace();
    let pid: u32 = words.next().and_then(|p| p.parse().ok())?;
    let host = words.next().unwrap_or("").to_string();
    let owner_job = words.next().and_then(|w| w.strip_prefix("job="));
    let alive = match owner_job {
        _ if host == hostname() => process_alive(pid),
        // This very job, requeued (maybe onto another node): its earlier run is over.
        Some(owner) if job == Some(owner) => false,
        Some(owner) => slurm_job_alive(owner),
        // Another host's process cannot be checked from here.
        None => !host.is_empty(),
    };
    alive.then_some((pid, host))
}

/// Whether Slurm still lists job `id` as pending or running (`squeue`); true when
/// squeue cannot be asked (refusing is safer than sharing the folder).
fn slurm_job_alive(id: &str) -> bool {
    match std::process::Command::new("squeue").args(["-h", "-j", id, "-o", "%T"]).output() {
        Ok(out) if out.status.success() => {
            let state = String::from_utf8_lossy(&out.stdout);
            ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED"]
                .iter()
                .any(|s| state.split_whitespace().any(|w| w == *s))
        }
        // squeue fails for a job id it no longer knows.
        Ok(_) => false,
        Err(_) => true,
    }
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        // A zombie (killed, not yet reaped) holds nothing any more.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    } else {
        // Without /proc, assume it runs: refusing is safer than sharing the folder.
        true
    }
}

/// The plain reason a tch read or write failed: an `io::Error`'s text, not its Debug
/// form, and a safetensors format error said as such, without tch's repeated path.
pub(crate) fn tch_reason(e: &tch::TchError) -> String {
    use safetensors::SafeTensorError as S;
    match e {
        tch::TchError::SafeTensorError { err: S::IoError(io), .. } => io.to_string(),
        tch::TchError::SafeTensorError { err, .. } => match err {
            S::MetadataIncompleteBuffer | S::HeaderTooSmall | S::InvalidHeaderLength | S::InvalidOffset(_) => {
                format!("truncated or damaged safetensors file ({err:?})")
            }
            _ => format!("not a valid safetensors file ({err:?})"),
        },
        tch::TchError::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// Renames `tmp` to `path` after a successful write; after a failed one removes `tmp`
/// (a full disk must not stay full of half files) and names `path`.
fn commit(tmp: &Path, path: &Path, written: std::result::Result<(), String>) -> Result<()> {
    let renamed = written.and_then(|()| std::fs::rename(tmp, path).map_err(|e| e.to_string()));
    renamed.map_err(|reason| {
        let _ = std::fs::remove_file(tmp);
        Error::Write { path: path.to_path_buf(), reason }
    })
}

/// Writes `path` through `<path>.tmp` and a rename: readers (and a crash) see the old
/// file or the new one, never half of one.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes)).map_err(|e| e.to_string());
    commit(&tmp, path, written)
}

/// Pretty JSON with a final newline, through [`write_bytes`].
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Write { path: path.to_path_buf(), reason: e.to_string() })?;
    write_bytes(path, (text + "\n").as_bytes())
}

/// A predictions CSV: `id_header` (`file` or `index`), `y_true`, `y_pred` (class names)
/// and one `p_<class>` column per class, a row `(id, true class, predicted class,
/// probabilities)` per image, then each example's content fingerprint when given
/// (`file_sha256` or `pixels_sha256`, see [`cnnlab_data::Fingerprints`]: how
/// `cnnlab compare` knows two runs saw the same test set). What a run leaves as
/// `predictions.csv` and `cnnlab evaluate --out` writes; `cnnlab metrics` reads it
/// back. Written atomically.
pub fn write_predictions<'a>(
    path: &Path,
    id_header: &str,
    classes: &[String],
    rows: impl IntoIterator<Item = (String, usize, usize, &'a [f32])>,
    fingerprints: Option<&cnnlab_data::Fingerprints>,
) -> Result<()> {
    let csv_err = |error| Error::Csv { path: path.to_path_buf(), error };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![id_header.to_string(), "y_true".to_string(), "y_pred".to_string()];
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    header.extend(fingerprints.map(|f| f.column.to_owned()));
    w.write_record(&header).map_err(csv_err)?;
    for (i, (id, y_true, y_pred, probs)) in rows.into_iter().enumerate() {
        let mut row = vec![id, classes[y_true].clone(), classes[y_pred].clone()];
        row.extend(probs.iter().map(|p| format!("{p:.6}")));
        row.extend(fingerprints.map(|f| f.values[i].clone()));
        w.write_record(&row).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    write_bytes(path, &bytes)
}

/// A class name usable as a folder name.
pub(crate) fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        run.write_bytes("a.json", b"old").unwrap();
        // Writing into a folder that is a file fails like a full disk does: at create.
        let blocked = RunDir::new(dir.path().join("a.json"));
        let err = blocked.write_bytes("b.json", b"new").unwrap_err().to_string();
        assert!(err.starts_with(&format!("writing {}", dir.path().join("a.json/b.json").display())), "{err}");
        assert_eq!(std::fs::read(dir.path().join("a.json")).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a.json"]);
    }

    /// A full disk, for real: the temporary file is a link to /dev/full, whose writes
    /// fail with ENOSPC. The error is one plain line naming the file, the temporary is
    /// gone, and the earlier checkpoint is intact.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_names_the_file_removes_the_temporary_and_keeps_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _w = vs.root().randn("w", &[64, 64], 0.0, 1.0);
        run.save_vars(files::LAST, &vs).unwrap();
        let before = std::fs::read(run.file(files::LAST)).unwrap();
        run.write_json(files::METRICS, &[1, 2]).unwrap();
        let full = |tmp: &str| std::os::unix::fs::symlink("/dev/full", run.file(tmp)).unwrap();
        full("last.tmp.safetensors");
        full("metrics.json.tmp");
        tch::no_grad(|| {
            let _ = vs.variables()["w"].shallow_clone().fill_(0.0);
        });
        let err = run.save_vars(files::LAST, &vs).unwrap_err().to_string();
        let path = run.file(files::LAST);
        assert_eq!(err, format!("writing {}: No space left on device (os error 28)", path.display()));
        let err = run.write_json(files::METRICS, &[3]).unwrap_err().to_string();
        let path = run.file(files::METRICS);
        assert_eq!(err, format!("writing {}: No space left on device (os error 28)", path.display()));
        let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, [files::LAST, files::METRICS], "no temporary file is left");
        assert_eq!(std::fs::read(run.file(files::LAST)).unwrap(), before);
        assert_eq!(run.read_json::<Vec<i32>>(files::METRICS).unwrap(), [1, 2]);
    }

    #[test]
    fn a_live_lock_is_refused_and_a_dead_one_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        let held = run.lock().unwrap();
        let err = run.lock().unwrap_err().to_string();
        assert!(err.contains(&format!("process {}", std::process::id())), "{err}");
        drop(held);
        assert!(!run.has(files::LOCK), "the guard removes the lock");
        // pid 2^22 + 1 is above Linux's pid_max: no such process.
        std::fs::write(run.file(files::LOCK), format!("4194305 {}\n", hostname())).unwrap();
        let _taken = run.lock().unwrap();
        let text = std::fs::read_to_string(run.file(files::LOCK)).unwrap();
        assert!(text.starts_with(&std::process::id().to_string()), "{text}");
        drop(_taken);
        // Another host's lock with no job id cannot be checked: refused.
        std::fs::write(run.file(files::LOCK), "17 another-host\n").unwrap();
        let err = run.lock().unwrap_err().to_string();
        assert!(err.contains("process 17 on another-host"), "{err}");
        // A lock of this very Slurm job (an earlier run of it before a requeue, on
        // another node) is over; another job's is asked of squeue.
        assert_eq!(lock_owner_alive("17 node-a job=42\n", Some("42")), None);
        assert_eq!(lock_owner_alive("17 node-a\n", Some("42")), Some((17, "node-a".into())));
        assert_eq!(lock_owner_alive("4194305 node-a job=42\n", Some("43")).is_some(), slurm_job_alive("42"));
        assert_eq!(lock_owner_alive(&format!("4194305 {} job=42\n", hostname()), Some("42")), None);
        assert_eq!(lock_owner_alive("garbage", None), None);
    }

    /// The OS lock: a deleted `.lock` does not free a held folder, and of many
    /// takers starting at once exactly one gets it (two train-alls started together
    /// both trained one run when the lock was only the file: one read the other's
    /// `.lock` before its text was written and took it over as dead).
    #[test]
    fn a_held_folder_stays_held_without_its_lock_file_and_has_one_taker() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        let held = run.lock().unwrap();
        std::fs::remove_file(run.file(files::LOCK)).unwrap();
        let err = run.lock().unwrap_err().to_string();
        assert!(err.contains("is in use by process 0"), "the owner's .lock is gone: {err}");
        drop(held);

        for _ in 0..20 {
            let barrier = std::sync::Barrier::new(8);
            let got = std::thread::scope(|scope| {
                let takers: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            let lock = run.lock();
                            barrier.wait();
                            lock.is_ok()
                        })
                    })
                    .collect();
                takers.into_iter().map(|t| t.join().unwrap()).filter(|&ok| ok).count()
            });
            assert_eq!(got, 1, "exactly one of 8 simultaneous takers holds the folder");
        }
    }

    #[test]
    fn history_round_trips_and_states_follow_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        assert_eq!(run.state().unwrap(), RunState::Empty);
        let row = |epoch| EpochRecord {
            epoch,
            train_loss: 0.5,
            train_acc: 0.75,
            val_loss: 0.25,
            val_acc: 0.875,
            val_f1: 0.8,
            lr: 1e-3,
            seconds: 1.5,
            images_per_sec: 100.0,
        };
        run.write_history(&[row(1), row(2)]).unwrap();
        assert_eq!(run.read_history().unwrap(), [row(1), row(2)]);
        let text = std::fs::read_to_string(run.file(files::HISTORY)).unwrap();
        assert_eq!(text.lines().next().unwrap(), HISTORY_HEADER.join(","));
        std::fs::write(run.file(files::RESUME), b"x").unwrap();
        assert_eq!(run.state().unwrap(), RunState::Unfinished { epochs_done: 2 });
    }
}
