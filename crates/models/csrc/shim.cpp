// What tch 0.26 does not expose, in four C functions (cnnlab-models' `ffi` module):
// autocast for a chosen device type and dtype (tch's `autocast` only switches the
// CUDA one), and the facts `cnnlab info` prints.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <dlfcn.h>
#include <torch/version.h>

#include <cstring>

#define CNNLAB_STR2(x) #x
#define CNNLAB_STR(x) CNNLAB_STR2(x)

namespace {
at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }
} // namespace

extern "C" {

// Enters (enable = 1) or leaves (enable = 0) an autocast region for the device
// type, as `torch.autocast(device_type, dtype)`'s __enter__/__exit__: the previous
// enabled flag and dtype are written to *prev_enabled / *prev_dtype on entry and
// restored from them on exit; the cast cache is cleared when the outermost region
// ends. Returns 0, or -1 when libtorch threw (the message goes to `err`).
int cnnlab_autocast(int cuda, int enable, int dtype, int *prev_enabled, int *prev_dtype, char *err, int err_len) {
  try {
    auto dev = device_type(cuda);
    if (enable) {
      *prev_enabled = at::autocast::is_autocast_enabled(dev);
      *prev_dtype = static_cast<int>(at::autocast::get_autocast_dtype(dev));
      at::autocast::set_autocast_enabled(dev, true);
      at::autocast::set_autocast_dtype(dev, static_cast<at::ScalarType>(dtype));
      at::autocast::increment_nesting();
    } else {
      if (at::autocast::decrement_nesting() == 0) {
        at::autocast::clear_cache();
      }
      at::autocast::set_autocast_enabled(dev, *prev_enabled != 0);
      at::autocast::set_autocast_dtype(dev, static_cast<at::ScalarType>(*prev_dtype));
    }
    return 0;
  } catch (const std::exception &e) {
    std::strncpy(err, e.what(), err_len - 1);
    err[err_len - 1] = 0;
    return -1;
  }
}

// "2.13.0": the libtorch headers this binary was built against.
const char *cnnlab_torch_version() {
  return CNNLAB_STR(TORCH_VERSION_MAJOR) "." CNNLAB_STR(TORCH_VERSION_MINOR) "." CNNLAB_STR(TORCH_VERSION_PATCH);
}

// cuDNN's and the CUDA runtime's versions (e.g. 91002, 13000), -1 when there is no
// CUDA build or device.
long cnnlab_cudnn_version() {
  try {
    return at::globalContext().hasCuDNN() ? at::globalContext().versionCuDNN() : -1;
  } catch (...) {
    return -1;
  }
}
long cnnlab_cuda_runtime_version() {
  try {
    return at::globalContext().hasCUDA() ? at::globalContext().versionCUDART() : -1;
  } catch (...) {
    return -1;
  }
}

// The name of CUDA device `index` into `out` (cudaDeviceProp starts with char
// name[256]), from the CUDA runtime libtorch_cuda already loaded; 0, or -1 when
// there is none.
int cnnlab_cuda_device_name(int index, char *out, int out_len) {
  using Props = int (*)(void *, int);
  void *f = dlsym(RTLD_DEFAULT, "cudaGetDeviceProperties_v2");
  if (f == nullptr) f = dlsym(RTLD_DEFAULT, "cudaGetDeviceProperties");
  if (f == nullptr) return -1;
  alignas(16) static char props[16384];
  std::memset(props, 0, sizeof props);
  if (reinterpret_cast<Props>(f)(props, index) != 0) return -1;
  std::strncpy(out, props, out_len - 1);
  out[out_len - 1] = 0;
  return 0;
}
}
