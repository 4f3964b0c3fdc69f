//! torchvision v2's automatic augmentation policies on u8 images: `RandAugment`,
//! `TrivialAugmentWide` and `AugMix`, with their augmentation spaces and magnitude
//! tables (float32 `linspace`s, as torchvision builds them) and their defaults
//! (nearest interpolation and zero padding for the first two, bilinear for AugMix).
//! The draws come from this crate's seeded stream, not torch's.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Dirichlet, Distribution};

use crate::color::{
    adjust_brightness_in, adjust_contrast_in, adjust_saturation_in, autocontrast_in, equalize_in, invert_in,
    posterize_in, sharpness_in, solarize_in,
};
use crate::geometry::{affine_in, rotate_in, Affine, Border, Interpolation};
use crate::Shape;

/// One op of an augmentation space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
    Invert,
}

use Transform::*;

/// Which policy's table of magnitudes (AutoAugment's is RandAugment's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Space {
    RandAugment,
    TrivialAugmentWide,
    AugMix,
}

const RAND_AUGMENT: [Transform; 14] = [
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
];
const AUG_MIX_PARTIAL: [Transform; 9] =
    [ShearX, ShearY, TranslateX, TranslateY, Rotate, Posterize, Solarize, AutoContrast, Equalize];
const AUG_MIX_ALL: [Transform; 13] = [
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
    Brightness,
    Color,
    Contrast,
    Sharpness,
];

/// `torch.linspace(start, end, n)[i]` in float32 (the CPU kernel fills the first
/// half forwards from `start`, the second backwards from `end`).
fn linspace(start: f64, end: f64, n: usize, i: usize) -> f64 {
    if n == 1 {
        return start as f32 as f64;
    }
    let (a, b) = (start as f32, end as f32);
    let step = (b - a) / (n - 1) as f32;
    let v = if i < n / 2 { a + step * i as f32 } else { b - step * (n - 1 - i) as f32 };
    v as f64
}

/// The magnitude of `bin` of `n` for `t` on an `h x w` image, and whether it takes a
/// random sign; `None` for ops without a magnitude.
fn magnitude(space: Space, t: Transform, n: usize, bin: usize, h: usize, w: usize) -> Option<(f64, bool)> {
    let (shear, translate_x, translate_y, rotate, colour, posterize_bits) = match space {
        Space::RandAugment => (0.3, 150.0 / 331.0 * w as f64, 150.0 / 331.0 * h as f64, 30.0, 0.9, 4.0),
        Space::TrivialAugmentWide => (0.99, 32.0, 32.0, 135.0, 0.99, 6.0),
        Space::AugMix => (0.3, w as f64 / 3.0, h as f64 / 3.0, 30.0, 0.9, 4.0),
    };
    let signed = |max: f64| Some((linspace(0.0, max, n, bin), true));
    match t {
        Identity | AutoContrast | Equalize | Invert => None,
        ShearX | ShearY => signed(shear),
        TranslateX => signed(translate_x),
        TranslateY => signed(translate_y),
        Rotate => signed(rotate),
        Brightness | Color | Contrast | Sharpness => signed(colour),
        Posterize => {
            // (top - arange(n) / ((n - 1) / range)).round(), in float32.
            let top = if space == Space::AugMix { 4.0 } else { 8.0 };
            let per = ((n as f64 - 1.0) / posterize_bits) as f32;
            Some(((top - bin as f32 / per).round_ties_even() as f64, false))
        }
        Solarize => Some((linspace(1.0, 0.0, n, bin), false)),
    }
}

/// torchvision's `_apply_image_or_video_transform` (fill `None`).
fn apply(img: &mut [u8], s: Shape, t: Transform, m: f64, interpolation: Interpolation) {
    let shear = |sx: f64, sy: f64| Affine { shear: [sx, sy], center: Some([0.0, 0.0]), ..Affine::default() };
    let translate = |tx: f64, ty: f64| Affine { translate: [tx, ty], ..Affine::default() };
    match t {
        Identity => {}
        ShearX => affine_in(img, s, shear(m.atan().to_degrees(), 0.0), interpolation, Border::Zeros),
        ShearY => affine_in(img, s, shear(0.0, m.atan().to_degrees()), interpolation, Border::Zeros),
        TranslateX => affine_in(img, s, translate(m.trunc(), 0.0), interpolation, Border::Zeros),
        TranslateY => affine_in(img, s, translate(0.0, m.trunc()), interpolation, Border::Zeros),
        Rotate => rotate_in(img, s, m, interpolation, Border::Zeros),
        Brightness => adjust_brightness_in(img, s, 1.0 + m),
        Color => adjust_saturation_in(img, s, 1.0 + m),
        Contrast => adjust_contrast_in(img, s, 1.0 + m),
        Sharpness => sharpness_in(img, s, 1.0 + m),
        Posterize => posterize_in(img, s, m as u8),
        // `v >= 255 * m` on integers.
        Solarize => solarize_in(img, s, (255.0 * m).ceil() as u8),
        AutoContrast => autocontrast_in(img, s),
        Equalize => equalize_in(img, s),
        Invert => invert_in(img, s),
    }
}

