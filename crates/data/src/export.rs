//! Writing a dataset out as an image folder, and reading an unlabeled folder.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{Dataset, ImageShape};
use crate::error::{Error, Result};
use crate::folder::{self, LoadReport, Skipped};

/// Writes `data` as `root/<class>/<index>.png` (class names with `/` get `_`), so
/// every folder code path can be exercised on any dataset. Returns files written.
pub fn export_image_folder(data: &Dataset, root: &Path) -> Result<usize> {
    let dirs: Vec<PathBuf> = data.classes.iter().map(|c| root.join(c.replace(['/', '\\'], "_"))).collect();
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    let s = data.shape;
    (0..data.len()).into_par_iter().try_for_each(|i| {
        let path = dirs[data.labels[i] as usize].join(format!("{i:06}.png"));
        let color = if s.channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
        image::save_buffer(&path, data.image(i), s.width as u32, s.height as u32, color)
            .map_err(|e| Error::format(&path, e.to_string()))
    })?;
    Ok(data.len())
}

/// Decodes every image file directly in `dir` (Kaggle's unlabeled `testset/`), sorted
/// by name, resized to `shape`; unusable files are skipped and reported.
pub fn read_unlabeled(dir: &Path, shape: ImageShape) -> Result<(Vec<u8>, Vec<PathBuf>, LoadReport)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut report = LoadReport::default();
    let decoded: Vec<_> = files.par_iter().map(|p| folder::decode(p, shape).map(|(px, _)| px)).collect();
    let (mut pixels, mut paths) = (Vec::new(), Vec::new());
    for (path, r) in files.into_iter().zip(decoded) {
        match r {
            Ok(px) => {
                pixels.extend_from_slice(&px);
                paths.push(path);
            }
            Err(reason) => report.skipped.push(Skipped { path, reason }),
        }
    }
    Ok((pixels, paths, report))
}
