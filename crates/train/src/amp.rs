//! fp16's dynamic loss scale, as `torch.amp.GradScaler`: the loss is multiplied by
//! `scale` before the backward pass so that small float16 gradients do not flush to
//! zero; before the optimizer step the gradients are divided by it again
//! (libtorch's `_amp_foreach_non_finite_check_and_unscale_`), a step whose
//! gradients hold an inf or NaN is skipped, and `_amp_update_scale_` halves the
//! scale after such a step or doubles it after `growth_interval` good ones.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// GradScaler's defaults.
const INIT_SCALE: f64 = 65536.0;
const GROWTH_FACTOR: f64 = 2.0;
const BACKOFF_FACTOR: f64 = 0.5;
const GROWTH_INTERVAL: i64 = 2000;

const SCALE_KEY: &str = "amp.scale";
const GROWTH_KEY: &str = "amp.growth_tracker";

#[derive(Debug)]
pub(crate) struct GradScaler {
    /// The current scale (float32, one element).
    scale: Tensor,
    /// Good steps since the scale last changed (int32, one element).
    growth: Tensor,
    /// Set when the gradients being unscaled hold an inf or NaN.
    found_inf: Tensor,
}

impl GradScaler {
    pub(crate) fn new(device: Device) -> Self {
        GradScaler {
            scale: Tensor::from_slice(&[INIT_SCALE as f32]).to_device(device),
            growth: Tensor::zeros([1], (Kind::Int, device)),
            found_inf: Tensor::zeros([1], (Kind::Float, device)),
        }
    }

    /// `loss * scale`, to call `backward` on.
    pub(crate) fn scale(&self, loss: &Tensor) -> Tensor {
        loss * &self.scale
    }

    /// Divides `grads` by the scale in place; true when all of them are finite (the
    /// optimizer may step).
    pub(crate) fn unscale(&mut self, grads: &mut [Tensor]) -> Result<bool> {
        let _ = self.found_inf.zero_();
        let inv = self.scale.to_kind(Kind::Double).reciprocal().to_kind(Kind::Float);
        tch::no_grad(|| -> Result<()> {
            for g in grads.iter_mut() {
                g.f_internal_amp_non_finite_check_and_unscale(&mut self.found_inf, &inv)?;
            }
            Ok(())
        })?;
        Ok(f64::try_from(&self.found_inf)? == 0.0)
    }

    /// After each optimizer step (taken or skipped): backs off or grows the scale.
    pub(crate) fn update(&mut self) -> Result<()> {
        let _ = self.scale.f_internal_amp_update_scale_(
            &self.growth,
            &self.found_inf,
            GROWTH_FACTOR,
            BACKOFF_FACTOR,
            GROWTH_INTERVAL,
        )?;
        Ok(())
    }

    /// For the resumable checkpoint.
    pub(crate) fn state(&self) -> Vec<(String, Tensor)> {
        vec![(SCALE_KEY.into(), self.scale.shallow_clone()), (GROWTH_KEY.into(), self.growth.shallow_clone())]
    }

    pub(crate) fn load(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let hint = " (was train.precision changed to fp16?)";
        for (key, dst) in [(SCALE_KEY, &mut self.scale), (GROWTH_KEY, &mut self.growth)] {
            let src = saved.get(key).ok_or(Error::MissingTensor { name: key.into(), hint })?;
            tch::no_grad(|| dst.f_copy_(src))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale_of(s: &GradScaler) -> f64 {
        f64::try_from(&s.scale).unwrap()
    }

    /// Finite gradients are divided by the scale and the step may go on; one inf
    /// anywhere skips the step and halves the scale; the state round-trips.
    #[test]
    fn unscales_detects_overflow_and_backs_off() {
        let mut s = GradScaler::new(Device::Cpu);
        let loss = Tensor::from_slice(&[0.5f32]);
        assert_eq!(f64::try_from(s.scale(&loss)).unwrap(), 0.5 * INIT_SCALE);

        let mut grads = vec![Tensor::from_slice(&[65536.0f32, -131072.0]), Tensor::from_slice(&[32768.0f32])];
        assert!(s.unscale(&mut grads).unwrap());
        assert_eq!(Vec::<f32>::try_from(&grads[0]).unwrap(), [1.0, -2.0]);
        assert_eq!(Vec::<f32>::try_from(&grads[1]).unwrap(), [0.5]);
        s.update().unwrap();
        assert_eq!(scale_of(&s), INIT_SCALE, "one good step does not grow the scale yet");
        assert_eq!(i32::try_from(&s.growth).unwrap(), 1);

        let mut bad = vec![Tensor::from_slice(&[1.0f32]), Tensor::from_slice(&[f32::INFINITY, 2.0])];
        assert!(!s.unscale(&mut bad).unwrap());
        s.update().unwrap();
        assert_eq!(scale_of(&s), INIT_SCALE * BACKOFF_FACTOR);
        assert_eq!(i32::try_from(&s.growth).unwrap(), 0, "an overflow restarts the growth count");

        let saved: HashMap<String, Tensor> = s.state().into_iter().map(|(k, v)| (k, v.copy())).collect();
        let mut fresh = GradScaler::new(Device::Cpu);
        fresh.load(&saved).unwrap();
        assert_eq!(scale_of(&fresh), INIT_SCALE * BACKOFF_FACTOR);
        let err = GradScaler::new(Device::Cpu).load(&HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("amp.scale") && err.contains("precision"), "{err}");
    }

    /// After `GROWTH_INTERVAL` good steps in a row the scale doubles.
    #[test]
    fn grows_after_the_interval() {
        let mut s = GradScaler::new(Device::Cpu);
        for _ in 0..GROWTH_INTERVAL {
            let mut g = vec![Tensor::from_slice(&[1.0f32])];
            assert!(s.unscale(&mut g).unwrap());
            s.update().unwrap();
        }
        assert_eq!(scale_of(&s), INIT_SCALE * GROWTH_FACTOR);
    }
}
