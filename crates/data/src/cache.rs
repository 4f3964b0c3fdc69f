//! The decode cache: a split's decoded images in one file under
//! `<data-dir>/.cnnlab-cache/`, which later runs memory-map as the dataset itself
//! (`Pixels::Mapped`) instead of decoding again or reading it into memory, so a dataset
//! far larger than memory trains with the batches in flight resident and the rest in
//! the page cache.
//!
//! A cache file is keyed by a hash of the target shape and of every source file's
//! path, label, size and modification time: change, add or remove a file, or ask for
//! another size, and the key (so the file name) changes. It is written as decoding goes
//! (a chunk of images at a time, never all of them in memory) to a temporary file that
//! is synced and renamed when complete, so an interrupted or failed write (a full disk)
//! never leaves a cache that a later run reads.
//!
//! Layout (little-endian): a 4096-byte header — magic and version `CNNLABC3`, files,
//! kept images, channels, height, width, where the pixels start and end, the file's
//! length, an FNV-1a of those fields — then the pixels (`kept x H x W x C` bytes, from
//! byte 4096, page-aligned), then each kept image's file index (u32) and label (u16).
//! A file of another version, another length than its header says (a copy cut short),
//! or whose header does not add up is decoded again and replaced, never read.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dataset::{ImageShape, Label, Pixels};
use crate::folder::FileSample;

const MAGIC: &[u8; 8] = b"CNNLABC3";
/// The header's size; the pixels start here (a page boundary).
const HEADER: u64 = 4096;
/// The header's fields: magic, then 9 u64.
const FIELDS: usize = 8 + 9 * 8;

/// FNV-1a, 64 bit: stable across Rust versions, unlike `DefaultHasher`.
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= b as u64;
        *hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The cache file for these files decoded to `shape`.
pub(crate) fn path_for(dir: &Path, files: &[FileSample], shape: ImageShape) -> PathBuf {
    let mut h = FNV_START;
    for v in [shape.channels, shape.height, shape.width] {
        fnv(&mut h, &(v as u64).to_le_bytes());
    }
    for f in files {
        fnv(&mut h, f.path.as_os_str().as_encoded_bytes());
        fnv(&mut h, &f.label.to_le_bytes());
        if let Ok(meta) = f.path.metadata() {
            fnv(&mut h, &meta.len().to_le_bytes());
            let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            fnv(&mut h, &mtime.map_or(0, |d| d.as_nanos()).to_le_bytes());
        }
    }
    dir.join(format!("{h:016x}.bin"))
}

/// What a cache file holds: indices (into the file list) of the decoded images, their
/// labels, and their pixels, mapped.
pub(crate) struct Cached {
    pub(crate) kept: Vec<usize>,
    pub(crate) labels: Vec<Label>,
    pub(crate) pixels: Pixels,
}

/// The header's fields after the magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    files: u64,
    kept: u64,
    shape: [u64; 3],
    pixels_end: u64,
    len: u64,
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let fields =
            [self.files, self.kept, self.shape[0], self.shape[1], self.shape[2], HEADER, self.pixels_end, self.len];
        for v in fields {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let mut h = FNV_START;
        fnv(&mut h, &out);
        out.extend_from_slice(&h.to_le_bytes());
        debug_assert_eq!(out.len(), FIELDS);
        out.resize(HEADER as usize, 0);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Header> {
        if bytes.get(..8)? != MAGIC {
            return None;
        }
        let u =
            |i: usize| -> Option<u64> { Some(u64::from_le_bytes(bytes.get(8 + 8 * i..16 + 8 * i)?.try_into().ok()?)) };
        let mut h = FNV_START;
        fnv(&mut h, bytes.get(..FIELDS - 8)?);
        if u(8)? != h || u(5)? != HEADER {
            return None;
        }
        Some(Header { files: u(0)?, kept: u(1)?, shape: [u(2)?, u(3)?, u(4)?], pixels_end: u(6)?, len: u(7)? })
    }
}

fn shape_key(shape: ImageShape) -> [u64; 3] {
    [shape.channels as u64, shape.height as u64, shape.width as u64]
}

/// Maps a cache file; `None` when absent, of another version, or not a whole cache of
/// `n_files` files at `shape` (then the caller decodes again and replaces it).
pub(crate) fn read(path: &Path, n_files: usize, shape: ImageShape) -> Option<Cached> {
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len < HEADER {
        return None;
    }
    // SAFETY: the cache is only ever replaced by a rename, never written in place; a
    // file another process truncates under the map would fault, as for any mapped file.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let h = Header::decode(&map[..HEADER as usize])?;
    let image = shape.len() as u64;
    let pixels_end = HEADER.checked_add(h.kept.checked_mul(image)?)?;
    let trailer = h.kept.checked_mul(6)?;
    if h.files != n_files as u64
        || h.shape != shape_key(shape)
        || h.pixels_end != pixels_end
        || h.len != len
        || pixels_end.checked_add(trailer)? != len
    {
        return None;
    }
    let (kept_n, at) = (h.kept as usize, pixels_end as usize);
    let kept: Vec<usize> = map[at..at + 4 * kept_n]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let at = at + 4 * kept_n;
    let labels: Vec<Label> =
        map[at..at + 2 * kept_n].chunks_exact(2).map(|b| Label::from_le_bytes([b[0], b[1]])).collect();
    if kept.iter().any(|&i| i >= n_files) || kept.windows(2).any(|w| w[0] >= w[1]) {
        return None;
    }
    let _ = map.advise(memmap2::Advice::Random);
    let pixels = Pixels::mapped(Arc::new(map), HEADER as usize, pixels_end as usize);
    Some(Cached { kept, labels, pixels })
}

