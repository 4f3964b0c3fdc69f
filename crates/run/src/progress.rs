//! Where an unfinished run goes on: the progress that cnnlab-train keeps in
//! `resume.safetensors` (the JSON bytes of its `progress.json` tensor), read from the
//! file's header and that one small tensor, without the weights and without libtorch.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};

/// The name of the tensor holding the progress JSON (cnnlab-train writes it).
pub const PROGRESS_TENSOR: &str = "progress.json";

/// Whole epochs the checkpoint at `path` holds: those before the epoch in progress
/// (after the last epoch, or early stopping, its position is past it).
pub(crate) fn epochs_done(path: &Path) -> Result<usize> {
    let progress = read_progress(path)?;
    let epoch = progress["epoch"]
        .as_u64()
        .ok_or_else(|| Error::Format { path: path.to_path_buf(), reason: "its progress has no epoch".into() })?;
    Ok((epoch as usize).saturating_sub(1))
}

/// The progress JSON of a `resume.safetensors`.
pub(crate) fn read_progress(path: &Path) -> Result<serde_json::Value> {
    let bad = |reason: String| Error::Format { path: path.to_path_buf(), reason };
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| bad(format!("no safetensors header: {e}")))?;
    let len = u64::from_le_bytes(len);
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len > size.saturating_sub(8) || len > 100 << 20 {
        return Err(bad(format!("a header of {len} bytes in a file of {size}: truncated or not safetensors")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(|e| bad(e.to_string()))?;
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))?;
    let offsets = header[PROGRESS_TENSOR]["data_offsets"].as_array().and_then(|o| {
        let (a, b) = (o.first()?.as_u64()?, o.get(1)?.as_u64()?);
        (a <= b && 8 + len + b <= size).then_some((a, b))
    });
    let (a, b) = offsets.ok_or_else(|| bad("not a cnnlab resume checkpoint (no readable progress)".into()))?;
    let mut json = vec![0u8; (b - a) as usize];
    file.seek(SeekFrom::Start(8 + len + a)).and_then(|_| file.read_exact(&mut json)).map_err(|e| bad(e.to_string()))?;
    serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))
}
