//! The tuner's parts against Optuna 5.1 (`tests/tune_golden.py` wrote the goldens).

use std::collections::BTreeMap;

use super::*;

fn golden() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tune_golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every `should_prune()` answer of Optuna's SuccessiveHalvingPruner and MedianPruner
/// on recorded learning curves (trial by trial, and 3-4 trials running at once, NaNs
/// among the values): cnnlab's pruners answer the same, through the study's own
/// replay of its events.
#[test]
fn pruners_decide_as_optuna() {
    let g = golden();
    assert_eq!(g["optuna"], "5.1.0");
    let mut decisions = 0;
    for case in g["pruning"].as_array().unwrap() {
        let p = &case["pruner"];
        let n = |k: &str| p[k].as_u64().unwrap() as usize;
        let pruner = match p["kind"].as_str().unwrap() {
            "median" => Pruner::Median { startup_trials: n("startup_trials"), warmup_epochs: n("warmup_epochs") },
            _ => Pruner::SuccessiveHalving {
                min_epochs: n("min_epochs"),
                reduction: n("reduction"),
                min_early_stopping_rate: n("rate") as u32,
            },
        };
        let direction = if case["direction"] == "maximize" { Direction::Maximize } else { Direction::Minimize };
        let dir = tempfile::tempdir().unwrap();
        let space: Space = [("x".to_owned(), Dist::Uniform { low: 0.0, high: 1.0 })].into();
        let mut study = Study::open(dir.path(), &space, pruner, direction).unwrap();
        let mut last_step: BTreeMap<usize, usize> = BTreeMap::new();
        for e in case["events"].as_array().unwrap() {
            let (k, step) = (e[0].as_u64().unwrap() as usize, e[1].as_u64().unwrap() as usize);
            while study.trials.len() <= k {
                let trial = study.trials.len();
                study
                    .record(Event::Start { trial, params: [("x".to_owned(), serde_json::json!(0.5))].into() })
                    .unwrap();
            }
            let value = e[2].as_f64();
            let prune = study.record(Event::Epoch { trial: k, epoch: step, value, seconds: 1.0 }).unwrap();
            assert_eq!(prune, e[3].as_bool().unwrap(), "{}: trial {k} at step {step}", case["name"]);
            decisions += 1;
            last_step.insert(k, step);
            if prune {
                study.record(Event::End { trial: k, state: TrialState::Pruned, value, reason: None }).unwrap();
            } else if step == 27 {
                let v = Some(value.unwrap_or(0.0));
                study.record(Event::End { trial: k, state: TrialState::Complete, value: v, reason: None }).unwrap();
            }
        }
        // The file replays to the same study, rungs included.
        let again = Study::open(dir.path(), &space, pruner, direction).unwrap();
        // (Compared as text: NaN values are equal there.)
        assert_eq!(format!("{:?}", again.trials), format!("{:?}", study.trials), "{}", case["name"]);
    }
    assert!(decisions > 1500, "{decisions}");
}

fn branin(x1: f64, x2: f64) -> f64 {
    let (b, c, t) =
        (5.1 / (4.0 * std::f64::consts::PI.powi(2)), 5.0 / std::f64::consts::PI, 1.0 / (8.0 * std::f64::consts::PI));
    (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - t) * x1.cos() + 10.0
}

fn quadratic(xs: &[f64], kind: &str) -> f64 {
    let offset = match kind {
        "a" => 0.0,
        "b" => 0.5,
        _ => 2.0,
    };
    xs.iter().enumerate().map(|(i, x)| (x - 0.3 * (i + 1) as f64).powi(2)).sum::<f64>() + offset
}

