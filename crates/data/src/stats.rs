//! `cnnlab data stats`: what a folder of images holds, without decoding it all.

use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::folder::{self, LoadReport, Skipped};

/// Per-class counts, imbalance and image sizes of an image folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FolderStats {
    /// (class, images), largest first.
    pub counts: Vec<(String, usize)>,
    /// Largest class over smallest class.
    pub imbalance_ratio: f64,
    /// (min, mean, max) of widths and of heights.
    pub width: (u32, f64, u32),
    pub height: (u32, f64, u32),
    pub unreadable: Vec<Skipped>,
}

/// Reads every file's header (and checks JPEGs are complete) in parallel.
pub fn folder_stats(root: &Path) -> Result<FolderStats> {
    let mut report = LoadReport::default();
    let (classes, files) = folder::list_class_folders(root, &mut report)?;
    let dims: Vec<_> = files
        .par_iter()
        .map(|f| {
            let bytes = std::fs::read(&f.path).map_err(|e| e.to_string())?;
            folder::check_complete(&bytes)?;
            // The bytes are in memory already: read the header from them, not the file.
            folder::dimensions_of(&bytes)
        })
        .collect();
    let mut counts = vec![0usize; classes.len()];
    let (mut ws, mut hs) = (Vec::new(), Vec::new());
    for (f, d) in files.iter().zip(dims) {
        match d {
            Ok((w, h)) => {
                counts[f.label as usize] += 1;
                ws.push(w);
                hs.push(h);
            }
            Err(reason) => report.skipped.push(Skipped { path: f.path.clone(), reason }),
        }
    }
    let summary = |v: &[u32]| {
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
        (v.iter().copied().min().unwrap_or(0), mean, v.iter().copied().max().unwrap_or(0))
    };
    let mut named: Vec<(String, usize)> = classes.into_iter().zip(counts).collect();
    named.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (max, min) = (named.first().map_or(0, |c| c.1), named.last().map_or(0, |c| c.1));
    Ok(FolderStats {
        counts: named,
        imbalance_ratio: if min == 0 { f64::INFINITY } else { max as f64 / min as f64 },
        width: summary(&ws),
        height: summary(&hs),
        unreadable: report.skipped,
    })
}
