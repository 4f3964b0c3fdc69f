//! `cnnlab explain` (Grad-CAM) against where the figures were drawn and against PyTorch.

use std::process::Command;

use crate::util::{assert_ok, assert_one_line_error, cnnlab, workspace};

/// `cnnlab explain` on a shapes run: the Grad-CAM of 20 test circles peaks inside the
/// drawn circle for at least 16 (the generator says where it drew each), the map equals
/// the PyTorch hooks reference (crates/cli/tests/gradcam_ref.py) to 1e-4, and bad input
/// (a layer out of range or without feature maps, a file that is not an image, a
/// network without a convolution) is one line and exit 1.
#[test]
fn explain_peaks_inside_the_circles_and_matches_pytorch() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("shapes.toml");
    std::fs::copy(workspace().join("configs/shapes/seed3-final.toml"), &config).unwrap();
    let run = tmp.path().join("run");
    // 8 epochs (test accuracy ~0.8): 18-19 of 20 peaks inside at the default layer.
    let out =
        cnnlab(&["-q", "train", config.to_str().unwrap(), "--epochs", "8", "--out", run.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    assert!(run.join("plots/gradcam.png").is_file(), "the run draws its Grad-CAM grid");

    // The test split is the generator's stream `seed ^ SHAPES_TEST_STREAM` (seed 0).
    let seed = cnnlab_data::SHAPES_TEST_STREAM;
    let shape = cnnlab_data::ImageShape { channels: 3, height: 32, width: 32 };
    let test = cnnlab_data::generate_shapes(shape, 25, seed).unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let circles: Vec<usize> = (0..test.len()).filter(|&i| test.labels[i] == 0).take(20).collect();
    assert_eq!(circles.len(), 20);
    let mut paths = vec![];
    for &i in &circles {
        let path = images.join(format!("circle-{i:03}.png"));
        image::save_buffer(&path, test.image(i), 32, 32, image::ColorType::Rgb8).unwrap();
        paths.push(path.to_str().unwrap().to_owned());
    }
    let maps = tmp.path().join("explain");
    let mut args = vec!["explain", "--run", run.to_str().unwrap(), "--out", maps.to_str().unwrap()];
    args.extend(paths.iter().map(String::as_str));
    let out = cnnlab(&args, tmp.path());
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 20, "{stdout}");
    // The last convolution with its batch norm and ReLU: Conv2d-9, BatchNorm2d-10, ReLU-11.
    assert!(stdout.lines().all(|l| l.contains("(ReLU-11)")), "the last convolution's block by default: {stdout}");
    let mut inside = 0;
    for &i in &circles {
        let (dims, map) = cnnlab_cli::inspect::read_npy(&maps.join(format!("circle-{i:03}.gradcam.npy"))).unwrap();
        assert_eq!(dims, [32, 32]);
        assert!(map.iter().all(|v| (0.0..=1.0).contains(v)), "scaled to [0, 1]");
        let at = map.iter().enumerate().fold(0, |b, (k, &v)| if v > map[b] { k } else { b });
        let (x, y) = ((at % 32) as f32, (at / 32) as f32);
        let f = cnnlab_data::shapes_figure(seed, i, 32);
        assert_eq!(f.class, 0);
        if (x - f.x).powi(2) + (y - f.y).powi(2) <= f.radius.powi(2) {
            inside += 1;
        }
        assert!(maps.join(format!("circle-{i:03}.gradcam.png")).is_file());
    }
    assert!(inside >= 16, "{inside} of 20 Grad-CAM peaks inside the circle\n{stdout}");

    // The PyTorch reference on the first image, for the class `ring`, at the default
    // layer (11), the last convolution itself (9) and the second one (5).
    for layer in [11, 9, 5] {
        let ours = tmp.path().join(format!("layer{layer}"));
        let out = cnnlab(
            &["explain", "--run", run.to_str().unwrap(), "--layer", &layer.to_string(), "--class", "ring"]
                .into_iter()
                .chain(["--out", ours.to_str().unwrap(), &paths[0]])
                .collect::<Vec<_>>(),
            tmp.path(),
        );
        assert_ok(&out);
        let reference = Command::new(workspace().join(".venv/bin/python"))
            .arg(workspace().join("crates/cli/tests/gradcam_ref.py"))
            .args([run.to_str().unwrap(), &paths[0], &layer.to_string(), "3"])
            .output()
            .expect(".venv's python runs (cargo xtask setup)");
        assert_ok(&reference);
        let reference: serde_json::Value = serde_json::from_slice(&reference.stdout).unwrap();
        let (_, map) =
            cnnlab_cli::inspect::read_npy(&ours.join(format!("circle-{:03}.gradcam.npy", circles[0]))).unwrap();
        let theirs: Vec<f64> = reference["map"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(theirs.len(), map.len());
        let worst = map.iter().zip(&theirs).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-4, "layer {layer}: Grad-CAM differs from PyTorch's by {worst}");
    }

    // Bad input: one line each, exit 1.
    let run_arg = run.to_str().unwrap();
    let out = cnnlab(&["explain", "--run", run_arg, "--layer", "40", &paths[0]], tmp.path());
    assert_one_line_error(&out, 1, "--layer 40: the network has layers 1 to 16");
    let out = cnnlab(&["explain", "--run", run_arg, "--layer", "14", &paths[0]], tmp.path());
    assert_one_line_error(&out, 1, "Linear-14 gives flat features");
    let fake = images.join("notes.png");
    std::fs::write(&fake, "not an image").unwrap();
    // An unreadable image among good ones is named; the others are explained (as
    // `predict` classifies them), and the exit code says something failed.
    let out = cnnlab(&["explain", "--run", run_arg, fake.to_str().unwrap(), &paths[0]], tmp.path());
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.lines().count() == 1 && stdout.starts_with(&paths[0]), "{stdout}");
    assert!(stderr.contains("notes.png: ") && stderr.contains("1 of 2 images could not be read"), "{stderr}");
    let out = cnnlab(&["explain", "--run", run_arg, "--class", "hexagon", &paths[0]], tmp.path());
    assert_one_line_error(&out, 1, "--class hexagon: not one of the run's classes");

    let mlp = tmp.path().join("mlp.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let start = text.find("layers = [").unwrap();
    let end = start + text[start..].find("\n]\n").unwrap() + 3;
    let mut text = text.replace("val_fraction = 0.1", "val_fraction = 0.1\nmax_train = 200\nmax_test = 40");
    let (start, end) = (
        start + text.len() - std::fs::read_to_string(&config).unwrap().len(),
        end + text.len() - std::fs::read_to_string(&config).unwrap().len(),
    );
    text.replace_range(start..end, "layers = [{ type = \"flatten\" }, { type = \"linear\" }]\n");
    std::fs::write(&mlp, text).unwrap();
    let mlp_run = tmp.path().join("mlp");
    let out = cnnlab(
        &["-q", "train", mlp.to_str().unwrap(), "--epochs", "1", "--out", mlp_run.to_str().unwrap()],
        tmp.path(),
    );
    assert_ok(&out);
    assert!(!mlp_run.join("plots/gradcam.png").exists(), "no Grad-CAM grid without a convolution");
    let out = cnnlab(&["explain", "--run", mlp_run.to_str().unwrap(), &paths[0]], tmp.path());
    assert_one_line_error(&out, 1, "the network has no convolution");
}
