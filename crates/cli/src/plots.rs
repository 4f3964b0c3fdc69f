//! PNG plots drawn with plotters and an embedded DejaVu Sans (assets/), so they look
//! the same on every machine and need no system fonts.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// What a plot's drawing code returns (plotters' errors are generic over the backend).
type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Draws a `width x height` picture with `draw` into memory, then writes it with
/// [`write_png`]: a failed or interrupted plot never leaves half a PNG.
fn png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> Drawn,
) -> Result<()> {
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    draw(BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area())
        .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    write_png(path, &rgb, width, height)
}

/// An RGB image (`width x height x 3` bytes) as a PNG file, written through
/// cnnlab-run's atomic writer (a full disk is one line naming the file, and the
/// earlier picture stays).
pub fn write_png(path: &Path, rgb: &[u8], width: u32, height: u32) -> Result<()> {
    use image::ImageEncoder as _;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| anyhow!("encoding {}: {e}", path.display()))?;
    Ok(cnnlab_run::write_bytes(path, &bytes)?)
}

const FONT: &str = "dejavu";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        plotters::style::register_font(FONT, FontStyle::Normal, bytes)
            .unwrap_or_else(|_| unreachable!("the embedded font parses"));
    });
}

/// Horizontal bars, one per class, largest first (seed 001's class distribution).
pub fn class_distribution(path: &Path, title: &str, counts: &[(String, usize)]) -> Result<()> {
    let max = counts.iter().map(|c| c.1).max().unwrap_or(1).max(1) as f64;
    let rows: Vec<(String, f64)> = counts.iter().map(|(c, n)| (c.clone(), *n as f64)).collect();
    hbars(path, title, &rows, max * 1.12, "images", BLUE, |v| format!("{v:.0}"))
}

/// One epoch of a run's learning curves (a row of its history.csv).
#[derive(Debug, Clone, Copy)]
pub struct Epoch {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Train and validation loss.
    pub loss: (f64, f64),
    /// Train and validation accuracy.
    pub accuracy: (f64, f64),
}

/// Picks (train, val) values of one metric from an epoch.
type Pick = fn(&Epoch) -> (f64, f64);

/// Loss (left) and accuracy (right) per epoch, train against validation.
/// `evaluated` names the split of the second series: "val", or "test" for a run
/// without a validation split (its per-epoch evaluation is on the test set).
pub fn curves(path: &Path, title: &str, rows: &[Epoch], evaluated: &str) -> Result<()> {
    register_font();
    png(path, (1000, 380), |root| {
        root.fill(&WHITE)?;
        let root = root.titled(title, (FONT, 20))?;
        let (left, right) = root.split_horizontally(500);
        // Half an epoch of margin each side: a one-epoch run's points are not on the axis.
        let last = rows.iter().map(|r| r.epoch).max().unwrap_or(1) as f64 + 0.5;
        let panels: [(&DrawingArea<_, _>, &str, Pick); 2] =
            [(&left, "loss", |r| r.loss), (&right, "accuracy", |r| r.accuracy)];
        for (area, name, pick) in panels {
            let values: Vec<f64> = rows.iter().flat_map(|r| [pick(r).0, pick(r).1]).filter(|v| v.is_finite()).collect();
            let lo = values.iter().cloned().fold(f64::INFINITY, f64::min).min(if name == "loss" { 0.0 } else { 1.0 });
            let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max).max(lo + 1e-3);
            let pad = (hi - lo) * 0.05;
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(30)
                // Wide enough that the rotated axis name clears the tick labels.
                .y_label_area_size(72)
                .build_cartesian_2d(0.5..last, (lo - pad)..(hi + pad))?;
            // Enough decimals that no two labels of the axis read the same.
            let decimals = (-(hi - lo).log10()).ceil().max(0.0) as usize + 1;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .label_style((FONT, 13))
                .x_labels((last as usize).min(12))
                .x_label_formatter(&|v| if (v - v.round()).abs() < 1e-6 { format!("{v:.0}") } else { String::new() })
                .y_label_formatter(&|v| format!("{v:.decimals$}"))
                .x_desc("epoch")
                .y_desc(name)
                .draw()?;
            for (label, colour, series) in [("train", BLUE, 0), (evaluated, RED, 1)] {
                let pts: Vec<(f64, f64)> =
                    rows.iter().map(|r| (r.epoch as f64, if series == 0 { pick(r).0 } else { pick(r).1 })).collect();
                // Markers too: a one-epoch run has no line to draw.
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
                chart
                    .draw_series(LineSeries::new(pts, colour.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            }
            chart
                .configure_series_labels()
                .label_font((FONT, 13))
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()?;
        }
        root.present()?;
        Ok(())
    })
}

/// The confusion matrix as a heat map (rows: true class, columns: predicted), each
/// cell shaded by its share of the row and labelled with its count.
pub fn confusion(path: &Path, title: &str, classes: &[String], matrix: &[Vec<u64>]) -> Result<()> {
    register_font();
    let n = classes.len();
    let cell = (640 / n.max(1)).clamp(14, 60) as u32;
    let label_width = classes.iter().map(|c| c.len()).max().unwrap_or(5) as u32 * 8 + 50;
    let side = cell * n as u32;
    png(path, (side + label_width + 60, side + 110), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(label_width)
            .build_cartesian_2d((0..n.max(1) - 1).into_segmented(), (0..n.max(1) - 1).into_segmented())?;
        let name = |v: &SegmentValue<usize>, flip: bool| match v {
            SegmentValue::CenterOf(i) if *i < n => {
                let c = if flip { n - 1 - i } else { *i };
                format!("{} ({c})", classes[c])
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            // No tick marks under the columns: they would strike through the names.
            .set_tick_mark_size(LabelAreaPosition::Bottom, 0)
            .x_labels(n)
            .x_label_formatter(&|_| String::new())
            .y_labels(n)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .y_label_formatter(&|v| name(v, true))
            .x_desc("predicted")
            .y_desc("true")
            .draw()?;
        // Column names below the axis, horizontal (the embedded-font backend cannot
        // rotate text): the name when it fits the cell, else the class index, which the
        // row labels also show.
        let fits = classes.iter().all(|c| c.len() as u32 * 7 <= cell);
        let style = (FONT, 11).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
        for (p, class) in classes.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(SegmentValue::CenterOf(p), SegmentValue::Exact(0)));
            let label = if fits { class.clone() } else { p.to_string() };
            root.draw(&Text::new(label, (x, y + 6), style.clone()))?;
        }
        for (t, row) in matrix.iter().enumerate() {
            let total = row.iter().sum::<u64>().max(1) as f64;
            for (p, &count) in row.iter().enumerate() {
                let share = count as f64 / total;
                let y = n - 1 - t;
                let colour = RGBColor(255 - (share * 200.0) as u8, 255 - (share * 140.0) as u8, 255);
                let corners = [
                    (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                ];
                chart.draw_series(std::iter::once(Rectangle::new(corners, colour.filled())))?;
                if cell >= 22 {
                    let style = (FONT, (cell / 3).clamp(9, 14) as i32)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    let at = (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y));
                    chart.draw_series(std::iter::once(Text::new(count.to_string(), at, style)))?;
                }
            }
        }
        root.present()?;
        Ok(())
    })
}

