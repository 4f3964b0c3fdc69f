//! A load generator for `cnnlab serve` (a benchmark, not a test): CONCURRENCY client
//! threads, each on its own keep-alive HTTP/1.1 connection, POST the image files given
//! to `/v1/models/MODEL/predict` in turn for SECONDS, and it prints requests/s and the
//! latency percentiles as JSON.
//!
//!     cnnlab serve RUN --port 8080 &
//!     cargo run --release -p cnnlab-cli --example serve_load -- 127.0.0.1:8080 MODEL 16 10 a.jpg b.jpg ...

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One request on an open connection; the status and the time it took.
fn post(stream: &mut BufReader<TcpStream>, addr: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Duration)> {
    let start = Instant::now();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n", body.len());
    // One write: headers and body in separate small writes would meet Nagle's
    // algorithm and the server's delayed ACK (40 ms per request).
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.get_mut().write_all(&request)?;
    let mut line = String::new();
    stream.read_line(&mut line)?;
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = 0;
    loop {
        line.clear();
        stream.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut answer = vec![0; length];
    stream.read_exact(&mut answer)?;
    Ok((status, start.elapsed()))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, model, concurrency, seconds, files @ ..] = &args[..] else {
        eprintln!("usage: serve_load ADDR MODEL CONCURRENCY SECONDS IMAGE...");
        std::process::exit(2);
    };
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY is a number");
    let seconds: f64 = seconds.parse().expect("SECONDS is a number");
    let images: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).expect("the image files read")).collect();
    assert!(!images.is_empty(), "give image files");
    let path = format!("/v1/models/{model}/predict?top=1");
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..concurrency)
            .map(|t| {
                let (images, path) = (&images, &path);
                s.spawn(move || {
                    let tcp = TcpStream::connect(addr.as_str()).expect("the server listens");
                    tcp.set_nodelay(true).expect("TCP_NODELAY");
                    let mut stream = BufReader::new(tcp);
                    let (mut times, mut failed) = (Vec::new(), 0);
                    let mut i = t;
                    while Instant::now() < until {
                        match post(&mut stream, addr, path, &images[i % images.len()]) {
                            Ok((200, took)) => times.push(took),
                            _ => failed += 1,
                        }
                        i += concurrency;
                    }
                    (times, failed)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let failed: usize = results.iter().map(|r| r.1).sum();
    let mut times: Vec<f64> = results.into_iter().flat_map(|r| r.0).map(|d| d.as_secs_f64() * 1e3).collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    println!(
        "{}",
        serde_json::json!({
            "model": model, "concurrency": concurrency, "requests": times.len(), "failed": failed,
            "requests_per_sec": (times.len() as f64 / elapsed * 10.0).round() / 10.0,
            "p50_ms": (at(0.5) * 100.0).round() / 100.0, "p99_ms": (at(0.99) * 100.0).round() / 100.0,
        })
    );
}
