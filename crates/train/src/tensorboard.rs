//! TensorBoard event files: each run's `tb/events.out.tfevents.<start>.cnnlab`, so that
//! `tensorboard --logdir runs` shows every run of a matrix side by side.
//!
//! The file is TFRecord framing (length, masked CRC-32C of the length, the record, masked
//! CRC-32C of the record) around `tensorflow.Event` protocol buffers, encoded by prost
//! from the subset of TensorFlow's `event.proto` / `summary.proto` declared below (same
//! field numbers). It is rewritten whole, atomically, after every epoch from the run's
//! history: the same events in the same order with the same wall times (the start stamp
//! in the file name plus the epochs' seconds), so a TensorBoard tailing the file only
//! ever sees records appended, and a resumed run drops the epochs it redoes exactly as
//! `history.csv` does.
//!
//! A tuning study also writes the HParams plugin's summaries (`write_hparams_experiment`,
//! `write_hparams_session`), the messages of TensorBoard's `plugins/hparams/api.proto`
//! and `plugin_data.proto` (same field numbers), each as a null float tensor with the
//! plugin data in its metadata, as TensorBoard's own `hparams.summary_v2` writes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::{Error, Result};
use cnnlab_run::{write_bytes, EpochRecord};

/// `tensorflow.Event`.
#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<Value>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
struct Value {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(message, optional, tag = "9")]
    metadata: Option<SummaryMetadata>,
    #[prost(oneof = "Kind", tags = "2, 4, 8")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "4")]
    Image(Image),
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// `tensorflow.Summary.Image`: an encoded PNG.
#[derive(Clone, PartialEq, prost::Message)]
struct Image {
    #[prost(int32, tag = "1")]
    height: i32,
    #[prost(int32, tag = "2")]
    width: i32,
    /// 3 = RGB, 4 = RGBA.
    #[prost(int32, tag = "3")]
    colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    encoded_image_string: Vec<u8>,
}

/// `tensorflow.SummaryMetadata` (which plugin shows the value).
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PluginData {
    #[prost(string, tag = "1")]
    plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    content: Vec<u8>,
}