/// Per-class F1 as horizontal bars (classes in label order, top to bottom).
pub fn per_class_f1(path: &Path, title: &str, rows: &[(String, f64)]) -> Result<()> {
    hbars(path, title, rows, 1.0, "F1", GREEN, |v| format!("{v:.3}"))
}

/// One horizontal bar per row, the first row on top, on an x axis from 0 to `x_max`,
/// each labelled with its value (`label`): past its end, or inside it when the bar is
/// too long for the label to fit after it.
fn hbars(
    path: &Path,
    title: &str,
    rows: &[(String, f64)],
    x_max: f64,
    x_desc: &str,
    colour: RGBColor,
    label: fn(f64) -> String,
) -> Result<()> {
    register_font();
    let n = rows.len();
    let height = (60 + 22 * n as u32).max(240);
    let label_width = rows.iter().map(|c| c.0.len()).max().unwrap_or(5) as u32 * 8 + 20;
    png(path, (900, height), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(label_width)
            // n - 1 as the last value: n segments, no empty one on top.
            .build_cartesian_2d(0.0..x_max, (0..n.max(1) - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .label_style((FONT, 13))
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                // Row 0 is at the bottom: list the first row on top.
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if *i < n => rows[n - 1 - i].0.clone(),
                _ => String::new(),
            })
            .x_label_formatter(&|v| if x_max > 10.0 { format!("{v:.0}") } else { format!("{v:.1}") })
            .x_labels(8)
            .x_desc(x_desc)
            .draw()?;
        chart.draw_series(rows.iter().rev().enumerate().map(|(i, (_, value))| {
            let corners = [(0.0, SegmentValue::Exact(i)), (*value, SegmentValue::Exact(i + 1))];
            let mut bar = Rectangle::new(corners, colour.mix(0.6).filled());
            bar.set_margin(2, 2, 0, 0);
            bar
        }))?;
        chart.draw_series(rows.iter().rev().enumerate().map(|(i, (_, value))| {
            let inside = *value > 0.88 * x_max;
            let (x, h) =
                if inside { (*value - 0.01 * x_max, HPos::Right) } else { (*value + 0.01 * x_max, HPos::Left) };
            let style = (FONT, 12).into_font().color(&BLACK).pos(Pos::new(h, VPos::Center));
            Text::new(label(*value), (x, SegmentValue::CenterOf(i)), style)
        }))?;
        root.present()?;
        Ok(())
    })
}

