//! cnnlab-metrics: classification metrics over plain slices, identical to
//! scikit-learn's.
//!
//! Labels in, numbers out: this crate depends on neither `tch` nor the image stack,
//! so anyone can use it alone (ARCHITECTURE.md).
//!
//! ```
//! let y_true = [0, 1, 1, 2];
//! let y_pred = [0, 1, 2, 2];
//! assert_eq!(cnnlab_metrics::accuracy(&y_true, &y_pred).unwrap(), 0.75);
//! ```

mod error;

pub use error::{Error, Result};

/// Fraction of predictions equal to the truth (`sklearn.metrics.accuracy_score`).
pub fn accuracy(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    check_lengths(y_true, y_pred)?;
    let hits = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    Ok(hits as f64 / y_true.len() as f64)
}

fn check_lengths(y_true: &[usize], y_pred: &[usize]) -> Result<()> {
    if y_true.len() != y_pred.len() {
        return Err(Error::LengthMismatch {
            y_true: y_true.len(),
            other: y_pred.len(),
        });
    }
    if y_true.is_empty() {
        return Err(Error::Empty);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_and_errors() {
        assert_eq!(accuracy(&[1, 2, 3], &[1, 2, 0]).unwrap(), 2.0 / 3.0);
        assert!(matches!(accuracy(&[], &[]), Err(Error::Empty)));
        assert!(matches!(
            accuracy(&[1], &[1, 2]),
            Err(Error::LengthMismatch {
                y_true: 1,
                other: 2
            })
        ));
    }
}
