//! The report's tuning section: each study folder (`study.jsonl`, written by `cnnlab
//! tune`) under the runs folder as a trials table, each parameter's importance, the
//! best value so far against trials and CPU-minutes, parallel coordinates, and the
//! confirmation's verdict in words (`confirm.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::plots;
use crate::tune::{Direction, Event, TrialState, STUDY_FILE};

/// One study, as the report shows it.
#[derive(Debug, Clone)]
pub(super) struct StudyReport {
    /// Path relative to the runs folder.
    pub(super) id: String,
    pub(super) metric: String,
    pub(super) keys: Vec<String>,
    pub(super) trials: Vec<TrialRow>,
    /// Each parameter's share of the metric's variance over the complete trials.
    pub(super) importance: Vec<(String, f64)>,
    pub(super) plots: Vec<(String, PathBuf)>,
    /// The confirmation's verdicts, one sentence each.
    pub(super) verdicts: Vec<String>,
    pub(super) best: Option<(usize, f64)>,
    /// The best trial's test accuracy (its run folder's metrics.json).
    pub(super) best_test: Option<f64>,
    pub(super) minutes: f64,
    pub(super) direction: Direction,
    /// The best complete value after each trial: (trials, CPU-minutes, best).
    pub(super) curve: Vec<(f64, f64, f64)>,
}

#[derive(Debug, Clone)]
pub(super) struct TrialRow {
    pub(super) state: TrialState,
    pub(super) epochs: usize,
    pub(super) value: Option<f64>,
    pub(super) params: BTreeMap<String, serde_json::Value>,
    pub(super) seconds: f64,
}

/// The study folders under `dir`.
pub(super) fn find_studies(dir: &Path, out: &mut Vec<PathBuf>) {
    if dir.join(STUDY_FILE).is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries.into_iter().filter(|p| p.is_dir()) {
        find_studies(&path, out);
    }
}

/// Reads a study's events and draws its plots (in `<study>/plots/`).
pub(super) fn read_study(root: &Path, dir: &Path) -> Result<StudyReport> {
    let path = dir.join(STUDY_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (mut metric, mut direction, mut space) = ("val_acc".to_owned(), Direction::Maximize, BTreeMap::new());
    let mut trials: Vec<TrialRow> = Vec::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Event>(line) else { continue };
        match event {
            Event::Study { metric: m, direction: d, space: s } => (metric, direction, space) = (m, d, s),
            Event::Start { trial, params } if trial == trials.len() => {
                trials.push(TrialRow { state: TrialState::Running, epochs: 0, value: None, params, seconds: 0.0 });
            }
            Event::Epoch { trial, epoch, value, seconds } => {
                if let Some(t) = trials.get_mut(trial) {
                    (t.epochs, t.value, t.seconds) = (epoch, value, t.seconds + seconds);
                }
            }
            Event::End { trial, state, value, .. } => {
                if let Some(t) = trials.get_mut(trial) {
                    t.state = state;
                    if value.is_some() || state == TrialState::Failed {
                        t.value = value;
                    }
                }
            }
            Event::Start { .. } => {}
        }
    }
    let keys: Vec<String> = if space.is_empty() {
        trials.first().map(|t| t.params.keys().cloned().collect()).unwrap_or_default()
    } else {
        space.keys().cloned().collect()
    };
    let better = |a: f64, b: f64| direction.better(a, b);
    // The best complete value after each trial, and the CPU-minutes spent by then.
    let (mut best, mut minutes, mut curve) = (None::<(usize, f64)>, 0.0, Vec::new());
    for (k, t) in trials.iter().enumerate() {
        minutes += t.seconds / 60.0;
        if let (TrialState::Complete, Some(v)) = (t.state, t.value) {
            if best.is_none_or(|(_, b)| better(v, b)) {
                best = Some((k, v));
            }
        }
        if let Some((_, b)) = best {
            curve.push(((k + 1) as f64, minutes, b));
        }
    }
    let id = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
    let plot_dir = dir.join("plots");
    std::fs::create_dir_all(&plot_dir).with_context(|| format!("creating {}", plot_dir.display()))?;
    let mut drawn = Vec::new();
    if !curve.is_empty() {
        let p = plot_dir.join("best_so_far.png");
        plots::best_so_far(&p, &format!("{id}: best {metric} so far"), &metric, &curve)?;
        drawn.push(("best so far".to_owned(), p));
    }
    let complete: Vec<&TrialRow> =
        trials.iter().filter(|t| t.value.is_some() && t.state != TrialState::Failed).collect();
    if complete.len() >= 2 {
        let (axes, rows) = parallel_rows(&keys, &space, &complete, &metric, direction);
        let p = plot_dir.join("parallel_coordinates.png");
        plots::parallel_coordinates(&p, &format!("{id}: trials (blue: best {metric})"), &axes, &rows)?;
        drawn.push(("parallel coordinates".to_owned(), p));
    }
    let finished: Vec<&TrialRow> =
        trials.iter().filter(|t| t.state == TrialState::Complete && t.value.is_some()).collect();
    let importance = importance(&keys, &finished);
    let best_test = best.and_then(|(k, _)| {
        let text = std::fs::read_to_string(dir.join(format!("trial-{k}")).join(cnnlab_run::files::METRICS)).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?["accuracy"].as_f64()
    });
    Ok(StudyReport {
        id,
        metric,
        keys,
        verdicts: verdicts(dir),
        trials,
        importance,
        plots: drawn,
        best,
        best_test,
        minutes,
        direction,
        curve,
    })
}

