//! Batch mixing (`train.mix`): MixUp and CutMix as `torchvision.transforms.v2` does
//! them. Each image is mixed with its neighbour in the (shuffled) batch, i.e. the batch
//! rolled by one, with a weight `lam ~ Beta(alpha, alpha)` drawn once per batch; the
//! loss is `lam * CE(logits, y) + (1 - lam) * CE(logits, y_rolled)`.

use cnnlab_augment::mix::BatchMix;
use rand::Rng;
use tch::Tensor;

use crate::config::{Mix, MixKind};

/// A mixed batch: the images, the partner labels and the weight of the original ones.
#[derive(Debug)]
pub(crate) struct Mixed {
    pub(crate) xs: Tensor,
    pub(crate) partner: Tensor,
    pub(crate) lam: f64,
}

/// Mixes an NCHW batch (any memory format) with probability `mix.p`; `None` leaves it as it is.
/// The draw (lam, CutMix's box) is cnnlab-augment's [`BatchMix::draw`], checked there
/// against torchvision's; the mixing is done here on the tensors.
pub(crate) fn mix_batch(xs: &Tensor, ys: &Tensor, mix: &Mix, rng: &mut impl Rng) -> Option<Mixed> {
    if xs.size()[0] < 2 || rng.gen::<f64>() >= mix.p {
        return None;
    }
    let kind = match mix.kind {
        MixKind::Mixup => BatchMix::MixUp { alpha: mix.alpha },
        MixKind::Cutmix => BatchMix::CutMix { alpha: mix.alpha },
    };
    let size = xs.size();
    // alpha > 0 is checked by TrainConfig::validate.
    let draw = kind.draw(rng, size[2] as usize, size[3] as usize).expect("validated alpha");
    let rolled = xs.roll([1], [0]);
    let partner = ys.roll([1], [0]);
    let lam = draw.lam;
    let Some(p) = draw.patch else {
        return Some(Mixed { xs: xs * lam + rolled * (1.0 - lam), partner, lam });
    };
    let out = xs.copy();
    if p.height > 0 && p.width > 0 {
        let patch = |t: &Tensor| t.narrow(2, p.top as i64, p.height as i64).narrow(3, p.left as i64, p.width as i64);
        patch(&out).copy_(&patch(&rolled));
    }
    // lam is the share of pixels the original image kept.
    Some(Mixed { xs: out, partner, lam })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use tch::{Device, Kind};

    fn batch() -> (Tensor, Tensor) {
        let xs = Tensor::arange(4 * 2 * 6 * 5, (Kind::Float, Device::Cpu)).view([4, 2, 6, 5]);
        (xs, Tensor::from_slice(&[0i64, 1, 2, 3]))
    }

    #[test]
    fn mixup_blends_each_image_with_its_neighbour() {
        let (xs, ys) = batch();
        let mix = Mix { kind: MixKind::Mixup, alpha: 0.4, p: 1.0 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let m = mix_batch(&xs, &ys, &mix, &mut rng).unwrap();
        assert!(m.lam > 0.0 && m.lam < 1.0, "{}", m.lam);
        assert_eq!(Vec::<i64>::try_from(&m.partner).unwrap(), vec![3, 0, 1, 2]);
        let want = &xs * m.lam + xs.roll([1], [0]) * (1.0 - m.lam);
        assert!(m.xs.allclose(&want, 1e-5, 1e-5, false));
        // Image 1 is mostly itself or mostly image 0, as lam says.
        let own = (m.xs.get(1) - xs.get(1)).abs().sum(Kind::Float).double_value(&[]);
        let other = (m.xs.get(1) - xs.get(0)).abs().sum(Kind::Float).double_value(&[]);
        assert_eq!(own < other, m.lam > 0.5);
    }

    #[test]
    fn cutmix_pastes_a_box_and_weights_by_its_area() {
        let (xs, ys) = batch();
        let mix = Mix { kind: MixKind::Cutmix, alpha: 1.0, p: 1.0 };
        let rolled = xs.roll([1], [0]);
        let mut pasted_some = false;
        for seed in 0..20 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let m = mix_batch(&xs, &ys, &mix, &mut rng).unwrap();
            let from_partner = m.xs.eq_tensor(&rolled).to_kind(Kind::Float);
            let from_self = m.xs.eq_tensor(&xs).to_kind(Kind::Float);
            // Every pixel comes from one of the two, and the same box in every image and channel.
            assert_eq!((&from_partner + &from_self).min().double_value(&[]), 1.0);
            let per_pixel = from_partner.sum_dim_intlist([0i64, 1].as_slice(), false, Kind::Float);
            let share = f64::try_from(per_pixel.ne(0).to_kind(Kind::Float).mean(Kind::Float)).unwrap();
            assert_eq!(per_pixel.ne(0).logical_and(&per_pixel.ne(8)).sum(Kind::Int64).int64_value(&[]), 0);
            assert!((m.lam - (1.0 - share)).abs() < 1e-6, "lam {} vs pasted share {share}", m.lam);
            pasted_some |= share > 0.0;
        }
        assert!(pasted_some);
    }

    /// The draws are the ones this file made before cnnlab-augment took them over
    /// (Beta, then CutMix's centre column and row): runs mix exactly as before.
    #[test]
    fn draws_are_unchanged_by_the_move_to_cnnlab_augment() {
        use rand_distr::{Beta, Distribution};
        for seed in 0..200u64 {
            let before = |alpha: f64| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let lam = Beta::new(alpha, alpha).unwrap().sample(&mut rng);
                let (w, h) = (7i64, 5i64);
                let (cx, cy) = (rng.gen_range(0..w), rng.gen_range(0..h));
                let r = 0.5 * (1.0 - lam).sqrt();
                let (hw, hh) = ((r * w as f64) as i64, (r * h as f64) as i64);
                let (x1, x2, y1, y2) = ((cx - hw).max(0), (cx + hw).min(w), (cy - hh).max(0), (cy + hh).min(h));
                (lam, 1.0 - ((x2 - x1) * (y2 - y1)) as f64 / (w * h) as f64, [y1, x1, y2 - y1, x2 - x1])
            };
            let now = |kind: BatchMix| kind.draw(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed), 5, 7).unwrap();
            let (lam, _, _) = before(0.4);
            assert_eq!(now(BatchMix::MixUp { alpha: 0.4 }).lam, lam);
            let (_, cut_lam, b) = before(1.0);
            let cut = now(BatchMix::CutMix { alpha: 1.0 });
            let p = cut.patch.unwrap();
            assert_eq!((cut.lam, [p.top, p.left, p.height, p.width].map(|v| v as i64)), (cut_lam, b), "seed {seed}");
        }
    }

    #[test]
    fn probability_zero_and_single_images_leave_the_batch() {
        let (xs, ys) = batch();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let never = Mix { kind: MixKind::Cutmix, alpha: 1.0, p: 0.0 };
        assert!(mix_batch(&xs, &ys, &never, &mut rng).is_none());
        let always = Mix { p: 1.0, ..never };
        assert!(mix_batch(&xs.narrow(0, 0, 1), &ys.narrow(0, 0, 1), &always, &mut rng).is_none());
    }
}