/// One picture of [`image_grid`]: packed RGB (or grey, `channels` = 1) pixels, row
/// by row, and up to two caption lines.
pub struct Tile<'a> {
    pub pixels: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub caption: [String; 2],
}

/// Side of a grid picture: small inputs (28x28, 32x32) are enlarged by nearest
/// neighbour so that they stay legible, large ones shrunk to it.
const TILE: usize = 128;

/// Pictures in a grid of `columns`, each scaled by nearest neighbour to fit a 128x128
/// square, with its caption below.
pub fn image_grid(path: &Path, title: &str, tiles: &[Tile], columns: usize) -> Result<()> {
    register_font();
    let columns = columns.clamp(1, tiles.len().max(1));
    let rows = tiles.len().div_ceil(columns).max(1);
    let (cell_w, cell_h, top) = (TILE + 40, TILE + 44, 36);
    let size = ((columns * cell_w + 10) as u32, (rows * cell_h + top + 6) as u32);
    png(path, size, |root| {
        root.fill(&WHITE)?;
        let heading = (FONT, 18).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(title.to_owned(), (size.0 as i32 / 2, 8), heading))?;
        for (k, tile) in tiles.iter().enumerate() {
            if tile.pixels.len() != tile.width * tile.height * tile.channels || !matches!(tile.channels, 1 | 3) {
                return Err(format!(
                    "tile {k}: {} bytes for {}x{}x{}",
                    tile.pixels.len(),
                    tile.width,
                    tile.height,
                    tile.channels
                )
                .into());
            }
            let scale = TILE as f64 / tile.width.max(tile.height).max(1) as f64;
            let (w, h) =
                (((tile.width as f64 * scale) as usize).max(1), ((tile.height as f64 * scale) as usize).max(1));
            let x0 = 5 + (k % columns) * cell_w + (cell_w - w) / 2;
            let y0 = top + (k / columns) * cell_h + (TILE - h) / 2;
            for y in 0..h {
                let sy = ((y as f64 / scale) as usize).min(tile.height - 1);
                for x in 0..w {
                    let sx = ((x as f64 / scale) as usize).min(tile.width - 1);
                    let at = (sy * tile.width + sx) * tile.channels;
                    let px = &tile.pixels[at..at + tile.channels];
                    let colour =
                        if tile.channels == 1 { RGBColor(px[0], px[0], px[0]) } else { RGBColor(px[0], px[1], px[2]) };
                    root.draw_pixel(((x0 + x) as i32, (y0 + y) as i32), &colour)?;
                }
            }
            let centre = (5 + (k % columns) * cell_w + cell_w / 2) as i32;
            let below = (top + (k / columns) * cell_h + TILE + 4) as i32;
            let style = (FONT, 12).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
            for (line, text) in tile.caption.iter().enumerate() {
                root.draw(&Text::new(text.clone(), (centre, below + 17 * line as i32), style.clone()))?;
            }
        }
        root.present()?;
        Ok(())
    })
}

/// fastai's `plot_lr_find`: the smoothed loss against the learning rate on a log
/// axis (the last 5 points left out, as fastai does), with a marker at each
/// suggestion `(name, lr, loss there)`.
pub fn lr_find(path: &Path, title: &str, lrs: &[f64], losses: &[f64], marks: &[(&str, f64, f64)]) -> Result<()> {
    register_font();
    let shown = lrs.len().saturating_sub(5).max(lrs.len().min(2));
    let pts: Vec<(f64, f64)> =
        lrs.iter().zip(losses).take(shown).map(|(&l, &v)| (l, v)).filter(|p| p.1.is_finite()).collect();
    png(path, (700, 440), |root| {
        root.fill(&WHITE)?;
        let root = root.titled(title, (FONT, 18))?;
        let x_lo = pts.first().map_or(1e-7, |p| p.0);
        let x_hi = pts.last().map_or(10.0, |p| p.0).max(x_lo * 10.0);
        let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() { (lo, hi.max(lo + 1e-3)) } else { (0.0, 1.0) };
        let pad = (hi - lo) * 0.05;
        let mut chart = ChartBuilder::on(&root)
            .margin(14)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .label_style((FONT, 13))
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .x_desc("learning rate (log scale)")
            .y_desc("loss (smoothed)")
            .draw()?;
        chart.draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(2)))?;
        let colours = [RED, GREEN, MAGENTA];
        for (k, &(name, lr, loss)) in marks.iter().enumerate() {
            let colour = colours[k % colours.len()];
            chart
                .draw_series([Circle::new((lr, loss), 6, colour.filled())])?
                .label(format!("{name}: {lr:.2e}"))
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
        }
        if !marks.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font((FONT, 13))
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()?;
        }
        root.present()?;
        Ok(())
    })
}

