//! Identities, determinism and config parsing of the augmentation pipeline.

use cnnlab_augment::{hflip, translate, vflip, AugmentConfig, Error, Fill, Interpolation, Op, Pipeline, Shape};
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
        hflip(&mut img, s).unwrap();
        hflip(&mut img, s).unwrap();
        vflip(&mut img, s).unwrap();
        vflip(&mut img, s).unwrap();
        prop_assert_eq!(img, orig);
    }

    #[test]
    fn crops_keep_shape_and_only_move_or_zero(epoch in 0u64..5, index in 0u64..100) {
        let pipe = Pipeline::new(vec![Op::RandomCrop { size: None, padding: 2, pad_if_needed: false, fill: Fill::Constant, p: 1.0 }], 3).unwrap();
        let orig = image(1);
        let mut img = orig.clone();
        pipe.apply(&mut img, S, epoch, index).unwrap();
        prop_assert_eq!(img.len(), orig.len());
        // Every output pixel is zero or one of the input's values.
        for v in &img {
            prop_assert!(*v == 0 || orig.contains(v));
        }
    }
}

#[test]
fn same_seed_epoch_index_same_image() {
    let pipe = Pipeline::new(
        vec![
            Op::RandomCrop { size: None, padding: 4, pad_if_needed: false, fill: Fill::Constant, p: 1.0 },
            Op::Hflip { p: 0.5 },
        ],
        9,
    )
    .unwrap();
    let run = |epoch, index| {
        let mut img = image(5);
        pipe.apply(&mut img, S, epoch, index).unwrap();
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
    Pipeline::new(
        vec![
            Op::Hflip { p: 0.0 },
            Op::RandomCrop { size: None, padding: 0, pad_if_needed: false, fill: Fill::Reflect, p: 1.0 },
        ],
        1,
    )
    .unwrap()
    .apply(&mut img, S, 0, 0)
    .unwrap();
    assert_eq!(img, image(0));
    Pipeline::new(vec![Op::Hflip { p: 1.0 }], 1).unwrap().apply(&mut img, S, 0, 0).unwrap();
    let mut expected = image(0);
    hflip(&mut expected, S).unwrap();
    assert_eq!(img, expected);
    let mut same = image(2);
    translate(&mut same, S, 0, 0, Fill::Reflect).unwrap();
    assert_eq!(same, image(2));
}

#[test]
fn config_parses_and_rejects_typos() {
    let cfg: AugmentConfig =
        toml::from_str("ops = [{ op = \"random_crop\", padding = 4 }, { op = \"hflip\" }]").unwrap();
    assert_eq!(
        cfg.ops,
        [
            Op::RandomCrop { size: None, padding: 4, pad_if_needed: false, fill: Fill::Constant, p: 1.0 },
            Op::Hflip { p: 0.5 }
        ]
    );
    let err = toml::from_str::<AugmentConfig>("ops = [{ op = \"hflip\", prob = 0.5 }]").unwrap_err();
    assert!(err.message().contains("unknown field `prob`"), "{}", err.message());
    let err = toml::from_str::<AugmentConfig>("ops = [{ op = \"shear\" }]").unwrap_err();
    assert!(err.message().contains("unknown variant `shear`"), "{}", err.message());
    let cfg: AugmentConfig =
        toml::from_str("ops = [{ op = \"hflip\" }, { op = \"brightness\", min = 1.3, max = 0.7 }]").unwrap();
    let err = cfg.validate().unwrap_err();
    assert!(matches!(err, Error::InvalidOp { index: 1, op: "brightness", field: "min", .. }), "{err:?}");
    assert_eq!(err.to_string(), "op 1 (brightness): min: needs 0 <= min <= max, got min = 1.3, max = 0.7");
    let cfg: AugmentConfig = toml::from_str("ops = [{ op = \"zoom\", range = 0.1, p = 2.0 }]").unwrap();
    let err = cfg.validate().unwrap_err();
    assert!(matches!(&err, Error::InvalidOp { index: 0, field: "p", message, .. } if message == "2 is outside [0, 1]"));
}

/// Seed 002's recipe plus every other op: one of each, all with p = 1.
fn every_op() -> Vec<Op> {
    vec![
        Op::Rotate { degrees: 10.0, fill: Fill::Reflect, p: 1.0 },
        Op::Zoom { range: 0.1, fill: Fill::Constant, p: 1.0 },
        Op::Brightness { min: 0.7, max: 1.3, p: 1.0 },
        Op::Contrast { min: 0.8, max: 1.2, p: 1.0 },
        Op::Saturation { min: 0.8, max: 1.2, p: 1.0 },
        Op::RandomResizedCrop {
            size: None,
            interpolation: Interpolation::Bilinear,
            scale: [0.5, 1.0],
            ratio: [0.75, 1.333],
            p: 1.0,
        },
        Op::RandomCrop { size: None, padding: 2, pad_if_needed: false, fill: Fill::Reflect, p: 1.0 },
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
        Op::RandomResizedCrop {
            size: None,
            interpolation: Interpolation::Bilinear,
            scale: [1.0, 1.0],
            ratio: [1.0, 1.0],
            p: 1.0,
        },
    ];
    let s = Shape { height: 8, width: 8, channels: 3 };
    let orig: Vec<u8> = (0..s.len()).map(|i| (i * 37 % 256) as u8).collect();
    let mut img = orig.clone();
    Pipeline::new(ident, 4).unwrap().apply(&mut img, s, 3, 9).unwrap();
    assert_eq!(img, orig);
}

#[test]
fn batch_rgb_and_single_paths_agree() {
    let pipe = Pipeline::new(every_op(), 11).unwrap();
    let s = Shape { height: 12, width: 10, channels: 3 };
    let images: Vec<Vec<u8>> =
        (0..6u8).map(|k| (0..s.len()).map(|i| (i as u8).wrapping_mul(7) ^ k).collect()).collect();
    let indices: Vec<u64> = (100..106).collect();
    let mut batch: Vec<u8> = images.concat();
    pipe.apply_batch(&mut batch, s, 2, &indices).unwrap();
    for (k, img) in images.iter().enumerate() {
        let mut one = img.clone();
        pipe.apply(&mut one, s, 2, indices[k]).unwrap();
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
        Pipeline::new(every_op(), 1).unwrap().apply(&mut img, s, 0, index).unwrap();
        prop_assert_eq!(img.len(), s.len());
    }
}

/// Out-of-range parameters are errors naming the op and field, not silently run;
/// a buffer of the wrong length is an error and stays untouched.
#[test]
fn bad_parameters_and_buffers_are_errors() {
    let err = Pipeline::new(vec![Op::hflip(0.5), Op::brightness(1.4, 0.6)], 0).unwrap_err();
    assert_eq!(err.to_string(), "op 1 (brightness): min: needs 0 <= min <= max, got min = 1.4, max = 0.6");
    assert!(matches!(Pipeline::new(vec![Op::zoom(1.5)], 0), Err(Error::InvalidOp { index: 0, field: "range", .. })));
    assert!(matches!(Pipeline::builder().op(Op::hflip(2.0)).build(), Err(Error::InvalidOp { field: "p", .. })));
    assert!(matches!(
        Pipeline::builder().op(Op::hue(0.7)).build(),
        Err(Error::InvalidOp { op: "hue", field: "min", .. })
    ));
    let pipe = Pipeline::builder().op(Op::hflip(1.0)).build().unwrap();
    let mut short = vec![7u8; S.len() - 1];
    let err = pipe.apply(&mut short, S, 0, 0).unwrap_err();
    assert_eq!(err.to_string(), "image buffer holds 143 bytes, but 8x6x3 needs 144");
    assert_eq!(short, vec![7u8; S.len() - 1]);
    let mut batch = vec![0u8; S.len() * 2];
    assert!(matches!(pipe.apply_batch(&mut batch, S, 0, &[0, 1, 2]), Err(Error::BufferSize { .. })));
}

/// The constructors carry torchvision's defaults, the same as a config that names
/// only the op's required keys; the builder gives the same pipeline as the list.
#[test]
fn constructors_match_the_config_defaults() {
    let config: AugmentConfig = toml::from_str(
        r#"ops = [
            { op = "hflip" }, { op = "vflip" }, { op = "rotate", degrees = 15 }, { op = "zoom", range = 0.1 },
            { op = "brightness", min = 0.7, max = 1.3 }, { op = "random_crop", padding = 4 },
            { op = "random_resized_crop" }, { op = "cutout", size = 8 }, { op = "noise", std = 0.05 },
        ]"#,
    )
    .unwrap();
    let made = vec![
        Op::hflip(0.5),
        Op::vflip(0.5),
        Op::rotate(15.0),
        Op::zoom(0.1),
        Op::brightness(0.7, 1.3),
        Op::random_crop(4),
        Op::random_resized_crop(),
        Op::cutout(8),
        Op::noise(0.05),
    ];
    assert_eq!(config.ops, made);
    assert_eq!(
        Op::rotate(10.0).with_p(0.3).with_fill(Fill::Reflect),
        Op::Rotate { degrees: 10.0, fill: Fill::Reflect, p: 0.3 }
    );
    let built = Pipeline::builder().op(Op::random_crop(4)).op(Op::hflip(0.5)).seed(9).build().unwrap();
    let listed = Pipeline::new(vec![Op::random_crop(4), Op::hflip(0.5)], 9).unwrap();
    let (mut a, mut b) = (image(3), image(3));
    built.apply(&mut a, S, 1, 5).unwrap();
    listed.apply(&mut b, S, 1, 5).unwrap();
    assert_eq!(a, b);
    assert_eq!(built.ops(), listed.ops());
}

