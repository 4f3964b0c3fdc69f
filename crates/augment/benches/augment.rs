//! Throughput of the two augmentation recipes the seeds use, one image at a time on
//! one thread (compare with `torchvision_ref.py` beside this file, run the same way).
//!
//! `cargo bench -p cnnlab-augment`

use cnnlab_augment::{Op, Pipeline, Shape};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn photo(shape: Shape) -> Vec<u8> {
    (0..shape.len()).map(|i| ((i * 31) ^ (i >> 7)) as u8).collect()
}

fn bench_recipe(c: &mut Criterion, name: &str, shape: Shape, ops: Vec<Op>) {
    let pipe = Pipeline::new(ops, 1).unwrap();
    let src = photo(shape);
    let mut img = src.clone();
    let mut group = c.benchmark_group("augment");
    group.throughput(Throughput::Elements(1));
    let mut index = 0u64;
    group.bench_function(name, |b| {
        b.iter(|| {
            img.copy_from_slice(&src);
            pipe.apply(&mut img, shape, 0, index).unwrap();
            index += 1;
        })
    });
    group.finish();
}

fn recipes(c: &mut Criterion) {
    // Seed 002 (configs/pets/seed2-model4.toml): rotate 10 degrees, zoom 10%,
    // brightness 0.7..1.3, horizontal flip.
    let seed002 = vec![Op::rotate(10.0), Op::zoom(0.1), Op::brightness(0.7, 1.3), Op::hflip(0.5)];
    bench_recipe(c, "seed002_224x224", Shape::new(224, 224, 3), seed002);
    // Seed 003 / CIFAR (configs/cifar10/seed3-final.toml): pad 4 and random crop,
    // horizontal flip.
    let seed003 = vec![Op::random_crop(4), Op::hflip(0.5)];
    bench_recipe(c, "pad4_crop_flip_32x32", Shape::new(32, 32, 3), seed003);
}

/// One op on a 224x224 RGB image, one image at a time (torchvision_ref.py times the
/// same ops with torchvision v2's functional API).
fn single_ops(c: &mut Criterion) {
    let shape = Shape::new(224, 224, 3);
    let src = photo(shape);
    let mut group = c.benchmark_group("op_224x224");
    group.throughput(Throughput::Elements(1));
    type InPlace = fn(&mut [u8], Shape) -> cnnlab_augment::Result<()>;
    let in_place: [(&str, InPlace); 10] = [
        ("hflip", cnnlab_augment::hflip),
        ("vflip", cnnlab_augment::vflip),
        ("grayscale", cnnlab_augment::grayscale),
        ("solarize", |img, s| cnnlab_augment::solarize(img, s, 128)),
        ("posterize", |img, s| cnnlab_augment::posterize(img, s, 4)),
        ("autocontrast", cnnlab_augment::autocontrast),
        ("equalize", cnnlab_augment::equalize),
        ("sharpness", |img, s| cnnlab_augment::sharpness(img, s, 2.0)),
        ("gaussian_blur_5", |img, s| cnnlab_augment::gaussian_blur(img, s, 5, 1.5)),
        ("rotate_zoom", |img, s| cnnlab_augment::rotate_zoom(img, s, 10.0, 1.1, cnnlab_augment::Fill::Constant)),
    ];
    let mut img = src.clone();
    for (name, op) in in_place {
        // The flips are their own inverse: no copy back, so the time is the flip's own
        // (torchvision writes a new tensor of the same size).
        let involution = name.ends_with("flip");
        group.bench_function(name, |b| {
            b.iter(|| {
                if !involution {
                    img.copy_from_slice(&src);
                }
                op(&mut img, shape).unwrap();
            })
        });
    }
    use cnnlab_augment::{Affine, Border, Interpolation};
    let warps: [(&str, InPlace); 3] = [
        ("affine_bilinear", |img, s| {
            let a = Affine { angle: 10.0, translate: [3.0, -2.0], scale: 1.1, shear: [5.0, 0.0], center: None };
            cnnlab_augment::affine(img, s, a, Interpolation::Bilinear, Border::Value(0))
        }),
        ("perspective", |img, s| {
            let start = [[0.0, 0.0], [223.0, 0.0], [223.0, 223.0], [0.0, 223.0]];
            let end = [[20.0, 10.0], [210.0, 5.0], [200.0, 215.0], [8.0, 220.0]];
            cnnlab_augment::perspective(img, s, start, end, Interpolation::Bilinear, Border::Value(0))
        }),
        ("color_jitter_fixed", |img, s| {
            cnnlab_augment::adjust_brightness(img, s, 1.2)?;
            cnnlab_augment::adjust_contrast(img, s, 0.8)?;
            cnnlab_augment::adjust_saturation(img, s, 1.3)?;
            cnnlab_augment::hue(img, s, 0.05)
        }),
    ];
    for (name, op) in warps {
        group.bench_function(name, |b| {
            b.iter(|| {
                img.copy_from_slice(&src);
                op(&mut img, shape).unwrap();
            })
        });
    }
    group.bench_function("hue", |b| {
        b.iter(|| {
            img.copy_from_slice(&src);
            cnnlab_augment::hue(&mut img, shape, 0.05).unwrap();
        })
    });
    group.bench_function("resize_to_112", |b| b.iter(|| cnnlab_augment::resize(&src, shape, 112, 112)));
    group.bench_function("resize_bicubic_to_112", |b| {
        b.iter(|| cnnlab_augment::resize_with(&src, shape, 112, 112, cnnlab_augment::Interpolation::Bicubic))
    });
    group.bench_function("center_crop_200", |b| b.iter(|| cnnlab_augment::center_crop(&src, shape, 200, 200)));
    group.finish();
}

/// The random ops and policies as one-op pipelines on 224x224 (torchvision_ref.py:
/// the v2 transform of the same name).
fn policies(c: &mut Criterion) {
    let shape = Shape::new(224, 224, 3);
    let ops = [
        ("random_erasing", Op::random_erasing().with_p(1.0)),
        ("color_jitter", Op::color_jitter(0.4, 0.4, 0.4, 0.1)),
        ("color_jitter_no_hue", Op::color_jitter(0.4, 0.4, 0.4, 0.0)),
        ("rand_augment", Op::rand_augment(2, 9)),
        ("trivial_augment_wide", Op::trivial_augment_wide()),
        ("aug_mix", Op::aug_mix()),
    ];
    for (name, op) in ops {
        bench_recipe(c, &format!("{name}_224x224"), shape, vec![op]);
    }
}

/// torchvision's ImageNet training crop on a 375x500 photo (the size of most Pets and
/// ImageNet JPEGs): `RandomResizedCrop(224)` as a pipeline step, a new buffer out.
fn imagenet_crop(c: &mut Criterion) {
    let shape = Shape::new(375, 500, 3);
    let src = photo(shape);
    let mut group = c.benchmark_group("augment");
    group.throughput(Throughput::Elements(1));
    let pipe = Pipeline::builder().random_resized_crop(224).seed(1).build().unwrap();
    let mut index = 0u64;
    group.bench_function("random_resized_crop_224_from_375x500", |b| {
        b.iter(|| {
            index += 1;
            pipe.transform(&src, shape, 0, index).unwrap()
        })
    });
    let eval = Pipeline::builder().resize(256).center_crop(224).build().unwrap();
    group.bench_function("resize_256_center_crop_224_from_375x500", |b| b.iter(|| eval.transform(&src, shape, 0, 0)));
    group.finish();
}

criterion_group!(benches, recipes, single_ops, policies, imagenet_crop);
criterion_main!(benches);
