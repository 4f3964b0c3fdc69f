//! Class-imbalance strategies (seeds 000 and 001), as per-epoch sample plans.
//!
//! A strategy turns the training labels into the list of samples one epoch visits:
//! an index into the dataset plus a [`Variant`] saying how that copy is altered.
//! Static strategies (`oversample`, `min_flip`, `augment_to`) give the same list every
//! epoch (the training loop shuffles it); `cap_rotate` and `weighted_sampler` draw
//! anew each epoch. `class_weights` leaves the samples alone and weights the loss.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How one planned copy of an image is altered before the regular augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Variant {
    Original,
    Hflip,
    Vflip,
    /// A randomly augmented copy (the training loop's "extra" pipeline).
    Augmented,
}

/// How class weights are computed for `class_weights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightScheme {
    /// `n / (k * count)`, scikit-learn's `class_weight="balanced"`.
    #[default]
    Inverse,
    /// Cui et al. 2019: `(1 - beta) / (1 - beta^count)`, normalised to mean 1.
    EffectiveNumber,
}

fn default_beta() -> f64 {
    0.999
}

/// The `[data.imbalance]` section: one strategy per experiment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum Imbalance {
    #[default]
    None,
    /// Duplicate images of every class with fewer than `per_class` up to that count.
    Oversample { per_class: usize },
    /// At most `per_class` images per class per epoch, a new random draw each epoch
    /// so the surplus is seen in later epochs; classes below it are topped up with
    /// augmented copies.
    CapRotate { per_class: usize },
    /// At least `per_class` per class by copying, then the whole set plus its
    /// horizontal and vertical flips (3x the images).
    MinFlip { per_class: usize },
    /// Classes below `threshold` are topped up to it with augmented copies.
    AugmentTo { threshold: usize },
    /// Weight the loss per class; the samples are unchanged.
    ClassWeights {
        #[serde(default)]
        scheme: WeightScheme,
        #[serde(default = "default_beta")]
        beta: f64,
    },
    /// Draw `len(train)` samples with replacement, each with probability inversely
    /// proportional to its class size (PyTorch's `WeightedRandomSampler`).
    WeightedSampler,
}

impl Imbalance {
    /// The name used in configs and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Imbalance::None => "none",
            Imbalance::Oversample { .. } => "oversample",
            Imbalance::CapRotate { .. } => "cap_rotate",
            Imbalance::MinFlip { .. } => "min_flip",
            Imbalance::AugmentTo { .. } => "augment_to",
            Imbalance::ClassWeights { .. } => "class_weights",
            Imbalance::WeightedSampler => "weighted_sampler",
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Imbalance::Oversample { per_class: 0 }
            | Imbalance::CapRotate { per_class: 0 }
            | Imbalance::MinFlip { per_class: 0 }
            | Imbalance::AugmentTo { threshold: 0 } => {
                Err(format!("data.imbalance: {} needs a count of at least 1", self.name()))
            }
            Imbalance::ClassWeights { beta, .. } if !(0.0..1.0).contains(&beta) => {
                Err("data.imbalance: beta must be in [0, 1)".into())
            }
            _ => Ok(()),
        }
    }

    /// Per-class loss weights for `class_weights`, else `None`.
    pub fn class_weights(&self, counts: &[usize]) -> Option<Vec<f32>> {
        let Imbalance::ClassWeights { scheme, beta } = *self else { return None };
        let k = counts.len() as f64;
        let n: usize = counts.iter().sum();
        let raw: Vec<f64> = counts
            .iter()
            .map(|&c| match scheme {
                WeightScheme::Inverse => n as f64 / (k * c.max(1) as f64),
                WeightScheme::EffectiveNumber => (1.0 - beta) / (1.0 - beta.powi(c.max(1) as i32)),
            })
            .collect();
        let scale = match scheme {
            WeightScheme::Inverse => 1.0,
            WeightScheme::EffectiveNumber => k / raw.iter().sum::<f64>(),
        };
        Some(raw.iter().map(|w| (w * scale) as f32).collect())
    }

    /// The samples of one epoch. `labels` are the training split's.
    pub fn plan(&self, labels: &[crate::Label], n_classes: usize, epoch: u64, seed: u64) -> Vec<(usize, Variant)> {
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
        for (i, &l) in labels.iter().enumerate() {
            by_class[l as usize].push(i);
        }
        let originals = || (0..labels.len()).map(|i| (i, Variant::Original));
        // Copies of members cycled up to `target`, as `variant`.
        let top_up = |members: &[usize], target: usize, variant: Variant| -> Vec<(usize, Variant)> {
            if members.is_empty() || members.len() >= target {
                return Vec::new();
            }
            members.iter().cycle().take(target - members.len()).map(|&i| (i, variant)).collect()
        };
        match *self {
            Imbalance::None | Imbalance::ClassWeights { .. } => originals().collect(),
            Imbalance::Oversample { per_class } => {
                let mut out: Vec<_> = originals().collect();
                by_class.iter().for_each(|m| out.extend(top_up(m, per_class, Variant::Original)));
                out
            }
            Imbalance::AugmentTo { threshold } => {
                let mut out: Vec<_> = originals().collect();
                by_class.iter().for_each(|m| out.extend(top_up(m, threshold, Variant::Augmented)));
                out
            }
            Imbalance::MinFlip { per_class } => {
                let mut base: Vec<_> = originals().collect();
                by_class.iter().for_each(|m| base.extend(top_up(m, per_class, Variant::Original)));
                let flips = |v| base.iter().map(move |&(i, _)| (i, v));
                let mut out = base.clone();
                out.extend(flips(Variant::Hflip).collect::<Vec<_>>());
                out.extend(flips(Variant::Vflip).collect::<Vec<_>>());
                out
            }
            Imbalance::CapRotate { per_class } => {
                let mut out = Vec::new();
                for members in &by_class {
                    if members.len() > per_class {
                        // Rotate through the surplus: epoch e takes the e-th window of a
                        // fixed shuffled order, so every image is seen within
                        // ceil(len / per_class) epochs.
                        let mut order = members.clone();
                        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
                        let start = (epoch as usize * per_class) % order.len();
                        out.extend(order.iter().cycle().skip(start).take(per_class).map(|&i| (i, Variant::Original)));
                    } else {
                        out.extend(members.iter().map(|&i| (i, Variant::Original)));
                        out.extend(top_up(members, per_class, Variant::Augmented));
                    }
                }
                out
            }
            Imbalance::WeightedSampler => {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x5851_F42D));
                let present: Vec<&Vec<usize>> = by_class.iter().filter(|m| !m.is_empty()).collect();
                // Sample weight 1/count makes every class equally likely: draw a class
                // uniformly, then a member uniformly.
                (0..labels.len())
                    .map(|_| {
                        let members = present[rng.gen_range(0..present.len())];
                        (members[rng.gen_range(0..members.len())], Variant::Original)
                    })
                    .collect()
            }
        }
    }
}

