//! REPORT.md.

use std::fmt::Write as _;
use std::path::Path;

use super::collect::Content;
use super::tables::{self, Table};

pub(super) fn render(c: &Content<'_>) -> String {
    let rel = |p: &Path| p.strip_prefix(c.root).unwrap_or(p).display().to_string();
    let mut md = String::from("# cnnlab report\n\n");
    let runs = tables::finished_runs(c.runs.len());
    let _ = writeln!(md, "{runs} under `{}`, written by `cnnlab report`.\n", c.root.display());
    md.push_str(&table(&tables::runs(&c.runs)));
    let _ = writeln!(md, "\n{}\n\n{}", tables::INTERVALS_NOTE, tables::SPEED_NOTE);
    if !c.targets.is_empty() {
        let _ = write!(md, "\n## Targets\n\n{}", table(&tables::targets(&c.targets)));
    }
    if !c.finetuned.is_empty() {
        let _ = write!(md, "\n## From scratch vs fine-tuned\n\n{}", table(&tables::finetuned(&c.finetuned)));
    }
    for t in &c.comparisons {
        let _ = write!(md, "\n## {}\n\n{}\n{}\n", t.title, table(&tables::comparison(t)), tables::method_note(t));
        if let Some(note) = tables::other_recipes_note(t) {
            let _ = writeln!(md, "\n{note}");
        }
    }
    for s in &c.studies {
        let _ =
            write!(md, "\n## Tuning: {}\n\n{}\n\n{}", s.id, tables::study_summary(s), table(&tables::study_trials(s)));
        if !s.importance.is_empty() {
            let _ = write!(md, "\n{}\n{}\n", table(&tables::study_importance(s)), tables::IMPORTANCE_NOTE);
        }
        for v in &s.verdicts {
            let _ = writeln!(md, "\n{v}");
        }
        md.push('\n');
        for (what, p) in &s.plots {
            let _ = writeln!(md, "![{what}]({})", rel(p));
        }
    }
    let compared = super::tuning::compared(&c.studies);
    if !compared.is_empty() {
        let _ = writeln!(md, "\n## Tuning compared\n\n{}", compared.join("\n\n"));
    }
    md.push_str("\n## Runs\n");
    for r in &c.runs {
        let _ = writeln!(md, "\n### {}\n", r.id);
        md.push_str(&table(&tables::details(r)));
        if let Some(note) = tables::plots_note(r, &rel) {
            let _ = writeln!(md, "\n{note}");
        }
        md.push('\n');
        for (what, p) in &r.plots {
            let _ = writeln!(md, "![{what}]({})", rel(p));
        }
        if !r.confused.is_empty() {
            let _ = write!(md, "\nMost confused on the test set:\n\n{}", table(&tables::confused(r)));
        }
    }
    md
}

fn table(t: &Table) -> String {
    let mut s = format!("| {} |\n|{}\n", t.header.join(" | "), "---|".repeat(t.header.len()));
    for r in &t.rows {
        let _ = writeln!(s, "| {} |", r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
    }
    s
}
