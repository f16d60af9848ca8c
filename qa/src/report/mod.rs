//! The report of a field-lab run, for people: PNG plots of what was measured over the run
//! (bitrate, latency, states and actions, outbox, device) and a self-contained `report.html`
//! (the plots embedded as `data:` URIs, inline CSS, no script, nothing fetched) with the verdict,
//! the assertions, the figures and the actions. Two runs, e.g. two builds on one scenario, are set
//! side by side by [`compare`]: a table for the terminal and `compare.html` with overlay plots.
//!
//! ```no_run
//! use fieldcast_qa::record::RunRecord;
//! use fieldcast_qa::report::{compare, write_comparison, write_report};
//! let dir = std::path::Path::new("runs/market-day");
//! let run = RunRecord::read(dir).unwrap();
//! let report = write_report(&run, dir).unwrap();
//! println!("{}", report.html.display());
//! let before = RunRecord::read(std::path::Path::new("runs/market-day-before")).unwrap();
//! let comparison = compare(&before, &run);
//! println!("{comparison}");
//! write_comparison(&comparison, &before, &run, dir).unwrap();
//! ```

mod charts;
mod compare;
mod figures;
mod html;

use std::fmt;
use std::path::{Path, PathBuf};

pub use compare::{CheckChange, Comparison, FigureChange, Trend, compare, write_comparison};

use crate::plot::PlotError;
use crate::record::RunRecord;
use charts::{Drawing, Plot};

/// The name of a run's report in its directory.
pub const REPORT_FILE: &str = "report.html";
/// The name of the comparison of two runs in the directory it is written to.
pub const COMPARE_FILE: &str = "compare.html";

/// What a report (or a comparison) wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The HTML page.
    pub html: PathBuf,
    /// The PNG plots, in the order the page shows them (those with no data are not written).
    pub plots: Vec<PathBuf>,
}

/// Why a report could not be written.
#[derive(Debug)]
pub enum ReportError {
    /// A file could not be written or read back.
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    Plot {
        /// The PNG file.
        path: PathBuf,
        /// What went wrong.
        source: PlotError,
    },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ReportError::Plot { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReportError::Io { source, .. } => Some(source),
            ReportError::Plot { source, .. } => Some(source),
        }
    }
}

/// Writes the plots of `record` (`bitrate.png`, `latency.png`, `states.png`, `outbox.png`,
/// `device.png`; a plot with no data is left out, and the page says so) and `report.html` into
/// `dir`.
pub fn write_report(record: &RunRecord, dir: &Path) -> Result<Report, ReportError> {
    let (plots_html, plots) = draw_plots(&charts::run_plots(record), dir)?;
    let html = dir.join(REPORT_FILE);
    write_file(&html, &html::report_page(record, &plots_html))?;
    Ok(Report { html, plots })
}

/// Draws each plot that has data into `dir`; returns the HTML of every plot (the image, or a
/// note saying why there is none) and the PNGs written.
fn draw_plots(plots: &[Plot], dir: &Path) -> Result<(String, Vec<PathBuf>), ReportError> {
    let mut html = String::new();
    let mut written = Vec::new();
    for plot in plots {
        match &plot.drawing {
            Drawing::Figure(figure) => {
                let path = dir.join(plot.file);
                figure
                    .write_png(&path)
                    .map_err(|source| ReportError::Plot {
                        path: path.clone(),
                        source,
                    })?;
                let png = std::fs::read(&path).map_err(|source| ReportError::Io {
                    path: path.clone(),
                    source,
                })?;
                html.push_str(&html::figure(plot, &png));
                written.push(path);
            }
            Drawing::NoData(missing) => html.push_str(&html::not_drawn(plot, missing)),
        }
    }
    Ok((html, written))
}

