//! The small tables a finished run leaves beside its predictions: `top_losses.csv`
//! (the test examples with the highest loss) and `most_confused.csv` (the class pairs
//! most often confused), written and read back by name, not by column position.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::write::write_bytes;

/// A row of `top_losses.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLossRow {
    /// From 1, highest loss first.
    pub rank: usize,
    /// The example: its file, or its index in the test split.
    pub id: String,
    #[serde(rename = "true")]
    pub true_class: String,
    pub predicted: String,
    /// The predicted class's probability.
    pub p_predicted: f64,
    /// The true class's probability.
    pub p_true: f64,
    /// [`crate::example_loss`] of `p_true`.
    pub loss: f64,
}

/// One off-diagonal cell of the confusion matrix: a row of `most_confused.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    #[serde(rename = "true")]
    pub true_class: String,
    pub predicted: String,
    pub count: u64,
    /// `count` over the true class's test examples.
    pub share: f64,
}

/// Writes `top_losses.csv` (probabilities and losses to 4 decimals), atomically.
pub fn write_top_losses(path: &Path, rows: &[TopLossRow]) -> Result<()> {
    let table = rows.iter().map(|r| {
        let (id, t, p) = (r.id.clone(), r.true_class.clone(), r.predicted.clone());
        let f = |v: f64| format!("{v:.4}");
        vec![r.rank.to_string(), id, t, p, f(r.p_predicted), f(r.p_true), f(r.loss)]
    });
    write_csv(path, &["rank", "id", "true", "predicted", "p_predicted", "p_true", "loss"], table)
}

/// Writes `most_confused.csv` (the share to 4 decimals), atomically.
pub fn write_most_confused(path: &Path, rows: &[Confusion]) -> Result<()> {
    let table = rows
        .iter()
        .map(|r| vec![r.true_class.clone(), r.predicted.clone(), r.count.to_string(), format!("{:.4}", r.share)]);
    write_csv(path, &["true", "predicted", "count", "share"], table)
}

/// `top_losses.csv`, by column name.
pub fn read_top_losses(path: &Path) -> Result<Vec<TopLossRow>> {
    read_csv(path)
}

/// `most_confused.csv`, by column name.
pub fn read_most_confused(path: &Path) -> Result<Vec<Confusion>> {
    read_csv(path)
}

fn write_csv(path: &Path, header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Result<()> {
    let csv_err = |error| Error::Csv { path: path.to_path_buf(), error };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(csv_err)?;
    for row in rows {
        w.write_record(&row).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    write_bytes(path, &bytes)
}

fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let csv_err = |error| Error::Csv { path: path.to_path_buf(), error };
    let mut reader = csv::Reader::from_path(path).map_err(csv_err)?;
    reader.deserialize().map(|row| row.map_err(csv_err)).collect()
}

/// `1128997` -> `1,128,997`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("top_losses.csv");
        let row = TopLossRow {
            rank: 1,
            id: "a, b.png".into(),
            true_class: "cat".into(),
            predicted: "dog".into(),
            p_predicted: 0.875,
            p_true: 0.125,
            loss: 2.0794,
        };
        write_top_losses(&path, std::slice::from_ref(&row)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "rank,id,true,predicted,p_predicted,p_true,loss\n1,\"a, b.png\",cat,dog,0.8750,0.1250,2.0794\n"
        );
        assert_eq!(read_top_losses(&path).unwrap(), [row]);
        let path = dir.path().join("most_confused.csv");
        let c = Confusion { true_class: "cat".into(), predicted: "dog".into(), count: 3, share: 0.25 };
        write_most_confused(&path, std::slice::from_ref(&c)).unwrap();
        assert_eq!(read_most_confused(&path).unwrap(), [c]);
        std::fs::write(&path, "true,predicted,count,share\ncat,dog,x,0.1\n").unwrap();
        let err = read_most_confused(&path).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()) && err.contains("line: 2"), "{err}");
    }
}
