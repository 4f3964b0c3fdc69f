//! An experiment's data: loaded for a run (and its set-up files written), or exported
//! as an image folder (`cnnlab data export`).

use std::path::Path;

use anyhow::{Context, Result};
use cnnlab_train::{files, RunDir};

use crate::checks;
use crate::exit::{Failure, Kind, Outcome};
use cnnlab_cli::experiment::Experiment;

/// A dataset that could not be read: one that is not on disk is
/// [`Kind::DatasetMissing`] (exit 3: train-all skips it with the reason).
pub(crate) fn data_failure(e: cnnlab_data::Error) -> Failure {
    match e {
        cnnlab_data::Error::NotFound { .. } => Failure::new(Kind::DatasetMissing, e),
        e => Failure::from(e),
    }
}

/// The experiment's data, loaded and described in the log. A dataset that is not on
/// disk is [`Kind::DatasetMissing`] (exit 3: train-all skips it with the reason).
pub(crate) fn load_data(exp: &Experiment, data_dir: &Path, quiet: bool) -> Outcome<cnnlab_data::Splits> {
    let started = std::time::Instant::now();
    let splits = cnnlab_data::load_with_progress(&exp.data, data_dir, quiet).map_err(data_failure)?;
    if let Some(summary) = splits.report.summary() {
        tracing::warn!("{summary}");
    }
    for line in &splits.report.cache {
        tracing::info!("decode cache: {line}");
    }
    // No test images at all: one line saying why, before any per-class warning.
    if splits.test.is_empty() && !splits.train.is_empty() {
        let fewest = splits.train.class_counts().into_iter().min().unwrap_or(0);
        return Err(anyhow::anyhow!(
            "{}: the test split holds no images ({} training images in {} classes, the smallest with {fewest}: \
             too few to hold out data.test_fraction = {} of each class)",
            exp.data.dataset,
            splits.train.len(),
            splits.train.num_classes(),
            exp.data.test_fraction
        )
        .into());
    }
    // A class missing from a split still counts in its macro averages (as 0): say so,
    // naming the first few.
    for (name, split) in [("test", Some(&splits.test)), ("validation", splits.val.as_ref())] {
        let Some(split) = split else { continue };
        let empty: Vec<&str> = split
            .class_counts()
            .iter()
            .zip(&split.classes)
            .filter(|(n, _)| **n == 0)
            .map(|(_, c)| c.as_str())
            .collect();
        if !empty.is_empty() {
            let more = if empty.len() > 8 { format!(" and {} more", empty.len() - 8) } else { String::new() };
            tracing::warn!(
                "no {name} images of {} class(es), {}{more}: their {name} F1 is 0 and pulls macro-F1 down",
                empty.len(),
                empty[..empty.len().min(8)].join(", ")
            );
        }
    }
    if !splits.report.filtered_by_size.is_empty() {
        tracing::info!("size filter dropped, per class: {:?}", splits.report.filtered_by_size);
    }
    tracing::info!(
        "loaded {}: {} train / {} val / {} test images in {:.1?} ({} MB {})",
        exp.data.dataset,
        splits.train.len(),
        splits.val.as_ref().map_or(0, |v| v.len()),
        splits.test.len(),
        started.elapsed(),
        [Some(&splits.train), splits.val.as_ref(), Some(&splits.test)]
            .into_iter()
            .flatten()
            .map(|d| d.len() * d.shape.len())
            .sum::<usize>()
            / 1_000_000,
        if splits.train.is_mapped() { "mapped from the decode cache" } else { "in memory" }
    );
    Ok(splits)
}

/// What a run folder keeps about its inputs: the resolved config (a resumed run keeps
/// its own, unless --epochs extends it), classes, shape, class counts, the exact split and the skipped files.
pub(crate) fn write_run_inputs(
    run: &RunDir,
    exp: &Experiment,
    splits: &cnnlab_data::Splits,
    keep_config: bool,
) -> Result<()> {
    if !keep_config {
        let text = toml::to_string(exp).context("serializing the resolved config")?;
        run.write_bytes(files::CONFIG, text.as_bytes())?;
    }
    run.write_json(files::CLASSES, &splits.train.classes)?;
    run.write_json(files::SHAPE, &splits.train.shape)?;
    let counts: Vec<(&String, usize)> = splits.train.classes.iter().zip(splits.train.class_counts()).collect();
    run.write_json(files::CLASS_COUNTS, &counts)?;
    if let Some(split) = &splits.files {
        // The exact split, so it can be audited and reproduced.
        run.write_json(files::SPLIT, split)?;
    }
    if !splits.report.skipped.is_empty() {
        run.write_json(files::SKIPPED, &splits.report.skipped)?;
    }
    Ok(())
}

/// Writes the config's dataset as `out/train/<class>/*.png` and `out/test/<class>/*.png`.
pub(crate) fn export_command(config: &Path, data_dir: &Path, out: &Path, quiet: bool) -> Outcome {
    let exp = checks::load(config)?;
    let splits = cnnlab_data::load_with_progress(&exp.data, data_dir, quiet).map_err(data_failure)?;
    let mut written = 0;
    for (name, split) in [("train", Some(&splits.train)), ("val", splits.val.as_ref()), ("test", Some(&splits.test))] {
        if let Some(split) = split {
            written += cnnlab_data::export_image_folder(split, &out.join(name))?;
        }
    }
    println!("wrote {written} images to {}", out.display());
    Ok(())
}