/// Writes `text` to `path`.
fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{Check, Figures, Mark, RunSample};
    use crate::scenario::Assertions;

    /// A 300-second run on a link cut for 20 s, with every series, states and actions.
    pub(crate) fn record() -> RunRecord {
        let outage = (120.0, 140.0);
        let samples = (0..300)
            .map(|n| {
                let t = f64::from(n);
                let down = t >= outage.0 && t < outage.1;
                let live = (6.0..285.0).contains(&t);
                let capacity = if t < 60.0 { 1500.0 } else { 900.0 };
                RunSample {
                    t_s: t,
                    state: if live { "live" } else { "-" }.into(),
                    encoder_kbps: (live && !down).then(|| capacity * 0.8 + (t * 0.7).sin() * 60.0),
                    target_kbps: live.then_some(capacity * 0.8),
                    estimate_kbps: live.then_some(if down { 50.0 } else { capacity * 0.95 }),
                    capacity_kbps: Some(if down { 0.0 } else { capacity }),
                    encoder_fps: live.then_some(25.0),
                    viewer_frames: if live && !down { 25 } else { 0 },
                    latency_p50_ms: (live && !down).then(|| 900.0 + (t * 0.3).cos() * 120.0),
                    latency_p95_ms: (live && !down).then(|| 1600.0 + (t * 0.3).cos() * 300.0),
                    outbox_depth: Some(if down {
                        ((t - outage.0) / 5.0) as u64 + 1
                    } else {
                        0
                    }),
                    cpu_pct: live.then(|| 45.0 + (t * 0.2).sin() * 8.0),
                    rss_mb: Some(180.0 + t * 0.05),
                }
            })
            .collect();
        let mark = |t_s: f64, label: &str| Mark {
            t_s,
            label: label.into(),
        };
        RunRecord {
            scenario: "market-day".into(),
            description: "A market day <script>alert('x')</script> & a rural uplink.".into(),
            device: "entry-2019".into(),
            device_host_cores: 1.5,
            network: "rural-3g".into(),
            build: "fieldcast 0.1.0 (target/release/fieldcast)".into(),
            started_wall_ms: 1_740_821_400_000,
            seconds: 300.0,
            pass: false,
            failure: None,
            figures: Figures {
                live_after_s: Some(4.2),
                back_after_s: vec![Some(3.1)],
                latency_p50_ms: Some(910),
                latency_p95_ms: Some(1850),
                viewer_frames: 6_500,
                sales_taken: 12,
                sales_on_platform: 12,
                peak_rss_mb: Some(195.0),
                cpu_pct_of_device: Some(46.0),
                cpu_s_per_media_s: Some(0.69),
                media_s: 279.0,
                reconnections: 1,
                ..Figures::default()
            },
            bounds: Assertions {
                latency_p95_ms: Some(3000),
                ..Assertions::default()
            },
            assertions: vec![
                Check {
                    name: "live within".into(),
                    target: "at most 20 s".into(),
                    measured: "4.2 s".into(),
                    pass: true,
                },
                Check {
                    name: "p95 latency".into(),
                    target: "at most 1500 ms".into(),
                    measured: "1850 ms".into(),
                    pass: false,
                },
            ],
            actions: vec![
                mark(2.0, "go live 480p, ABR, recording"),
                mark(15.0, "pin orange-box"),
                mark(25.0, "sell 1 × 1 orange-box"),
                mark(34.0, "sell 1 × 1 orange-box"),
                mark(43.0, "sell 1 × 1 orange-box"),
                mark(70.0, "pin honey-jar"),
                mark(80.0, "sell 1 × 1 honey-jar"),
                mark(120.0, "network down"),
                mark(140.0, "network up"),
                mark(275.0, "unpin"),
                mark(282.0, "end"),
                mark(288.0, "upload replay"),
            ],
            states: vec![
                mark(0.0, "-"),
                mark(2.2, "connecting"),
                mark(6.0, "live"),
                mark(121.0, "reconnecting"),
                mark(143.0, "live"),
                mark(282.5, "ending"),
                mark(285.0, "ended"),
            ],
            outages: vec![outage],
            capacity_kbps: vec![
                (0.0, None),
                (5.0, Some(1500.0)),
                (60.0, Some(900.0)),
                (120.0, Some(0.0)),
                (140.0, Some(900.0)),
            ],
            samples,
        }
    }

    fn is_png(path: &Path) -> bool {
        let bytes = std::fs::read(path).unwrap();
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000
    }

    #[test]
    fn a_report_has_every_plot_embedded_and_escapes_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let run = record();
        let report = write_report(&run, dir.path()).unwrap();
        let names: Vec<_> = report
            .plots
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "bitrate.png",
                "latency.png",
                "states.png",
                "outbox.png",
                "device.png"
            ]
        );
        for plot in &report.plots {
            assert!(is_png(plot), "{} is not a PNG of some size", plot.display());
        }
        assert_eq!(report.html, dir.path().join(REPORT_FILE));
        let html = std::fs::read_to_string(&report.html).unwrap();
        assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 5);
        assert!(!html.contains("<script"), "the description is not escaped");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; a rural"));
        for check in &run.assertions {
            assert!(html.contains(&check.name) && html.contains(&check.measured));
        }
        assert!(html.contains("<span class=\"verdict fail\">FAIL</span>"));
        assert!(html.contains("2025-03-01 09:30:00 UTC"));
        assert!(html.contains("1850 ms") && html.contains("peak RSS"));
        assert!(html.contains("upload replay"));
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[test]
    fn a_record_without_samples_still_gets_a_report() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunRecord {
            samples: Vec::new(),
            failure: Some("the app <died> at start".into()),
            ..record()
        };
        let report = write_report(&run, dir.path()).unwrap();
        let names: Vec<_> = report
            .plots
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["states.png"]);
        let html = std::fs::read_to_string(&report.html).unwrap();
        assert!(html.contains("The record has no samples"));
        for file in ["bitrate.png", "latency.png", "outbox.png", "device.png"] {
            assert!(
                html.contains(&format!("{file} is not drawn: no data")),
                "{file}"
            );
        }
        assert!(html.contains("the app &lt;died&gt; at start"));
    }

    #[test]
    fn an_empty_record_gets_a_report_with_no_plot() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunRecord {
            samples: Vec::new(),
            states: Vec::new(),
            actions: Vec::new(),
            outages: Vec::new(),
            capacity_kbps: Vec::new(),
            assertions: Vec::new(),
            seconds: 0.0,
            ..record()
        };
        let report = write_report(&run, dir.path()).unwrap();
        assert!(report.plots.is_empty());
        let html = std::fs::read_to_string(&report.html).unwrap();
        assert!(html.contains("states.png is not drawn"));
        assert!(html.contains("No action in the record."));
    }

    #[test]
    fn a_report_into_a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let err = write_report(&record(), &missing).unwrap_err();
        assert!(matches!(err, ReportError::Plot { .. }), "{err}");
        assert!(err.to_string().contains("bitrate.png"));
    }
}
