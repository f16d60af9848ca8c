//! Two runs side by side, for a regression between two builds (or two devices, or two network
//! profiles): each figure and each assertion of run A and run B, with the change from A to B and
//! whether it is for the worse.

use std::fmt;
use std::fmt::Write as _;
use std::path::Path;

use super::charts;
use super::figures::{self, Better, FigureRow, Kind};
use super::html::{self, escape};
use super::{COMPARE_FILE, Report, ReportError, draw_plots, write_file};
use crate::record::{Check, RunRecord};

/// An amount that changed by at most this fraction counts as the same (run-to-run noise).
const TOLERANCE: f64 = 0.05;

/// How B did against A on one figure or assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    /// B is worse: more than 5 % worse for an amount, any worse for a count, or an assertion A
    /// met and B did not.
    Worse,
    /// B is better, by the same measure.
    Better,
    /// No change that counts.
    Same,
    /// Changed, but neither better nor worse (a count the scenario sets), or present in one run
    /// only.
    Unranked,
}

impl Trend {
    /// The word marking the change in tables; empty when there is nothing to mark.
    fn mark(self) -> &'static str {
        match self {
            Trend::Worse => "WORSE",
            Trend::Better => "better",
            Trend::Same | Trend::Unranked => "",
        }
    }

    /// The table row's CSS class.
    fn class(self) -> &'static str {
        match self {
            Trend::Worse => " class=\"worse\"",
            Trend::Better => " class=\"better\"",
            Trend::Same | Trend::Unranked => "",
        }
    }
}

/// One figure in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureChange {
    /// The figure.
    pub name: String,
    /// A's value with its unit (`—` when not measured).
    pub a: String,
    /// B's value with its unit.
    pub b: String,
    /// B against A: a ratio for amounts (`×1.25 (+25 %)`), a difference for counts (`+2`).
    pub change: String,
    /// Whether B is worse.
    pub trend: Trend,
}

/// One assertion in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckChange {
    /// The assertion.
    pub name: String,
    /// Its bound, or both bounds when the runs' scenarios differ.
    pub target: String,
    /// What A measured (`—` when A's scenario does not assert it).
    pub a: String,
    /// Whether A met it, when asserted.
    pub a_pass: Option<bool>,
    /// What B measured.
    pub b: String,
    /// Whether B met it, when asserted.
    pub b_pass: Option<bool>,
    /// Whether B is worse: A met it and B did not.
    pub trend: Trend,
}

/// Run B against run A; its `Display` is a table for the terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Run A in a line: scenario, device, network, build, start and verdict.
    pub a: String,
    /// Run B in a line.
    pub b: String,
    /// Every figure, in the record's order.
    pub figures: Vec<FigureChange>,
    /// Every assertion of either run, A's first.
    pub assertions: Vec<CheckChange>,
}

impl Comparison {
    /// Whether B is worse than A on any figure or assertion.
    pub fn regressed(&self) -> bool {
        self.worse().next().is_some()
    }

    /// The names of what got worse: figures, then assertions.
    fn worse(&self) -> impl Iterator<Item = String> + '_ {
        let figures = self
            .figures
            .iter()
            .filter(|f| f.trend == Trend::Worse)
            .map(|f| f.name.clone());
        let assertions = self
            .assertions
            .iter()
            .filter(|c| c.trend == Trend::Worse)
            .map(|c| format!("assertion `{}`", c.name));
        figures.chain(assertions)
    }

    /// One sentence on what got worse.
    fn verdict(&self) -> String {
        let worse: Vec<String> = self.worse().collect();
        if worse.is_empty() {
            "B is not worse than A on any figure or assertion.".into()
        } else {
            format!("B is worse than A on: {}.", worse.join(", "))
        }
    }
}

/// Sets run B against run A.
pub fn compare(a: &RunRecord, b: &RunRecord) -> Comparison {
    Comparison {
        a: describe(a),
        b: describe(b),
        figures: figures::rows(&a.figures)
            .iter()
            .zip(figures::rows(&b.figures).iter())
            .map(|(fa, fb)| figure_change(fa, fb))
            .collect(),
        assertions: check_changes(&a.assertions, &b.assertions),
    }
}

/// Writes `compare.png` (A and B overlaid: encoder bitrate, p95 latency, CPU and RSS; left out
/// when neither run has samples) and `compare.html` (the comparison's tables and the plot) into
/// `dir`.
pub fn write_comparison(
    cmp: &Comparison,
    a: &RunRecord,
    b: &RunRecord,
    dir: &Path,
) -> Result<Report, ReportError> {
    let (plots_html, plots) = draw_plots(&[charts::compare_plot(a, b)], dir)?;
    let html = dir.join(COMPARE_FILE);
    write_file(&html, &page(cmp, a, b, &plots_html))?;
    Ok(Report { html, plots })
}

