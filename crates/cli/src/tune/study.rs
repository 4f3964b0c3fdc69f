//! A study's one file, `study.jsonl` in the study folder: an append-only list of
//! events (a trial started with its values, an epoch's metric, a trial ended), one
//! JSON object per line, each written with one `write` and synced. Reading it back
//! replays the trials, the pruner's rungs included, so `cnnlab tune` resumes a study
//! after kill -9 exactly where it was (a torn last line is ignored: its event is
//! done again). Several workers (processes, hosts sharing the folder) share one
//! study: every event is appended under `.study.lock` (an OS lock) after replaying
//! what the others appended, so each decision sees every earlier event.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::pruner::{Direction, Pruner, TrialRecord, TrialState};
use super::space::{Space, Value};

/// The study file's name in the study folder.
pub const STUDY_FILE: &str = "study.jsonl";

/// One line of the study file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The study's first line: what it optimises and over what (for `cnnlab report`).
    Study {
        metric: String,
        direction: Direction,
        space: BTreeMap<String, serde_json::Value>,
    },
    Start {
        trial: usize,
        params: BTreeMap<String, serde_json::Value>,
    },
    /// The metric after `epoch` (1-based); `None` for NaN. `seconds` of training.
    Epoch {
        trial: usize,
        epoch: usize,
        value: Option<f64>,
        seconds: f64,
    },
    End {
        trial: usize,
        state: TrialState,
        value: Option<f64>,
        reason: Option<String>,
    },
}

/// A trial as the study knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub params: BTreeMap<String, Value>,
    pub record: TrialRecord,
    /// The metric it ended with (complete trials: its last epoch's).
    pub value: Option<f64>,
    pub reason: Option<String>,
    /// Training seconds, summed over its epochs.
    pub seconds: f64,
}

/// The trials of a study, replayed from its file.
#[derive(Debug)]
pub struct Study {
    path: PathBuf,
    space: Space,
    pub trials: Vec<Trial>,
    pruner: Pruner,
    direction: Direction,
}

/// The lock file beside the study file.
const STUDY_LOCK: &str = ".study.lock";

impl Study {
    /// Opens (or creates) `dir/study.jsonl` and replays it.
    pub fn open(dir: &Path, space: &Space, pruner: Pruner, direction: Direction) -> Result<Self> {
        let path = dir.join(STUDY_FILE);
        let mut study = Study { path: path.clone(), space: space.clone(), trials: Vec::new(), pruner, direction };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Event>(line) {
                Ok(event) => {
                    study.apply(&event, space).with_context(|| format!("{}:{}", path.display(), i + 1))?;
                }
                // kill -9 during the last write: that event is done again.
                Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
                Err(e) => anyhow::bail!("{}:{}: not a study event ({e})", path.display(), i + 1),
            }
        }
        Ok(study)
    }

    /// Applies `event` to the trials (as replay and as the tuner both do); for an
    /// epoch, whether the pruner stops the trial there.
    fn apply(&mut self, event: &Event, space: &Space) -> Result<bool> {
        match event {
            Event::Study { .. } => {}
            Event::Start { trial, params } => {
                anyhow::ensure!(*trial == self.trials.len(), "trial {trial} starts out of order");
                let mut values = BTreeMap::new();
                for (key, dist) in space {
                    let v = params.get(key).and_then(|v| Value::from_json(dist, v)).with_context(|| {
                        format!("trial {trial} has no value of {key} that fits the space: was [tune.space] changed?")
                    })?;
                    values.insert(key.clone(), v);
                }
                self.trials.push(Trial {
                    params: values,
                    record: TrialRecord::new(),
                    value: None,
                    reason: None,
                    seconds: 0.0,
                });
            }
            Event::Epoch { trial, epoch, value, seconds } => {
                let t = self.trials.get_mut(*trial).with_context(|| format!("epoch of unknown trial {trial}"))?;
                t.record.values.insert(*epoch, value.unwrap_or(f64::NAN));
                t.seconds += seconds;
                let records: &mut Vec<TrialRecord> = &mut self.trials.iter().map(|t| t.record.clone()).collect();
                // Rungs are the pruner's own bookkeeping: replaying its calls rebuilds them.
                let prune = self.pruner.should_prune(records, *trial, self.direction);
                for (t, r) in self.trials.iter_mut().zip(records.iter()) {
                    t.record.rungs.clone_from(&r.rungs);
                }
                return Ok(prune);
            }
            Event::End { trial, state, value, reason } => {
                let t = self.trials.get_mut(*trial).with_context(|| format!("end of unknown trial {trial}"))?;
                t.record.state = *state;
                t.value = *value;
                t.reason.clone_from(reason);
            }
        }
        Ok(false)
    }

    /// Appends `event` to the file (one write, synced) under the study's lock, after
    /// replaying what other workers appended, then applies it: for an epoch, whether
    /// the pruner stops the trial there.
    pub fn record(&mut self, event: Event) -> Result<bool> {
        let _lock = self.lock()?;
        self.reload()?;
        self.append(event)
    }

    /// Under the study's lock, with every worker's events replayed: `choose` sees the
    /// study and gives the next trial's values (`None`: no more trials), which are
    /// recorded as its start. Returns the new trial's number.
    pub fn start_trial(
        &mut self,
        choose: impl FnOnce(&Study) -> Option<BTreeMap<String, serde_json::Value>>,
    ) -> Result<Option<usize>> {
        let _lock = self.lock()?;
        self.reload()?;
        let Some(params) = choose(self) else { return Ok(None) };
        let trial = self.trials.len();
        self.append(Event::Start { trial, params })?;
        Ok(Some(trial))
    }

    /// Writes the study's first line unless the file has events already.
    pub fn begin(&mut self, metric: &str) -> Result<()> {
        let _lock = self.lock()?;
        let empty = std::fs::metadata(&self.path).map_or(true, |m| m.len() == 0);
        if empty {
            let space = self.space.iter().map(|(k, d)| (k.clone(), d.describe())).collect();
            self.append(Event::Study { metric: metric.to_owned(), direction: self.direction, space })?;
        }
        Ok(())
    }

    /// Replays the file again (other workers' events).
    pub fn reload(&mut self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        *self = Study::open(dir, &self.space, self.pruner, self.direction)?;
        Ok(())
    }

    fn lock(&self) -> Result<std::fs::File> {
        let path = self.path.with_file_name(STUDY_LOCK);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock().with_context(|| format!("locking {}", path.display()))?;
        Ok(file)
    }

    fn append(&mut self, event: Event) -> Result<bool> {
        let mut line = serde_json::to_string(&event)?;
        line.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        file.write_all(line.as_bytes()).with_context(|| format!("writing {}", self.path.display()))?;
        file.sync_data().with_context(|| format!("writing {}", self.path.display()))?;
        let space = self.space.clone();
        self.apply(&event, &space)
    }

    /// CPU seconds of training the study has spent.
    pub fn seconds(&self) -> f64 {
        self.trials.iter().map(|t| t.seconds).sum()
    }

    /// The complete trial with the best value.
    pub fn best(&self) -> Option<(usize, &Trial)> {
        self.trials
            .iter()
            .enumerate()
            .filter(|(_, t)| t.record.state == TrialState::Complete && t.value.is_some_and(|v| !v.is_nan()))
            .fold(None, |best: Option<(usize, &Trial)>, (k, t)| match best {
                Some((_, b)) if !self.direction.better(t.value.unwrap(), b.value.unwrap()) => best,
                _ => Some((k, t)),
            })
    }
}