/// The colour, blur, crop and resize ops against torchvision v2 on uint8 images
/// (torchvision_colour.json, written by torchvision_colour.py): identical value for
/// value (the float ops compute in f32 and truncate as torchvision's uint8 kernels
/// do), except resize, within one grey level (12 of 6,160 values differ here).
#[test]
fn colour_ops_match_torchvision() {
    let golden: serde_json::Value = serde_json::from_str(include_str!("torchvision_colour.json")).unwrap();
    let bytes = |v: &serde_json::Value| -> Vec<u8> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u8).collect()
    };
    let mut checked = 0;
    for case in golden["cases"].as_array().unwrap() {
        let op = case["op"].as_str().unwrap();
        let dim = |k: &str| case[k].as_u64().unwrap() as usize;
        let s = Shape::new(dim("height"), dim("width"), dim("channels"));
        let mut img = bytes(&case["input"]);
        let param = &case["param"];
        let applied = match op {
            "invert" => cnnlab_augment::invert(&mut img, s),
            "autocontrast" => cnnlab_augment::autocontrast(&mut img, s),
            "equalize" => cnnlab_augment::equalize(&mut img, s),
            "grayscale" => cnnlab_augment::grayscale(&mut img, s),
            "hue" => cnnlab_augment::hue(&mut img, s, param.as_f64().unwrap()),
            "solarize" => cnnlab_augment::solarize(&mut img, s, param.as_u64().unwrap() as u8),
            "posterize" => cnnlab_augment::posterize(&mut img, s, param.as_u64().unwrap() as u8),
            "sharpness" => cnnlab_augment::sharpness(&mut img, s, param.as_f64().unwrap()),
            "gaussian_blur" => {
                let k = param[0].as_u64().unwrap() as usize;
                cnnlab_augment::gaussian_blur(&mut img, s, k, param[1].as_f64().unwrap())
            }
            "adjust_brightness" => cnnlab_augment::adjust_brightness(&mut img, s, param.as_f64().unwrap()),
            "adjust_contrast" => cnnlab_augment::adjust_contrast(&mut img, s, param.as_f64().unwrap()),
            "adjust_saturation" => cnnlab_augment::adjust_saturation(&mut img, s, param.as_f64().unwrap()),
            "affine" | "rotate" | "perspective" => {
                use cnnlab_augment::{Border, Interpolation};
                let f = |k: &str| param[k].as_f64().unwrap();
                let pair = |v: &serde_json::Value| [v[0].as_f64().unwrap(), v[1].as_f64().unwrap()];
                let quad = |k: &str| -> [[f64; 2]; 4] { std::array::from_fn(|i| pair(&param[k][i])) };
                let nearest = param["interpolation"] == "nearest";
                let interp = if nearest { Interpolation::Nearest } else { Interpolation::Bilinear };
                let border = param["fill"].as_u64().map_or(Border::Zeros, |v| Border::Value(v as u8));
                let warped = match op {
                    "affine" => {
                        let a = cnnlab_augment::Affine {
                            angle: f("angle"),
                            translate: pair(&param["translate"]),
                            scale: f("scale"),
                            shear: pair(&param["shear"]),
                            center: (!param["center"].is_null()).then(|| pair(&param["center"])),
                        };
                        cnnlab_augment::affine(&mut img, s, a, interp, border)
                    }
                    "rotate" => cnnlab_augment::rotate(&mut img, s, f("angle"), interp, border),
                    _ => cnnlab_augment::perspective(&mut img, s, quad("start"), quad("end"), interp, border),
                };
                warped.unwrap();
                let want = bytes(&case["expected"]);
                // Bilinear: float32 sums in another order, at most one grey level.
                // Nearest: a source exactly between two pixels may round either way.
                let worst = img.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
                let differ = img.chunks(s.channels).zip(want.chunks(s.channels)).filter(|(a, b)| a != b).count();
                if nearest {
                    assert!(differ * 100 <= s.width * s.height, "{op}({param}) on {s:?}: {differ} pixels differ");
                } else {
                    assert!(worst <= 1, "{op}({param}) on {s:?}: off by {worst}");
                }
                checked += 1;
                continue;
            }
            "center_crop" | "resize" => {
                let (h, w) = (param[0].as_u64().unwrap() as usize, param[1].as_u64().unwrap() as usize);
                let f = if op == "resize" { cnnlab_augment::resize } else { cnnlab_augment::center_crop };
                let (out, shape) = f(&img, s, h, w).unwrap();
                assert_eq!((shape.height, shape.width), (h, w));
                let want = bytes(&case["expected"]);
                // The resize kernel is Pillow's; torchvision's uint8 kernel rounds its
                // fixed-point weights a little differently: at most one grey level.
                let worst = out.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
                assert!(worst <= u8::from(op == "resize"), "{op}({param}) on {s:?}: off by {worst}");
                checked += 1;
                continue;
            }
            "jpeg" => {
                // Another codec than torchvision's libjpeg-turbo: close, not equal.
                let quality = param.as_u64().unwrap() as u8;
                let out = cnnlab_augment::jpeg(&img, s, quality).unwrap();
                let want = bytes(&case["expected"]);
                let mean = |a: &[u8], b: &[u8]| {
                    a.iter().zip(b).map(|(x, y)| f64::from(x.abs_diff(*y))).sum::<f64>() / a.len() as f64
                };
                let (torchvision_loss, our_loss) = (mean(&want, &img), mean(&out, &img));
                // A lossy round trip of about torchvision's loss at the same quality
                // (q 50: 10.2 vs 11.3 grey levels here; q 90: 6.2 vs 8.8, its encoder
                // halving the chroma even at 90).
                let similar = (0.5 * torchvision_loss..=1.3 * torchvision_loss).contains(&our_loss);
                assert!(similar, "jpeg({quality}) on {s:?}: loses {our_loss:.2}, torchvision {torchvision_loss:.2}");
                assert_ne!(out, img);
                checked += 1;
                continue;
            }
            "resize_bicubic" | "resize_nearest" | "pad" | "grayscale_1" => {
                use cnnlab_augment::{Interpolation, PadMode};
                let hw = || (param[0].as_u64().unwrap() as usize, param[1].as_u64().unwrap() as usize);
                let (out, shape) = match op {
                    "resize_bicubic" => cnnlab_augment::resize_with(&img, s, hw().0, hw().1, Interpolation::Bicubic),
                    "resize_nearest" => cnnlab_augment::resize_with(&img, s, hw().0, hw().1, Interpolation::Nearest),
                    "grayscale_1" => cnnlab_augment::grayscale_1(&img, s),
                    _ => {
                        let sides: Vec<usize> =
                            param["padding"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
                        let mode: PadMode = serde_json::from_value(param["mode"].clone()).unwrap();
                        let fill = match param["fill"].as_array() {
                            Some(_) => bytes(&param["fill"]),
                            None => vec![param["fill"].as_u64().unwrap() as u8],
                        };
                        cnnlab_augment::pad(&img, s, [sides[0], sides[1], sides[2], sides[3]], mode, &fill)
                    }
                }
                .unwrap();
                let want_shape: Vec<usize> =
                    case["out_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
                assert_eq!([shape.height, shape.width], [want_shape[0], want_shape[1]], "{op}({param})");
                let want = bytes(&case["expected"]);
                // Bicubic: Pillow's fixed-point weights, as bilinear: one grey level.
                let worst = out.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
                assert_eq!(out.len(), want.len(), "{op}({param}) on {s:?}");
                assert!(worst <= u8::from(op == "resize_bicubic"), "{op}({param}) on {s:?}: off by {worst}");
                checked += 1;
                continue;
            }
            other => panic!("unknown op {other}"),
        };
        applied.unwrap();
        assert_eq!(img, bytes(&case["expected"]), "{op}({param}) on {s:?}");
        checked += 1;
    }
    assert_eq!(checked, 156);
}

/// RandomResizedCrop to a size: the output has that size, the box depends only on
/// (seed, index), and a full-image box is a plain resize.
#[test]
fn random_resized_crop_to_a_size() {
    let s = Shape::new(20, 24, 3);
    let img: Vec<u8> = (0..s.len()).map(|i| (i * 7 % 253) as u8).collect();
    let crop = |seed, index| {
        cnnlab_augment::random_resized_crop(&img, s, (8, 10), [0.08, 1.0], [0.75, 4.0 / 3.0], (seed, index)).unwrap()
    };
    let (out, shape) = crop(1, 2);
    assert_eq!((shape, out.len()), (Shape::new(8, 10, 3), 240));
    assert_eq!(crop(1, 2), (out.clone(), shape));
    assert!((0..20).any(|i| crop(1, i).0 != out), "boxes vary with the index");
    let whole = cnnlab_augment::random_resized_crop(&img, s, (8, 10), [1.0, 1.0], [1.2, 1.2], (0, 0));
    assert_eq!(whole, cnnlab_augment::resize(&img, s, 8, 10));
    // Gaussian blur as a pipeline op: an even kernel is refused.
    assert!(matches!(Pipeline::new(vec![Op::gaussian_blur(4)], 0), Err(Error::InvalidOp { field: "kernel", .. })));
    let mut blurred = img.clone();
    Pipeline::builder().op(Op::gaussian_blur(5)).build().unwrap().apply(&mut blurred, s, 0, 0).unwrap();
    assert_ne!(blurred, img);
}

/// The torchvision v2 ops and policies added beside the seed recipes, one of each.
fn every_torchvision_op() -> Vec<Op> {
    vec![
        Op::RandomAffine {
            degrees: 20.0,
            translate: [0.1, 0.2],
            scale: [0.8, 1.2],
            shear: [-10.0, 10.0, -5.0, 5.0],
            interpolation: cnnlab_augment::Interpolation::Bilinear,
            fill: Fill::Reflect,
            p: 1.0,
        },
        Op::random_perspective(0.5).with_p(1.0),
        Op::random_erasing().with_p(1.0),
        Op::RandomErasing { scale: [0.1, 0.4], ratio: [0.5, 2.0], value: 0, random: true, p: 1.0 },
        Op::color_jitter(0.4, 0.4, 0.4, 0.1),
        Op::rand_augment(2, 9),
        Op::trivial_augment_wide(),
        Op::aug_mix(),
        Op::one_of(vec![Op::invert().with_p(1.0), Op::random_affine(30.0)]),
        Op::some_of(vec![Op::hflip(1.0), Op::equalize(), Op::rotate(5.0)], 1, 2),
        Op::random_order(vec![Op::solarize(100), Op::posterize(3), Op::zoom(0.1)]),
    ]
}

proptest! {
    #[test]
    fn torchvision_ops_keep_shape_on_any_size(h in 1usize..16, w in 1usize..16, c in prop::sample::select(vec![1usize, 3, 4]), index: u64) {
        let s = Shape { height: h, width: w, channels: c };
        let mut img: Vec<u8> = (0..s.len()).map(|i| (i * 13 % 256) as u8).collect();
        Pipeline::new(every_torchvision_op(), 2).unwrap().apply(&mut img, s, 0, index).unwrap();
        prop_assert_eq!(img.len(), s.len());
    }
}

/// The case CI's proptest found: a near-degenerate perspective on a 10x4 grey image
/// sent a corner to `i64::MAX` and the next pixel overflowed.
#[test]
fn degenerate_perspective_does_not_overflow() {
    let s = Shape { height: 10, width: 4, channels: 1 };
    let mut img: Vec<u8> = (0..s.len()).map(|i| (i * 13 % 256) as u8).collect();
    Pipeline::new(every_torchvision_op(), 2).unwrap().apply(&mut img, s, 0, 8906607521021985583).unwrap();
    assert_eq!(img.len(), s.len());
    let start = [[0.0, 0.0], [3.0, 0.0], [3.0, 9.0], [0.0, 9.0]];
    for end in [[[0.0, 0.0], [3.0, 0.0], [3.0, 9.0], [1e-7, 9.0]], [[0.0, 0.0], [3.0, 0.0], [0.0, 0.0], [0.0, 9.0]]] {
        for interpolation in [cnnlab_augment::Interpolation::Nearest, cnnlab_augment::Interpolation::Bilinear] {
            let mut img = vec![7u8; s.len()];
            cnnlab_augment::perspective(&mut img, s, start, end, interpolation, cnnlab_augment::Border::Zeros).unwrap();
            assert_eq!(img.len(), s.len());
        }
    }
}

/// Each op is deterministic in (seed, epoch, index), varies with the index, and
/// does nothing at p = 0 or at its identity parameters.
#[test]
fn torchvision_ops_are_seeded_and_have_identities() {
    let s = Shape::new(16, 20, 3);
    let orig: Vec<u8> = (0..s.len()).map(|i| (i * 37 % 251) as u8).collect();
    let run = |op: &Op, index| {
        let mut img = orig.clone();
        Pipeline::new(vec![op.clone()], 5).unwrap().apply(&mut img, s, 1, index).unwrap();
        img
    };
    for op in every_torchvision_op() {
        assert_eq!(run(&op, 3), run(&op, 3), "{}", op.name());
        assert!((0..8).any(|i| run(&op, i) != orig), "{} changes something", op.name());
        assert!((0..8).any(|i| run(&op, i) != run(&op, 0)), "{} varies with the index", op.name());
        assert_eq!(run(&op.clone().with_p(0.0), 3), orig, "{} at p = 0", op.name());
    }
    let identities = [
        Op::random_affine(0.0),
        Op::random_perspective(0.0).with_p(1.0),
        Op::color_jitter(0.0, 0.0, 0.0, 0.0),
        Op::RandAugment { num_ops: 0, magnitude: 0, bins: 31, p: 1.0 },
        Op::some_of(vec![Op::invert()], 0, 0),
    ];
    for op in identities {
        assert_eq!(run(&op, 4), orig, "{op:?}");
    }
}

/// RandomErasing sets exactly one box, of an area within `scale` (up to rounding),
/// to the value.
#[test]
fn random_erasing_sets_one_box() {
    let s = Shape::new(30, 40, 3);
    let orig: Vec<u8> = (0..s.len()).map(|i| 10 + (i % 200) as u8).collect();
    let pipe = Pipeline::new(vec![Op::random_erasing().with_p(1.0)], 7).unwrap();
    for index in 0..50 {
        let mut img = orig.clone();
        pipe.apply(&mut img, s, 0, index).unwrap();
        let erased: Vec<(usize, usize)> = (0..s.height * s.width)
            .filter(|p| img[p * 3..p * 3 + 3] == [0, 0, 0])
            .map(|p| (p / s.width, p % s.width))
            .collect();
        let (rows, cols) = (erased.iter().map(|e| e.0), erased.iter().map(|e| e.1));
        let (y0, y1) = (rows.clone().min().unwrap(), rows.max().unwrap());
        let (x0, x1) = (cols.clone().min().unwrap(), cols.max().unwrap());
        let area = (y1 - y0 + 1) * (x1 - x0 + 1);
        assert_eq!(erased.len(), area, "a full box at index {index}");
        let fraction = area as f64 / (s.height * s.width) as f64;
        assert!((0.01..=0.36).contains(&fraction), "area {fraction} at index {index}");
        let changed = img.iter().zip(&orig).filter(|(a, b)| a != b).count();
        assert_eq!(changed, area * 3);
    }
}

/// ColorJitter applies its four adjustments in a random order: with brightness x2
/// and contrast 0, the two orders give two different flat images, both seen.
#[test]
fn color_jitter_orders_vary() {
    let s = Shape::new(6, 6, 3);
    let orig: Vec<u8> = (0..s.len()).map(|i| (i * 7 % 200) as u8).collect();
    let jitter = Op::ColorJitter {
        brightness: [2.0, 2.0],
        contrast: [0.0, 0.0],
        saturation: [1.0, 1.0],
        hue: [0.0, 0.0],
        p: 1.0,
    };
    let (mut bc, mut cb) = (orig.clone(), orig.clone());
    cnnlab_augment::adjust_brightness(&mut bc, s, 2.0).unwrap();
    cnnlab_augment::adjust_contrast(&mut bc, s, 0.0).unwrap();
    cnnlab_augment::adjust_contrast(&mut cb, s, 0.0).unwrap();
    cnnlab_augment::adjust_brightness(&mut cb, s, 2.0).unwrap();
    assert_ne!(bc, cb);
    let pipe = Pipeline::new(vec![jitter], 1).unwrap();
    let outs: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            let mut img = orig.clone();
            pipe.apply(&mut img, s, 0, i).unwrap();
            img
        })
        .collect();
    assert!(outs.iter().all(|o| *o == bc || *o == cb));
    assert!(outs.contains(&bc) && outs.contains(&cb), "both orders occur");
}

