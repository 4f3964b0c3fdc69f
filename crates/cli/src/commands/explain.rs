//! `cnnlab explain`: Grad-CAM heat maps of a trained run over image files, and the
//! per-class grid of them a finished run shows in the report.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cnnlab_cli::{inspect, plots};
use cnnlab_train::{Predictor, RunDir, Weights};

use super::predict::run_inputs;

/// What the overlays are enlarged to at least (by an integer factor, nearest
/// neighbour), so that a 28x28 input stays legible.
const OVERLAY_SIDE: usize = 224;

pub(crate) struct ExplainArgs<'a> {
    pub run: &'a Path,
    pub images: &'a [PathBuf],
    pub layer: Option<usize>,
    pub class: Option<&'a str>,
    pub out: Option<&'a Path>,
}

pub(crate) fn explain_command(a: ExplainArgs<'_>) -> Result<()> {
    let (exp, shape, classes) = run_inputs(a.run)?;
    // The final weights: those the run's test metrics and report used. An ensemble's
    // maps are its first seed's network's.
    let net_dir = crate::ensemble::members(a.run, &exp).swap_remove(0);
    if exp.train.ensemble {
        tracing::info!("{} is an ensemble: Grad-CAM of its member {}", a.run.display(), net_dir.display());
    }
    let predictor = Predictor::load(&net_dir, &exp.model, shape, classes.clone(), Weights::Last)?;
    let class = match a.class {
        None => None,
        Some(name) => Some(
            classes
                .iter()
                .position(|c| c == name)
                .with_context(|| format!("--class {name}: not one of the run's classes ({})", classes.join(", ")))?,
        ),
    };
    let out = a.out.map_or_else(|| a.run.join("explain"), Path::to_path_buf);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // An image that does not decode is reported and skipped, as `predict` does.
    let mut failed = 0;
    for path in a.images {
        let pixels = match cnnlab_data::folder::decode(path, shape) {
            Ok((pixels, _)) => pixels,
            Err(e) => {
                use std::io::Write as _;
                std::io::stdout().flush()?;
                eprintln!("error: {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let cam = predictor.grad_cam(&pixels, a.layer, class).with_context(|| a.run.display().to_string())?;
        let stem = path.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        let png = out.join(format!("{stem}.gradcam.png"));
        let overlay = inspect::heat_overlay(&pixels, shape.channels, &cam.map);
        let factor = OVERLAY_SIDE.div_ceil(shape.width.max(shape.height)).max(1);
        let (w, h) = (shape.width * factor, shape.height * factor);
        plots::write_png(&png, &inspect::enlarge(&overlay, shape.width, shape.height, factor), w as u32, h as u32)?;
        inspect::write_npy(&out.join(format!("{stem}.gradcam.npy")), &[cam.height, cam.width], &cam.map)?;
        let (x, y) = cam.peak();
        println!(
            "{}: {} p={:.3} ({}), peak at x={x} y={y} -> {}",
            path.display(),
            classes[cam.class],
            cam.probs[cam.class],
            cam.layer,
            png.display()
        );
    }
    if failed > 0 {
        bail!("{failed} of {} images could not be read (named above)", a.images.len());
    }
    Ok(())
}

/// How many test images of each class the report's Grad-CAM grid shows.
const PER_CLASS: usize = 2;

/// `plots/gradcam.png`: Grad-CAM of the first [`PER_CLASS`] test images of every
/// class, captioned with the true class and the prediction. `None` (and nothing
/// written) when the network has no layer Grad-CAM can look at.
pub(crate) fn gradcam_grid(run: &RunDir, test: &cnnlab_data::Dataset) -> Result<Option<PathBuf>> {
    let (exp, shape, classes) = run_inputs(run.path())?;
    if shape != test.shape {
        bail!("{}: the test images are {:?}, the run's input {:?}", run.path().display(), test.shape, shape);
    }
    let predictor = Predictor::load(run.path(), &exp.model, shape, classes.clone(), Weights::Last)?;
    let mut chosen = vec![];
    for c in 0..classes.len() {
        chosen.extend(test.labels.iter().enumerate().filter(|(_, &l)| l as usize == c).map(|(i, _)| i).take(PER_CLASS));
    }
    let short = |c: usize| classes[c].chars().take(18).collect::<String>();
    let mut overlays = vec![];
    let mut captions = vec![];
    let mut layer = String::new();
    for &i in &chosen {
        let cam = match predictor.grad_cam(test.image(i), None, None) {
            Ok(cam) => cam,
            Err(e) => {
                tracing::debug!("no Grad-CAM grid: {e}");
                return Ok(None);
            }
        };
        overlays.push(inspect::heat_overlay(test.image(i), shape.channels, &cam.map));
        captions.push([
            format!("true: {}", short(test.labels[i] as usize)),
            format!("pred: {} {:.2}", short(cam.class), cam.probs[cam.class]),
        ]);
        layer = cam.layer;
    }
    let tiles: Vec<plots::Tile> = overlays
        .iter()
        .zip(captions)
        .map(|(pixels, caption)| plots::Tile { pixels, width: shape.width, height: shape.height, channels: 3, caption })
        .collect();
    let path = run.file(cnnlab_train::files::PLOTS).join(cnnlab_train::files::plots::GRADCAM);
    let title = format!("Grad-CAM at {layer} (test): where the network looks for its predicted class");
    plots::image_grid(&path, &title, &tiles, 4 * PER_CLASS)?;
    Ok(Some(path))
}
