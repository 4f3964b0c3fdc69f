//! Image files on disk: listing class folders, reading headers, decoding and resizing
//! in parallel into the u8 cache, and counting every file that could not be used.

use std::path::{Path, PathBuf};

use fast_image_resize::PixelType;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::{Dataset, ImageShape, Label};

/// The most classes a dataset can have (labels are [`Label`]s).
pub const MAX_CLASSES: usize = Label::MAX as usize + 1;
use crate::error::{Error, Result};

/// Extensions decoded as images; anything else in a class folder is reported.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

/// One labelled image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSample {
    pub path: PathBuf,
    pub label: Label,
}

/// Why a file was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    #[serde(serialize_with = "crate::dataset::lossy::path")]
    pub path: PathBuf,
    pub reason: String,
}

/// Files that were skipped while listing, filtering and decoding. Nothing is dropped
/// silently: each entry names its file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    pub skipped: Vec<Skipped>,
    /// Images left out by the size filter, per class name.
    pub filtered_by_size: Vec<(String, usize)>,
    /// What happened with the on-disk decode cache, one line per split.
    pub cache: Vec<String>,
}

impl LoadReport {
    /// One line per skipped file under a count, for a single warning.
    pub fn summary(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let mut text = format!("skipped {} unusable file(s):", self.skipped.len());
        for s in &self.skipped {
            text += &format!("\n  {}: {}", s.path.display(), s.reason);
        }
        Some(text)
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Sorted sub-folder names of `root` (the classes) and the image files in each.
/// Files with other extensions go to `report`; an empty class folder is an error.
pub fn list_class_folders(root: &Path, report: &mut LoadReport) -> Result<(Vec<String>, Vec<FileSample>)> {
    let entries = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    // (name, folder): a folder name that is not UTF-8 is shown lossily but read as is.
    let mut folders: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        if entry.path().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                folders.push((name, entry.path()));
            }
        }
    }
    folders.sort();
    if folders.is_empty() {
        return Err(Error::format(root, "no class folders (expected root/<class>/*.jpg)"));
    }
    if folders.len() > MAX_CLASSES {
        return Err(Error::format(
            root,
            format!("{} class folders; at most {MAX_CLASSES} are supported", folders.len()),
        ));
    }
    let mut samples = Vec::new();
    for (label, (_, dir)) in folders.iter().enumerate() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            if path.is_file() {
                files.push(path);
            } else if !path.is_dir() {
                // A link to nothing, a socket, a fifo: not silently dropped.
                let reason = match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.file_type().is_symlink() => "a symbolic link to no file",
                    _ => "not a regular file",
                };
                report.skipped.push(Skipped { path, reason: reason.into() });
            }
        }
        files.sort();
        let before = samples.len();
        for path in files {
            if is_image(&path) {
                samples.push(FileSample { path, label: label as Label });
            } else {
                report.skipped.push(Skipped { path, reason: "not an image file (unsupported extension)".into() });
            }
        }
        if samples.len() == before {
            return Err(Error::format(dir, "class folder holds no image"));
        }
    }
    Ok((folders.into_iter().map(|(name, _)| name).collect(), samples))
}

/// Width and height from the file header, without decoding the pixels.
pub fn dimensions(path: &Path) -> std::result::Result<(u32, u32), String> {
    image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| e.to_string())
}

/// Width and height from a file already in memory (header only).
pub(crate) fn dimensions_of(bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| e.to_string())
}

/// A JPEG must end with its end-of-image marker; decoders otherwise fill a truncated
/// file's missing rows with grey and report success.
pub(crate) fn check_complete(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let jpeg = bytes.starts_with(&[0xFF, 0xD8]);
    if jpeg {
        let tail = &bytes[bytes.len().saturating_sub(64)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            return Err("truncated JPEG (no end-of-image marker)".into());
        }
    }
    Ok(())
}

/// The most pixels a file may claim in its header: 64 megapixels (8000 x 8000, a
/// 192 MB RGB buffer). A header claiming more (a decompression bomb, or damage) is
/// refused before any pixel is decoded, naming the claim and the limit.
pub const MAX_PIXELS: u64 = 8000 * 8000;

fn check_claimed_size(bytes: &[u8]) -> std::result::Result<(), String> {
    let Ok((w, h)) = dimensions_of(bytes) else {
        return Ok(()); // the decoder reports what it makes of the header
    };
    let claimed = u64::from(w) * u64::from(h);
    if claimed > MAX_PIXELS {
        return Err(format!(
            "header claims {w}x{h} pixels ({:.1} megapixels), over the {} megapixel limit",
            claimed as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        ));
    }
    Ok(())
}