/// `tensorflow.TensorProto`, for a string tensor (the text plugin's).
#[derive(Clone, PartialEq, prost::Message)]
struct TensorProto {
    #[prost(int32, tag = "1")]
    dtype: i32,
    #[prost(message, optional, tag = "2")]
    tensor_shape: Option<TensorShape>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    string_val: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorShape {
    #[prost(message, repeated, tag = "2")]
    dim: Vec<Dim>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Dim {
    #[prost(int64, tag = "1")]
    size: i64,
}

/// `tensorflow.DataType.DT_STRING`.
const DT_STRING: i32 = 7;
/// `tensorflow.DataType.DT_FLOAT`.
const DT_FLOAT: i32 = 1;

/// `tensorboard.hparams.HParamsPluginData`.
#[derive(Clone, PartialEq, prost::Message)]
struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    version: i32,
    #[prost(oneof = "HParamsData", tags = "2, 3, 4")]
    data: Option<HParamsData>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum HParamsData {
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    #[prost(message, tag = "3")]
    SessionStart(SessionStartInfo),
    #[prost(message, tag = "4")]
    SessionEnd(SessionEndInfo),
}

/// `tensorboard.hparams.Experiment`.
#[derive(Clone, PartialEq, prost::Message)]
struct Experiment {
    #[prost(string, tag = "1")]
    description: String,
    #[prost(double, tag = "3")]
    time_created_secs: f64,
    #[prost(message, repeated, tag = "4")]
    hparam_infos: Vec<HParamInfo>,
    #[prost(message, repeated, tag = "5")]
    metric_infos: Vec<MetricInfo>,
    #[prost(string, tag = "6")]
    name: String,
}

/// `tensorboard.hparams.HParamInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct HParamInfo {
    #[prost(string, tag = "1")]
    name: String,
    /// `tensorboard.hparams.DataType`.
    #[prost(int32, tag = "4")]
    data_type: i32,
    #[prost(oneof = "Domain", tags = "5, 6")]
    domain: Option<Domain>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Domain {
    #[prost(message, tag = "5")]
    Discrete(ListValue),
    #[prost(message, tag = "6")]
    Interval(Interval),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Interval {
    #[prost(double, tag = "1")]
    min_value: f64,
    #[prost(double, tag = "2")]
    max_value: f64,
}

/// `tensorboard.hparams.MetricInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct MetricInfo {
    #[prost(message, optional, tag = "1")]
    name: Option<MetricName>,
    #[prost(string, tag = "3")]
    display_name: String,
    /// `tensorboard.hparams.DatasetType`: 2 = validation.
    #[prost(int32, tag = "5")]
    dataset_type: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MetricName {
    #[prost(string, tag = "1")]
    group: String,
    #[prost(string, tag = "2")]
    tag: String,
}

/// `tensorboard.hparams.SessionStartInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    hparams: BTreeMap<String, PbValue>,
    #[prost(string, tag = "4")]
    group_name: String,
    #[prost(double, tag = "5")]
    start_time_secs: f64,
}

/// `tensorboard.hparams.SessionEndInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct SessionEndInfo {
    /// `tensorboard.hparams.Status`.
    #[prost(int32, tag = "1")]
    status: i32,
    #[prost(double, tag = "2")]
    end_time_secs: f64,
}

/// `google.protobuf.Value`, the kinds an hparam takes.
#[derive(Clone, PartialEq, prost::Message)]
struct PbValue {
    #[prost(oneof = "PbKind", tags = "2, 3, 4")]
    kind: Option<PbKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum PbKind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    Text(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
}

/// `google.protobuf.ListValue`.
#[derive(Clone, PartialEq, prost::Message)]
struct ListValue {
    #[prost(message, repeated, tag = "1")]
    values: Vec<PbValue>,
}

/// One hyper-parameter's value as the HParams tab shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum HParamValue {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl HParamValue {
    fn to_pb(&self) -> PbValue {
        let kind = match self {
            HParamValue::Number(x) => PbKind::Number(*x),
            HParamValue::Text(t) => PbKind::Text(t.clone()),
            HParamValue::Bool(b) => PbKind::Bool(*b),
        };
        PbValue { kind: Some(kind) }
    }
}

/// What an hparam's column ranges over.
#[derive(Debug, Clone, PartialEq)]
pub enum HParamDomain {
    Interval { min: f64, max: f64 },
    Discrete(Vec<HParamValue>),
}

/// A study as the HParams tab's header: its name, its hparams and the metrics the
/// sessions report, each `(group, tag)`: the scalar `tag` of the run `<session>/<group>`.
#[derive(Debug, Clone)]
pub struct HParamsExperiment {
    pub name: String,
    pub description: String,
    pub time_created: f64,
    pub hparams: Vec<(String, HParamDomain)>,
    pub metrics: Vec<(String, String)>,
}

/// How a session ended (`tensorboard.hparams.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Unknown = 0,
    Success = 1,
    Failure = 2,
}

/// One trial as an HParams session: its values, when it started, and how and when it
/// ended (`None` while it may still train).
#[derive(Debug, Clone)]
pub struct HParamsSession {
    pub hparams: BTreeMap<String, HParamValue>,
    pub start: f64,
    pub end: Option<(SessionStatus, f64)>,
}

/// The HParams tab's types: 3 = float64, 1 = string, 2 = bool.
fn data_type(values: &[&HParamValue]) -> i32 {
    if values.iter().all(|v| matches!(v, HParamValue::Number(_))) {
        3
    } else if values.iter().all(|v| matches!(v, HParamValue::Bool(_))) {
        2
    } else {
        1
    }
}

