//! End to end on real data: one epoch on the real Fashion-MNIST learns.

use std::path::Path;

use crate::util::{assert_ok, cnnlab, fashion_config};

/// End to end on real data: one epoch on 10,000 Fashion-MNIST images (Debian's
/// `dataset-fashion-mnist`, which `cargo xtask ci` installs) must pass 0.75.
#[test]
fn one_epoch_on_real_fashion_mnist_learns() {
    assert!(
        Path::new(cnnlab_data::FASHION_MNIST_SYSTEM_DIR).exists(),
        "this test needs the real Fashion-MNIST: apt-get install dataset-fashion-mnist (cargo xtask ci does it)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let config = fashion_config(tmp.path(), "max_train = 10000");
    let run = tmp.path().join("run");
    let out =
        cnnlab(&["-q", "train", config.to_str().unwrap(), "--epochs", "1", "--out", run.to_str().unwrap()], tmp.path());
    assert_ok(&out);

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let accuracy = metrics["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.75, "test accuracy {accuracy}");
    assert_eq!(metrics["n_samples"], 10_000);

    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert!(history.starts_with("epoch,train_loss,train_acc,val_loss,val_acc,val_f1,lr,seconds,images_per_sec\n1,"));
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(resolved.contains("max_train = 10000") && resolved.contains("epochs = 1"), "{resolved}");
}
