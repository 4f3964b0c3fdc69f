//! `{ type = "batchnorm", scale = true, momentum = 0.1, eps = 1e-5 }`: PyTorch's
//! `BatchNorm2d` over channels (a map) or `BatchNorm1d` over features (flat); without
//! `scale`, a shift-only batch norm (airbench's, the weight frozen at 1).

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{bn_config, Planned};
use crate::summary::Shape;

pub(super) fn plan(scale: bool, momentum: f64, eps: f64, input: Shape) -> Result<Planned, String> {
    if !(0.0..=1.0).contains(&momentum) || eps.is_nan() || eps <= 0.0 {
        return Err(format!("momentum {momentum} must be in [0, 1] and eps {eps} above 0"));
    }
    let (name, n) = match input {
        Shape::Map(c, ..) => ("BatchNorm2d", c),
        Shape::Flat(n) => ("BatchNorm1d", n),
    };
    Ok(Planned { name, output: input, trainable: if scale { 2 * n } else { n }, non_trainable: 2 * n })
}

pub(super) fn build(scale: bool, momentum: f64, eps: f64, p: &nn::Path, output: Shape) -> Box<dyn ModuleT> {
    match (scale, output) {
        (true, Shape::Map(c, ..)) => Box::new(nn::batch_norm2d(p, c, bn_config(momentum, eps))),
        (true, Shape::Flat(n)) => Box::new(nn::batch_norm1d(p, n, bn_config(momentum, eps))),
        (false, _) => Box::new(ShiftOnlyBatchNorm::new(p, output, momentum, eps)),
    }
}

/// Batch normalization with the scale fixed at 1 (PyTorch's `BatchNorm2d` with a
/// frozen weight): a learned shift and the running statistics, named as tch names them.
#[derive(Debug)]
struct ShiftOnlyBatchNorm {
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    momentum: f64,
    eps: f64,
}

impl ShiftOnlyBatchNorm {
    fn new(p: &nn::Path, shape: Shape, momentum: f64, eps: f64) -> Self {
        let n = match shape {
            Shape::Map(c, ..) => c,
            Shape::Flat(n) => n,
        };
        ShiftOnlyBatchNorm {
            bias: p.zeros("bias", &[n]),
            running_mean: p.zeros_no_train("running_mean", &[n]),
            running_var: p.ones_no_train("running_var", &[n]),
            momentum,
            eps,
        }
    }
}

impl ModuleT for ShiftOnlyBatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        Tensor::batch_norm(
            xs,
            None::<&Tensor>,
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            self.momentum,
            self.eps,
            true,
        )
    }
}