/// Draws an op of `ops`, its magnitude (`bin`, or a random bin when `None`) and
/// sign, and applies it.
fn draw_and_apply(
    img: &mut [u8],
    s: Shape,
    rng: &mut ChaCha8Rng,
    (space, ops): (Space, &[Transform]),
    bins: usize,
    bin: Option<usize>,
    interpolation: Interpolation,
) {
    let t = ops[rng.gen_range(0..ops.len())];
    let bin = bin.unwrap_or_else(|| rng.gen_range(0..bins));
    let m = match magnitude(space, t, bins, bin, s.height, s.width) {
        Some((m, true)) if rng.gen::<f64>() <= 0.5 => -m,
        Some((m, _)) => m,
        None => 0.0,
    };
    apply(img, s, t, m, interpolation);
}

/// `RandAugment(num_ops, magnitude, num_magnitude_bins)`: `num_ops` ops drawn from
/// the 14 of its space, each at bin `magnitude` with a random sign.
pub(crate) fn rand_augment(
    img: &mut [u8],
    s: Shape,
    rng: &mut ChaCha8Rng,
    num_ops: usize,
    magnitude: usize,
    bins: usize,
) {
    for _ in 0..num_ops {
        draw_and_apply(img, s, rng, (Space::RandAugment, &RAND_AUGMENT), bins, Some(magnitude), Interpolation::Nearest);
    }
}

/// `TrivialAugmentWide(num_magnitude_bins)`: one op, a random bin.
pub(crate) fn trivial_augment_wide(img: &mut [u8], s: Shape, rng: &mut ChaCha8Rng, bins: usize) {
    draw_and_apply(img, s, rng, (Space::TrivialAugmentWide, &RAND_AUGMENT), bins, None, Interpolation::Nearest);
}

/// One step of an AutoAugment sub-policy: the op, its probability, its magnitude bin
/// (of 10; ignored by ops without a magnitude).
type Step = (Transform, f64, usize);
/// Two steps, applied in order.
type SubPolicy = [Step; 2];