/// one_of applies one op, some_of the drawn number of distinct ops in list order,
/// random_order all of them in every order; each outcome occurs.
#[test]
fn combinators_choose_and_order() {
    use cnnlab_augment::{invert, posterize, solarize};
    let s = Shape::new(5, 7, 3);
    let orig: Vec<u8> = (0..s.len()).map(|i| (i * 29 % 256) as u8).collect();
    let with = |fs: &[fn(&mut [u8], Shape)]| {
        let mut img = orig.clone();
        fs.iter().for_each(|f| f(&mut img, s));
        img
    };
    let outcomes = |op: Op| -> Vec<Vec<u8>> {
        let pipe = Pipeline::new(vec![op], 3).unwrap();
        (0..60)
            .map(|i| {
                let mut img = orig.clone();
                pipe.apply(&mut img, s, 0, i).unwrap();
                img
            })
            .collect()
    };
    let inv: fn(&mut [u8], Shape) = |img, s| invert(img, s).unwrap();
    let sol: fn(&mut [u8], Shape) = |img, s| solarize(img, s, 100).unwrap();
    let post: fn(&mut [u8], Shape) = |img, s| posterize(img, s, 2).unwrap();
    let ops = || vec![Op::invert().with_p(1.0), Op::solarize(100).with_p(1.0), Op::posterize(2).with_p(1.0)];
    let check = |op: Op, expected: Vec<Vec<u8>>| {
        let got = outcomes(op);
        for e in &expected {
            assert!(got.contains(e), "an outcome never occurs");
        }
        assert!(got.iter().all(|g| expected.contains(g)), "an unexpected outcome");
    };
    check(Op::one_of(ops()), vec![with(&[inv]), with(&[sol]), with(&[post])]);
    check(Op::some_of(ops(), 2, 2), vec![with(&[inv, sol]), with(&[inv, post]), with(&[sol, post])]);
    let orders = vec![
        with(&[inv, sol, post]),
        with(&[inv, post, sol]),
        with(&[sol, inv, post]),
        with(&[sol, post, inv]),
        with(&[post, inv, sol]),
        with(&[post, sol, inv]),
    ];
    check(Op::random_order(ops()), orders);
}