/// Writes `dir/events.out.tfevents.<created>.hparams.cnnlab`, the study's
/// `_hparams_/experiment` summary (a file already there keeps its name).
pub fn write_hparams_experiment(dir: &Path, e: &HParamsExperiment) -> Result<PathBuf> {
    let hparam_infos = e
        .hparams
        .iter()
        .map(|(name, domain)| {
            let (data_type, domain) = match domain {
                HParamDomain::Interval { min, max } => {
                    (3, Domain::Interval(Interval { min_value: *min, max_value: *max }))
                }
                HParamDomain::Discrete(values) => (
                    data_type(&values.iter().collect::<Vec<_>>()),
                    Domain::Discrete(ListValue { values: values.iter().map(HParamValue::to_pb).collect() }),
                ),
            };
            HParamInfo { name: name.clone(), data_type, domain: Some(domain) }
        })
        .collect();
    let metric_infos = e
        .metrics
        .iter()
        .map(|(group, tag)| MetricInfo {
            name: Some(MetricName { group: group.clone(), tag: tag.clone() }),
            display_name: tag.clone(),
            dataset_type: 2,
        })
        .collect();
    let experiment = Experiment {
        description: e.description.clone(),
        time_created_secs: e.time_created,
        hparam_infos,
        metric_infos,
        name: e.name.clone(),
    };
    write_hparams(dir, e.time_created, &[(e.time_created, EXPERIMENT_TAG, HParamsData::Experiment(experiment))])
}

/// Writes `dir/events.out.tfevents.<start>.hparams.cnnlab`: the session's
/// `_hparams_/session_start_info` and, once it ended, its `session_end_info`.
/// Rewritten whole as the session goes on, it only ever grows by whole records.
pub fn write_hparams_session(dir: &Path, s: &HParamsSession) -> Result<PathBuf> {
    let start = SessionStartInfo {
        hparams: s.hparams.iter().map(|(k, v)| (k.clone(), v.to_pb())).collect(),
        group_name: String::new(),
        start_time_secs: s.start,
    };
    let mut summaries = vec![(s.start, SESSION_START_TAG, HParamsData::SessionStart(start))];
    if let Some((status, end)) = s.end {
        let info = SessionEndInfo { status: status as i32, end_time_secs: end };
        summaries.push((end, SESSION_END_TAG, HParamsData::SessionEnd(info)));
    }
    write_hparams(dir, s.start, &summaries)
}

const EXPERIMENT_TAG: &str = "_hparams_/experiment";
const SESSION_START_TAG: &str = "_hparams_/session_start_info";
const SESSION_END_TAG: &str = "_hparams_/session_end_info";
const HPARAMS_SUFFIX: &str = ".hparams.cnnlab";

/// The HParams event file `write_hparams_*` wrote in `dir`, if any.
pub fn hparams_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.find_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        (name.starts_with(PREFIX) && name.ends_with(HPARAMS_SUFFIX)).then(|| dir.join(name))
    })
}

fn write_hparams(dir: &Path, stamp: f64, summaries: &[(f64, &str, HParamsData)]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = hparams_file(dir).unwrap_or_else(|| dir.join(format!("{PREFIX}{}{HPARAMS_SUFFIX}", stamp as u64)));
    let mut events = vec![Event { wall_time: stamp, step: 0, what: Some(What::FileVersion("brain.Event:2".into())) }];
    for (wall_time, tag, data) in summaries {
        let content = HParamsPluginData { version: 0, data: Some(data.clone()) }.encode_to_vec();
        let plugin = PluginData { plugin_name: "hparams".into(), content };
        let null = TensorProto {
            dtype: DT_FLOAT,
            tensor_shape: Some(TensorShape { dim: vec![Dim { size: 0 }] }),
            string_val: Vec::new(),
        };
        let value = Value {
            tag: (*tag).into(),
            metadata: Some(SummaryMetadata { plugin_data: Some(plugin) }),
            kind: Some(Kind::Tensor(null)),
        };
        events.push(summary(*wall_time, 0, vec![value]));
    }
    let mut bytes = Vec::new();
    for e in &events {
        record(&mut bytes, &e.encode_to_vec());
    }
    // A study rewrites its sessions after every trial: only the changed ones.
    if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
        write_bytes(&path, &bytes)?;
    }
    Ok(path)
}

const PREFIX: &str = "events.out.tfevents.";
const SUFFIX: &str = ".cnnlab";

/// The scalars of one history row, as TensorBoard tags (grouped by the part before `/`).
pub const SCALAR_TAGS: [&str; 7] =
    ["loss/train", "loss/val", "accuracy/train", "accuracy/val", "f1_macro/val", "lr", "images_per_sec"];

fn scalars(r: &EpochRecord) -> [f64; 7] {
    [r.train_loss, r.val_loss, r.train_acc, r.val_acc, r.val_f1, r.lr, r.images_per_sec]
}