// torchvision's `AutoAugment._get_policies` (the learned policies of Cubuk et al.),
// checked against torchvision's own tables by `auto_augment_tables_are_torchvisions`.
const IMAGENET: [SubPolicy; 25] = [
    [(Posterize, 0.4, 8), (Rotate, 0.6, 9)],
    [(Solarize, 0.6, 5), (AutoContrast, 0.6, 0)],
    [(Equalize, 0.8, 0), (Equalize, 0.6, 0)],
    [(Posterize, 0.6, 7), (Posterize, 0.6, 6)],
    [(Equalize, 0.4, 0), (Solarize, 0.2, 4)],
    [(Equalize, 0.4, 0), (Rotate, 0.8, 8)],
    [(Solarize, 0.6, 3), (Equalize, 0.6, 0)],
    [(Posterize, 0.8, 5), (Equalize, 1.0, 0)],
    [(Rotate, 0.2, 3), (Solarize, 0.6, 8)],
    [(Equalize, 0.6, 0), (Posterize, 0.4, 6)],
    [(Rotate, 0.8, 8), (Color, 0.4, 0)],
    [(Rotate, 0.4, 9), (Equalize, 0.6, 0)],
    [(Equalize, 0.0, 0), (Equalize, 0.8, 0)],
    [(Invert, 0.6, 0), (Equalize, 1.0, 0)],
    [(Color, 0.6, 4), (Contrast, 1.0, 8)],
    [(Rotate, 0.8, 8), (Color, 1.0, 2)],
    [(Color, 0.8, 8), (Solarize, 0.8, 7)],
    [(Sharpness, 0.4, 7), (Invert, 0.6, 0)],
    [(ShearX, 0.6, 5), (Equalize, 1.0, 0)],
    [(Color, 0.4, 0), (Equalize, 0.6, 0)],
    [(Equalize, 0.4, 0), (Solarize, 0.2, 4)],
    [(Solarize, 0.6, 5), (AutoContrast, 0.6, 0)],
    [(Invert, 0.6, 0), (Equalize, 1.0, 0)],
    [(Color, 0.6, 4), (Contrast, 1.0, 8)],
    [(Equalize, 0.8, 0), (Equalize, 0.6, 0)],
];
const CIFAR10: [SubPolicy; 25] = [
    [(Invert, 0.1, 0), (Contrast, 0.2, 6)],
    [(Rotate, 0.7, 2), (TranslateX, 0.3, 9)],
    [(Sharpness, 0.8, 1), (Sharpness, 0.9, 3)],
    [(ShearY, 0.5, 8), (TranslateY, 0.7, 9)],
    [(AutoContrast, 0.5, 0), (Equalize, 0.9, 0)],
    [(ShearY, 0.2, 7), (Posterize, 0.3, 7)],
    [(Color, 0.4, 3), (Brightness, 0.6, 7)],
    [(Sharpness, 0.3, 9), (Brightness, 0.7, 9)],
    [(Equalize, 0.6, 0), (Equalize, 0.5, 0)],
    [(Contrast, 0.6, 7), (Sharpness, 0.6, 5)],
    [(Color, 0.7, 7), (TranslateX, 0.5, 8)],
    [(Equalize, 0.3, 0), (AutoContrast, 0.4, 0)],
    [(TranslateY, 0.4, 3), (Sharpness, 0.2, 6)],
    [(Brightness, 0.9, 6), (Color, 0.2, 8)],
    [(Solarize, 0.5, 2), (Invert, 0.0, 0)],
    [(Equalize, 0.2, 0), (AutoContrast, 0.6, 0)],
    [(Equalize, 0.2, 0), (Equalize, 0.6, 0)],
    [(Color, 0.9, 9), (Equalize, 0.6, 0)],
    [(AutoContrast, 0.8, 0), (Solarize, 0.2, 8)],
    [(Brightness, 0.1, 3), (Color, 0.7, 0)],
    [(Solarize, 0.4, 5), (AutoContrast, 0.9, 0)],
    [(TranslateY, 0.9, 9), (TranslateY, 0.7, 9)],
    [(AutoContrast, 0.9, 0), (Solarize, 0.8, 3)],
    [(Equalize, 0.8, 0), (Invert, 0.1, 0)],
    [(TranslateY, 0.7, 9), (AutoContrast, 0.9, 0)],
];
const SVHN: [SubPolicy; 25] = [
    [(ShearX, 0.9, 4), (Invert, 0.2, 0)],
    [(ShearY, 0.9, 8), (Invert, 0.7, 0)],
    [(Equalize, 0.6, 0), (Solarize, 0.6, 6)],
    [(Invert, 0.9, 0), (Equalize, 0.6, 0)],
    [(Equalize, 0.6, 0), (Rotate, 0.9, 3)],
    [(ShearX, 0.9, 4), (AutoContrast, 0.8, 0)],
    [(ShearY, 0.9, 8), (Invert, 0.4, 0)],
    [(ShearY, 0.9, 5), (Solarize, 0.2, 6)],
    [(Invert, 0.9, 0), (AutoContrast, 0.8, 0)],
    [(Equalize, 0.6, 0), (Rotate, 0.9, 3)],
    [(ShearX, 0.9, 4), (Solarize, 0.3, 3)],
    [(ShearY, 0.8, 8), (Invert, 0.7, 0)],
    [(Equalize, 0.9, 0), (TranslateY, 0.6, 6)],
    [(Invert, 0.9, 0), (Equalize, 0.6, 0)],
    [(Contrast, 0.3, 3), (Rotate, 0.8, 4)],
    [(Invert, 0.8, 0), (TranslateY, 0.0, 2)],
    [(ShearY, 0.7, 6), (Solarize, 0.4, 8)],
    [(Invert, 0.6, 0), (Rotate, 0.8, 4)],
    [(ShearY, 0.3, 7), (TranslateX, 0.9, 3)],
    [(ShearX, 0.1, 6), (Invert, 0.6, 0)],
    [(Solarize, 0.7, 2), (TranslateY, 0.6, 7)],
    [(ShearY, 0.8, 4), (Invert, 0.8, 0)],
    [(ShearX, 0.7, 9), (TranslateY, 0.8, 3)],
    [(ShearY, 0.8, 5), (AutoContrast, 0.7, 0)],
    [(ShearX, 0.7, 2), (Invert, 0.1, 0)],
];