/// Studies of the same metric side by side, in words: what each found, in how many
/// trials and CPU-minutes, and each one's best at the CPU-minutes the shortest spent
/// (equal budgets, whatever each study's last trial overran).
pub(super) fn compared(studies: &[StudyReport]) -> Vec<String> {
    let mut out = Vec::new();
    let mut metrics: Vec<&str> = studies.iter().map(|s| s.metric.as_str()).collect();
    metrics.dedup();
    for metric in metrics {
        let same: Vec<&StudyReport> = studies.iter().filter(|s| s.metric == metric && s.best.is_some()).collect();
        if same.len() < 2 {
            continue;
        }
        let found: Vec<String> = same
            .iter()
            .map(|s| {
                let (k, v) = s.best.expect("filtered");
                let test = s.best_test.map_or(String::new(), |t| format!(", test accuracy {t:.4}"));
                format!(
                    "{} found {metric} {v:.4} (trial {k}{test}) in {} trials and {:.1} CPU-minutes",
                    s.id,
                    s.trials.len(),
                    s.minutes
                )
            })
            .collect();
        out.push(format!("Searches compared: {}.", found.join("; ")));
        let budget = same.iter().map(|s| s.minutes).fold(f64::INFINITY, f64::min);
        let at: Vec<(&str, Option<f64>)> = same
            .iter()
            .map(|s| (s.id.as_str(), s.curve.iter().take_while(|p| p.1 <= budget + 1e-9).last().map(|p| p.2)))
            .collect();
        let direction = same[0].direction;
        let leader =
            at.iter().filter_map(|(id, v)| v.map(|v| (*id, v))).fold(None::<(&str, f64)>, |b, (id, v)| match b {
                Some((_, bv)) if !direction.better(v, bv) => b,
                _ => Some((id, v)),
            });
        let shown: Vec<String> = at
            .iter()
            .map(|(id, v)| v.map_or(format!("{id} had no complete trial"), |v| format!("{id} had {v:.4}")))
            .collect();
        if let Some((id, v)) = leader {
            let runner_up =
                at.iter().filter(|(other, _)| *other != id).filter_map(|(_, w)| *w).fold(None::<f64>, |b, w| match b {
                    Some(bv) if !direction.better(w, bv) => b,
                    _ => Some(w),
                });
            let lead = runner_up.map_or(String::new(), |w| format!(", ahead by {:.4}", (v - w).abs()));
            out.push(format!("At {budget:.1} CPU-minutes each: {}; {id} leads{lead}.", shown.join(", ")));
        }
    }
    out
}

