//! A trained network as an ONNX model, written directly from cnnlab's own layer list
//! (libtorch cannot write ONNX): each layer type maps to standard ONNX operators of
//! opset 17, dropout vanishes, TensorFlow-SAME padding becomes explicit pads, and the
//! run's normalisation and a softmax are part of the graph. The graph takes float32
//! pixels in [0, 1], `[batch, C, H, W]` with a named batch dimension, and gives
//! `logits` and `probabilities`.

mod proto;

use std::collections::HashMap;

use prost::Message;
use tch::{Device, Kind, Tensor};

use crate::backbone::{resnet_layout, LITE0_STAGES};
use crate::error::{Error, Result};
use crate::layers::inverted_residual::LITE_BN;
use crate::layers::residual::RESNET_BN;
use crate::network::{head_layers, plan};
use crate::spec::{Backbone, LayerSpec, ModelConfig};
use crate::summary::Shape;
use proto::{
    attribute_type, data_type, AttributeProto, Dimension, DimensionValue, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto,
    ValueInfoProto,
};

/// The operator set the graphs use (ONNX 1.12+, onnxruntime 1.12+).
pub const OPSET: i64 = 17;
/// The IR version of opset 17.
const IR_VERSION: i64 = 8;

/// One trained network to export: its `[model]`, input shape, class count and
/// variables by name (as the VarStore holds them).
pub struct Member<'a> {
    pub model: &'a ModelConfig,
    pub input: Shape,
    pub classes: i64,
    pub vars: &'a HashMap<String, Tensor>,
}

/// What the graph says about itself: the input's normalisation (applied inside) and
/// `metadata_props` (class names, input size, cnnlab's version, ...).
pub struct Exported<'a> {
    pub mean: &'a [f32],
    pub std: &'a [f32],
    pub metadata: &'a [(String, String)],
}

/// How the members' outputs combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// One network: its logits and their softmax.
    Single,
    /// A seed ensemble: the members' probabilities averaged; `logits` are their log.
    Average,
    /// One-vs-rest: member `k`'s probability of its class `k`, renormalised.
    OneVsRest,
}

/// The ONNX model (serialised `ModelProto`) of `members` combined by `combine`.
pub fn to_onnx(members: &[Member<'_>], combine: Combine, exported: &Exported<'_>) -> Result<Vec<u8>> {
    let first = members.first().ok_or_else(|| Error::Invalid("no network to export".into()))?;
    let (c, h, w) = match first.input {
        Shape::Map(c, h, w) => (c, h, w),
        Shape::Flat(_) => return Err(Error::Invalid("ONNX export needs image input".into())),
    };
    if exported.mean.len() != c as usize || exported.std.len() != c as usize {
        return Err(Error::Invalid(format!("mean and std need {c} values, one per channel")));
    }
    let mut g = Graph::default();
    let mean = g.constant("mean", &[1, c, 1, 1], exported.mean);
    let std = g.constant("std", &[1, c, 1, 1], exported.std);
    let centred = g.node("Sub", &["pixels", &mean], vec![]);
    let x = g.node("Div", &[&centred, &std], vec![]);
    let mut outputs = Vec::with_capacity(members.len());
    for (i, member) in members.iter().enumerate() {
        let prefix = if members.len() == 1 { String::new() } else { format!("member{i}/") };
        outputs.push(network(&mut g, member, &x, &prefix)?);
    }
    let (logits, probabilities) = match combine {
        Combine::Single => {
            let p = g.node("Softmax", &[&outputs[0]], vec![int("axis", 1)]);
            (outputs[0].clone(), p)
        }
        Combine::Average => {
            let probs: Vec<String> = outputs.iter().map(|o| g.node("Softmax", &[o], vec![int("axis", 1)])).collect();
            let refs: Vec<&str> = probs.iter().map(String::as_str).collect();
            let p = g.node("Mean", &refs, vec![]);
            (g.node("Log", &[&p], vec![]), p)
        }
        Combine::OneVsRest => {
            // Each member's class-1 probability, side by side, then rows renormalised.
            let one = g.int64_constant("one", &[1], &[1]);
            let columns: Vec<String> = outputs
                .iter()
                .map(|o| {
                    let p = g.node("Softmax", &[o], vec![int("axis", 1)]);
                    g.node("Gather", &[&p, &one], vec![int("axis", 1)])
                })
                .collect();
            let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
            let stacked = g.node("Concat", &refs, vec![int("axis", 1)]);
            // The row sums (opset 13+: the axes are an input).
            let total = g.node("ReduceSum", &[&stacked, &one], vec![int("keepdims", 1)]);
            let tiny = g.constant("tiny", &[], &[f32::MIN_POSITIVE]);
            let total = g.node("Max", &[&total, &tiny], vec![]);
            let p = g.node("Div", &[&stacked, &total], vec![]);
            (g.node("Log", &[&p], vec![]), p)
        }
    };
    g.rename(&logits, "logits");
    g.rename(&probabilities, "probabilities");
    let classes = if combine == Combine::OneVsRest { members.len() as i64 } else { first.classes };
    let graph = GraphProto {
        node: g.nodes,
        name: "cnnlab".into(),
        initializer: g.initializers,
        doc_string: String::new(),
        input: vec![value_info("pixels", &[None, Some(c), Some(h), Some(w)])],
        output: vec![value_info("logits", &[None, Some(classes)]), value_info("probabilities", &[None, Some(classes)])],
    };
    let model = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "cnnlab".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: "An image classifier trained with cnnlab: float32 pixels in [0, 1], NCHW; normalisation inside."
            .into(),
        graph: Some(graph),
        metadata_props: exported
            .metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: k.clone(), value: v.clone() })
            .collect(),
    };
    Ok(model.encode_to_vec())
}

