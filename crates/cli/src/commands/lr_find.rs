//! `cnnlab lr-find`: fastai's learning-rate finder on an experiment file.

use std::path::Path;

use anyhow::{Context, Result};
use cnnlab_cli::plots;
use cnnlab_train::{lr_find, LrFindConfig, LrFinding};

use crate::checks;
use cnnlab_cli::experiment::default_run_dir;

pub(crate) struct LrFindArgs<'a> {
    pub config: &'a Path,
    pub start: f64,
    pub end: f64,
    pub steps: usize,
    pub out: Option<&'a Path>,
    pub data_dir: &'a Path,
    pub quiet: bool,
}

pub(crate) fn lr_find_command(a: LrFindArgs<'_>) -> crate::exit::Outcome {
    if !(a.start > 0.0 && a.end > a.start && a.end.is_finite()) {
        return Err(anyhow::anyhow!("--start {} and --end {}: needs 0 < start < end", a.start, a.end).into());
    }
    let exp = checks::load(a.config)?;
    let out = a.out.map_or_else(
        || {
            let run = default_run_dir(a.config);
            let name = run.file_name().map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
            run.with_file_name(format!("{name}-lr-find"))
        },
        Path::to_path_buf,
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut model = exp.model.clone();
    if let Some(p) = &exp.model.pretrained {
        let dir = a.config.parent().unwrap_or(Path::new("."));
        model.pretrained = Some(crate::weights::resolve(p, dir, a.data_dir, &out)?.display().to_string());
    }
    let splits = super::data::load_data(&exp, a.data_dir, a.quiet)?;
    let find = LrFindConfig { start: a.start, end: a.end, steps: a.steps, stop_div: true };
    let started = std::time::Instant::now();
    let found = lr_find(&splits, &exp.data.imbalance, &exp.augment.ops, &model, &exp.train, &find)?;
    let seconds = started.elapsed().as_secs_f64();
    let (csv, png) = (out.join("lr_find.csv"), out.join("lr_find.png"));
    write_csv(&csv, &found)?;
    let at = |lr: f64| {
        let k = found.lrs.iter().position(|&l| l >= lr).unwrap_or(found.lrs.len().saturating_sub(1));
        found.losses.get(k).copied().unwrap_or(f64::NAN)
    };
    let suggestions: Vec<(&str, f64)> =
        [("valley", found.valley), ("steep", found.steep)].into_iter().filter_map(|(n, v)| Some((n, v?))).collect();
    let marks: Vec<(&str, f64, f64)> = suggestions.iter().map(|&(n, lr)| (n, lr, at(lr))).collect();
    let name = if exp.model.name.is_empty() { "model" } else { &exp.model.name };
    let title = format!("{}: lr finder ({name}, {:?})", a.config.display(), exp.train.optimizer);
    plots::lr_find(&png, &title, &found.lrs, &found.losses, &marks)?;
    println!(
        "{} steps from {:.1e} to {:.1e} in {seconds:.1} s{}; the config trains at lr {:.1e}",
        found.lrs.len(),
        a.start,
        found.lrs.last().copied().unwrap_or(a.start),
        if found.diverged { " (stopped: the loss diverged)" } else { "" },
        exp.train.lr
    );
    if exp.train.accumulate > 1 {
        println!(
            "a step is one optimizer step of {} x {} images (train.accumulate), as in training",
            exp.train.accumulate, exp.train.batch_size
        );
    }
    if let Some(member) = &found.member {
        println!(
            "one-vs-rest: the range test of the `{member}` vs the rest network (the largest class); every member \
             trains at train.lr"
        );
    }
    match (found.valley, found.steep, found.minimum) {
        (Some(valley), Some(steep), Some(minimum)) => {
            println!("suggested: valley {valley:.2e}  steep {steep:.2e}  minimum/10 {minimum:.2e}")
        }
        _ => println!(
            "no suggestion: {} points recorded, fewer than the {} fastai's rules need (raise --steps or lower --start)",
            found.lrs.len(),
            a.steps / 10 + 7
        ),
    }
    println!("{} and {}", png.display(), csv.display());
    Ok(())
}

fn write_csv(path: &Path, f: &LrFinding) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["step", "lr", "loss", "smoothed_loss"])?;
    for (i, ((lr, raw), smooth)) in f.lrs.iter().zip(&f.raw).zip(&f.losses).enumerate() {
        w.write_record([(i + 1).to_string(), format!("{lr:e}"), raw.to_string(), smooth.to_string()])?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("writing {}: {}", path.display(), e.error()))?;
    Ok(cnnlab_run::write_bytes(path, &bytes)?)
}
