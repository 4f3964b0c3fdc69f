//! What makes two runs' test sets the same: a content fingerprint per example, which
//! `predictions.csv` records and `cnnlab compare` matches, so that paths (the same
//! images copied elsewhere) do not matter and positions (index 17 of two differently
//! generated sets) are not enough.
//!
//! An example read from a file is the file's bytes (the image itself, whatever size a
//! run decodes it to); an example without a file (IDX, CIFAR batches, generated
//! shapes) is its decoded pixels. Both are the first 128 bits of SHA-256 in hex.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::{Dataset, Error, Result};

/// The `predictions.csv` column of file fingerprints.
pub const FILE_SHA256: &str = "file_sha256";
/// The `predictions.csv` column of pixel fingerprints.
pub const PIXELS_SHA256: &str = "pixels_sha256";

/// One fingerprint per example, and the column they belong in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    /// [`FILE_SHA256`] or [`PIXELS_SHA256`].
    pub column: &'static str,
    pub values: Vec<String>,
}

/// The first 128 bits of SHA-256 of `bytes`, as 32 hex digits.
pub fn sha256_128(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl Fingerprints {
    /// Each file's bytes; an unreadable file is an error naming it.
    pub fn of_files(files: &[PathBuf]) -> Result<Self> {
        use rayon::prelude::*;
        let read = |p: &PathBuf| std::fs::read(p).map(|b| sha256_128(&b)).map_err(|e| Error::io(p, e));
        let values = files.par_iter().map(read).collect::<Result<Vec<_>>>()?;
        Ok(Fingerprints { column: FILE_SHA256, values })
    }

    /// Each example's decoded pixels.
    pub fn of_pixels(data: &Dataset) -> Self {
        let values = (0..data.len()).map(|i| sha256_128(data.image(i))).collect();
        Fingerprints { column: PIXELS_SHA256, values }
    }

    /// The test split's: of its files when it was read from files (`files`, one per
    /// example), else of its pixels.
    pub fn of_split(data: &Dataset, files: Option<&[PathBuf]>) -> Result<Self> {
        match files {
            Some(files) if files.len() == data.len() => Self::of_files(files),
            _ => Ok(Self::of_pixels(data)),
        }
    }

    /// `(column, values)`, as cnnlab-run's `write_predictions` takes them.
    pub fn as_column(&self) -> (&str, &[String]) {
        (self.column, &self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageShape;

    /// SHA-256 of "abc" is ba7816bf 8f01cfea 414140de 5dae2223 ... (FIPS 180-2).
    #[test]
    fn the_fingerprint_is_sha256s_first_128_bits() {
        assert_eq!(sha256_128(b"abc"), "ba7816bf8f01cfea414140de5dae2223");
    }

    /// The same image at two paths is one example; pixels are fingerprinted per example.
    #[test]
    fn files_by_content_and_pixels_per_example() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a.png"), dir.path().join("sub-b.png"), dir.path().join("c.png"));
        std::fs::write(&a, b"same").unwrap();
        std::fs::write(&b, b"same").unwrap();
        std::fs::write(&c, b"other").unwrap();
        let f = Fingerprints::of_files(&[a, b, c.clone()]).unwrap();
        assert_eq!(f.column, FILE_SHA256);
        assert!(f.values[0] == f.values[1] && f.values[1] != f.values[2]);
        let missing = dir.path().join("gone.png");
        assert!(Fingerprints::of_files(&[missing]).unwrap_err().to_string().contains("gone.png"));

        let shape = ImageShape { channels: 1, height: 1, width: 2 };
        let data = Dataset::new(shape, vec![1, 2, 1, 2, 2, 1], vec![0, 0, 1], vec!["x".into(), "y".into()]).unwrap();
        let p = Fingerprints::of_split(&data, None).unwrap();
        assert_eq!(p.column, PIXELS_SHA256);
        assert_eq!(p.values, [sha256_128(&[1, 2]), sha256_128(&[1, 2]), sha256_128(&[2, 1])]);
    }
}
