//! `dataset = "shapes"`: a procedurally generated dataset that ships as code, so a
//! fresh offline clone has something meaningful to train on. Coloured geometric
//! figures and simple drawn faces on noisy backgrounds, at random positions, sizes
//! and colours, drawn with imageproc. Every image is a pure function of
//! (seed, index): the same config gives the same dataset on every machine.

use image::{Rgb, RgbImage};
use imageproc::drawing::{
    draw_filled_circle_mut, draw_filled_rect_mut, draw_hollow_circle_mut, draw_line_segment_mut, draw_polygon_mut,
};
use imageproc::point::Point;
use imageproc::rect::Rect;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::dataset::{Dataset, ImageShape};
use crate::error::Result;

/// Class names, in label order.
pub const SHAPES_CLASSES: [&str; 8] = ["circle", "cross", "frown", "ring", "smile", "square", "star", "triangle"];

/// Images per class in the generated train split (test: a quarter of it).
pub const SHAPES_PER_CLASS: usize = 1000;

/// Side the figures are drawn at before being resized (anti-aliasing).
const CANVAS: u32 = 64;

/// What the test split's stream is seeded with: `seed ^ TEST_STREAM`.
pub const TEST_STREAM: u64 = 0x7E57;

/// Where image `index` of `generate(.., seed)` has its figure: the centre and the
/// radius of the circle the figure is drawn in (a filled circle, a face, a ring, a
/// polygon's vertices, a cross's arms), in pixels of an image `side` pixels square.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    pub class: usize,
    pub x: f32,
    pub y: f32,
    pub radius: f32,
}

/// The [`Figure`] of image `index` of the dataset [`generate`] makes from `seed`, at
/// `side` x `side` pixels.
pub fn figure(seed: u64, index: usize, side: usize) -> Figure {
    let (_, f) = draw(index % SHAPES_CLASSES.len(), &mut stream(seed, index));
    let scale = side as f32 / CANVAS as f32;
    // Pixel centres: canvas pixel i covers [i, i + 1); resizing maps centres linearly.
    Figure { class: f.class, x: (f.x + 0.5) * scale - 0.5, y: (f.y + 0.5) * scale - 0.5, radius: f.radius * scale }
}

fn stream(seed: u64, index: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64)
}

/// Generates `per_class` images of every class at `shape`, from `seed`; image `i`
/// has label `i % 8`.
pub fn generate(shape: ImageShape, per_class: usize, seed: u64) -> Result<Dataset> {
    let n = per_class * SHAPES_CLASSES.len();
    let mut pixels = vec![0u8; n * shape.len()];
    pixels.par_chunks_mut(shape.len()).enumerate().for_each(|(i, out)| {
        let (img, _) = draw(i % SHAPES_CLASSES.len(), &mut stream(seed, i));
        let img = if shape.width as u32 == CANVAS && shape.height as u32 == CANVAS {
            img
        } else {
            image::imageops::resize(
                &img,
                shape.width as u32,
                shape.height as u32,
                image::imageops::FilterType::Triangle,
            )
        };
        if shape.channels == 1 {
            out.copy_from_slice(image::DynamicImage::ImageRgb8(img).to_luma8().as_raw());
        } else {
            out.copy_from_slice(img.as_raw());
        }
    });
    let labels = (0..n).map(|i| (i % SHAPES_CLASSES.len()) as crate::Label).collect();
    Dataset::new(shape, pixels, labels, SHAPES_CLASSES.iter().map(|s| s.to_string()).collect())
}

fn colour(rng: &mut ChaCha8Rng) -> [u8; 3] {
    [rng.gen(), rng.gen(), rng.gen()]
}

/// A foreground colour far enough from the background to be seen.
fn contrasting(rng: &mut ChaCha8Rng, bg: [u8; 3]) -> [u8; 3] {
    loop {
        let c = colour(rng);
        let d: i32 = c.iter().zip(bg).map(|(&a, b)| (a as i32 - b as i32).abs()).sum();
        if d > 200 {
            return c;
        }
    }
}

