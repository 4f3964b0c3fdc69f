//! `cargo xtask slurm-check`: the README's Slurm array script, run on a real
//! single-node Slurm cluster on this machine. Debian's `slurm-wlm` and `munge` are
//! installed when missing; munged, slurmctld and slurmd start on 127.0.0.1 from a
//! generated `slurm.conf` in a temporary folder and are stopped at the end. It
//! submits `sbatch --array=0-3` running `train-all --shard auto --requeue` over
//! `configs/shapes/`, sends one running task `scancel --batch --signal=USR1` in its
//! second epoch, and checks that the task saved, was requeued, resumed to the same
//! `history.csv` as an uninterrupted run, and that `cnnlab report` lists every run
//! once. It prints the timeline (submit, start, signal, requeue, finish per task).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};

use cnnlab_run::files;

use crate::run_cmd;

const TASKS: usize = 4;
/// The task that gets the signal, and the run it trains (`--shard 2/4` of the four
/// shapes configs in name order).
const SIGNALED_TASK: usize = 1;
const SIGNALED_RUN: &str = "shapes/imbalanced-none";
const EPOCHS: &str = "3";

/// Seconds since the epoch, as the job script's `date +%s.%N` writes them.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The daemons, killed when dropped (also when a check fails).
struct Daemons {
    children: Vec<(&'static str, Child)>,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (name, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("xtask: stopped {name}");
        }
    }
}

pub(crate) fn run(root: &Path, f: &crate::flags::SlurmCheck) -> Result<()> {
    let dev = f.dev;
    install()?;
    crate::setup::run(root)?;
    let cnnlab = crate::build_cnnlab(root, dev)?;

    let dir = std::env::temp_dir().join(format!("cnnlab-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["state", "spool", "runs"] {
        std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.display()))?;
    }
    // The jobs run a copy of this xtask: a build (CI's test build includes xtask) may
    // have replaced target/debug/xtask while this one runs, and its path then reads
    // "xtask (deleted)". /proc/self/exe still opens the running file.
    let xtask = dir.join("xtask");
    std::fs::copy("/proc/self/exe", &xtask)
        .with_context(|| format!("copying the running xtask to {}", xtask.display()))?;
    let conf = dir.join("slurm.conf");
    std::fs::write(&conf, slurm_conf(&dir)?).with_context(|| format!("writing {}", conf.display()))?;
    let daemons = start_daemons(&dir, &conf)?;

    let runs = dir.join("runs");
    let script = dir.join("array.sh");
    std::fs::write(&script, array_script(root, &xtask, &runs, &dir, dev))?;
    let slurm = |program: &str| {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &conf);
        cmd
    };
    let mut timeline: Vec<(f64, String)> = Vec::new();
    let submitted = now();
    let out = slurm("sbatch").arg("--parsable").arg(&script).output().context("running sbatch")?;
    ensure!(out.status.success(), "sbatch failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    timeline.push((submitted, format!("sbatch --array=0-{} submitted: job {job}", TASKS - 1)));

    // Signal the chosen task in its second epoch.
    let signaled = runs.join(SIGNALED_RUN);
    let history = signaled.join(files::HISTORY);
    wait_for(Duration::from_secs(300), "the signaled task's first epoch", || {
        Ok(std::fs::read_to_string(&history).map_or(0, |t| t.lines().count()) >= 2)
    })?;
    std::thread::sleep(Duration::from_millis(700));
    let task = format!("{job}_{SIGNALED_TASK}");
    // Slurm 22.05 delivers the signal to an array task's batch shell, then answers
    // "Job can not be altered now, try again later" and scancel retries for a minute
    // (slurmctld.log: job_str_signal); so scancel runs beside, and the delivery is
    // read from the task's own output.
    let mut scancel = slurm("scancel").args(["--batch", "--signal=USR1", &task]).stderr(Stdio::null()).spawn()?;
    timeline.push((now(), format!("scancel --batch --signal=USR1 {task} (in epoch 2)")));
    let task_out = dir.join(format!("slurm-{job}_{SIGNALED_TASK}.out"));
    let delivered = wait_for(Duration::from_secs(60), "the task to get SIGUSR1", || {
        Ok(std::fs::read_to_string(&task_out).is_ok_and(|t| t.contains("got SIGUSR1")))
    });
    let _ = scancel.kill();
    let _ = scancel.wait();
    delivered?;

    // Slurm holds a requeued job for about two minutes (its BeginTime); start it now.
    wait_for(Duration::from_secs(120), "the requeue", || Ok(squeue(&conf, &task)?.contains("PENDING")))?;
    timeline.push((now(), format!("{task} requeued (PENDING); scontrol update StartTime=now")));
    run_cmd(root, slurm("scontrol").args(["update", &format!("JobId={task}"), "StartTime=now"]))?;
    wait_for(Duration::from_secs(600), "the array job to finish", || Ok(squeue(&conf, &job)?.trim().is_empty()))?;
    timeline.push((now(), format!("job {job}: every task finished")));

    print_timeline(&dir, &job, timeline)?;
    resumed_equals_uninterrupted(root, &cnnlab, &dir, &signaled)?;
    report_lists_each_run_once(&cnnlab, &runs)?;
    tuning_array(root, &cnnlab, &dir.join("tune"), &conf)?;
    drop(daemons);
    overlapping_shards(root, &xtask, &dir.join("overlap"), dev)?;
    eprintln!("xtask: slurm-check passed ({:.0} s); logs and runs in {}", now() - submitted, dir.display());
    Ok(())
}

