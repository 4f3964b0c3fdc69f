//! `stats` against scipy and statsmodels (stats_golden.json, made by
//! gen_stats_golden.py) to 1e-9, and the coverage of the bootstrap interval.

use cnnlab_metrics::stats::{
    distribution, holm, interval, paired_difference, wilson, Bootstrap, McNemar, Method, Metric, Predictions,
    Replicates,
};
use cnnlab_metrics::Error;
use serde_json::Value;

use super::{floats, usizes, TOL};

fn golden() -> Value {
    serde_json::from_str(include_str!("stats_golden.json")).unwrap()
}

fn check(what: &str, got: f64, want: f64) {
    assert!((got - want).abs() <= TOL, "{what}: got {got}, reference {want}");
}

#[test]
fn bootstrap_intervals_equal_scipy_on_the_same_resamples() {
    let g = &golden()["bootstrap"];
    let k = g["n_classes"].as_u64().unwrap() as usize;
    let (y, a, b, scores) = (usizes(&g["y_true"]), usizes(&g["pred_a"]), usizes(&g["pred_b"]), floats(&g["scores"]));
    let indices: Vec<Vec<usize>> = g["indices"].as_array().unwrap().iter().map(usizes).collect();
    let n = y.len();
    let run_a = Predictions::new(&y, &a, k).unwrap().with_scores(&scores).unwrap();
    let run_b = Predictions::new(&y, &b, k).unwrap();
    let keys: Vec<u64> = (0..n).map(|i| (y[i] * k + a[i]) as u64).collect();
    for case in g["intervals"].as_array().unwrap() {
        let metric = Metric::from_name(case["metric"].as_str().unwrap()).unwrap();
        let method = if case["method"] == "bca" { Method::Bca } else { Method::Percentile };
        let confidence = case["confidence"].as_f64().unwrap();
        let name = format!("{metric} {method:?} {confidence}");
        let stat = |idx: &[usize]| metric.on(&run_a, idx);
        let dist = distribution(n, &stat, indices.clone());
        check(&format!("{name} value"), dist.value, case["value"].as_f64().unwrap());
        check(&format!("{name} standard error"), dist.standard_error(), case["standard_error"].as_f64().unwrap());
        // The keyed jackknife (one evaluation per (true, predicted) pair) for the
        // label metrics; ROC AUC leaves each example out in turn.
        let keys = (metric != Metric::RocAuc).then_some(keys.as_slice());
        let ci = interval(&dist, method, confidence, n, &stat, keys).unwrap();
        check(&format!("{name} low"), ci.low, case["low"].as_f64().unwrap());
        check(&format!("{name} high"), ci.high, case["high"].as_f64().unwrap());
    }
    let paired = g["paired"].as_array().unwrap();
    assert_eq!(paired.len(), 6);
    for case in paired {
        let metric = Metric::from_name(case["metric"].as_str().unwrap()).unwrap();
        let diff = |idx: &[usize]| metric.on(&run_b, idx) - metric.on(&run_a, idx);
        let d = paired_difference(run_a.metric(metric), run_b.metric(metric), n, &diff, indices.clone(), 0.95);
        for (what, got) in [
            ("a", d.a),
            ("b", d.b),
            ("difference", d.difference.value),
            ("low", d.difference.low),
            ("high", d.difference.high),
            ("p_value", d.p_value),
        ] {
            check(&format!("paired {metric} {what}"), got, case[what].as_f64().unwrap());
        }
    }
}

