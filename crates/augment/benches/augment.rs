//! Throughput of the two augmentation recipes the seeds use, one image at a time on
//! one thread (compare with `torchvision_ref.py` beside this file, run the same way).
//!
//! `cargo bench -p cnnlab-augment`

use cnnlab_augment::{Fill, Op, Pipeline, Shape};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn photo(shape: Shape) -> Vec<u8> {
    (0..shape.len()).map(|i| ((i * 31) ^ (i >> 7)) as u8).collect()
}

fn bench_recipe(c: &mut Criterion, name: &str, shape: Shape, ops: Vec<Op>) {
    let pipe = Pipeline::new(ops, 1);
    let src = photo(shape);
    let mut img = src.clone();
    let mut group = c.benchmark_group("augment");
    group.throughput(Throughput::Elements(1));
    let mut index = 0u64;
    group.bench_function(name, |b| {
        b.iter(|| {
            img.copy_from_slice(&src);
            pipe.apply(&mut img, shape, 0, index);
            index += 1;
        })
    });
    group.finish();
}

fn recipes(c: &mut Criterion) {
    // Seed 002: rotate 10 degrees, zoom 10%, brightness 0.7..1.3, horizontal flip.
    bench_recipe(
        c,
        "seed002_224x224",
        Shape { height: 224, width: 224, channels: 3 },
        vec![
            Op::Rotate { degrees: 10.0, fill: Fill::Constant, p: 1.0 },
            Op::Zoom { range: 0.1, fill: Fill::Constant, p: 1.0 },
            Op::Brightness { min: 0.7, max: 1.3, p: 1.0 },
            Op::Hflip { p: 0.5 },
        ],
    );
    // Seed 003 / CIFAR: pad 4 and random crop, horizontal flip.
    bench_recipe(
        c,
        "pad4_crop_flip_32x32",
        Shape { height: 32, width: 32, channels: 3 },
        vec![Op::RandomCrop { padding: 4, fill: Fill::Constant, p: 1.0 }, Op::Hflip { p: 0.5 }],
    );
}

criterion_group!(benches, recipes);
criterion_main!(benches);
