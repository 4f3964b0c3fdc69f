//! `train.pipeline = "device"`: the training set lives on the device and batches are
//! gathered, flipped and translated there with batched tensor ops, as airbench does on
//! a GPU. Per batch the host only draws the random flips and offsets (a seeded
//! generator per batch, so runs are reproducible and resumable) and uploads them with
//! the indices: a few hundred numbers.

use std::sync::mpsc;

use cnnlab_augment::{Fill, Op};
use cnnlab_data::{Dataset, Variant};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::batch::Normalizer;
use crate::error::{Error, Result};

/// An augmentation the device feed performs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DeviceOp {
    /// Mirror each image left-right with probability `p`.
    Hflip { p: f64 },
    /// Pad by `pad` (reflecting or with black) and crop back at a random offset.
    Translate { pad: i64, reflect: bool },
}

/// The whole training split on the device, as `u8` (a quarter of float's memory).
#[derive(Debug)]
pub(crate) struct DeviceFeed {
    /// `[N, H, W, C]` images, as the host feed holds them, and `[N]` int64 labels; not
    /// built on a CPU, whose batches come from the host's copy (see
    /// [`for_each_device_batch`]).
    tensors: Option<(Tensor, Tensor)>,
    ops: Vec<DeviceOp>,
}

/// The device pipeline's form of `augment`: it does `hflip` and `random_crop` with
/// `p = 1`; any other op is an error naming it (checked with the config, before any
/// data is read: [`check_device_pipeline`]).
fn device_ops(augment: &[Op]) -> Result<Vec<DeviceOp>> {
    augment
        .iter()
        .enumerate()
        .map(|(i, op)| match *op {
            Op::Hflip { p } => Ok(DeviceOp::Hflip { p }),
            Op::RandomCrop { size: None, padding, fill, p, .. } if p >= 1.0 => {
                Ok(DeviceOp::Translate { pad: padding as i64, reflect: fill == Fill::Reflect })
            }
            _ => Err(Error::Unsupported {
                key: "train.pipeline",
                message: format!(
                    "\"device\" does hflip and random_crop (p = 1) on the device; augment.ops[{i}] is `{}`: use \
                     pipeline = \"host\" for it",
                    op.name()
                ),
            }),
        })
        .collect()
}

/// Whether `pipeline = "device"` can run these augmentation ops (see [`device_ops`]).
pub fn check_device_pipeline(augment: &[Op]) -> Result<()> {
    device_ops(augment).map(drop)
}

impl DeviceFeed {
    /// Uploads `data`; `augment` may hold only what the device does in batch.
    pub(crate) fn new(data: &Dataset, augment: &[Op], device: Device) -> Result<Self> {
        Self::build(data, augment, device, device != Device::Cpu)
    }

    /// [`DeviceFeed::new`], with the tensors built or not.
    fn build(data: &Dataset, augment: &[Op], device: Device, tensors: bool) -> Result<Self> {
        let ops = device_ops(augment)?;
        let s = data.shape;
        let n = data.len() as i64;
        let tensors = tensors.then(|| {
            let images = Tensor::from_slice(&data.pixels())
                .view([n, s.height as i64, s.width as i64, s.channels as i64])
                .to_device(device);
            let labels: Vec<i64> = data.labels.iter().map(|&l| i64::from(l)).collect();
            (images, Tensor::from_slice(&labels).to_device(device))
        });
        Ok(DeviceFeed { tensors, ops })
    }