#[test]
fn wilson_mcnemar_replicates_welch_holm_equal_statsmodels_and_scipy() {
    let g = golden();
    for case in g["wilson"].as_array().unwrap() {
        let (s, n) = (case["successes"].as_u64().unwrap(), case["n"].as_u64().unwrap());
        let w = wilson(s, n, case["confidence"].as_f64().unwrap()).unwrap();
        check(&format!("wilson {s}/{n} low"), w.low, case["low"].as_f64().unwrap());
        check(&format!("wilson {s}/{n} high"), w.high, case["high"].as_f64().unwrap());
    }
    for case in g["mcnemar"].as_array().unwrap() {
        let (b, c) = (case["b"].as_u64().unwrap(), case["c"].as_u64().unwrap());
        let m = McNemar::new(b, c);
        check(&format!("mcnemar {b},{c} exact"), m.p_exact, case["p_exact"].as_f64().unwrap());
        check(&format!("mcnemar {b},{c} mid-p"), m.p_mid, case["p_mid"].as_f64().unwrap());
        match case["chi2"].as_f64() {
            Some(chi2) => {
                check(&format!("mcnemar {b},{c} chi2"), m.chi2, chi2);
                check(&format!("mcnemar {b},{c} chi2 p"), m.p_chi2, case["p_chi2"].as_f64().unwrap());
            }
            None => assert!(m.chi2.is_nan() && m.p_chi2 == 1.0, "no discordant pair: {m:?}"),
        }
    }
    for case in g["replicates"].as_array().unwrap() {
        let v = floats(&case["values"]);
        let r = Replicates::new(&v, case["confidence"].as_f64().unwrap()).unwrap();
        for (what, got) in [("mean", r.mean), ("std", r.std), ("low", r.interval.low), ("high", r.interval.high)] {
            check(&format!("replicates of {} {what}", v.len()), got, case[what].as_f64().unwrap());
        }
    }
    for case in g["welch"].as_array().unwrap() {
        let (a, b) = (floats(&case["a"]), floats(&case["b"]));
        let w = cnnlab_metrics::stats::welch(&a, &b).unwrap();
        let ci = w.interval(0.95);
        for (what, got) in [("t", w.t), ("df", w.df), ("p_value", w.p_value), ("low", ci.low), ("high", ci.high)] {
            check(&format!("welch {}/{} {what}", a.len(), b.len()), got, case[what].as_f64().unwrap());
        }
    }
    for case in g["holm"].as_array().unwrap() {
        let p = floats(&case["p"]);
        let h = holm(&p, case["alpha"].as_f64().unwrap()).unwrap();
        let want_adj = floats(&case["adjusted"]);
        let want_rej: Vec<bool> = case["reject"].as_array().unwrap().iter().map(|r| r.as_bool().unwrap()).collect();
        for (i, h) in h.iter().enumerate() {
            check(&format!("holm {p:?} [{i}]"), h.adjusted, want_adj[i]);
            assert_eq!(h.reject, want_rej[i], "holm {p:?} [{i}] reject");
        }
    }
}

/// The percentile interval of accuracy covers the true rate about 95% of the time on
/// simulated test sets (300 sets of 200 Bernoulli(0.8) outcomes, 300 resamples each).
#[test]
fn percentile_interval_covers_about_95_percent() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (sets, n, rate) = (300, 200, 0.8);
    let mut covered = 0;
    for set in 0..sets {
        let y_true = vec![0usize; n];
        let y_pred: Vec<usize> = (0..n).map(|_| usize::from(rng.gen::<f64>() >= rate)).collect();
        let p = Predictions::new(&y_true, &y_pred, 2).unwrap();
        let boot = Bootstrap { resamples: 300, seed: set, ..Bootstrap::default() };
        covered += usize::from(boot.interval(Metric::Accuracy, &p).unwrap().contains(rate));
    }
    let coverage = covered as f64 / sets as f64;
    // Binomial noise of 300 trials at 0.95 is 1.3 points; the percentile interval
    // undercovers slightly at this size.
    assert!((0.90..=0.985).contains(&coverage), "coverage {coverage}");
}

#[test]
fn bootstrap_is_seeded_and_bca_differs_from_percentile() {
    let y_true = [0, 1, 2, 1, 0, 2, 2, 1, 0, 0, 1, 2, 2, 0, 1, 1, 0, 2, 1, 0];
    let y_pred = [0, 2, 2, 1, 1, 2, 0, 1, 0, 2, 1, 2, 2, 0, 0, 1, 0, 2, 1, 1];
    let p = Predictions::new(&y_true, &y_pred, 3).unwrap();
    let boot = Bootstrap { resamples: 500, seed: 3, ..Bootstrap::default() };
    let a = boot.interval(Metric::F1Macro, &p).unwrap();
    assert_eq!(a, boot.interval(Metric::F1Macro, &p).unwrap());
    assert_ne!(a, Bootstrap { seed: 4, ..boot }.interval(Metric::F1Macro, &p).unwrap());
    let bca = Bootstrap { method: Method::Bca, ..boot }.interval(Metric::F1Macro, &p).unwrap();
    assert_eq!(bca.value, a.value);
    assert_ne!((bca.low, bca.high), (a.low, a.high));
    let strat = Bootstrap { stratified: true, ..boot }.interval(Metric::Accuracy, &p).unwrap();
    assert!(strat.contains(strat.value));
    // A run against itself: no difference, p = 1.
    let same = boot.paired(Metric::Accuracy, &p, &p).unwrap();
    assert_eq!((same.difference.value, same.difference.low, same.difference.high, same.p_value), (0.0, 0.0, 0.0, 1.0));
}

