"""Goldens for `cnnlab tune`, from Optuna 5.1 and scipy (pip install optuna==5.1.0 scipy; not needed by CI):

- pruning: recorded sequences of per-epoch values, reported trial by trial and with four
  trials running at once, and Optuna's answer to every `should_prune()` for its
  SuccessiveHalvingPruner and MedianPruner;
- Sobol: scipy's unscrambled `qmc.Sobol` points as 30-bit integers, and the values
  Optuna's `QMCSampler(qmc_type="sobol", scramble=False)` gives trials on a mixed space;
- TPE: Optuna's TPESampler (its defaults, seeded) on the synthetic objectives the tests
  run cnnlab's TPE on: the best value each of 100 seeded studies found.

    python crates/cli/tests/tune_golden.py > crates/cli/tests/tune_golden.json
    python crates/cli/tests/tune_golden.py --only sobol   # rewrites that part in place
"""
import json
import math
import random
import sys

import numpy as np
import optuna
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.ERROR)


def curves(rng, n, max_steps, nan_rate):
    """Learning-curve-like sequences: a plateau, a speed, noise, now and then a NaN."""
    out = []
    for _ in range(n):
        top, speed = rng.uniform(0.3, 0.95), rng.uniform(1.0, 8.0)
        seq = []
        for t in range(1, max_steps + 1):
            v = top * (1 - math.exp(-t / speed)) + rng.gauss(0, 0.02)
            seq.append(float("nan") if rng.random() < nan_rate else round(v, 6))
        out.append(seq)
    return out


def run_pruner(pruner, direction, seqs, running):
    """Reports `seqs` with `running` trials at once (round robin); every decision."""
    study = optuna.create_study(direction=direction, pruner=pruner)
    events, pending, active = [], list(range(len(seqs))), []
    trials = {}
    while pending or active:
        while pending and len(active) < running:
            k = pending.pop(0)
            trials[k] = study.ask()
            active.append([k, 0])
        slot = active.pop(0)
        k, done = slot
        step = done + 1
        value = seqs[k][done]
        trial = trials[k]
        trial.report(value, step)
        pruned = bool(trial.should_prune())
        events.append([k, step, None if math.isnan(value) else value, pruned])
        if pruned:
            study.tell(trial, state=TrialState.PRUNED)
        elif step == len(seqs[k]):
            study.tell(trial, value if not math.isnan(value) else 0.0)
        else:
            active.append([k, step])
    return events


def branin(x1, x2):
    a, b, c, r, s, t = 1, 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return a * (x2 - b * x1 ** 2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


def quadratic(xs, kind):
    offsets = {"a": 0.0, "b": 0.5, "c": 2.0}
    return sum((x - 0.3 * (i + 1)) ** 2 for i, x in enumerate(xs)) + offsets[kind]


# The median regret of 20 seeds moves from 0.07 to 0.18 on Branin between sets of 20
# (both samplers): 100 seeds make "no worse than Optuna" a comparison, not a draw.
SEEDS = 100


def tpe_best(objective, trials, seeds):
    """The best value each seeded study found in `trials` trials."""
    out = []
    for seed in range(seeds):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=trials)
        out.append(study.best_value)
    return out


def sobol():
    from scipy.stats import qmc
    points = {}
    for d in (1, 3, 12, 64):
        raw = qmc.Sobol(d, scramble=False, bits=30).random(64)
        points[str(d)] = (raw * 2**30).astype(np.int64).tolist()

    # Keys in sorted order, as cnnlab's space; every kind of distribution.
    def objective(trial):
        trial.suggest_categorical("a_choice", ["x", "y", "z"])
        trial.suggest_float("b_lr", 1e-5, 1e-1, log=True)
        trial.suggest_int("c_int", 0, 4)
        trial.suggest_float("d_p", 0.0, 0.5)
        trial.suggest_int("e_wide", -3, 100)
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.QMCSampler(qmc_type="sobol", scramble=False, seed=0))
    study.optimize(objective, n_trials=41)
    trials = [{k: t.params[k] for k in sorted(t.params)} for t in study.trials]
    # Trial 0 is drawn at random (Optuna learns the space from it); trial k is point k - 1.
    return {"points": points, "optuna_trials": trials[1:],
            "space": {"a_choice": {"choice": ["x", "y", "z"]}, "b_lr": {"log_uniform": [1e-5, 1e-1]},
                      "c_int": {"int": [0, 4]}, "d_p": {"uniform": [0.0, 0.5]}, "e_wide": {"int": [-3, 100]}}}


def main():
    if sys.argv[1:] == ["--only", "sobol"]:
        path = __file__.replace(".py", ".json")
        with open(path) as f:
            golden = json.load(f)
        golden["sobol"] = sobol()
        with open(path, "w") as f:
            json.dump(golden, f)
            f.write("\n")
        return
    rng = random.Random(20261207)
    cases = []
    for (name, pruner, direction, running, nan_rate) in [
        ("sh_min1_eta3", dict(kind="successive_halving", min_epochs=1, reduction=3, rate=0), "maximize", 1, 0.0),
        ("sh_min1_eta3_async4", dict(kind="successive_halving", min_epochs=1, reduction=3, rate=0), "maximize", 4, 0.0),
        ("sh_min2_eta2_rate1_min", dict(kind="successive_halving", min_epochs=2, reduction=2, rate=1), "minimize", 4, 0.03),
        ("sh_min1_eta4_nan", dict(kind="successive_halving", min_epochs=1, reduction=4, rate=0), "maximize", 3, 0.05),
        ("median_5_0", dict(kind="median", startup_trials=5, warmup_epochs=0), "maximize", 1, 0.0),
        ("median_3_2_async4_min", dict(kind="median", startup_trials=3, warmup_epochs=2), "minimize", 4, 0.03),
    ]:
        seqs = curves(rng, 40, 27, nan_rate)
        if pruner["kind"] == "median":
            p = optuna.pruners.MedianPruner(n_startup_trials=pruner["startup_trials"], n_warmup_steps=pruner["warmup_epochs"])
        else:
            p = optuna.pruners.SuccessiveHalvingPruner(
                min_resource=pruner["min_epochs"], reduction_factor=pruner["reduction"],
                min_early_stopping_rate=pruner["rate"])
        cases.append({"name": name, "pruner": pruner, "direction": direction,
                      "events": run_pruner(p, direction, seqs, running)})

    def branin_objective(trial):
        return branin(trial.suggest_float("x1", -5, 10), trial.suggest_float("x2", 0, 15))

    def quadratic_objective(trial):
        xs = [trial.suggest_float(f"x{i}", -2, 2) for i in range(5)]
        return quadratic(xs, trial.suggest_categorical("kind", ["a", "b", "c"]))

    tpe = {
        "branin": {"optimum": 0.397887, "trials": 60, "best": tpe_best(branin_objective, 60, SEEDS)},
        "quadratic5_categorical": {"optimum": 0.0, "trials": 80, "best": tpe_best(quadratic_objective, 80, SEEDS)},
    }
    json.dump({"optuna": optuna.__version__, "pruning": cases, "tpe": tpe, "sobol": sobol()}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
