//! `cnnlab data stats DIR` and `cnnlab data export CONFIG --out DIR`.

use std::path::Path;

use anyhow::Result;

use crate::experiment::Experiment;

/// Per-class counts sorted by size (as seed 001 listed them), imbalance ratio, image
/// sizes and unreadable files of an image folder.
pub(crate) fn stats(dir: &Path, json: bool, plot: Option<&Path>) -> Result<()> {
    let stats = cnnlab_data::folder_stats(dir)?;
    if let Some(png) = plot {
        crate::plots::class_distribution(png, &format!("class distribution: {}", dir.display()), &stats.counts)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(());
    }
    let total: usize = stats.counts.iter().map(|c| c.1).sum();
    let width = stats.counts.iter().map(|c| c.0.len()).max().unwrap_or(5).max(5);
    println!("{} images in {} classes ({})", total, stats.counts.len(), dir.display());
    for (class, n) in &stats.counts {
        println!("  {class:<width$}  {n:>7}  {:>5.1}%", 100.0 * *n as f64 / total.max(1) as f64);
    }
    println!("imbalance ratio (largest / smallest class): {:.1}", stats.imbalance_ratio);
    println!("width  min/mean/max: {} / {:.1} / {}", stats.width.0, stats.width.1, stats.width.2);
    println!("height min/mean/max: {} / {:.1} / {}", stats.height.0, stats.height.1, stats.height.2);
    println!("unreadable files: {}", stats.unreadable.len());
    for s in &stats.unreadable {
        println!("  {}: {}", s.path.display(), s.reason);
    }
    Ok(())
}

/// Writes the config's dataset as `out/train/<class>/*.png` and `out/test/<class>/*.png`.
pub(crate) fn export(config: &Path, data_dir: &Path, out: &Path, quiet: bool) -> Result<()> {
    let exp = Experiment::load(config)?;
    let splits = cnnlab_data::load_with_progress(&exp.data, data_dir, quiet)?;
    let mut written = 0;
    for (name, split) in [("train", Some(&splits.train)), ("val", splits.val.as_ref()), ("test", Some(&splits.test))] {
        if let Some(split) = split {
            written += cnnlab_data::export_image_folder(split, &out.join(name))?;
        }
    }
    println!("wrote {written} images to {}", out.display());
    Ok(())
}
