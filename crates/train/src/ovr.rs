//! Seed 000's ensemble: one binary "class c vs the rest" network per class, each a
//! complete run of its own in `ovr/<class>/`; a test image goes to the class whose
//! network is most confident, the combined probabilities renormalized to sum to one.

use cnnlab_augment::Op;
use cnnlab_data::{Dataset, Imbalance, Splits};
use cnnlab_models::{ModelConfig, ModelKind};

use crate::config::TrainConfig;
use crate::error::Result;
use crate::evaluate::{evaluate_tta, from_probabilities, write_test_results};
use crate::fit::{fit, RunOptions};
use cnnlab_run::{FinalMetrics, RunDir};

pub(crate) fn one_vs_rest(
    splits: &Splits,
    imbalance: &Imbalance,
    augment: &[Op],
    model: &ModelConfig,
    cfg: &TrainConfig,
    opts: &RunOptions,
) -> Result<FinalMetrics> {
    let run = RunDir::new(&opts.out_dir);
    let classes = &splits.test.classes;
    let (k, n) = (classes.len(), splits.test.len());
    let mut scores = vec![0f32; n * k];
    let (mut params, mut seconds, mut images, mut last) = (0, 0.0, 0, None);
    for (c, name) in classes.iter().enumerate() {
        tracing::info!("one-vs-rest: network {}/{k} ({name} vs the rest)", c + 1);
        let sub = Splits {
            train: binary(&splits.train, c),
            val: splits.val.as_ref().map(|v| binary(v, c)),
            test: binary(&splits.test, c),
            files: None,
            report: Default::default(),
        };
        let model = ModelConfig { kind: ModelKind::Standard, ..model.clone() };
        let member = RunOptions { out_dir: run.member(name).path().to_path_buf(), ..opts.clone() };
        let fitted = fit(&sub, imbalance, augment, &model, cfg, &member)?;
        let eval = evaluate_tta(&fitted.learner.net, &sub.test, &fitted.norm, fitted.eval_batch, cfg.tta)?;
        for i in 0..n {
            scores[i * k + c] = eval.probabilities[i * 2 + 1];
        }
        params += fitted.learner.net.trainable_params();
        let f = fitted.facts(cfg, 0);
        (seconds, images) = (seconds + f.train_seconds, images + f.images_seen);
        last = Some(fitted);
    }
    for row in scores.chunks_mut(k) {
        let sum: f32 = row.iter().sum::<f32>().max(f32::MIN_POSITIVE);
        row.iter_mut().for_each(|p| *p /= sum);
    }
    let eval = from_probabilities(&splits.test, scores)?;
    // The ensemble trained all its members: their times add up.
    let mut facts = last.expect("the test split has classes").facts(cfg, params);
    (facts.train_seconds, facts.images_seen) = (seconds, images);
    write_test_results(&run, splits, &eval, facts)
}

/// `d` relabelled as class `c` (1) against every other class (0).
pub(crate) fn binary(d: &Dataset, c: usize) -> Dataset {
    let labels = d.labels.iter().map(|&l| cnnlab_data::Label::from(l as usize == c)).collect();
    d.relabelled(labels, vec!["rest".into(), d.classes[c].clone()]).expect("0/1 labels of two classes")
}
