//! The layers without parameters that keep a shape or flatten it: `dropout { p }`,
//! `scale { by }` (airbench's output scaling) and `flatten` (planned and built in
//! `mod.rs`, one line each).

use super::Planned;
use crate::summary::Shape;

pub(super) fn plan_dropout(p: f64, input: Shape) -> Result<Planned, String> {
    if !(0.0..1.0).contains(&p) {
        return Err(format!("p = {p} is outside [0, 1)"));
    }
    Ok(Planned::free("Dropout", input))
}

pub(super) fn plan_scale(by: f64, input: Shape) -> Result<Planned, String> {
    if !by.is_finite() {
        return Err(format!("by = {by} must be a finite number"));
    }
    Ok(Planned::free("Scale", input))
}
