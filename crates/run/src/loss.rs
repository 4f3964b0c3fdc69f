//! The one definition of an example's test loss (cross-entropy of its true class),
//! which a run's `metrics.json`, an ensemble's, and the top-losses ranking all use.

/// The smallest probability a loss takes the log of: `-ln(1e-12)` = 27.6 is the
/// largest loss an example can have.
pub const LOG_EPS: f64 = 1e-12;

/// `-ln max(p_true, LOG_EPS)`.
pub fn example_loss(p_true: f64) -> f64 {
    -p_true.max(LOG_EPS).ln()
}

/// The mean [`example_loss`] of `probs` (`n x k`, row-major) at the true classes.
pub fn mean_loss(probs: &[f32], k: usize, y_true: impl IntoIterator<Item = usize>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for (i, t) in y_true.into_iter().enumerate() {
        sum += example_loss(f64::from(probs[i * k + t]));
        n += 1;
    }
    sum / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_is_clamped_cross_entropy() {
        assert_eq!(example_loss(1.0), 0.0);
        assert!((example_loss(0.5) - std::f64::consts::LN_2).abs() < 1e-15);
        assert!((example_loss(0.0) - 1e12f64.ln()).abs() < 1e-12, "clamped at 1e-12");
        let probs = [0.5, 0.5, 0.25, 0.75];
        assert!((mean_loss(&probs, 2, [0, 1]) - (std::f64::consts::LN_2 + (4.0f64 / 3.0).ln()) / 2.0).abs() < 1e-7);
    }
}
