//! Agreement with scikit-learn (golden.json, made by gen_golden.py) to 1e-9, and
//! properties that hold for any input.

use cnnlab_metrics::{
    accuracy_score_weighted, average_precision_weighted, brier_score_weighted, log_loss_weighted, roc_auc_weighted,
    top_k_accuracy_weighted,
};
use cnnlab_metrics::{
    average_precision, average_precision_ovr, brier_score, cohen_kappa_score, encode_labels, f1_score, log_loss,
    precision_recall_curve, precision_recall_fscore, precision_score, recall_score, roc_auc, roc_auc_ovr,
    roc_auc_ovr_lenient, roc_auc_ovr_per_class, roc_curve, top_k_accuracy, Accumulator, Average, ConfusionMatrix,
    Error, KappaWeights, Labels, Options, Report, ZeroDivision,
};
use proptest::prelude::*;
use serde_json::Value;

const TOL: f64 = 1e-9;

mod stats;

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

/// Like [`close`], with JSON's null standing for scikit-learn's NaN.
fn close_or_nan(name: &str, what: &str, got: f64, want: &Value) {
    match want.as_f64() {
        Some(w) => close(name, what, got, w),
        None => assert!(got.is_nan(), "{name}: {what}: got {got}, scikit-learn nan"),
    }
}