/// The new ops read from TOML with torchvision's defaults, nest in combinators,
/// and are validated (nested ones too).
#[test]
fn torchvision_ops_from_config_and_validation() {
    let config: AugmentConfig = toml::from_str(
        r#"ops = [
            { op = "random_affine", degrees = 30 }, { op = "random_perspective" }, { op = "random_erasing" },
            { op = "rand_augment" }, { op = "trivial_augment_wide" }, { op = "aug_mix" },
            { op = "one_of", ops = [{ op = "hflip" }, { op = "random_order", ops = [{ op = "equalize" }] }] },
            { op = "some_of", n = [1, 2], ops = [{ op = "rotate", degrees = 5 }, { op = "invert" }] },
        ]"#,
    )
    .unwrap();
    let made = vec![
        Op::random_affine(30.0),
        Op::random_perspective(0.5),
        Op::random_erasing(),
        Op::rand_augment(2, 9),
        Op::trivial_augment_wide(),
        Op::aug_mix(),
        Op::one_of(vec![Op::hflip(0.5), Op::random_order(vec![Op::equalize()])]),
        Op::some_of(vec![Op::rotate(5.0), Op::invert()], 1, 2),
    ];
    assert_eq!(config.ops, made);
    let jitter: AugmentConfig =
        toml::from_str(r#"ops = [{ op = "color_jitter", brightness = [0.6, 1.4], hue = [-0.1, 0.1] }]"#).unwrap();
    assert_eq!(jitter.ops, vec![Op::color_jitter(0.4, 0.0, 0.0, 0.1)]);
    let typo = toml::from_str::<AugmentConfig>(r#"ops = [{ op = "rand_augment", magnitud = 9 }]"#).unwrap_err();
    assert!(typo.to_string().contains("unknown field `magnitud`"), "{typo}");
    let err = |ops: Vec<Op>| Pipeline::new(ops, 0).unwrap_err().to_string();
    assert_eq!(err(vec![Op::rand_augment(2, 31)]), "op 0 (rand_augment): magnitude: bin 31 is not below bins = 31");
    assert_eq!(
        err(vec![Op::hflip(0.5), Op::some_of(vec![Op::invert()], 1, 2)]),
        "op 1 (some_of): n: needs n[0] <= n[1] <= 1 (the number of ops)"
    );
    assert_eq!(
        err(vec![Op::one_of(vec![Op::brightness(2.0, 1.0)])]),
        "op 0 (brightness): min: needs 0 <= min <= max, got min = 2, max = 1"
    );
    assert!(err(vec![Op::random_perspective(1.5)]).contains("distortion"));
    assert!(err(vec![Op::color_jitter(0.0, 0.0, 0.0, 0.6)]).contains("hue"));
    assert!(err(vec![Op::AugMix { severity: 11, width: 3, depth: 0, alpha: 1.0, all_ops: true, p: 1.0 }])
        .contains("severity"));
}

/// Any shape (0 to 5 rows, columns and channels), a buffer of the right length or one
/// byte off, and any parameter (NaN, infinities, negatives, zero included): every
/// public function and every op in a pipeline returns, with `Ok` or the crate's
/// `Error`, and never panics. `PROPTEST_CASES=100000` for a long campaign.
mod no_panics {
    use cnnlab_augment::*;
    use proptest::prelude::*;

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(-1.0),
            Just(0.5),
            Just(1.0),
            Just(3.0),
            -400.0..400.0f64,
        ]
    }

    fn image() -> impl Strategy<Value = (Shape, Vec<u8>)> {
        (0usize..6, 0usize..6, 0usize..6, prop_oneof![Just(0i64), Just(-1), Just(1)]).prop_flat_map(|(h, w, c, off)| {
            let s = Shape::new(h, w, c);
            let len = (s.len() as i64 + off).max(0) as usize;
            (Just(s), proptest::collection::vec(any::<u8>(), len))
        })
    }

    /// Every free function once, with parameters from `f` and `n`.
    fn every_function(img: &mut [u8], s: Shape, f: [f64; 4], n: [usize; 3]) {
        let (a, b, c, d) = (f[0], f[1], f[2], f[3]);
        let (i, j) = (n[0] as i64 - 2, n[1] as i64 - 2);
        let _ = hflip(img, s);
        let _ = vflip(img, s);
        let _ = translate(img, s, i, j, Fill::Reflect);
        let _ = rotate_zoom(img, s, a, b, Fill::Constant);
        let _ = crop_resize(img, s, a, b, c, d);
        let _ = brightness_rounded(img, s, a);
        let _ = contrast_rounded(img, s, a);
        let _ = saturation_rounded(img, s, b);
        let _ = cutout(img, s, i, j, n[2]);
        let _ = erase(img, s, n[0], n[1], n[2], n[0], 7);
        let _ = normalize_to_chw(img, s, &[0.5, 0.5, 0.5], &[0.2, 0.2, 0.2]);
        let _ = grayscale(img, s);
        let _ = invert(img, s);
        let _ = solarize(img, s, n[0] as u8);
        let _ = posterize(img, s, n[1] as u8);
        let _ = adjust_brightness(img, s, a);
        let _ = adjust_contrast(img, s, b);
        let _ = adjust_saturation(img, s, c);
        let _ = autocontrast(img, s);
        let _ = equalize(img, s);
        let _ = sharpness(img, s, d);
        let _ = gaussian_blur(img, s, n[2], a);
        let _ = hue(img, s, b);
        let affine_of = Affine { angle: a, translate: [b, c], scale: d, shear: [a, b], center: None };
        let _ = affine(img, s, affine_of, Interpolation::Bilinear, Border::Zeros);
        let _ = rotate(img, s, a, Interpolation::Nearest, Border::Value(3));
        let corners = [[0.0, 0.0], [a, 0.0], [b, c], [0.0, d]];
        let _ = perspective(
            img,
            s,
            [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]],
            corners,
            Interpolation::Bilinear,
            Border::Zeros,
        );
        let _ = center_crop(img, s, n[0], n[1]);
        let _ = crop(img, s, i, j, n[1], n[2]);
        let _ = resize(img, s, n[0], n[2]);
        let _ = random_resized_crop(img, s, (n[0], n[1]), [a.abs().min(1.0), 1.0], [0.75, b.abs() + 0.8], (1, 2));
        for interpolation in [Interpolation::Nearest, Interpolation::Bilinear, Interpolation::Bicubic] {
            let _ = cnnlab_augment::resize_with(img, s, n[2], n[0], interpolation);
        }
        for mode in [PadMode::Constant, PadMode::Edge, PadMode::Reflect, PadMode::Symmetric] {
            let _ = cnnlab_augment::pad(img, s, [n[0], n[1], n[2], n[0] / 2], mode, &img[..img.len().min(n[1])]);
        }
        let _ = cnnlab_augment::grayscale_1(img, s);
        let _ = cnnlab_augment::jpeg(img, s, n[0].min(255) as u8);
    }

    /// Every op with its constructor's defaults (a valid pipeline), applied once.
    fn every_op(img: &mut [u8], s: Shape, index: u64) {
        let ops = vec![
            Op::hflip(1.0),
            Op::vflip(1.0),
            Op::rotate(30.0),
            Op::zoom(0.3),
            Op::brightness(0.5, 1.5),
            Op::contrast(0.5, 1.5),
            Op::saturation(0.5, 1.5),
            Op::random_crop(2),
            Op::random_resized_crop(),
            Op::cutout(2),
            Op::noise(0.1),
            Op::hue(0.3),
            Op::grayscale(1.0),
            Op::invert(),
            Op::solarize(100),
            Op::posterize(3),
            Op::autocontrast(),
            Op::equalize(),
            Op::sharpness(2.0),
            Op::gaussian_blur(3),
            Op::random_affine(20.0),
            Op::random_perspective(0.5),
            Op::random_erasing(),
            Op::color_jitter(0.4, 0.4, 0.4, 0.1),
            Op::rand_augment(2, 9),
            Op::trivial_augment_wide(),
            Op::aug_mix(),
            Op::auto_augment(AutoAugmentPolicy::Imagenet),
            Op::auto_augment(AutoAugmentPolicy::Cifar10),
            Op::auto_augment(AutoAugmentPolicy::Svhn),
            Op::one_of_weighted(vec![Op::invert(), Op::rotate(10.0)], vec![0.0, 1e-300]),
            Op::random_apply(vec![Op::equalize(), Op::zoom(0.2)], 1.0),
            Op::jpeg(1, 100),
        ];
        for op in ops {
            let op = op.with_p(1.0);
            let _ = Pipeline::new(vec![op], index).and_then(|p| p.apply(img, s, 0, index));
        }
        let n = (index % 7) as usize;
        let resizing = vec![
            Op::resize(n),
            Op::resize([n, n + 1]),
            Op::center_crop(n + 1),
            Op::random_resized_crop_to(n + 1),
            Op::random_crop_to(n + 1),
            Op::Pad { padding: Padding::All(n), fill: Colour::Grey(9), mode: PadMode::Reflect, p: 1.0 },
            Op::Pad {
                padding: Padding::All(n),
                fill: Colour::Channels(vec![1, 2, 3]),
                mode: PadMode::Constant,
                p: 1.0,
            },
            Op::random_zoom_out().with_p(1.0),
            Op::Grayscale { channels: 1, p: 1.0 },
        ];
        for op in resizing {
            let _ =
                Pipeline::new(vec![op.clone(), Op::hflip(1.0), op], index).and_then(|p| p.transform(img, s, 1, index));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
        ))]

        #[test]
        fn no_function_and_no_op_panics(
            (s, mut img) in image(),
            f in proptest::array::uniform4(float()),
            n in proptest::array::uniform3(0usize..7),
            index in 0u64..1000,
        ) {
            every_function(&mut img, s, f, n);
            every_op(&mut img, s, index);
        }
    }
}