/// Decodes one file and resizes it to `shape` (bilinear), as HWC bytes; also returns
/// the original width and height.
pub fn decode(path: &Path, shape: ImageShape) -> std::result::Result<(Vec<u8>, (u32, u32)), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    decode_bytes(&bytes, shape)
}

/// [`decode`] of a file already in memory (an upload to `cnnlab serve`): the same
/// checks (empty, truncated JPEG, a header claiming over [`MAX_PIXELS`]), decoders and
/// resize.
pub fn decode_bytes(bytes: &[u8], shape: ImageShape) -> std::result::Result<(Vec<u8>, (u32, u32)), String> {
    check_complete(bytes)?;
    check_claimed_size(bytes)?;
    let (img, dims) = match decode_jpeg_reduced(bytes, shape) {
        Some(reduced) => reduced,
        None => {
            let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
            let dims = (img.width(), img.height());
            (img, dims)
        }
    };
    let (from, pixels, pixel_type) = match shape.channels {
        1 => {
            // `into_*` moves the decoder's buffer when it already has this layout.
            let g = img.into_luma8();
            (g.dimensions(), g.into_raw(), PixelType::U8)
        }
        _ => {
            let rgb = img.into_rgb8();
            (rgb.dimensions(), rgb.into_raw(), PixelType::U8x3)
        }
    };
    Ok((resize_bilinear(pixels, from, (shape.width as u32, shape.height as u32), pixel_type)?, dims))
}

/// Resizes with a bilinear (triangle) filter whose support widens with the shrink
/// factor, i.e. antialiased as PIL's `resize(BILINEAR)` and image's `Triangle`, with
/// fast_image_resize's SIMD convolutions (several times faster than image's).
fn resize_bilinear(
    pixels: Vec<u8>,
    (w, h): (u32, u32),
    (tw, th): (u32, u32),
    pixel_type: PixelType,
) -> std::result::Result<Vec<u8>, String> {
    use fast_image_resize::images::Image;
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
    if (w, h) == (tw, th) {
        return Ok(pixels);
    }
    let src = Image::from_vec_u8(w, h, pixels, pixel_type).map_err(|e| e.to_string())?;
    let mut dst = Image::new(tw, th, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&src, &mut dst, &options).map_err(|e| e.to_string())?;
    Ok(dst.into_vec())
}

/// A JPEG at least twice the target size on both sides, decoded at 1/2, 1/4 or 1/8
/// scale inside the inverse DCT (libjpeg's scaled decoding, PIL's `draft`): the smallest
/// scale still at least the target size, so the resize that follows only shrinks, from
/// far fewer pixels. `None` for anything else, or on any error (the full decoder then
/// decodes or reports it). Returns the image and the file's full width and height.
fn decode_jpeg_reduced(bytes: &[u8], shape: ImageShape) -> Option<(image::DynamicImage, (u32, u32))> {
    use jpeg_decoder::{Decoder, PixelFormat};
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut decoder = Decoder::new(bytes);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    if w < 2 * shape.width as u32 || h < 2 * shape.height as u32 {
        return None;
    }
    let (sw, sh) = decoder.scale(shape.width as u16, shape.height as u16).ok()?;
    let pixels = decoder.decode().ok()?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let img = match info.pixel_format {
        PixelFormat::RGB24 => image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(sw, sh, pixels)?),
        PixelFormat::L8 => image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(sw, sh, pixels)?),
        PixelFormat::L16 | PixelFormat::CMYK32 => return None,
    };
    Some((img, (w, h)))
}

/// Decodes `files` in parallel into one dataset of `shape`; files that fail are
/// reported and left out. A progress bar shows unless `quiet`.
pub fn decode_all(
    files: &[FileSample],
    classes: &[String],
    shape: ImageShape,
    quiet: bool,
    report: &mut LoadReport,
) -> Result<(Dataset, Vec<PathBuf>)> {
    decode_all_cached(files, classes, shape, quiet, None, report, || Ok(()))
}

