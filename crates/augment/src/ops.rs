//! Geometric ops on one HWC u8 image, in place.

use crate::Shape;

/// Mirrors left-right.
pub fn hflip(img: &mut [u8], s: Shape) {
    let c = s.channels;
    for row in img.chunks_exact_mut(s.width * c) {
        for x in 0..s.width / 2 {
            let (a, b) = (x * c, (s.width - 1 - x) * c);
            for k in 0..c {
                row.swap(a + k, b + k);
            }
        }
    }
}

/// Mirrors top-bottom.
pub fn vflip(img: &mut [u8], s: Shape) {
    let stride = s.width * s.channels;
    for y in 0..s.height / 2 {
        let (top, bottom) = img.split_at_mut((s.height - 1 - y) * stride);
        top[y * stride..(y + 1) * stride].swap_with_slice(&mut bottom[..stride]);
    }
}

/// Shifts the image by `(dx, dy)` pixels (right and down are positive), filling what
/// comes in from outside with zeros.
pub fn translate(img: &mut [u8], s: Shape, dx: i64, dy: i64) {
    if dx == 0 && dy == 0 {
        return;
    }
    let (w, h, c) = (s.width as i64, s.height as i64, s.channels);
    let src = img.to_vec();
    img.fill(0);
    let (x0, x1) = (dx.max(0), (w + dx).min(w));
    if x0 >= x1 {
        return;
    }
    let run = (x1 - x0) as usize * c;
    for y in dy.max(0)..(h + dy).min(h) {
        let from = (((y - dy) * w + (x0 - dx)) as usize) * c;
        let to = ((y * w + x0) as usize) * c;
        img[to..to + run].copy_from_slice(&src[from..from + run]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Shape = Shape { height: 2, width: 3, channels: 1 };

    #[test]
    fn flips_by_hand() {
        let mut img = [1, 2, 3, 4, 5, 6];
        hflip(&mut img, S);
        assert_eq!(img, [3, 2, 1, 6, 5, 4]);
        vflip(&mut img, S);
        assert_eq!(img, [6, 5, 4, 3, 2, 1]);
        // Two channels: pixels move, channel order within a pixel stays.
        let mut rgb = [1, 10, 2, 20];
        hflip(&mut rgb, Shape { height: 1, width: 2, channels: 2 });
        assert_eq!(rgb, [2, 20, 1, 10]);
    }

    #[test]
    fn translates_by_hand() {
        let mut img = [1, 2, 3, 4, 5, 6];
        translate(&mut img, S, 1, 0);
        assert_eq!(img, [0, 1, 2, 0, 4, 5]);
        let mut img = [1, 2, 3, 4, 5, 6];
        translate(&mut img, S, -2, 1);
        assert_eq!(img, [0, 0, 0, 3, 0, 0]);
        let mut img = [1, 2, 3, 4, 5, 6];
        translate(&mut img, S, 3, 0);
        assert_eq!(img, [0; 6]);
    }
}
