//! CIFAR-10 binary batches: each record is one label byte then 3072 pixel bytes,
//! 1024 red, 1024 green, 1024 blue, rows top to bottom.

use std::path::Path;

use crate::error::{Error, Result};

pub(crate) const SIDE: usize = 32;
const PIXELS: usize = SIDE * SIDE;
pub(crate) const RECORD: usize = 1 + 3 * PIXELS;

/// Appends the records of one batch file to `images` (HWC) and `labels`.
pub(crate) fn read_batch(path: &Path, images: &mut Vec<u8>, labels: &mut Vec<crate::Label>) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_batch(path, &bytes, images, labels)
}

pub(crate) fn parse_batch(
    path: &Path,
    bytes: &[u8],
    images: &mut Vec<u8>,
    labels: &mut Vec<crate::Label>,
) -> Result<()> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::format(
            path,
            format!(
                "{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records (truncated or not a CIFAR-10 batch)",
                bytes.len()
            ),
        ));
    }
    images.reserve(bytes.len() / RECORD * 3 * PIXELS);
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        let label = record[0];
        if label >= 10 {
            return Err(Error::format(path, format!("record {i} has label {label}, CIFAR-10 labels are 0..9")));
        }
        labels.push(label.into());
        let (r, rest) = record[1..].split_at(PIXELS);
        let (g, b) = rest.split_at(PIXELS);
        for p in 0..PIXELS {
            images.extend_from_slice(&[r[p], g[p], b[p]]);
        }
    }
    Ok(())
}

/// Encodes records (label, HWC pixels) as a CIFAR-10 batch; for tests and tools.
pub fn encode(records: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * RECORD);
    for (label, hwc) in records {
        out.push(*label);
        for c in 0..3 {
            out.extend((0..PIXELS).map(|p| hwc[3 * p + c]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let img: Vec<u8> = (0..3 * PIXELS).map(|i| (i % 251) as u8).collect();
        let bytes = encode(&[(3, &img), (9, &img)]);
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        parse_batch(Path::new("b.bin"), &bytes, &mut images, &mut labels).unwrap();
        assert_eq!(labels, [3, 9]);
        assert_eq!(&images[..3 * PIXELS], &img[..]);

        // Planes on disk (all red, then green, then blue) become interleaved HWC.
        let mut planes = vec![7u8];
        planes.extend([10u8, 20, 30].iter().flat_map(|&v| std::iter::repeat_n(v, PIXELS)));
        let (mut hwc, mut l) = (Vec::new(), Vec::new());
        parse_batch(Path::new("p.bin"), &planes, &mut hwc, &mut l).unwrap();
        assert_eq!((l[0], &hwc[..6], hwc.len()), (7, &[10, 20, 30, 10, 20, 30][..], 3 * PIXELS));

        let err = parse_batch(Path::new("b.bin"), &bytes[..100], &mut images, &mut labels).unwrap_err();
        assert!(err.to_string().starts_with("b.bin: 100 bytes is not a whole number"), "{err}");
        let mut bad = bytes.clone();
        bad[RECORD] = 10;
        let err = parse_batch(Path::new("b.bin"), &bad, &mut images, &mut labels).unwrap_err();
        assert!(err.to_string().contains("record 1 has label 10"), "{err}");
    }
}

/// Fuzzing: arbitrary CIFAR-10 batch bytes never panic; what parses is whole records.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_batches_never_panic(len in 0usize..3 * RECORD, seed in any::<u8>(), label in any::<u8>()) {
            let mut bytes: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
            if let Some(first) = bytes.first_mut() {
                *first = label;
            }
            let (mut images, mut labels) = (Vec::new(), Vec::new());
            if parse_batch(Path::new("b.bin"), &bytes, &mut images, &mut labels).is_ok() {
                prop_assert_eq!(images.len(), labels.len() * 3 * PIXELS);
                prop_assert!(labels.iter().all(|&l| l < 10));
            }
        }
    }
}
