//! `cnnlab data stats DIR`.

use std::path::Path;

use anyhow::Result;

/// Per-class counts sorted by size (as seed 001 listed them), imbalance ratio, image
/// sizes and unreadable files of an image folder.
pub fn stats(dir: &Path, json: bool, plot: Option<&Path>) -> Result<()> {
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
    let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    println!(
        "{} in {} ({})",
        count(total, "image", "images"),
        count(stats.counts.len(), "class", "classes"),
        dir.display()
    );
    for (class, n) in &stats.counts {
        println!("  {class:<width$}  {n:>7}  {:>5.1}%", 100.0 * *n as f64 / total.max(1) as f64);
    }
    if total == 0 {
        println!("no readable images: no ratio or sizes");
    } else {
        if stats.imbalance_ratio.is_finite() {
            println!("imbalance ratio (largest / smallest class): {:.1}", stats.imbalance_ratio);
        } else {
            println!("imbalance ratio (largest / smallest class): a class has no readable image");
        }
        println!("width  min/mean/max: {} / {:.1} / {}", stats.width.0, stats.width.1, stats.width.2);
        println!("height min/mean/max: {} / {:.1} / {}", stats.height.0, stats.height.1, stats.height.2);
    }
    println!("unreadable files: {}", stats.unreadable.len());
    for s in &stats.unreadable {
        println!("  {}: {}", s.path.display(), s.reason);
    }
    Ok(())
}