/// A run in a line.
fn describe(run: &RunRecord) -> String {
    format!(
        "{} on {}/{}, {}, started {}: {}",
        run.scenario,
        run.device,
        run.network,
        run.build,
        html::utc(run.started_wall_ms),
        if run.pass { "PASS" } else { "FAIL" }
    )
}

/// One figure in both runs.
fn figure_change(a: &FigureRow, b: &FigureRow) -> FigureChange {
    let (change, trend) = match (a.value, b.value) {
        (Some(x), Some(y)) => change(a, x, y),
        (None, None) => ("—".to_string(), Trend::Same),
        _ => ("—".to_string(), Trend::Unranked),
    };
    FigureChange {
        name: a.name.to_string(),
        a: a.text.clone(),
        b: b.text.clone(),
        change,
        trend,
    }
}

/// The change from `x` (A) to `y` (B) of the figure `row`, in words, and its trend.
fn change(row: &FigureRow, x: f64, y: f64) -> (String, Trend) {
    let finite = x.is_finite() && y.is_finite();
    let text = if x == y {
        "same".to_string()
    } else if !finite {
        "—".to_string()
    } else if row.kind == Kind::Count {
        format!("{:+}", (y - x).round() as i64)
    } else if x != 0.0 {
        let ratio = y / x;
        let percent = ((ratio - 1.0) * 100.0).round();
        if percent == 0.0 {
            format!("×{ratio:.2} (±0 %)")
        } else {
            format!("×{ratio:.2} ({percent:+} %)")
        }
    } else {
        let sign = if y > x { "+" } else { "-" };
        format!(
            "{sign}{}",
            figures::with_unit(Some((y - x).abs()), row.unit)
        )
    };
    let counts = if row.kind == Kind::Amount && finite && x != 0.0 {
        ((y - x) / x).abs() > TOLERANCE
    } else {
        x != y
    };
    let trend = match (counts, row.better) {
        (false, _) => Trend::Same,
        (true, Better::Neither) => Trend::Unranked,
        (true, Better::Lower) if y > x => Trend::Worse,
        (true, Better::Higher) if y < x => Trend::Worse,
        (true, _) => Trend::Better,
    };
    (text, trend)
}

/// Every assertion of either run (A's order, then B's own), in both runs.
fn check_changes(a: &[Check], b: &[Check]) -> Vec<CheckChange> {
    let mut names: Vec<&str> = a.iter().map(|c| c.name.as_str()).collect();
    for check in b {
        if !names.contains(&check.name.as_str()) {
            names.push(&check.name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let (ca, cb) = (
                a.iter().find(|c| c.name == name),
                b.iter().find(|c| c.name == name),
            );
            let target = match (ca, cb) {
                (Some(x), Some(y)) if x.target != y.target => {
                    format!("A: {} / B: {}", x.target, y.target)
                }
                (Some(c), _) | (None, Some(c)) => c.target.clone(),
                (None, None) => String::new(),
            };
            let trend = match (ca.map(|c| c.pass), cb.map(|c| c.pass)) {
                (Some(true), Some(false)) => Trend::Worse,
                (Some(false), Some(true)) => Trend::Better,
                (Some(_), Some(_)) => Trend::Same,
                _ => Trend::Unranked,
            };
            let measured = |c: Option<&Check>| c.map_or("—".to_string(), |c| c.measured.clone());
            CheckChange {
                name: name.to_string(),
                target,
                a: measured(ca),
                a_pass: ca.map(|c| c.pass),
                b: measured(cb),
                b_pass: cb.map(|c| c.pass),
                trend,
            }
        })
        .collect()
}

/// A measured value with its verdict, for the terminal.
fn with_verdict(measured: &str, pass: Option<bool>) -> String {
    match pass {
        Some(true) => format!("{measured} (pass)"),
        Some(false) => format!("{measured} (FAIL)"),
        None => measured.to_string(),
    }
}

/// Rows as columns padded to their widest cell, two spaces apart, under a rule.
fn write_table(f: &mut fmt::Formatter<'_>, rows: &[Vec<String>]) -> fmt::Result {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|n| {
            rows.iter()
                .filter_map(|r| r.get(n))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (n, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let pad = width - cell.chars().count();
            let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
        }
        writeln!(f, "{}", line.trim_end())?;
        if n == 0 {
            let total = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
            writeln!(f, "{}", "-".repeat(total))?;
        }
    }
    Ok(())
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "A: {}", self.a)?;
        writeln!(f, "B: {}", self.b)?;
        writeln!(f)?;
        let header = |cells: &[&str]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let mut rows = vec![header(&["figure", "A", "B", "B vs A", ""])];
        rows.extend(self.figures.iter().map(|c| {
            vec![
                c.name.clone(),
                c.a.clone(),
                c.b.clone(),
                c.change.clone(),
                c.trend.mark().to_string(),
            ]
        }));
        write_table(f, &rows)?;
        writeln!(f)?;
        if self.assertions.is_empty() {
            writeln!(f, "Neither run has an assertion.")?;
        } else {
            let mut rows = vec![header(&["assertion", "target", "A", "B", ""])];
            rows.extend(self.assertions.iter().map(|c| {
                vec![
                    c.name.clone(),
                    c.target.clone(),
                    with_verdict(&c.a, c.a_pass),
                    with_verdict(&c.b, c.b_pass),
                    c.trend.mark().to_string(),
                ]
            }));
            write_table(f, &rows)?;
        }
        writeln!(f)?;
        writeln!(f, "{}", self.verdict())
    }
}

