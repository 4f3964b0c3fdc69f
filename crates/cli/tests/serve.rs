//! `cnnlab serve` over real HTTP on 127.0.0.1: every endpoint against `cnnlab
//! predict`, every bad input a 4xx with one line of JSON, a load test with bad
//! requests mixed in, graceful SIGTERM, and the page in a real Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::{assert_ok, cnnlab, command, shared_dir, small_shapes_config, workspace};

/// An HTTP answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.status, String::from_utf8_lossy(&self.body)))
    }

    /// A 4xx whose body is `{"error": one line}` containing `needle`.
    pub(crate) fn assert_error(&self, status: u16, needle: &str) {
        let body = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, status, "{body}");
        let message = self.json()["error"].as_str().unwrap_or_else(|| panic!("no error field: {body}")).to_owned();
        assert!(!message.contains('\n') && message.contains(needle), "{message:?} should contain {needle:?}");
    }
}

/// One HTTP/1.1 request on a new connection (`Connection: close`), read to the end:
/// the plainest client, so what is tested is the server.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if let Some(t) = content_type {
        head.push_str(&format!("Content-Type: {t}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // A server refusing a body over its limit may answer and close before all of it
    // is sent; what it answered is still there to read.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> std::io::Result<Answer> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))).collect();
    let mut body = raw[end + 4..].to_vec();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(|| bad("chunk size"))?;
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..line_end]).trim(), 16)
                .map_err(|_| bad("chunk size"))?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = out;
    }
    Ok(Answer { status, headers, body })
}

/// A multipart/form-data body of `files` (name, bytes) and its content type.
pub(crate) fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "cnnlab-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A running `cnnlab serve`, stopped (SIGKILL) when dropped unless it has exited.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cnnlab serve ARGS --port 0` and reads the address from its first line.
pub(crate) fn serve(args: &[&str], data_dir: &Path) -> Server {
    let mut child = command(data_dir)
        .args(["-q", "serve"])
        .args(args)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cnnlab serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.trim().strip_suffix('/'))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Server { child, addr }
}

/// Two shapes runs (3 epochs, different seeds) and the first exported as a model
/// folder, trained once per test process, and test images written as PNG and JPEG.
pub(crate) struct Models {
    pub(crate) dir: PathBuf,
    pub(crate) run_a: PathBuf,
    pub(crate) folder_b: PathBuf,
    pub(crate) images: Vec<PathBuf>,
}

pub(crate) fn models() -> &'static Models {
    static MODELS: OnceLock<Models> = OnceLock::new();
    MODELS.get_or_init(|| {
        let dir = shared_dir().join("serve");
        std::fs::create_dir_all(&dir).unwrap();
        let config = small_shapes_config(&dir, "shapes.toml", 600, None);
        let run_a = dir.join("circles-a");
        let run_b = dir.join("run-b");
        for (run, seed) in [(&run_a, "1"), (&run_b, "2")] {
            let out = cnnlab(
                &[
                    "-q",
                    "train",
                    config.to_str().unwrap(),
                    "--epochs",
                    "3",
                    "--seed",
                    seed,
                    "--out",
                    run.to_str().unwrap(),
                ],
                &dir,
            );
            assert_ok(&out);
        }
        let folder_b = dir.join("squares-b");
        assert_ok(&cnnlab(
            &["export", "--run", run_b.to_str().unwrap(), "--format", "folder", "--out", folder_b.to_str().unwrap()],
            &dir,
        ));
        let shape = cnnlab_data::ImageShape { channels: 3, height: 32, width: 32 };
        let test = cnnlab_data::generate_shapes(shape, 4, cnnlab_data::SHAPES_TEST_STREAM).unwrap();
        let mut images = vec![];
        for i in 0..6 {
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            let path = dir.join(format!("shape-{i}.{ext}"));
            image::save_buffer(&path, test.image(i), 32, 32, image::ColorType::Rgb8).unwrap();
            images.push(path);
        }
        Models { dir, run_a, folder_b, images }
    })
}

