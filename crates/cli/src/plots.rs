//! PNG plots drawn with plotters and an embedded DejaVu Sans (assets/), so they look
//! the same on every machine and need no system fonts.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

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
pub(crate) fn class_distribution(path: &Path, title: &str, counts: &[(String, usize)]) -> Result<()> {
    register_font();
    let n = counts.len();
    let max = counts.iter().map(|c| c.1).max().unwrap_or(1).max(1);
    let height = (60 + 22 * n as u32).max(240);
    let label_width = counts.iter().map(|c| c.0.len()).max().unwrap_or(5) as u32 * 8 + 20;
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(path, (900, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0..max + max / 10 + 1, (0..n).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .label_style((FONT, 13))
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                // Row 0 is at the bottom: list the largest class on top.
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if *i < n => counts[n - 1 - i].0.clone(),
                SegmentValue::CenterOf(_) | SegmentValue::Exact(_) => String::new(),
                SegmentValue::Last => String::new(),
            })
            .x_desc("images")
            .draw()?;
        chart.draw_series(counts.iter().rev().enumerate().map(|(i, (_, c))| {
            let mut bar =
                Rectangle::new([(0, SegmentValue::Exact(i)), (*c, SegmentValue::Exact(i + 1))], BLUE.mix(0.6).filled());
            bar.set_margin(2, 2, 0, 0);
            bar
        }))?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow!("drawing {}: {e}", path.display()))
}