#[test]
fn bad_statistics_input_is_a_typed_error() {
    let p = Predictions::new(&[0, 1, 1], &[0, 1, 0], 2).unwrap();
    let q = Predictions::new(&[0, 0, 1], &[0, 1, 0], 2).unwrap();
    let boot = Bootstrap::default();
    assert_eq!(boot.paired(Metric::Accuracy, &p, &q), Err(Error::TruthMismatch { index: 1 }));
    let short = Predictions::new(&[0, 1], &[0, 1], 2).unwrap();
    assert_eq!(boot.paired(Metric::Accuracy, &p, &short), Err(Error::LengthMismatch { y_true: 3, other: 2 }));
    assert_eq!(Bootstrap { confidence: 1.0, ..boot }.interval(Metric::Accuracy, &p), Err(Error::Confidence(1.0)));
    assert_eq!(wilson(4, 3, 0.95), Err(Error::Count { successes: 4, n: 3 }));
    assert_eq!(wilson(0, 0, 0.95), Err(Error::Empty));
    assert_eq!(cnnlab_metrics::stats::welch(&[1.0], &[1.0, 2.0]), Err(Error::TooFew { need: 2, got: 1 }));
    assert_eq!(Replicates::new(&[], 0.95), Err(Error::Empty));
    let one = Replicates::new(&[0.5], 0.95).unwrap();
    assert!(one.mean == 0.5 && one.std.is_nan() && one.interval.low.is_nan());
    assert!(Metric::RocAuc.on(&p, &[0, 1, 2]).is_nan(), "ROC AUC without scores is NaN");
    assert_eq!(Metric::from_name("f1_macro"), Some(Metric::F1Macro));
    assert_eq!(Metric::from_name("f1-macro"), None);
    assert!(matches!(Predictions::new(&[0, 3], &[0, 1], 2), Err(Error::LabelOutOfRange { label: 3, .. })));
}

/// The paired bootstrap's p-value is the count of resampled differences on the
/// smaller side of 0, plus one, over the resamples plus one, twice (computed here
/// directly from the same resamples): never 0, at least 2 / (B + 1). Fewer resamples
/// than an interval and a test at the level need are refused, naming the minimum.
#[test]
fn paired_p_values_count_the_observed_difference_and_need_enough_resamples() {
    let y_true: Vec<usize> = (0..200).map(|i| i % 2).collect();
    // a is wrong on every third example, b never: every resampled difference is > 0.
    let a_pred: Vec<usize> = (0..200).map(|i| if i % 3 == 0 { 1 - i % 2 } else { i % 2 }).collect();
    let a = Predictions::new(&y_true, &a_pred, 2).unwrap();
    let b = Predictions::new(&y_true, &y_true, 2).unwrap();
    // c differs from a on a few examples only, both ways: p well above 0.
    let c_pred: Vec<usize> = a_pred.iter().enumerate().map(|(i, &p)| if i % 17 == 0 { 1 - p } else { p }).collect();
    let c = Predictions::new(&y_true, &c_pred, 2).unwrap();
    for resamples in [40, 101, 2000] {
        let boot = Bootstrap { resamples, seed: 7, ..Bootstrap::default() };
        let sets: Vec<Vec<usize>> = boot.index_sets(&y_true).collect();
        for (other, all_above) in [(&b, true), (&c, false)] {
            let d = boot.paired(Metric::Accuracy, &a, other).unwrap();
            let diffs: Vec<f64> =
                sets.iter().map(|idx| Metric::Accuracy.on(other, idx) - Metric::Accuracy.on(&a, idx)).collect();
            let below = diffs.iter().filter(|&&x| x <= 0.0).count();
            let above = diffs.iter().filter(|&&x| x >= 0.0).count();
            let direct = (2.0 * (below.min(above) + 1) as f64 / (resamples + 1) as f64).min(1.0);
            assert_eq!(d.p_value, direct, "{resamples} resamples");
            assert!(d.p_value >= 2.0 / (resamples as f64 + 1.0));
            if all_above {
                assert_eq!(below, 0);
                assert_eq!(d.p_value, 2.0 / (resamples as f64 + 1.0), "no resample crosses 0: not p = 0");
            }
        }
    }
    for (confidence, minimum) in [(0.95, 40), (0.99, 200), (0.9, 20)] {
        assert_eq!(Bootstrap::minimum_resamples(confidence), minimum);
        let few = Bootstrap { resamples: minimum - 1, confidence, ..Bootstrap::default() };
        let refused = Error::TooFewResamples { resamples: minimum - 1, confidence, minimum };
        assert_eq!(few.paired(Metric::Accuracy, &a, &b).unwrap_err(), refused);
        assert_eq!(few.interval(Metric::Accuracy, &a).unwrap_err(), refused);
        assert!(Bootstrap { resamples: minimum, ..few }.paired(Metric::Accuracy, &a, &b).is_ok());
    }
    let none = Bootstrap { resamples: 0, ..Bootstrap::default() }.interval(Metric::Accuracy, &a).unwrap_err();
    assert_eq!(none.to_string(), "0 resamples are too few for a 0.95 interval and test: at least 40 are needed");
}
