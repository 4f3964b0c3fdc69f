//! Identities, determinism and config parsing of the augmentation pipeline.

use cnnlab_augment::{hflip, translate, vflip, AugmentConfig, Fill, Op, Pipeline, Shape};
use proptest::prelude::*;

const S: Shape = Shape { height: 8, width: 6, channels: 3 };

fn image(seed: u8) -> Vec<u8> {
    (0..S.len()).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

proptest! {
    #[test]
    fn flips_are_involutions(h in 1usize..9, w in 1usize..9, c in 1usize..4, seed: u8) {
        let s = Shape { height: h, width: w, channels: c };
        let orig: Vec<u8> = (0..s.len()).map(|i| (i as u8) ^ seed).collect();
        let mut img = orig.clone();
        hflip(&mut img, s);
        hflip(&mut img, s);
        vflip(&mut img, s);
        vflip(&mut img, s);
        prop_assert_eq!(img, orig);
    }

    #[test]
    fn crops_keep_shape_and_only_move_or_zero(epoch in 0u64..5, index in 0u64..100) {
        let pipe = Pipeline::new(vec![Op::RandomCrop { padding: 2, fill: Fill::Constant, p: 1.0 }], 3);
        let orig = image(1);
        let mut img = orig.clone();
        pipe.apply(&mut img, S, epoch, index);
        prop_assert_eq!(img.len(), orig.len());
        // Every output pixel is zero or one of the input's values.
        for v in &img {
            prop_assert!(*v == 0 || orig.contains(v));
        }
    }
}

#[test]
fn same_seed_epoch_index_same_image() {
    let pipe =
        Pipeline::new(vec![Op::RandomCrop { padding: 4, fill: Fill::Constant, p: 1.0 }, Op::Hflip { p: 0.5 }], 9);
    let run = |epoch, index| {
        let mut img = image(5);
        pipe.apply(&mut img, S, epoch, index);
        img
    };
    assert_eq!(run(1, 2), run(1, 2));
    // Over many samples the draws differ (a constant pipeline would be a bug).
    let distinct: std::collections::HashSet<Vec<u8>> = (0..50).map(|i| run(1, i)).collect();
    assert!(distinct.len() > 10, "{} distinct outputs", distinct.len());
    // From another thread too.
    let other = std::thread::scope(|scope| scope.spawn(|| run(1, 2)).join().unwrap());
    assert_eq!(other, run(1, 2));
}

#[test]
fn probability_extremes_and_zero_shift() {
    let mut img = image(0);
    Pipeline::new(vec![Op::Hflip { p: 0.0 }, Op::RandomCrop { padding: 0, fill: Fill::Reflect, p: 1.0 }], 1)
        .apply(&mut img, S, 0, 0);
    assert_eq!(img, image(0));
    Pipeline::new(vec![Op::Hflip { p: 1.0 }], 1).apply(&mut img, S, 0, 0);
    let mut expected = image(0);
    hflip(&mut expected, S);
    assert_eq!(img, expected);
    let mut same = image(2);
    translate(&mut same, S, 0, 0, Fill::Reflect);
    assert_eq!(same, image(2));
}

#[test]
fn config_parses_and_rejects_typos() {
    let cfg: AugmentConfig =
        toml::from_str("ops = [{ op = \"random_crop\", padding = 4 }, { op = \"hflip\" }]").unwrap();
    assert_eq!(cfg.ops, [Op::RandomCrop { padding: 4, fill: Fill::Constant, p: 1.0 }, Op::Hflip { p: 0.5 }]);
    let err = toml::from_str::<AugmentConfig>("ops = [{ op = \"hflip\", prob = 0.5 }]").unwrap_err();
    assert!(err.message().contains("unknown field `prob`"), "{}", err.message());
    let err = toml::from_str::<AugmentConfig>("ops = [{ op = \"shear\" }]").unwrap_err();
    assert!(err.message().contains("unknown variant `shear`"), "{}", err.message());
    let cfg: AugmentConfig =
        toml::from_str("ops = [{ op = \"hflip\" }, { op = \"brightness\", min = 1.3, max = 0.7 }]").unwrap();
    assert_eq!(cfg.validate().unwrap_err(), "augment.ops[1].min: needs 0 <= min <= max, got min = 1.3, max = 0.7");
    let cfg: AugmentConfig = toml::from_str("ops = [{ op = \"zoom\", range = 0.1, p = 2.0 }]").unwrap();
    assert_eq!(cfg.validate().unwrap_err(), "augment.ops[0].p: 2 is outside [0, 1]");
}

/// Seed 002's recipe plus every other op: one of each, all with p = 1.
fn every_op() -> Vec<Op> {
    vec![
        Op::Rotate { degrees: 10.0, fill: Fill::Reflect, p: 1.0 },
        Op::Zoom { range: 0.1, fill: Fill::Constant, p: 1.0 },
        Op::Brightness { min: 0.7, max: 1.3, p: 1.0 },
        Op::Contrast { min: 0.8, max: 1.2, p: 1.0 },
        Op::Saturation { min: 0.8, max: 1.2, p: 1.0 },
        Op::RandomResizedCrop { scale: [0.5, 1.0], ratio: [0.75, 1.333], p: 1.0 },
        Op::RandomCrop { padding: 2, fill: Fill::Reflect, p: 1.0 },
        Op::Cutout { size: 3, p: 1.0 },
        Op::Noise { std: 0.05, p: 1.0 },
        Op::Hflip { p: 0.5 },
        Op::Vflip { p: 0.5 },
    ]
}

#[test]
fn identities_of_the_parametric_ops() {
    let ident = vec![
        Op::Rotate { degrees: 0.0, fill: Fill::Constant, p: 1.0 },
        Op::Zoom { range: 0.0, fill: Fill::Constant, p: 1.0 },
        Op::Brightness { min: 1.0, max: 1.0, p: 1.0 },
        Op::Contrast { min: 1.0, max: 1.0, p: 1.0 },
        Op::Saturation { min: 1.0, max: 1.0, p: 1.0 },
        Op::Noise { std: 0.0, p: 1.0 },
        Op::RandomResizedCrop { scale: [1.0, 1.0], ratio: [1.0, 1.0], p: 1.0 },
    ];
    let s = Shape { height: 8, width: 8, channels: 3 };
    let orig: Vec<u8> = (0..s.len()).map(|i| (i * 37 % 256) as u8).collect();
    let mut img = orig.clone();
    Pipeline::new(ident, 4).apply(&mut img, s, 3, 9);
    assert_eq!(img, orig);
}

#[test]
fn batch_rgb_and_single_paths_agree() {
    let pipe = Pipeline::new(every_op(), 11);
    let s = Shape { height: 12, width: 10, channels: 3 };
    let images: Vec<Vec<u8>> =
        (0..6u8).map(|k| (0..s.len()).map(|i| (i as u8).wrapping_mul(7) ^ k).collect()).collect();
    let indices: Vec<u64> = (100..106).collect();
    let mut batch: Vec<u8> = images.concat();
    pipe.apply_batch(&mut batch, s, 2, &indices);
    for (k, img) in images.iter().enumerate() {
        let mut one = img.clone();
        pipe.apply(&mut one, s, 2, indices[k]);
        assert_eq!(&batch[k * s.len()..(k + 1) * s.len()], &one[..], "image {k}");
        let mut rgb = image::RgbImage::from_raw(10, 12, img.clone()).unwrap();
        pipe.apply_rgb(&mut rgb, 2, indices[k]);
        assert_eq!(rgb.into_raw(), one, "RgbImage {k}");
    }
    assert_ne!(batch, images.concat(), "something changed");
}

proptest! {
    #[test]
    fn every_op_keeps_shape(h in 1usize..20, w in 1usize..20, c in prop::sample::select(vec![1usize, 3]), index: u64) {
        let s = Shape { height: h, width: w, channels: c };
        let mut img: Vec<u8> = (0..s.len()).map(|i| (i % 256) as u8).collect();
        Pipeline::new(every_op(), 1).apply(&mut img, s, 0, index);
        prop_assert_eq!(img.len(), s.len());
    }
}