/// Each task's own lines (start, with Slurm's restart count, and finish) merged with
/// `timeline` and printed; the signaled task must say it was requeued and resumed.
fn print_timeline(dir: &Path, job: &str, mut timeline: Vec<(f64, String)>) -> Result<()> {
    let submitted = timeline.first().map_or(0.0, |t| t.0);
    for k in 0..TASKS {
        let path = dir.join(format!("slurm-{job}_{k}.out"));
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if let (Some("timeline"), Some(t)) = (words.next(), words.next()) {
                timeline.push((t.parse().unwrap_or(0.0), words.collect::<Vec<_>>().join(" ")));
            }
        }
        if k == SIGNALED_TASK {
            ensure!(text.contains("requeued"), "{}: the signaled task does not say it was requeued", path.display());
            ensure!(text.contains("a resumable checkpoint was saved"), "{}: no checkpoint", path.display());
            ensure!(text.contains("resuming shapes/imbalanced-none"), "{}: the restart did not resume", path.display());
        }
    }
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    eprintln!("\ntimeline (seconds after submission):");
    for (t, what) in &timeline {
        eprintln!("  {:7.1}  {what}", t - submitted);
    }

    Ok(())
}

/// The interrupted run's history equals an uninterrupted one's.
fn resumed_equals_uninterrupted(root: &Path, cnnlab: &Path, dir: &Path, signaled: &Path) -> Result<()> {
    let reference = dir.join("reference");
    let config = root.join("configs").join(format!("{SIGNALED_RUN}.toml"));
    run_cmd(
        root,
        Command::new(cnnlab)
            .args(["-q", "train"])
            .arg(&config)
            .args(["--epochs", EPOCHS, "--out"])
            .arg(&reference)
            .env("CNNLAB_THREADS", "1"),
    )?;
    let (got, want) = (history_values(signaled)?, history_values(&reference)?);
    ensure!(
        got.len() == 3 && got == want,
        "resumed history differs:\n{}\nvs uninterrupted:\n{}",
        got.join("\n"),
        want.join("\n")
    );
    eprintln!("xtask: {SIGNALED_RUN}: the interrupted, requeued and resumed history equals an uninterrupted run's");

    Ok(())
}

