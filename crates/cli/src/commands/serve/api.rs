//! The HTTP API: routes, request bodies, JSON answers and JSON errors.
//!
//! - `GET /`: the web page; `GET /v1/models`: the served models;
//! - `POST /v1/models/{name}/predict[?top=5]`: one image as the body, or several as
//!   `multipart/form-data` files;
//! - `POST /v1/predict[?top=5]`: every served model on the same image;
//! - `POST /v1/models/{name}/explain[?class=NAME]`: the Grad-CAM overlay as a PNG.
//!
//! Every failure is a status with `{"error": "..."}`: 400 an image that does not
//! decode (or claims more pixels than cnnlab decodes), 404 an unknown model or path,
//! 405 a wrong method, 413 a body over the limit, 422 a one-vs-rest model asked for
//! Grad-CAM, 503 while shutting down.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::worker::{Images, Job, ModelHandle};

/// What every handler shares.
pub(crate) struct Served {
    pub(crate) models: Vec<ModelHandle>,
    /// `--max-body-mb`.
    pub(crate) limit_mb: usize,
}

type Shared = Arc<Served>;

/// The page at `/`: HTML, CSS and JavaScript in one file, nothing fetched from elsewhere.
const PAGE: &str = include_str!("page.html");

/// The router over `served`, refusing bodies over its `limit_mb`.
pub(crate) fn router(served: Shared) -> Router {
    let limit = served.limit_mb.saturating_mul(1 << 20);
    Router::new()
        .route("/", get(page))
        .route("/v1/models", get(models))
        .route("/v1/predict", post(predict_all))
        .route("/v1/models/{name}/predict", post(predict_one))
        .route("/v1/models/{name}/explain", post(explain))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(json_errors))
        .with_state(served)
}

/// An error answer: a status and one line.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, message.into())
    }

    /// A model's thread has stopped: the server is going down.
    fn shutting_down() -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down".into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// axum's own refusals (405, 413, a multipart body that does not parse) come as
/// plain text or nothing: this turns every error answer without JSON into
/// `{"error": ...}` naming the method and path.
async fn json_errors(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let response = next.run(req).await;
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let other = if matches!(path.as_str(), "/" | "/v1/models") { "GET" } else { "POST" };
            format!("{method} {path}: method not allowed (use {other})")
        }
        _ if text.is_empty() => format!("{method} {path}: {status}"),
        _ => format!("{method} {path}: {text}"),
    };
    let mut answer = ApiError(status, message).into_response();
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("{method} {}: no such endpoint (GET /, GET /v1/models, POST /v1/predict, POST /v1/models/NAME/predict or /explain)", uri.path()),
    )
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

#[derive(Serialize)]
struct ModelInfo<'a> {
    name: &'a str,
    classes: &'a [String],
    input: [usize; 3],
    members: usize,
}

async fn models(State(s): State<Shared>) -> Json<serde_json::Value> {
    let list: Vec<ModelInfo<'_>> = s
        .models
        .iter()
        .map(|m| ModelInfo {
            name: &m.name,
            classes: &m.classes,
            input: [m.shape.channels, m.shape.height, m.shape.width],
            members: m.members,
        })
        .collect();
    Json(serde_json::json!({ "models": list }))
}

#[derive(Deserialize)]
struct TopQuery {
    top: Option<usize>,
}

#[derive(Serialize, Clone)]
struct ClassProbability {
    class: String,
    probability: f32,
}

/// One image's answer from one model.
#[derive(Serialize)]
struct Prediction {
    model: String,
    predictions: Vec<ClassProbability>,
    ms: f64,
}

/// Several files' answers from one model (a multipart request).
#[derive(Serialize)]
struct FileResults {
    model: String,
    results: Vec<FileResult>,
    ms: f64,
}

#[derive(Serialize)]
struct FileResult {
    file: Option<String>,
    predictions: Vec<ClassProbability>,
}