/// `cnnlab predict`'s top class and probability of each image, from its output.
fn predicted_by_cli(run: &Path, images: &[PathBuf], dir: &Path) -> Vec<(String, f32)> {
    let mut args = vec!["predict".to_owned(), "--run".into(), run.display().to_string(), "--top".into(), "1".into()];
    args.extend(images.iter().map(|p| p.display().to_string()));
    let out = cnnlab(&args.iter().map(String::as_str).collect::<Vec<_>>(), dir);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // "  class   probability" rows follow each image's line; the first row is the top class.
    let rows: Vec<(String, f32)> = stdout
        .lines()
        .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with("class "))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let class = parts.next().unwrap().to_owned();
            (class, parts.next().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), images.len(), "{stdout}");
    rows
}

/// Every endpoint on a run and an exported model folder served together: one image,
/// multipart files, every model at once and Grad-CAM; the probabilities are
/// `cnnlab predict`'s to 1e-4 (the same weights, dynamic batching or not).
#[test]
fn serve_answers_like_predict_on_every_endpoint() {
    let m = models();
    let server = serve(&[m.run_a.to_str().unwrap(), m.folder_b.to_str().unwrap(), "--max-wait-ms", "2"], &m.dir);
    let addr = &server.addr;

    let listed = http(addr, "GET", "/v1/models", None, b"").unwrap();
    assert_eq!(listed.status, 200);
    let listed = listed.json();
    let names: Vec<&str> = listed["models"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["circles-a", "squares-b"]);
    assert_eq!(listed["models"][0]["input"], serde_json::json!([3, 32, 32]));
    let classes = listed["models"][0]["classes"].as_array().unwrap().len();

    let expected_a = predicted_by_cli(&m.run_a, &m.images, &m.dir);
    let expected_b = predicted_by_cli(&m.folder_b, &m.images, &m.dir);
    for (i, path) in m.images.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap();
        let one = http(addr, "POST", "/v1/models/circles-a/predict?top=3", Some("image/png"), &bytes).unwrap();
        assert_eq!(one.status, 200, "{}", String::from_utf8_lossy(&one.body));
        assert_eq!(one.header("content-type"), Some("application/json"));
        let one = one.json();
        assert_eq!(one["model"], "circles-a");
        let predictions = one["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), 3.min(classes));
        let probs: Vec<f64> = predictions.iter().map(|p| p["probability"].as_f64().unwrap()).collect();
        assert!(probs.windows(2).all(|w| w[0] >= w[1]), "sorted: {probs:?}");
        assert_eq!(predictions[0]["class"], expected_a[i].0.as_str());
        assert!((probs[0] - f64::from(expected_a[i].1)).abs() < 1e-4, "{} vs {}", probs[0], expected_a[i].1);
        assert!(one["ms"].as_f64().unwrap() >= 0.0);

        let all = http(addr, "POST", "/v1/predict?top=1", None, &bytes).unwrap();
        assert_eq!(all.status, 200);
        let all = all.json();
        let results = all["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        for (result, expected) in results.iter().zip([&expected_a[i], &expected_b[i]]) {
            assert_eq!(result["predictions"][0]["class"], expected.0.as_str());
            let p = result["predictions"][0]["probability"].as_f64().unwrap();
            assert!((p - f64::from(expected.1)).abs() < 1e-4);
        }
    }

    // Several files in one multipart request: one answer per file, in order, named.
    let files: Vec<(String, Vec<u8>)> = m
        .images
        .iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(p).unwrap()))
        .collect();
    let parts: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let (content_type, body) = multipart(&parts);
    let many = http(addr, "POST", "/v1/models/squares-b/predict?top=1", Some(&content_type), &body).unwrap();
    assert_eq!(many.status, 200, "{}", String::from_utf8_lossy(&many.body));
    let many = many.json();
    let results = many["results"].as_array().unwrap();
    assert_eq!(results.len(), m.images.len());
    for ((result, (name, _)), expected) in results.iter().zip(&files).zip(&expected_b) {
        assert_eq!(result["file"], name.as_str());
        assert_eq!(result["predictions"][0]["class"], expected.0.as_str());
        assert!((result["predictions"][0]["probability"].as_f64().unwrap() - f64::from(expected.1)).abs() < 1e-4);
    }

    // Grad-CAM: a PNG of the input enlarged to at least 224 px, for the predicted class
    // unless one is asked for.
    let bytes = std::fs::read(&m.images[0]).unwrap();
    let cam = http(addr, "POST", "/v1/models/circles-a/explain", None, &bytes).unwrap();
    assert_eq!(cam.status, 200, "{}", String::from_utf8_lossy(&cam.body));
    assert_eq!(cam.header("content-type"), Some("image/png"));
    assert_eq!(cam.header("x-cnnlab-class"), Some(expected_a[0].0.as_str()));
    let png = image::load_from_memory(&cam.body).unwrap();
    assert_eq!((png.width(), png.height()), (224, 224));
    let other = listed["models"][0]["classes"][1].as_str().unwrap();
    let cam = http(addr, "POST", &format!("/v1/models/circles-a/explain?class={other}"), None, &bytes).unwrap();
    assert_eq!(cam.status, 200);
    assert_eq!(cam.header("x-cnnlab-class"), Some(other));

    let page = http(addr, "GET", "/", None, b"").unwrap();
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains("<title>cnnlab serve</title>") && !html.contains("http://") && !html.contains("https://"),
        "no external resources"
    );
}

