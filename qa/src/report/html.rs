//! Self-contained HTML pages: inline CSS, PNGs as `data:` URIs, no script and nothing fetched,
//! so a page reads the same offline, attached to a ticket or mailed.

use std::fmt::Write as _;

use base64::Engine as _;
use time::OffsetDateTime;
use time::macros::format_description;

use super::charts::Plot;
use super::figures;
use crate::record::RunRecord;

/// The page's style.
const STYLE: &str = "\
body { font-family: 'DejaVu Sans', Verdana, sans-serif; font-size: 16px; color: #222; \
margin: 0 auto; padding: 24px; max-width: 1460px; line-height: 1.45; }
h1 { font-size: 28px; margin: 0 0 8px; }
h2 { font-size: 22px; margin: 32px 0 10px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #d0d0d0; padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #f1f1f1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.meta th { background: none; border: none; padding: 2px 16px 2px 0; color: #555; }
table.meta td { border: none; padding: 2px 0; }
.verdict { display: inline-block; font-weight: bold; padding: 2px 12px; border-radius: 4px; \
color: #fff; }
.pass { background: #1e7e34; color: #fff; }
.fail { background: #c62828; color: #fff; }
.worse { background: #fde0e0; }
.better { background: #e0f4e4; }
.failure { border-left: 6px solid #c62828; background: #fdecec; padding: 8px 12px; margin: 12px 0; }
.note { color: #555; font-style: italic; }
figure { margin: 16px 0 28px; }
figure img { width: 100%; max-width: 1400px; height: auto; border: 1px solid #ddd; }
figcaption { color: #444; margin-top: 6px; }
";

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for element content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A moment, ms since the Unix epoch, as `2025-03-01 09:30:00 UTC`.
pub(super) fn utc(ms: u64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("{ms} ms after the Unix epoch"))
}

/// `PASS` or `FAIL`, coloured.
pub(super) fn verdict(pass: bool) -> &'static str {
    if pass {
        "<span class=\"verdict pass\">PASS</span>"
    } else {
        "<span class=\"verdict fail\">FAIL</span>"
    }
}

/// A whole page.
pub(super) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// A plot embedded as a PNG `data:` URI, with its caption.
pub(super) fn figure(plot: &Plot, png: &[u8]) -> String {
    format!(
        "<figure>\n<img src=\"data:image/png;base64,{}\" alt=\"{}\">\n\
         <figcaption>{} <span class=\"note\">({})</span></figcaption>\n</figure>\n",
        base64::engine::general_purpose::STANDARD.encode(png),
        escape(&plot.caption),
        escape(&plot.caption),
        escape(plot.file),
    )
}

/// A note in place of a plot that has nothing to draw.
pub(super) fn not_drawn(plot: &Plot, missing: &str) -> String {
    format!(
        "<p class=\"note\">{} is not drawn: no data ({}). It would show: {}</p>\n",
        escape(plot.file),
        escape(missing),
        escape(&plot.caption),
    )
}

/// The report of one run.
pub(super) fn report_page(record: &RunRecord, plots_html: &str) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{} {}</h1>\n<p>{}</p>",
        escape(&record.scenario),
        verdict(record.pass),
        escape(&record.description)
    );
    let met = record.assertions.iter().filter(|c| c.pass).count();
    body.push_str("<table class=\"meta\">\n");
    for (name, value) in [
        (
            "device",
            format!(
                "{} ({} host cores)",
                record.device,
                figures::number(record.device_host_cores)
            ),
        ),
        ("network", record.network.clone()),
        ("build", record.build.clone()),
        ("started", utc(record.started_wall_ms)),
        ("duration", format!("{} s", figures::number(record.seconds))),
        (
            "assertions",
            format!("{met} of {} met", record.assertions.len()),
        ),
    ] {
        let _ = writeln!(body, "<tr><th>{name}</th><td>{}</td></tr>", escape(&value));
    }
    body.push_str("</table>\n");
    if let Some(failure) = &record.failure {
        let _ = writeln!(
            body,
            "<div class=\"failure\"><strong>The run did not complete:</strong> {}</div>",
            escape(failure)
        );
    }

    body.push_str("<h2>Assertions</h2>\n");
    if record.assertions.is_empty() {
        body.push_str("<p class=\"note\">The scenario asserts nothing.</p>\n");
    } else {
        body.push_str(
            "<table>\n<tr><th>assertion</th><th>target</th><th>measured</th><th>verdict</th></tr>\n",
        );
        for check in &record.assertions {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&check.name),
                escape(&check.target),
                escape(&check.measured),
                verdict(check.pass)
            );
        }
        body.push_str("</table>\n");
    }

    body.push_str("<h2>Figures</h2>\n<table>\n<tr><th>figure</th><th>value</th></tr>\n");
    for row in figures::rows(&record.figures) {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(row.name),
            escape(&row.text)
        );
    }
    body.push_str("</table>\n");

    body.push_str("<h2>Plots</h2>\n");
    if record.samples.is_empty() {
        body.push_str(
            "<p class=\"note\">The record has no samples: the plots of measured series are \
             not drawn.</p>\n",
        );
    }
    body.push_str(plots_html);

    body.push_str("<h2>Actions</h2>\n");
    marks_table(&mut body, "action", &record.actions);
    body.push_str("<h2>States</h2>\n");
    marks_table(&mut body, "state", &record.states);
    page(
        &format!(
            "{} {} on {} / {}",
            if record.pass { "PASS" } else { "FAIL" },
            record.scenario,
            record.device,
            record.network
        ),
        &body,
    )
}

/// A table of marks with their times, or a note that there is none.
fn marks_table(body: &mut String, what: &str, marks: &[crate::record::Mark]) {
    if marks.is_empty() {
        let _ = writeln!(body, "<p class=\"note\">No {what} in the record.</p>");
        return;
    }
    let _ = writeln!(body, "<table>\n<tr><th>time (s)</th><th>{what}</th></tr>");
    for mark in marks {
        let _ = writeln!(
            body,
            "<tr><td class=\"num\">{:.1}</td><td>{}</td></tr>",
            mark.t_s,
            escape(&mark.label)
        );
    }
    body.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_740_821_400_000), "2025-03-01 09:30:00 UTC");
        assert!(utc(u64::MAX).ends_with("ms after the Unix epoch"));
    }
}
