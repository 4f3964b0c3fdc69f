//! The decoded u8 cache persisted on disk, so a second run skips JPEG decoding.
//!
//! A cache file is keyed by a hash of the target shape and of every source file's
//! path, size and modification time: change, add or remove a file, or ask for another
//! size, and the key (so the file name) changes. Layout: magic, n_files, n_kept,
//! shape, the kept file indices, labels, pixels. Written to a temporary file and
//! renamed, so an interrupted write never leaves a half cache.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dataset::ImageShape;
use crate::folder::FileSample;

const MAGIC: &[u8; 8] = b"CNNLABC1";

/// FNV-1a, 64 bit: stable across Rust versions, unlike `DefaultHasher`.
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= b as u64;
        *hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
}

/// The cache file for these files decoded to `shape`.
pub(crate) fn path_for(dir: &Path, files: &[FileSample], shape: ImageShape) -> PathBuf {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in [shape.channels, shape.height, shape.width] {
        fnv(&mut h, &(v as u64).to_le_bytes());
    }
    for f in files {
        fnv(&mut h, f.path.as_os_str().as_encoded_bytes());
        fnv(&mut h, &[f.label]);
        if let Ok(meta) = f.path.metadata() {
            fnv(&mut h, &meta.len().to_le_bytes());
            let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            fnv(&mut h, &mtime.map_or(0, |d| d.as_nanos()).to_le_bytes());
        }
    }
    dir.join(format!("{h:016x}.bin"))
}

/// What a cache file holds: indices (into the file list) of the decoded images,
/// their labels and pixels.
pub(crate) struct Cached {
    pub(crate) kept: Vec<usize>,
    pub(crate) labels: Vec<u8>,
    pub(crate) pixels: Vec<u8>,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a cache file; `None` when absent or not a valid cache for this shape and
/// file count (then the caller decodes again and overwrites it).
pub(crate) fn read(path: &Path, n_files: usize, shape: ImageShape) -> Option<Cached> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.get(..8)? != MAGIC || u32_at(&bytes, 8)? as usize != n_files {
        return None;
    }
    let kept_n = u32_at(&bytes, 12)? as usize;
    let dims = [u32_at(&bytes, 16)?, u32_at(&bytes, 20)?, u32_at(&bytes, 24)?];
    if dims != [shape.channels as u32, shape.height as u32, shape.width as u32] {
        return None;
    }
    let mut at = 28;
    let kept: Vec<usize> =
        (0..kept_n).map(|i| u32_at(&bytes, at + 4 * i).map(|v| v as usize)).collect::<Option<_>>()?;
    at += 4 * kept_n;
    let labels = bytes.get(at..at + kept_n)?.to_vec();
    at += kept_n;
    let pixels = bytes.get(at..)?;
    if pixels.len() != kept_n * shape.len() || kept.iter().any(|&i| i >= n_files) {
        return None;
    }
    Some(Cached { kept, labels, pixels: pixels.to_vec() })
}

/// Writes a cache file through a temporary file and a rename.
pub(crate) fn write(path: &Path, n_files: usize, shape: ImageShape, c: &Cached) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    out.write_all(MAGIC)?;
    for v in [n_files, c.kept.len(), shape.channels, shape.height, shape.width] {
        out.write_all(&(v as u32).to_le_bytes())?;
    }
    for &i in &c.kept {
        out.write_all(&(i as u32).to_le_bytes())?;
    }
    out.write_all(&c.labels)?;
    out.write_all(&c.pixels)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}
