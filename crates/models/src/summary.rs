//! What a network is, without libtorch: the shape flowing between layers, one row
//! of the layer table, and the table as torchsummary prints it.

pub use cnnlab_run::thousands;

/// What flows between layers, per sample (the batch dimension is implicit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Channels, height, width.
    Map(i64, i64, i64),
    /// Features.
    Flat(i64),
}

/// The images a dataset holds, as the network's input.
impl From<cnnlab_augment::Shape> for Shape {
    fn from(s: cnnlab_augment::Shape) -> Self {
        Shape::Map(s.channels as i64, s.height as i64, s.width as i64)
    }
}

impl Shape {
    pub fn numel(&self) -> i64 {
        match *self {
            Shape::Map(c, h, w) => c * h * w,
            Shape::Flat(n) => n,
        }
    }

    /// Channels, height and width of a map, or why flat features are not one.
    pub fn map(&self) -> Result<(i64, i64, i64), String> {
        match *self {
            Shape::Map(c, h, w) => Ok((c, h, w)),
            Shape::Flat(n) => Err(format!("needs a channels x height x width map but gets {n} flat features")),
        }
    }

    /// The number of flat features, or why a map is not flat.
    pub fn flat(&self) -> Result<i64, String> {
        match *self {
            Shape::Flat(n) => Ok(n),
            Shape::Map(c, h, w) => Err(format!("needs flat features, gets a {c}x{h}x{w} map (add a flatten layer)")),
        }
    }

    /// A map's channels, or the features of a flat shape.
    pub fn channels(&self) -> i64 {
        match *self {
            Shape::Map(c, ..) | Shape::Flat(c) => c,
        }
    }

    /// As torchsummary prints it: `[-1, 16, 32, 32]`.
    pub fn dims(&self) -> Vec<i64> {
        match *self {
            Shape::Map(c, h, w) => vec![-1, c, h, w],
            Shape::Flat(n) => vec![-1, n],
        }
    }
}

/// One row of the layer table.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    /// `Conv2d-1`-style name, numbered from 1 as torchsummary does.
    pub name: String,
    pub output: Shape,
    pub trainable: i64,
    /// Buffers such as BatchNorm's running mean and variance (Keras counts them).
    pub non_trainable: i64,
}

/// The layer table as torchsummary and Keras print it, with the parameter totals
/// (thousands separators) and the forward activation memory of one sample.
pub fn summary(rows: &[LayerRow], input: Shape) -> String {
    use std::fmt::Write;
    let rule = "-".repeat(64);
    let double = "=".repeat(64);
    let mut s = format!("{rule}\n{:>20}  {:>25} {:>15}\n{double}\n", "Layer (type)", "Output Shape", "Param #");
    for r in rows {
        let dims = format!("{:?}", r.output.dims());
        let params = thousands(r.trainable + r.non_trainable);
        let _ = writeln!(s, "{:>20}  {:>25} {:>15}", r.name, dims, params);
    }
    let trainable: i64 = rows.iter().map(|r| r.trainable).sum();
    let frozen: i64 = rows.iter().map(|r| r.non_trainable).sum();
    let activations: i64 = rows.iter().map(|r| r.output.numel()).sum();
    let mb = |floats: i64| floats as f64 * 4.0 / (1024.0 * 1024.0);
    let _ = writeln!(s, "{double}");
    let _ = writeln!(s, "Trainable params: {}", thousands(trainable));
    let _ = writeln!(s, "Non-trainable params: {}", thousands(frozen));
    let _ = writeln!(s, "Total params: {}", thousands(trainable + frozen));
    let _ = writeln!(s, "{rule}");
    let _ = writeln!(s, "Input size per sample (MB): {:.2}", mb(input.numel()));
    let _ = writeln!(s, "Forward activations per sample (MB): {:.2}", mb(activations));
    let _ = writeln!(s, "Params size (MB): {:.2}", mb(trainable + frozen));
    let _ = writeln!(s, "{rule}");
    s
}