/// A PNG whose header claims `w x h` pixels (a valid IHDR, an empty IDAT, IEND): a
/// decompression bomb's header without the bomb.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        let mut typed = kind.to_vec();
        typed.extend_from_slice(data);
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(&typed);
        png.extend_from_slice(&crc32(&typed).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[]);
    chunk(b"IEND", &[]);
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A bad request: method, path, content type, body, the status it must get and what
/// its error must say.
type Bad = (&'static str, &'static str, Option<&'static str>, Vec<u8>, u16, &'static str);

/// The bad requests the issue names, each answered by a status and one line of JSON.
fn bad_requests(jpeg: &[u8]) -> Vec<Bad> {
    vec![
        ("POST", "/v1/models/circles-a/predict", None, vec![], 400, "body is empty"),
        ("POST", "/v1/models/circles-a/predict", Some("text/plain"), b"just some text\n".to_vec(), 400, "not an image"),
        ("POST", "/v1/models/circles-a/predict", None, jpeg[..jpeg.len() / 2].to_vec(), 400, "truncated JPEG"),
        ("POST", "/v1/models/circles-a/predict", None, png_claiming(60000, 60000), 400, "60000x60000"),
        ("POST", "/v1/models/nobody/predict", None, jpeg.to_vec(), 404, "no model named \"nobody\""),
        ("GET", "/v1/models/circles-a/predict", None, vec![], 405, "method not allowed"),
        ("DELETE", "/v1/predict", None, vec![], 405, "method not allowed"),
        ("GET", "/no/such/path", None, vec![], 404, "no such endpoint"),
        ("POST", "/v1/models/circles-a/predict?top=0", None, jpeg.to_vec(), 400, "top must be at least 1"),
        ("POST", "/v1/models/circles-a/predict?top=many", None, jpeg.to_vec(), 400, "top"),
        ("POST", "/v1/models/circles-a/explain?class=dragon", None, jpeg.to_vec(), 400, "\"dragon\" is not one of"),
        (
            "POST",
            "/v1/models/circles-a/predict",
            Some("multipart/form-data; boundary=x"),
            b"--x\r\nbroken".to_vec(),
            400,
            "",
        ),
    ]
}

