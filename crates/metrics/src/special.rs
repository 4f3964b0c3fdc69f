//! The distribution functions the tests in [`crate::stats`] need: the normal, Student-t,
//! binomial and chi-square(1) tails, to about 1e-14 (golden tests compare them with
//! scipy's `ndtr`, `ndtri`, `stdtr`, `stdtrit` and `binom` to 1e-12).
//!
//! `erfc` and `lgamma` are musl's (the `libm` crate); the regularized incomplete beta
//! is the Lentz continued fraction of Numerical Recipes §6.4.

use std::f64::consts::{FRAC_1_SQRT_2, LN_2};

/// The standard normal CDF, scipy's `ndtr`.
pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * FRAC_1_SQRT_2)
}

/// The standard normal quantile, scipy's `ndtri`: Acklam's rational approximation
/// refined by one Halley step on `erfc` (full double precision).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383_577_518_672_69e2,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    let tail = |q: f64| {
        let q = (-2.0 * q.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.02425 {
        tail(p)
    } else if p > 1.0 - 0.02425 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // Halley's step: e = Φ(x) - p, u = e √(2π) exp(x²/2).
    let e = 0.5 * libm::erfc(-x * FRAC_1_SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// `ln Γ(x)` for `x > 0`.
fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// The regularized incomplete beta function `I_x(a, b)`.
pub(crate) fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the
    // symmetry I_x(a, b) = 1 - I_{1-x}(b, a) on the other side.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// Student's t CDF with `df` degrees of freedom, scipy's `stdtr`.
pub(crate) fn t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The two-sided p-value of a t statistic: `P(|T| >= |t|)`.
pub(crate) fn t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t)).min(1.0)
}

/// Student's t quantile, scipy's `stdtrit(df, p)`: Newton's method on [`t_cdf`] from
/// the normal quantile, bracketed by bisection.
pub(crate) fn t_quantile(p: f64, df: f64) -> f64 {
    if p.is_nan() || df.is_nan() || df <= 0.0 || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    // p > 0.5: the root is positive. Grow an upper bracket, then Newton with bisection.
    let (mut lo, mut hi) = (0.0, normal_quantile(p).max(1.0));
    while t_cdf(hi, df) < p {
        lo = hi;
        hi *= 2.0;
    }
    let mut x = (lo + hi) / 2.0;
    for _ in 0..200 {
        let f = t_cdf(x, df) - p;
        if f == 0.0 {
            return x;
        }
        if f < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let step = f / t_pdf(x, df);
        let newton = x - step;
        let next = if newton > lo && newton < hi { newton } else { (lo + hi) / 2.0 };
        if (next - x).abs() <= 1e-15 * x.abs().max(1.0) {
            return next;
        }
        x = next;
    }
    x
}

/// Student's t density.
fn t_pdf(t: f64, df: f64) -> f64 {
    let ln = ln_gamma((df + 1.0) / 2.0)
        - ln_gamma(df / 2.0)
        - 0.5 * (df * std::f64::consts::PI).ln()
        - (df + 1.0) / 2.0 * (1.0 + t * t / df).ln();
    ln.exp()
}

/// `P(X <= k)` and `P(X = k)` for `X ~ Binomial(n, 1/2)`, summed exactly from the
/// mass at `k` downwards (no underflow for large `n`).
pub(crate) fn binomial_half_cdf_pmf(k: u64, n: u64) -> (f64, f64) {
    if k >= n {
        let pmf = if k == n { (-(n as f64) * LN_2).exp() } else { 0.0 };
        return (1.0, pmf);
    }
    let (kf, nf) = (k as f64, n as f64);
    let pmf_k = (ln_gamma(nf + 1.0) - ln_gamma(kf + 1.0) - ln_gamma(nf - kf + 1.0) - nf * LN_2).exp();
    let (mut term, mut sum) = (pmf_k, pmf_k);
    for i in (1..=k).rev() {
        // P(X = i - 1) = P(X = i) · i / (n - i + 1)
        term *= i as f64 / (n - i + 1) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    (sum.min(1.0), pmf_k)
}

/// The upper tail of the chi-square distribution with one degree of freedom.
pub(crate) fn chi2_1_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    libm::erfc((x / 2.0).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_invert_their_cdfs() {
        for &p in &[1e-12, 1e-6, 0.001, 0.025, 0.3, 0.5, 0.7, 0.975, 0.999999] {
            let z = normal_quantile(p);
            assert!((normal_cdf(z) - p).abs() < 1e-15 + 1e-13 * p, "normal at {p}");
            for &df in &[1.0, 2.5, 4.0, 30.0, 1000.0] {
                let t = t_quantile(p, df);
                assert!((t_cdf(t, df) - p).abs() < 1e-13 + 1e-12 * p, "t({df}) at {p}: {t}");
            }
        }
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-15);
        // Student t with 1 degree of freedom is Cauchy: quantile tan(π (p - 1/2)).
        assert!((t_quantile(0.9, 1.0) - (std::f64::consts::PI * 0.4).tan()).abs() < 1e-12);
    }

    #[test]
    fn binomial_half_matches_exact_counts() {
        // n = 10: C(10, i) / 1024
        let c = [1.0, 10.0, 45.0, 120.0, 210.0, 252.0];
        let mut cum = 0.0;
        for (k, ci) in c.iter().enumerate() {
            cum += ci;
            let (cdf, pmf) = binomial_half_cdf_pmf(k as u64, 10);
            assert!((cdf - cum / 1024.0).abs() < 1e-14 && (pmf - ci / 1024.0).abs() < 1e-14, "{k}: {cdf} {pmf}");
        }
        assert_eq!(binomial_half_cdf_pmf(0, 0), (1.0, 1.0));
        // Large n does not underflow: P(X <= n/2) of a huge symmetric binomial is ~1/2.
        let (cdf, _) = binomial_half_cdf_pmf(50_000, 100_000);
        assert!((cdf - 0.5).abs() < 0.002);
    }
}
