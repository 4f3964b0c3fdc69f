//! `predictions.csv`, the run's test predictions (and `cnnlab evaluate --out`'s).

use std::path::Path;

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
