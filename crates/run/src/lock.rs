//! The run folder's lock: an OS lock on the folder for the life of the process, and
//! `.lock`'s text (pid, host, Slurm job) for people and for other hosts.

use std::path::{Path, PathBuf};

use crate::dir::RunDir;
use crate::error::{Error, Result};
use crate::files;
use crate::write::write_bytes;

impl RunDir {
    /// Takes the folder for this process until the guard drops. The folder itself is
    /// locked with the OS (`flock` on the directory, held for the life of the
    /// process and released by the kernel however it ends), so two processes on one
    /// host can never both hold it, even when they start at the same instant or
    /// someone deletes `.lock`. `.lock` says who holds it, for people and for other
    /// hosts: our pid, host and, under Slurm, `job=<SLURM_JOB_ID>`. Its text decides
    /// only across hosts, where the OS lock does not reach: a live process on
    /// another host or a Slurm job that `squeue` still lists keeps the folder; this
    /// very job before a requeue does not.
    pub fn lock(&self) -> Result<RunLock> {
        self.create()?;
        let path = self.file(files::LOCK);
        let job = std::env::var("SLURM_JOB_ID").ok().filter(|j| !j.is_empty());
        let me = match &job {
            Some(job) => format!("{} {} job={job}\n", std::process::id(), hostname()),
            None => format!("{} {}\n", std::process::id(), hostname()),
        };
        let folder = std::fs::File::open(self.path()).map_err(|e| Error::io(self.path(), e))?;
        match folder.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let (pid, host) = owner_being_written(&path);
                return Err(Error::Locked { dir: self.path().to_path_buf(), pid, host });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(self.path(), e)),
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.trim().is_empty() {
            let other_host = text.split_whitespace().nth(1).is_some_and(|h| h != hostname());
            if let Some((pid, host)) = lock_owner_alive(&text, job.as_deref()).filter(|_| other_host) {
                return Err(Error::Locked { dir: self.path().to_path_buf(), pid, host });
            }
            tracing::warn!("{}: taking over the lock of {:?}, which is gone", path.display(), text.trim());
        }
        write_bytes(&path, me.as_bytes())?;
        Ok(RunLock { path, _folder: folder })
    }
}

/// Releases the run folder's `.lock` when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// The locked folder: closing it releases the OS lock.
    _folder: std::fs::File,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Who holds the OS lock of a folder, from its `.lock`: the holder writes it right
/// after locking, so an empty or missing file is read again for up to a second.
fn owner_being_written(path: &Path) -> (u32, String) {
    for _ in 0..50 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut words = text.split_whitespace();
        if let Some(pid) = words.next().and_then(|p| p.parse().ok()) {
            return (pid, words.next().unwrap_or("").to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (0, hostname())
}

/// The owner (pid, host) of a `.lock` holding `text` while it still runs; `None`
/// when it is gone. `job` is this process's Slurm job id.
fn lock_owner_alive(text: &str, job: Option<&str>) -> Option<(u32, String)> {
    let mut words = text.split_whitespace();
    let pid: u32 = words.next().and_then(|p| p.parse().ok())?;
    let host = words.next().unwrap_or("").to_string();
    let owner_job = words.next().and_then(|w| w.strip_prefix("job="));
    let alive = match owner_job {
        _ if host == hostname() => process_alive(pid),
        // This very job, requeued (maybe onto another node): its earlier run is over.
        Some(owner) if job == Some(owner) => false,
        Some(owner) => slurm_job_alive(owner),
        // Another host's process cannot be checked from here.
        None => !host.is_empty(),
    };
    alive.then_some((pid, host))
}

/// Whether Slurm still lists job `id` as pending or running (`squeue`); true when
/// squeue cannot be asked (refusing is safer than sharing the folder).
fn slurm_job_alive(id: &str) -> bool {
    match std::process::Command::new("squeue").args(["-h", "-j", id, "-o", "%T"]).output() {
        Ok(out) if out.status.success() => {
            let state = String::from_utf8_lossy(&out.stdout);
            ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED"]
                .iter()
                .any(|s| state.split_whitespace().any(|w| w == *s))
        }
        // squeue fails for a job id it no longer knows.
        Ok(_) => false,
        Err(_) => true,
    }
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        // A zombie (killed, not yet reaped) holds nothing any more.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    } else {
        // Without /proc, assume it runs: refusing is safer than sharing the folder.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_lock_is_refused_and_a_dead_one_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        let held = run.lock().unwrap();
        let err = run.lock().unwrap_err().to_string();
        assert!(err.contains(&format!("process {}", std::process::id())), "{err}");
        drop(held);
        assert!(!run.has(files::LOCK), "the guard removes the lock");
        // pid 2^22 + 1 is above Linux's pid_max: no such process.
        std::fs::write(run.file(files::LOCK), format!("4194305 {}\n", hostname())).unwrap();
        let _taken = run.lock().unwrap();
        let text = std::fs::read_to_string(run.file(files::LOCK)).unwrap();
        assert!(text.starts_with(&std::process::id().to_string()), "{text}");
        drop(_taken);
        // Another host's lock with no job id cannot be checked: refused.
        std::fs::write(run.file(files::LOCK), "17 another-host\n").unwrap();
        let err = run.lock().unwrap_err().to_string();
        assert!(err.contains("process 17 on another-host"), "{err}");
        // A lock of this very Slurm job (an earlier run of it before a requeue, on
        // another node) is over; another job's is asked of squeue.
        assert_eq!(lock_owner_alive("17 node-a job=42\n", Some("42")), None);
        assert_eq!(lock_owner_alive("17 node-a\n", Some("42")), Some((17, "node-a".into())));
        assert_eq!(lock_owner_alive("4194305 node-a job=42\n", Some("43")).is_some(), slurm_job_alive("42"));
        assert_eq!(lock_owner_alive(&format!("4194305 {} job=42\n", hostname()), Some("42")), None);
        assert_eq!(lock_owner_alive("garbage", None), None);
    }

    /// The OS lock: a deleted `.lock` does not free a held folder, and of many
    /// takers starting at once exactly one gets it (two train-alls started together
    /// both trained one run when the lock was only the file: one read the other's
    /// `.lock` before its text was written and took it over as dead).
    #[test]
    fn a_held_folder_stays_held_without_its_lock_file_and_has_one_taker() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        let held = run.lock().unwrap();
        std::fs::remove_file(run.file(files::LOCK)).unwrap();
        let err = run.lock().unwrap_err().to_string();
        assert!(err.contains("is in use by process 0"), "the owner's .lock is gone: {err}");
        drop(held);

        for _ in 0..20 {
            let barrier = std::sync::Barrier::new(8);
            let got = std::thread::scope(|scope| {
                let takers: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            let lock = run.lock();
                            barrier.wait();
                            lock.is_ok()
                        })
                    })
                    .collect();
                takers.into_iter().map(|t| t.join().unwrap()).filter(|&ok| ok).count()
            });
            assert_eq!(got, 1, "exactly one of 8 simultaneous takers holds the folder");
        }
    }
}