/// Size-changing ops as pipeline steps (issue 37): `random_resized_crop(224)` draws a
/// new box every epoch, shapes follow torchvision's rules, in-place `apply` refuses a
/// pipeline that changes the size, and without such ops `transform` is `apply`.
#[test]
fn size_changing_ops_in_a_pipeline() {
    let s = Shape::new(30, 40, 3);
    let img: Vec<u8> = (0..s.len()).map(|i| (i * 13 % 251) as u8).collect();
    let pipe = Pipeline::builder().random_resized_crop(16).hflip(0.5).seed(4).build().unwrap();
    assert_eq!(pipe.output_shape(s), Some(Shape::new(16, 16, 3)));
    let (out, shape) = pipe.transform(&img, s, 0, 7).unwrap();
    assert_eq!((shape, out.len()), (Shape::new(16, 16, 3), 16 * 16 * 3));
    assert_eq!(pipe.transform(&img, s, 0, 7).unwrap().0, out, "a pure function of (seed, epoch, index)");
    let epochs: std::collections::HashSet<Vec<u8>> = (0..6).map(|e| pipe.transform(&img, s, e, 7).unwrap().0).collect();
    assert!(epochs.len() >= 5, "the box changes from epoch to epoch: {} distinct of 6", epochs.len());
    let mut in_place = img.clone();
    let refused = pipe.apply(&mut in_place, s, 0, 7);
    assert!(matches!(refused, Err(Error::ChangesShape { output: Some(o), .. }) if o == shape), "{refused:?}");
    assert_eq!(in_place, img, "a refused image is untouched");

    // Resize(shorter side) then CenterCrop: torchvision's evaluation recipe.
    let eval = Pipeline::new(vec![Op::resize(20), Op::center_crop(16)], 0).unwrap();
    assert_eq!(Op::resize(20).output_shape(s), Some(Shape::new(20, 26, 3)));
    let (out, shape) = eval.transform(&img, s, 0, 0).unwrap();
    let (resized, rs) = cnnlab_augment::resize(&img, s, 20, 26).unwrap();
    assert_eq!((out, shape), cnnlab_augment::center_crop(&resized, rs, 16, 16).unwrap());
    // A full-image box is a plain resize.
    let whole = Op::RandomResizedCrop {
        size: Some([12, 16].into()),
        interpolation: Interpolation::Bicubic,
        scale: [1.0, 1.0],
        ratio: [4.0 / 3.0, 4.0 / 3.0],
        p: 1.0,
    };
    let got = Pipeline::new(vec![whole], 1).unwrap().transform(&img, s, 2, 3).unwrap();
    assert_eq!(got, cnnlab_augment::resize_with(&img, s, 12, 16, Interpolation::Bicubic).unwrap());

    // Without size-changing ops, transform is apply on a copy; with ops that end at
    // the input's size, apply works in place.
    let plain =
        Pipeline::new(vec![Op::rotate(10.0), Op::hflip(0.5), Op::color_jitter(0.3, 0.3, 0.3, 0.05)], 2).unwrap();
    let same_size =
        Pipeline::new(vec![Op::pad(cnnlab_augment::Padding::All(3)), Op::center_crop([30, 40])], 2).unwrap();
    for index in 0..10 {
        let mut a = img.clone();
        plain.apply(&mut a, s, 1, index).unwrap();
        assert_eq!(plain.transform(&img, s, 1, index).unwrap(), (a, s));
        let mut b = img.clone();
        same_size.apply(&mut b, s, 1, index).unwrap();
        assert_eq!(b, img, "pad 3 then centre crop back is the identity");
    }

    // One-channel grayscale, random zoom out (size drawn), random crop to a size.
    let grey = Pipeline::new(vec![Op::Grayscale { channels: 1, p: 1.0 }], 0).unwrap();
    assert_eq!(grey.transform(&img, s, 0, 0).unwrap(), cnnlab_augment::grayscale_1(&img, s).unwrap());
    let zoom = Pipeline::new(vec![Op::random_zoom_out().with_p(1.0)], 5).unwrap();
    assert_eq!(zoom.output_shape(s), None);
    let sizes: std::collections::HashSet<Shape> = (0..20).map(|i| zoom.transform(&img, s, 0, i).unwrap().1).collect();
    assert!(sizes.len() > 10 && sizes.iter().all(|z| z.height >= 30 && z.width >= 40 && z.height <= 120));
    let crop = Pipeline::new(vec![Op::random_crop_to([24, 50]).with_fill(Fill::Reflect)], 5).unwrap();
    assert!(matches!(crop.transform(&img, s, 0, 0), Err(Error::InvalidArgument { argument: "size", .. })));
    let padded =
        Op::RandomCrop { size: Some([24, 50].into()), padding: 0, pad_if_needed: true, fill: Fill::Constant, p: 1.0 };
    let (out, shape) = Pipeline::new(vec![padded], 5).unwrap().transform(&img, s, 0, 0).unwrap();
    assert_eq!(shape, Shape::new(24, 50, 3));
    // Each output row is a run of zeros, a 40-pixel window of one input row, zeros.
    let row = &out[..50 * 3];
    let start = row.chunks(3).position(|p| p != [0, 0, 0]).unwrap();
    assert!(s.height >= 24 && start <= 10);

    // Combinators cannot hold size-changing ops; bicubic warps are refused.
    let bad = Pipeline::new(vec![Op::one_of(vec![Op::resize(8), Op::hflip(1.0)])], 0);
    assert!(matches!(bad, Err(Error::InvalidOp { field: "ops", .. })), "{bad:?}");
    let mut affine = Op::random_affine(10.0);
    if let Op::RandomAffine { interpolation, .. } = &mut affine {
        *interpolation = Interpolation::Bicubic;
    }
    assert!(matches!(Pipeline::new(vec![affine], 0), Err(Error::InvalidOp { field: "interpolation", .. })));
    assert!(matches!(Pipeline::new(vec![Op::center_crop(0)], 0), Err(Error::InvalidOp { field: "size", .. })));
}