/// torchvision's `AutoAugmentPolicy`: the dataset a policy was learned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum AutoAugmentPolicy {
    /// The ImageNet policy (torchvision's default).
    #[default]
    Imagenet,
    /// The CIFAR-10 policy.
    Cifar10,
    /// The SVHN policy.
    Svhn,
}

fn sub_policies(policy: AutoAugmentPolicy) -> &'static [SubPolicy] {
    match policy {
        AutoAugmentPolicy::Imagenet => &IMAGENET,
        AutoAugmentPolicy::Cifar10 => &CIFAR10,
        AutoAugmentPolicy::Svhn => &SVHN,
    }
}

/// `AutoAugment(policy)`: one of the policy's 25 sub-policies, each of its two steps
/// applied when a uniform draw is at or below its probability, at its magnitude bin
/// of 10 with a random sign (nearest interpolation, zero fill).
pub(crate) fn auto_augment(img: &mut [u8], s: Shape, rng: &mut ChaCha8Rng, policy: AutoAugmentPolicy) {
    let table = sub_policies(policy);
    for &(t, p, bin) in &table[rng.gen_range(0..table.len())] {
        if rng.gen::<f64>() > p {
            continue;
        }
        let m = match magnitude(Space::RandAugment, t, 10, bin, s.height, s.width) {
            Some((m, true)) if rng.gen::<f64>() <= 0.5 => -m,
            Some((m, _)) => m,
            None => 0.0,
        };
        apply(img, s, t, m, Interpolation::Nearest);
    }
}

