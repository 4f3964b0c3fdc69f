"""Golden values for cnnlab-metrics' `stats` module, from scipy and statsmodels.

    python crates/metrics/tests/gen_stats_golden.py > crates/metrics/tests/stats_golden.json

(scipy 1.17.1, statsmodels 0.15.0, scikit-learn 1.9.1, numpy 2.4.6.)

Bootstrap cases fix the resampling indices (numpy, seed 0) and write them out: the
Rust test feeds the same index sets, so both sides compute the same distribution and
the intervals must agree to 1e-9. The interval itself is scipy's: `scipy.stats.bootstrap`
with `n_resamples=0` and `bootstrap_result` holding that distribution (BCa runs scipy's
own jackknife over the paired indices).
"""

import json
import sys

import numpy as np
import scipy
import sklearn
import statsmodels
from scipy import stats
from sklearn import metrics as skm
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

K = 4


def roc_auc_lenient(y, p):
    """Macro one-vs-rest ROC AUC over the classes with both positives and negatives."""
    per = [skm.roc_auc_score(y == c, p[:, c]) for c in range(K) if 0 < (y == c).sum() < len(y)]
    return float(np.mean(per)) if per else float("nan")


def metric(name, y, yp, p):
    labels = list(range(K))
    if name == "accuracy":
        return skm.accuracy_score(y, yp)
    if name == "balanced_accuracy":
        # scikit-learn warns when a resample predicts a class absent from its truth.
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return skm.balanced_accuracy_score(y, yp)
    if name.startswith("f1_"):
        return skm.f1_score(y, yp, labels=labels, average=name[3:], zero_division=0)
    if name == "mcc":
        return skm.matthews_corrcoef(y, yp)
    if name == "roc_auc":
        return roc_auc_lenient(y, p)
    raise ValueError(name)


METRICS = ["accuracy", "balanced_accuracy", "f1_macro", "f1_micro", "f1_weighted", "mcc", "roc_auc"]


def bootstrap_cases():
    rng = np.random.default_rng(0)
    n, b = 80, 300
    y = rng.integers(0, K, n)
    noisy = lambda q: np.where(rng.random(n) < q, y, rng.integers(0, K, n))  # noqa: E731
    ya, yb = noisy(0.7), noisy(0.8)
    logits = rng.normal(size=(n, K)) + 2.0 * np.eye(K)[ya]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    idx = rng.integers(0, n, (b, n))
    out = {"n_classes": K, "y_true": y.tolist(), "pred_a": ya.tolist(), "pred_b": yb.tolist(),
           "scores": p.ravel().tolist(), "indices": idx.tolist(), "intervals": [], "paired": []}
    for name in METRICS:
        theta = np.array([metric(name, y[i], ya[i], p[i]) for i in idx])

        def stat(i, axis=-1):
            i = np.asarray(i)
            if i.ndim == 1:
                return metric(name, y[i], ya[i], p[i])
            return np.array([metric(name, y[r], ya[r], p[r]) for r in i])

        for conf in (0.95, 0.9):
            for method in ("percentile", "BCa"):
                prior = stats._resampling.BootstrapResult(
                    confidence_interval=None, bootstrap_distribution=theta, standard_error=None)
                res = stats.bootstrap((np.arange(n),), stat, n_resamples=0, bootstrap_result=prior,
                                      method=method, confidence_level=conf, vectorized=True)
                out["intervals"].append({
                    "metric": name, "method": method.lower(), "confidence": conf,
                    "value": metric(name, y, ya, p),
                    "low": float(res.confidence_interval.low), "high": float(res.confidence_interval.high),
                    "standard_error": float(res.standard_error),
                })
        # Paired: metric(b) - metric(a) on the same resamples (b has no scores: labels only).
        if name != "roc_auc":
            d = np.array([metric(name, y[i], yb[i], None) - metric(name, y[i], ya[i], None) for i in idx])
            below, above = (d <= 0).sum(), (d >= 0).sum()
            lo, hi = stats.quantile(d, [0.025, 0.975])
            out["paired"].append({
                "metric": name, "a": metric(name, y, ya, None), "b": metric(name, y, yb, None),
                "difference": metric(name, y, yb, None) - metric(name, y, ya, None),
                "low": float(lo), "high": float(hi), "p_value": float(min(1.0, 2 * (min(below, above) + 1) / (b + 1))),
            })
    return out