/// A cache file being written: images are appended as they are decoded; `finish`
/// writes the index and the header, syncs and renames it into place.
pub(crate) struct Writer {
    path: PathBuf,
    tmp: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    n_files: usize,
    shape: ImageShape,
    kept: Vec<usize>,
    labels: Vec<Label>,
}

impl Writer {
    pub(crate) fn create(path: &Path, n_files: usize, shape: ImageShape) -> std::io::Result<Writer> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // One temporary name per process: two runs decoding the same split at once
        // each write their own and the last rename wins (the two are identical).
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        out.write_all(&[0u8; HEADER as usize])?;
        Ok(Writer { path: path.to_path_buf(), tmp, out, n_files, shape, kept: Vec::new(), labels: Vec::new() })
    }

    /// Appends file `index`'s decoded pixels.
    pub(crate) fn push(&mut self, index: usize, label: Label, pixels: &[u8]) -> std::io::Result<()> {
        debug_assert_eq!(pixels.len(), self.shape.len());
        self.out.write_all(pixels)?;
        self.kept.push(index);
        self.labels.push(label);
        Ok(())
    }

    /// Completes the file and maps it.
    pub(crate) fn finish(mut self) -> std::io::Result<Cached> {
        let result = self.complete();
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result?;
        read(&self.path, self.n_files, self.shape)
            .ok_or_else(|| std::io::Error::other(format!("{} does not read back", self.path.display())))
    }

    fn complete(&mut self) -> std::io::Result<()> {
        for &i in &self.kept {
            self.out.write_all(&(i as u32).to_le_bytes())?;
        }
        for &l in &self.labels {
            self.out.write_all(&l.to_le_bytes())?;
        }
        let kept = self.kept.len() as u64;
        let pixels_end = HEADER + kept * self.shape.len() as u64;
        let header = Header {
            files: self.n_files as u64,
            kept,
            shape: shape_key(self.shape),
            pixels_end,
            len: pixels_end + 6 * kept,
        };
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&header.encode())?;
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        std::fs::rename(&self.tmp, &self.path)
    }

    /// Gives up: removes the temporary file.
    pub(crate) fn abandon(self) {
        drop(self.out);
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> ImageShape {
        ImageShape { channels: 1, height: 2, width: 3 }
    }

    fn write(dir: &Path) -> PathBuf {
        let path = dir.join("c.bin");
        let mut w = Writer::create(&path, 4, shape()).unwrap();
        w.push(0, 7, &[1, 2, 3, 4, 5, 6]).unwrap();
        w.push(2, 300, &[9; 6]).unwrap();
        let c = w.finish().unwrap();
        assert_eq!((c.kept, c.labels), (vec![0, 2], vec![7, 300]));
        assert_eq!(&c.pixels[..], [1, 2, 3, 4, 5, 6, 9, 9, 9, 9, 9, 9]);
        path
    }

    #[test]
    fn a_written_cache_maps_back_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["c.bin"]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER + 12 + 12);
        let c = read(&path, 4, shape()).unwrap();
        assert_eq!(c.labels, [7, 300]);
        assert!(read(&path, 5, shape()).is_none(), "another file count");
        assert!(read(&path, 4, ImageShape { channels: 1, height: 3, width: 2 }).is_none(), "another shape");
    }

    /// A cache cut short (a crash during a copy, a disk that filled), one with a byte
    /// of its header changed, and one of the previous version are all refused.
    #[test]
    fn truncated_corrupt_and_old_caches_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 100, HEADER as usize, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(read(&path, 4, shape()).is_none(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[16] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(read(&path, 4, shape()).is_none(), "header changed");
        let mut old = bytes.clone();
        old[..8].copy_from_slice(b"CNNLABC1");
        std::fs::write(&path, &old).unwrap();
        assert!(read(&path, 4, shape()).is_none(), "version 1");
        std::fs::write(&path, &bytes).unwrap();
        assert!(read(&path, 4, shape()).is_some());
    }

    #[test]
    fn an_abandoned_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let mut w = Writer::create(&path, 2, shape()).unwrap();
        w.push(0, 1, &[0; 6]).unwrap();
        w.abandon();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
