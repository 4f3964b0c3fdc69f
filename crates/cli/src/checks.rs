//! Whether an experiment can train, checked before any data is read: every
//! section's own checks, the model's plan against the data's shape, and the keys
//! that only act with another. The reading itself is `cnnlab_cli::experiment`.

use std::path::Path;

use anyhow::Result;
use cnnlab_cli::experiment::{Experiment, Invalid, Target};

/// Reads and checks an experiment file; errors are one line, `FILE:LINE: message`,
/// at the line of the key they are about.
pub(crate) fn load(path: &Path) -> Result<Experiment> {
    let (exp, sources) = Experiment::read(path)?;
    validate(&exp).map_err(|invalid| sources.locate(invalid))?;
    Ok(exp)
}

/// Every section's own checks, in file order, then whether the model fits the
/// dataset's images (when their shape is known without reading them). Runs before
/// any data is read; each error says the dotted key it is about.
pub(crate) fn validate(exp: &Experiment) -> Result<(), Invalid> {
    exp.data.validate().map_err(|e| match &e {
        cnnlab_data::Error::InvalidKey { key, .. } => Invalid::new(format!("data.{key}"), e.to_string()),
        _ => Invalid::new("data", e.to_string()),
    })?;
    for (index, op) in exp.augment.ops.iter().enumerate() {
        op.validate(index).map_err(|e| match e {
            cnnlab_augment::Error::InvalidOp { index, field, message, .. } => {
                let key = format!("augment.ops[{index}].{field}");
                Invalid::new(key.clone(), format!("{key}: {message}"))
            }
            other => Invalid::new(format!("augment.ops[{index}]"), other.to_string()),
        })?;
    }
    if let Some((shape, classes)) = exp.data.nominal() {
        let input = cnnlab_models::Shape::from(shape);
        cnnlab_models::plan(&exp.model, input, classes as i64).map_err(|e| match &e {
            cnnlab_models::Error::Layer { index, .. } => Invalid::new(format!("model.layers[{index}]"), e.to_string()),
            _ => Invalid::new("model", e.to_string()),
        })?;
    }
    exp.train.validate()?;
    train_fits_model(exp)?;
    if exp.train.pipeline == cnnlab_train::Feed::Device {
        cnnlab_train::check_device_pipeline(&exp.augment.ops).map_err(train_invalid)?;
    }
    if let Some(target) = &exp.target {
        target_fits(target)?;
    }
    Ok(())
}

/// A `[train]` error: its key when it has one.
fn train_invalid(e: cnnlab_train::Error) -> Invalid {
    match &e {
        cnnlab_train::Error::Invalid { key, .. } => Invalid::new(key.clone(), e.to_string()),
        cnnlab_train::Error::Unsupported { key, .. } => Invalid::new(*key, e.to_string()),
        _ => Invalid::new("train", e.to_string()),
    }
}

/// `[train]` keys that act on a `[model] backbone` need one (and freezing one
/// needs pretrained weights to keep): otherwise they would be silently ignored.
fn train_fits_model(exp: &Experiment) -> Result<(), Invalid> {
    let (t, m) = (&exp.train, &exp.model);
    if m.backbone.is_none() {
        if t.freeze_epochs > 0 {
            return Err(Invalid::keyed("train.freeze_epochs", "freezes a [model] backbone, and this model has none"));
        }
        if t.backbone_lr_mult != 1.0 {
            return Err(Invalid::keyed(
                "train.backbone_lr_mult",
                "scales a [model] backbone's rate, and this model has none",
            ));
        }
    } else if t.freeze_epochs > 0 && m.pretrained.is_none() {
        return Err(Invalid::keyed(
            "train.freeze_epochs",
            "the backbone is not pretrained (no model.pretrained), so freezing it would keep random weights",
        ));
    }
    Ok(())
}

