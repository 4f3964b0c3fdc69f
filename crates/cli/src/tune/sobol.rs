//! `sampler = "sobol"`: the Sobol low-discrepancy sequence (Joe & Kuo's direction
//! numbers, the ones scipy's `qmc.Sobol` and so Optuna's `QMCSampler` use), in Gray-code
//! order, each dimension shifted by a random 30-bit digital shift drawn from the study's
//! seed (a shift keeps every net of the sequence a net, and keeps the first point off the
//! corner). Without the shift, point `k` is scipy's `Sobol(d, scramble=False)` point `k`
//! bit for bit and, mapped onto the space, Optuna's `QMCSampler(scramble=False)` trial
//! `k + 1` (`tests/tune_golden.json`). Random access: trial `k` needs no earlier point,
//! so workers sharing a study draw without coordinating.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bits of each coordinate (scipy's default): 2^30 points before the sequence repeats.
const BITS: u32 = 30;

/// Dimensions 2.. of Joe & Kuo's `new-joe-kuo-6.21201`: the primitive polynomial (all its
/// coefficients, leading and constant included) and the initial direction numbers.
/// Dimension 1 is van der Corput's sequence.
const DIRECTIONS: [(u32, &[u32]); 63] = [
    (3, &[1]),
    (7, &[1, 3]),
    (11, &[1, 3, 1]),
    (13, &[1, 1, 1]),
    (19, &[1, 1, 3, 3]),
    (25, &[1, 3, 5, 13]),
    (37, &[1, 1, 5, 5, 17]),
    (41, &[1, 1, 5, 5, 5]),
    (47, &[1, 1, 7, 11, 19]),
    (55, &[1, 1, 5, 1, 1]),
    (59, &[1, 1, 1, 3, 11]),
    (61, &[1, 3, 5, 5, 31]),
    (67, &[1, 3, 3, 9, 7, 49]),
    (91, &[1, 1, 1, 15, 21, 21]),
    (97, &[1, 3, 1, 13, 27, 49]),
    (103, &[1, 1, 1, 15, 7, 5]),
    (109, &[1, 3, 1, 15, 13, 25]),
    (115, &[1, 1, 5, 5, 19, 61]),
    (131, &[1, 3, 7, 11, 23, 15, 103]),
    (137, &[1, 3, 7, 13, 13, 15, 69]),
    (143, &[1, 1, 3, 13, 7, 35, 63]),
    (145, &[1, 3, 5, 9, 1, 25, 53]),
    (157, &[1, 3, 1, 13, 9, 35, 107]),
    (167, &[1, 3, 1, 5, 27, 61, 31]),
    (171, &[1, 1, 5, 11, 19, 41, 61]),
    (185, &[1, 3, 5, 3, 3, 13, 69]),
    (191, &[1, 1, 7, 13, 1, 19, 1]),
    (193, &[1, 3, 7, 5, 13, 19, 59]),
    (203, &[1, 1, 3, 9, 25, 29, 41]),
    (211, &[1, 3, 5, 13, 23, 1, 55]),
    (213, &[1, 3, 7, 3, 13, 59, 17]),
    (229, &[1, 3, 1, 3, 5, 53, 69]),
    (239, &[1, 1, 5, 5, 23, 33, 13]),
    (241, &[1, 1, 7, 7, 1, 61, 123]),
    (247, &[1, 1, 7, 9, 13, 61, 49]),
    (253, &[1, 3, 3, 5, 3, 55, 33]),
    (285, &[1, 3, 1, 15, 31, 13, 49, 245]),
    (299, &[1, 3, 5, 15, 31, 59, 63, 97]),
    (301, &[1, 3, 1, 11, 11, 11, 77, 249]),
    (333, &[1, 3, 1, 11, 27, 43, 71, 9]),
    (351, &[1, 1, 7, 15, 21, 11, 81, 45]),
    (355, &[1, 3, 7, 3, 25, 31, 65, 79]),
    (357, &[1, 3, 1, 1, 19, 11, 3, 205]),
    (361, &[1, 1, 5, 9, 19, 21, 29, 157]),
    (369, &[1, 3, 7, 11, 1, 33, 89, 185]),
    (391, &[1, 3, 3, 3, 15, 9, 79, 71]),
    (397, &[1, 3, 7, 11, 15, 39, 119, 27]),
    (425, &[1, 1, 3, 1, 11, 31, 97, 225]),
    (451, &[1, 1, 1, 3, 23, 43, 57, 177]),
    (463, &[1, 3, 7, 7, 17, 17, 37, 71]),
    (487, &[1, 3, 1, 5, 27, 63, 123, 213]),
    (501, &[1, 1, 3, 5, 11, 43, 53, 133]),
    (529, &[1, 3, 5, 5, 29, 17, 47, 173, 479]),
    (539, &[1, 3, 3, 11, 3, 1, 109, 9, 69]),
    (545, &[1, 1, 1, 5, 17, 39, 23, 5, 343]),
    (557, &[1, 3, 1, 5, 25, 15, 31, 103, 499]),
    (563, &[1, 1, 1, 11, 11, 17, 63, 105, 183]),
    (601, &[1, 1, 5, 11, 9, 29, 97, 231, 363]),
    (607, &[1, 1, 5, 15, 19, 45, 41, 7, 383]),
    (617, &[1, 3, 7, 7, 31, 19, 83, 137, 221]),
    (623, &[1, 1, 1, 3, 23, 15, 111, 223, 83]),
    (631, &[1, 1, 5, 13, 31, 15, 55, 25, 161]),
    (637, &[1, 1, 3, 13, 25, 47, 39, 87, 257]),
];

