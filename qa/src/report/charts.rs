//! The figures of a report, as [`Timeline`]s over the run's seconds: what each plot shows, from
//! which fields of the record, or why there is nothing to draw.

use std::ops::Range;

use crate::plot::{
    Band, Events, Marker, PALETTE, Panel, RGBColor, Row, SPAN_COLOR, Series, Shade, Timeline,
};
use crate::record::{RunRecord, RunSample};

/// The x axis of every plot.
const X_LABEL: &str = "time since the run started (s)";
/// The colour of the link capacity the network lab set.
const CAPACITY_COLOR: RGBColor = RGBColor(90, 90, 90);
/// Colours of the states the app reports, and of any other state in order of appearance.
const STATE_COLORS: [(&str, RGBColor); 8] = [
    ("-", RGBColor(205, 205, 205)),
    ("starting", RGBColor(170, 170, 170)),
    ("connecting", RGBColor(140, 190, 230)),
    ("live", RGBColor(44, 160, 44)),
    ("reconnecting", RGBColor(255, 187, 0)),
    ("ending", RGBColor(177, 156, 217)),
    ("ended", RGBColor(100, 100, 100)),
    ("failed", RGBColor(214, 39, 40)),
];
const OTHER_STATE_COLORS: [RGBColor; 5] = [
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(148, 103, 189),
];

/// One plot of a page.
#[derive(Debug, Clone)]
pub(super) struct Plot {
    /// The PNG's file name in the run's directory.
    pub file: &'static str,
    /// What the plot shows, under it.
    pub caption: String,
    /// The figure, or what the record lacks for it.
    pub drawing: Drawing,
}

/// A figure to draw, or why there is none.
#[derive(Debug, Clone)]
pub(super) enum Drawing {
    /// The figure.
    Figure(Timeline),
    /// Nothing to draw: the record has none of these values.
    NoData(&'static str),
}

/// The plots of a run's report.
pub(super) fn run_plots(record: &RunRecord) -> Vec<Plot> {
    let x_range = time_range(&[record]);
    let shades = vec![Shade {
        label: "network outage".into(),
        color: SPAN_COLOR,
        spans: record.outages.clone(),
    }];
    let title = |what: &str| {
        format!(
            "{what}: {} on {} / {}",
            record.scenario, record.device, record.network
        )
    };
    let timeline = |what: &str, rows: Vec<Row>| Timeline {
        title: title(what),
        x_label: X_LABEL.into(),
        x_range: x_range.clone(),
        shades: shades.clone(),
        rows,
    };
    let samples = &record.samples;
    let drawing = |has_data: bool, missing: &'static str, figure: Timeline| {
        if has_data {
            Drawing::Figure(figure)
        } else {
            Drawing::NoData(missing)
        }
    };
    let measured =
        |value: fn(&RunSample) -> Option<f64>| samples.iter().any(|s| value(s).is_some());
    let mut plots = vec![
        Plot {
            file: "bitrate.png",
            caption: "Video bitrate: what the encoder put out, what the adaptive bitrate asked it \
                      for and the uplink capacity it estimated, against the link capacity the \
                      network lab set."
                .into(),
            drawing: drawing(
                measured(|s| s.encoder_kbps)
                    || measured(|s| s.target_kbps)
                    || measured(|s| s.estimate_kbps),
                "no sample has an encoder bitrate, an ABR target or an ABR estimate",
                timeline(
                    "Bitrate",
                    vec![Row::Lines(bitrate_panel(record, x_range.end))],
                ),
            ),
        },
        Plot {
            file: "latency.png",
            caption: "Viewer latency, capture to decode, of the stamped frames the viewer \
                      decoded in the last few seconds: p50 and p95."
                .into(),
            drawing: drawing(
                measured(|s| s.latency_p50_ms) || measured(|s| s.latency_p95_ms),
                "no sample has a viewer latency",
                timeline(
                    "Viewer latency",
                    vec![Row::Lines(Panel {
                        title: "Viewer latency, capture to decode".into(),
                        y_label: "latency (ms)".into(),
                        from_zero: true,
                        series: [
                            series(samples, "p50", PALETTE[0], |s| s.latency_p50_ms),
                            series(samples, "p95", PALETTE[1], |s| s.latency_p95_ms),
                        ]
                        .into_iter()
                        .chain(record.bounds.latency_p95_ms.map(|bound| {
                            Series::new(
                                format!("p95 bound ({bound} ms)"),
                                PALETTE[1],
                                vec![(x_range.start, bound as f64), (x_range.end, bound as f64)],
                            )
                            .dashed()
                        }))
                        .collect(),
                    })],
                ),
            ),
        },
        Plot {
            file: "states.png",
            caption: "The live session's state as the app reported it, and the scenario's \
                      actions as they were played."
                .into(),
            drawing: drawing(
                !record.states.is_empty() || !record.actions.is_empty(),
                "the record has no state and no action",
                timeline(
                    "Session state and actions",
                    vec![Row::Events(state_events(record, x_range.end))],
                ),
            ),
        },
        Plot {
            file: "outbox.png",
            caption: "Outbox depth: sales and pin events the app took that are not yet on the \
                      platform."
                .into(),
            drawing: drawing(
                measured(|s| s.outbox_depth.map(|d| d as f64)),
                "no sample has an outbox depth",
                timeline(
                    "Outbox",
                    vec![Row::Lines(Panel {
                        title: "Outbox depth (sales and pin events not yet on the platform)".into(),
                        y_label: "depth (records)".into(),
                        from_zero: true,
                        series: vec![series(samples, "outbox depth", PALETTE[4], |s| {
                            s.outbox_depth.map(|d| d as f64)
                        })],
                    })],
                ),
            ),
        },
        Plot {
            file: "device.png",
            caption: format!(
                "The publisher on the device: its CPU, in percent of the device ({} host \
                 cores are 100 %), and its resident memory.",
                super::figures::number(record.device_host_cores)
            ),
            drawing: drawing(
                measured(|s| s.cpu_pct) || measured(|s| s.rss_mb),
                "no sample has the publisher's CPU or memory",
                timeline(
                    "Publisher on the device",
                    vec![
                        Row::Lines(cpu_panel(&[("CPU", PALETTE[0], samples)])),
                        Row::Lines(rss_panel(&[("RSS", PALETTE[3], samples)])),
                    ],
                ),
            ),
        },
    ];
    if !record.outages.is_empty() {
        for plot in &mut plots {
            plot.caption.push_str(" Shaded: network outages.");
        }
    }
    plots
}

