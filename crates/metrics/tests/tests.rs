//! Agreement with scikit-learn (golden.json, made by gen_golden.py) to 1e-9, and
//! properties that hold for any input.

use cnnlab_metrics::{
    roc_auc_ovr, roc_auc_ovr_lenient, roc_auc_ovr_per_class, roc_curve, top_k_accuracy, Accumulator, Average,
    ConfusionMatrix, Error, Report, ZeroDivision,
};
use proptest::prelude::*;
use serde_json::Value;

const TOL: f64 = 1e-9;

fn golden() -> Vec<Value> {
    let text = include_str!("golden.json");
    let v: Value = serde_json::from_str(text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn close(name: &str, what: &str, got: f64, want: f64) {
    assert!((got - want).abs() <= TOL, "{name}: {what}: got {got}, scikit-learn {want}");
}

#[test]
fn agrees_with_scikit_learn() {
    for case in golden() {
        let name = case["name"].as_str().unwrap();
        let k = case["n_classes"].as_u64().unwrap() as usize;
        let (y_true, y_pred) = (usizes(&case["y_true"]), usizes(&case["y_pred"]));
        let e = &case["expected"];
        let cm = ConfusionMatrix::from_labels(&y_true, &y_pred, k).unwrap();
        let rows: Vec<Vec<usize>> = e["confusion_matrix"].as_array().unwrap().iter().map(usizes).collect();
        let ours: Vec<Vec<usize>> = cm.rows().iter().map(|r| r.iter().map(|&c| c as usize).collect()).collect();
        assert_eq!(ours, rows, "{name}: confusion matrix");
        close(name, "accuracy", cm.accuracy(), e["accuracy"].as_f64().unwrap());
        close(name, "balanced accuracy", cm.balanced_accuracy(), e["balanced_accuracy"].as_f64().unwrap());
        close(name, "mcc", cm.mcc(), e["mcc"].as_f64().unwrap());
        for (zd_name, zd) in [("zero", ZeroDivision::Zero), ("one", ZeroDivision::One)] {
            for (avg_name, avg) in
                [("macro", Average::Macro), ("micro", Average::Micro), ("weighted", Average::Weighted)]
            {
                for beta in [1.0, 2.0] {
                    let key = format!("{avg_name}_beta{beta}_{zd_name}");
                    let want = floats(&e[&key]);
                    let (p, r, f) = cm.averaged(avg, beta, zd);
                    for (what, got, want) in [("precision", p, want[0]), ("recall", r, want[1]), ("f", f, want[2])] {
                        close(name, &format!("{key} {what}"), got, want);
                    }
                }
            }
            let pc = cm.per_class(1.0, zd);
            let want = &e[format!("per_class_{zd_name}")];
            for (what, got) in [("precision", &pc.precision), ("recall", &pc.recall), ("f1", &pc.f_beta)] {
                for (c, (g, w)) in got.iter().zip(floats(&want[what])).enumerate() {
                    close(name, &format!("{what} of class {c} ({zd_name})"), *g, w);
                }
            }
            assert_eq!(pc.support.iter().map(|&s| s as usize).collect::<Vec<_>>(), usizes(&want["support"]));
        }

        let names: Vec<String> =
            case["class_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
        let scores = case["scores"].as_array().map(|_| floats(&case["scores"]));
        let report = Report::new(&y_true, &y_pred, scores.as_deref(), &names).unwrap();
        assert_eq!(report.text(), e["report_text"].as_str().unwrap(), "{name}: classification report text");

        let Some(scores) = scores else {
            assert_eq!((report.roc_auc_ovr_macro, report.log_loss), (None, None));
            continue;
        };
        close(name, "log loss", report.log_loss.unwrap(), e["log_loss"].as_f64().unwrap());
        let per = roc_auc_ovr_per_class(&y_true, &scores, k).unwrap();
        for (c, (got, want)) in per.iter().zip(e["roc_auc_per_class"].as_array().unwrap()).enumerate() {
            match (got, want.as_f64()) {
                (Some(g), Some(w)) => close(name, &format!("roc auc of class {c}"), *g, w),
                (None, None) => {}
                other => panic!("{name}: class {c} roc auc {other:?}"),
            }
        }
        let (m, w) = roc_auc_ovr_lenient(&y_true, &per, k);
        let lenient = floats(&e["roc_auc_lenient"]);
        close(name, "lenient macro auc", m.unwrap(), lenient[0]);
        close(name, "lenient weighted auc", w.unwrap(), lenient[1]);
        close(name, "report auc", report.roc_auc_ovr_macro.unwrap(), lenient[0]);
        match e.get("roc_auc_strict") {
            Some(strict) => {
                let (m, w) = roc_auc_ovr(&y_true, &scores, k).unwrap();
                let strict = floats(strict);
                close(name, "strict macro auc", m, strict[0]);
                close(name, "strict weighted auc", w, strict[1]);
                let curve_want = &e["roc_curve_class0"];
                let positive: Vec<bool> = y_true.iter().map(|&t| t == 0).collect();
                let column: Vec<f64> = scores.chunks(k).map(|r| r[0]).collect();
                let curve = roc_curve(&positive, &column).unwrap();
                for (what, got) in [("fpr", &curve.fpr), ("tpr", &curve.tpr)] {
                    let want = floats(&curve_want[what]);
                    assert_eq!(got.len(), want.len(), "{name}: roc curve {what} points");
                    got.iter().zip(&want).for_each(|(g, w)| close(name, what, *g, *w));
                }
                assert_eq!(curve.thresholds[1..], floats(&curve_want["thresholds"])[..], "{name}: thresholds");
            }
            None => {
                let err = roc_auc_ovr(&y_true, &scores, k).unwrap_err();
                assert!(matches!(err, Error::UndefinedAuc { class: 3, missing: "positive" }), "{name}: {err}");
            }
        }
        if let Some(top2) = e.get("top2") {
            close(name, "top-2 accuracy", top_k_accuracy(&y_true, &scores, k, 2).unwrap(), top2.as_f64().unwrap());
        }

        // Streaming in uneven batches gives the same report.
        let mut acc = Accumulator::new(names.clone()).unwrap();
        for (t, s) in y_true.chunks(7).zip(scores.chunks(7 * k)) {
            acc.add_scores(t, s).unwrap();
        }
        let argmax_pred = cnnlab_metrics::argmax_rows(&scores, k);
        let direct = Report::new(&y_true, &argmax_pred, Some(&scores[..]), &names).unwrap();
        assert_eq!(acc.finish().unwrap(), direct, "{name}: accumulator");
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    assert_eq!(
        ConfusionMatrix::from_labels(&[0, 1], &[0], 2).unwrap_err(),
        Error::LengthMismatch { y_true: 2, other: 1 }
    );
    assert_eq!(ConfusionMatrix::from_labels(&[], &[], 2).unwrap_err(), Error::Empty);
    assert_eq!(ConfusionMatrix::from_labels(&[0], &[0], 0).unwrap_err(), Error::NoClasses);
    assert_eq!(
        ConfusionMatrix::from_labels(&[0, 5], &[0, 1], 3).unwrap_err(),
        Error::LabelOutOfRange { label: 5, index: 1, n_classes: 3 }
    );
    let err = top_k_accuracy(&[0, 1], &[0.5, 0.5, f64::NAN, 0.5], 2, 1).unwrap_err();
    assert!(matches!(err, Error::NonFiniteScore { index: 1, .. }), "{err}");
    let err = top_k_accuracy(&[0, 1], &[0.5f32, 0.5, 0.5], 2, 1).unwrap_err();
    assert_eq!(err, Error::ScoreShape { len: 3, n_samples: 2, n_classes: 2 });
    assert_eq!(top_k_accuracy(&[0], &[1.0, 0.0], 2, 3).unwrap_err(), Error::BadK { k: 3, n_classes: 2 });
    let err = roc_auc_ovr(&[0, 0], &[0.9, 0.1, 0.8, 0.2], 2).unwrap_err();
    assert_eq!(err.to_string(), "ROC AUC is undefined for class 0: y_true has no negative sample of it");
    let mut acc = Accumulator::new(vec!["a".into()]).unwrap();
    assert_eq!(acc.finish().unwrap_err(), Error::Empty);
    assert!(acc.add_labels(&[0, 1], &[0, 0]).is_err());
    assert_eq!(acc.confusion_matrix().total(), 0, "a rejected batch adds nothing");
}

#[test]
fn report_json_has_the_documented_keys() {
    let names = vec!["a".to_owned(), "b".to_owned()];
    let r = Report::new::<f64>(&[0, 1, 1], &[0, 1, 0], None, &names).unwrap();
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "accuracy",
        "balanced_accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_micro",
        "recall_micro",
        "f1_micro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "mcc",
        "roc_auc_ovr_macro",
        "roc_auc_ovr_weighted",
        "log_loss",
        "confusion_matrix",
        "per_class",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert!(json["roc_auc_ovr_macro"].is_null() && json["log_loss"].is_null());
    assert_eq!(json["per_class"][1]["class"], "b");
    assert_eq!(json["per_class"][1]["support"], 2);
}

fn labels_strategy() -> impl Strategy<Value = (usize, Vec<usize>, Vec<usize>)> {
    (1usize..8).prop_flat_map(|k| {
        (1usize..60).prop_flat_map(move |n| (Just(k), prop::collection::vec(0..k, n), prop::collection::vec(0..k, n)))
    })
}

proptest! {
    #[test]
    fn micro_f1_is_accuracy((k, t, p) in labels_strategy()) {
        let cm = ConfusionMatrix::from_labels(&t, &p, k).unwrap();
        let (_, _, f1) = cm.averaged(Average::Micro, 1.0, ZeroDivision::Zero);
        prop_assert!((f1 - cm.accuracy()).abs() < 1e-12);
    }

    #[test]
    fn mcc_is_bounded_and_totals_add_up((k, t, p) in labels_strategy()) {
        let cm = ConfusionMatrix::from_labels(&t, &p, k).unwrap();
        let mcc = cm.mcc();
        prop_assert!((-1.0 - 1e-12..=1.0 + 1e-12).contains(&mcc), "mcc {}", mcc);
        prop_assert_eq!(cm.total() as usize, t.len());
        prop_assert_eq!(cm.support().iter().sum::<u64>(), cm.predicted().iter().sum::<u64>());
    }
}
