//! What a finished run got wrong, as fastai shows it: the test examples with the highest
//! loss (`plot_top_losses`) and the class pairs most often confused (`most_confused`).
//! Both are computed from the run's `predictions.csv` / confusion matrix; the grid of
//! images is drawn by [`crate::plots::image_grid`].

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::metrics_cmd::Predictions;

/// One test example among the highest losses.
#[derive(Debug, Clone, PartialEq)]
pub struct TopLoss {
    /// Row of predictions.csv (= index into the test split).
    pub index: usize,
    /// Its file, or its index in the dataset.
    pub id: String,
    pub true_class: usize,
    pub predicted: usize,
    /// The predicted class's probability.
    pub p_predicted: f64,
    /// The true class's probability.
    pub p_true: f64,
    /// Cross-entropy of the example: -ln p_true, as the run's loss (cnnlab-run).
    pub loss: f64,
}

/// The `n` examples with the highest loss, highest first (ties: the earlier row).
pub fn top_losses(p: &Predictions, n: usize) -> Result<Vec<TopLoss>> {
    let Some(scores) = &p.scores else { bail!("the predictions have no p_<class> columns: no losses to rank") };
    let k = p.classes.len();
    let mut all: Vec<TopLoss> = (0..p.y_true.len())
        .map(|i| {
            let row = &scores[i * k..(i + 1) * k];
            let (t, q) = (p.y_true[i], p.y_pred[i]);
            TopLoss {
                index: i,
                id: p.ids[i].clone(),
                true_class: t,
                predicted: q,
                p_predicted: row[q],
                p_true: row[t],
                loss: cnnlab_run::example_loss(row[t]),
            }
        })
        .collect();
    all.sort_by(|a, b| b.loss.total_cmp(&a.loss).then(a.index.cmp(&b.index)));
    all.truncate(n);
    Ok(all)
}

/// `top_losses.csv` (cnnlab-run's table) of `rows`, ranked in order.
pub fn write_top_losses(path: &Path, classes: &[String], rows: &[TopLoss]) -> Result<()> {
    let table: Vec<cnnlab_run::TopLossRow> = rows
        .iter()
        .enumerate()
        .map(|(rank, r)| cnnlab_run::TopLossRow {
            rank: rank + 1,
            id: r.id.clone(),
            true_class: classes[r.true_class].clone(),
            predicted: classes[r.predicted].clone(),
            p_predicted: r.p_predicted,
            p_true: r.p_true,
            loss: r.loss,
        })
        .collect();
    Ok(cnnlab_run::write_top_losses(path, &table)?)
}

pub use cnnlab_run::{read_most_confused, write_most_confused, Confusion};

/// The class pairs (true, predicted) with at least `min_count` errors, most first (ties
/// in matrix order), as fastai's `most_confused`.
pub fn most_confused(classes: &[String], matrix: &[Vec<u64>], min_count: u64) -> Vec<Confusion> {
    let mut out = Vec::new();
    for (t, row) in matrix.iter().enumerate() {
        let total = row.iter().sum::<u64>();
        for (p, &count) in row.iter().enumerate() {
            if t != p && count >= min_count.max(1) {
                out.push(Confusion {
                    true_class: classes[t].clone(),
                    predicted: classes[p].clone(),
                    count,
                    share: count as f64 / total as f64,
                });
            }
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.count));
    out
}

/// A heat map in [0, 1] laid over an image as pytorch-grad-cam's `show_cam_on_image`
/// does: the jet colour map of the heat, half and half with the image. `pixels` are
/// `channels` (1 or 3) per pixel, `heat` one value per pixel; RGB out.
pub fn heat_overlay(pixels: &[u8], channels: usize, heat: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(heat.len() * 3);
    for (k, &h) in heat.iter().enumerate() {
        let px = &pixels[k * channels..(k + 1) * channels];
        let rgb = if channels == 1 { [px[0]; 3] } else { [px[0], px[1], px[2]] };
        for (c, v) in jet(h).into_iter().zip(rgb) {
            out.push(((c as f32 + v as f32) / 2.0).round() as u8);
        }
    }
    out
}

/// Matplotlib's / OpenCV's jet colour map: dark blue (0) through cyan, yellow, to dark
/// red (1).
pub fn jet(v: f32) -> [u8; 3] {
    let v = if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 };
    let ramp = |x: f32| (1.5 - (4.0 * v - x).abs()).clamp(0.0, 1.0);
    [ramp(3.0), ramp(2.0), ramp(1.0)].map(|c| (c * 255.0).round() as u8)
}