/// The nodes of one network on input `x`; the name of its logits.
fn network(g: &mut Graph, member: &Member<'_>, x: &str, prefix: &str) -> Result<String> {
    let cfg = member.model;
    let rows = plan(cfg, member.input, member.classes)?;
    let (layers, _) = head_layers(cfg, member.classes)?;
    let vars = Vars { vars: member.vars, prefix };
    let mut x = x.to_owned();
    let mut shape = member.input;
    let offset = rows.len() - layers.len();
    if let Some(backbone) = cfg.backbone {
        let maps = match backbone {
            Backbone::EfficientnetLite0 => lite0(g, &vars, &x, member.input)?,
            _ => resnet(g, &vars, &x, backbone)?,
        };
        let pooled = g.node("GlobalAveragePool", &[&maps], vec![]);
        x = g.node("Flatten", &[&pooled], vec![int("axis", 1)]);
        shape = rows[offset - 1].output;
    }
    for (index, (layer, row)) in layers.iter().zip(&rows[offset..]).enumerate() {
        // As `build` names them: the default head's classifier keeps the original's name.
        let name = match (cfg.backbone, layer) {
            (Some(b), LayerSpec::Linear { .. }) if cfg.layers.is_empty() => b.head_name().to_owned(),
            _ => format!("{}{index}", layer.kind()),
        };
        x = layer_nodes(g, &vars, layer, &name, &x, shape)?;
        shape = row.output;
    }
    Ok(x)
}

/// A member's variables, read as float32 initialisers named `<prefix><variable>`.
struct Vars<'a> {
    vars: &'a HashMap<String, Tensor>,
    prefix: &'a str,
}

impl Vars<'_> {
    fn get(&self, g: &mut Graph, name: &str) -> Result<String> {
        let full = format!("{}{name}", self.prefix);
        if g.names.contains_key(&full) {
            return Ok(full);
        }
        let t = self.vars.get(name).ok_or_else(|| Error::Invalid(format!("the weights have no `{name}`")))?;
        let values = Vec::<f32>::try_from(t.to_kind(Kind::Float).to_device(Device::Cpu).contiguous().flatten(0, -1))
            .map_err(|e| Error::Invalid(format!("`{name}`: {e}")))?;
        g.initializer(&full, &t.size(), &values);
        Ok(full)
    }

    fn has(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }
}

