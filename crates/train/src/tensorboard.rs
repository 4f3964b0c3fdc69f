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

    #[test]
    fn images_must_be_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let file = EventFile::open(dir.path()).unwrap();
        let err = file.write("", &[row(1)], &[("confusion", b"GIF89a...")]).unwrap_err();
        assert!(err.to_string().contains("image `confusion` is not a PNG"), "{err}");
    }
}