/// Where a value sits on its parameter's axis, in [0, 1]: by its range (log for
/// log-uniform), by its index for a choice.
fn position(spec: Option<&serde_json::Value>, v: &serde_json::Value, seen: &[serde_json::Value]) -> f64 {
    let range =
        |k: &str| spec.and_then(|s| s[k].as_array()).and_then(|a| Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?)));
    if let (Some((lo, hi)), Some(x)) = (range("log_uniform"), v.as_f64()) {
        return ((x.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0);
    }
    if let (Some((lo, hi)), Some(x)) = (range("uniform").or(range("int")), v.as_f64()) {
        return ((x - lo) / (hi - lo).max(1e-12)).clamp(0.0, 1.0);
    }
    // A study file without its space (written before cnnlab recorded it): numbers by
    // the range seen (log when it spans more than two decades), the rest by order seen.
    if let (None, Some(x)) = (spec, v.as_f64()) {
        let xs: Vec<f64> = seen.iter().filter_map(serde_json::Value::as_f64).collect();
        let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        return match lo > 0.0 && hi / lo > 100.0 {
            true => ((x.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0),
            false if hi > lo => ((x - lo) / (hi - lo)).clamp(0.0, 1.0),
            false => 0.5,
        };
    }
    let mut choices: Vec<serde_json::Value> = Vec::new();
    for c in spec.and_then(|s| s["choice"].as_array().cloned()).unwrap_or_else(|| seen.to_vec()) {
        if !choices.contains(&c) {
            choices.push(c);
        }
    }
    let i = choices.iter().position(|c| c == v).unwrap_or(0);
    if choices.len() > 1 {
        i as f64 / (choices.len() - 1) as f64
    } else {
        0.5
    }
}

/// A trial's value of a parameter as text: numbers below 0.01 or from 10^4 in
/// scientific notation with `digits` decimals, others rounded to `digits + 2`
/// decimals; strings bare.
pub(super) fn param_text(v: &serde_json::Value, digits: usize) -> String {
    match v {
        serde_json::Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if x != 0.0 && (x.abs() < 1e-2 || x.abs() >= 1e4) {
                format!("{x:.digits$e}")
            } else {
                let scale = 10f64.powi(digits as i32 + 2);
                format!("{}", (x * scale).round() / scale)
            }
        }
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

type Axes = (Vec<(String, String, String)>, Vec<Vec<f64>>);

fn parallel_rows(
    keys: &[String],
    space: &BTreeMap<String, serde_json::Value>,
    trials: &[&TrialRow],
    metric: &str,
    direction: Direction,
) -> Axes {
    let mut axes = Vec::new();
    for k in keys {
        let spec = space.get(k);
        let ends = spec
            .and_then(|s| s.as_object())
            .and_then(|o| o.values().next())
            .and_then(|a| a.as_array().cloned())
            .unwrap_or_default();
        let (low, high) = match (ends.first(), ends.last()) {
            (Some(a), Some(b)) => (param_text(a, 1).replace('"', ""), param_text(b, 1).replace('"', "")),
            _ => (String::new(), String::new()),
        };
        let name = k.rsplit('.').next().unwrap_or(k).to_owned();
        axes.push((name, low, high));
    }
    let values: Vec<f64> = trials.iter().filter_map(|t| t.value).collect();
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    axes.push((metric.to_owned(), format!("{lo:.3}"), format!("{hi:.3}")));
    let rows = trials
        .iter()
        .map(|t| {
            let mut row: Vec<f64> = keys
                .iter()
                .map(|k| {
                    let seen: Vec<serde_json::Value> = trials.iter().filter_map(|t| t.params.get(k).cloned()).collect();
                    t.params.get(k).map_or(0.5, |v| position(space.get(k), v, &seen))
                })
                .collect();
            let v = t.value.unwrap_or(lo);
            let scaled = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            row.push(if direction == Direction::Maximize { scaled } else { 1.0 - scaled });
            row
        })
        .collect();
    (axes, rows)
}

/// Each parameter's importance as the share of the metric's variance its values
/// explain (the correlation ratio eta squared: the metric's variance between groups
/// over its total variance), the values grouped by choice, or into up to 4
/// equal-count bins for numbers. A one-parameter-at-a-time look, as W&B's importance
/// panel shows beside its correlations; it ignores interactions.
fn importance(keys: &[String], trials: &[&TrialRow]) -> Vec<(String, f64)> {
    if trials.len() < 4 {
        return Vec::new();
    }
    let ys: Vec<f64> = trials.iter().filter_map(|t| t.value).collect();
    let mean = ys.iter().sum::<f64>() / ys.len() as f64;
    let total: f64 = ys.iter().map(|y| (y - mean).powi(2)).sum();
    let mut out: Vec<(String, f64)> = keys
        .iter()
        .map(|k| {
            let xs: Vec<&serde_json::Value> =
                trials.iter().map(|t| t.params.get(k).unwrap_or(&serde_json::Value::Null)).collect();
            let numeric = xs.iter().all(|x| x.is_number());
            let groups: Vec<usize> = if numeric {
                let mut order: Vec<usize> = (0..xs.len()).collect();
                order.sort_by(|&a, &b| xs[a].as_f64().unwrap_or(0.0).total_cmp(&xs[b].as_f64().unwrap_or(0.0)));
                let bins = 4.min(xs.len() / 2).max(1);
                let mut g = vec![0; xs.len()];
                for (rank, &i) in order.iter().enumerate() {
                    g[i] = rank * bins / xs.len();
                }
                g
            } else {
                let mut names: Vec<String> = Vec::new();
                xs.iter()
                    .map(|x| {
                        let s = x.to_string();
                        names.iter().position(|n| *n == s).unwrap_or_else(|| {
                            names.push(s);
                            names.len() - 1
                        })
                    })
                    .collect()
            };
            let n_groups = groups.iter().max().map_or(0, |m| m + 1);
            let between: f64 = (0..n_groups)
                .map(|g| {
                    let members: Vec<f64> =
                        groups.iter().zip(&ys).filter(|(gi, _)| **gi == g).map(|(_, y)| *y).collect();
                    if members.is_empty() {
                        return 0.0;
                    }
                    let m = members.iter().sum::<f64>() / members.len() as f64;
                    members.len() as f64 * (m - mean).powi(2)
                })
                .sum();
            (k.clone(), if total > 0.0 { between / total } else { 0.0 })
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// The confirmation's verdicts from `confirm.json`, in words.
fn verdicts(dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join("confirm.json")) else { return Vec::new() };
    let Ok(c) = serde_json::from_str::<serde_json::Value>(&text) else { return Vec::new() };
    let mean = |v: &serde_json::Value| {
        let a: Vec<f64> =
            v.as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect()).unwrap_or_default();
        a.iter().sum::<f64>() / a.len().max(1) as f64
    };
    let seeds = c["seeds"].as_u64().unwrap_or(0);
    let untuned = mean(&c["untuned"]);
    let mut out = Vec::new();
    for t in c["trials"].as_array().into_iter().flatten() {
        let (m, d) = (t["mean"].as_f64().unwrap_or(f64::NAN), t["difference"].as_f64().unwrap_or(f64::NAN));
        let holm = t["holm_p_value"].as_f64().unwrap_or(f64::NAN);
        let word = if t["better"].as_bool() == Some(true) {
            "is better than the untuned experiment"
        } else if holm < 0.05 {
            "is worse than the untuned experiment"
        } else {
            "is not distinguishable from the untuned experiment"
        };
        out.push(format!(
            "Trial {} {word}: test accuracy {m:.4} over {seeds} seeds against {untuned:.4} ({d:+.4}; Welch over seeds, Holm-adjusted p = {holm:.3}).",
            t["trial"]
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(id: &str, curve: &[(f64, f64)], test: Option<f64>) -> StudyReport {
        let curve: Vec<(f64, f64, f64)> = curve.iter().enumerate().map(|(k, &(m, b))| ((k + 1) as f64, m, b)).collect();
        let row =
            TrialRow { state: TrialState::Complete, epochs: 3, value: None, params: BTreeMap::new(), seconds: 0.0 };
        StudyReport {
            id: id.into(),
            metric: "val_acc".into(),
            keys: Vec::new(),
            trials: vec![row; curve.len()],
            importance: Vec::new(),
            plots: Vec::new(),
            verdicts: Vec::new(),
            best: curve.last().map(|p| (curve.len() - 1, p.2)),
            best_test: test,
            minutes: curve.last().map_or(0.0, |p| p.1),
            direction: Direction::Maximize,
            curve,
        }
    }

    /// Two searches of one metric: what each found, and each one's best at the CPU-minutes
    /// the shorter spent (the longer one's later gain does not count).
    #[test]
    fn searches_of_one_metric_are_compared_at_equal_minutes() {
        let tpe = study("tpe", &[(10.0, 0.70), (20.0, 0.74), (61.0, 0.76)], Some(0.75));
        let random = study("random", &[(15.0, 0.69), (30.0, 0.72), (58.0, 0.73)], None);
        let lines = compared(&[tpe, random]);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0],
            "Searches compared: tpe found val_acc 0.7600 (trial 2, test accuracy 0.7500) in 3 trials and 61.0 \
             CPU-minutes; random found val_acc 0.7300 (trial 2) in 3 trials and 58.0 CPU-minutes."
        );
        assert_eq!(
            lines[1],
            "At 58.0 CPU-minutes each: tpe had 0.7400, random had 0.7300; tpe leads, ahead by 0.0100."
        );
        assert!(compared(&[study("alone", &[(1.0, 0.5)], None)]).is_empty(), "one study: nothing to compare");
    }
}