/// The nodes of one layer `layer` (variables under `name`) on `x` of shape `input`.
fn layer_nodes(g: &mut Graph, v: &Vars<'_>, layer: &LayerSpec, name: &str, x: &str, input: Shape) -> Result<String> {
    let p = |part: &str| format!("{name}.{part}");
    Ok(match *layer {
        LayerSpec::Conv { stride, padding, groups, .. } => conv(g, v, name, x, stride, [padding; 4], groups)?,
        LayerSpec::Whiten { .. } => conv(g, v, name, x, 1, [0; 4], 1)?,
        LayerSpec::Batchnorm { eps, .. } => batch_norm(g, v, name, x, eps)?,
        LayerSpec::Scale { by } => {
            let by = g.constant("scale", &[], &[by as f32]);
            g.node("Mul", &[x, &by], vec![])
        }
        LayerSpec::Relu => g.node("Relu", &[x], vec![]),
        LayerSpec::Relu6 => relu6(g, x),
        LayerSpec::Elu => g.node("Elu", &[x], vec![float("alpha", 1.0)]),
        LayerSpec::LeakyRelu => g.node("LeakyRelu", &[x], vec![float("alpha", 0.01)]),
        LayerSpec::Gelu => gelu(g, x),
        LayerSpec::Maxpool { kernel, stride } => g.node("MaxPool", &[x], pool_attributes(kernel, stride)),
        LayerSpec::Avgpool { kernel, stride } => g.node("AveragePool", &[x], pool_attributes(kernel, stride)),
        LayerSpec::GlobalAvgPool => {
            let pooled = g.node("GlobalAveragePool", &[x], vec![]);
            g.node("Flatten", &[&pooled], vec![int("axis", 1)])
        }
        LayerSpec::Dropout { .. } => x.to_owned(),
        LayerSpec::Flatten => g.node("Flatten", &[x], vec![int("axis", 1)]),
        LayerSpec::Linear { .. } => {
            let weight = v.get(g, &p("weight"))?;
            let mut inputs = vec![x.to_owned(), weight];
            if v.has(&p("bias")) {
                inputs.push(v.get(g, &p("bias"))?);
            }
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            g.node("Gemm", &refs, vec![int("transB", 1)])
        }
        LayerSpec::Residual { stride, .. } => basic_block(g, v, name, x, stride, ("shortcut", "shortcut_bn"))?,
        LayerSpec::Bottleneck { stride, .. } => bottleneck(g, v, name, x, stride)?,
        LayerSpec::InvertedResidual { out, expand, kernel, stride } => {
            let Shape::Map(c, h, w) = input else { return Err(Error::Invalid(format!("{name}: needs a map"))) };
            mbconv(g, v, name, x, (c, h, w), MbConvSpec { out, expand, kernel, stride })?
        }
    })
}

/// A ResNet basic block under `name` (`conv1`, `bn1`, `conv2`, `bn2`) and its
/// projection `(conv, bn)` when there is one.
fn basic_block(
    g: &mut Graph,
    v: &Vars<'_>,
    name: &str,
    x: &str,
    stride: i64,
    projection: (&str, &str),
) -> Result<String> {
    let p = |part: &str| format!("{name}.{part}");
    let (_, eps) = RESNET_BN;
    let a = conv(g, v, &p("conv1"), x, stride, [1; 4], 1)?;
    let a = batch_norm(g, v, &p("bn1"), &a, eps)?;
    let a = g.node("Relu", &[&a], vec![]);
    let a = conv(g, v, &p("conv2"), &a, 1, [1; 4], 1)?;
    let a = batch_norm(g, v, &p("bn2"), &a, eps)?;
    let identity = match v.has(&p(&format!("{}.weight", projection.0))) {
        true => {
            let s = conv(g, v, &p(projection.0), x, stride, [0; 4], 1)?;
            batch_norm(g, v, &p(projection.1), &s, eps)?
        }
        false => x.to_owned(),
    };
    let sum = g.node("Add", &[&a, &identity], vec![]);
    Ok(g.node("Relu", &[&sum], vec![]))
}