/// One report row per run.
fn report_lists_each_run_once(cnnlab: &Path, runs: &Path) -> Result<()> {
    let out = Command::new(cnnlab).arg("report").arg(runs).output()?;
    ensure!(out.status.success(), "cnnlab report failed: {}", String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read_to_string(runs.join("REPORT.md"))?;
    let first_table: Vec<&str> =
        report.lines().skip_while(|l| !l.starts_with("| run |")).skip(2).take_while(|l| l.starts_with('|')).collect();
    for name in ["imbalanced-class-weights", "imbalanced-none", "imbalanced-oversample", "seed3-final"] {
        let rows = first_table.iter().filter(|l| l.starts_with(&format!("| shapes/{name} |"))).count();
        ensure!(rows == 1, "REPORT.md lists shapes/{name} {rows} times");
    }
    ensure!(first_table.len() == TASKS, "REPORT.md has {} runs, expected {TASKS}", first_table.len());
    Ok(())
}

/// A two-task array of `cnnlab tune --shard auto` on one study (6 shapes trials of 3
/// epochs, successive halving): every trial starts once, none trains an epoch twice,
/// the study ends complete.
fn tuning_array(root: &Path, cnnlab: &Path, dir: &Path, conf: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let base = std::fs::read_to_string(root.join("configs/shapes/seed3-final.toml"))?
        .replace("val_fraction = 0.1", "val_fraction = 0.1\nmax_train = 300\nmax_test = 200")
        .replace("epochs = 15", "epochs = 3");
    std::fs::write(dir.join("shapes.toml"), base)?;
    let file = dir.join("tune.toml");
    std::fs::write(
        &file,
        "extends = \"shapes.toml\"\n[tune]\ntrials = 6\npruner = { kind = \"asha\", min_epochs = 1, reduction = 2 }\n\
         [tune.space]\n\"train.lr\" = { log_uniform = [1e-4, 3e-2] }\n\"train.batch_size\" = { choice = [32, 64] }\n",
    )?;
    let study = dir.join("study");
    let script = dir.join("tune-array.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\n#SBATCH --job-name=cnnlab-tune\n#SBATCH --array=0-1\n#SBATCH --cpus-per-task=1\n\
             #SBATCH --output={out}/slurm-%A_%a.out\ncd {root}\n\
             {cnnlab} tune {file} --out {study} --shard auto\n",
            out = dir.display(),
            root = root.display(),
            cnnlab = cnnlab.display(),
            file = file.display(),
            study = study.display(),
        ),
    )?;
    let started = now();
    let out = Command::new("sbatch").arg("--parsable").arg(&script).env("SLURM_CONF", conf).output()?;
    ensure!(out.status.success(), "sbatch of the tuning array failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    wait_for(Duration::from_secs(600), "the tuning array to finish", || Ok(squeue(conf, &job)?.trim().is_empty()))?;
    let events = std::fs::read_to_string(study.join("study.jsonl")).context("the tuning array wrote no study")?;
    let count = |kind: &str| events.lines().filter(|l| l.contains(&format!("\"event\":\"{kind}\""))).count();
    ensure!(
        count("start") == 6 && count("end") == 6,
        "the study has {} starts and {} ends, expected 6",
        count("start"),
        count("end")
    );
    for k in 0..6 {
        let log = std::fs::read_to_string(study.join(format!("trial-{k}/train.log"))).unwrap_or_default();
        for epoch in 1..=3 {
            let n = log.lines().filter(|l| l.contains(&format!("epoch {epoch}/3:"))).count();
            ensure!(n <= 1, "trial {k}'s epoch {epoch} was trained {n} times");
        }
    }
    let mut per_task = Vec::new();
    for task in 0..2 {
        let text = std::fs::read_to_string(dir.join(format!("slurm-{job}_{task}.out"))).unwrap_or_default();
        let trials = text.lines().filter(|l| l.contains("INFO trial ") && l.contains(": train.")).count();
        ensure!(!text.contains("error:"), "tuning task {task} failed:\n{text}");
        per_task.push(trials);
    }
    eprintln!(
        "xtask: a two-task tuning array finished the 6-trial study in {:.0} s (trials started per task: {per_task:?}); \
         every trial once, no epoch trained twice",
        now() - started
    );
    Ok(())
}

/// Two `train-all --shard auto` processes on one runs folder whose shards overlap
/// completely (both are task 0 of a 1-task array): every run is trained exactly once
/// (the other process skips a run in use, or finds it finished), none fails.
fn overlapping_shards(root: &Path, xtask: &Path, runs: &Path, dev: bool) -> Result<()> {
    let start = |k: usize| -> Result<Child> {
        let mut cmd = Command::new(xtask);
        cmd.args(["train-all", "--shard", "auto", "--only", "shapes/*", "--epochs", "1", "--runs"])
            .arg(runs)
            .env("SLURM_ARRAY_TASK_ID", "0")
            .env("SLURM_ARRAY_TASK_COUNT", "1")
            .env("CNNLAB_THREADS", "1")
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(runs.with_extension(format!("{k}.log")))?);
        if dev {
            cmd.arg("--dev");
        }
        Ok(cmd.spawn()?)
    };
    std::fs::create_dir_all(runs)?;
    let children = [start(1)?, start(2)?];
    for (k, mut child) in children.into_iter().enumerate() {
        let status = child.wait()?;
        ensure!(status.success(), "overlapping train-all {} failed ({status}); see {}", k + 1, runs.display());
    }
    for name in ["imbalanced-class-weights", "imbalanced-none", "imbalanced-oversample", "seed3-final"] {
        let log = runs.join("shapes").join(name).join(files::LOG);
        let text = std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
        let trainings = text.lines().filter(|l| l.contains("INFO training ")).count();
        ensure!(trainings == 1, "shapes/{name} was trained {trainings} times by two overlapping train-alls");
    }
    eprintln!("xtask: two train-all --shard auto with the same shard on one runs folder trained each run once");
    Ok(())
}

/// Debian's Slurm and munge, installed when `slurmctld` is missing.
pub(crate) fn install() -> Result<()> {
    if Command::new("slurmctld").arg("-V").output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    crate::setup::apt_install(&["slurm-wlm", "munge"])
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "localhost".into(), |h| h.trim().into())
}