/// The most parameters a Sobol study can vary.
pub const MAX_DIMENSIONS: usize = DIRECTIONS.len() + 1;

/// The `BITS` direction integers of dimension `d` (0-based), highest bit first.
fn directions(d: usize) -> [u32; BITS as usize] {
    let mut m = [1u32; BITS as usize];
    if d > 0 {
        let (poly, init) = DIRECTIONS[d - 1];
        let degree = init.len();
        m[..degree].copy_from_slice(init);
        for j in degree..BITS as usize {
            // m_j = 2 a_1 m_{j-1} ^ 4 a_2 m_{j-2} ^ ... ^ 2^s m_{j-s} ^ m_{j-s}
            let mut next = m[j - degree] ^ (m[j - degree] << degree);
            for k in 1..degree {
                if (poly >> (degree - k)) & 1 == 1 {
                    next ^= m[j - k] << k;
                }
            }
            m[j] = next;
        }
    }
    let mut v = [0u32; BITS as usize];
    for (j, (v, m)) in v.iter_mut().zip(m).enumerate() {
        *v = m << (BITS as usize - 1 - j);
    }
    v
}

/// Point `index` of the unshifted `dims`-dimensional sequence as `BITS`-bit integers.
pub fn point_bits(index: u32, dims: usize) -> Vec<u32> {
    assert!(dims <= MAX_DIMENSIONS, "Sobol: at most {MAX_DIMENSIONS} dimensions");
    let gray = index ^ (index >> 1);
    (0..dims)
        .map(|d| {
            let v = directions(d);
            (0..BITS).filter(|&j| gray >> j & 1 == 1).fold(0, |x, j| x ^ v[j as usize])
        })
        .collect()
}

/// Point `index` in [0, 1)^dims, digitally shifted by `seed` (`None`: unshifted).
pub fn point(index: u32, dims: usize, seed: Option<u64>) -> Vec<f64> {
    let mut rng = seed.map(|s| ChaCha8Rng::seed_from_u64(s ^ 0x5_0B01));
    point_bits(index, dims)
        .into_iter()
        .map(|x| {
            let shift = rng.as_mut().map_or(0, |r| r.gen_range(0..1u32 << BITS));
            f64::from(x ^ shift) / f64::from(1u32 << BITS)
        })
        .collect()
}
