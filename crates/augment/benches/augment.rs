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

/// The `[augment] ops` of one of the repository's configs (`rel` from the workspace
/// root): the recipe is written once, there.
fn config_ops(rel: &str) -> Vec<Op> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let config: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    config["augment"]["ops"].clone().try_into().unwrap_or_else(|e| panic!("{}: [augment] ops: {e}", path.display()))
}

fn recipes(c: &mut Criterion) {
    // Seed 002: rotate 10 degrees, zoom 10%, brightness 0.7..1.3, horizontal flip.
    let seed002 = config_ops("configs/pets/seed2-model4.toml");
    bench_recipe(c, "seed002_224x224", Shape { height: 224, width: 224, channels: 3 }, seed002);
    // Seed 003 / CIFAR: pad 4 and random crop, horizontal flip.
    let seed003 = config_ops("configs/cifar10/seed3-final.toml");
    bench_recipe(c, "pad4_crop_flip_32x32", Shape { height: 32, width: 32, channels: 3 }, seed003);
}

criterion_group!(benches, recipes);
criterion_main!(benches);