fn draw(class: usize, rng: &mut ChaCha8Rng) -> (RgbImage, Figure) {
    let bg = colour(rng);
    let noise = rng.gen_range(10..50);
    let mut img = RgbImage::from_fn(CANVAS, CANVAS, |_, _| {
        Rgb(bg.map(|v| (v as i32 + rng.gen_range(-noise..=noise)).clamp(0, 255) as u8))
    });
    let fg = contrasting(rng, bg);
    let r = rng.gen_range(12.0..24.0f32);
    let cx = rng.gen_range(r..CANVAS as f32 - r);
    let cy = rng.gen_range(r..CANVAS as f32 - r);
    let angle = rng.gen_range(0.0..std::f32::consts::TAU);
    let c = Rgb(fg);
    let centre = (cx as i32, cy as i32);
    let figure = Figure { class, x: centre.0 as f32, y: centre.1 as f32, radius: r };
    let polygon = |k: usize, radii: &[f32]| -> Vec<Point<i32>> {
        (0..k * radii.len())
            .map(|j| {
                let a = angle + j as f32 * std::f32::consts::TAU / (k * radii.len()) as f32;
                let rr = radii[j % radii.len()];
                Point::new((cx + rr * a.cos()).round() as i32, (cy + rr * a.sin()).round() as i32)
            })
            .collect()
    };
    match SHAPES_CLASSES[class] {
        "circle" => draw_filled_circle_mut(&mut img, centre, r as i32, c),
        "ring" => {
            for t in 0..(r / 3.0).max(2.0) as i32 {
                draw_hollow_circle_mut(&mut img, centre, r as i32 - t, c);
            }
        }
        "square" => draw_polygon_mut(&mut img, &polygon(4, &[r]), c),
        "triangle" => draw_polygon_mut(&mut img, &polygon(3, &[r]), c),
        "star" => draw_polygon_mut(&mut img, &polygon(5, &[r, r * 0.45]), c),
        "cross" => {
            let (w, l) = ((r / 2.5).max(3.0) as u32, (2.0 * r) as u32);
            let (x0, y0) = ((cx - r) as i32, (cy - r) as i32);
            draw_filled_rect_mut(&mut img, Rect::at(x0, (cy - w as f32 / 2.0) as i32).of_size(l, w), c);
            draw_filled_rect_mut(&mut img, Rect::at((cx - w as f32 / 2.0) as i32, y0).of_size(w, l), c);
        }
        face => {
            draw_filled_circle_mut(&mut img, centre, r as i32, c);
            let dark = Rgb(fg.map(|v| v / 5));
            let eye = (r / 6.0).max(1.5) as i32;
            let (ex, ey) = ((r * 0.35) as i32, (r * 0.3) as i32);
            draw_filled_circle_mut(&mut img, (centre.0 - ex, centre.1 - ey), eye, dark);
            draw_filled_circle_mut(&mut img, (centre.0 + ex, centre.1 - ey), eye, dark);
            // The mouth: a parabola opening up (smile) or down (frown), drawn thick.
            let sign = if face == "smile" { 1.0 } else { -1.0 };
            let mouth_y = cy + r * if face == "smile" { 0.3 } else { 0.5 };
            let half = r * 0.5;
            let pts: Vec<(f32, f32)> = (0..=12)
                .map(|k| {
                    let x = -half + 2.0 * half * k as f32 / 12.0;
                    (cx + x, mouth_y + sign * (half * 0.6) * (1.0 - (x / half).powi(2)) - sign * half * 0.3)
                })
                .collect();
            for w in pts.windows(2) {
                for d in [-1.0, 0.0, 1.0] {
                    draw_line_segment_mut(&mut img, (w[0].0, w[0].1 + d), (w[1].0, w[1].1 + d), dark);
                }
            }
        }
    }
    (img, figure)
}
