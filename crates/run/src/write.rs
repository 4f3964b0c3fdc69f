//! The atomic writer every file of a run folder goes through.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// Renames `tmp` to `path` after a successful write; after a failed one removes `tmp`
/// (a full disk must not stay full of half files) and names `path`. For writers of
/// other formats (cnnlab-train's safetensors): write `tmp`, then commit.
pub fn commit(tmp: &Path, path: &Path, written: std::result::Result<(), String>) -> Result<()> {
    let renamed = written.and_then(|()| std::fs::rename(tmp, path).map_err(|e| e.to_string()));
    renamed.map_err(|reason| {
        let _ = std::fs::remove_file(tmp);
        Error::Write { path: path.to_path_buf(), reason }
    })
}

/// Writes `path` through `<path>.tmp` and a rename: readers (and a crash) see the old
/// file or the new one, never half of one.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes)).map_err(|e| e.to_string());
    commit(&tmp, path, written)
}

/// Pretty JSON with a final newline, through [`write_bytes`].
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Write { path: path.to_path_buf(), reason: e.to_string() })?;
    write_bytes(path, (text + "\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use crate::RunDir;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        run.write_bytes("a.json", b"old").unwrap();
        // Writing into a folder that is a file fails like a full disk does: at create.
        let blocked = RunDir::new(dir.path().join("a.json"));
        let err = blocked.write_bytes("b.json", b"new").unwrap_err().to_string();
        assert!(err.starts_with(&format!("writing {}", dir.path().join("a.json/b.json").display())), "{err}");
        assert_eq!(std::fs::read(dir.path().join("a.json")).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a.json"]);
    }
}