    /// The planned samples `items`, augmented with draws from `rng` (none without one)
    /// and standardized, with their labels.
    fn batch(
        &self,
        items: &[(usize, Variant)],
        norm: &Normalizer,
        rng: Option<&mut ChaCha8Rng>,
    ) -> Result<(Tensor, Tensor)> {
        if items.iter().any(|&(_, v)| v == Variant::Augmented) {
            return Err(augmented_copies_error());
        }
        let Some((images, labels)) = &self.tensors else {
            return Err(Error::Unsupported {
                key: "train.pipeline",
                message: "the device feed's tensors were not built (a CPU run)".into(),
            });
        };
        let device = images.device();
        let n = items.len();
        let index: Vec<i64> = items.iter().map(|&(i, _)| i as i64).collect();
        let index = Tensor::from_slice(&index).to_device(device);
        // Contiguous NCHW while augmenting: gathers along H and W over a channels-last
        // tensor are several times slower on a CPU.
        let mut xs = images
            .index_select(0, &index)
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            .contiguous()
            .g_mul_scalar(1.0 / 255.0);
        // The imbalance strategies' mirrored copies.
        for (variant, dim) in [(Variant::Hflip, 3), (Variant::Vflip, 2)] {
            let flags: Vec<bool> = items.iter().map(|&(_, v)| v == variant).collect();
            xs = flip_where(&xs, &flags, dim);
        }
        if let Some(rng) = rng {
            for op in &self.ops {
                xs = match *op {
                    DeviceOp::Hflip { p } => {
                        let flags: Vec<bool> = (0..n).map(|_| rng.gen::<f64>() < p).collect();
                        flip_where(&xs, &flags, 3)
                    }
                    DeviceOp::Translate { pad, reflect } => {
                        let mut draw = || (0..n).map(|_| rng.gen_range(0..=2 * pad)).collect::<Vec<i64>>();
                        let (dy, dx) = (draw(), draw());
                        translate(&xs, pad, reflect, &dy, &dx)
                    }
                };
            }
        }
        // Channels-last memory, as the host feed's permuted NHWC batches: libtorch's CPU
        // convolutions run ~1.5x faster on it than on contiguous NCHW (measured on
        // seed3-final: 30 vs 46 ms per batch of 64).
        let xs = norm.standardize(&xs).permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
        Ok((xs, labels.index_select(0, &index)))
    }
}

/// Runs `consume(batch index, images, labels)` on every batch of `items` from batch
/// `start` on, augmenting with `(seed, epoch)`'s draws when given. On a GPU the
/// batches are tensor ops in line (kernels queue asynchronously). On a CPU the device
/// memory is the host's: a producer thread makes the same batches (the same draws and
/// the same integer flips and shifts, see [`host_batch`]) with cnnlab-augment on the u8
/// images, so no libtorch ops compete with training for the cores.
#[allow(clippy::too_many_arguments)]
pub(crate) fn for_each_device_batch<E: From<Error>>(
    feed: &DeviceFeed,
    data: &Dataset,
    norm: &Normalizer,
    items: &[(usize, Variant)],
    batch_size: usize,
    start: usize,
    augment: Option<(u64, u64)>,
    mut consume: impl FnMut(usize, Tensor, Tensor) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let rng_of = move |b: usize| augment.map(|(seed, epoch)| crate::seed::device_batch(seed, epoch, b));
    let batches = items.chunks(batch_size).enumerate().skip(start);
    if feed.tensors.is_some() {
        for (b, chunk) in batches {
            let (xs, ys) = feed.batch(chunk, norm, rng_of(b).as_mut())?;
            consume(b, xs, ys)?;
        }
        return Ok(());
    }
    let ops = feed.ops.clone();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(4);
        scope.spawn(move || {
            for (b, chunk) in batches {
                if tx.send((b, host_batch(data, &ops, chunk, rng_of(b).as_mut()))).is_err() {
                    break; // the consumer stopped early
                }
            }
        });
        for (b, made) in rx {
            let (pixels, labels) = made?;
            let xs = norm.to_tensor(&pixels);
            consume(b, xs, Tensor::from_slice(&labels))?;
        }
        Ok(())
    })
}

