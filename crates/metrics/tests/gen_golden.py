#!/usr/bin/env python3
"""Golden values for cnnlab-metrics, computed by scikit-learn.

Run by hand (the project's .venv: pip install scikit-learn==1.9.1 numpy) from the
repository root:
    python3 crates/metrics/tests/gen_golden.py > crates/metrics/tests/golden.json
The Rust tests read golden.json; no Python runs at test time.
"""
import json
import sys

import numpy as np
import sklearn
from sklearn import metrics as M

# Seed 001's per-character counts of the Kaggle Simpsons data (42 classes, 3..2246).
SIMPSONS = {'abraham_grampa_simpson': 913, 'agnes_skinner': 42, 'apu_nahasapeemapetilon': 623, 'barney_gumble': 106,
            'bart_simpson': 1342, 'carl_carlson': 98, 'charles_montgomery_burns': 1193, 'chief_wiggum': 986,
            'cletus_spuckler': 47, 'comic_book_guy': 469, 'disco_stu': 8, 'edna_krabappel': 457, 'fat_tony': 27,
            'gil': 27, 'groundskeeper_willie': 121, 'homer_simpson': 2246, 'kent_brockman': 498,
            'krusty_the_clown': 1206, 'lenny_leonard': 310, 'lionel_hutz': 3, 'lisa_simpson': 1354,
            'maggie_simpson': 128, 'marge_simpson': 1291, 'martin_prince': 71, 'mayor_quimby': 246,
            'milhouse_van_houten': 1079, 'miss_hoover': 17, 'moe_szyslak': 1452, 'ned_flanders': 1454,
            'nelson_muntz': 358, 'otto_mann': 32, 'patty_bouvier': 72, 'principal_skinner': 1194,
            'professor_john_frink': 65, 'rainier_wolfcastle': 45, 'ralph_wiggum': 89, 'selma_bouvier': 103,
            'sideshow_bob': 877, 'sideshow_mel': 40, 'snake_jailbird': 55, 'troy_mcclure': 8, 'waylon_smithers': 181}


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def noisy_scores(rng, y, k, skill, decimals=None):
    logits = rng.normal(size=(len(y), k))
    logits[np.arange(len(y)), y] += skill
    p = softmax(logits)
    if decimals is not None:  # coarse scores: many ties; the last column takes the rest
        q = 10.0 ** decimals
        p[:, :-1] = np.floor(p[:, :-1] * q) / q
        p[:, -1] = 1.0 - p[:, :-1].sum(axis=1)
    return p


def nan_to_none(v):
    """JSON has no NaN: null stands for it (the Rust side reads null as NaN)."""
    if isinstance(v, (list, tuple)):
        return [nan_to_none(x) for x in v]
    v = float(v)
    return None if np.isnan(v) else v