def wilson_cases():
    cases = [(0, 10, 0.95), (10, 10, 0.95), (7, 8, 0.95), (950, 1000, 0.95), (9300, 10000, 0.99), (1, 3, 0.9)]
    return [{"successes": s, "n": n, "confidence": c,
             "low": float(lo), "high": float(hi)}
            for s, n, c in cases for lo, hi in [proportion_confint(s, n, alpha=1 - c, method="wilson")]]


def mcnemar_cases():
    np.seterr(divide="ignore")
    out = []
    for b, c in [(0, 0), (3, 0), (5, 5), (10, 2), (2, 10), (40, 25), (480, 530), (1, 7), (120, 80), (0, 1)]:
        exact = mcnemar([[50, b], [c, 50]], exact=True)
        chi = mcnemar([[50, b], [c, 50]], exact=False, correction=True)
        k, n = min(b, c), b + c
        mid = min(1.0, 2 * stats.binom.cdf(k, n, 0.5) - stats.binom.pmf(k, n, 0.5))
        # No discordant pair: statsmodels divides by zero (statistic inf, p 0); cnnlab
        # says NaN and p 1 instead, checked by the Rust test itself.
        none = b + c == 0
        out.append({"b": b, "c": c, "p_exact": float(exact.pvalue), "p_mid": float(mid),
                    "chi2": None if none else float(chi.statistic), "p_chi2": None if none else float(chi.pvalue)})
    return out


def replicate_cases():
    rng = np.random.default_rng(1)
    out = []
    for n in (2, 3, 5, 10):
        v = 0.8 + 0.01 * rng.normal(size=n)
        for conf in (0.95, 0.9):
            m, s = v.mean(), v.std(ddof=1)
            lo, hi = stats.t.interval(conf, n - 1, loc=m, scale=stats.sem(v))
            out.append({"values": v.tolist(), "confidence": conf, "mean": float(m), "std": float(s),
                        "low": float(lo), "high": float(hi)})
    return out


def welch_cases():
    rng = np.random.default_rng(2)
    out = []
    for na, nb, shift in [(3, 3, 0.0), (3, 3, 0.02), (5, 4, 0.01), (10, 7, 0.003), (2, 2, 0.05)]:
        a = 0.8 + 0.01 * rng.normal(size=na)
        b = 0.8 + shift + 0.02 * rng.normal(size=nb)
        r = stats.ttest_ind(a, b, equal_var=False)
        ci = r.confidence_interval(0.95)  # of mean(a) - mean(b)
        out.append({"a": a.tolist(), "b": b.tolist(), "t": float(r.statistic), "df": float(r.df),
                    "p_value": float(r.pvalue), "low": -float(ci.high), "high": -float(ci.low)})
    return out


def holm_cases():
    cases = [([0.01, 0.04, 0.03, 0.005], 0.05), ([0.2, 0.01, 0.01, 0.5, 0.013], 0.05),
             ([0.001], 0.05), ([0.04, 0.04], 0.05), ([0.6, 0.02, 0.011, 0.0001, 0.049, 0.3], 0.1)]
    out = []
    for p, alpha in cases:
        reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
        out.append({"p": p, "alpha": alpha, "adjusted": adjusted.tolist(), "reject": reject.tolist()})
    return out


if __name__ == "__main__":
    json.dump({
        "versions": {"scipy": scipy.__version__, "statsmodels": statsmodels.__version__,
                     "sklearn": sklearn.__version__, "numpy": np.__version__},
        "bootstrap": bootstrap_cases(), "wilson": wilson_cases(), "mcnemar": mcnemar_cases(),
        "replicates": replicate_cases(), "welch": welch_cases(), "holm": holm_cases(),
    }, sys.stdout)