/// Every model's answer for one image.
#[derive(Serialize)]
struct AllResults {
    results: Vec<Prediction>,
    ms: f64,
}

fn model<'a>(s: &'a Served, name: &str) -> ApiResult<&'a ModelHandle> {
    s.models.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = s.models.iter().map(|m| m.name.as_str()).collect();
        ApiError(StatusCode::NOT_FOUND, format!("no model named {name:?} (served: {})", names.join(", ")))
    })
}

fn top_of(q: &TopQuery, classes: usize) -> ApiResult<usize> {
    match q.top {
        Some(0) => Err(ApiError::bad("top must be at least 1")),
        Some(k) => Ok(k.min(classes)),
        None => Ok(5.min(classes)),
    }
}

/// The `top` most probable classes of one row of probabilities.
fn top_classes(classes: &[String], probs: &[f32], top: usize) -> Vec<ClassProbability> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order.into_iter().take(top).map(|c| ClassProbability { class: classes[c].clone(), probability: probs[c] }).collect()
}

/// One uploaded file: its name (for multipart) and bytes.
struct Upload {
    name: Option<String>,
    bytes: Bytes,
}

/// The image(s) of a request: the whole body, or each file of a multipart form.
async fn uploads(req: Request, limit_mb: usize) -> ApiResult<Vec<Upload>> {
    let too_big = |status: StatusCode, text: String| match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError(status, format!("the body is over the server's limit of {limit_mb} MB (--max-body-mb)"))
        }
        _ => ApiError(status, text),
    };
    let multipart =
        req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"multipart/form-data"));
    if multipart {
        let mut form = Multipart::from_request(req, &()).await.map_err(|e| too_big(e.status(), e.body_text()))?;
        let mut files = Vec::new();
        while let Some(field) = form.next_field().await.map_err(|e| too_big(e.status(), e.body_text()))? {
            let name = field.file_name().or(field.name()).map(str::to_owned);
            let bytes = field.bytes().await.map_err(|e| too_big(e.status(), e.body_text()))?;
            files.push(Upload { name, bytes });
        }
        if files.is_empty() {
            return Err(ApiError::bad("the multipart form holds no file"));
        }
        return Ok(files);
    }
    let bytes = Bytes::from_request(req, &()).await.map_err(|e| too_big(e.status(), e.body_text()))?;
    if bytes.is_empty() {
        return Err(ApiError::bad(
            "the body is empty: send an image (JPEG, PNG, BMP or GIF) as the body, or multipart files",
        ));
    }
    Ok(vec![Upload { name: None, bytes }])
}

/// Decodes `bytes` at `shape` on the blocking pool; 400 naming what is wrong.
async fn decode(bytes: Bytes, shape: cnnlab_data::ImageShape, name: Option<&str>) -> ApiResult<Vec<u8>> {
    let decoded = tokio::task::spawn_blocking(move || cnnlab_data::folder::decode_bytes(&bytes, shape))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    decoded.map(|(pixels, _)| pixels).map_err(|e| match name {
        Some(n) => ApiError::bad(format!("{n}: not an image cnnlab decodes: {e}")),
        None => ApiError::bad(format!("not an image cnnlab decodes: {e}")),
    })
}

/// Runs `images` through `m`'s queue.
async fn probabilities(m: &ModelHandle, images: Images) -> ApiResult<Vec<f32>> {
    let (reply, answer) = oneshot::channel();
    if !m.send(Job::Predict { images, reply }) {
        return Err(ApiError::shutting_down());
    }
    let result = answer.await.map_err(|_| ApiError::shutting_down())?;
    result.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))
}

fn ms_since(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1e5).round() / 100.0
}