/// The comparison's page.
fn page(cmp: &Comparison, a: &RunRecord, b: &RunRecord, plots_html: &str) -> String {
    let mut body = String::from("<h1>Comparison: run B against run A</h1>\n");
    let _ = writeln!(body, "<p><strong>{}</strong></p>", escape(&cmp.verdict()));
    body.push_str(
        "<table>\n<tr><th>run</th><th>scenario</th><th>device</th><th>network</th>\
         <th>build</th><th>started</th><th>verdict</th></tr>\n",
    );
    for (name, run) in [("A", a), ("B", b)] {
        let _ = writeln!(
            body,
            "<tr><th>{name}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>",
            escape(&run.scenario),
            escape(&run.device),
            escape(&run.network),
            escape(&run.build),
            escape(&html::utc(run.started_wall_ms)),
            html::verdict(run.pass)
        );
    }
    body.push_str("</table>\n");
    for (name, run) in [("A", a), ("B", b)] {
        if let Some(failure) = &run.failure {
            let _ = writeln!(
                body,
                "<div class=\"failure\"><strong>Run {name} did not complete:</strong> {}</div>",
                escape(failure)
            );
        }
    }

    body.push_str(
        "<h2>Figures</h2>\n<p class=\"note\">Amounts that changed by at most 5 % count as the \
         same.</p>\n<table>\n<tr><th>figure</th><th>A</th><th>B</th><th>B vs A</th><th></th></tr>\n",
    );
    for c in &cmp.figures {
        let _ = writeln!(
            body,
            "<tr{}><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            c.trend.class(),
            escape(&c.name),
            escape(&c.a),
            escape(&c.b),
            escape(&c.change),
            c.trend.mark()
        );
    }
    body.push_str("</table>\n<h2>Assertions</h2>\n");
    if cmp.assertions.is_empty() {
        body.push_str("<p class=\"note\">Neither run has an assertion.</p>\n");
    } else {
        body.push_str(
            "<table>\n<tr><th>assertion</th><th>target</th><th>A</th><th>B</th><th></th></tr>\n",
        );
        let cell = |measured: &str, pass: Option<bool>| match pass {
            Some(pass) => format!("{} {}", escape(measured), html::verdict(pass)),
            None => escape(measured),
        };
        for c in &cmp.assertions {
            let _ = writeln!(
                body,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                c.trend.class(),
                escape(&c.name),
                escape(&c.target),
                cell(&c.a, c.a_pass),
                cell(&c.b, c.b_pass),
                c.trend.mark()
            );
        }
        body.push_str("</table>\n");
    }
    body.push_str("<h2>Plots</h2>\n");
    body.push_str(plots_html);
    html::page(&format!("Comparison: {} against {}", cmp.b, cmp.a), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::record;

    /// Run A, and run B with a worse p95 latency, a failed latency assertion and less CPU.
    fn runs() -> (RunRecord, RunRecord) {
        let a = RunRecord {
            build: "fieldcast 0.1.0".into(),
            ..record()
        };
        let mut b = RunRecord {
            build: "fieldcast 0.2.0 <rc1>".into(),
            ..record()
        };
        b.figures.latency_p95_ms = Some(2600);
        b.figures.cpu_pct_of_device = Some(30.0);
        b.figures.sales_taken = 11;
        b.figures.peak_rss_mb = Some(197.0);
        b.assertions[0].pass = false;
        b.assertions[0].measured = "25 s".into();
        for sample in &mut b.samples {
            sample.latency_p95_ms = sample.latency_p95_ms.map(|l| l * 1.4);
            sample.cpu_pct = sample.cpu_pct.map(|c| c * 0.65);
        }
        (a, b)
    }

    fn figure<'a>(cmp: &'a Comparison, name: &str) -> &'a FigureChange {
        cmp.figures.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn a_worse_p95_latency_is_marked() {
        let (a, b) = runs();
        let cmp = compare(&a, &b);
        let p95 = figure(&cmp, "viewer latency p95");
        assert_eq!(
            (p95.a.as_str(), p95.b.as_str(), p95.change.as_str()),
            ("1850 ms", "2600 ms", "×1.41 (+41 %)")
        );
        assert_eq!(p95.trend, Trend::Worse);
        assert_eq!(figure(&cmp, "mean CPU while live").trend, Trend::Better);
        assert_eq!(figure(&cmp, "peak RSS").trend, Trend::Same, "within 5 %");
        assert_eq!(
            figure(&cmp, "sales taken by the app").trend,
            Trend::Unranked
        );
        assert_eq!(figure(&cmp, "sales taken by the app").change, "-1");
        assert_eq!(figure(&cmp, "viewer latency p50").change, "same");
        assert_eq!(cmp.assertions[0].trend, Trend::Worse);
        assert_eq!(cmp.assertions[1].trend, Trend::Same);
        assert!(cmp.regressed());
        assert!(!compare(&a, &a).regressed());

        let text = cmp.to_string();
        let line = text
            .lines()
            .find(|l| l.starts_with("viewer latency p95"))
            .unwrap();
        assert!(line.ends_with("WORSE"), "{line}");
        assert!(
            text.contains("B is worse than A on: viewer latency p95, assertion `live within`.")
        );
        assert!(text.contains("25 s (FAIL)"));
    }

    #[test]
    fn never_back_is_worse_and_a_change_from_zero_is_a_difference() {
        let (mut a, mut b) = runs();
        b.figures.back_after_s = vec![None];
        a.figures.throttled_s = Some(0.0);
        b.figures.throttled_s = Some(2.5);
        let cmp = compare(&a, &b);
        let back = figure(&cmp, "viewer back after each outage");
        assert_eq!((back.b.as_str(), back.trend), ("never", Trend::Worse));
        let throttled = figure(&cmp, "CPU throttled by the device limit");
        assert_eq!(
            (throttled.change.as_str(), throttled.trend),
            ("+2.5 s", Trend::Worse)
        );
        a.figures.throttled_s = None;
        let cmp = compare(&a, &b);
        assert_eq!(
            figure(&cmp, "CPU throttled by the device limit").trend,
            Trend::Unranked
        );
    }

    #[test]
    fn assertions_of_one_run_only_are_listed() {
        let (a, mut b) = runs();
        b.assertions.push(Check {
            name: "peak RSS".into(),
            target: "at most 400 MB".into(),
            measured: "197 MB".into(),
            pass: true,
        });
        b.assertions[1].target = "at most 2000 ms".into();
        let cmp = compare(&a, &b);
        let extra = cmp.assertions.last().unwrap();
        assert_eq!((extra.a.as_str(), extra.trend), ("—", Trend::Unranked));
        assert_eq!(
            cmp.assertions[1].target,
            "A: at most 1500 ms / B: at most 2000 ms"
        );
    }

    #[test]
    fn the_comparison_page_embeds_the_overlay_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = runs();
        let cmp = compare(&a, &b);
        let report = write_comparison(&cmp, &a, &b, dir.path()).unwrap();
        assert_eq!(report.html, dir.path().join(COMPARE_FILE));
        assert_eq!(report.plots, [dir.path().join("compare.png")]);
        let png = std::fs::read(&report.plots[0]).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
        let html = std::fs::read_to_string(&report.html).unwrap();
        assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 1);
        assert!(html.contains("fieldcast 0.2.0 &lt;rc1&gt;") && !html.contains("<rc1>"));
        assert!(html.contains("<tr class=\"worse\"><td>viewer latency p95</td>"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn runs_without_samples_compare_without_a_plot() {
        let dir = tempfile::tempdir().unwrap();
        let a = RunRecord {
            samples: Vec::new(),
            ..record()
        };
        let cmp = compare(&a, &a);
        let report = write_comparison(&cmp, &a, &a, dir.path()).unwrap();
        assert!(report.plots.is_empty());
        let html = std::fs::read_to_string(&report.html).unwrap();
        assert!(html.contains("compare.png is not drawn: no data"));
    }
}
