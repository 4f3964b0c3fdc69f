//! `{ type = "whiten", kernel = 2 }`: airbench's patch-whitening convolution, the
//! first layer, its `2 * C * k * k` filters fitted to the training images before the
//! first step ([`fit`]) and frozen; only its bias trains.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{BuildCx, Planned};
use crate::summary::Shape;

pub(super) fn plan(kernel: i64, input: Shape, index: usize) -> Result<Planned, String> {
    let (c, h, w) = input.map()?;
    if index != 0 {
        return Err("must be the first layer (it is fitted to the input images)".into());
    }
    if kernel < 1 || kernel > h || kernel > w {
        return Err(format!("kernel {kernel} must be in 1..={} for a {h}x{w} input", h.min(w)));
    }
    let out = 2 * c * kernel * kernel;
    let output = Shape::Map(out, h - kernel + 1, w - kernel + 1);
    // The weights are frozen after fitting: only the bias trains.
    Ok(Planned { name: "Whiten", output, trainable: out, non_trainable: out * c * kernel * kernel })
}

pub(super) fn build(kernel: i64, p: &nn::Path, input: Shape, output: Shape, cx: &mut BuildCx<'_>) -> Box<dyn ModuleT> {
    let (c, out) = (input.channels(), output.channels());
    let weight = p.zeros_no_train("weight", &[out, c, kernel, kernel]);
    let bias = p.zeros("bias", &[out]);
    *cx.whiten = Some((weight.shallow_clone(), kernel));
    Box::new(nn::func(move |x| x.conv2d(&weight, Some(&bias), [1, 1], [0, 0], [1, 1], 1)))
}

/// Sets the weights from normalized training images `xs` (`[N, C, H, W]`, a few
/// thousand are plenty), as airbench's `init_whitening_conv`: the eigenvectors of the
/// patches' covariance scaled by `1 / sqrt(eigenvalue + eps)`, then their negatives.
pub(crate) fn fit(weight: &Tensor, k: i64, xs: &Tensor, eps: f64) {
    let c = xs.size()[1];
    let d = c * k * k;
    tch::no_grad(|| {
        let xs = xs.to_device(weight.device()).to_kind(tch::Kind::Double);
        // [N, C, H', W', k, k] -> rows of C*k*k values in (channel, row, column) order.
        let patches = xs.unfold(2, k, 1).unfold(3, k, 1).permute([0, 2, 3, 1, 4, 5]).reshape([-1, d]);
        let n = patches.size()[0] as f64;
        let covariance = patches.tr().matmul(&patches) / n;
        let (values, vectors) = covariance.linalg_eigh("U");
        // Largest eigenvalue first; eigenvectors are the columns.
        let values = values.flip([0]);
        let vectors = vectors.flip([1]).tr();
        let scaled = vectors / (values + eps).sqrt().unsqueeze(1);
        let filters = Tensor::cat(&[&scaled, &(-&scaled)], 0).reshape([2 * d, c, k, k]);
        let mut weight = weight.shallow_clone();
        weight.copy_(&filters.to_kind(weight.kind()));
    });
}