async fn predict_one(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<TopQuery>,
    req: Request,
) -> ApiResult<Response> {
    let start = Instant::now();
    let m = model(&s, &name)?;
    let top = top_of(&q, m.classes.len())?;
    let files = uploads(req, s.limit_mb).await?;
    let multipart = files[0].name.is_some();
    let mut pixels = Vec::with_capacity(files.len() * m.shape.len());
    for f in &files {
        pixels.extend(decode(f.bytes.clone(), m.shape, f.name.as_deref()).await?);
    }
    let k = m.classes.len();
    let probs = probabilities(m, Images { pixels, count: files.len() }).await?;
    if !multipart {
        let answer = Prediction {
            model: m.name.clone(),
            predictions: top_classes(&m.classes, &probs, top),
            ms: ms_since(start),
        };
        return Ok(Json(answer).into_response());
    }
    let results = files
        .iter()
        .zip(probs.chunks(k))
        .map(|(f, row)| FileResult { file: f.name.clone(), predictions: top_classes(&m.classes, row, top) })
        .collect();
    Ok(Json(FileResults { model: m.name.clone(), results, ms: ms_since(start) }).into_response())
}

/// Every served model on the same image (seed 002's side-by-side comparison).
async fn predict_all(State(s): State<Shared>, Query(q): Query<TopQuery>, req: Request) -> ApiResult<Response> {
    let start = Instant::now();
    let files = uploads(req, s.limit_mb).await?;
    let [file] = &files[..] else {
        return Err(ApiError::bad(format!("/v1/predict takes one image, not {}", files.len())));
    };
    // Every model decodes at its own size; all are queued before any answer is awaited.
    let mut pending = Vec::new();
    for m in &s.models {
        let top = top_of(&q, m.classes.len())?;
        let pixels = decode(file.bytes.clone(), m.shape, file.name.as_deref()).await?;
        let (reply, answer) = oneshot::channel();
        if !m.send(Job::Predict { images: Images { pixels, count: 1 }, reply }) {
            return Err(ApiError::shutting_down());
        }
        pending.push((m, top, answer));
    }
    let mut results = Vec::new();
    for (m, top, answer) in pending {
        let probs = answer
            .await
            .map_err(|_| ApiError::shutting_down())?
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        results.push(Prediction {
            model: m.name.clone(),
            predictions: top_classes(&m.classes, &probs, top),
            ms: ms_since(start),
        });
    }
    Ok(Json(AllResults { results, ms: ms_since(start) }).into_response())
}

#[derive(Deserialize)]
struct ClassQuery {
    class: Option<String>,
}

/// The Grad-CAM overlay of one image as a PNG; the class explained and its
/// probability in the `X-Cnnlab-Class` and `X-Cnnlab-Probability` headers.
async fn explain(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<ClassQuery>,
    req: Request,
) -> ApiResult<Response> {
    let m = model(&s, &name)?;
    let class = match &q.class {
        None => None,
        Some(c) => Some(m.classes.iter().position(|k| k == c).ok_or_else(|| {
            ApiError::bad(format!("class {c:?} is not one of {}'s classes ({})", m.name, m.classes.join(", ")))
        })?),
    };
    let files = uploads(req, s.limit_mb).await?;
    let [file] = &files[..] else {
        return Err(ApiError::bad(format!("explain takes one image, not {}", files.len())));
    };
    let pixels = decode(file.bytes.clone(), m.shape, file.name.as_deref()).await?;
    let (reply, answer) = oneshot::channel();
    if !m.send(Job::Explain { pixels, class, reply }) {
        return Err(ApiError::shutting_down());
    }
    let overlay = answer
        .await
        .map_err(|_| ApiError::shutting_down())?
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("{}: {e}", m.name)))?;
    let mut response = Response::new(Body::from(overlay.png));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    let text = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("?"));
    headers.insert("x-cnnlab-class", text(&m.classes[overlay.class]));
    headers.insert("x-cnnlab-probability", text(&format!("{:.6}", overlay.probability)));
    headers.insert("x-cnnlab-layer", text(&overlay.layer));
    Ok(response)
}
