//! Link-time wiring for libtorch, shared by every crate whose binaries or test
//! executables link tch: train and cli point `build` at this file, models' own
//! `build.rs` calls it and also compiles `csrc/shim.cpp`.
//!
//! torch-sys (links = "tch") exports its lib dir as `DEP_TCH_LIBTORCH_LIB` to the
//! build scripts of crates that depend on it directly. We add:
//! - an rpath to that dir, so binaries run without `LD_LIBRARY_PATH`;
//! - `--no-as-needed -ltorch_cuda`, because the linker's default `--as-needed` drops
//!   `libtorch_cuda.so` (no symbol of it is referenced directly) and CUDA is then
//!   never detected, even on a GPU machine;
//! - with `CNNLAB_EXTRA_RPATH` set (colon-separated dirs), rpaths to those too, before
//!   the build machine's: `cargo xtask device-bundle` points the GPU machine's binary
//!   at its own PyTorch's `torch/lib`.

use std::path::Path;

pub(crate) fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not report its libtorch dir: run `cargo xtask setup`");
    };
    // cli's light `cnnlab` binary must not load libtorch: the forced link goes only to
    // `cnnlab-torch` there (and to every target of models and train).
    let link_arg = if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("cnnlab-cli") {
        "cargo:rustc-link-arg-bin=cnnlab-torch="
    } else {
        "cargo:rustc-link-arg="
    };
    println!("cargo:rerun-if-env-changed=CNNLAB_EXTRA_RPATH");
    for dir in std::env::var("CNNLAB_EXTRA_RPATH").unwrap_or_default().split(':').filter(|d| !d.is_empty()) {
        println!("{link_arg}-Wl,-rpath,{dir}");
    }
    println!("{link_arg}-Wl,-rpath,{lib}");
    // cli's integration tests read run folders through cnnlab-train, which links libtorch.
    if link_arg != "cargo:rustc-link-arg=" {
        println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{lib}");
    }
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("{link_arg}-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
