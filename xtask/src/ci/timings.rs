//! Where CI's minutes go: every phase's wall time, printed as a table at the end of
//! `cargo xtask ci` (also when a phase fails) and written to `target/ci-timings.json`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

/// One phase of a CI run.
#[derive(Debug, Serialize)]
pub(crate) struct Phase {
    pub(crate) name: String,
    pub(crate) seconds: f64,
    /// What ran, in a few words (the commands or the tests).
    pub(crate) what: String,
    pub(crate) ok: bool,
}

/// The phases of one run, in the order they finished.
#[derive(Debug)]
pub(crate) struct Timings {
    started: Instant,
    pub(crate) phases: Vec<Phase>,
}

#[derive(Serialize)]
struct Summary<'a> {
    total_seconds: f64,
    ok: bool,
    phases: &'a [Phase],
}

impl Timings {
    pub(crate) fn new() -> Self {
        Timings { started: Instant::now(), phases: Vec::new() }
    }

    /// Runs `f` as the phase `name` and records its wall time, failed or not.
    pub(crate) fn phase<T>(&mut self, name: &str, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        eprintln!("xtask: ci phase `{name}`: {what}");
        let start = Instant::now();
        let result = f();
        self.record(name, what, start.elapsed().as_secs_f64(), result.is_ok());
        result
    }

    /// Adds a phase measured elsewhere (e.g. on another thread).
    pub(crate) fn record(&mut self, name: &str, what: &str, seconds: f64, ok: bool) {
        self.phases.push(Phase { name: name.to_owned(), seconds, what: what.to_owned(), ok });
    }

    pub(crate) fn total_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The table `cargo xtask ci` prints at its end.
    pub(crate) fn table(&self) -> String {
        let width = self.phases.iter().map(|p| p.name.len()).max().unwrap_or(5).max(5);
        let mut out = format!("{:<width$}  {:>8}  what ran\n", "phase", "seconds");
        for p in &self.phases {
            let mark = if p.ok { "" } else { "  FAILED" };
            out += &format!("{:<width$}  {:>8.1}  {}{mark}\n", p.name, p.seconds, p.what);
        }
        out += &format!(
            "{:<width$}  {:>8.1}  (wall, from the start of `cargo xtask ci`)\n",
            "total",
            self.total_seconds()
        );
        out
    }

    /// Prints the table and writes `path` (JSON: total, ok, phases).
    pub(crate) fn report(&self, path: &Path) -> Result<()> {
        eprint!("\nxtask: where CI's time went\n{}", self.table());
        let summary =
            Summary { total_seconds: self.total_seconds(), ok: self.phases.iter().all(|p| p.ok), phases: &self.phases };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_phase_is_recorded_and_marked() {
        let mut t = Timings::new();
        t.phase("fmt", "cargo fmt --check", || Ok(())).unwrap();
        let err = t.phase("tests", "cargo test", || -> Result<()> { anyhow::bail!("boom") });
        assert!(err.is_err());
        assert_eq!(t.phases.len(), 2);
        assert!(t.phases[0].ok && !t.phases[1].ok);
        let table = t.table();
        assert!(table.lines().nth(2).unwrap().ends_with("cargo test  FAILED"), "{table}");
        assert!(table.lines().last().unwrap().starts_with("total"), "{table}");

        let dir = std::env::temp_dir().join(format!("xtask-timings-{}", std::process::id()));
        let path = dir.join("ci-timings.json");
        t.report(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["phases"][1]["name"], "tests");
        assert_eq!(json["phases"][1]["ok"], false);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