/// A torchvision bottleneck under `name` (`conv1`-`conv3`, `bn1`-`bn3`,
/// `downsample.0/1`).
fn bottleneck(g: &mut Graph, v: &Vars<'_>, name: &str, x: &str, stride: i64) -> Result<String> {
    let p = |part: &str| format!("{name}.{part}");
    let (_, eps) = RESNET_BN;
    let a = conv(g, v, &p("conv1"), x, 1, [0; 4], 1)?;
    let a = batch_norm(g, v, &p("bn1"), &a, eps)?;
    let a = g.node("Relu", &[&a], vec![]);
    let a = conv(g, v, &p("conv2"), &a, stride, [1; 4], 1)?;
    let a = batch_norm(g, v, &p("bn2"), &a, eps)?;
    let a = g.node("Relu", &[&a], vec![]);
    let a = conv(g, v, &p("conv3"), &a, 1, [0; 4], 1)?;
    let a = batch_norm(g, v, &p("bn3"), &a, eps)?;
    let identity = match v.has(&p("downsample.0.weight")) {
        true => {
            let s = conv(g, v, &p("downsample.0"), x, stride, [0; 4], 1)?;
            batch_norm(g, v, &p("downsample.1"), &s, eps)?
        }
        false => x.to_owned(),
    };
    let sum = g.node("Add", &[&a, &identity], vec![]);
    Ok(g.node("Relu", &[&sum], vec![]))
}

/// An inverted residual's settings.
struct MbConvSpec {
    out: i64,
    expand: i64,
    kernel: i64,
    stride: i64,
}

/// TensorFlow's SAME padding of a `kernel`/`stride` window on an `h x w` map (as
/// `same_pad` computes it) as ONNX pads `[top, left, bottom, right]`.
fn same_pads(h: i64, w: i64, kernel: i64, stride: i64) -> [i64; 4] {
    let pad = |x: i64| (((x + stride - 1) / stride - 1) * stride + kernel - x).max(0);
    let (ph, pw) = (pad(h), pad(w));
    [ph / 2, pw / 2, ph - ph / 2, pw - pw / 2]
}

/// An EfficientNet-Lite MBConv block under `name` (`_expand_conv`, `_bn0`,
/// `_depthwise_conv`, `_bn1`, `_project_conv`, `_bn2`) on a `c x h x w` map.
fn mbconv(
    g: &mut Graph,
    v: &Vars<'_>,
    name: &str,
    x: &str,
    (c, h, w): (i64, i64, i64),
    m: MbConvSpec,
) -> Result<String> {
    let p = |part: &str| format!("{name}.{part}");
    let (_, eps) = LITE_BN;
    let mut a = x.to_owned();
    if m.expand != 1 {
        a = conv(g, v, &p("_expand_conv"), &a, 1, [0; 4], 1)?;
        a = batch_norm(g, v, &p("_bn0"), &a, eps)?;
        a = relu6(g, &a);
    }
    let pads = same_pads(h, w, m.kernel, m.stride);
    a = conv(g, v, &p("_depthwise_conv"), &a, m.stride, pads, c * m.expand)?;
    a = batch_norm(g, v, &p("_bn1"), &a, eps)?;
    a = relu6(g, &a);
    a = conv(g, v, &p("_project_conv"), &a, 1, [0; 4], 1)?;
    a = batch_norm(g, v, &p("_bn2"), &a, eps)?;
    if m.stride == 1 && c == m.out {
        a = g.node("Add", &[&a, x], vec![]);
    }
    Ok(a)
}

