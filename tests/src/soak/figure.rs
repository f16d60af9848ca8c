//! The soak's figure: the app's memory, threads, descriptors and outbox and the viewer's
//! latency against minutes, with the outages shaded.

use fieldcast_qa::plot::{Figure, PALETTE, Panel, Series};

use super::samples::Sample;

/// The figure of a run: `samples`, and `outages` as (start, end) seconds from the lab's start.
pub fn figure(title: String, samples: &[Sample], outages: &[(f64, f64)]) -> Figure {
    let series = |label: &str, color: usize, value: &dyn Fn(&Sample) -> Option<f64>| {
        Series::new(
            label,
            PALETTE[color],
            samples
                .iter()
                .map(|s| (s.t_s / 60.0, value(s).unwrap_or(f64::NAN)))
                .collect(),
        )
    };
    let panel = |title: &str, y_label: &str, from_zero: bool, series: Vec<Series>| Panel {
        title: title.into(),
        y_label: y_label.into(),
        from_zero,
        series,
    };
    Figure {
        title,
        x_label: "time since the lab started (min)".into(),
        spans: outages
            .iter()
            .map(|&(down, up)| (down / 60.0, up / 60.0))
            .collect(),
        span_label: "outage".into(),
        panels: vec![
            panel(
                "Publisher memory",
                "RSS (MB)",
                false,
                vec![series("RSS", 0, &|s| Some(s.rss_mb))],
            ),
            panel(
                "Publisher threads",
                "threads (count)",
                false,
                vec![series("threads", 3, &|s| Some(s.threads as f64))],
            ),
            panel(
                "Publisher open file descriptors",
                "fds (count)",
                false,
                vec![series("open fds", 2, &|s| Some(s.fds as f64))],
            ),
            panel(
                "Outbox depth (sales and pin events not yet on the platform)",
                "records",
                true,
                vec![series(
                    "pending + in flight, highest of each 10 s",
                    4,
                    &|s| s.outbox_depth().map(|d| d as f64),
                )],
            ),
            panel(
                "Viewer latency, capture to decode (10 s windows)",
                "latency (ms)",
                true,
                vec![
                    series("p50", 0, &|s| s.latency_ms.map(|l| l.0 as f64)),
                    series("p95", 1, &|s| s.latency_ms.map(|l| l.1 as f64)),
                ],
            ),
        ],
    }
}
