//! The libtorch calls tch 0.26 does not expose, through `csrc/shim.cpp`: autocast
//! on a chosen device type with a chosen dtype (tch's `autocast` switches only
//! CUDA's, with its default dtype), and the versions `cnnlab info` prints.

use std::ffi::{c_char, c_int, c_long, CStr};

use serde::Serialize;
use tch::{Device, Kind};

use crate::error::{Error, Result};
use crate::spec::Precision;

extern "C" {
    fn cnnlab_autocast(
        cuda: c_int,
        enable: c_int,
        dtype: c_int,
        prev_enabled: *mut c_int,
        prev_dtype: *mut c_int,
        err: *mut c_char,
        err_len: c_int,
    ) -> c_int;
    fn cnnlab_torch_version() -> *const c_char;
    fn cnnlab_cudnn_version() -> c_long;
    fn cnnlab_cuda_runtime_version() -> c_long;
    fn cnnlab_cuda_device_name(index: c_int, out: *mut c_char, out_len: c_int) -> c_int;
}

/// The autocast dtype of a precision, `None` for fp32.
pub fn autocast_kind(precision: Precision) -> Option<Kind> {
    match precision {
        Precision::Fp32 => None,
        Precision::Bf16 => Some(Kind::BFloat16),
        Precision::Fp16 => Some(Kind::Half),
    }
}

/// An autocast region (`with torch.autocast(device_type, dtype):`): ops in the
/// region compute in the lower precision where PyTorch's autocast lists say so,
/// and the previous state comes back when the guard drops.
#[derive(Debug)]
pub struct Autocast {
    cuda: c_int,
    prev_enabled: c_int,
    prev_dtype: c_int,
}

impl Autocast {
    /// Enters a region on `device`'s type; `None` for [`Precision::Fp32`].
    pub fn enter(device: Device, precision: Precision) -> Result<Option<Autocast>> {
        let Some(kind) = autocast_kind(precision) else {
            return Ok(None);
        };
        let cuda = c_int::from(device.is_cuda());
        let mut guard = Autocast { cuda, prev_enabled: 0, prev_dtype: 0 };
        guard.call(1, kind_code(kind))?;
        Ok(Some(guard))
    }

    fn call(&mut self, enable: c_int, dtype: c_int) -> Result<()> {
        let mut err = [0 as c_char; 512];
        // SAFETY: the shim writes only the two ints and at most `err.len()` bytes.
        let rc = unsafe {
            cnnlab_autocast(
                self.cuda,
                enable,
                dtype,
                &mut self.prev_enabled,
                &mut self.prev_dtype,
                err.as_mut_ptr(),
                err.len() as c_int,
            )
        };
        if rc != 0 {
            // SAFETY: the shim NUL-terminates `err`.
            let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
            return Err(Error::Torch(format!("autocast: {msg}")));
        }
        Ok(())
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        let _ = self.call(0, 0);
    }
}

/// c10::ScalarType's numbering.
fn kind_code(kind: Kind) -> c_int {
    match kind {
        Kind::Half => 5,
        Kind::Float => 6,
        Kind::BFloat16 => 15,
        other => unreachable!("no autocast dtype {other:?}"),
    }
}

/// What `cnnlab info` prints about libtorch and the accelerator.
#[derive(Debug, Clone, Serialize)]
pub struct TorchInfo {
    /// The libtorch version the binary was built against ("2.13.0").
    pub libtorch: String,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    /// CUDA runtime version (13000 = 13.0), when a CUDA device is usable.
    pub cuda_runtime: Option<i64>,
    /// The cuDNN version libtorch was built with (92000 = 9.20.0), when it was
    /// built with CUDA (also on a machine without a GPU).
    pub cudnn: Option<i64>,
    /// Each CUDA device's name.
    pub devices: Vec<String>,
    /// libtorch's intra-op threads.
    pub threads: i32,
}

/// Asks libtorch (and the CUDA runtime it loaded) what it has.
pub fn torch_info() -> TorchInfo {
    // c_long is i64 on the 64-bit Linux libtorch ships for.
    let known = |v: c_long| (v >= 0).then_some(v);
    let cuda_devices = tch::Cuda::device_count();
    let devices = (0..cuda_devices)
        .map(|i| {
            let mut name = [0 as c_char; 256];
            // SAFETY: the shim writes at most `name.len()` bytes, NUL-terminated.
            let rc = unsafe { cnnlab_cuda_device_name(i as c_int, name.as_mut_ptr(), name.len() as c_int) };
            match rc {
                0 => unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned(),
                _ => format!("cuda:{i} (name unavailable)"),
            }
        })
        .collect();
    TorchInfo {
        // SAFETY: a pointer to a string literal.
        libtorch: unsafe { CStr::from_ptr(cnnlab_torch_version()) }.to_string_lossy().into_owned(),
        cuda_available: tch::Cuda::is_available(),
        cuda_devices,
        cuda_runtime: known(unsafe { cnnlab_cuda_runtime_version() }),
        cudnn: known(unsafe { cnnlab_cudnn_version() }),
        devices,
        threads: tch::get_num_threads(),
    }
}

/// Sizes libtorch's intra-op thread pool (`torch.set_num_threads`).
pub fn set_torch_threads(threads: usize) {
    tch::set_num_threads(threads.max(1) as i32);
}
