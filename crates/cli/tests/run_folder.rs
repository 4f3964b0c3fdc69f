//! A run folder has one owner: a finished run is not trained over without --force, a
//! second training while one runs is refused naming its pid, a full disk is one plain
//! line that leaves no temporary file (so --resume goes on), and a run that fails
//! before training leaves no folder.

use std::time::{Duration, Instant};

use crate::util::{assert_ok, assert_one_line_error, cnnlab, command, small_shapes_config, workspace};

/// The shapes config on 300 images in a new temporary folder.
fn small() -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_shapes_config(tmp.path(), "small.toml", 300, None);
    let config = config.to_str().unwrap().to_owned();
    (tmp, config)
}

/// A finished run is not trained over: refused without --force (naming --force and
/// --resume, nothing replaced), left alone with --if-unfinished (exit 5, what
/// train-all passes), retrained with --force.
#[test]
fn a_finished_run_is_trained_over_only_with_force() {
    let (tmp, cfg) = small();
    let run = tmp.path().join("run");
    let out = run.to_str().unwrap();
    assert_ok(&cnnlab(&["-q", "train", &cfg, "--epochs", "1", "--out", out], tmp.path()));
    let first = std::fs::read_to_string(run.join("history.csv")).unwrap();

    let refused = cnnlab(&["-q", "train", &cfg, "--epochs", "2", "--out", out], tmp.path());
    assert_one_line_error(&refused, 1, "holds a finished run (1 epochs, test accuracy 0.");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--force") && stderr.contains("--resume"), "{stderr}");
    assert_eq!(std::fs::read_to_string(run.join("history.csv")).unwrap(), first, "nothing was replaced");
    // What train-all passes: a run another process finished meanwhile is left alone.
    for args in [&["-q", "train", "--resume", out][..], &["-q", "train", &cfg, "--out", out][..]] {
        let left = cnnlab(&[args, &["--if-unfinished"]].concat(), tmp.path());
        let stderr = String::from_utf8_lossy(&left.stderr);
        assert_eq!(left.status.code(), Some(5), "{stderr}");
        assert_eq!(stderr.trim(), format!("{out}: finished already, nothing to do"));
    }
    assert_eq!(std::fs::read_to_string(run.join("history.csv")).unwrap(), first);
    assert_ok(&cnnlab(&["-q", "train", &cfg, "--epochs", "2", "--out", out, "--force"], tmp.path()));
    assert_eq!(std::fs::read_to_string(run.join("history.csv")).unwrap().lines().count(), 3, "header + 2 epochs");
    let status = cnnlab(&["status", "--json", out], tmp.path());
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!((v["state"].as_str(), v["epochs_done"].as_u64()), (Some("finished"), Some(2)), "{v}");
    // Several folders: one that does not exist and one whose metrics.json is garbage
    // are an error line each; the others are still listed, and the exit code is 1.
    let (missing, broken) = (tmp.path().join("nonexistent"), tmp.path().join("broken"));
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("metrics.json"), "{ garbage").unwrap();
    let args = ["status", missing.to_str().unwrap(), broken.to_str().unwrap(), out];
    let status = cnnlab(&args, tmp.path());
    let (stdout, stderr) = (String::from_utf8_lossy(&status.stdout), String::from_utf8_lossy(&status.stderr));
    assert_eq!(status.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("{out}: finished: 2 epochs, test accuracy {:.4}", v["accuracy"].as_f64().unwrap())
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines[0].starts_with(&format!("error: {}: no such folder", missing.display())), "{stderr}");
    assert!(lines[1].starts_with(&format!("error: {}: ", broken.display())) && lines[1].contains("metrics.json"));
    assert_eq!(lines[2], "error: 2 of 3 folders could not be read (named above)");
}

