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

/// Decodes a labeled image folder (`dir/<class>/*.jpg`) against a trained run's
/// `classes`: each sub-folder must be one of them (labels are the run's indices, so a
/// folder may hold only some of the classes). Unusable files are skipped and reported;
/// a folder whose name is not a class is an error naming it.
pub fn read_labeled(
    dir: &Path,
    shape: ImageShape,
    classes: &[String],
    quiet: bool,
) -> Result<(Dataset, Vec<PathBuf>, LoadReport)> {
    let mut report = LoadReport::default();
    let (found, mut files) = folder::list_class_folders(dir, &mut report)?;
    let index: Vec<crate::Label> = found
        .iter()
        .map(|name| {
            classes.iter().position(|c| c == name).map(|i| i as crate::Label).ok_or_else(|| {
                Error::format(
                    dir.join(name),
                    format!("`{name}` is not one of the run's classes ({})", classes.join(", ")),
                )
            })
        })
        .collect::<Result<_>>()?;
    for f in &mut files {
        f.label = index[f.label as usize];
    }
    let (data, paths) = folder::decode_all(&files, classes, shape, quiet, &mut report)?;
    if data.is_empty() {
        return Err(Error::format(dir, "no image could be decoded"));
    }
    Ok((data, paths, report))
}