/// A study's best value so far, against the trial number and against the CPU-minutes
/// of training spent: two panels side by side (`points`: (trial, minutes, best)).
pub fn best_so_far(path: &Path, title: &str, metric: &str, points: &[(f64, f64, f64)]) -> Result<()> {
    register_font();
    png(path, (1000, 400), |root| {
        root.fill(&WHITE)?;
        let root = root.titled(title, (FONT, 18))?;
        let (left, right) = root.split_horizontally(500);
        let lo = points.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() { (lo, hi.max(lo + 1e-3)) } else { (0.0, 1.0) };
        let pad = (hi - lo) * 0.08;
        for (area, x_of, desc) in [
            (&left, (|p: &(f64, f64, f64)| p.0) as fn(&(f64, f64, f64)) -> f64, "trial"),
            (&right, |p: &(f64, f64, f64)| p.1, "CPU-minutes of training"),
        ] {
            let x_hi = points.iter().map(x_of).fold(1.0f64, f64::max);
            let mut chart = ChartBuilder::on(area)
                .margin(14)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..x_hi * 1.02, (lo - pad)..(hi + pad))?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .label_style((FONT, 13))
                .y_label_formatter(&|v| format!("{v:.3}"))
                .x_desc(desc)
                .y_desc(format!("best {metric} so far"))
                .draw()?;
            let pts: Vec<(f64, f64)> = points.iter().map(|p| (x_of(p), p.2)).collect();
            chart.draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(2)))?;
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))?;
        }
        root.present()?;
        Ok(())
    })
}

/// Parallel coordinates: one vertical axis per parameter (values scaled to [0, 1] on
/// each axis, `labels` its ends) and the metric last; one line per trial, coloured
/// from red (worst) to blue (best) by its metric (`rows`: values in [0, 1] per axis,
/// then the metric's own scale in [0, 1]).
pub fn parallel_coordinates(
    path: &Path,
    title: &str,
    axes: &[(String, String, String)],
    rows: &[Vec<f64>],
) -> Result<()> {
    register_font();
    png(path, (1100, 460), |root| {
        root.fill(&WHITE)?;
        let root = root.titled(title, (FONT, 18))?;
        let n = axes.len().max(2);
        let mut chart = ChartBuilder::on(&root)
            .margin(20)
            .margin_left(30)
            .margin_right(30)
            .x_label_area_size(60)
            .build_cartesian_2d(-0.1..(n as f64 - 0.9), -0.08..1.08)?;
        chart.configure_mesh().disable_mesh().disable_y_axis().x_labels(0).draw()?;
        for row in rows {
            let score = row.last().copied().unwrap_or(0.0).clamp(0.0, 1.0);
            let colour = RGBColor((220.0 * (1.0 - score)) as u8, 60, (220.0 * score) as u8);
            let pts: Vec<(f64, f64)> = row.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect();
            chart.draw_series(LineSeries::new(pts, colour.mix(0.75).stroke_width(2)))?;
        }
        for (i, (name, low, high)) in axes.iter().enumerate() {
            let x = i as f64;
            chart.draw_series(LineSeries::new([(x, 0.0), (x, 1.0)], BLACK.stroke_width(1)))?;
            let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
            chart.draw_series([Text::new(name.clone(), (x, -0.04), style.clone())])?;
            chart.draw_series([Text::new(low.clone(), (x, -0.0), ((FONT, 11).into_font()).into_text_style(&root))])?;
            chart.draw_series([Text::new(high.clone(), (x, 1.04), ((FONT, 11).into_font()).into_text_style(&root))])?;
        }
        root.present()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plot goes through the atomic writer like every file of a run: on a full disk
    /// (the temporary file is a link to /dev/full) the error names the PNG, no
    /// temporary is left, and the earlier picture is intact.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_plot_on_a_full_disk_keeps_the_old_picture() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let rows = [Epoch { epoch: 1, loss: (1.0, 1.2), accuracy: (0.5, 0.4) }];
        curves(&path, "one epoch", &rows, "val").unwrap();
        let before = std::fs::read(&path).unwrap();
        assert_eq!(&before[..8], b"\x89PNG\r\n\x1a\n");
        std::os::unix::fs::symlink("/dev/full", dir.path().join("curves.png.tmp")).unwrap();
        let err = curves(&path, "two epochs", &[rows[0], Epoch { epoch: 2, ..rows[0] }], "val").unwrap_err();
        assert_eq!(err.to_string(), format!("writing {}: No space left on device (os error 28)", path.display()));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["curves.png"]);
    }
}