/// Settings that are valid but probably not meant, as warnings naming the key
/// (`cnnlab train` logs them once the command's overrides are applied).
pub(crate) fn warnings(exp: &Experiment) -> Vec<String> {
    let t = &exp.train;
    let mut out = Vec::new();
    if t.freeze_epochs > 0 && t.freeze_epochs >= t.epochs {
        out.push(format!(
            "train.freeze_epochs = {} >= train.epochs = {}: the backbone never trains, only the head does",
            t.freeze_epochs, t.epochs
        ));
    }
    out
}

/// `[target]` goals that no run could meet.
fn target_fits(target: &Target) -> Result<(), Invalid> {
    let fractions = [("accuracy", target.accuracy), ("f1_macro", target.f1_macro), ("f1_micro", target.f1_micro)];
    if let Some((key, v)) = fractions.iter().find_map(|(k, v)| v.filter(|v| !(0.0..=1.0).contains(v)).map(|v| (k, v))) {
        return Err(Invalid::keyed(&format!("target.{key}"), format!("{v} is outside [0, 1]")));
    }
    match target.minutes {
        Some(m) if !(m > 0.0 && m.is_finite()) => {
            Err(Invalid::keyed("target.minutes", format!("{m} must be a positive number")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "[data]\ndataset = \"mnist\"\n[model]\nlayers = [{ type = \"flatten\" }, { type = \"linear\" }]\n";

    #[test]
    fn values_that_cannot_train_are_named_by_key() {
        let exp = Experiment::parse(&format!("{GOOD}[train]\nepochs = 0\n")).unwrap();
        assert_eq!(validate(&exp).unwrap_err().to_string(), "train.epochs: must be at least 1");
    }

    #[test]
    fn invalid_values_name_file_line_and_key() {
        // Every section's validator runs at load, and its dotted key finds its line,
        // in the file that sets it (a child before its base).
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.toml");
        std::fs::write(&base, format!("{GOOD}[train]\nepochs = 0\n")).unwrap();
        let err = load(&base).unwrap_err().to_string();
        assert_eq!(err, format!("{}:6: train.epochs: must be at least 1", base.display()));
        let child = dir.path().join("child.toml");
        let ops = "extends = \"base.toml\"\n[train]\nepochs = 2\n[augment]\nops = [\n  { op = \"random_crop\", padding = 4 },\n  { op = \"hflip\", p = 2 },\n]\n";
        std::fs::write(&child, ops).unwrap();
        let err = load(&child).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:7: augment.ops[1].p: ", child.display())), "{err}");
        let swapped = "extends = \"base.toml\"\n[train]\nepochs = 2\n[augment]\nops = [{ op = \"brightness\", min = 1.5, max = 0.5 }]\n";
        std::fs::write(&child, swapped).unwrap();
        let err = load(&child).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:5: augment.ops[0].", child.display())), "{err}");
        // Data values are data errors, located too (not "conv kernel 3 is larger than 0x0").
        std::fs::write(&child, "extends = \"base.toml\"\n[train]\nepochs = 2\n[data]\nimage_size = 0\n").unwrap();
        let err = load(&child).unwrap_err().to_string();
        assert_eq!(err, format!("{}:5: data.image_size: must be at least 1", child.display()));
        std::fs::write(&child, "extends = \"base.toml\"\n[train]\nepochs = 2\n[data]\n\nval_fraction = 1.5\n").unwrap();
        let err = load(&child).unwrap_err().to_string();
        assert_eq!(err, format!("{}:6: data.val_fraction: 1.5 is outside [0, 1)", child.display()));
        std::fs::write(&child, "extends = \"base.toml\"\n[train]\nepochs = 2\n[target]\naccuracy = 94\n").unwrap();
        let err = load(&child).unwrap_err().to_string();
        assert_eq!(err, format!("{}:5: target.accuracy: 94 is outside [0, 1]", child.display()));
    }

    /// Keys that would do nothing are errors naming the key and its line (or, when the
    /// setting is legal but likely unmeant, a warning): seeds = [], the backbone's keys
    /// without a backbone, freezing a backbone with random weights.
    #[test]
    fn keys_without_effect_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.toml");
        let load = |train: &str, model: &str| {
            let text = format!("[data]\ndataset = \"cifar10\"\n\n[model]\n{model}\n\n[train]\n{train}\n");
            std::fs::write(&file, text).unwrap();
            load(&file).map_err(|e| e.to_string())
        };
        let plain = "layers = [{ type = \"flatten\" }, { type = \"linear\" }]";
        let f = file.display();
        assert_eq!(
            load("seeds = []", plain).unwrap_err(),
            format!("{f}:8: `seeds` = [] trains nothing: list the seeds (seeds = [0, 1, 2]) or leave train.seeds out")
        );
        assert_eq!(
            load("epochs = 3\nfreeze_epochs = 1", plain).unwrap_err(),
            format!("{f}:9: train.freeze_epochs: freezes a [model] backbone, and this model has none")
        );
        assert_eq!(
            load("backbone_lr_mult = 0.1", plain).unwrap_err(),
            format!("{f}:8: train.backbone_lr_mult: scales a [model] backbone's rate, and this model has none")
        );
        let random = "backbone = \"resnet18\"\nlayers = [{ type = \"linear\" }]";
        let err = load("freeze_epochs = 1", random).unwrap_err();
        assert!(err.starts_with(&format!("{f}:9: train.freeze_epochs: the backbone is not pretrained")), "{err}");
        let pretrained = format!("{random}\npretrained = \"w.safetensors\"");
        let exp = load("epochs = 2\nfreeze_epochs = 2\nbackbone_lr_mult = 0.1", &pretrained).unwrap();
        assert_eq!(
            warnings(&exp),
            ["train.freeze_epochs = 2 >= train.epochs = 2: the backbone never trains, only the head does"]
        );
        assert!(warnings(&load("epochs = 3\nfreeze_epochs = 2", &pretrained).unwrap()).is_empty());
    }
}

/// Fuzzing the experiment loader: TOML-like text, mutated shipped configs and
/// mutated `extends` children load or fail with a one-line message, never a panic.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn mutate(text: &str, edits: &[(usize, char)]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for &(at, c) in edits {
            let n = chars.len();
            chars[at % n] = c;
        }
        chars.into_iter().collect()
    }

    fn edit() -> impl Strategy<Value = (usize, char)> {
        (
            any::<usize>(),
            prop_oneof![Just('0'), Just('-'), Just('"'), Just('['), Just('='), Just('\n'), Just('9'), Just('.')],
        )
    }

    fn check(dir: &Path, name: &str, text: &str) -> std::result::Result<(), TestCaseError> {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        if let Err(e) = load(&path) {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "{}", msg);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(cnnlab_cli::args::fuzz_cases(128)))]

        #[test]
        fn toml_like_text_never_panics(text in "(\\[data\\]|\\[model\\]|\\[train\\]|\\[augment\\]|dataset = \"mnist\"|layers = \\[\\{ type = \"linear\" \\}\\]|epochs = |image_size = |[0-9\n=\\-\\.\"\\[\\]{}]){0,30}") {
            let dir = tempfile::tempdir().unwrap();
            check(dir.path(), "x.toml", &text)?;
        }

        #[test]
        fn mutated_shipped_configs_never_panic(which in 0usize..4, edits in proptest::collection::vec(edit(), 1..4)) {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
            let file = ["shapes/seed3-final.toml", "cifar10/fast94.toml", "pets/seed2-model3.toml", "simpsons/seed0-alexnet-elu.toml"][which];
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let dir = tempfile::tempdir().unwrap();
            check(dir.path(), "x.toml", &mutate(&text, &edits))?;
            // The same edits in a child that extends the intact file.
            std::fs::write(dir.path().join("base.toml"), &text).unwrap();
            let child = mutate("extends = \"base.toml\"\n[train]\nepochs = 3\nlr = 0.01\n[model]\nkind = \"standard\"\n", &edits);
            check(dir.path(), "child.toml", &child)?;
        }
    }
}
