//! `predictions.csv`, the run's test predictions (and `cnnlab evaluate --out`'s): its
//! writer and its reader (which `cnnlab metrics` uses on any such CSV).

use std::collections::BTreeSet;
use std::path::Path;

use cnnlab_metrics::argmax_rows;

use crate::error::{Error, Result};
use crate::write::write_bytes;

/// A fingerprint column of `predictions.csv`: its name and one value per row.
pub type Fingerprints<'a> = (&'a str, &'a [String]);

/// A predictions CSV: `id_header` (`file` or `index`), `y_true`, `y_pred` (class names)
/// and one `p_<class>` column per class, a row `(id, true class, predicted class,
/// probabilities)` per image, then each example's content fingerprint when given
/// (`file_sha256` or `pixels_sha256`, cnnlab-data's `Fingerprints`: how
/// `cnnlab compare` knows two runs saw the same test set). What a run leaves as
/// `predictions.csv` and `cnnlab evaluate --out` writes; `cnnlab metrics` reads it
/// back. Written atomically.
pub fn write_predictions<'a>(
    path: &Path,
    id_header: &str,
    classes: &[String],
    rows: impl IntoIterator<Item = (String, usize, usize, &'a [f32])>,
    fingerprints: Option<Fingerprints<'_>>,
) -> Result<()> {
    let csv_err = |error| Error::Csv { path: path.to_path_buf(), error };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![id_header.to_string(), "y_true".to_string(), "y_pred".to_string()];
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    header.extend(fingerprints.map(|(column, _)| column.to_owned()));
    w.write_record(&header).map_err(csv_err)?;
    for (i, (id, y_true, y_pred, probs)) in rows.into_iter().enumerate() {
        let mut row = vec![id, classes[y_true].clone(), classes[y_pred].clone()];
        row.extend(probs.iter().map(|p| format!("{p:.6}")));
        row.extend(fingerprints.map(|(_, values)| values[i].clone()));
        w.write_record(&row).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    write_bytes(path, &bytes)
}

/// The fingerprint columns cnnlab writes (cnnlab-data's `Fingerprints`).
pub const FINGERPRINT_COLUMNS: [&str; 2] = ["file_sha256", "pixels_sha256"];

/// A `predictions.csv`'s fingerprint column: its name and a value per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintColumn {
    pub column: String,
    pub values: Vec<String>,
}

/// Parsed predictions: labels as indices into `classes`, scores row-major.
#[derive(Debug)]
pub struct Predictions {
    /// Each row's example: the `file` or `index` column, else the row's line number.
    pub ids: Vec<String>,
    pub classes: Vec<String>,
    pub y_true: Vec<usize>,
    pub y_pred: Vec<usize>,
    pub scores: Option<Vec<f64>>,
    /// Each example's content fingerprint (a `file_sha256` or `pixels_sha256` column,
    /// which cnnlab writes since 2026-12): what `compare` matches test sets on.
    pub fingerprints: Option<FingerprintColumn>,
}