/// Bad input never hurts the server: every case is a 4xx with one line of JSON, a
/// body over `--max-body-mb` is a 413, then a load of 1,000 requests at concurrency
/// 16 with a third bad: no good request fails, every bad one is a 4xx, and the server
/// still answers.
#[test]
fn serve_survives_bad_input_and_load() {
    let m = models();
    let server = serve(&[m.run_a.to_str().unwrap(), "--max-body-mb", "1"], &m.dir);
    let addr = server.addr.clone();
    let jpeg = std::fs::read(&m.images[1]).unwrap();
    let png = std::fs::read(&m.images[0]).unwrap();
    for (method, path, content_type, body, status, needle) in bad_requests(&jpeg) {
        let answer = http(&addr, method, path, content_type, &body).unwrap();
        println!("{method} {path}: {} {}", answer.status, String::from_utf8_lossy(&answer.body));
        answer.assert_error(status, needle);
    }
    let big = vec![0u8; 3 << 20];
    http(&addr, "POST", "/v1/models/circles-a/predict", None, &big)
        .unwrap()
        .assert_error(413, "over the server's limit");

    let bad = bad_requests(&jpeg);
    let next = AtomicUsize::new(0);
    let (good_ok, bad_4xx) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= 1000 {
                    break;
                }
                if i % 3 == 2 {
                    let (method, path, content_type, body, status, _) = &bad[i % bad.len()];
                    let answer = http(&addr, method, path, *content_type, body).unwrap();
                    assert_eq!(answer.status, *status, "{method} {path}");
                    bad_4xx.fetch_add(1, Ordering::Relaxed);
                } else {
                    let body = if i.is_multiple_of(2) { &png } else { &jpeg };
                    let answer = http(&addr, "POST", "/v1/models/circles-a/predict", None, body).unwrap();
                    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
                    assert!(answer.json()["predictions"].as_array().is_some_and(|p| !p.is_empty()));
                    good_ok.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!((good_ok.into_inner(), bad_4xx.into_inner()), (667, 333));
    assert_eq!(http(&addr, "GET", "/v1/models", None, b"").unwrap().status, 200, "alive after the load");
}

/// SIGTERM while a request waits in the batching queue: the request is answered,
/// then the server exits 0; so does SIGINT on an idle server.
#[test]
fn serve_finishes_requests_in_flight_on_sigterm() {
    let m = models();
    for (signal, in_flight) in [("TERM", true), ("INT", false)] {
        // A long batching window keeps the request in flight when the signal comes.
        let mut server = serve(&[m.run_a.to_str().unwrap(), "--max-wait-ms", "1500", "--max-batch", "64"], &m.dir);
        let addr = server.addr.clone();
        let jpeg = std::fs::read(&m.images[1]).unwrap();
        let pending = in_flight
            .then(|| std::thread::spawn(move || http(&addr, "POST", "/v1/models/circles-a/predict", None, &jpeg)));
        std::thread::sleep(Duration::from_millis(500));
        let pid = server.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-s", signal, &pid]).status().unwrap().success());
        if let Some(pending) = pending {
            let answer = pending.join().unwrap().unwrap();
            assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
        }
        let status = server.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "SIG{signal}: {status}");
    }
}

/// The page in a real browser: Debian's Chromium through chromedriver and Selenium
/// (`tests/serve_page.py`) picks an image, reads each model's bars, turns the Grad-CAM
/// overlay on and takes a screenshot; the classes it shows are the API's.
#[test]
fn serve_page_works_in_chromium() {
    let m = models();
    let server = serve(&[m.run_a.to_str().unwrap(), m.folder_b.to_str().unwrap()], &m.dir);
    let python = workspace().join(".venv/bin/python");
    assert!(python.exists(), "needs .venv with selenium (cargo xtask ci installs it)");
    let shot = m.dir.join("page.png");
    let out = std::process::Command::new(python)
        .arg(workspace().join("crates/cli/tests/serve_page.py"))
        .args([&format!("http://{}/", server.addr), m.images[0].to_str().unwrap(), shot.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bytes = std::fs::read(&m.images[0]).unwrap();
    let api = http(&server.addr, "POST", "/v1/predict?top=5", None, &bytes).unwrap().json();
    for (card, result) in shown["cards"].as_array().unwrap().iter().zip(api["results"].as_array().unwrap()) {
        assert_eq!(card["model"], result["model"]);
        let classes: Vec<&str> =
            result["predictions"].as_array().unwrap().iter().map(|p| p["class"].as_str().unwrap()).collect();
        let shown: Vec<&str> = card["classes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(shown, classes);
        assert!(card["overlay_width"].as_u64().unwrap() >= 224, "the Grad-CAM overlay loaded: {card}");
    }
    assert_eq!(shown["cards"].as_array().unwrap().len(), 2);
    assert!(image::open(&shot).is_ok(), "the screenshot is a PNG");
}