/// `AugMix(severity, mixture_width, chain_depth, alpha, all_ops)`: `width` chains of
/// 1-3 ops (`depth`, or random when 0) mixed with Dirichlet(alpha) weights, then
/// blended with the original by a Beta(alpha, alpha) weight; float32, truncated.
#[allow(clippy::too_many_arguments)]
pub(crate) fn aug_mix(
    img: &mut [u8],
    s: Shape,
    rng: &mut ChaCha8Rng,
    severity: usize,
    width: usize,
    depth: usize,
    alpha: f64,
    all_ops: bool,
) {
    let ops: &[Transform] = if all_ops { &AUG_MIX_ALL } else { &AUG_MIX_PARTIAL };
    let original = Beta::new(alpha, alpha).expect("alpha validated").sample(rng) as f32;
    let weights: Vec<f64> = if width > 1 {
        Dirichlet::new(&vec![alpha; width]).expect("alpha and width validated").sample(rng)
    } else {
        vec![1.0; width]
    };
    let mut mix: Vec<f32> = img.iter().map(|&v| original * v as f32).collect();
    for w in weights {
        let w = w as f32 * (1.0 - original);
        let mut chain = img.to_vec();
        let depth = if depth > 0 { depth } else { rng.gen_range(1..=3) };
        for _ in 0..depth {
            // torchvision's magnitude bins for AugMix: 10, of which the first
            // `severity` are drawn.
            let bin = rng.gen_range(0..severity);
            draw_and_apply(&mut chain, s, rng, (Space::AugMix, ops), 10, Some(bin), Interpolation::Bilinear);
        }
        mix.iter_mut().zip(&chain).for_each(|(m, &v)| *m += w * v as f32);
    }
    img.iter_mut().zip(&mix).for_each(|(v, &m)| *v = m.clamp(0.0, 255.0) as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three AutoAugment tables are torchvision's (`tests/auto_augment.json`,
    /// written by `tests/auto_augment.py`).
    #[test]
    fn auto_augment_tables_are_torchvisions() {
        type Table = Vec<[(String, f64, Option<usize>); 2]>;
        let golden: std::collections::HashMap<String, Table> =
            serde_json::from_str(include_str!("../tests/auto_augment.json")).unwrap();
        for (name, policy) in [
            ("imagenet", AutoAugmentPolicy::Imagenet),
            ("cifar10", AutoAugmentPolicy::Cifar10),
            ("svhn", AutoAugmentPolicy::Svhn),
        ] {
            let ours: Table = sub_policies(policy)
                .iter()
                .map(|sub| {
                    sub.map(|(t, p, bin)| {
                        let has_magnitude = magnitude(Space::RandAugment, t, 10, bin, 8, 8).is_some();
                        (format!("{t:?}"), p, has_magnitude.then_some(bin))
                    })
                })
                .collect();
            assert_eq!(ours, golden[name], "{name}");
        }
    }

    /// Every image one RandAugment op (or TrivialAugmentWide) produces is one of its
    /// space's ops at the bin's magnitude, either sign; every op is drawn.
    #[test]
    fn policies_draw_from_their_space() {
        use rand::SeedableRng;
        let s = Shape::new(12, 10, 3);
        let orig: Vec<u8> = (0..s.len()).map(|i| (i * 53 % 256) as u8).collect();
        let candidates = |space: Space, bins: usize, bin_range: std::ops::Range<usize>| -> Vec<(Transform, Vec<u8>)> {
            let mut out = vec![];
            for &t in &RAND_AUGMENT {
                for bin in bin_range.clone() {
                    for sign in [1.0, -1.0] {
                        let m = magnitude(space, t, bins, bin, s.height, s.width).map_or(0.0, |(m, _)| sign * m);
                        let mut img = orig.clone();
                        apply(&mut img, s, t, m, Interpolation::Nearest);
                        out.push((t, img));
                    }
                }
            }
            out
        };
        let rand = candidates(Space::RandAugment, 31, 9..10);
        let trivial = candidates(Space::TrivialAugmentWide, 31, 0..31);
        let (mut seen_rand, mut seen_trivial) = (vec![], vec![]);
        for seed in 0..300 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut img = orig.clone();
            rand_augment(&mut img, s, &mut rng, 1, 9, 31);
            let hits: Vec<Transform> = rand.iter().filter(|(_, c)| *c == img).map(|(t, _)| *t).collect();
            assert!(!hits.is_empty(), "RandAugment seed {seed}: not an op of its space");
            seen_rand.extend(hits);
            let mut img = orig.clone();
            trivial_augment_wide(&mut img, s, &mut rng, 31);
            let hits: Vec<Transform> = trivial.iter().filter(|(_, c)| *c == img).map(|(t, _)| *t).collect();
            assert!(!hits.is_empty(), "TrivialAugmentWide seed {seed}: not an op of its space");
            seen_trivial.extend(hits);
        }
        for t in RAND_AUGMENT {
            assert!(seen_rand.contains(&t) && seen_trivial.contains(&t), "{t:?} never drawn");
        }
    }

    /// AugMix with one chain of one op at severity 1 is a Beta-weighted blend of the
    /// image and that op's output: every value lies between the two.
    #[test]
    fn aug_mix_blends_the_original_with_its_chains() {
        use rand::SeedableRng;
        let s = Shape::new(9, 11, 3);
        let orig: Vec<u8> = (0..s.len()).map(|i| (i * 41 % 256) as u8).collect();
        let mut changed = 0;
        for seed in 0..100 {
            let mut img = orig.clone();
            aug_mix(&mut img, s, &mut ChaCha8Rng::seed_from_u64(seed), 1, 1, 1, 1.0, false);
            // Replay the draws: Beta, then op, bin, sign.
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let original = Beta::new(1.0, 1.0).unwrap().sample(&mut rng) as f32;
            let mut chain = orig.clone();
            let _bin = rng.gen_range(0..1usize);
            draw_and_apply(
                &mut chain,
                s,
                &mut rng,
                (Space::AugMix, &AUG_MIX_PARTIAL),
                10,
                Some(0),
                Interpolation::Bilinear,
            );
            for ((&v, &o), &c) in img.iter().zip(&orig).zip(&chain) {
                let want = (original * o as f32 + (1.0 - original) * c as f32) as u8;
                assert!(v.abs_diff(want) <= 1, "seed {seed}: {v} vs {want}");
            }
            changed += usize::from(img != orig);
        }
        // At severity 1 the geometric ops have magnitude 0: only the others change.
        assert!(changed > 30, "{changed} of 100 changed");
    }

    #[test]
    fn magnitude_tables_are_torchvisions() {
        // torch.linspace(0.0, 0.3, 31)[9], (8 - arange(31) / 7.5).round()[29], etc.
        let m = |space, t, bin| magnitude(space, t, 31, bin, 224, 224);
        assert_eq!(m(Space::RandAugment, ShearX, 9), Some((0.3f32 / 30.0 * 9.0) as f64).map(|v| (v, true)));
        assert_eq!(m(Space::RandAugment, Posterize, 29), Some((4.0, false)));
        assert_eq!(m(Space::TrivialAugmentWide, Posterize, 30), Some((2.0, false)));
        assert_eq!(m(Space::RandAugment, Solarize, 30), Some((0.0, false)));
        assert_eq!(m(Space::TrivialAugmentWide, Rotate, 30), Some((135.0, true)));
        assert_eq!(m(Space::RandAugment, Equalize, 3), None);
        assert_eq!(magnitude(Space::AugMix, Posterize, 10, 9, 32, 32), Some((0.0, false)));
    }
}