/// [`DeviceFeed::batch`]'s images as u8 HWC on the host: the same draws in the same
/// order, applied with cnnlab-augment's exact flips and shifts (zero or reflect fill),
/// so the batches are identical to the tensor path's.
fn host_batch(
    data: &Dataset,
    ops: &[DeviceOp],
    items: &[(usize, Variant)],
    rng: Option<&mut ChaCha8Rng>,
) -> Result<(Vec<u8>, Vec<i64>)> {
    use rayon::prelude::*;
    if items.iter().any(|&(_, v)| v == Variant::Augmented) {
        return Err(augmented_copies_error());
    }
    let n = items.len();
    // Per image: [flip?, (dy, dx)] for each op, drawn op by op as the tensor path does.
    let mut draws: Vec<Vec<(bool, i64, i64)>> = vec![Vec::with_capacity(ops.len()); n];
    if let Some(rng) = rng {
        for op in ops {
            match *op {
                DeviceOp::Hflip { p } => draws.iter_mut().for_each(|d| d.push((rng.gen::<f64>() < p, 0, 0))),
                DeviceOp::Translate { pad, .. } => {
                    let dy: Vec<i64> = (0..n).map(|_| rng.gen_range(0..=2 * pad)).collect();
                    let dx: Vec<i64> = (0..n).map(|_| rng.gen_range(0..=2 * pad)).collect();
                    draws.iter_mut().zip(dy.into_iter().zip(dx)).for_each(|(d, (y, x))| d.push((false, y, x)));
                }
            }
        }
    }
    let s = data.shape;
    let mut pixels = vec![0u8; n * s.len()];
    let per_task = (65536 / s.len()).max(1);
    data.prefetch(items.iter().map(|&(i, _)| i));
    pixels.par_chunks_mut(s.len()).zip(items.par_iter().zip(draws.par_iter())).with_min_len(per_task).for_each(
        |(img, (&(i, variant), draws))| {
            img.copy_from_slice(data.image(i));
            // `img` is one chunk of `s.len()` bytes: the shape always matches.
            let fits = |r: cnnlab_augment::Result<()>| r.unwrap_or_else(|e| unreachable!("{e}"));
            match variant {
                Variant::Hflip => fits(cnnlab_augment::hflip(img, s)),
                Variant::Vflip => fits(cnnlab_augment::vflip(img, s)),
                Variant::Original | Variant::Augmented => {}
            }
            for (op, &(flip, dy, dx)) in ops.iter().zip(draws) {
                match *op {
                    DeviceOp::Hflip { .. } if flip => fits(cnnlab_augment::hflip(img, s)),
                    DeviceOp::Hflip { .. } => {}
                    // Cropping the padded image at (dy, dx) shifts it by (pad - dx, pad - dy).
                    DeviceOp::Translate { pad, reflect } => {
                        let fill = if reflect { Fill::Reflect } else { Fill::Constant };
                        fits(cnnlab_augment::translate(img, s, pad - dx, pad - dy, fill))
                    }
                }
            }
        },
    );
    data.release(items.iter().map(|&(i, _)| i));
    Ok((pixels, items.iter().map(|&(i, _)| data.labels[i] as i64).collect()))
}

fn augmented_copies_error() -> Error {
    Error::Unsupported {
        key: "train.pipeline",
        message: "\"device\" cannot make the augmented copies this imbalance strategy asks for; use pipeline = \
                  \"host\""
            .into(),
    }
}

/// Mirrors the images of `[n, C, H, W]` whose flag is set, along `dim`.
fn flip_where(xs: &Tensor, flags: &[bool], dim: i64) -> Tensor {
    if !flags.iter().any(|&f| f) {
        return xs.shallow_clone();
    }
    let mask = Tensor::from_slice(flags).to_device(xs.device()).view([-1, 1, 1, 1]);
    xs.flip([dim]).where_self(&mask, xs)
}