/// A run's event file in its `tb/` folder.
#[derive(Debug, Clone)]
pub struct EventFile {
    path: PathBuf,
    /// Seconds since the Unix epoch when the run started (the name's stamp).
    start: u64,
}

impl EventFile {
    /// The event file already in `dir` (a resumed run keeps its name and start), or a
    /// new name stamped now.
    pub fn open(dir: &Path) -> Result<EventFile> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let existing = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let start = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.parse().ok()?;
            Some((start, dir.join(name)))
        });
        let (start, path) = match existing.min() {
            Some(found) => found,
            None => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                (now, dir.join(format!("{PREFIX}{now}{SUFFIX}")))
            }
        };
        Ok(EventFile { path, start })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the run started (seconds since the Unix epoch): the name's stamp.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Writes the whole file: the run's config as text, one event of scalars per
    /// history row (step = epoch, wall time = start + the seconds trained so far) and
    /// `images` (name, PNG bytes) at the last epoch's step.
    pub fn write(&self, config: &str, history: &[EpochRecord], images: &[(&str, &[u8])]) -> Result<()> {
        let start = self.start as f64;
        let mut events =
            vec![Event { wall_time: start, step: 0, what: Some(What::FileVersion("brain.Event:2".into())) }];
        if !config.is_empty() {
            events.push(summary(start, 0, vec![text("config", config)]));
        }
        let mut elapsed = 0.0;
        for r in history {
            elapsed += r.seconds;
            let values = SCALAR_TAGS
                .iter()
                .zip(scalars(r))
                .map(|(tag, v)| Value { tag: (*tag).into(), metadata: None, kind: Some(Kind::SimpleValue(v as f32)) })
                .collect();
            events.push(summary(start + elapsed, r.epoch as i64, values));
        }
        let last = history.last().map_or(0, |r| r.epoch as i64);
        for (tag, png) in images {
            let (width, height) = png_size(png).ok_or_else(|| {
                Error::invalid("tensorboard", format!("image `{tag}` is not a PNG ({} bytes)", png.len()))
            })?;
            let image = Image { height, width, colorspace: 3, encoded_image_string: png.to_vec() };
            let value = Value { tag: (*tag).into(), metadata: None, kind: Some(Kind::Image(image)) };
            events.push(summary(start + elapsed, last, vec![value]));
        }
        let mut bytes = Vec::new();
        for e in &events {
            record(&mut bytes, &e.encode_to_vec());
        }
        Ok(write_bytes(&self.path, &bytes)?)
    }
}

fn summary(wall_time: f64, step: i64, value: Vec<Value>) -> Event {
    Event { wall_time, step, what: Some(What::Summary(Summary { value })) }
}