/// The size-changing ops as an `[augment]` list writes them, torchvision's spellings.
#[test]
fn size_changing_ops_from_config() {
    let config: AugmentConfig = toml::from_str(
        r#"ops = [
            { op = "random_resized_crop", size = 224, interpolation = "bicubic" },
            { op = "resize", size = [32, 48] },
            { op = "center_crop", size = 28 },
            { op = "pad", padding = [1, 2], fill = [124, 116, 104], mode = "constant" },
            { op = "pad", padding = 4, mode = "symmetric" },
            { op = "random_crop", size = [24, 24], padding = 2, pad_if_needed = true },
            { op = "random_zoom_out", side_range = [1.0, 2.0] },
            { op = "grayscale", channels = 1, p = 1.0 },
        ]"#,
    )
    .unwrap();
    config.validate().unwrap();
    use cnnlab_augment::{Colour, PadMode, Padding, Size};
    assert_eq!(
        config.ops[0],
        Op::RandomResizedCrop {
            size: Some(Size::Side(224)),
            interpolation: Interpolation::Bicubic,
            scale: [0.08, 1.0],
            ratio: [0.75, 4.0 / 3.0],
            p: 1.0
        }
    );
    assert_eq!(
        config.ops[3],
        Op::Pad {
            padding: Padding::Symmetric([1, 2]),
            fill: Colour::Channels(vec![124, 116, 104]),
            mode: PadMode::Constant,
            p: 1.0
        }
    );
    assert_eq!(config.ops[1].output_shape(Shape::new(10, 10, 3)), Some(Shape::new(32, 48, 3)));
    assert_eq!(config.ops[3].output_shape(Shape::new(10, 10, 3)), Some(Shape::new(14, 12, 3)));
    let typo = toml::from_str::<AugmentConfig>(r#"ops = [{ op = "resize", sise = 3 }]"#).unwrap_err();
    assert!(typo.to_string().contains("sise"), "{typo}");
}