/// The overlay plot of two runs: encoder bitrate, p95 latency, CPU and RSS, A and B on the same
/// axes.
pub(super) fn compare_plot(a: &RunRecord, b: &RunRecord) -> Plot {
    let runs = [("A", PALETTE[0], a), ("B", PALETTE[4], b)];
    let lines = |value: fn(&RunSample) -> Option<f64>| {
        runs.iter()
            .map(|(name, color, run)| series(&run.samples, name, *color, value))
            .collect::<Vec<_>>()
    };
    let both: Vec<(&str, RGBColor, &[RunSample])> = runs
        .iter()
        .map(|&(name, color, run)| (name, color, run.samples.as_slice()))
        .collect();
    let shades = if a.outages == b.outages {
        vec![Shade {
            label: "network outage (A and B)".into(),
            color: SPAN_COLOR,
            spans: a.outages.clone(),
        }]
    } else {
        runs.iter()
            .map(|(name, color, run)| Shade {
                label: format!("network outage in {name}"),
                color: *color,
                spans: run.outages.clone(),
            })
            .collect()
    };
    let figure = Timeline {
        title: if a.scenario == b.scenario {
            format!("B against A: {}", a.scenario)
        } else {
            format!("B ({}) against A ({})", b.scenario, a.scenario)
        },
        x_label: X_LABEL.into(),
        x_range: time_range(&[a, b]),
        shades,
        rows: vec![
            Row::Lines(Panel {
                title: "Encoder output".into(),
                y_label: "bitrate (kbit/s)".into(),
                from_zero: true,
                series: lines(|s| s.encoder_kbps),
            }),
            Row::Lines(Panel {
                title: "Viewer latency p95, capture to decode".into(),
                y_label: "latency (ms)".into(),
                from_zero: true,
                series: lines(|s| s.latency_p95_ms),
            }),
            Row::Lines(cpu_panel(&both)),
            Row::Lines(rss_panel(&both)),
        ],
    };
    let has_data = [a, b].iter().flat_map(|r| &r.samples).any(|s| {
        s.encoder_kbps.is_some()
            || s.latency_p95_ms.is_some()
            || s.cpu_pct.is_some()
            || s.rss_mb.is_some()
    });
    Plot {
        file: "compare.png",
        caption: "A (blue) and B (orange, drawn over A) on the same axes: encoder output, viewer latency p95, \
                  the publisher's CPU and its resident memory. Shaded: network outages (in the \
                  colour of their run when the two runs' outages differ)."
            .into(),
        drawing: if has_data {
            Drawing::Figure(figure)
        } else {
            Drawing::NoData("neither run has a sample of these series")
        },
    }
}

/// From 0 to the end of the longest run (its length, its last sample, mark or outage).
fn time_range(records: &[&RunRecord]) -> Range<f64> {
    let end = records
        .iter()
        .flat_map(|r| {
            [r.seconds]
                .into_iter()
                .chain(r.samples.iter().map(|s| s.t_s))
                .chain(r.states.iter().chain(&r.actions).map(|m| m.t_s))
                .chain(r.outages.iter().map(|o| o.1))
        })
        .filter(|t| t.is_finite())
        .fold(0.0, f64::max);
    0.0..if end > 0.0 { end } else { 1.0 }
}

