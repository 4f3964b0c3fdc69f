//! TensorBoard's own reader reads a run's event file; the run shows its top losses.

use std::process::Command;

use crate::util::{assert_ok, cnnlab, workspace};

/// Every run writes `tb/events.out.tfevents.*`: TensorBoard's own reader
/// (`read_tensorboard.py`, tensorboard from PyPI in .venv) returns each epoch's scalars
/// exactly as history.csv has them (as float32, TensorBoard's scalar type) at step =
/// epoch, the test confusion matrix and top-loss grid as images at the last epoch and
/// the config as text. The run also has most_confused.csv and the top losses (PNG + CSV
/// ranked by -ln p(true) from predictions.csv).
#[test]
fn tensorboard_reader_returns_the_history_and_the_run_shows_its_top_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("tb.toml");
    let text = std::fs::read_to_string(workspace().join("configs/shapes/seed3-final.toml")).unwrap();
    std::fs::write(&config, text.replace("val_fraction = 0.1", "val_fraction = 0.1\nmax_train = 300\nmax_test = 80"))
        .unwrap();
    let run = tmp.path().join("run");
    let out =
        cnnlab(&["-q", "train", config.to_str().unwrap(), "--epochs", "2", "--out", run.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let events: Vec<_> = std::fs::read_dir(run.join("tb")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(events.len(), 1, "one event file: {events:?}");
    assert!(events[0].to_string_lossy().starts_with("events.out.tfevents."), "{events:?}");

    let read = Command::new(workspace().join(".venv/bin/python"))
        .arg(workspace().join("crates/cli/tests/read_tensorboard.py"))
        .arg(run.join("tb"))
        .output()
        .expect(".venv's python runs (cargo xtask setup)");
    assert!(
        read.status.success(),
        "read_tensorboard.py failed (tensorboard in .venv: `cargo xtask ci` installs it): {}",
        String::from_utf8_lossy(&read.stderr)
    );
    let board: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();

    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let mut lines = history.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(rows.len(), 2);
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let tags = [
        ("loss/train", "train_loss"),
        ("loss/val", "val_loss"),
        ("accuracy/train", "train_acc"),
        ("accuracy/val", "val_acc"),
        ("f1_macro/val", "val_f1"),
        ("lr", "lr"),
        ("images_per_sec", "images_per_sec"),
    ];
    for (tag, name) in tags {
        let points = board["scalars"][tag].as_array().unwrap_or_else(|| panic!("no scalar `{tag}`: {board}"));
        assert_eq!(points.len(), rows.len(), "{tag}");
        for (point, row) in points.iter().zip(&rows) {
            assert_eq!(point[0].as_f64().unwrap(), row[column("epoch")], "{tag}: step is the epoch");
            // TensorBoard keeps float32 (serde_json's f64 parse may be 1 ulp off; as f32 it is exact).
            assert_eq!(point[1].as_f64().unwrap() as f32, row[column(name)] as f32, "{tag} at epoch {}", row[0]);
        }
    }
    let image = &board["images"]["confusion_matrix/test"][0];
    assert_eq!(image[0].as_f64(), Some(2.0), "the confusion matrix at the last epoch: {board}");
    assert!(image[1].as_f64().unwrap() > 100.0 && image[2].as_f64().unwrap() > 100.0, "{image}");
    let config_text = board["text"]["config"].as_str().unwrap_or_default();
    assert!(config_text.contains("[train]") && config_text.contains("max_train = 300"), "{config_text}");
    let grid = &board["images"]["top_losses/test"][0];
    assert_eq!(grid[0].as_f64(), Some(2.0), "{board}");

    let png = std::fs::read(run.join("plots/top_losses.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    let top = std::fs::read_to_string(run.join("top_losses.csv")).unwrap();
    let losses: Vec<f64> = top.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(losses.len(), 16, "{top}");
    assert!(losses.windows(2).all(|w| w[0] >= w[1]), "highest loss first: {top}");
    // The first row is the example with the lowest p(true) in predictions.csv.
    let predictions = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    let mut lines = predictions.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let worst = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let p_true: f64 = f[header.iter().position(|h| *h == format!("p_{}", f[1])).unwrap()].parse().unwrap();
            -p_true.max(1e-7).ln()
        })
        .fold(f64::NEG_INFINITY, f64::max);
    assert!((losses[0] - worst).abs() < 1e-4, "{} vs {worst}", losses[0]);
    let confused = std::fs::read_to_string(run.join("most_confused.csv")).unwrap();
    assert_eq!(confused.lines().next(), Some("true,predicted,count,share"), "{confused}");
}
