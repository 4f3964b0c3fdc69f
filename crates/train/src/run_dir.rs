//! The run folder as cnnlab-train writes it: the format itself (file names, the
//! atomic writer, typed records, the lock) is cnnlab-run's; here are the files that
//! hold tensors (safetensors weights and checkpoints) and the TensorBoard event file.

use cnnlab_run::{commit, EpochRecord, RunDir};

use crate::error::Result;

/// What cnnlab-train writes into a run folder beyond cnnlab-run's files.
pub trait RunFiles {
    /// Saves the variables of `vs` as `<run>/<name>` (safetensors), atomically.
    fn save_vars(&self, name: &str, vs: &tch::nn::VarStore) -> Result<()>;

    /// Saves named tensors as `<run>/<name>` (safetensors), atomically. Tensors in
    /// another memory order (channels-last weights) are written in the standard one,
    /// which is what safetensors holds and what tch refuses to write otherwise.
    fn save_tensors(&self, name: &str, named: &[(String, tch::Tensor)]) -> Result<()>;

    /// `tb/events.out.tfevents.*` from the run's config and `history` (plus `images`,
    /// named PNGs, at the last epoch), rewritten whole like `history.csv`.
    fn write_tensorboard(&self, history: &[EpochRecord], images: &[(&str, &[u8])]) -> Result<()>;
}

impl RunFiles for RunDir {
    fn save_vars(&self, name: &str, vs: &tch::nn::VarStore) -> Result<()> {
        let mut named: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        self.save_tensors(name, &named)
    }

    fn save_tensors(&self, name: &str, named: &[(String, tch::Tensor)]) -> Result<()> {
        let path = self.file(name);
        let tmp = path.with_extension("tmp.safetensors");
        let named: Vec<(&str, tch::Tensor)> = named.iter().map(|(k, t)| (k.as_str(), t.contiguous())).collect();
        Ok(commit(&tmp, &path, tch::Tensor::write_safetensors(&named, &tmp).map_err(|e| tch_reason(&e)))?)
    }

    fn write_tensorboard(&self, history: &[EpochRecord], images: &[(&str, &[u8])]) -> Result<()> {
        let config = std::fs::read_to_string(self.file(cnnlab_run::files::CONFIG)).unwrap_or_default();
        crate::tensorboard::EventFile::open(&self.file(cnnlab_run::files::TB))?.write(&config, history, images)
    }
}

/// The plain reason a tch read or write failed: an `io::Error`'s text, not its Debug
/// form, and a safetensors format error said as such, without tch's repeated path.
pub(crate) fn tch_reason(e: &tch::TchError) -> String {
    use safetensors::SafeTensorError as S;
    match e {
        tch::TchError::SafeTensorError { err: S::IoError(io), .. } => io.to_string(),
        tch::TchError::SafeTensorError { err, .. } => match err {
            S::MetadataIncompleteBuffer | S::HeaderTooSmall | S::InvalidHeaderLength | S::InvalidOffset(_) => {
                format!("truncated or damaged safetensors file ({err:?})")
            }
            _ => format!("not a valid safetensors file ({err:?})"),
        },
        tch::TchError::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnnlab_run::files;

    /// A full disk, for real: the temporary file is a link to /dev/full, whose writes
    /// fail with ENOSPC. The error is one plain line naming the file, the temporary is
    /// gone, and the earlier checkpoint is intact.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_names_the_file_removes_the_temporary_and_keeps_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _w = vs.root().randn("w", &[64, 64], 0.0, 1.0);
        run.save_vars(files::LAST, &vs).unwrap();
        let before = std::fs::read(run.file(files::LAST)).unwrap();
        run.write_json(files::METRICS, &[1, 2]).unwrap();
        let full = |tmp: &str| std::os::unix::fs::symlink("/dev/full", run.file(tmp)).unwrap();
        full("last.tmp.safetensors");
        full("metrics.json.tmp");
        tch::no_grad(|| {
            let _ = vs.variables()["w"].shallow_clone().fill_(0.0);
        });
        let err = run.save_vars(files::LAST, &vs).unwrap_err().to_string();
        let path = run.file(files::LAST);
        assert_eq!(err, format!("writing {}: No space left on device (os error 28)", path.display()));
        let err = run.write_json(files::METRICS, &[3]).unwrap_err().to_string();
        let path = run.file(files::METRICS);
        assert_eq!(err, format!("writing {}: No space left on device (os error 28)", path.display()));
        let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, [files::LAST, files::METRICS], "no temporary file is left");
        assert_eq!(std::fs::read(run.file(files::LAST)).unwrap(), before);
        assert_eq!(std::fs::read_to_string(run.file(files::METRICS)).unwrap(), "[\n  1,\n  2\n]\n");
    }
}