/// A series of one field of the samples (a gap where it is absent); its label says `no data`
/// when it is absent from every sample.
fn series(
    samples: &[RunSample],
    label: &str,
    color: RGBColor,
    value: fn(&RunSample) -> Option<f64>,
) -> Series {
    let points: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.t_s, value(s).unwrap_or(f64::NAN)))
        .collect();
    let label = if points.iter().any(|p| p.1.is_finite()) {
        label.to_string()
    } else {
        format!("{label} (no data)")
    };
    Series::new(label, color, points)
}

/// The bitrate panel: encoder output, ABR target (dashed) and estimate, and the link capacity
/// as a step function with gaps where it was not limited.
fn bitrate_panel(record: &RunRecord, end: f64) -> Panel {
    let samples = &record.samples;
    let mut lines = vec![
        series(samples, "encoder output", PALETTE[0], |s| s.encoder_kbps),
        series(samples, "ABR target", PALETTE[3], |s| s.target_kbps).dashed(),
        series(samples, "ABR link estimate", PALETTE[2], |s| {
            s.estimate_kbps
        }),
    ];
    let steps: Vec<(f64, f64)> = record
        .capacity_kbps
        .iter()
        .map(|&(from, kbps)| (from, kbps.unwrap_or(f64::NAN)))
        .collect();
    let unlimited = record
        .capacity_kbps
        .iter()
        .filter(|c| c.1.is_none())
        .count();
    let label = match unlimited {
        0 => "link capacity set by the network lab",
        n if n == steps.len() => "link capacity: not limited by the network lab",
        _ => "link capacity set by the network lab (no line: not limited)",
    };
    if !steps.is_empty() {
        lines.push(Series::steps(label, CAPACITY_COLOR, &steps, end));
    }
    Panel {
        title: "Video bitrate against the link capacity".into(),
        y_label: "bitrate (kbit/s)".into(),
        from_zero: true,
        series: lines,
    }
}

/// The CPU panel, one line per run.
fn cpu_panel(runs: &[(&str, RGBColor, &[RunSample])]) -> Panel {
    Panel {
        title: "Publisher CPU".into(),
        y_label: "CPU (% of the device)".into(),
        from_zero: true,
        series: runs
            .iter()
            .map(|(label, color, samples)| series(samples, label, *color, |s| s.cpu_pct))
            .collect(),
    }
}

/// The memory panel, one line per run.
fn rss_panel(runs: &[(&str, RGBColor, &[RunSample])]) -> Panel {
    Panel {
        title: "Publisher resident memory".into(),
        y_label: "RSS (MB)".into(),
        from_zero: false,
        series: runs
            .iter()
            .map(|(label, color, samples)| series(samples, label, *color, |s| s.rss_mb))
            .collect(),
    }
}

/// The states as bands (each until the next, the last until `end`) and the actions as markers.
fn state_events(record: &RunRecord, end: f64) -> Events {
    let mut others: Vec<&str> = Vec::new();
    let bands = record
        .states
        .iter()
        .enumerate()
        .map(|(n, mark)| Band {
            from: mark.t_s,
            to: record.states.get(n + 1).map_or(end, |next| next.t_s),
            label: if mark.label == "-" {
                "not live yet (-)".into()
            } else {
                mark.label.clone()
            },
            color: state_color(&mark.label, &mut others),
        })
        .collect();
    Events {
        title: "Session state (as the app reported it) and scenario actions".into(),
        bands_label: "state".into(),
        bands,
        markers_label: "action".into(),
        markers: record
            .actions
            .iter()
            .map(|a| Marker {
                at: a.t_s,
                label: a.label.clone(),
            })
            .collect(),
    }
}

/// The colour of a state: its own when the app has one for it, else the next unused other
/// colour (`others` holds the other states seen so far).
fn state_color<'a>(state: &'a str, others: &mut Vec<&'a str>) -> RGBColor {
    if let Some((_, color)) = STATE_COLORS.iter().find(|(name, _)| *name == state) {
        return *color;
    }
    let n = others.iter().position(|o| *o == state).unwrap_or_else(|| {
        others.push(state);
        others.len() - 1
    });
    OTHER_STATE_COLORS[n % OTHER_STATE_COLORS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_states_have_their_colour_and_others_one_each() {
        let mut others = Vec::new();
        assert_eq!(state_color("live", &mut others), RGBColor(44, 160, 44));
        let paused = state_color("paused", &mut others);
        let stalled = state_color("stalled", &mut others);
        assert_ne!(paused, stalled);
        assert_eq!(state_color("paused", &mut others), paused);
        assert_eq!(others, ["paused", "stalled"]);
    }

    #[test]
    fn an_absent_series_says_so_in_its_label() {
        let samples = vec![RunSample::default(); 3];
        assert_eq!(
            series(&samples, "p95", PALETTE[0], |s| s.latency_p95_ms).label,
            "p95 (no data)"
        );
    }
}
