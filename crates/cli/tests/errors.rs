//! Bad input as a new user meets it: a typo in a config key, a missing config, dataset
//! or pretrained weights, a truncated batch file, an augmentation value out of range,
//! a class with no test images: one line naming the file, line or key, and the exit
//! code that says which.

use crate::util::{assert_one_line_error, cnnlab, fashion_config, workspace};

#[test]
fn unknown_config_key_names_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let config = fashion_config(tmp.path(), "max_trian = 10");
    let text = std::fs::read_to_string(&config).unwrap();
    let line = text.lines().position(|l| l.starts_with("max_trian")).unwrap() + 1;
    let out = cnnlab(&["train", config.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, &format!("{}:{line}: unknown field `max_trian`", config.display()));
}

#[test]
fn missing_config_and_missing_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cnnlab(&["train", "configs/nope.toml"], tmp.path());
    assert_one_line_error(&out, 1, "reading config configs/nope.toml");

    // --out: a finished runs/cifar10/seed3-final in the checkout must not decide the outcome.
    let run = tmp.path().join("run");
    let out = cnnlab(
        &["-q", "train", "configs/cifar10/seed3-final.toml", "--out", run.to_str().unwrap()],
        &tmp.path().join("no-such-dir"),
    );
    assert_one_line_error(&out, 3, "dataset `cifar10` not found");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-dir/cifar10/cifar-10-batches-bin"));
}

#[test]
fn truncated_batch_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar10/cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let img = vec![9u8; 3072];
    let batch = cnnlab_data::encode_cifar_batch(&[(1, &img[..]), (2, &img[..])]);
    for i in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{i}.bin")), &batch).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), &batch[..5000]).unwrap();
    let run = tmp.path().join("run");
    let out = cnnlab(&["-q", "train", "configs/cifar10/seed3-final.toml", "--out", run.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "test_batch.bin: 5000 bytes is not a whole number of 3073-byte CIFAR-10 records");
}

/// An augmentation value out of range is a one-line `FILE:LINE: augment.ops[N].key`
/// error before any data is read (the data dir does not exist: reading would exit 3),
/// and leaves no run folder.
#[test]
fn bad_augment_values_name_file_line_and_op() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(workspace().join("configs/cifar10/seed3-final.toml")).unwrap();
    let text = text.replace("{ op = \"hflip\", p = 0.5 }", "{ op = \"hflip\", p = 2 }");
    let config = tmp.path().join("seed3-final.toml");
    std::fs::write(&config, &text).unwrap();
    let line = text.lines().position(|l| l.contains("op = \"hflip\", p = 2")).unwrap() + 1;
    let run = tmp.path().join("run");
    let out = cnnlab(&["train", config.to_str().unwrap(), "--out", run.to_str().unwrap()], &tmp.path().join("none"));
    assert_one_line_error(&out, 1, &format!("{}:{line}: augment.ops[1].p: ", config.display()));
    assert!(!run.exists(), "a refused run leaves no folder");
    let out = cnnlab(&["summary", config.to_str().unwrap()], &tmp.path().join("none"));
    assert_one_line_error(&out, 1, &format!("{}:{line}: augment.ops[1].p: ", config.display()));
}

/// A class whose only image went to training has no test support: the load warns,
/// naming it, instead of letting its F1 of 0 pull macro-F1 down without a word.
#[test]
fn a_class_without_test_images_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pics");
    std::fs::create_dir_all(root.join("cat")).unwrap();
    std::fs::create_dir_all(root.join("lynx")).unwrap();
    for i in 0..6 {
        let img = image::RgbImage::from_fn(12, 12, |x, y| image::Rgb([(x * 20) as u8, (y * 20) as u8, i * 40]));
        img.save(root.join("cat").join(format!("{i}.png"))).unwrap();
    }
    image::RgbImage::new(12, 12).save(root.join("lynx/only.png")).unwrap();
    let config = tmp.path().join("pics.toml");
    let text = format!(
        "[data]\ndataset = \"image-folder\"\npath = \"{}\"\nimage_size = 8\ntest_fraction = 0.3\n\n[model]\nlayers = [{{ type = \"flatten\" }}, {{ type = \"linear\" }}]\n",
        root.display()
    );
    std::fs::write(&config, text).unwrap();
    let run = tmp.path().join("run");
    let out = cnnlab(&["train", config.to_str().unwrap(), "--quick", "--out", run.to_str().unwrap()], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no test images of 1 class(es), lynx:"), "{stderr}");
}

/// `pretrained` weights that are not on the machine stop the run at once with exit
/// code 3 (as a missing dataset), in one line naming the file and how to get it.
#[test]
fn missing_pretrained_weights_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let resnet = cnnlab(
        &["-q", "train", "configs/pets/finetune-resnet18.toml", "--out", dir.path().join("r").to_str().unwrap()],
        dir.path(),
    );
    assert_one_line_error(&resnet, 3, "model.pretrained = \"weights/resnet18-f37072fd.pth\": no such file");
    let lite = cnnlab(
        &["-q", "train", "configs/pets/finetune-lite0.toml", "--out", dir.path().join("l").to_str().unwrap()],
        dir.path(),
    );
    assert_one_line_error(&lite, 3, "cargo xtask download efficientnet-lite0");
    assert!(!dir.path().join("l").exists() && !dir.path().join("r").exists(), "no run folder left behind");
}