/// [`decode_all`] through the decode cache under `cache_dir` when given: a cache of
/// these files at this shape is mapped as the dataset (nothing decoded, nothing read
/// into memory); else the files are decoded a chunk at a time straight into a new cache
/// file, which is then mapped. A cache that cannot be written (a full disk, a
/// read-only folder) is reported, its partial file removed, and the files are decoded
/// into memory instead, training goes on, unless `fits_in_memory` says they cannot be
/// (then the error names both).
pub fn decode_all_cached(
    files: &[FileSample],
    classes: &[String],
    shape: ImageShape,
    quiet: bool,
    cache_dir: Option<&Path>,
    report: &mut LoadReport,
    fits_in_memory: impl Fn() -> Result<()>,
) -> Result<(Dataset, Vec<PathBuf>)> {
    let Some(dir) = cache_dir else {
        return decode_uncached(files, classes, shape, quiet, report);
    };
    let path = crate::cache::path_for(dir, files, shape);
    let (cached, skipped, verb) = match crate::cache::read(&path, files.len(), shape) {
        Some(hit) => {
            let mut is_kept = vec![false; files.len()];
            hit.kept.iter().for_each(|&i| is_kept[i] = true);
            let skipped = files
                .iter()
                .zip(is_kept)
                .filter(|(_, kept)| !kept)
                .map(|(f, _)| Skipped { path: f.path.clone(), reason: "unusable when the cache was built".into() })
                .collect();
            (hit, skipped, "mapped")
        }
        None => {
            let mut skipped = Vec::new();
            match decode_into_cache(files, shape, quiet, &path, &mut skipped) {
                Ok(written) => (written, skipped, "wrote"),
                Err(e) => {
                    let failed = format!("could not write the cache {}: {e}", path.display());
                    if let Err(why) = fits_in_memory() {
                        return Err(Error::Invalid(format!("{failed}, and decoding into memory instead: {why}")));
                    }
                    report.cache.push(format!("{failed}; decoded into memory"));
                    return decode_uncached(files, classes, shape, quiet, report);
                }
            }
        }
    };
    report.skipped.extend(skipped);
    report.cache.push(format!(
        "{verb} {} decoded images {} {}",
        cached.kept.len(),
        if verb == "wrote" { "to" } else { "from" },
        path.display()
    ));
    let paths = cached.kept.iter().map(|&i| files[i].path.clone()).collect();
    Ok((Dataset::from_pixels(shape, cached.pixels, cached.labels, classes.to_vec())?, paths))
}

/// Decodes `files` in parallel a chunk at a time (about 64 MB of pixels), appending
/// each chunk to a new cache file at `path`; the files that fail go to `skipped`.
fn decode_into_cache(
    files: &[FileSample],
    shape: ImageShape,
    quiet: bool,
    path: &Path,
    skipped: &mut Vec<Skipped>,
) -> std::io::Result<crate::cache::Cached> {
    let bar = progress(files.len(), quiet);
    let mut writer = crate::cache::Writer::create(path, files.len(), shape)?;
    let chunk = chunk_len(shape);
    for (c, part) in files.chunks(chunk).enumerate() {
        let decoded = decode_each(part, shape, &bar);
        for (j, (f, r)) in part.iter().zip(decoded).enumerate() {
            match r {
                Ok(px) => {
                    if let Err(e) = writer.push(c * chunk + j, f.label, &px) {
                        writer.abandon();
                        bar.finish_and_clear();
                        return Err(e);
                    }
                }
                Err(reason) => skipped.push(Skipped { path: f.path.clone(), reason }),
            }
        }
    }
    bar.finish_and_clear();
    writer.finish()
}

/// How many images of `shape` are decoded at a time: about 64 MB of pixels, so that
/// decoding holds a chunk besides where the images go, never a second copy of them all.
fn chunk_len(shape: ImageShape) -> usize {
    ((64 << 20) / shape.len().max(1)).max(64)
}

/// Each file's pixels at `shape` or why it failed, decoded in parallel, ticking `bar`.
fn decode_each(
    files: &[FileSample],
    shape: ImageShape,
    bar: &ProgressBar,
) -> Vec<std::result::Result<Vec<u8>, String>> {
    files
        .par_iter()
        .map(|f| {
            let r = decode(&f.path, shape).map(|(px, _)| px);
            bar.inc(1);
            r
        })
        .collect()
}

fn progress(n: usize, quiet: bool) -> ProgressBar {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(n as u64) };
    bar.set_style(
        ProgressStyle::with_template("decoding [{bar:30}] {pos}/{len} {rate} {elapsed}<{eta}")
            .expect("static template")
            .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} images/s", s.per_sec());
            })
            .progress_chars("=> "),
    );
    bar
}