/// RandomChoice with weights, RandomApply over a group, AutoAugment (issue 37 item 11).
#[test]
fn weighted_choice_random_apply_and_auto_augment() {
    let s = Shape::new(6, 7, 3);
    let img: Vec<u8> = (0..s.len()).map(|i| (i * 29 % 251) as u8).collect();
    let run = |pipe: &Pipeline, index: u64| {
        let mut out = img.clone();
        pipe.apply(&mut out, s, 0, index).unwrap();
        out
    };
    let (mut inverted, mut flipped) = (img.clone(), img.clone());
    cnnlab_augment::invert(&mut inverted, s).unwrap();
    hflip(&mut flipped, s).unwrap();

    // 3:1 between invert and hflip: about 75% inverted.
    let weighted =
        Pipeline::new(vec![Op::one_of_weighted(vec![Op::Invert { p: 1.0 }, Op::hflip(1.0)], vec![3.0, 1.0])], 1)
            .unwrap();
    let n = 4000;
    let outs: Vec<Vec<u8>> = (0..n).map(|i| run(&weighted, i)).collect();
    assert!(outs.iter().all(|o| *o == inverted || *o == flipped));
    let share = outs.iter().filter(|o| **o == inverted).count() as f64 / n as f64;
    assert!((share - 0.75).abs() < 0.03, "inverted {share}");
    let never =
        Pipeline::new(vec![Op::one_of_weighted(vec![Op::Invert { p: 1.0 }, Op::hflip(1.0)], vec![0.0, 2.0])], 1)
            .unwrap();
    assert!((0..200).all(|i| run(&never, i) == flipped));
    let bad = Pipeline::new(vec![Op::one_of_weighted(vec![Op::hflip(1.0)], vec![1.0, 2.0])], 0);
    assert!(matches!(bad, Err(Error::InvalidOp { field: "weights", .. })), "{bad:?}");
    let bad = Pipeline::new(vec![Op::one_of_weighted(vec![Op::hflip(1.0)], vec![f64::NAN])], 0);
    assert!(matches!(bad, Err(Error::InvalidOp { field: "weights", .. })), "{bad:?}");

    // RandomApply([hflip, vflip], 0.5): both flips or neither, about half the time.
    let mut both = img.clone();
    hflip(&mut both, s).unwrap();
    vflip(&mut both, s).unwrap();
    let group = Pipeline::new(vec![Op::random_apply(vec![Op::hflip(1.0), Op::vflip(1.0)], 0.5)], 2).unwrap();
    let outs: Vec<Vec<u8>> = (0..n).map(|i| run(&group, i)).collect();
    assert!(outs.iter().all(|o| *o == both || *o == img));
    let share = outs.iter().filter(|o| **o == both).count() as f64 / n as f64;
    assert!((share - 0.5).abs() < 0.03, "applied {share}");

    // AutoAugment: seeded, changes most images, every policy from TOML.
    let config: AugmentConfig = toml::from_str(
        r#"ops = [{ op = "auto_augment" }, { op = "auto_augment", policy = "cifar10" }, { op = "auto_augment", policy = "svhn", p = 0.5 },
                  { op = "one_of", ops = [{ op = "invert" }, { op = "hflip" }], weights = [1, 2] },
                  { op = "random_apply", ops = [{ op = "hflip", p = 1 }] }]"#,
    )
    .unwrap();
    assert_eq!(config.ops[0], Op::auto_augment(cnnlab_augment::AutoAugmentPolicy::Imagenet));
    assert_eq!(config.ops[1], Op::auto_augment(cnnlab_augment::AutoAugmentPolicy::Cifar10));
    assert_eq!(config.ops[4], Op::random_apply(vec![Op::hflip(1.0)], 0.5));
    for policy in [
        cnnlab_augment::AutoAugmentPolicy::Imagenet,
        cnnlab_augment::AutoAugmentPolicy::Cifar10,
        cnnlab_augment::AutoAugmentPolicy::Svhn,
    ] {
        let pipe = Pipeline::new(vec![Op::auto_augment(policy)], 3).unwrap();
        assert_eq!(run(&pipe, 5), run(&pipe, 5));
        let changed = (0..200).filter(|&i| run(&pipe, i) != img).count();
        assert!(changed > 100, "{policy:?}: {changed} of 200 changed");
    }
}

