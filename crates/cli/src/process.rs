//! The process around a command: thread budget, malloc settings, logging to the
//! terminal and to the run's own `train.log`.

use anyhow::{Context, Result};

/// Sizes libtorch's intra-op pool and rayon's pool (JPEG decoding, augmentation) to
/// one budget (see `cnnlab_cli::threads`).
pub(crate) fn use_thread_budget(flag: Option<usize>) {
    let budget = cnnlab_cli::threads::thread_budget(flag, |k| std::env::var(k).ok());
    cnnlab_models::set_torch_threads(budget.threads);
    if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(budget.threads).build_global() {
        tracing::debug!("rayon's pool was sized already: {e}");
    }
    tracing::debug!("{} CPU threads (from {})", budget.threads, budget.source);
}

/// Makes glibc's malloc keep freed memory for reuse instead of handing every large
/// block back to the kernel. libtorch's CPU tensors come from `posix_memalign`; by
/// default each one over 32 MB (an activation of a batch of 512 at 56 x 32 x 32, or of
/// 32 images at 224 x 224) is a fresh `mmap`, so every training step page-faults and
/// zeroes gigabytes anew (measured: 67,000 faults/s, 12% of the CPU in the kernel while
/// training cpu90). With `mmap` off and trimming raised, those blocks are recycled from
/// the heap; the process keeps its peak footprint, as PyTorch's caching allocators do.
/// Setting `MALLOC_MMAP_MAX_` or `MALLOC_TRIM_THRESHOLD_` in the environment keeps
/// glibc's own choice.
pub(crate) fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_MAX_").is_none() && std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets allocator parameters; called before any training
        // thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}

pub(crate) fn init_logging(verbose: bool, quiet: bool) {
    let default = if quiet {
        "warn"
    } else if verbose {
        "debug"
    } else {
        "info"
    };
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let terminal = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // Every run also keeps its own log (with timestamps), whatever -q says.
    let level = if verbose { tracing::Level::DEBUG } else { tracing::Level::INFO };
    let run_log = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(false)
        .with_writer(|| RunLog)
        .with_filter(tracing_subscriber::filter::LevelFilter::from_level(level));
    tracing_subscriber::registry().with(terminal).with(run_log).init();
}

/// `<run>/train.log`, once `cnnlab train` knows the run folder.
static RUN_LOG: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

struct RunLog;

impl std::io::Write for RunLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(file) = RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            file.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Starts appending log lines to `path` (a resumed run continues its log).
pub(crate) fn open_run_log(path: &std::path::Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    *RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(())
}

/// Stops writing to the run's log (before its folder is removed).
pub(crate) fn close_run_log() {
    *RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()) = None;
}