/// EfficientNet-Lite0's body (the original package's names): SAME-padded stem, the
/// 16 MBConv blocks, the 1x1 head conv; its last map.
fn lite0(g: &mut Graph, v: &Vars<'_>, x: &str, input: Shape) -> Result<String> {
    let Shape::Map(_, h, w) = input else { return Err(Error::Invalid("EfficientNet-Lite0 needs images".into())) };
    let (_, eps) = LITE_BN;
    let a = conv(g, v, "_conv_stem", x, 2, same_pads(h, w, 3, 2), 1)?;
    let a = batch_norm(g, v, "_bn0", &a, eps)?;
    let mut a = relu6(g, &a);
    let same = |x: i64, s: i64| (x + s - 1) / s;
    let mut at = (same(h, 2), same(w, 2));
    let mut index = 0;
    for (repeats, kernel, stride, expand, cin, out) in LITE0_STAGES {
        for r in 0..repeats {
            let (cin, stride) = if r == 0 { (cin, stride) } else { (out, 1) };
            let spec = MbConvSpec { out, expand, kernel, stride };
            a = mbconv(g, v, &format!("_blocks.{index}"), &a, (cin, at.0, at.1), spec)?;
            at = (same(at.0, stride), same(at.1, stride));
            index += 1;
        }
    }
    let a = conv(g, v, "_conv_head", &a, 1, [0; 4], 1)?;
    let a = batch_norm(g, v, "_bn1", &a, eps)?;
    Ok(relu6(g, &a))
}

/// A torchvision ResNet's body (its names): 7x7 stem, max pool, the four stages of
/// basic blocks or bottlenecks; its last map.
fn resnet(g: &mut Graph, v: &Vars<'_>, x: &str, backbone: Backbone) -> Result<String> {
    let (layout, bottlenecks) = resnet_layout(backbone);
    let (_, eps) = RESNET_BN;
    let a = conv(g, v, "conv1", x, 2, [3; 4], 1)?;
    let a = batch_norm(g, v, "bn1", &a, eps)?;
    let a = g.node("Relu", &[&a], vec![]);
    let attributes = vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2]), ints("pads", &[1; 4])];
    let mut a = g.node("MaxPool", &[&a], attributes);
    for (stage, &n) in layout.iter().enumerate() {
        for b in 0..n {
            let stride = if b == 0 && stage > 0 { 2 } else { 1 };
            let name = format!("layer{}.{b}", stage + 1);
            a = match bottlenecks {
                true => bottleneck(g, v, &name, &a, stride)?,
                false => basic_block(g, v, &name, &a, stride, ("downsample.0", "downsample.1"))?,
            };
        }
    }
    Ok(a)
}

