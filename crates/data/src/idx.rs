//! MNIST / Fashion-MNIST IDX files, gzipped or not.
//!
//! Format (big-endian): two zero bytes, a type byte (0x08 = u8), a dimension count,
//! then one u32 per dimension, then the data. Images are `[n, rows, cols]`, labels `[n]`.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Reads a whole file, transparently gunzipping it when it starts with the gzip magic.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("corrupt gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX u8 tensor and returns its dimensions and data.
pub(crate) fn parse(path: &Path, bytes: &[u8], expected_dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    if bytes.len() < 4 {
        return Err(Error::format(path, format!("only {} bytes, too short for an IDX header", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(Error::format(
            path,
            format!(
                "bad IDX magic {:02x}{:02x}{:02x}{:02x} (want 000008xx: unsigned bytes)",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims != expected_dims {
        return Err(Error::format(path, format!("IDX has {ndims} dimensions, expected {expected_dims}")));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(Error::format(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    let have = bytes.len() - header;
    // Checked: 4 x 2^31 x 2^31 wraps a usize to 0 and would pass for an empty file.
    let want = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if want != Some(have) {
        let want = want.map_or_else(|| "more than 2^64".to_owned(), |w| w.to_string());
        return Err(Error::format(path, format!("IDX header {dims:?} announces {want} data bytes, file has {have}")));
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// Reads an images file and a labels file into `(height, width, pixels, labels)`.
pub(crate) fn read_pair(images: &Path, labels: &Path) -> Result<(usize, usize, Vec<u8>, Vec<u8>)> {
    let (idims, pixels) = parse(images, &read_maybe_gz(images)?, 3)?;
    let (ldims, labs) = parse(labels, &read_maybe_gz(labels)?, 1)?;
    if idims[0] != ldims[0] {
        return Err(Error::format(
            labels,
            format!("{} labels for {} images in {}", ldims[0], idims[0], images.display()),
        ));
    }
    Ok((idims[1], idims[2], pixels, labs))
}

/// Encodes an IDX u8 file; used by tests and by anyone who wants to write one.
pub fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(bytes: &[u8], dims: usize, needle: &str) {
        let err = parse(Path::new("x.idx"), bytes, dims).unwrap_err().to_string();
        assert!(err.starts_with("x.idx: ") && err.contains(needle), "{err}");
    }

    #[test]
    fn parses_and_rejects() {
        let file = encode(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let (dims, data) = parse(Path::new("x"), &file, 3).unwrap();
        assert_eq!(dims, [2, 2, 3]);
        assert_eq!(data[11], 12);

        check_err(&file[..file.len() - 1], 3, "announces 12 data bytes, file has 11");
        check_err(&[0, 0], 3, "too short");
        check_err(&[0, 0, 0x0d, 3, 0, 0, 0, 1], 3, "bad IDX magic");
        check_err(&encode(&[3], &[1, 2, 3]), 3, "1 dimensions, expected 3");
        check_err(&[0, 0, 8, 3, 0, 0], 3, "truncated IDX header");
        // 4 x 2^31 x 2^31 overflows: an unchecked product is 0 (and an empty body fits).
        let mut huge = encode(&[4, 1 << 31, 1 << 31], &[]);
        check_err(&huge, 3, "announces more than 2^64 data bytes, file has 0");
        huge.extend_from_slice(&[7; 16]);
        check_err(&huge, 3, "file has 16");
    }
}

/// Fuzzing: arbitrary and mutated IDX files never panic, and a header that parses
/// always describes exactly the data returned.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128), dims in 1usize..4) {
            if let Ok((d, data)) = parse(Path::new("f.idx"), &bytes, dims) {
                prop_assert_eq!(d.iter().product::<usize>(), data.len());
            }
        }

        #[test]
        fn mutated_valid_files_never_panic(
            edits in proptest::collection::vec((0usize..40, any::<u8>()), 0..6),
            cut in 0usize..45,
        ) {
            let mut file = encode(&[2, 3, 4], &(0..24).collect::<Vec<u8>>());
            for (at, byte) in edits {
                let n = file.len();
                file[at % n] = byte;
            }
            file.truncate(cut.max(1));
            if let Ok((d, data)) = parse(Path::new("f.idx"), &file, 3) {
                prop_assert_eq!(d.iter().product::<usize>(), data.len());
            }
        }
    }
}
