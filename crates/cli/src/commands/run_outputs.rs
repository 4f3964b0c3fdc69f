//! What a finished run looks into: its confusion matrix, most confused pairs, top
//! losses and Grad-CAM grid, and the pictures in its TensorBoard file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cnnlab_cli::{inspect, metrics_cmd, plots};
use cnnlab_train::{files, RunDir, RunFiles};

/// The test confusion matrix drawn as `plots/confusion.png` (whose path it returns) and
/// its most confused class pairs as `most_confused.csv`.
pub(crate) fn write_confusion(run: &RunDir, title: &str, classes: &[String], matrix: &[Vec<u64>]) -> Result<PathBuf> {
    let plots_dir = run.file(files::PLOTS);
    std::fs::create_dir_all(&plots_dir).with_context(|| format!("creating {}", plots_dir.display()))?;
    let confusion = plots_dir.join(files::plots::CONFUSION);
    plots::confusion(&confusion, title, classes, matrix)?;
    inspect::write_most_confused(&run.file(files::MOST_CONFUSED), &inspect::most_confused(classes, matrix, 1))?;
    Ok(confusion)
}

/// A finished run, looked into: the test confusion matrix (`plots/confusion.png`), the
/// class pairs most often confused (`most_confused.csv`), the 16 test images with the
/// highest loss (`plots/top_losses.png`, `top_losses.csv`), Grad-CAM of a few test
/// images per class (`plots/gradcam.png`), and the pictures in the run's TensorBoard
/// file beside the per-epoch scalars.
pub(crate) fn inspect_run(
    run: &RunDir,
    metrics: &cnnlab_train::FinalMetrics,
    test: &cnnlab_data::Dataset,
) -> Result<()> {
    let report = &metrics.report;
    let classes: Vec<String> = report.per_class.iter().map(|c| c.class.clone()).collect();
    let matrix = &report.confusion_matrix;
    if matrix.len() != classes.len() || classes.is_empty() || !run.has(files::HISTORY) {
        return Ok(());
    }
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let confusion = write_confusion(run, "confusion matrix (test)", &classes, matrix)?;
    let mut images = vec![("confusion_matrix/test", read(&confusion)?)];
    let plots_dir = run.file(files::PLOTS);

    let predictions = metrics_cmd::read(&run.file(files::PREDICTIONS))?;
    if predictions.y_true.len() == test.len() && predictions.scores.is_some() {
        let top = inspect::top_losses(&predictions, 16)?;
        inspect::write_top_losses(&run.file(files::TOP_LOSSES), &predictions.classes, &top)?;
        let shape = test.shape;
        let short = |c: usize| predictions.classes[c].chars().take(18).collect::<String>();
        let tiles: Vec<plots::Tile> = top
            .iter()
            .map(|t| plots::Tile {
                pixels: test.image(t.index),
                width: shape.width,
                height: shape.height,
                channels: shape.channels,
                caption: [
                    format!("true: {}", short(t.true_class)),
                    format!("pred: {} {:.2}", short(t.predicted), t.p_predicted),
                ],
            })
            .collect();
        let grid = plots_dir.join(files::plots::TOP_LOSSES);
        plots::image_grid(&grid, "top losses (test): true class, predicted class and its probability", &tiles, 4)?;
        images.push(("top_losses/test", read(&grid)?));
    }
    // A picture more, not a result: a run that cannot draw it still finished.
    match super::explain::gradcam_grid(run, test) {
        Ok(Some(grid)) => images.push(("gradcam/test", read(&grid)?)),
        Ok(None) => {}
        Err(e) => tracing::warn!("no Grad-CAM grid for {}: {e:#}", run.path().display()),
    }
    let named: Vec<(&str, &[u8])> = images.iter().map(|(tag, bytes)| (*tag, bytes.as_slice())).collect();
    run.write_tensorboard(&run.read_history()?, &named)?;
    Ok(())
}
