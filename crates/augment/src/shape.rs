//! [`Shape`]: the size of one HWC image.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Size of one image stored row by row, channels interleaved (HWC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
