//! Link-time wiring for libtorch, shared by every crate whose binaries or test
//! executables link tch (models, train and cli point `build` at this file).
//!
//! torch-sys (links = "tch") exports its lib dir as `DEP_TCH_LIBTORCH_LIB` to the
//! build scripts of crates that depend on it directly. We add:
//! - an rpath to that dir, so binaries run without `LD_LIBRARY_PATH`;
//! - `--no-as-needed -ltorch_cuda`, because the linker's default `--as-needed` drops
//!   `libtorch_cuda.so` (no symbol of it is referenced directly) and CUDA is then
//!   never detected, even on a GPU machine.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not report its libtorch dir: run `cargo xtask setup`");
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