/// The best value after `trials` trials of `kind` on `objective`, one study per seed.
fn regrets(
    kind: SamplerKind,
    space: &Space,
    trials: usize,
    seeds: u64,
    f: &dyn Fn(&BTreeMap<String, Value>) -> f64,
    optimum: f64,
) -> Vec<f64> {
    (0..seeds)
        .map(|seed| {
            let mut seen: Vec<Observation> = Vec::new();
            let mut best = f64::INFINITY;
            for index in 0..trials {
                let params = sampler::suggest(kind, space, seed, index, &seen);
                let y = f(&params);
                best = best.min(y);
                seen.push(Observation { params, loss: Some(y), complete: true, epochs: 1 });
            }
            best - optimum
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
}

fn float(p: &BTreeMap<String, Value>, k: &str) -> f64 {
    match &p[k] {
        Value::Float(f) => *f,
        other => panic!("{other:?}"),
    }
}

/// How many seeded studies each sampler runs per objective (as the golden's Optuna).
const SEEDS: u64 = 100;

/// TPE on Branin (60 trials) and a 5-d quadratic with a categorical (80 trials), 100
/// seeds each: cnnlab's median regret is no worse than Optuna's TPESampler's (its
/// defaults) at the same trial count, and better than random search's.
#[test]
fn tpe_is_no_worse_than_optunas_and_beats_random() {
    let g = golden();
    let branin_space: Space = [
        ("x1".to_owned(), Dist::Uniform { low: -5.0, high: 10.0 }),
        ("x2".to_owned(), Dist::Uniform { low: 0.0, high: 15.0 }),
    ]
    .into();
    let mut quad_space: Space = (0..5).map(|i| (format!("x{i}"), Dist::Uniform { low: -2.0, high: 2.0 })).collect();
    let kinds = ["a", "b", "c"].map(|k| toml::Value::String(k.into())).to_vec();
    quad_space.insert("kind".into(), Dist::Choice(kinds));
    let branin_f = |p: &BTreeMap<String, Value>| branin(float(p, "x1"), float(p, "x2"));
    let quad_f = |p: &BTreeMap<String, Value>| {
        let xs: Vec<f64> = (0..5).map(|i| float(p, &format!("x{i}"))).collect();
        let Value::Choice(_, kind) = &p["kind"] else { panic!() };
        quadratic(&xs, kind.as_str().unwrap())
    };
    type Objective<'a> = (&'a str, &'a Space, usize, &'a dyn Fn(&BTreeMap<String, Value>) -> f64);
    let cases: [Objective; 2] =
        [("branin", &branin_space, 60, &branin_f), ("quadratic5_categorical", &quad_space, 80, &quad_f)];
    for (name, space, trials, f) in cases {
        let reference = &g["tpe"][name];
        let optimum = reference["optimum"].as_f64().unwrap();
        assert_eq!(reference["trials"].as_u64(), Some(trials as u64));
        let optuna =
            median(reference["best"].as_array().unwrap().iter().map(|b| b.as_f64().unwrap() - optimum).collect());
        let ours = median(regrets(SamplerKind::Tpe, space, trials, SEEDS, f, optimum));
        let random = median(regrets(SamplerKind::Random, space, trials, SEEDS, f, optimum));
        println!("{name}: median regret after {trials} trials: cnnlab TPE {ours:.4}, Optuna TPE {optuna:.4}, random {random:.4}");
        assert!(ours <= optuna, "{name}: cnnlab TPE {ours} vs Optuna's {optuna}");
        assert!(ours < random, "{name}: TPE {ours} vs random {random}");
    }
}

/// Unshifted, cnnlab's Sobol points are scipy's `qmc.Sobol(d, scramble=False)` points
/// bit for bit (1, 3, 12 and 64 dimensions, 64 points each).
#[test]
fn sobol_points_equal_scipys() {
    let g = golden();
    for (dims, points) in g["sobol"]["points"].as_object().unwrap() {
        let dims: usize = dims.parse().unwrap();
        for (k, want) in points.as_array().unwrap().iter().enumerate() {
            let want: Vec<u32> = want.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            assert_eq!(sobol::point_bits(k as u32, dims), want, "{dims} dimensions, point {k}");
        }
    }
}

/// Mapped onto a space with every kind of key, the unshifted points give the values
/// Optuna's `QMCSampler(scramble=False)` gave its trials 1..=40.
#[test]
fn sobol_values_equal_optunas_qmc_sampler() {
    let g = golden();
    let space_toml: toml::Table = serde_json::from_value(g["sobol"]["space"].clone()).unwrap();
    let space = space::parse_space(&space_toml).unwrap();
    let trials = g["sobol"]["optuna_trials"].as_array().unwrap();
    assert_eq!(trials.len(), 40);
    for (k, want) in trials.iter().enumerate() {
        let u = sobol::point(k as u32, space.len(), None);
        for ((key, dist), u) in space.iter().zip(u) {
            let want = &want[key];
            match sampler::from_unit(dist, u) {
                Value::Float(x) => {
                    let w = want.as_f64().unwrap();
                    assert!((x - w).abs() <= 1e-12 * w.abs().max(1e-300), "trial {}: {key} = {x}, Optuna {w}", k + 1)
                }
                Value::Int(i) => assert_eq!(Some(i), want.as_i64(), "trial {}: {key}", k + 1),
                Value::Choice(_, v) => assert_eq!(v.as_str(), want.as_str(), "trial {}: {key}", k + 1),
            }
        }
    }
}

/// The study's digital shift keeps the sequence a net: the first 2^m trials of a
/// shifted study put exactly one value in each of the 2^m equal slices of every
/// parameter's range (random search leaves gaps and doubles); other seeds shift it
/// elsewhere, the same seed draws the same.
#[test]
fn a_sobol_study_stratifies_every_parameter() {
    let space: Space = (0..10).map(|i| (format!("x{i}"), space::Dist::Uniform { low: 0.0, high: 1.0 })).collect();
    let draw = |seed: u64, k: usize| sampler::suggest(SamplerKind::Sobol, &space, seed, k, &[]);
    for seed in [0, 7] {
        let trials: Vec<_> = (0..16).map(|k| draw(seed, k)).collect();
        for key in space.keys() {
            let mut slices: Vec<usize> = trials.iter().map(|t| (float(t, key) * 16.0) as usize).collect();
            slices.sort_unstable();
            assert_eq!(slices, (0..16).collect::<Vec<_>>(), "seed {seed}, {key}");
        }
    }
    assert_eq!(draw(3, 5), draw(3, 5));
    assert_ne!(draw(3, 0), draw(4, 0));
    assert_ne!(float(&draw(3, 0), "x0"), 0.0, "the shift moves the first point off the corner");
}

#[test]
fn a_sampled_value_lands_at_its_dotted_key() {
    let mut config: toml::Table =
        toml::from_str("[train]\nlr = 0.1\n[augment]\nops = [{ op = \"hflip\", p = 0.5 }]\n").unwrap();
    space::set(&mut config, "train.lr", toml::Value::Float(0.01)).unwrap();
    space::set(&mut config, "train.weight_decay", toml::Value::Float(1e-4)).unwrap();
    space::set(&mut config, "augment.ops[0].p", toml::Value::Float(0.25)).unwrap();
    space::set(&mut config, "model.dropout", toml::Value::Float(0.3)).unwrap();
    assert_eq!(config["train"]["lr"].as_float(), Some(0.01));
    assert_eq!(config["train"]["weight_decay"].as_float(), Some(1e-4));
    assert_eq!(config["augment"]["ops"][0]["p"].as_float(), Some(0.25));
    assert_eq!(config["model"]["dropout"].as_float(), Some(0.3));
    let err = space::set(&mut config, "augment.ops[3].p", toml::Value::Float(0.1)).unwrap_err().to_string();
    assert!(err.contains("augment.ops[3] does not exist (the list has 1)"), "{err}");
    let err = space::set(&mut config, "train.lr.x", toml::Value::Float(0.1)).unwrap_err().to_string();
    assert!(err.contains("train.lr is not a table"), "{err}");
}

#[test]
fn tune_sections_parse_and_bad_ones_name_the_key() {
    let parse = |text: &str| TuneConfig::parse(&toml::from_str::<toml::Table>(text).unwrap());
    let ok = parse(
        "trials = 8\nsampler = \"random\"\npruner = { kind = \"asha\", min_epochs = 2, reduction = 2 }\n[space]\n\"train.lr\" = { log_uniform = [1e-4, 1e-1] }\n\"train.batch_size\" = { choice = [32, 64] }\n",
    )
    .unwrap();
    assert_eq!(ok.trials, Some(8));
    assert_eq!(ok.pruner, Pruner::SuccessiveHalving { min_epochs: 2, reduction: 2, min_early_stopping_rate: 0 });
    assert_eq!(ok.pruner.rungs(10), [2, 4, 8]);
    assert_eq!(ok.metric.direction(), Direction::Maximize);
    assert_eq!(ok.confirm, None);
    for (text, needle) in [
        ("trials = 2\nsamplr = \"tpe\"\n[space]\n\"a\" = { uniform = [0, 1] }", "tune.samplr: no such key"),
        ("[space]\n\"a\" = { uniform = [0, 1] }", "give `trials = N`, `budget_minutes = M`, or both"),
        ("trials = 2\nmetric = \"acc\"\n[space]\n\"a\" = { uniform = [0, 1] }", "tune.metric: `acc` is not"),
        (
            "trials = 2\n[space]\n\"a\" = { uniform = [1, 0] }",
            "tune.space.\"a\": uniform takes [low, high] with low < high",
        ),
        ("trials = 2\n[space]\n\"a\" = { log_uniform = [0, 1] }", "log_uniform needs low > 0"),
        ("trials = 2\n[space]\n\"a\" = { normal = [0, 1] }", "unknown distribution `normal`"),
        (
            "trials = 2\npruner = { kind = \"asha\", eta = 3 }\n[space]\n\"a\" = { uniform = [0, 1] }",
            "tune.pruner.eta: no such key",
        ),
        (
            "trials = 2\npruner = \"hyperband\"\n[space]\n\"a\" = { uniform = [0, 1] }",
            "`hyperband` is not none, median or asha",
        ),
        ("trials = 2\n", "tune.space: missing"),
        (
            "trials = 2\nconfirm = { top = 2, seed = 3 }\n[space]\n\"a\" = { uniform = [0, 1] }",
            "tune.confirm.seed: no such key",
        ),
        (
            "trials = 2\nconfirm = { seeds = 1 }\n[space]\n\"a\" = { uniform = [0, 1] }",
            "tune.confirm.seeds: expected a whole number of at least 2",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{text:?}: {err}");
    }
}

/// A study file cut by kill -9 in the middle of its last line replays without it.
#[test]
fn a_torn_last_line_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let space: Space = [("x".to_owned(), Dist::Uniform { low: 0.0, high: 1.0 })].into();
    let mut study = Study::open(dir.path(), &space, Pruner::None, Direction::Maximize).unwrap();
    study.record(Event::Start { trial: 0, params: [("x".to_owned(), serde_json::json!(0.25))].into() }).unwrap();
    study.record(Event::Epoch { trial: 0, epoch: 1, value: Some(0.5), seconds: 2.0 }).unwrap();
    let path = dir.path().join(STUDY_FILE);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"event\":\"epoch\",\"trial\":0,\"ep");
    std::fs::write(&path, &text).unwrap();
    let again = Study::open(dir.path(), &space, Pruner::None, Direction::Maximize).unwrap();
    assert_eq!(again.trials, study.trials);
    assert_eq!(again.seconds(), 2.0);
    text.push_str("\n{}\n");
    std::fs::write(&path, &text).unwrap();
    let err = Study::open(dir.path(), &space, Pruner::None, Direction::Maximize).unwrap_err().to_string();
    assert!(err.contains("study.jsonl:3: not a study event"), "{err}");
}
