//! report.html: the same content as REPORT.md, with the plots inline.

use std::fmt::Write as _;
use std::path::Path;

use super::collect::Content;
use super::tables::{self, Table};

pub(super) fn render(c: &Content<'_>) -> String {
    let rel = |p: &Path| p.strip_prefix(c.root).unwrap_or(p).display().to_string();
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cnnlab report</title>\n<style>\
         body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px}th{background:#eef}\
         td{white-space:nowrap}td:last-child{white-space:normal}\
         img{max-width:100%;margin:4px;border:1px solid #ddd}</style></head><body>\n<h1>cnnlab report</h1>\n",
    );
    let runs = tables::finished_runs(c.runs.len());
    let _ = writeln!(html, "<p>{runs} under <code>{}</code>.</p>", escape(&c.root.display().to_string()));
    html.push_str(&table(&tables::runs(&c.runs)));
    let _ = writeln!(html, "<p>{}</p>", escape(tables::INTERVALS_NOTE));
    let _ = writeln!(html, "<p>{}</p>", escape(&tables::SPEED_NOTE.replace('`', "")));
    if !c.targets.is_empty() {
        let _ = write!(html, "<h2>Targets</h2>\n{}", table(&tables::targets(&c.targets)));
    }
    if !c.finetuned.is_empty() {
        let _ = write!(html, "<h2>From scratch vs fine-tuned</h2>\n{}", table(&tables::finetuned(&c.finetuned)));
    }
    for t in &c.comparisons {
        let (title, note) = (escape(&t.title), escape(&tables::method_note(t)));
        let _ = write!(html, "<h2>{title}</h2>\n{}<p>{note}</p>\n", table(&tables::comparison(t)));
        if let Some(note) = tables::other_recipes_note(t) {
            let _ = writeln!(html, "<p>{}</p>", escape(&note.replace('`', "")));
        }
    }
    for s in &c.studies {
        let _ = write!(
            html,
            "<h2>Tuning: {}</h2>\n<p>{}</p>\n{}",
            escape(&s.id),
            escape(&tables::study_summary(s)),
            table(&tables::study_trials(s))
        );
        if !s.importance.is_empty() {
            let _ = writeln!(html, "{}<p>{}</p>", table(&tables::study_importance(s)), escape(tables::IMPORTANCE_NOTE));
        }
        for v in &s.verdicts {
            let _ = writeln!(html, "<p>{}</p>", escape(v));
        }
        html.push_str("<div>\n");
        for (what, p) in &s.plots {
            let _ = writeln!(html, "<img src=\"{}\" alt=\"{}\">", escape(&rel(p)), escape(what));
        }
        html.push_str("</div>\n");
    }
    let compared = super::tuning::compared(&c.studies);
    if !compared.is_empty() {
        html.push_str("<h2>Tuning compared</h2>\n");
        for line in &compared {
            let _ = writeln!(html, "<p>{}</p>", escape(line));
        }
    }
    html.push_str("<h2>Runs</h2>\n");
    for r in &c.runs {
        let _ = writeln!(html, "<h3>{}</h3>", escape(&r.id));
        html.push_str(&table(&tables::details(r)));
        if let Some(note) = tables::plots_note(r, &rel) {
            let _ = writeln!(html, "<p>{}</p>", escape(&note.replace('`', "")));
        }
        html.push_str("<div>\n");
        for (what, p) in &r.plots {
            let title = if what == "top losses" { tables::top_losses_title(r) } else { what.clone() };
            let (src, alt, title) = (escape(&rel(p)), escape(what), escape(&title));
            let _ = writeln!(html, "<img src=\"{src}\" alt=\"{alt}\" title=\"{title}\">");
        }
        html.push_str("</div>\n");
        if !r.confused.is_empty() {
            let _ = write!(html, "<p>Most confused on the test set:</p>\n{}", table(&tables::confused(r)));
        }
    }
    html.push_str("</body></html>\n");
    html
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn table(t: &Table) -> String {
    let mut s = String::from("<table>\n<tr>");
    for h in &t.header {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    s.push_str("</tr>\n");
    for r in &t.rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", escape(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    s
}
