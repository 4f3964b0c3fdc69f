//! [`RunDir`]: a run folder's paths, typed readers and writers, and its state.

use std::path::{Path, PathBuf};

use cnnlab_augment::Shape as ImageShape;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::files;
use crate::records::{EpochRecord, FinalMetrics, RunState, StoredOptions, HISTORY_HEADER};
use crate::write::{write_bytes, write_json};

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
            let epochs_done = match crate::progress::epochs_done(&self.file(files::RESUME)) {
                Ok(epochs) => epochs,
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

    pub(crate) fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let path = self.file(name);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Format { path, reason: e.to_string() })
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

    /// Removes the folder if this command `created` it and training never got as far
    /// as a finished epoch or a checkpoint (a bad pretrained file, a model that does
    /// not fit): what it holds then is only the set-up of a run that did not start.
    pub fn remove_if_untrained(&self, created: bool) {
        let trained = [files::HISTORY, files::RESUME, files::METRICS, files::OVR].iter().any(|f| self.has(f));
        if created && !trained {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }

    /// Removes the folder if this command `created` it and it holds only the lock and
    /// the log: a run that fails before training leaves nothing behind.
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

/// A class name usable as a folder name.
pub fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
