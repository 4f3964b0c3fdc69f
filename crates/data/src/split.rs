//! Stratified train / validation / test splits, seeded and reproducible.

use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Indices of each split.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitIndices {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// Splits sample indices by class: each class is shuffled (seeded) and cut by the
/// fractions. A class with at least 3 images keeps one in each split that has a
/// non-zero fraction, so no split misses a class because it is rare.
pub fn stratified(
    labels: &[crate::Label],
    n_classes: usize,
    val_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> SplitIndices {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut out = SplitIndices::default();
    for mut members in by_class {
        members.shuffle(&mut rng);
        let n = members.len();
        let mut n_val = (n as f64 * val_fraction).round() as usize;
        let mut n_test = (n as f64 * test_fraction).round() as usize;
        if n >= 3 {
            if val_fraction > 0.0 {
                n_val = n_val.max(1);
            }
            if test_fraction > 0.0 {
                n_test = n_test.max(1);
            }
        }
        // Training keeps at least one image.
        while n_val + n_test >= n && n_val + n_test > 0 {
            if n_test >= n_val && n_test > 0 {
                n_test -= 1;
            } else {
                n_val -= 1;
            }
        }
        out.test.extend_from_slice(&members[..n_test]);
        out.val.extend_from_slice(&members[n_test..n_test + n_val]);
        out.train.extend_from_slice(&members[n_test + n_val..]);
    }
    out.train.sort_unstable();
    out.val.sort_unstable();
    out.test.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_keeps_rare_classes_everywhere() {
        // Class 0: 100 images, class 1: 3 images, class 2: 1 image.
        let mut labels = vec![0u16; 100];
        labels.extend([1, 1, 1, 2]);
        let s = stratified(&labels, 3, 0.1, 0.2, 7);
        let count = |idx: &[usize], c: u16| idx.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!((count(&s.train, 0), count(&s.val, 0), count(&s.test, 0)), (70, 10, 20));
        assert_eq!((count(&s.train, 1), count(&s.val, 1), count(&s.test, 1)), (1, 1, 1));
        assert_eq!((count(&s.train, 2), count(&s.val, 2), count(&s.test, 2)), (1, 0, 0));
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).chain(&s.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..104).collect::<Vec<_>>(), "a partition");
        assert_eq!(s, stratified(&labels, 3, 0.1, 0.2, 7), "seeded");
        assert_ne!(s.test, stratified(&labels, 3, 0.1, 0.2, 8).test);
    }
}
