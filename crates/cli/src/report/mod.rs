//! `cnnlab report RUNS_DIR`: every finished run under RUNS_DIR compared in one table,
//! the seeds' comparisons with their published numbers beside ours, and per-run plots;
//! written as RUNS_DIR/REPORT.md and RUNS_DIR/report.html (PNG files next to each run,
//! linked relatively, so both open from disk). `collect.rs` reads what the report
//! says once, as typed numbers; `tables.rs` formats them into the cells both
//! renderers share; `markdown.rs` and `html.rs` lay them out; `tuning.rs` reads the
//! studies of `cnnlab tune` for their section.

mod collect;
mod html;
mod markdown;
mod tables;
mod tuning;

use std::path::Path;

use anyhow::Result;
use cnnlab_metrics::stats::Bootstrap;

/// `cnnlab report RUNS [--comparisons FILE]`: writes both files and says where.
pub fn run(root: &Path, comparisons_file: &Path) -> Result<()> {
    let n = write_report(root, comparisons_file)?;
    let (md, html) = (root.join("REPORT.md"), root.join("report.html"));
    println!("{}: {} and {}", tables::finished_runs(n), md.display(), html.display());
    Ok(())
}

/// Writes REPORT.md and report.html into `root`, with the comparison tables of
/// `comparisons` (`configs/comparisons.toml`) when that file exists; returns the
/// number of runs.
fn write_report(root: &Path, comparisons_file: &Path) -> Result<usize> {
    anyhow::ensure!(root.is_dir(), "{} is not a folder of runs", root.display());
    let tables = if comparisons_file.exists() {
        collect::read_comparisons(comparisons_file)?
    } else {
        tracing::info!("no {}: the report has no comparison tables", comparisons_file.display());
        Vec::new()
    };
    let boot = Bootstrap { resamples: 1000, ..Bootstrap::default() };
    let content = collect::collect(root, &tables, &boot)?;
    for (name, text) in [("REPORT.md", markdown::render(&content)), ("report.html", html::render(&content))] {
        cnnlab_run::write_bytes(&root.join(name), text.as_bytes())?;
    }
    Ok(content.runs.len())
}

#[cfg(test)]
mod tests {
    use super::collect::read_comparisons;
    use std::path::Path;

    #[test]
    fn the_repos_comparisons_name_existing_configs() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/comparisons.toml");
        let tables = read_comparisons(&file).unwrap();
        assert!(tables.len() >= 5, "{} tables", tables.len());
        assert!(tables
            .iter()
            .any(|t| t.rows.iter().any(|r| r.run == "seed3-final" && r.seed.as_deref() == Some("0.8090"))));
    }

    #[test]
    fn a_row_naming_no_config_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("cifar10")).unwrap();
        std::fs::write(dir.path().join("cifar10/seed3-final.toml"), "").unwrap();
        let file = dir.path().join("comparisons.toml");
        let text = "[[comparison]]\ntitle = \"t\"\ndataset = \"cifar10\"\nrows = [\n  { run = \"seed3-final\", what = \"a\" },\n  { run = \"seed3-finale\", what = \"b\" },\n]\n";
        std::fs::write(&file, text).unwrap();
        let err = read_comparisons(&file).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:6: comparison row `seed3-finale` names no experiment", file.display())),
            "{err}"
        );
        std::fs::write(&file, text.replace("what = \"b\"", "waht = \"b\"")).unwrap();
        let err = read_comparisons(&file).unwrap_err().to_string();
        assert!(err.contains(":6: unknown field `waht`"), "{err}");
    }
}