/// Shifts image `i` of `[n, C, H, W]` so that its crop of the padded image starts at
/// row `dy[i]`, column `dx[i]` (each in `0..=2 * pad`), filling the border by
/// reflection or with zeros: torchvision's `RandomCrop(size, padding=pad)` in batch.
fn translate(xs: &Tensor, pad: i64, reflect: bool, dy: &[i64], dx: &[i64]) -> Tensor {
    if pad == 0 {
        return xs.shallow_clone();
    }
    let (n, c, h, w) = xs.size4().expect("a batch of images");
    let device = xs.device();
    let padded =
        if reflect { xs.reflection_pad2d([pad, pad, pad, pad]) } else { xs.constant_pad_nd([pad, pad, pad, pad]) };
    let offsets = |start: &[i64], side: i64| {
        Tensor::from_slice(start).to_device(device).view([n, 1])
            + Tensor::arange(side, (Kind::Int64, device)).view([1, side])
    };
    // Two gathers, rows then columns (cheaper on a CPU than one 4-D advanced index).
    let rows = offsets(dy, h).view([n, 1, h, 1]).expand([n, c, h, w + 2 * pad], false);
    let cols = offsets(dx, w).view([n, 1, 1, w]).expand([n, c, h, w], false);
    padded.gather(2, &rows, false).gather(3, &cols, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: i64, h: i64, w: i64) -> Tensor {
        Tensor::arange(n * 2 * h * w, (Kind::Float, Device::Cpu)).view([n, 2, h, w])
    }

    #[test]
    fn translate_shifts_each_image_by_its_offset() {
        let xs = ramp(25, 6, 5);
        let (dy, dx): (Vec<i64>, Vec<i64>) = (0..25).map(|i| (i / 5, i % 5)).unzip();
        let ys = translate(&xs, 2, false, &dy, &dx);
        assert_eq!(ys.size(), [25, 2, 6, 5]);
        for i in 0..25usize {
            let expected = xs.get(i as i64).constant_pad_nd([2, 2, 2, 2]).narrow(1, dy[i], 6).narrow(2, dx[i], 5);
            assert!(ys.get(i as i64).equal(&expected), "image {i} (dy {}, dx {})", dy[i], dx[i]);
        }
        // Offset (pad, pad) is the identity.
        assert!(ys.get(12).equal(&xs.get(12)));
        // Reflection never brings in a value from outside the image.
        let reflected = translate(&xs, 2, true, &dy, &dx);
        assert_eq!(f64::try_from(reflected.get(0).min()).unwrap(), f64::try_from(xs.get(0).min()).unwrap());
        let expected = xs.get(0).reflection_pad2d([2, 2, 2, 2]).narrow(1, 0, 6).narrow(2, 0, 5);
        assert!(reflected.get(0).equal(&expected));
    }

    #[test]
    fn draws_depend_only_on_seed_epoch_and_batch() {
        let data = Dataset::new(
            cnnlab_data::ImageShape { channels: 1, height: 4, width: 4 },
            (0..64 * 16).map(|v| (v % 251) as u8).collect(),
            vec![0; 64],
            vec!["a".into()],
        )
        .unwrap();
        let norm = Normalizer::new(&[0.0], &[1.0], data.shape, Device::Cpu);
        let ops = [
            Op::Hflip { p: 0.5 },
            Op::RandomCrop { size: None, padding: 1, pad_if_needed: false, fill: Fill::Reflect, p: 1.0 },
        ];
        let feed = DeviceFeed::build(&data, &ops, Device::Cpu, true).unwrap();
        let items: Vec<(usize, Variant)> = (0..64).map(|i| (i, Variant::Original)).collect();
        let run = |seed: u64| {
            let mut out = Vec::new();
            for_each_device_batch::<Error>(&feed, &data, &norm, &items, 16, 0, Some((seed, 1)), |_, xs, _| {
                out.push(xs);
                Ok(())
            })
            .unwrap();
            Tensor::cat(&out, 0)
        };
        assert!(run(5).equal(&run(5)), "same seed, same batches");
        assert!(!run(5).equal(&run(6)), "another seed, other draws");
        let plain = {
            let mut out = Vec::new();
            for_each_device_batch::<Error>(&feed, &data, &norm, &items, 16, 0, None, |_, xs, _| {
                out.push(xs);
                Ok(())
            })
            .unwrap();
            Tensor::cat(&out, 0)
        };
        let original = Tensor::from_slice(&data.pixels()).view([64, 1, 4, 4]).to_kind(Kind::Float) / 255.0;
        assert!(plain.allclose(&original, 1e-6, 1e-6, false), "no augmentation: the images themselves");
    }

    #[test]
    fn host_batches_equal_the_tensor_path_batches() {
        // 3 channels, odd sizes, every variant, both fills: the CPU producer's batches
        // are exactly what the tensor ops (the GPU path) make from the same draws.
        let shape = cnnlab_data::ImageShape { channels: 3, height: 7, width: 5 };
        let n = 40;
        let data = Dataset::new(
            shape,
            (0..n * shape.len()).map(|v| (v * 7 % 253) as u8).collect(),
            vec![0; n],
            vec!["a".into()],
        )
        .unwrap();
        let norm = Normalizer::new(&[0.4, 0.5, 0.6], &[0.2, 0.25, 0.3], shape, Device::Cpu);
        let variants = [Variant::Original, Variant::Hflip, Variant::Vflip];
        let items: Vec<(usize, Variant)> = (0..n).map(|i| (i, variants[i % 3])).collect();
        for reflect in [false, true] {
            let fill = if reflect { Fill::Reflect } else { Fill::Constant };
            let ops =
                [Op::Hflip { p: 0.5 }, Op::RandomCrop { size: None, padding: 2, pad_if_needed: false, fill, p: 1.0 }];
            let feed = DeviceFeed::build(&data, &ops, Device::Cpu, true).unwrap();
            let (tensor_xs, tensor_ys) =
                feed.batch(&items, &norm, Some(&mut crate::seed::device_batch(9, 2, 3))).unwrap();
            let (pixels, labels) =
                host_batch(&data, &feed.ops, &items, Some(&mut crate::seed::device_batch(9, 2, 3))).unwrap();
            let host_xs = norm.to_tensor(&pixels);
            let diff = f64::try_from((&tensor_xs - &host_xs).abs().max()).unwrap();
            assert!(diff < 1e-6, "fill {fill:?}: tensor and host batches differ by {diff}");
            assert!(tensor_ys.equal(&Tensor::from_slice(&labels)));
        }
    }
}