/// Enlarges an RGB image `factor` times by nearest neighbour.
pub fn enlarge(pixels: &[u8], width: usize, height: usize, factor: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixels.len() * factor * factor);
    for y in 0..height * factor {
        for x in 0..width * factor {
            let at = ((y / factor) * width + x / factor) * 3;
            out.extend_from_slice(&pixels[at..at + 3]);
        }
    }
    out
}

/// Writes `data` as a NumPy `.npy` file (format 1.0, little-endian float32, C order)
/// of shape `shape`: `numpy.load` reads it.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let dims = if dims.len() == 1 { format!("{},", dims[0]) } else { dims.join(", ") };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    // Magic (6) + version (2) + length (2) + header, padded to 64 bytes, ends in \n.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    Ok(cnnlab_run::write_bytes(path, &bytes)?)
}

/// Reads a float32 `.npy` file written by [`write_npy`] (or NumPy): its shape and values.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bad = || anyhow::anyhow!("{}: not a float32 .npy file", path.display());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad());
    }
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(bytes.get(10..10 + len).ok_or_else(bad)?).map_err(|_| bad())?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(bad());
    }
    let dims = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).ok_or_else(bad)?;
    let shape: Vec<usize> = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let data: Vec<f32> =
        bytes[10 + len..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if data.len() != shape.iter().product::<usize>() {
        return Err(bad());
    }
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn predictions() -> Predictions {
        Predictions {
            ids: vec!["a.png".into(), "b.png".into(), "c.png".into(), "d.png".into()],
            classes: vec!["cat".into(), "dog".into()],
            y_true: vec![0, 1, 0, 1],
            y_pred: vec![0, 0, 1, 1],
            scores: Some(vec![0.9, 0.1, 0.7, 0.3, 0.2, 0.8, 0.4, 0.6]),
            fingerprints: None,
        }
    }

    #[test]
    fn top_losses_rank_by_the_true_class_probability() {
        let top = top_losses(&predictions(), 3).unwrap();
        let ids: Vec<&str> = top.iter().map(|t| t.id.as_str()).collect();
        // -ln p_true: c 0.2 -> 1.609, b 0.3 -> 1.204, d 0.6 -> 0.511, a 0.9 -> 0.105.
        assert_eq!(ids, ["c.png", "b.png", "d.png"]);
        assert!((top[0].loss - -(0.2f64.ln())).abs() < 1e-12);
        assert_eq!((top[0].true_class, top[0].predicted, top[0].p_predicted), (0, 1, 0.8));
        let mut no_scores = predictions();
        no_scores.scores = None;
        assert!(top_losses(&no_scores, 3).is_err());
    }

    #[test]
    fn most_confused_counts_off_diagonal_cells_with_shares() {
        let classes: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let matrix = vec![vec![8, 2, 0], vec![5, 4, 1], vec![0, 0, 10]];
        let top = most_confused(&classes, &matrix, 1);
        assert_eq!(top.len(), 3);
        assert_eq!((top[0].true_class.as_str(), top[0].predicted.as_str(), top[0].count), ("b", "a", 5));
        assert!((top[0].share - 0.5).abs() < 1e-12);
        assert_eq!((top[1].true_class.as_str(), top[1].count), ("a", 2));
        assert_eq!(most_confused(&classes, &matrix, 2).len(), 2);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("most_confused.csv");
        write_most_confused(&path, &top).unwrap();
        let back = read_most_confused(&path).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].count, 5);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().next(), Some("true,predicted,count,share"));
    }

    #[test]
    fn npy_round_trips_with_an_aligned_header_and_jet_spans_blue_to_red() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npy");
        let data: Vec<f32> = (0..6).map(|v| v as f32 / 5.0).collect();
        write_npy(&path, &[2, 3], &data).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((bytes.len() - 6 * 4) % 64, 0, "NumPy pads the header to 64 bytes");
        assert_eq!(read_npy(&path).unwrap(), (vec![2, 3], data));
        std::fs::write(&path, b"not numpy").unwrap();
        assert!(read_npy(&path).unwrap_err().to_string().contains("not a float32 .npy"));
        assert_eq!(jet(0.0), [0, 0, 128]);
        assert_eq!(jet(1.0), [128, 0, 0]);
        assert_eq!(jet(0.5), [128, 255, 128]);
        assert_eq!(heat_overlay(&[255], 1, &[0.0]), vec![128, 128, 192]);
    }
}
