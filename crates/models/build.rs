//! cnnlab-models' build script: the shared libtorch link wiring (`link.rs`, which
//! train and cli use as their whole build script) and `csrc/shim.cpp`, the few
//! libtorch calls tch does not expose (see `src/ffi.rs`), compiled against the
//! same libtorch headers.

use std::path::Path;

#[path = "link.rs"]
mod link;

fn main() {
    link::main();
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("checked by link::main");
    let root = Path::new(&lib).parent().expect("libtorch's lib/ has a parent");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .file("csrc/shim.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("cnnlab_shim");
}
