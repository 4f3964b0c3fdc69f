//! The command line of `cnnlab`, shared by its two binaries: `cnnlab`, which runs the
//! commands that need no tensors itself and hands the others to `cnnlab-torch`, and
//! `cnnlab-torch`, which runs every command.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Parser, Subcommand};

/// The names of `cnnlab_train::Tta` (that crate links libtorch, which this module must
/// not pull into the light binary; `cnnlab-torch` tests that the lists agree).
pub const TTA_NAMES: [&str; 3] = ["none", "flip", "flip_translate"];

#[derive(Debug, Parser)]
#[command(name = "cnnlab", version, about = "Train and compare CNN image classifiers on libtorch")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (debug level); RUST_LOG overrides.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Only warnings and errors, no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// CPU threads for libtorch and the data pipeline (default: SLURM_CPUS_PER_TASK,
    /// OMP_NUM_THREADS, or the CPUs this process may use).
    #[arg(long, global = true, env = "CNNLAB_THREADS", value_name = "N", value_parser = at_least_one)]
    pub threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a run folder of an ImageNet backbone with its original 1000-class head and
    /// pretrained weights, for `cnnlab predict --run OUT photo.jpg` (ImageNet names).
    Pretrained {
        /// efficientnet_lite0, resnet18, resnet34 or resnet50.
        backbone: String,
        /// The weights: a name (efficientnet_lite0), a .safetensors or a .pth file
        /// (default: the backbone's name).
        #[arg(long)]
        weights: Option<String>,
        /// The run folder to write.
        #[arg(long)]
        out: PathBuf,
        /// Where `cargo xtask download efficientnet-lite0` put the named weights.
        #[arg(long, env = "CNNLAB_DATA", default_value = "data")]
        data_dir: PathBuf,
    },
    /// Train the experiment described by CONFIG and evaluate it on the test split.
    Train(TrainArgs),
    /// Classify images with a trained run: top-k classes per image, or a Kaggle
    /// submission CSV (Id,Expected) for a folder. Same weights and test-time
    /// augmentation as the run's test metrics (and `evaluate`) unless told otherwise.
    Predict {
        /// The run folder (runs/<group>/<name>).
        #[arg(long)]
        run: PathBuf,
        /// Image files, or with --submission one folder of images.
        inputs: Vec<PathBuf>,
        /// How many classes to list per image.
        #[arg(long, default_value_t = 3, value_parser = at_least_one)]
        top: usize,
        /// Write Kaggle's journey-springfield format (Id,Expected) to this file.
        #[arg(long)]
        submission: Option<PathBuf>,
        /// Test-time augmentation (default: the run's train.tta, as its test metrics).
        #[arg(long, value_parser = PossibleValuesParser::new(TTA_NAMES))]
        tta: Option<String>,
        /// Use best.safetensors instead of the final weights (last.safetensors, which
        /// the run's own test metrics used).
        #[arg(long)]
        best: bool,
        /// The final weights: the default since 0.2, kept for old scripts.
        #[arg(long, hide = true, conflicts_with = "best")]
        last: bool,
    },
    /// Score a trained run on a labeled folder (DIR/<class>/*.jpg), like Keras'
    /// model.evaluate: accuracy, per-class report, micro/macro-F1, MCC, ROC AUC.
    Evaluate {
        /// The run folder (runs/<group>/<name>).
        #[arg(long)]
        run: PathBuf,
        /// A folder with one sub-folder per class, named as the run's classes.
        dir: PathBuf,
        /// Test-time augmentation (default: the run's train.tta).
        #[arg(long, value_parser = PossibleValuesParser::new(TTA_NAMES))]
        tta: Option<String>,
        /// Use best.safetensors instead of the final weights (last.safetensors, which
        /// the run's own test metrics used).
        #[arg(long)]
        best: bool,
        /// Also write every prediction (file, y_true, y_pred, p_<class>...) to this CSV.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print one JSON object of every metric instead of the text report.
        #[arg(long)]
        json: bool,
    },
    /// Write a finished run as an ONNX model or TorchScript (its network(s),
    /// normalisation and softmax in one graph: float32 pixels in [0, 1], NCHW, to
    /// `logits` and `probabilities`) for onnxruntime, PyTorch and libtorch.
    Export {
        /// The run folder (runs/<group>/<name>); a seed ensemble's folder exports one
        /// graph averaging its members.
        #[arg(long)]
        run: PathBuf,
        /// onnx (opset 17), torchscript (traced; PyTorch is deprecating TorchScript
        /// in favour of torch.export) or folder (a Hub-style model folder:
        /// model.safetensors, model.onnx, config.json and a README.md model card).
        #[arg(long, default_value = "onnx", value_parser = PossibleValuesParser::new(["onnx", "torchscript", "folder"]))]
        format: String,
        /// Where to write it (default: <run>/model.onnx, <run>/model.pt or <run>/model/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Export best.safetensors instead of the final weights.
        #[arg(long)]
        best: bool,
    },
    /// Search hyper-parameters: FILE extends an experiment and adds [tune] (metric,
    /// trials and/or budget_minutes, sampler random|grid|tpe, pruner none|median|asha)
    /// and [tune.space] ("train.lr" = { log_uniform = [1e-4, 1e-1] }, ...). Trials are
    /// run folders <study>/trial-<k>/; the study (<study>/study.jsonl) resumes after
    /// any stop; the best trial's values are written as <study>/best.toml.
    Tune {
        /// The tune file.
        file: PathBuf,
        /// The study folder (default: runs/<group>/<stem>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where datasets live.
        #[arg(long, env = "CNNLAB_DATA", default_value = "data")]
        data_dir: PathBuf,
        /// `auto`: be one of several workers on the study (Slurm array tasks, other
        /// hosts sharing the folder): each takes the next trial or a paused one under
        /// the study's lock, and never one another worker is training.
        #[arg(long, value_parser = PossibleValuesParser::new(["auto"]))]
        shard: Option<String>,
        /// Start N workers on this machine (each `--shard auto`, with 1/N of the CPUs).
        #[arg(long, default_value_t = 1, value_parser = at_least_one)]
        jobs: usize,
        /// Only check the file (every key of the space against the experiment) and
        /// print the search; train nothing.
        #[arg(long)]
        check: bool,
    },
    /// Serve trained runs (or exported model folders) over HTTP: a JSON API
    /// (POST /v1/models/NAME/predict, /v1/predict, /v1/models/NAME/explain) and a web
    /// page at /. Concurrent requests to a model are batched. SIGINT/SIGTERM finish the
    /// requests in flight and exit 0.
    Serve {
        /// The run folders or model folders; each is named by its folder's name.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The address to listen on (0.0.0.0 for every interface).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The port (0: any free port; the first line printed says which).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The most images a model's forward pass batches from concurrent requests.
        #[arg(long, default_value_t = 32, value_parser = at_least_one)]
        max_batch: usize,
        /// How long a model waits for more requests after the first before running a
        /// batch, in milliseconds.
        #[arg(long, default_value_t = 5)]
        max_wait_ms: u64,
        /// The largest request body accepted, in MB (1 MB = 2^20 bytes); larger is 413.
        #[arg(long, default_value_t = 20, value_parser = at_least_one)]
        max_body_mb: usize,
    },
    /// Where a trained run looks: Grad-CAM heat maps over the given images, for the
    /// predicted class or --class, at the last convolution or --layer. Writes
    /// <stem>.gradcam.png (the image with the map overlaid) and <stem>.gradcam.npy (the
    /// map, float32 in [0, 1] at the input's size) per image.
    Explain {
        /// The run folder (runs/<group>/<name>).
        #[arg(long)]
        run: PathBuf,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// The layer, numbered as `cnnlab summary` lists them (Conv2d-9 is 9); default:
        /// the last convolution.
        #[arg(long)]
        layer: Option<usize>,
        /// Explain this class instead of the predicted one.
        #[arg(long)]
        class: Option<String>,
        /// Output folder (default: RUN/explain).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Smith's learning-rate range test, as fastai's lr_find: a short training with
    /// the learning rate growing exponentially from --start to --end, stopped when the
    /// smoothed loss diverges; writes lr_find.png and lr_find.csv and prints the
    /// suggested rates. Nothing of the run is kept.
    LrFind {
        /// Experiment file, e.g. configs/cifar10/seed3-final.toml.
        config: PathBuf,
        /// The first learning rate.
        #[arg(long, default_value_t = 1e-7)]
        start: f64,
        /// The last learning rate.
        #[arg(long, default_value_t = 10.0)]
        end: f64,
        /// Training steps (batches) from --start to --end.
        #[arg(long, default_value_t = 100, value_parser = at_least_one)]
        steps: usize,
        /// Where lr_find.png and lr_find.csv go (default: runs/<group>/<stem>-lr-find).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where datasets live.
        #[arg(long, env = "CNNLAB_DATA", default_value = "data")]
        data_dir: PathBuf,
    },
    /// The model's layer table (output shape, parameters), parameter totals and
    /// activation memory, like torchsummary / Keras' model.summary().
    Summary {
        /// Experiment file, e.g. configs/cifar10/seed3-final.toml.
        config: PathBuf,
        /// Class count (default: the dataset's, e.g. 37 for pets).
        #[arg(long)]
        classes: Option<usize>,
        /// Where datasets live; read only when the model's input shape needs the data
        /// (dataset = "image-folder" without image_size).
        #[arg(long, env = "CNNLAB_DATA", default_value = "data")]
        data_dir: PathBuf,
    },
    /// Compare every finished run under RUNS (default runs/): RUNS/REPORT.md and
    /// RUNS/report.html with plots.
    Report {
        /// The folder searched for run folders (each with a metrics.json).
        #[arg(default_value = "runs")]
        runs: PathBuf,
        /// The comparison tables to show (skipped when the file does not exist).
        #[arg(long, default_value = "configs/comparisons.toml")]
        comparisons: PathBuf,
    },
    /// Is run B better than run A? Both metrics with 95% intervals, B - A with its
    /// interval and the p-value of a paired test: McNemar (accuracy) or the paired
    /// bootstrap on the same test set; Welch's t-test for folders of seed-<k>/ replicates.
    Compare {
        /// Run A, the baseline: a run folder, its predictions.csv, or a folder of
        /// seed-<k>/ runs.
        a: PathBuf,
        /// Run B, of the same kind as A.
        b: PathBuf,
        /// accuracy, balanced_accuracy, f1_macro, f1_micro, f1_weighted, mcc or roc_auc.
        #[arg(long, default_value = "accuracy")]
        metric: String,
        /// Bootstrap resamples (at least 40 for the 95% interval and test).
        #[arg(long, default_value_t = 2000)]
        resamples: usize,
        /// Seed of the bootstrap's resampling.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Dataset tools.
    #[command(subcommand)]
    Data(DataCommand),
    /// What cnnlab runs on: the libtorch version, CUDA and its devices, cuDNN,
    /// threads (`torch.__config__` / `collect_env` in short).
    Info {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Where each run folder stands: empty, unfinished (resumable) or finished.
    Status {
        /// Run folders (runs/<group>/<name>).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every classification metric of a predictions CSV (y_true, y_pred, p_<class>...).
    Metrics {
        /// CSV file with a header.
        file: PathBuf,
        /// Print one JSON object instead of the text report.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Per-class counts, imbalance ratio, image sizes and unreadable files of a folder.
    Stats {
        /// An image folder: DIR/<class>/*.jpg.
        dir: PathBuf,
        /// Print one JSON object instead of the text summary.
        #[arg(long)]
        json: bool,
        /// Also draw the class distribution as a bar chart (PNG).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Write the dataset of CONFIG as image folders OUT/{train,val,test}/<class>/*.png.
    Export {
        /// Experiment file whose [data] section is exported (splits included).
        config: PathBuf,
        /// Output folder; gets train/, val/ (when the config has one) and test/.
        #[arg(long)]
        out: PathBuf,
        /// Where datasets live.
        #[arg(long, env = "CNNLAB_DATA", default_value = "data")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Experiment file, e.g. configs/fashion-mnist/seed3-final.toml.
    #[arg(required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Continue the run in this folder where it stopped (its config.toml and
    /// resume.safetensors), e.g. after Ctrl-C or a crash; with --epochs, train a
    /// finished run on to that many epochs (Keras' initial_epoch).
    #[arg(long, conflicts_with_all = ["config", "out"])]
    pub resume: Option<PathBuf>,
    /// Override `train.epochs`.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Where datasets live.
    #[arg(long, env = "CNNLAB_DATA", default_value = "data")]
    pub data_dir: PathBuf,
    /// Run folder (default: runs/<config folder>/<config stem>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A smoke run: 1 epoch of 5 batches, at most 500 test images.
    #[arg(long, conflicts_with = "resume")]
    pub quick: bool,
    /// Train on at most N batches per epoch (throughput measurements; `cargo xtask bench`)
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub max_batches: Option<usize>,
    /// Override `train.seed` (and train this one seed of a config with `train.seeds`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Replace a finished or unfinished run in the run folder instead of refusing.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Leave a run that has finished alone (exit 5) instead of re-evaluating it
    /// (with --resume) or refusing it: what `cargo xtask train-all` passes, since
    /// another process may finish a run between its look and this start.
    #[arg(long)]
    pub if_unfinished: bool,
    /// Under Slurm: after SIGTERM / SIGUSR1 has stopped the run with a checkpoint,
    /// `scontrol requeue $SLURM_JOB_ID` so that the job starts again and resumes
    /// (also `[train] requeue_on_signal = true`).
    #[arg(long)]
    pub requeue: bool,
}

/// A count flag: 0 would silently mean 1 (or nothing).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// How many cases the fuzz tests run: `default_cases`, or `PROPTEST_CASES` for a
/// campaign (both binaries' and the library's tests use it).
#[doc(hidden)]
pub fn fuzz_cases(default_cases: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases)
}