/// Reads a predictions CSV: a header with `y_true`, optionally `y_pred`, optionally one
/// `p_<class>` probability column per class (then a missing `y_pred` is each row's
/// argmax), an id column (`file` or `index`) and a fingerprint column. Labels are class
/// indices or names. Every malformed input is one error naming the file and line.
pub fn read_predictions(path: &Path) -> Result<Predictions> {
    let bad = |message: String| Error::Predictions(message);
    let shown = path.display();
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(format!("reading {shown}: {e}")))?;
    let header = reader.headers().map_err(|e| bad(format!("{shown}: reading the header: {e}")))?.clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(bad(format!(
            "{shown}: the file is empty (expected a header with y_true and y_pred or p_<class> columns)"
        )));
    }
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let t_col = column("y_true").ok_or_else(|| bad(format!("{shown}: missing column `y_true`")))?;
    let mut names = BTreeSet::new();
    if let Some(dup) = header.iter().map(str::trim).find(|h| !names.insert(*h)) {
        return Err(bad(format!("{shown}: column `{dup}` appears twice in the header")));
    }
    let p_col = column("y_pred");
    let id_col = column("file").or_else(|| column("index"));
    let fingerprint_col = header.iter().position(|h| FINGERPRINT_COLUMNS.contains(&h.trim()));
    let score_cols: Vec<(usize, String)> =
        header.iter().enumerate().filter_map(|(i, h)| h.trim().strip_prefix("p_").map(|c| (i, c.to_owned()))).collect();
    if p_col.is_none() && score_cols.is_empty() {
        return Err(bad(format!("{shown}: needs a `y_pred` column or one `p_<class>` score column per class")));
    }

    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad(format!("{shown}: malformed CSV: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        rows.push((line, record));
    }
    if rows.is_empty() {
        return Err(bad(format!("{shown}: no rows after the header")));
    }

    // Class names: from score columns when present, else from the labels themselves.
    let classes: Vec<String> = if !score_cols.is_empty() {
        score_cols.iter().map(|(_, c)| c.clone()).collect()
    } else {
        let mut seen = BTreeSet::new();
        for (_, r) in &rows {
            seen.insert(r[t_col].trim().to_owned());
            if let Some(p) = p_col {
                seen.insert(r[p].trim().to_owned());
            }
        }
        let numbers: Option<Vec<usize>> = seen.iter().map(|s| s.parse().ok()).collect();
        match numbers {
            Some(n) => (0..=n.into_iter().max().unwrap_or(0)).map(|i| i.to_string()).collect(),
            None => seen.into_iter().collect(),
        }
    };
    let label = |value: &str, col: &str, line: u64| -> Result<usize> {
        let value = value.trim();
        if let Some(i) = classes.iter().position(|c| c == value) {
            return Ok(i);
        }
        match value.parse::<usize>() {
            Ok(i) if i < classes.len() => Ok(i),
            _ => {
                Err(bad(format!("{shown}:{line}: unknown class `{value}` in {col} (classes: {})", classes.join(", "))))
            }
        }
    };

    let k = classes.len();
    let (mut y_true, mut y_pred) = (Vec::new(), Vec::new());
    let mut scores = (!score_cols.is_empty()).then(Vec::new);
    let mut ids = Vec::with_capacity(rows.len());
    let mut fingerprints =
        fingerprint_col.map(|c| FingerprintColumn { column: header[c].trim().to_owned(), values: Vec::new() });
    for (line, r) in &rows {
        if let (Some(c), Some(f)) = (fingerprint_col, fingerprints.as_mut()) {
            f.values.push(r.get(c).unwrap_or("").trim().to_owned());
        }
        ids.push(match id_col {
            Some(c) => r.get(c).unwrap_or("").trim().to_owned(),
            None => format!("line {line}"),
        });
        y_true.push(label(&r[t_col], "y_true", *line)?);
        if let Some(p) = p_col {
            y_pred.push(label(&r[p], "y_pred", *line)?);
        }
        if let Some(s) = scores.as_mut() {
            let mut sum = 0.0;
            for (i, name) in &score_cols {
                let raw = r.get(*i).unwrap_or("").trim();
                let v: f64 =
                    raw.parse().map_err(|_| bad(format!("{shown}:{line}: p_{name}: `{raw}` is not a number")))?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(bad(format!("{shown}:{line}: p_{name}: `{raw}` is not a probability in [0, 1]")));
                }
                sum += v;
                s.push(v);
            }
            // Written with 6 decimals, a row of k probabilities sums to 1 within k * 5e-7.
            if (sum - 1.0).abs() > 1e-3_f64.max(k as f64 * 1e-6) {
                return Err(bad(format!("{shown}:{line}: the p_<class> values sum to {sum:.4}, not 1 (scores, not probabilities? apply softmax first)")));
            }
        }
    }
    if p_col.is_none() {
        y_pred = argmax_rows(scores.as_deref().expect("score columns exist"), k);
    }
    Ok(Predictions { ids, classes, y_true, y_pred, scores, fingerprints })
}