/// MixUp and CutMix with their random parameters fixed give torchvision v2's batches
/// and labels (torchvision_mix.json, written by torchvision_mix.py); the draws follow
/// `make_params`.
#[test]
fn batch_mixing_matches_torchvision() {
    use cnnlab_augment::mix::{BatchMix, Layout, MixDraw, Patch};
    let golden: serde_json::Value = serde_json::from_str(include_str!("torchvision_mix.json")).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
    };
    let dims: Vec<usize> = golden["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let (n, k) = (dims[0], golden["classes"].as_u64().unwrap() as usize);
    let shape = Shape::new(dims[2], dims[3], dims[1]);
    let labels: Vec<usize> =
        golden["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let one_hot: Vec<f32> = labels.iter().flat_map(|&l| (0..k).map(move |c| f32::from(u8::from(c == l)))).collect();
    for case in golden["cases"].as_array().unwrap() {
        let patch = case["box"].as_array().map(|b| {
            let b: Vec<usize> = b.iter().map(|v| v.as_u64().unwrap() as usize).collect();
            Patch { top: b[0], left: b[1], height: b[2], width: b[3] }
        });
        let draw = MixDraw { lam: case["lam"].as_f64().unwrap(), patch };
        let (mut images, mut mixed) = (floats(&golden["input"]), one_hot.clone());
        draw.apply(&mut images, shape, Layout::Chw, &mut mixed, k).unwrap();
        assert_eq!(images, floats(&case["images"]), "{} images", case["kind"]);
        assert_eq!(mixed, floats(&case["labels"]), "{} labels", case["kind"]);
        assert_eq!(images.len(), n * shape.len());
    }
    // HWC: the same box of the same pixels.
    let draw = MixDraw { lam: 0.5, patch: Some(Patch { top: 1, left: 2, height: 2, width: 3 }) };
    let s = Shape::new(4, 5, 2);
    let hwc: Vec<f32> = (0..2 * s.len()).map(|i| i as f32).collect();
    let mut out = hwc.clone();
    draw.apply(&mut out, s, Layout::Hwc, &mut [1.0, 0.0, 0.0, 1.0], 2).unwrap();
    for (i, (&o, &x)) in out.iter().zip(&hwc).enumerate() {
        let (img, y, xx) = (i / s.len(), i % s.len() / (5 * 2), i % (5 * 2) / 2);
        let inside = (1..3).contains(&y) && (2..5).contains(&xx);
        let prev = hwc[((img + 1) % 2) * s.len() + i % s.len()];
        assert_eq!(o, if inside { prev } else { x }, "value {i}");
    }

    // The draws: lam in (0, 1); CutMix's lam is the share outside its box; seeded.
    use rand::SeedableRng;
    for seed in 0..50 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let up = BatchMix::MixUp { alpha: 0.4 }.draw(&mut rng, 32, 32).unwrap();
        assert!(up.lam > 0.0 && up.lam < 1.0 && up.patch.is_none());
        let cut = BatchMix::CutMix { alpha: 1.0 }.draw(&mut rng, 20, 30).unwrap();
        let p = cut.patch.unwrap();
        assert!(p.top + p.height <= 20 && p.left + p.width <= 30);
        assert!((cut.lam - (1.0 - (p.height * p.width) as f64 / 600.0)).abs() < 1e-12);
        let mut again = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        assert_eq!(BatchMix::MixUp { alpha: 0.4 }.draw(&mut again, 32, 32).unwrap(), up);
    }
    assert!(BatchMix::MixUp { alpha: 0.0 }.draw(&mut rand_chacha::ChaCha8Rng::seed_from_u64(0), 4, 4).is_err());
    let bad =
        MixDraw { lam: 0.5, patch: None }.apply(&mut [0.0; 10], Shape::new(2, 2, 1), Layout::Chw, &mut [0.0; 4], 2);
    assert!(matches!(bad, Err(Error::InvalidArgument { argument: "labels", .. })), "{bad:?}");
}

/// A closure as a pipeline op: it gets the sample's stream, so it is seeded like the
/// others; JPEG re-encoding as an op, refused on bad qualities.
#[test]
fn custom_and_jpeg_ops() {
    use rand::Rng;
    let s = Shape::new(8, 9, 3);
    let img: Vec<u8> = (0..s.len()).map(|i| (i * 11 % 256) as u8).collect();
    let salt = Op::custom("salt", |img: &mut [u8], s: Shape, rng: &mut dyn rand::RngCore| {
        let at = rng.gen_range(0..s.height * s.width) * s.channels;
        img[at..at + s.channels].fill(255);
    });
    assert_eq!(salt.name(), "custom");
    assert_eq!(format!("{salt:?}"), r#"Custom { op: Custom("salt"), p: 1.0 }"#);
    assert_eq!(salt, salt.clone());
    let pipe = Pipeline::new(vec![salt.clone(), Op::hflip(0.5)], 3).unwrap();
    let run = |index| {
        let mut out = img.clone();
        pipe.apply(&mut out, s, 2, index).unwrap();
        out
    };
    assert_eq!(run(4), run(4));
    let places: std::collections::HashSet<usize> =
        (0..50).map(|i| run(i).chunks(3).position(|p| p == [255, 255, 255]).unwrap()).collect();
    assert!(places.len() > 20, "the closure draws from each sample's stream: {} places", places.len());
    assert!(serde_json::to_string(&salt).is_err(), "a closure has no TOML form");

    let jpeg = Pipeline::new(vec![Op::jpeg(40, 60)], 1).unwrap();
    let mut out = img.clone();
    jpeg.apply(&mut out, s, 0, 0).unwrap();
    assert_ne!(out, img);
    let config: AugmentConfig = toml::from_str(r#"ops = [{ op = "jpeg", quality = [70, 95] }]"#).unwrap();
    assert_eq!(config.ops, [Op::jpeg(70, 95)]);
    for bad in [Op::jpeg(0, 10), Op::jpeg(50, 40), Op::jpeg(90, 101)] {
        assert!(matches!(Pipeline::new(vec![bad], 0), Err(Error::InvalidOp { field: "quality", .. })));
    }
    assert!(matches!(cnnlab_augment::jpeg(&[0; 16], Shape::new(2, 2, 4), 50), Err(Error::InvalidArgument { .. })));
}