/// `Conv` with the weight (and bias, if any) under `name`; `pads` are `[top, left,
/// bottom, right]`.
fn conv(g: &mut Graph, v: &Vars<'_>, name: &str, x: &str, stride: i64, pads: [i64; 4], groups: i64) -> Result<String> {
    let weight_name = format!("{name}.weight");
    let weight = v.get(g, &weight_name)?;
    let dims = v.vars[&weight_name].size();
    let mut inputs = vec![x.to_owned(), weight];
    if v.has(&format!("{name}.bias")) {
        inputs.push(v.get(g, &format!("{name}.bias"))?);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let attributes = vec![
        ints("kernel_shape", &dims[2..]),
        ints("strides", &[stride, stride]),
        ints("pads", &pads),
        int("group", groups),
    ];
    Ok(g.node("Conv", &refs, attributes))
}

/// `BatchNormalization` (inference) with the statistics under `name`; a shift-only
/// batch norm (no `weight`) gets a scale of ones.
fn batch_norm(g: &mut Graph, v: &Vars<'_>, name: &str, x: &str, eps: f64) -> Result<String> {
    let part = |p: &str| format!("{name}.{p}");
    let mean = v.get(g, &part("running_mean"))?;
    let var = v.get(g, &part("running_var"))?;
    let bias = v.get(g, &part("bias"))?;
    let scale = match v.has(&part("weight")) {
        true => v.get(g, &part("weight"))?,
        false => {
            let n = v.vars[&part("running_mean")].numel();
            g.constant("ones", &[n as i64], &vec![1.0; n])
        }
    };
    Ok(g.node("BatchNormalization", &[x, &scale, &bias, &mean, &var], vec![float("epsilon", eps as f32)]))
}

/// `clamp(x, 0, 6)` as `Clip` with its bounds as inputs (opset 11+).
fn relu6(g: &mut Graph, x: &str) -> String {
    let (lo, hi) = (g.constant("zero", &[], &[0.0]), g.constant("six", &[], &[6.0]));
    g.node("Clip", &[x, &lo, &hi], vec![])
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (opset 17 has no `Gelu`).
fn gelu(g: &mut Graph, x: &str) -> String {
    let root2 = g.constant("sqrt2", &[], &[std::f32::consts::SQRT_2]);
    let (one, half) = (g.constant("one", &[], &[1.0]), g.constant("half", &[], &[0.5]));
    let e = g.node("Div", &[x, &root2], vec![]);
    let e = g.node("Erf", &[&e], vec![]);
    let e = g.node("Add", &[&e, &one], vec![]);
    let e = g.node("Mul", &[x, &e], vec![]);
    g.node("Mul", &[&e, &half], vec![])
}

fn pool_attributes(kernel: i64, stride: Option<i64>) -> Vec<AttributeProto> {
    let s = stride.unwrap_or(kernel);
    vec![ints("kernel_shape", &[kernel, kernel]), ints("strides", &[s, s])]
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INT, i, ..Default::default() }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::INTS, ints: values.to_vec(), ..Default::default() }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_type::FLOAT, f, ..Default::default() }
}

/// A float32 tensor's value info: `None` dimensions are the named batch.
fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => DimensionValue::DimValue(*n),
                None => DimensionValue::DimParam("batch".into()),
            }),
        })
        .collect();
    let tensor_type = TensorTypeProto { elem_type: data_type::FLOAT, shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto { name: name.into(), r#type: Some(TypeProto { tensor_type: Some(tensor_type) }) }
}

/// The graph being written: nodes in order, initialisers, and names already used.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    names: HashMap<String, ()>,
    count: usize,
}

impl Graph {
    fn fresh(&mut self, hint: &str) -> String {
        self.count += 1;
        format!("{hint}_{}", self.count)
    }

    /// A node of `op` on `inputs`; the name of its one output.
    fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let output = self.fresh(op);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.clone()],
            name: output.clone(),
            op_type: op.into(),
            attribute,
        });
        output
    }

    fn initializer(&mut self, name: &str, dims: &[i64], values: &[f32]) {
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::FLOAT,
            name: name.into(),
            raw_data,
        });
        self.names.insert(name.into(), ());
    }

    /// A float32 constant (an initialiser) named after `hint`.
    fn constant(&mut self, hint: &str, dims: &[i64], values: &[f32]) -> String {
        let name = self.fresh(hint);
        self.initializer(&name, dims, values);
        name
    }

    /// An int64 constant.
    fn int64_constant(&mut self, hint: &str, dims: &[i64], values: &[i64]) -> String {
        let name = self.fresh(hint);
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto { dims: dims.to_vec(), data_type: 7, name: name.clone(), raw_data });
        self.names.insert(name.clone(), ());
        name
    }

    /// Renames the output `from` of the node that makes it to `to` (or adds an
    /// `Identity` when `from` is no node's output, e.g. the input).
    fn rename(&mut self, from: &str, to: &str) {
        if let Some(node) = self.nodes.iter_mut().rev().find(|n| n.output.iter().any(|o| o == from)) {
            for o in &mut node.output {
                if o == from {
                    *o = to.into();
                }
            }
            for n in &mut self.nodes {
                for i in &mut n.input {
                    if i == from {
                        *i = to.into();
                    }
                }
            }
            return;
        }
        self.nodes.push(NodeProto {
            input: vec![from.into()],
            output: vec![to.into()],
            name: to.into(),
            op_type: "Identity".into(),
            attribute: vec![],
        });
    }
}
