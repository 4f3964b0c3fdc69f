//! The commands that need no tensors (`metrics`, `data stats`, `--help`): what they
//! print, their errors, and that they never load libtorch.

use std::process::Command;

use crate::util::{assert_ok, assert_one_line_error, cnnlab, command, workspace};

#[test]
fn metrics_command_reads_names_scores_and_reports_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("pred.csv");
    std::fs::write(
        &csv,
        "y_true,p_cat,p_dog,p_fox\ncat,0.7,0.2,0.1\ndog,0.1,0.6,0.3\nfox,0.5,0.1,0.4\ncat,0.2,0.5,0.3\n",
    )
    .unwrap();
    let out = cnnlab(&["metrics", csv.to_str().unwrap(), "--json"], tmp.path());
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // y_pred is the argmax: cat, dog, cat, dog -> 2 of 4 right.
    assert_eq!(json["accuracy"], 0.5);
    assert_eq!(json["confusion_matrix"], serde_json::json!([[1, 1, 0], [0, 1, 0], [1, 0, 0]]));
    assert_eq!(json["per_class"][2]["class"], "fox");
    let expected = cnnlab_metrics::Report::new(
        &[0, 1, 2, 0],
        &[0, 1, 0, 1],
        Some(&[0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0.5, 0.1, 0.4, 0.2, 0.5, 0.3][..]),
        &["cat", "dog", "fox"],
    )
    .unwrap();
    assert_eq!(json["roc_auc_ovr_macro"].as_f64().unwrap(), expected.roc_auc_ovr_macro.unwrap());
    assert_eq!(json["log_loss"].as_f64().unwrap(), expected.log_loss.unwrap());

    std::fs::write(&csv, "y_true,y_pred\n0,1\n1,1\n").unwrap();
    let out = cnnlab(&["metrics", csv.to_str().unwrap()], tmp.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("    accuracy                           0.50         2"), "{text}");
    // Scores of a single true class: AUC cannot be computed, and the reason is that.
    std::fs::write(&csv, "y_true,p_a,p_b\na,0.9,0.1\na,0.4,0.6\n").unwrap();
    let out = cnnlab(&["metrics", csv.to_str().unwrap()], tmp.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ROC AUC (ovr macro) n/a (y_true holds a single class"), "{text}");

    for (body, needle) in [
        ("y_pred\n0\n", "missing column `y_true`"),
        ("y_true,p_a,p_b\na,0.5,zero\n", "pred.csv:2: p_b: `zero` is not a number"),
        ("y_true,y_pred,p_a,p_b\na,b,0.1,0.9\nb,c,0.3,0.7\n", "pred.csv:3: unknown class `c` in y_pred"),
        ("y_true,y_pred\n0,1\n1\n", "pred.csv: malformed CSV"),
        ("", "pred.csv: the file is empty"),
        ("y_true,p_cat,p_cat\ncat,0.5,0.5\n", "column `p_cat` appears twice"),
        ("y_true,p_a,p_b\na,-0.5,1.5\n", "pred.csv:2: p_a: `-0.5` is not a probability in [0, 1]"),
        ("y_true,p_a,p_b\na,0.9,0.8\n", "pred.csv:2: the p_<class> values sum to 1.7000, not 1"),
    ] {
        std::fs::write(&csv, body).unwrap();
        let out = cnnlab(&["metrics", csv.to_str().unwrap()], tmp.path());
        assert_one_line_error(&out, 1, needle);
    }
}

#[test]
fn data_stats_counts_plots_and_reports_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pics");
    // Tiny valid PNGs written by hand-rolled encoding would be long; export a real
    // (generated) IDX dataset through the library instead.
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for i in 0..30u8 {
        pixels.extend(std::iter::repeat_n(i * 8, 16));
        labels.push(if i < 24 { 0 } else { 1 });
    }
    let shape = cnnlab_data::ImageShape { channels: 1, height: 4, width: 4 };
    let data = cnnlab_data::Dataset::new(shape, pixels, labels, vec!["common".into(), "rare".into()]).unwrap();
    cnnlab_data::export_image_folder(&data, &root).unwrap();
    std::fs::write(root.join("rare/broken.jpg"), b"").unwrap();
    let png = tmp.path().join("dist.png");
    let out = cnnlab(&["data", "stats", root.to_str().unwrap(), "--plot", png.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("30 images in 2 classes"), "{text}");
    let row = |class: &str| {
        text.lines().find(|l| l.trim_start().starts_with(class)).unwrap().split_whitespace().collect::<Vec<_>>()
    };
    assert_eq!(row("common"), ["common", "24", "80.0%"]);
    assert_eq!(row("rare"), ["rare", "6", "20.0%"]);
    assert!(text.contains("imbalance ratio (largest / smallest class): 4.0"), "{text}");
    assert!(text.contains("unreadable files: 1") && text.contains("broken.jpg: empty file"), "{text}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    assert_eq!(width, 900);
}

/// `cnnlab --help`, `metrics`, `compare`, `status`, `report` and `data stats` never
/// load libtorch (glibc's loader lists every library it opens under LD_DEBUG=libs);
/// `info` is handed to `cnnlab-torch`, which does, so the check can fail.
#[test]
fn commands_without_tensors_do_not_load_libtorch() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("p.csv");
    std::fs::write(&csv, "y_true,y_pred\n0,1\n1,1\n").unwrap();
    let loads = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cnnlab"))
            .args(args)
            .env("LD_DEBUG", "libs")
            .env_remove("LD_LIBRARY_PATH")
            .current_dir(workspace())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr.contains("libtorch_cpu"))
    };
    std::fs::create_dir(tmp.path().join("cat")).unwrap();
    std::fs::write(tmp.path().join("cat/not-an-image.jpg"), "x").unwrap();
    let csv = csv.to_str().unwrap();
    let dir = tmp.path().to_str().unwrap();
    assert_eq!(loads(&["--help"]), (Some(0), false));
    assert_eq!(loads(&["metrics", csv]), (Some(0), false));
    assert_eq!(loads(&["data", "stats", dir]), (Some(0), false));
    assert_eq!(loads(&["metrics", "--nonsense"]), (Some(2), false));
    assert_eq!(loads(&["status", dir]), (Some(0), false));
    assert_eq!(loads(&["compare", csv, csv]), (Some(0), false));
    // A finished run (the golden fixture's recorded files and config): the report reads
    // its config.toml, metrics, history and predictions, draws its plots and writes both
    // files, all without libtorch.
    let fixture = workspace().join("fixtures/golden");
    let run = tmp.path().join("runs/shapes/seed3-final");
    std::fs::create_dir_all(&run).unwrap();
    for file in ["metrics.json", "history.csv", "predictions.csv"] {
        std::fs::copy(fixture.join("before/seed3-final").join(file), run.join(file)).unwrap();
    }
    std::fs::copy(fixture.join("seed3-final.toml"), run.join("config.toml")).unwrap();
    let runs = tmp.path().join("runs");
    let runs = runs.to_str().unwrap();
    assert_eq!(loads(&["report", runs, "--comparisons", "configs/comparisons.toml"]), (Some(0), false));
    let report = std::fs::read_to_string(tmp.path().join("runs/REPORT.md")).unwrap();
    assert!(report.contains("| shapes/seed3-final |"), "{report}");
    assert!(run.join("plots/curves.png").is_file());
    assert_eq!(loads(&["info"]), (Some(0), true));
}

/// `cnnlab status RUN | head -1`: a reader that goes away ends the command quietly
/// (as `cat`), not with a panic on the broken pipe (exit 101 and a backtrace). The
/// pipe's read end is closed before the command writes, so its first line fails.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("p.csv");
    std::fs::write(&csv, "y_true,y_pred\n0,1\n1,1\n").unwrap();
    std::fs::create_dir(tmp.path().join("cat")).unwrap();
    std::fs::write(tmp.path().join("cat/not-an-image.jpg"), "x").unwrap();
    let dir = tmp.path().to_str().unwrap();
    for args in [vec!["metrics", csv.to_str().unwrap()], vec!["status", dir], vec!["data", "stats", dir]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = command(tmp.path()).args(&args).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        let quiet = out.status.success() || std::os::unix::process::ExitStatusExt::signal(&out.status) == Some(13);
        assert!(quiet, "{args:?}: {:?} {stderr}", out.status);
    }
}