/// A text-plugin value: the text shown as a Markdown code block.
fn text(tag: &str, body: &str) -> Value {
    let markdown: String = body.lines().map(|l| format!("    {l}\n")).collect();
    let tensor = TensorProto {
        dtype: DT_STRING,
        tensor_shape: Some(TensorShape { dim: vec![Dim { size: 1 }] }),
        string_val: vec![markdown.into_bytes()],
    };
    let plugin = PluginData { plugin_name: "text".into(), content: Vec::new() };
    Value {
        tag: tag.into(),
        metadata: Some(SummaryMetadata { plugin_data: Some(plugin) }),
        kind: Some(Kind::Tensor(tensor)),
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(i32, i32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

/// TFRecord framing: u64 length, masked CRC of the length, data, masked CRC of the data.
fn record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// TensorFlow's masked CRC-32C.
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 1.0 / epoch as f64,
            train_acc: 0.5,
            val_loss: 0.9,
            val_acc: 0.6,
            val_f1: 0.55,
            lr: 1e-3,
            seconds: 2.5,
            images_per_sec: 100.0,
        }
    }

    /// Reads the framing back, checking both CRCs of every record.
    fn records(bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            assert_eq!(u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()), masked_crc(len_bytes));
            let data = &bytes[at + 12..at + 12 + len];
            assert_eq!(u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap()), masked_crc(data));
            out.push(Event::decode(data).unwrap());
            at += 16 + len;
        }
        out
    }

    #[test]
    fn masked_crc_matches_tensorboard() {
        // The CRC-32C check value of "123456789" is 0xe3069283; its mask,
        // 0xc78ab0e5, is what tensorboard's own masked_crc32c
        // (tensorboard.compat.tensorflow_stub.pywrap_tensorflow, 2.21.0) returns.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn rewrites_keep_the_name_and_append_only() {
        let dir = tempfile::tempdir().unwrap();
        let tb = dir.path().join("tb");
        let file = EventFile::open(&tb).unwrap();
        file.write("[train]\nepochs = 2\n", &[row(1)], &[]).unwrap();
        let first = std::fs::read(file.path()).unwrap();
        // A resumed run finds the same file (and start) again.
        let again = EventFile::open(&tb).unwrap();
        assert_eq!(again.path(), file.path());
        again.write("[train]\nepochs = 2\n", &[row(1), row(2)], &[]).unwrap();
        let second = std::fs::read(file.path()).unwrap();
        assert!(second.starts_with(&first), "a later write only appends records");

        let events = records(&second);
        assert_eq!(events.len(), 4, "file version, config, two epochs");
        assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())));
        let Some(What::Summary(s)) = &events[3].what else { panic!("not a summary") };
        assert_eq!(events[3].step, 2);
        assert_eq!(events[3].wall_time, file.start as f64 + 5.0);
        let tags: Vec<&str> = s.value.iter().map(|v| v.tag.as_str()).collect();
        assert_eq!(tags, SCALAR_TAGS);
        assert_eq!(s.value[0].kind, Some(Kind::SimpleValue(0.5)));
    }

    /// A trial's session file: its start, then the same bytes and its end, read back
    /// through the plugin data's own encoding.
    #[test]
    fn an_hparams_session_grows_by_whole_records() {
        let dir = tempfile::tempdir().unwrap();
        let hparams: BTreeMap<String, HParamValue> = [
            ("train.lr".to_owned(), HParamValue::Number(0.01)),
            ("train.schedule".to_owned(), HParamValue::Text("cosine".into())),
        ]
        .into();
        let mut session = HParamsSession { hparams, start: 1000.0, end: None };
        let path = write_hparams_session(dir.path(), &session).unwrap();
        let first = std::fs::read(&path).unwrap();
        session.end = Some((SessionStatus::Success, 1030.0));
        assert_eq!(write_hparams_session(dir.path(), &session).unwrap(), path, "the same file");
        let second = std::fs::read(&path).unwrap();
        assert!(second.len() > first.len() && second.starts_with(&first), "only appended");
        let events = records(&second);
        assert_eq!(events.len(), 3, "file version, session start, session end");
        let plugin_data = |e: &Event| {
            let Some(What::Summary(s)) = &e.what else { panic!("not a summary") };
            let v = &s.value[0];
            assert_eq!(v.kind.as_ref().map(|k| matches!(k, Kind::Tensor(t) if t.dtype == DT_FLOAT)), Some(true));
            let plugin = v.metadata.as_ref().unwrap().plugin_data.as_ref().unwrap();
            assert_eq!(plugin.plugin_name, "hparams");
            (v.tag.clone(), HParamsPluginData::decode(plugin.content.as_slice()).unwrap())
        };
        let (tag, start) = plugin_data(&events[1]);
        assert_eq!(tag, SESSION_START_TAG);
        let Some(HParamsData::SessionStart(info)) = start.data else { panic!("{start:?}") };
        assert_eq!(info.hparams["train.lr"].kind, Some(PbKind::Number(0.01)));
        assert_eq!(info.hparams["train.schedule"].kind, Some(PbKind::Text("cosine".into())));
        let (tag, end) = plugin_data(&events[2]);
        assert_eq!(tag, SESSION_END_TAG);
        assert_eq!(end.data, Some(HParamsData::SessionEnd(SessionEndInfo { status: 1, end_time_secs: 1030.0 })));
    }

    #[test]
    fn images_must_be_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let file = EventFile::open(dir.path()).unwrap();
        let err = file.write("", &[row(1)], &[("confusion", b"GIF89a...")]).unwrap_err();
        assert!(err.to_string().contains("image `confusion` is not a PNG"), "{err}");
    }
}