def case(name, y_true, y_pred, scores, k, rng=None):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(k))
    names = [f"class_{i}" for i in labels] if k != 42 else list(SIMPSONS)
    out = {"name": name, "n_classes": k, "class_names": names,
           "y_true": y_true.tolist(), "y_pred": y_pred.tolist(),
           "scores": None if scores is None else scores.ravel().tolist()}
    e = {}
    e["confusion_matrix"] = M.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    e["accuracy"] = M.accuracy_score(y_true, y_pred)
    e["balanced_accuracy"] = M.balanced_accuracy_score(y_true, y_pred)
    for zd_name, zd in [("zero", 0.0), ("one", 1.0)]:
        for avg in ["macro", "micro", "weighted"]:
            for beta in [1.0, 2.0]:
                p, r, f, _ = M.precision_recall_fscore_support(
                    y_true, y_pred, labels=labels, average=avg, beta=beta, zero_division=zd)
                e[f"{avg}_beta{beta:g}_{zd_name}"] = [p, r, f]
        p, r, f, s = M.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None,
                                                       zero_division=zd)
        e[f"per_class_{zd_name}"] = {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
                                     "support": s.tolist()}
    e["mcc"] = M.matthews_corrcoef(y_true, y_pred)
    # scikit-learn's defaults: labels = the classes present in either list.
    for avg in ["macro", "micro", "weighted"]:
        p, r, f, _ = M.precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0.0)
        e[f"present_{avg}"] = [p, r, f]
        p, r, f, _ = M.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg,
                                                       zero_division=np.nan)
        e[f"nan_{avg}"] = nan_to_none([p, r, f])
    weights = np.random.default_rng(len(y_true)).uniform(0.0, 3.0, len(y_true))
    out["sample_weight"] = weights.tolist()
    for avg in ["macro", "micro", "weighted"]:
        p, r, f, _ = M.precision_recall_fscore_support(y_true, y_pred, average=avg, sample_weight=weights,
                                                       zero_division=0.0)
        e[f"weighted_samples_{avg}"] = [p, r, f]
    present = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    if len(present) <= 2:
        # average="binary" (scikit-learn's default) for each possible pos_label.
        # A pos_label outside two present classes is an error: no key.
        for pos in range(k):
            try:
                e[f"binary_pos{pos}"] = [M.precision_score(y_true, y_pred, pos_label=pos, zero_division=0.0),
                                         M.recall_score(y_true, y_pred, pos_label=pos, zero_division=0.0),
                                         M.f1_score(y_true, y_pred, pos_label=pos, zero_division=0.0)]
            except ValueError:
                pass
    for w in [None, "linear", "quadratic"]:
        e[f"kappa_{w}"] = nan_to_none(M.cohen_kappa_score(y_true, y_pred, weights=w))
    e["report_dict"] = M.classification_report(y_true, y_pred, labels=labels, target_names=names,
                                               zero_division=0, output_dict=True)
    e["report_text"] = M.classification_report(y_true, y_pred, labels=labels, target_names=names,
                                               zero_division=0)
    if scores is not None:
        per = []
        for c in labels:
            pos = (y_true == c)
            per.append(M.roc_auc_score(pos, scores[:, c]) if 0 < pos.sum() < len(pos) else None)
        e["roc_auc_per_class"] = per
        defined = [(a, (y_true == c).sum()) for c, a in enumerate(per) if a is not None]
        e["roc_auc_lenient"] = ([float(np.mean([a for a, _ in defined])),
                                 float(np.average([a for a, _ in defined], weights=[w for _, w in defined]))]
                                if defined else None)
        if k > 2:
            e["roc_auc_nan"] = nan_to_none([M.roc_auc_score(y_true, scores, multi_class="ovr", average=a,
                                                            labels=labels) for a in ["macro", "weighted"]])
        ap = [M.average_precision_score(y_true == c, scores[:, c]) for c in labels]
        e["ap_per_class"] = nan_to_none(ap)
        if k > 2:
            from sklearn.preprocessing import label_binarize
            Y = label_binarize(y_true, classes=labels)
            e["ap_averages"] = nan_to_none([M.average_precision_score(Y, scores, average=a)
                                            for a in ["macro", "weighted"]])
        pr, rc, th = M.precision_recall_curve(y_true == 0, scores[:, 0])
        e["pr_curve_class0"] = {"precision": pr.tolist(), "recall": nan_to_none(rc.tolist()), "thresholds": th.tolist()}
        e["brier"] = (M.brier_score_loss(y_true, scores[:, 1]) if k == 2
                      else M.brier_score_loss(y_true, scores, labels=labels))
        if k > 2:
            e["top_k"] = [M.top_k_accuracy_score(y_true, scores, k=j, labels=labels) for j in range(1, k)]
        if all(a is not None for a in per):
            if k == 2:
                e["roc_auc_strict"] = [M.roc_auc_score(y_true, scores[:, 1])] * 2
            else:
                e["roc_auc_strict"] = [M.roc_auc_score(y_true, scores, multi_class="ovr", average="macro",
                                                       labels=labels),
                                       M.roc_auc_score(y_true, scores, multi_class="ovr", average="weighted",
                                                       labels=labels)]
            fpr, tpr, thr = M.roc_curve(y_true == 0, scores[:, 0])
            e["roc_curve_class0"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thr[1:].tolist()}
        if k > 2:
            e["top2"] = M.top_k_accuracy_score(y_true, scores, k=2, labels=labels)
        e["log_loss"] = M.log_loss(y_true, scores, labels=labels)
        # sample_weight beyond precision_recall_fscore (issue 37).
        w = weights
        e["weighted_scores"] = {
            "accuracy": M.accuracy_score(y_true, y_pred, sample_weight=w),
            "top1": M.top_k_accuracy_score(y_true, scores[:, 1] if k == 2 else scores, k=1, labels=labels,
                                           sample_weight=w),
            "log_loss": M.log_loss(y_true, scores, labels=labels, sample_weight=w),
            "brier": (M.brier_score_loss(y_true, scores[:, 1], sample_weight=w) if k == 2
                      else M.brier_score_loss(y_true, scores, labels=labels, sample_weight=w)),
            "roc_auc_class0": (M.roc_auc_score(y_true == 0, scores[:, 0], sample_weight=w)
                               if 0 < (y_true == 0).sum() < len(y_true) else None),
            "ap_class0": nan_to_none(M.average_precision_score(y_true == 0, scores[:, 0], sample_weight=w)),
        }
    out["expected"] = e
    return out


