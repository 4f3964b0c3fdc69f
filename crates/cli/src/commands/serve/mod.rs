//! `cnnlab serve`: trained runs (or exported model folders) behind an HTTP API and a
//! web page. axum on tokio answers HTTP; each model's tensors stay on its own
//! inference thread (`worker.rs`), which batches concurrent requests. SIGINT and
//! SIGTERM stop accepting connections, let the requests in flight finish, and exit 0.

mod api;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use worker::Batching;

pub(crate) struct ServeArgs<'a> {
    pub runs: &'a [PathBuf],
    pub host: &'a str,
    pub port: u16,
    pub max_batch: usize,
    pub max_wait_ms: u64,
    pub max_body_mb: usize,
    /// The CPU budget (`threads.rs`): libtorch's pool has it already; the HTTP side
    /// and the decoders share it.
    pub threads: usize,
}

/// A model's name in URLs: its folder's name (`runs/shapes/seed3-final` is `seed3-final`).
fn model_name(dir: &std::path::Path) -> Result<String> {
    let dir = dir.canonicalize().with_context(|| format!("{}: no such run folder", dir.display()))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.is_empty() || name.contains(['/', '?', '#', '%']) {
        bail!("{}: its folder name cannot name a model in a URL", dir.display());
    }
    Ok(name)
}

pub(crate) fn serve_command(a: ServeArgs<'_>) -> Result<()> {
    if a.runs.is_empty() {
        bail!("give the run folders (or exported model folders) to serve");
    }
    if a.max_batch == 0 {
        bail!("--max-batch must be at least 1");
    }
    let batching = Batching { max_batch: a.max_batch, max_wait: Duration::from_millis(a.max_wait_ms) };
    let mut models = Vec::new();
    let mut threads = Vec::new();
    for dir in a.runs {
        let name = model_name(dir)?;
        if let Some(other) = models.iter().position(|m: &worker::ModelHandle| m.name == name) {
            bail!(
                "{} and {} are both named {name}: serve them from folders of different names",
                a.runs[other].display(),
                dir.display()
            );
        }
        let (handle, thread) = worker::spawn(name, dir.clone(), batching).with_context(|| dir.display().to_string())?;
        tracing::info!(
            "{}: {} classes, input {}x{}x{}",
            handle.name,
            handle.classes.len(),
            handle.shape.channels,
            handle.shape.height,
            handle.shape.width
        );
        models.push(handle);
        threads.push(thread);
    }
    let names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    let served = Arc::new(api::Served { models, limit_mb: a.max_body_mb });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.clamp(1, 4))
        .max_blocking_threads(a.threads.max(1))
        .thread_name("cnnlab-http")
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let app = api::router(served);
    runtime.block_on(async move {
        let addr = format!("{}:{}", a.host, a.port);
        let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("listening on {addr}"))?;
        let local: SocketAddr = listener.local_addr()?;
        // The one line on stdout: scripts and tests read the port from it (--port 0).
        println!("serving {} on http://{local}/", names.join(", "));
        use std::io::Write as _;
        std::io::stdout().flush()?;
        // Answers go out at once, not held back by Nagle's algorithm for the client's ACK.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY: {e}");
            }
        });
        axum::serve(listener, app).with_graceful_shutdown(stop_signal()).await.context("serving HTTP")
    })?;
    // Blocking decodes still queued end with the runtime; then every handle is gone
    // with the router, and the model threads finish their queues and end.
    runtime.shutdown_timeout(Duration::from_secs(10));
    for t in threads {
        let _ = t.join();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves at the first SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!("{which}: no new connections; finishing the requests in flight");
}
