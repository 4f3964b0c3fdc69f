//! Identities, determinism and config parsing of the augmentation pipeline.

use cnnlab_augment::{hflip, translate, vflip, AugmentConfig, Op, Pipeline, Shape};
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
        let pipe = Pipeline::new(vec![Op::RandomCrop { padding: 2 }], 3);
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
    let pipe = Pipeline::new(vec![Op::RandomCrop { padding: 4 }, Op::Hflip { p: 0.5 }], 9);
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
    Pipeline::new(vec![Op::Hflip { p: 0.0 }, Op::RandomCrop { padding: 0 }], 1).apply(&mut img, S, 0, 0);
    assert_eq!(img, image(0));
    Pipeline::new(vec![Op::Hflip { p: 1.0 }], 1).apply(&mut img, S, 0, 0);
    let mut expected = image(0);
    hflip(&mut expected, S);
    assert_eq!(img, expected);
    let mut same = image(2);
    translate(&mut same, S, 0, 0);
    assert_eq!(same, image(2));
}

#[test]
fn config_parses_and_rejects_typos() {
    let cfg: AugmentConfig =
        toml::from_str("ops = [{ op = \"random_crop\", padding = 4 }, { op = \"hflip\" }]").unwrap();
    assert_eq!(cfg.ops, [Op::RandomCrop { padding: 4 }, Op::Hflip { p: 0.5 }]);
    let err = toml::from_str::<AugmentConfig>("ops = [{ op = \"hflip\", prob = 0.5 }]").unwrap_err();
    assert!(err.message().contains("unknown field `prob`"), "{}", err.message());
    let err = toml::from_str::<AugmentConfig>("ops = [{ op = \"rotate\" }]").unwrap_err();
    assert!(err.message().contains("unknown variant `rotate`"), "{}", err.message());
}
