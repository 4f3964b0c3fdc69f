//! [`Shape`]: the size of one HWC image.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Size of one image stored row by row, channels interleaved (HWC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Shape {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Values per pixel (1 grey, 3 RGB, 4 RGBA).
    pub channels: usize,
}

impl Shape {
    /// A shape of `height` rows, `width` columns and `channels` values per pixel.
    pub fn new(height: usize, width: usize, channels: usize) -> Self {
        Shape { height, width, channels }
    }

    /// Bytes of one image.
    pub fn len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Whether the image has no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks `buf` for the free functions: `Ok(false)` when the image has no pixel (an
    /// empty buffer, nothing to do), `Ok(true)` when it holds exactly one image of
    /// pixels with at least one value each, an error otherwise.
    pub(crate) fn checked(&self, buf: &[u8]) -> Result<bool> {
        self.check(buf)?;
        if self.height == 0 || self.width == 0 {
            return Ok(false);
        }
        if self.channels == 0 {
            return Err(Error::NoChannels { height: self.height, width: self.width });
        }
        Ok(true)
    }

    /// Checks that `buf` holds exactly one image of this shape.
    pub(crate) fn check(&self, buf: &[u8]) -> Result<()> {
        if buf.len() == self.len() {
            return Ok(());
        }
        Err(Error::BufferSize {
            len: buf.len(),
            expected: self.len(),
            height: self.height,
            width: self.width,
            channels: self.channels,
        })
    }
}

/// The size a size-changing op produces, as torchvision writes it: one number (a
/// square for crops; the shorter side for [`Op::Resize`](crate::Op::Resize), the
/// aspect ratio kept) or `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum Size {
    /// One number: `224`.
    Side(usize),
    /// `[height, width]`.
    Exact([usize; 2]),
}

impl Size {
    /// `[height, width]` of a crop: a square for one number.
    pub fn crop(self) -> [usize; 2] {
        match self {
            Size::Side(n) => [n, n],
            Size::Exact(hw) => hw,
        }
    }

    /// `[height, width]` of torchvision's `Resize(size)` on a `height x width` image:
    /// one number is the shorter side, the longer one scaled to keep the aspect ratio
    /// (truncated, as torchvision's `_compute_resized_output_size`).
    pub fn resized(self, height: usize, width: usize) -> [usize; 2] {
        match self {
            Size::Exact(hw) => hw,
            Size::Side(n) => {
                let (short, long) = if width <= height { (width, height) } else { (height, width) };
                if short == n || short == 0 {
                    return [height, width];
                }
                let long = (n as f64 * long as f64 / short as f64) as usize;
                if width <= height {
                    [long, n]
                } else {
                    [n, long]
                }
            }
        }
    }
}

impl From<usize> for Size {
    fn from(n: usize) -> Self {
        Size::Side(n)
    }
}

impl From<[usize; 2]> for Size {
    fn from(hw: [usize; 2]) -> Self {
        Size::Exact(hw)
    }
}

impl From<(usize, usize)> for Size {
    fn from((h, w): (usize, usize)) -> Self {
        Size::Exact([h, w])
    }
}

/// Padding as torchvision writes it: one number for every side, `[left/right,
/// top/bottom]`, or `[left, top, right, bottom]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum Padding {
    /// Every side.
    All(usize),
    /// `[left and right, top and bottom]`.
    Symmetric([usize; 2]),
    /// `[left, top, right, bottom]`.
    Sides([usize; 4]),
}

impl Padding {
    /// `[left, top, right, bottom]`.
    pub fn sides(self) -> [usize; 4] {
        match self {
            Padding::All(n) => [n; 4],
            Padding::Symmetric([x, y]) => [x, y, x, y],
            Padding::Sides(s) => s,
        }
    }
}

/// A fill colour: one value for every channel (`0`), or one per channel (`[124, 116,
/// 104]`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum Colour {
    /// The same value in every channel.
    Grey(u8),
    /// One value per channel.
    Channels(Vec<u8>),
}

impl Default for Colour {
    fn default() -> Self {
        Colour::Grey(0)
    }
}

impl Colour {
    /// The values: one, or one per channel.
    pub fn values(&self) -> &[u8] {
        match self {
            Colour::Grey(v) => std::slice::from_ref(v),
            Colour::Channels(v) => v,
        }
    }
}