fn slurm_conf(dir: &Path) -> Result<String> {
    let d = dir.display();
    let host = hostname();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (ctld, slurmd) = (free_port()?, free_port()?);
    Ok(format!(
        "ClusterName=cnnlab\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser=root\nSlurmdUser=root\n\
         SlurmctldPort={ctld}\nSlurmdPort={slurmd}\nAuthType=auth/munge\nAuthInfo=socket={d}/munge.sock\n\
         StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\nSlurmctldPidFile={d}/slurmctld.pid\n\
         SlurmdPidFile={d}/slurmd.pid\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nMpiDefault=none\n\
         ReturnToService=2\nSchedulerType=sched/backfill\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
         JobRequeue=1\nSlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
         NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
         PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n"
    ))
}

fn start_daemons(dir: &Path, conf: &Path) -> Result<Daemons> {
    let mut daemons = Daemons { children: Vec::new() };
    let log = |name: &str| -> Result<Stdio> { Ok(std::fs::File::create(dir.join(format!("{name}.out")))?.into()) };
    let munged = Command::new("munged")
        .args(["--foreground", "--force"])
        .arg(format!("--socket={}", dir.join("munge.sock").display()))
        .arg(format!("--pid-file={}", dir.join("munged.pid").display()))
        .arg(format!("--log-file={}", dir.join("munged.log").display()))
        .arg(format!("--seed-file={}", dir.join("munged.seed").display()))
        .stderr(log("munged")?)
        .spawn()
        .context("starting munged")?;
    daemons.children.push(("munged", munged));
    wait_for(Duration::from_secs(20), "munged's socket", || Ok(dir.join("munge.sock").exists()))?;
    for name in ["slurmctld", "slurmd"] {
        let child = Command::new(name)
            .arg("-D")
            .env("SLURM_CONF", conf)
            .stdout(log(name)?)
            .stderr(log(&format!("{name}.err"))?)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        daemons.children.push((if name == "slurmd" { "slurmd" } else { "slurmctld" }, child));
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_for(Duration::from_secs(60), "the node to be idle (sinfo)", || {
        let out = Command::new("sinfo").args(["-h", "-o", "%T"]).env("SLURM_CONF", conf).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).contains("idle"))
    })
    .with_context(|| format!("see {}/slurmctld.log and slurmd.log", dir.display()))?;
    eprintln!("xtask: Slurm is up (munged, slurmctld, slurmd; {})", conf.display());
    Ok(daemons)
}

/// The README's array script with this checkout's paths; each start and the end
/// write a `timeline` line.
fn array_script(root: &Path, xtask: &Path, runs: &Path, dir: &Path, dev: bool) -> String {
    format!(
        "#!/bin/bash\n\
         #SBATCH --job-name=cnnlab\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --cpus-per-task=1\n\
         #SBATCH --signal=B:USR1@120\n\
         #SBATCH --requeue\n\
         #SBATCH --open-mode=append\n\
         #SBATCH --output={out}/slurm-%A_%a.out\n\
         echo \"timeline $(date +%s.%N) task $SLURM_ARRAY_TASK_ID started (restart ${{SLURM_RESTART_COUNT:-0}})\"\n\
         trap 'echo \"timeline $(date +%s.%N) task $SLURM_ARRAY_TASK_ID: train-all ended\"' EXIT\n\
         cd {root}\n\
         {xtask} train-all --shard auto --requeue --only 'shapes/*' --epochs {EPOCHS} --runs {runs}{dev} &\n\
         pid=$!\n\
         trap 'echo \"timeline $(date +%s.%N) task $SLURM_ARRAY_TASK_ID got SIGUSR1\"; kill -USR1 $pid' USR1\n\
         while ! wait $pid; do kill -0 $pid 2>/dev/null || break; done\n",
        last = TASKS - 1,
        out = dir.display(),
        root = root.display(),
        xtask = xtask.display(),
        runs = runs.display(),
        dev = if dev { " --dev" } else { "" },
    )
}

/// `squeue`'s states of `job` (an array job or one task), empty when it is gone.
fn squeue(conf: &Path, job: &str) -> Result<String> {
    let out = Command::new("squeue").args(["-h", "-j", job, "-o", "%T"]).env("SLURM_CONF", conf).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !done()? {
        ensure!(Instant::now() < deadline, "timed out after {} s waiting for {what}", limit.as_secs());
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// `history.csv` of the run in `dir` without its timing columns, to 6 decimals, a
/// line per epoch (cnnlab-run's reader: what an exact resume must reproduce).
fn history_values(dir: &Path) -> Result<Vec<String>> {
    let rows = cnnlab_run::RunDir::new(dir).history_without_timing(Some(6))?;
    Ok(rows.iter().map(|row| row.map(|v| format!("{v:.6}")).join(",")).collect())
}
