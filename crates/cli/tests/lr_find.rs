//! `cnnlab lr-find`: fastai's learning-rate range test.

use crate::util::{assert_ok, assert_one_line_error, cnnlab, workspace};

/// `cnnlab lr-find` writes its plot and CSV (an exponential ramp) and prints fastai's
/// suggestions; a reversed range is one line.
#[test]
fn lr_find_writes_the_plot_and_suggests() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("lr");
    let config = workspace().join("configs/shapes/seed3-final.toml");
    let out = cnnlab(
        &["-q", "lr-find", config.to_str().unwrap(), "--steps", "40", "--end", "1", "--out", out_dir.to_str().unwrap()],
        tmp.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ok(&out);
    assert!(stdout.contains("suggested: valley "), "{stdout}");
    let png = std::fs::read(out_dir.join("lr_find.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    let csv = std::fs::read_to_string(out_dir.join("lr_find.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("step,lr,loss,smoothed_loss"));
    let lrs: Vec<f64> = lines.map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert!(!lrs.is_empty() && lrs.len() <= 40, "{csv}");
    assert!((lrs[0] - 1e-7).abs() < 1e-15, "{csv}");
    assert!(lrs.windows(2).all(|w| (w[1] / w[0] - 1e7f64.powf(1.0 / 40.0)).abs() < 1e-9), "{csv}");

    let out = cnnlab(&["lr-find", config.to_str().unwrap(), "--start", "1", "--end", "0.1"], tmp.path());
    assert_one_line_error(&out, 1, "--start 1 and --end 0.1: needs 0 < start < end");
}