/// Decodes `files` into one buffer in memory, a chunk at a time.
fn decode_uncached(
    files: &[FileSample],
    classes: &[String],
    shape: ImageShape,
    quiet: bool,
    report: &mut LoadReport,
) -> Result<(Dataset, Vec<PathBuf>)> {
    let bar = progress(files.len(), quiet);
    let mut pixels = Vec::with_capacity(files.len() * shape.len());
    let (mut labels, mut paths) = (Vec::new(), Vec::new());
    for part in files.chunks(chunk_len(shape)) {
        for (f, r) in part.iter().zip(decode_each(part, shape, &bar)) {
            match r {
                Ok(px) => {
                    pixels.extend_from_slice(&px);
                    labels.push(f.label);
                    paths.push(f.path.clone());
                }
                Err(reason) => report.skipped.push(Skipped { path: f.path.clone(), reason }),
            }
        }
    }
    bar.finish_and_clear();
    Ok((Dataset::new(shape, pixels, labels, classes.to_vec())?, paths))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_empty_files_are_caught() {
        assert_eq!(check_complete(&[]).unwrap_err(), "empty file");
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
        jpeg.extend([0u8; 100]);
        assert!(check_complete(&jpeg).unwrap_err().contains("truncated JPEG"));
        jpeg.extend([0xFF, 0xD9]);
        assert!(check_complete(&jpeg).is_ok());
    }

    /// Headers claiming 100000x100000 (PNG) and 60000x60000 (JPEG) pixels are refused
    /// before decoding, with the claim and the limit in the reason.
    #[test]
    fn huge_claimed_sizes_are_refused_before_decoding() {
        let shape = ImageShape { channels: 3, height: 8, width: 8 };
        let dir = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 9, y as u8 * 9, 77]));
        // PNG: IHDR is the first chunk; width and height at bytes 16..24, CRC after.
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&png[12..29]);
        png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        // JPEG: height and width at 5..9 after the baseline SOF0 marker.
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&img).unwrap();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
        // A megapixel is a million pixels (9000 x 9000 read "77 megapixels" when divided by 2^20).
        for (name, bytes, claim) in [
            ("big.png", png, "100000x100000 pixels (10000.0 megapixels)"),
            ("big.jpg", jpeg, "60000x60000 pixels (3600.0 megapixels)"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = decode(&path, shape).unwrap_err();
            assert!(err.contains(&format!("header claims {claim}")) && err.contains("64 megapixel limit"), "{err}");
        }
    }

    #[test]
    fn large_jpegs_decode_reduced_close_to_a_full_decode() {
        // A smooth 400x300 photo-like image: gradients and a disc.
        let img = image::RgbImage::from_fn(400, 300, |x, y| {
            let disc = ((x as i32 - 200).pow(2) + (y as i32 - 150).pow(2)) < 90 * 90;
            image::Rgb([(x * 255 / 400) as u8, (y * 255 / 300) as u8, if disc { 220 } else { 40 }])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&img).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("photo.jpg");
        std::fs::write(&path, &bytes).unwrap();
        let shape = ImageShape { channels: 3, height: 64, width: 64 };
        assert!(decode_jpeg_reduced(&bytes, shape).is_some(), "400x300 is over twice 64x64");
        let (fast, dims) = decode(&path, shape).unwrap();
        assert_eq!(dims, (400, 300), "the file's own size, for the size filter");
        let full = image::load_from_memory(&bytes).unwrap().to_rgb8();
        let slow = image::imageops::resize(&full, 64, 64, image::imageops::FilterType::Triangle).into_raw();
        let mean_diff =
            fast.iter().zip(&slow).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>() / fast.len() as f64;
        assert!(mean_diff < 3.0, "mean absolute difference {mean_diff}");
        // Too small to reduce: the full decoder.
        assert!(decode_jpeg_reduced(&bytes, ImageShape { channels: 3, height: 224, width: 224 }).is_none());
    }
}

/// Fuzzing the decoder front: arbitrary bytes behind each format's magic and mutated
/// valid PNG / JPEG / GIF files never panic, and what decodes has the asked-for size.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn valid(format: image::ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_fn(9, 7, |x, y| image::Rgb([x as u8 * 25, y as u8 * 30, 128]));
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(img).write_to(&mut std::io::Cursor::new(&mut bytes), format).unwrap();
        bytes
    }

    const MAGIC: [&[u8]; 5] = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"RIFF"];

    proptest! {
        // Each case writes a file: 64 by default, PROPTEST_CASES for a campaign.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_and_mutated_images_never_panic(
            which in 0usize..8,
            tail in proptest::collection::vec(any::<u8>(), 0..300),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            channels in prop_oneof![Just(1usize), Just(3usize)],
        ) {
            let mut bytes = match which {
                0..=4 => [MAGIC[which], &tail].concat(),
                5 => valid(image::ImageFormat::Png),
                6 => valid(image::ImageFormat::Jpeg),
                _ => valid(image::ImageFormat::Gif),
            };
            for (at, byte) in edits {
                let n = bytes.len();
                bytes[at % n] = byte;
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.img");
            std::fs::write(&path, &bytes).unwrap();
            let shape = ImageShape { channels, height: 5, width: 6 };
            if let Ok((pixels, _)) = decode(&path, shape) {
                prop_assert_eq!(pixels.len(), shape.len());
            }
        }
    }
}