def edge_cases(rng):
    """Inputs where cnnlab-metrics once disagreed with scikit-learn (issue 37)."""
    e = {}
    # Weighted kappa weighs by position among the present labels.
    kappa = []
    for y1, y2 in [([0, 1, 3], [0, 3, 3]), (rng.choice([0, 2, 5, 7], 60).tolist(), rng.choice([0, 2, 5, 7], 60).tolist())]:
        kappa.append({"y1": y1, "y2": y2, **{str(w): M.cohen_kappa_score(y1, y2, weights=w)
                                            for w in [None, "linear", "quadratic"]}})
    e["kappa"] = kappa
    # log_loss clips at the probabilities' own dtype's epsilon.
    p = np.array([[1.39e-11, 1.0], [0.3, 0.7]])
    e["log_loss"] = {"y_true": [0, 1], "probs": p.ravel().tolist(),
                     "f32": M.log_loss([0, 1], p.astype(np.float32), labels=[0, 1]),
                     "f64": M.log_loss([0, 1], p, labels=[0, 1])}
    # Binary top-1: class 1 only above the 0.5 threshold.
    y, s1 = [0, 1, 0, 1, 1], [0.5, 0.5, 0.3, 0.8, 0.2]
    e["binary_top1"] = {"y_true": y, "scores": [v for p1 in s1 for v in (1 - p1, p1)],
                        "value": M.top_k_accuracy_score(y, np.array(s1), k=1, labels=[0, 1])}
    # Weighted averages whose supports are all zero: the plain mean.
    e["weighted_zero_support"] = {"y_true": [0, 0], "y_pred": [1, 1], "labels": [1], "zero_division": 1.0,
                                  "value": list(M.precision_recall_fscore_support(
                                      [0, 0], [1, 1], labels=[1], average="weighted", zero_division=1.0)[:3])}
    # beta = inf is the recall; negative sample weights count.
    y_t, y_p = [0, 1, 1, 0, 2, 2], [0, 1, 0, 0, 2, 1]
    w = [1.0, -1.0, 2.0, 0.5, 1.0, -0.5]
    e["beta_inf"] = {"y_true": y_t, "y_pred": y_p,
                     **{a: M.fbeta_score(y_t, y_p, beta=np.inf, average=a) for a in ["macro", "micro", "weighted"]}}
    e["negative_weights"] = {"y_true": y_t, "y_pred": y_p, "sample_weight": w,
                             **{a: list(M.precision_recall_fscore_support(y_t, y_p, average=a, sample_weight=w,
                                                                          zero_division=0.0)[:3])
                                for a in ["macro", "micro", "weighted"]}}
    return e


def main():
    rng = np.random.default_rng(20261123)
    cases = []

    counts = np.array(list(SIMPSONS.values()))
    per = np.maximum(1, np.round(counts / counts.sum() * 500)).astype(int)
    y = np.repeat(np.arange(42), per)
    s = noisy_scores(rng, y, 42, 3.0)
    cases.append(case("simpsons_42_imbalanced", y, s.argmax(1), s, 42))

    y = rng.integers(0, 5, 200)
    s = noisy_scores(rng, y, 5, 1.5, decimals=1)
    cases.append(case("ties_in_scores", y, s.argmax(1), s, 5))

    y = rng.integers(0, 4, 120)
    s = noisy_scores(rng, y, 4, 1.0)
    s[:, 3] *= 0.01  # class 3 is never predicted
    s = s / s.sum(axis=1, keepdims=True)
    cases.append(case("class_never_predicted", y, s.argmax(1), s, 4))

    y = rng.integers(0, 3, 90)  # class 3 of 4 never occurs in y_true
    s = noisy_scores(rng, y, 4, 1.0)
    cases.append(case("class_absent_from_truth", y, s.argmax(1), s, 4))

    y = rng.integers(0, 6, 60)
    s = noisy_scores(rng, y, 6, 30.0)
    cases.append(case("perfect", y, y, s, 6))

    y = rng.integers(0, 3, 50)
    cases.append(case("constant_predictor", y, np.zeros_like(y), np.tile([0.5, 0.3, 0.2], (50, 1)), 3))

    y = rng.integers(0, 2, 150)
    s = noisy_scores(rng, y, 2, 1.2, decimals=2)
    cases.append(case("binary", y, s.argmax(1), s, 2))

    y = rng.integers(0, 3, 40)
    cases.append(case("labels_only", y, rng.integers(0, 3, 40), None, 3))

    y = np.array([1, 1, 1, 1])  # binary truth with one class: ROC AUC is nan
    cases.append(case("one_class_binary", y, np.array([1, 0, 1, 1]), np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7],
                                                                               [0.1, 0.9]]), 2))

    json.dump({"sklearn": sklearn.__version__, "cases": cases, "edge": edge_cases(rng)}, sys.stdout)


if __name__ == "__main__":
    main()
