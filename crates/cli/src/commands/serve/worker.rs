//! One inference thread per served model. The thread owns the model's tensors; the
//! HTTP handlers send it decoded images through a queue, and it groups what is
//! waiting into one batch (dynamic batching, as TorchServe's `batchSize` /
//! `maxBatchDelay` and Triton's dynamic batcher): it takes the first request, then
//! keeps taking until `max_batch` images are gathered or `max_wait` has passed since
//! the first, whichever comes first, and answers each request with its rows.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use cnnlab_cli::inspect;
use cnnlab_data::ImageShape;
use cnnlab_train::{Tta, Weights};
use image::ImageEncoder as _;
use tokio::sync::oneshot;

use crate::ensemble::RunModel;

/// Images of one request (HWC u8 at the model's input shape, one after another).
pub(crate) struct Images {
    pub(crate) pixels: Vec<u8>,
    pub(crate) count: usize,
}

/// A Grad-CAM overlay: PNG bytes, the class explained and its probability.
pub(crate) struct Overlay {
    pub(crate) png: Vec<u8>,
    pub(crate) class: usize,
    pub(crate) probability: f32,
    pub(crate) layer: String,
}

/// Where a request's class probabilities (or why there are none) go.
pub(crate) type ProbsReply = oneshot::Sender<Result<Vec<f32>, String>>;

/// What a handler asks a model's thread.
pub(crate) enum Job {
    /// Class probabilities, row-major `count x classes`.
    Predict { images: Images, reply: ProbsReply },
    /// Grad-CAM of one image for `class` (else the predicted class).
    Explain { pixels: Vec<u8>, class: Option<usize>, reply: oneshot::Sender<Result<Overlay, String>> },
}

/// How the thread batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching {
    pub(crate) max_batch: usize,
    pub(crate) max_wait: Duration,
}

/// A served model as the handlers see it.
pub(crate) struct ModelHandle {
    pub(crate) name: String,
    pub(crate) classes: Vec<String>,
    pub(crate) shape: ImageShape,
    pub(crate) members: usize,
    queue: Sender<Job>,
}

impl ModelHandle {
    /// Queues `job`; `false` once the thread has stopped.
    pub(crate) fn send(&self, job: Job) -> bool {
        self.queue.send(job).is_ok()
    }
}

/// What the model loaded on its thread says about itself.
struct Loaded {
    classes: Vec<String>,
    shape: ImageShape,
    members: usize,
}

/// Loads the run (or model folder) `dir` on a new thread, which then serves its
/// queue until every handle is dropped. Returns once the model has loaded (or failed to).
pub(crate) fn spawn(
    name: String,
    dir: std::path::PathBuf,
    batching: Batching,
) -> Result<(ModelHandle, JoinHandle<()>)> {
    let (queue, jobs) = mpsc::channel::<Job>();
    let (ready, loaded) = mpsc::channel::<Result<Loaded>>();
    let thread = std::thread::Builder::new().name(format!("model {name}")).spawn(move || {
        let model = (|| -> Result<(RunModel, Tta, Vec<String>, ImageShape)> {
            let (exp, shape, classes) = super::super::predict::run_inputs(&dir)?;
            let model = RunModel::load(&dir, &exp, shape, &classes, Weights::Last)?;
            Ok((model, exp.train.tta, classes, shape))
        })();
        let (model, tta, classes, shape) = match model {
            Ok(m) => m,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let members = model.predictors().len();
        let _ = ready.send(Ok(Loaded { classes, shape, members }));
        serve_queue(&model, tta, shape, &jobs, batching);
    })?;
    match loaded.recv() {
        Ok(Ok(l)) => Ok((ModelHandle { name, classes: l.classes, shape: l.shape, members: l.members, queue }, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            anyhow::bail!("the thread loading {name} stopped")
        }
    }
}

/// The thread's loop: batches of predictions, Grad-CAMs one by one.
fn serve_queue(model: &RunModel, tta: Tta, shape: ImageShape, jobs: &Receiver<Job>, b: Batching) {
    let mut explains = Vec::new();
    while let Ok(first) = jobs.recv() {
        let mut batch = Vec::new();
        let mut images = 0;
        let mut take = |job: Job, batch: &mut Vec<_>, images: &mut usize| match job {
            Job::Predict { images: i, reply } => {
                *images += i.count;
                batch.push((i, reply));
            }
            Job::Explain { pixels, class, reply } => explains.push((pixels, class, reply)),
        };
        take(first, &mut batch, &mut images);
        let deadline = Instant::now() + b.max_wait;
        while images > 0 && images < b.max_batch {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
            match jobs.recv_timeout(left) {
                Ok(job) => take(job, &mut batch, &mut images),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        if !batch.is_empty() {
            predict_batch(model, tta, batch);
        }
        for (pixels, class, reply) in explains.drain(..) {
            let _ = reply.send(explain(model, shape, &pixels, class));
        }
    }
}

/// One forward pass over every request's images; each request gets its rows.
fn predict_batch(model: &RunModel, tta: Tta, batch: Vec<(Images, ProbsReply)>) {
    let pixels: Vec<u8> =
        if batch.len() == 1 { Vec::new() } else { batch.iter().flat_map(|(i, _)| i.pixels.iter().copied()).collect() };
    let all = if batch.len() == 1 { &batch[0].0.pixels } else { &pixels };
    let total: usize = batch.iter().map(|(i, _)| i.count).sum();
    match model.predict_tta(all, tta) {
        Ok(probs) => {
            let k = probs.len() / total.max(1);
            let mut at = 0;
            for (images, reply) in batch {
                let rows = probs[at * k..(at + images.count) * k].to_vec();
                at += images.count;
                let _ = reply.send(Ok(rows));
            }
        }
        Err(e) => {
            let message = format!("{e:#}");
            for (_, reply) in batch {
                let _ = reply.send(Err(message.clone()));
            }
        }
    }
}

/// What the enlarged overlay's longer side is at least (as `cnnlab explain` writes them).
const OVERLAY_SIDE: usize = 224;

/// Grad-CAM of the model's first member, as an enlarged PNG overlay.
fn explain(model: &RunModel, shape: ImageShape, pixels: &[u8], class: Option<usize>) -> Result<Overlay, String> {
    let cam = model.predictors()[0].grad_cam(pixels, None, class).map_err(|e| e.to_string())?;
    let overlay = inspect::heat_overlay(pixels, shape.channels, &cam.map);
    let factor = OVERLAY_SIDE.div_ceil(shape.width.max(shape.height)).max(1);
    let (w, h) = (shape.width * factor, shape.height * factor);
    let big = inspect::enlarge(&overlay, shape.width, shape.height, factor);
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&big, w as u32, h as u32, image::ExtendedColorType::Rgb8)
        .map_err(|e| e.to_string())?;
    Ok(Overlay { png, class: cam.class, probability: cam.probs[cam.class], layer: cam.layer })
}
