//! Inference images/s of a finished run with cnnlab's own predictor (what `cnnlab
//! predict` runs), batches of 64 random images at the run's input size, on the
//! threads given; compare with `benches/onnx_rate.py` on the run's exported
//! model.onnx, run the same way one after the other.
//!
//!     cargo run --release -p cnnlab-train --example predict_rate -- RUN [THREADS] [SECONDS]
//!
//! Prints one JSON object: `{"images_per_sec": ..., "batch": 64, "threads": ...}`.

use std::time::Instant;

use cnnlab_train::{Predictor, RunDir, Weights};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).expect("usage: predict_rate RUN [THREADS] [SECONDS]"));
    let threads: i32 = args.get(2).map_or(2, |t| t.parse().expect("THREADS is a number"));
    let seconds: f64 = args.get(3).map_or(5.0, |s| s.parse().expect("SECONDS is a number"));
    tch::set_num_threads(threads);
    let run = RunDir::new(&dir);
    let config: toml::Table = toml::from_str(&std::fs::read_to_string(dir.join("config.toml")).unwrap()).unwrap();
    let model: cnnlab_models::ModelConfig = config["model"].clone().try_into().unwrap();
    let (shape, classes) = (run.read_shape().unwrap(), run.read_classes().unwrap());
    let predictor = Predictor::load(&dir, &model, shape, classes, Weights::Last).unwrap();
    let batch = 64;
    let pixels: Vec<u8> = (0..batch * shape.len()).map(|i| ((i * 2_654_435_761) >> 13) as u8).collect();
    predictor.predict(&pixels).unwrap();
    let (start, mut images) = (Instant::now(), 0);
    while start.elapsed().as_secs_f64() < seconds {
        predictor.predict(&pixels).unwrap();
        images += batch;
    }
    let rate = images as f64 / start.elapsed().as_secs_f64();
    println!("{{\"images_per_sec\": {rate:.1}, \"batch\": {batch}, \"threads\": {threads}}}");
}