const AVERAGES: [(&str, Average); 3] =
    [("macro", Average::Macro), ("micro", Average::Micro), ("weighted", Average::Weighted)];

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
                    let prf = cm.averaged(avg, beta, zd);
                    let (p, r, f) = (prf.precision, prf.recall, prf.f_beta);
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
        if e["roc_auc_lenient"].is_null() {
            assert!(per.iter().all(Option::is_none), "{name}: no class has a defined ROC AUC");
            continue;
        }
        for (c, (got, want)) in per.iter().zip(e["roc_auc_per_class"].as_array().unwrap()).enumerate() {
            match (got, want.as_f64()) {
                (Some(g), Some(w)) => close(name, &format!("roc auc of class {c}"), *g, w),
                (None, None) => {}
                other => panic!("{name}: class {c} roc auc {other:?}"),
            }
        }
        let (m, w) = roc_auc_ovr_lenient(&y_true, &per, k).unwrap();
        let lenient = floats(&e["roc_auc_lenient"]);
        close(name, "lenient macro auc", m.unwrap(), lenient[0]);
        close(name, "lenient weighted auc", w.unwrap(), lenient[1]);
        close(name, "report auc", report.roc_auc_ovr_macro.unwrap(), lenient[0]);
        match e.get("roc_auc_strict") {
            Some(strict) => {
                let auc = roc_auc_ovr(&y_true, &scores, k).unwrap();
                let strict = floats(strict);
                close(name, "strict macro auc", auc.macro_avg, strict[0]);
                close(name, "strict weighted auc", auc.weighted, strict[1]);
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
                // scikit-learn 1.9 returns nan (with a warning) where a class is absent.
                let auc = roc_auc_ovr(&y_true, &scores, k).unwrap();
                let want = e["roc_auc_nan"].as_array().unwrap();
                close_or_nan(name, "macro auc with an absent class", auc.macro_avg, &want[0]);
                close_or_nan(name, "weighted auc with an absent class", auc.weighted, &want[1]);
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
    // scikit-learn 1.9: nan, not an error, when y_true holds one class.
    assert!(roc_auc_ovr(&[0, 0], &[0.9, 0.1, 0.8, 0.2], 2).unwrap().macro_avg.is_nan());
    assert!(roc_auc(&[true, true], &[0.9, 0.8]).unwrap().is_nan());
    let mut acc = Accumulator::new(["a"]).unwrap();
    assert_eq!(acc.finish().unwrap_err(), Error::Empty);
    assert!(acc.update(&[0, 1], &[0, 0]).is_err());
    assert_eq!(acc.confusion_matrix().total(), 0, "a rejected batch adds nothing");
}

#[test]
fn report_json_has_the_documented_keys() {
    let names = vec!["a".to_owned(), "b".to_owned()];
    let r = Report::from_labels(&[0, 1, 1], &[0, 1, 0], &names).unwrap();
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
        let f1 = cm.averaged(Average::Micro, 1.0, ZeroDivision::Zero).f_beta;
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

/// The scikit-learn behaviours beyond `labels=range(n_classes)`: default labels,
/// sample weights, NaN zero division, kappa, average precision, Brier, top-k, the
/// output_dict report.
#[test]
fn agrees_with_scikit_learn_beyond_the_confusion_matrix() {
    for case in golden() {
        let name = case["name"].as_str().unwrap();
        let k = case["n_classes"].as_u64().unwrap() as usize;
        let (y_true, y_pred) = (usizes(&case["y_true"]), usizes(&case["y_pred"]));
        let e = &case["expected"];
        let present = precision_recall_fscore(&y_true, &y_pred, &Options::default()).unwrap();
        let weighted = Options { sample_weight: Some(floats(&case["sample_weight"])), ..Options::default() };
        let weighted = precision_recall_fscore(&y_true, &y_pred, &weighted).unwrap();
        let nan =
            Options { labels: Labels::Given((0..k).collect()), zero_division: ZeroDivision::Nan, ..Options::default() };
        let nan = precision_recall_fscore(&y_true, &y_pred, &nan).unwrap();
        let cm = ConfusionMatrix::from_labels(&y_true, &y_pred, k).unwrap();
        for (avg_name, avg) in AVERAGES {
            for (what, scores) in [("present", &present), ("weighted_samples", &weighted), ("nan", &nan)] {
                let want = e[format!("{what}_{avg_name}")].as_array().unwrap();
                let got = scores.average(avg);
                for (part, g, w) in [
                    ("precision", got.precision, &want[0]),
                    ("recall", got.recall, &want[1]),
                    ("f", got.f_beta, &want[2]),
                ] {
                    close_or_nan(name, &format!("{what} {avg_name} {part}"), g, w);
                }
            }
            // The matrix's own averages with NaN zero division skip the same classes.
            let want = e[format!("nan_{avg_name}")].as_array().unwrap();
            close_or_nan(name, "matrix nan f", cm.averaged(avg, 1.0, ZeroDivision::Nan).f_beta, &want[2]);
        }
        close(name, "f1_score macro", f1_score(&y_true, &y_pred, Average::Macro).unwrap(), present.macro_avg.f_beta);
        for pos_label in 0..k {
            let key = format!("binary_pos{pos_label}");
            let binary = Average::Binary { pos_label };
            let got = [precision_score, recall_score, f1_score].map(|f| f(&y_true, &y_pred, binary));
            match e.get(&key) {
                Some(want) => {
                    for (g, w) in got.iter().zip(want.as_array().unwrap()) {
                        close(name, &key, *g.as_ref().unwrap(), w.as_f64().unwrap());
                    }
                    let m = cm.averaged(binary, 1.0, ZeroDivision::Zero);
                    close(name, &format!("matrix {key}"), m.f_beta, want[2].as_f64().unwrap());
                }
                None => assert!(got.iter().all(|g| g.is_err()), "{name}: {key} should be an error"),
            }
        }
        for (key, w) in
            [("None", KappaWeights::None), ("linear", KappaWeights::Linear), ("quadratic", KappaWeights::Quadratic)]
        {
            let got = cohen_kappa_score(&y_true, &y_pred, w).unwrap();
            close_or_nan(name, &format!("kappa {key}"), got, &e[format!("kappa_{key}")]);
        }
        let names: Vec<String> =
            case["class_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
        let report = Report::from_labels(&y_true, &y_pred, &names).unwrap();
        let dict = serde_json::to_value(report.to_dict()).unwrap();
        let want = &e["report_dict"];
        assert_eq!(dict.as_object().unwrap().len(), want.as_object().unwrap().len(), "{name}: dict keys");
        for (key, w) in want.as_object().unwrap() {
            match w.as_object() {
                Some(w) => {
                    for (field, wv) in w {
                        close(
                            name,
                            &format!("dict {key} {field}"),
                            dict[key][field].as_f64().unwrap(),
                            wv.as_f64().unwrap(),
                        );
                    }
                }
                None => close(name, &format!("dict {key}"), dict[key].as_f64().unwrap(), w.as_f64().unwrap()),
            }
        }

        let Some(scores) = case["scores"].as_array().map(|_| floats(&case["scores"])) else { continue };
        for (c, want) in e["ap_per_class"].as_array().unwrap().iter().enumerate() {
            let positive: Vec<bool> = y_true.iter().map(|&t| t == c).collect();
            let column: Vec<f64> = scores.chunks(k).map(|r| r[c]).collect();
            close_or_nan(
                name,
                &format!("average precision of class {c}"),
                average_precision(&positive, &column).unwrap(),
                want,
            );
        }
        if let Some(want) = e.get("ap_averages") {
            let ap = average_precision_ovr(&y_true, &scores, k).unwrap();
            close_or_nan(name, "average precision macro", ap.macro_avg, &want[0]);
            close_or_nan(name, "average precision weighted", ap.weighted, &want[1]);
        }
        let positive: Vec<bool> = y_true.iter().map(|&t| t == 0).collect();
        let column: Vec<f64> = scores.chunks(k).map(|r| r[0]).collect();
        let curve = precision_recall_curve(&positive, &column).unwrap();
        let want = &e["pr_curve_class0"];
        for (what, got) in
            [("precision", &curve.precision), ("recall", &curve.recall), ("thresholds", &curve.thresholds)]
        {
            let want = want[what].as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{name}: pr curve {what} points");
            got.iter().zip(want).for_each(|(g, w)| close_or_nan(name, what, *g, w));
        }
        close(name, "brier", brier_score(&y_true, &scores, k).unwrap(), e["brier"].as_f64().unwrap());
        if let Some(want) = e.get("top_k") {
            for (j, w) in floats(want).iter().enumerate() {
                close(name, &format!("top-{}", j + 1), top_k_accuracy(&y_true, &scores, k, j + 1).unwrap(), *w);
            }
        }
    }
}

/// Logits are not probabilities: log loss names the row (scikit-learn raises), and a
/// report of logits has no log loss instead of a clamped 36.
#[test]
fn log_loss_refuses_what_is_not_a_probability() {
    let logits = [2.5, -1.0, 0.3, 0.9];
    assert_eq!(log_loss(&[0, 1], &logits, 2).unwrap_err(), Error::NotProbability { value: 2.5, index: 0 });
    let unnormalised = [0.5, 0.4, 0.2, 0.8];
    assert!(matches!(log_loss(&[0, 1], &unnormalised, 2), Err(Error::RowSum { index: 0, .. })));
    assert!(matches!(brier_score(&[0, 1], &[0.2, 0.8, 1.2, -0.2], 2), Err(Error::NotProbability { index: 1, .. })));
    let mut acc = Accumulator::new(["a", "b"]).unwrap();
    acc.add_scores(&[0, 1], &logits).unwrap();
    let report = acc.finish().unwrap();
    assert_eq!(report.log_loss, None);
    assert!(report.roc_auc_ovr_macro.is_some(), "ROC AUC takes any monotone score");
    // f32 softmax rows sum to 1 only within f32 rounding: still probabilities.
    let probs: [f32; 2] = [0.333_333_34, 0.666_666_7];
    assert!(log_loss(&[1], &probs, 2).is_ok());
}

/// Accumulators: labels, predictions and scores together; merge across workers gives
/// what one accumulator of everything gives; reset forgets; labels without scores no
/// longer drop earlier scores silently (the report says there are none).
#[test]
fn accumulators_update_merge_and_reset() {
    let names = ["a", "b", "c"];
    let y = [0, 1, 2, 2, 1, 0, 2];
    let p = [0, 2, 2, 1, 1, 0, 2];
    let s: Vec<f64> = p.iter().flat_map(|&c| (0..3).map(move |k| if k == c { 0.8 } else { 0.1 })).collect();
    let mut whole = Accumulator::new(names).unwrap();
    whole.update_scored(&y, &p, &s).unwrap();
    let (mut a, mut b) = (Accumulator::new(names).unwrap(), Accumulator::new(names).unwrap());
    a.update_scored(&y[..3], &p[..3], &s[..9]).unwrap();
    b.update_scored(&y[3..], &p[3..], &s[9..]).unwrap();
    a.merge(&b).unwrap();
    assert_eq!(a.compute().unwrap(), whole.compute().unwrap());
    assert!(a.has_scores());
    a.update(&[0], &[0]).unwrap();
    assert!(!a.has_scores());
    let r = a.compute().unwrap();
    assert_eq!((r.roc_auc_ovr_macro, r.log_loss), (None, None));
    assert_eq!(r.confusion_matrix.iter().flatten().sum::<u64>(), 8);
    a.reset();
    assert_eq!(a.compute().unwrap_err(), Error::Empty);
    assert_eq!(
        a.merge(&Accumulator::new(["x"]).unwrap()).unwrap_err(),
        Error::ClassCountMismatch { left: 3, right: 1 }
    );
    assert!(a.update(&[0], &[5]).is_err());
    assert_eq!(a.confusion_matrix().total(), 0, "a rejected batch adds nothing");
}

/// Strings as labels, through encode_labels; a bad sample weight is an error.
#[test]
fn any_labels_and_weights() {
    let e = encode_labels(&["dog", "cat", "emu"], &["dog", "dog", "emu"]);
    assert_eq!(e.classes, ["cat", "dog", "emu"]);
    let f1 = f1_score(&e.y_true, &e.y_pred, Average::Micro).unwrap();
    assert!((f1 - 2.0 / 3.0).abs() < 1e-15);
    let bad = Options { sample_weight: Some(vec![1.0, f64::NAN, 1.0]), ..Options::default() };
    let err = precision_recall_fscore(&e.y_true, &e.y_pred, &bad).unwrap_err();
    assert!(matches!(err, Error::BadWeight { index: 1, .. }), "{err:?}");
    let zero = Options { sample_weight: Some(vec![0.0; 3]), ..Options::default() };
    assert_eq!(precision_recall_fscore(&e.y_true, &e.y_pred, &zero).unwrap_err(), Error::ZeroWeights);
    let negative = Options { beta: Some(-1.0), ..Options::default() };
    assert_eq!(precision_recall_fscore(&e.y_true, &e.y_pred, &negative).unwrap_err(), Error::BadBeta(-1.0));
}

/// The inputs where this crate once disagreed with scikit-learn (golden.json's
/// `edge`, from gen_golden.py's `edge_cases`): weighted kappa over a label absent from
/// both lists, log loss of f32 probabilities, a binary 0.5 / 0.5 tie, weighted
/// averages of zero support, beta = inf, negative sample weights.
#[test]
fn agrees_with_scikit_learn_where_it_once_did_not() {
    let v: Value = serde_json::from_str(include_str!("golden.json")).unwrap();
    let e = &v["edge"];
    for case in e["kappa"].as_array().unwrap() {
        let (y1, y2) = (usizes(&case["y1"]), usizes(&case["y2"]));
        for (key, w) in
            [("None", KappaWeights::None), ("linear", KappaWeights::Linear), ("quadratic", KappaWeights::Quadratic)]
        {
            close("kappa", key, cohen_kappa_score(&y1, &y2, w).unwrap(), case[key].as_f64().unwrap());
        }
    }
    let l = &e["log_loss"];
    let (y, p64) = (usizes(&l["y_true"]), floats(&l["probs"]));
    let p32: Vec<f32> = p64.iter().map(|&v| v as f32).collect();
    // scikit-learn computes the f32 case in float32: agreement to float32's precision.
    assert!((log_loss(&y, &p32, 2).unwrap() - l["f32"].as_f64().unwrap()).abs() < 1e-5);
    close("log_loss", "f64", log_loss(&y, &p64, 2).unwrap(), l["f64"].as_f64().unwrap());
    let b = &e["binary_top1"];
    let top1 = top_k_accuracy(&usizes(&b["y_true"]), &floats(&b["scores"]), 2, 1).unwrap();
    close("binary_top1", "top-1", top1, b["value"].as_f64().unwrap());
    let z = &e["weighted_zero_support"];
    let options =
        Options { labels: Labels::Given(usizes(&z["labels"])), zero_division: ZeroDivision::One, ..Options::default() };
    let got = precision_recall_fscore(&usizes(&z["y_true"]), &usizes(&z["y_pred"]), &options).unwrap().weighted_avg;
    let want = floats(&z["value"]);
    for (what, g, w) in
        [("precision", got.precision, want[0]), ("recall", got.recall, want[1]), ("f", got.f_beta, want[2])]
    {
        close("weighted_zero_support", what, g, w);
    }
    let inf = &e["beta_inf"];
    let (t, p) = (usizes(&inf["y_true"]), usizes(&inf["y_pred"]));
    let scores = precision_recall_fscore(&t, &p, &Options { beta: Some(f64::INFINITY), ..Options::default() }).unwrap();
    for (key, average) in AVERAGES {
        close("beta_inf", key, scores.average(average).f_beta, inf[key].as_f64().unwrap());
    }
    let n = &e["negative_weights"];
    let options = Options { sample_weight: Some(floats(&n["sample_weight"])), ..Options::default() };
    let scores = precision_recall_fscore(&usizes(&n["y_true"]), &usizes(&n["y_pred"]), &options).unwrap();
    for (key, average) in AVERAGES {
        let (got, want) = (scores.average(average), floats(&n[key]));
        close("negative_weights", key, got.precision, want[0]);
        close("negative_weights", key, got.recall, want[1]);
        close("negative_weights", key, got.f_beta, want[2]);
    }
}

/// Reads out of range are `None` or a typed error, not another cell or a panic; the
/// text report pads names by characters, as Python does.
#[test]
fn out_of_range_reads_and_wide_names() {
    let cm = ConfusionMatrix::from_labels(&[0, 1, 2], &[0, 2, 2], 3).unwrap();
    assert_eq!((cm.get(1, 2), cm.get(0, 5), cm.get(3, 0)), (Some(1), None, None));
    assert_eq!(
        roc_auc_ovr_lenient(&[0, 4], &[Some(0.5), None], 2).unwrap_err(),
        Error::ClassOutOfRange { class: 4, n_classes: 2 }
    );
    assert!(roc_auc_ovr_lenient(&[0, 1], &[Some(0.5)], 2).is_err());
    assert!(matches!(cnnlab_metrics::stats::holm(&[0.01], f64::NAN), Err(Error::BadAlpha(a)) if a.is_nan()));
    let p = cnnlab_metrics::stats::Predictions::new(&[0, 1, 1], &[0, 1, 0], 2).unwrap();
    let accuracy = cnnlab_metrics::stats::Metric::Accuracy;
    assert!(accuracy.on(&p, &[0, 7]).is_nan());
    assert_eq!(accuracy.try_on(&p, &[0, 7]).unwrap_err(), Error::IndexOutOfRange { index: 7, len: 3 });
    assert_eq!(accuracy.try_on(&p, &[0, 1, 1]).unwrap(), 1.0);
    let dist = cnnlab_metrics::stats::distribution(3, &|idx| accuracy.on(&p, idx), vec![vec![0, 1, 2]; 9]);
    let method = cnnlab_metrics::stats::Method::Bca;
    let err = cnnlab_metrics::stats::interval(&dist, method, 0.95, 3, &|idx| accuracy.on(&p, idx), Some(&[1, 2]));
    assert_eq!(err.unwrap_err(), Error::LengthMismatch { y_true: 3, other: 2 });
    let report = Report::from_labels(&[0, 1, 1], &[0, 1, 0], &["Ёлка-ёлочка-ёлка", "b"]).unwrap();
    let widths: Vec<usize> = report.text().lines().filter(|l| !l.is_empty()).map(|l| l.chars().count()).collect();
    assert!(widths.iter().all(|&w| w == widths[0]), "{widths:?}\n{}", report.text());
    assert_eq!(cnnlab_metrics::accuracy_score(&[0, 1, 1], &[0, 1, 0]).unwrap(), 2.0 / 3.0);
}

/// `sample_weight` beyond `precision_recall_fscore` (issue 37): accuracy, top-1, log
/// loss, Brier score, ROC AUC and average precision of class 0, each against
/// scikit-learn's with the case's weights.
#[test]
fn weighted_score_metrics_agree_with_scikit_learn() {
    let mut checked = 0;
    for case in golden() {
        let name = case["name"].as_str().unwrap();
        let Some(want) = case["expected"].get("weighted_scores") else { continue };
        let k = case["n_classes"].as_u64().unwrap() as usize;
        let (y_true, y_pred) = (usizes(&case["y_true"]), usizes(&case["y_pred"]));
        let (scores, w) = (floats(&case["scores"]), floats(&case["sample_weight"]));
        close(
            name,
            "accuracy",
            accuracy_score_weighted(&y_true, &y_pred, &w).unwrap(),
            want["accuracy"].as_f64().unwrap(),
        );
        close(
            name,
            "top1",
            top_k_accuracy_weighted(&y_true, &scores, k, 1, &w).unwrap(),
            want["top1"].as_f64().unwrap(),
        );
        close(
            name,
            "log_loss",
            log_loss_weighted(&y_true, &scores, k, &w).unwrap(),
            want["log_loss"].as_f64().unwrap(),
        );
        close(name, "brier", brier_score_weighted(&y_true, &scores, k, &w).unwrap(), want["brier"].as_f64().unwrap());
        let positive: Vec<bool> = y_true.iter().map(|&t| t == 0).collect();
        let column: Vec<f64> = scores.chunks(k).map(|r| r[0]).collect();
        close_or_nan(
            name,
            "roc_auc_class0",
            roc_auc_weighted(&positive, &column, &w).unwrap(),
            &want["roc_auc_class0"],
        );
        close_or_nan(
            name,
            "ap_class0",
            average_precision_weighted(&positive, &column, &w).unwrap(),
            &want["ap_class0"],
        );
        checked += 1;
    }
    assert_eq!(checked, 8);
    // Weights: one per sample, finite, not summing to zero.
    assert!(matches!(accuracy_score_weighted(&[0, 1], &[0, 1], &[1.0]), Err(Error::LengthMismatch { .. })));
    assert!(matches!(
        accuracy_score_weighted(&[0, 1], &[0, 1], &[1.0, f64::NAN]),
        Err(Error::BadWeight { index: 1, .. })
    ));
    assert_eq!(accuracy_score_weighted(&[0, 1], &[0, 0], &[1.0, -1.0]), Err(Error::ZeroWeights));
    assert_eq!(roc_auc_weighted(&[true, false], &[0.3, 0.2], &[0.0, 0.0]), Err(Error::ZeroWeights));
    // Predictions take f32 scores too.
    let (y, p) = ([0usize, 1, 1, 0], [0usize, 1, 0, 0]);
    let s32 = [0.9f32, 0.1, 0.2, 0.8, 0.6, 0.4, 0.7, 0.3];
    let s64: Vec<f64> = s32.iter().map(|&v| f64::from(v)).collect();
    let a = cnnlab_metrics::stats::Predictions::new(&y, &p, 2).unwrap().with_scores(&s32[..]).unwrap();
    let b = cnnlab_metrics::stats::Predictions::new(&y, &p, 2).unwrap().with_scores(&s64[..]).unwrap();
    assert_eq!(a.metric(cnnlab_metrics::stats::Metric::RocAuc), b.metric(cnnlab_metrics::stats::Metric::RocAuc));
}

/// No input makes a public function panic (issue 37): any lengths, labels beyond
/// `n_classes`, 0 classes, NaN, infinite and negative scores and weights, bad `k`,
/// `beta`, `alpha` and confidence levels. Results are not checked here, only that
/// each call returns (`PROPTEST_CASES=100000` for a longer campaign).
mod no_panics {
    use cnnlab_metrics::stats::{self, Bootstrap, McNemar, Method, Metric, Predictions, Replicates};
    use cnnlab_metrics::*;
    use proptest::prelude::*;

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => 0.0..1.0f64,
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(-1.0),
            1 => Just(0.0),
            1 => Just(1.0),
            1 => -1e300..1e300f64,
        ]
    }

    fn every_function(k: usize, t: &[usize], p: &[usize], s: &[f64], w: &[f64], x: [f64; 3]) {
        let s32: Vec<f32> = s.iter().map(|&v| v as f32).collect();
        let positive: Vec<bool> = t.iter().map(|&v| v == 0).collect();
        let column = &s[..s.len().min(t.len())];
        let _ = ConfusionMatrix::from_labels(t, p, k).map(|cm| {
            let _ = (cm.accuracy(), cm.balanced_accuracy(), cm.mcc(), cm.get(k, 0), cm.rows(), cm.support());
            let _ = cm.averaged(Average::Binary { pos_label: k }, x[0], ZeroDivision::Nan);
            let _ = cm.per_class(x[1], ZeroDivision::One);
            let _ = cm.cohen_kappa(KappaWeights::Quadratic);
        });
        let options = Options { sample_weight: Some(w.to_vec()), beta: Some(x[0]), ..Options::default() };
        let _ = precision_recall_fscore(t, p, &options);
        let _ =
            precision_recall_fscore(t, p, &Options { labels: Labels::Given(vec![k, 0, k + 3]), ..Options::default() });
        let _ = (f1_score(t, p, Average::Binary { pos_label: k }), accuracy_score(t, p));
        let _ = cohen_kappa_score(t, p, KappaWeights::Linear);
        let _ = (roc_curve(&positive, column), roc_auc(&positive, column), average_precision(&positive, column));
        let _ = precision_recall_curve(&positive, &s32[..s32.len().min(t.len())]);
        let _ = (roc_auc_ovr(t, s, k), roc_auc_ovr_per_class(t, &s32, k), average_precision_ovr(t, s, k));
        let _ = roc_auc_ovr_per_class(t, s, k).and_then(|per| roc_auc_ovr_lenient(t, &per, k));
        let _ = (top_k_accuracy(t, s, k, x[2] as usize), log_loss(t, s, k), log_loss(t, &s32, k), brier_score(t, s, k));
        let _ = (argmax_rows(s, k), argmax_rows(s, 0));
        let _ = accuracy_score_weighted(t, p, w);
        let _ =
            (top_k_accuracy_weighted(t, s, k, 1, w), log_loss_weighted(t, s, k, w), brier_score_weighted(t, s, k, w));
        let _ = (roc_auc_weighted(&positive, column, w), average_precision_weighted(&positive, column, w));
        let _ = Report::new(t, p, Some(s), &(0..k).map(|c| format!("ç{c}")).collect::<Vec<_>>()).map(|r| r.text());
        if let Ok(pred) = Predictions::new(t, p, k) {
            let pred = pred.with_scores(s).unwrap_or(pred);
            let indices = [0, t.len(), usize::MAX];
            let _ = (Metric::RocAuc.on(&pred, &indices), Metric::F1Macro.try_on(&pred, &indices));
            let boot = Bootstrap { resamples: 20, method: Method::Bca, confidence: x[1], seed: 1, stratified: true };
            let _ = boot.interval(Metric::Accuracy, &pred);
            let _ = boot.paired(Metric::F1Macro, &pred, &pred);
        }
        let _ = (McNemar::from_predictions(t, p, p), McNemar::new(t.len() as u64, 0));
        let _ = (stats::wilson(x[2] as u64, t.len() as u64, x[0]), stats::holm(s, x[1]), Replicates::new(s, x[0]));
        let _ = stats::welch(s, w).map(|welch| welch.interval(x[1]));
    }

    proptest! {
        #[test]
        fn no_metric_panics(
            k in 0usize..5,
            t in prop::collection::vec(0usize..7, 0..12),
            p in prop::collection::vec(0usize..7, 0..12),
            s in prop::collection::vec(float(), 0..40),
            w in prop::collection::vec(float(), 0..12),
            x in [float(), float(), float()],
        ) {
            every_function(k, &t, &p, &s, &w, x);
        }
    }
}
