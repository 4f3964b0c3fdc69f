//! How many CPU threads a cnnlab process may use. Two trainings started at once on a
//! 2-core machine, each with libtorch's intra-op pool, rayon's pool and a producer
//! thread sized to the whole machine, ran 5x slower in total than one after the
//! other: the pools oversubscribe the cores and spin. So every pool is sized from one
//! budget, taken from the first of: `--threads N` (or `CNNLAB_THREADS`), Slurm's
//! `SLURM_CPUS_PER_TASK`, `OMP_NUM_THREADS`, and the CPUs this process may run on
//! (its affinity mask and cgroup CPU quota, as `std::thread::available_parallelism`
//! reads them: what Kubernetes' CPU limit and Slurm's cgroups set). Without
//! `--threads`, `CNNLAB_THREAD_SHARE=N` (set by `cargo xtask train-all --jobs N`
//! for each of its N trainings) divides that budget by N.

/// The budget and where it came from (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadBudget {
    pub threads: usize,
    pub source: &'static str,
}

/// The budget from `flag` and `env` (a lookup, `std::env::var` in the binary).
pub fn thread_budget(flag: Option<usize>, env: impl Fn(&str) -> Option<String>) -> ThreadBudget {
    if let Some(threads) = flag.filter(|&n| n > 0) {
        return ThreadBudget { threads, source: "--threads" };
    }
    // OMP_NUM_THREADS may be a list ("4,2" for nested levels): the first counts.
    let number = |var: &str| {
        env(var).and_then(|v| v.split(',').next().and_then(|n| n.trim().parse::<usize>().ok())).filter(|&n| n > 0)
    };
    let whole = ["SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"]
        .into_iter()
        .find_map(|var| number(var).map(|threads| ThreadBudget { threads, source: var }))
        .unwrap_or_else(|| ThreadBudget {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            source: "the CPUs this process may use",
        });
    match number("CNNLAB_THREAD_SHARE") {
        Some(share) => ThreadBudget { threads: (whole.threads / share).max(1), ..whole },
        None => whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_source_that_says_wins() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string())
        };
        let both = env(&[("SLURM_CPUS_PER_TASK", "3"), ("OMP_NUM_THREADS", "5")]);
        assert_eq!(thread_budget(Some(2), both), ThreadBudget { threads: 2, source: "--threads" });
        assert_eq!(thread_budget(None, both), ThreadBudget { threads: 3, source: "SLURM_CPUS_PER_TASK" });
        let omp = env(&[("OMP_NUM_THREADS", "4,2"), ("SLURM_CPUS_PER_TASK", "0")]);
        assert_eq!(thread_budget(None, omp), ThreadBudget { threads: 4, source: "OMP_NUM_THREADS" });
        let none = thread_budget(None, env(&[("OMP_NUM_THREADS", "lots")]));
        assert_eq!(none.threads, std::thread::available_parallelism().unwrap().get());
        // train-all --jobs 2 on 8 CPUs: 4 each; never below 1; --threads is exact.
        let shared = env(&[("SLURM_CPUS_PER_TASK", "8"), ("CNNLAB_THREAD_SHARE", "2")]);
        assert_eq!(thread_budget(None, shared).threads, 4);
        assert_eq!(thread_budget(Some(3), shared).threads, 3);
        let tiny = env(&[("OMP_NUM_THREADS", "1"), ("CNNLAB_THREAD_SHARE", "4")]);
        assert_eq!(thread_budget(None, tiny).threads, 1);
    }
}