/// Images per class in a plan.
pub fn plan_counts(plan: &[(usize, Variant)], labels: &[crate::Label], n_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; n_classes];
    for &(i, _) in plan {
        counts[labels[i] as usize] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 of class 0, 3 of class 1, 1 of class 2.
    fn labels() -> Vec<crate::Label> {
        let mut l = vec![0u16; 10];
        l.extend([1, 1, 1, 2]);
        l
    }

    fn counts(s: &Imbalance, epoch: u64) -> Vec<usize> {
        plan_counts(&s.plan(&labels(), 3, epoch, 5), &labels(), 3)
    }

    #[test]
    fn each_strategy_gives_the_documented_counts() {
        assert_eq!(counts(&Imbalance::None, 0), [10, 3, 1]);
        assert_eq!(counts(&Imbalance::Oversample { per_class: 8 }, 0), [10, 8, 8]);
        assert_eq!(counts(&Imbalance::CapRotate { per_class: 4 }, 0), [4, 4, 4]);
        assert_eq!(counts(&Imbalance::MinFlip { per_class: 5 }, 0), [30, 15, 15]);
        assert_eq!(counts(&Imbalance::AugmentTo { threshold: 6 }, 0), [10, 6, 6]);
        assert_eq!(counts(&Imbalance::WeightedSampler, 0).iter().sum::<usize>(), 14);
    }

    #[test]
    fn cap_rotate_sees_the_surplus_in_later_epochs() {
        let s = Imbalance::CapRotate { per_class: 4 };
        let mut seen = std::collections::HashSet::new();
        for epoch in 0..3 {
            for (i, v) in s.plan(&labels(), 3, epoch, 5) {
                if labels()[i] == 0 {
                    assert_eq!(v, Variant::Original);
                    seen.insert(i);
                }
            }
        }
        assert_eq!(seen.len(), 10, "all of class 0 within ceil(10 / 4) = 3 epochs");
        let augmented = s.plan(&labels(), 3, 0, 5).iter().filter(|(_, v)| *v == Variant::Augmented).count();
        assert_eq!(augmented, 1 + 3, "class 1 topped up by 1, class 2 by 3");
    }

    #[test]
    fn weighted_sampler_balances_classes() {
        let mut l = vec![0u16; 900];
        l.extend(vec![1u16; 100]);
        let plan = Imbalance::WeightedSampler.plan(&l, 2, 1, 3);
        let c = plan_counts(&plan, &l, 2);
        assert!((400..600).contains(&c[1]), "{c:?}");
        assert_ne!(plan, Imbalance::WeightedSampler.plan(&l, 2, 2, 3), "a new draw each epoch");
    }

    #[test]
    fn class_weights() {
        let w =
            Imbalance::ClassWeights { scheme: WeightScheme::Inverse, beta: 0.999 }.class_weights(&[10, 3, 1]).unwrap();
        let expected = [14.0 / 30.0, 14.0 / 9.0, 14.0 / 3.0];
        w.iter().zip(expected).for_each(|(a, b)| assert!((*a as f64 - b).abs() < 1e-6));
        let e = Imbalance::ClassWeights { scheme: WeightScheme::EffectiveNumber, beta: 0.9 }
            .class_weights(&[10, 3, 1])
            .unwrap();
        assert!(e[0] < e[1] && e[1] < e[2]);
        assert!((e.iter().sum::<f32>() - 3.0).abs() < 1e-5);
        assert_eq!(Imbalance::None.class_weights(&[1, 2]), None);
    }
}
