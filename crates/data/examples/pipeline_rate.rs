//! The data pipeline alone, as `cargo xtask bench` measures it: JPEG decode + resize
//! (cnnlab-data's `decode`, as the cache builder uses it) + augmentation
//! (cnnlab-augment), every file in parallel on rayon's pool (one thread per core).
//!
//! `cargo run --release -p cnnlab-data --example pipeline_rate -- pets224|cifar32 DIR [LIMIT]`
//! prints one JSON line with images_per_sec. The torchvision counterpart is
//! `xtask/bench/torch_ref.py pipeline`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cnnlab_augment::{Op, Pipeline};
use cnnlab_data::folder::decode;
use cnnlab_data::ImageShape;
use rayon::prelude::*;

fn list(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list(&path, out)?;
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg")) {
            out.push(path);
        }
    }
    Ok(())
}

/// The `[augment] ops` of one of the repository's configs (`rel` from the workspace
/// root): the recipe is written once, there.
fn config_ops(rel: &str) -> Vec<Op> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let config: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    config["augment"]["ops"].clone().try_into().unwrap_or_else(|e| panic!("{}: [augment] ops: {e}", path.display()))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(task), Some(dir)) = (args.first(), args.get(1)) else {
        eprintln!("usage: pipeline_rate pets224|cifar32 DIR [LIMIT]");
        std::process::exit(2);
    };
    let (shape, ops) = match task.as_str() {
        // Seed 002's augmentation at 224x224, as configs/pets/seed2-model4.toml has it.
        "pets224" => {
            (ImageShape { channels: 3, height: 224, width: 224 }, config_ops("configs/pets/seed2-model4.toml"))
        }
        // Seed 003's pad-4 crop and flip at 32x32.
        "cifar32" => {
            (ImageShape { channels: 3, height: 32, width: 32 }, config_ops("configs/cifar10/seed3-final.toml"))
        }
        other => {
            eprintln!("unknown task {other}");
            std::process::exit(2);
        }
    };
    let mut files = Vec::new();
    if let Err(e) = list(Path::new(dir), &mut files) {
        eprintln!("{dir}: {e}");
        std::process::exit(1);
    }
    files.sort();
    if let Some(limit) = args.get(2).and_then(|l| l.parse::<usize>().ok()) {
        // An even spread over the sorted list, as the torchvision script takes them.
        let step = (files.len() / limit.max(1)).max(1);
        files = files.into_iter().step_by(step).take(limit).collect();
    }
    let pipeline = Pipeline::new(ops, 0).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    let start = Instant::now();
    let decoded: usize = files
        .par_iter()
        .enumerate()
        .map(|(i, f)| match decode(f, shape) {
            Ok((mut img, _)) => match pipeline.apply(&mut img, shape, 0, i as u64) {
                Ok(()) => {
                    std::hint::black_box(&img);
                    1
                }
                Err(e) => {
                    eprintln!("{}: {e}", f.display());
                    0
                }
            },
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                0
            }
        })
        .sum();
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"task\": \"{task}\", \"images\": {decoded}, \"seconds\": {seconds}, \"images_per_sec\": {}, \"threads\": {}}}",
        decoded as f64 / seconds,
        rayon::current_num_threads()
    );
}
