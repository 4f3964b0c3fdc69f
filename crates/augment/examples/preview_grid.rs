//! Augments every JPEG/PNG of a folder a few times and writes one preview grid: a row
//! per image, the original first, then its augmented versions.
//!
//! ```sh
//! cargo run --release --example preview_grid -- photos/ grid.png
//! ```

use cnnlab_augment::{Op, Pipeline, Shape};
use image::imageops::FilterType;
use image::RgbImage;

const CELL: u32 = 160;
const COPIES: u32 = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: preview_grid FOLDER OUT.png".into());
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().to_str().unwrap_or("")))
        })
        .collect();
    files.sort();
    files.truncate(8);
    if files.is_empty() {
        return Err(format!("{dir}: no .jpg, .jpeg or .png file").into());
    }
    // A typical training recipe: flip, rotate, crop and colour.
    let pipe = Pipeline::builder()
        .op(Op::hflip(0.5))
        .op(Op::rotate(15.0))
        .op(Op::random_resized_crop())
        .op(Op::brightness(0.7, 1.3))
        .op(Op::sharpness(2.0))
        .seed(7)
        .build()?;
    let mut grid = RgbImage::new(CELL * (COPIES + 1), CELL * files.len() as u32);
    for (row, path) in files.iter().enumerate() {
        let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let small = img.resize_to_fill(CELL, CELL, FilterType::Triangle).to_rgb8();
        let shape = Shape::new(CELL as usize, CELL as usize, 3);
        for copy in 0..=COPIES {
            let mut cell = small.clone();
            if copy > 0 {
                pipe.apply(&mut cell, shape, u64::from(copy), row as u64)?;
            }
            image::imageops::replace(&mut grid, &cell, i64::from(copy * CELL), row as i64 * i64::from(CELL));
        }
    }
    grid.save(&out)?;
    println!("{}: {} images x {} augmentations", out, files.len(), COPIES);
    Ok(())
}