/// Two trainings at once: the second is refused (exit 4, naming the first's pid)
/// while the first holds the lock; a killed process's lock is taken over.
#[test]
fn a_second_training_into_a_busy_folder_is_refused() {
    let (tmp, cfg) = small();
    let busy = tmp.path().join("busy");
    let big = small_shapes_config(tmp.path(), "big.toml", 4000, None);
    let mut first = command(tmp.path())
        .args(["-q", "train", big.to_str().unwrap(), "--epochs", "3", "--out", busy.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !busy.join(".lock").exists() {
        assert!(Instant::now() < deadline, "the first training never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Exit code 4: train-all (and two shards on one runs/ folder) skip a run in use.
    let second = cnnlab(&["-q", "train", &cfg, "--force", "--out", busy.to_str().unwrap()], tmp.path());
    assert_one_line_error(&second, 4, &format!("is in use by process {}", first.id()));
    first.kill().unwrap();
    first.wait().unwrap();
    // Killed, its lock stays behind; it belonged to a dead process and is taken over.
    assert!(busy.join(".lock").exists());
    assert_ok(&cnnlab(&["-q", "train", &cfg, "--force", "--epochs", "1", "--out", busy.to_str().unwrap()], tmp.path()));
    assert!(!busy.join(".lock").exists(), "the lock goes with the process");

    // A run killed before its first checkpoint left its config: still a run, which a
    // new training does not take without --force, and which --resume starts over.
    let early = tmp.path().join("early");
    std::fs::create_dir(&early).unwrap();
    std::fs::copy(busy.join("config.toml"), early.join("config.toml")).unwrap();
    let early_s = early.to_str().unwrap();
    let status = cnnlab(&["status", early_s], tmp.path());
    assert_eq!(
        String::from_utf8_lossy(&status.stdout).trim(),
        format!("{early_s}: unfinished after 0 epochs (cnnlab train --resume {early_s})")
    );
    let out = cnnlab(&["-q", "train", &cfg, "--epochs", "1", "--out", early_s], tmp.path());
    assert_one_line_error(&out, 1, "holds an unfinished run (0 epochs done)");
    assert_ok(&cnnlab(&["-q", "train", "--resume", early_s], tmp.path()));
    assert!(early.join("metrics.json").exists());
}

/// A full disk at the first resumable checkpoint (its temporary file is a link to
/// /dev/full): one plain line, no temporary left, and --resume then trains.
#[test]
fn a_full_disk_is_one_line_and_resume_goes_on() {
    let (tmp, cfg) = small();
    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::os::unix::fs::symlink("/dev/full", full.join("resume.tmp.safetensors")).unwrap();
    let out = cnnlab(&["-q", "train", &cfg, "--epochs", "2", "--out", full.to_str().unwrap()], tmp.path());
    let expected =
        format!("error: writing {}: No space left on device (os error 28)", full.join("resume.safetensors").display());
    assert_one_line_error(&out, 1, &expected);
    let left: Vec<String> =
        std::fs::read_dir(&full).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!left.iter().any(|f| f.contains(".tmp")), "{left:?}");
    assert!(left.contains(&"last.safetensors".to_owned()) && left.contains(&"history.csv".to_owned()), "{left:?}");
    assert_ok(&cnnlab(&["-q", "train", "--resume", full.to_str().unwrap()], tmp.path()));
    assert!(full.join("metrics.json").exists());
}

/// A missing dataset: exit 3 and no run folder.
#[test]
fn a_run_that_fails_before_training_leaves_no_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let gone = tmp.path().join("gone");
    let cifar = "configs/cifar10/seed3-final.toml";
    let out = cnnlab(&["-q", "train", cifar, "--out", gone.to_str().unwrap()], &tmp.path().join("none"));
    assert_one_line_error(&out, 3, "dataset `cifar10` not found");
    assert!(!gone.exists(), "a run that fails before training leaves no folder");

    // An augmentation the device pipeline cannot run: FILE:LINE naming the key, before
    // any data is read (the dataset is missing, and that is not what it says).
    let device = tmp.path().join("device.toml");
    let text = std::fs::read_to_string(workspace().join(cifar)).unwrap();
    let text = text.replace("[train]", "[train]\npipeline = \"device\"");
    let text = text
        .replace("{ op = \"hflip\", p = 0.5 },", "{ op = \"hflip\", p = 0.5 },\n  { op = \"rotate\", degrees = 10 },");
    std::fs::write(&device, &text).unwrap();
    let line = text.lines().position(|l| l.starts_with("pipeline")).unwrap() + 1;
    let out = cnnlab(&["-q", "train", device.to_str().unwrap(), "--out", gone.to_str().unwrap()], tmp.path());
    let expected = format!("{}:{line}: train.pipeline: \"device\" does hflip and random_crop", device.display());
    assert_one_line_error(&out, 1, &expected);
    assert!(!gone.exists());

    // Pretrained weights that are not a safetensors file: the run stops before its
    // first epoch, and its folder goes with it.
    let bad = tmp.path().join("bad.safetensors");
    std::fs::write(&bad, b"not safetensors at all").unwrap();
    let config = tmp.path().join("finetune.toml");
    let text = format!(
        "[data]\ndataset = \"shapes\"\nmax_train = 64\nmax_test = 32\n\n[model]\nbackbone = \"resnet18\"\n\
         pretrained = \"{}\"\nhead = {{ dropout = 0.0 }}\n",
        bad.display()
    );
    std::fs::write(&config, text).unwrap();
    let out = cnnlab(&["-q", "train", config.to_str().unwrap(), "--out", gone.to_str().unwrap()], tmp.path());
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.safetensors"));
    assert!(!gone.exists(), "a run that failed before its first epoch leaves no folder");

    // 200 classes of one image each: one line saying why there is no test split (not
    // a 200-name warning first), and no folder.
    let pics = tmp.path().join("pics");
    for i in 0..200u8 {
        std::fs::create_dir_all(pics.join(format!("c{i:03}"))).unwrap();
        image::GrayImage::from_pixel(8, 8, image::Luma([i])).save(pics.join(format!("c{i:03}/a.png"))).unwrap();
    }
    let config = tmp.path().join("many.toml");
    let text = format!(
        "[data]\ndataset = \"image-folder\"\npath = \"{}\"\nimage_size = 8\n\n[model]\nlayers = [{{ type = \"flatten\" }}, {{ type = \"linear\" }}]\n",
        pics.display()
    );
    std::fs::write(&config, text).unwrap();
    let out = cnnlab(&["-q", "train", config.to_str().unwrap(), "--out", gone.to_str().unwrap()], tmp.path());
    let expected = "the test split holds no images (200 training images in 200 classes, the smallest with 1";
    assert_one_line_error(&out, 1, expected);
    assert!(!gone.exists());

    // --out naming a file: one line saying so, not "File exists (os error 17)".
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = cnnlab(&["-q", "train", config.to_str().unwrap(), "--out", file.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, &format!("{}: is a file, not a run folder", file.display()));
}
