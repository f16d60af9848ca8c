//! The figures of a run as rows for tables: a name, the value in words with its unit, and the
//! value as a number with which way is better, for comparisons.

use crate::record::Figures;

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Better {
    /// Less is better (latency, memory, lost sales).
    Lower,
    /// More is better (frames decoded, seconds live).
    Higher,
    /// Neither: the scenario sets it (sales taken, recording files).
    Neither,
}

/// How a change of a figure is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A measured amount: the change is a ratio.
    Amount,
    /// A count: the change is a difference.
    Count,
}

/// One figure of a run.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FigureRow {
    /// What it is, in words.
    pub name: &'static str,
    /// Its unit, empty for counts.
    pub unit: &'static str,
    /// The value in words with its unit, `—` when not measured.
    pub text: String,
    /// The value compared between runs (`never` is infinite), `None` when not measured.
    pub value: Option<f64>,
    /// Which way is better.
    pub better: Better,
    /// How a change is told.
    pub kind: Kind,
}

/// A number with at most as many decimals as it needs: `2400`, `82.5`, `0.35`.
pub(super) fn number(value: f64) -> String {
    let decimals = match value.abs() {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    match text {
        "-0" => "0".to_string(),
        other => other.to_string(),
    }
}

/// A value with its unit, `—` when absent.
pub(super) fn with_unit(value: Option<f64>, unit: &str) -> String {
    match value {
        Some(v) if unit.is_empty() => number(v),
        Some(v) => format!("{} {unit}", number(v)),
        None => "—".to_string(),
    }
}

/// Every figure of `figures`, in the order of the record.
pub(super) fn rows(figures: &Figures) -> Vec<FigureRow> {
    let amount = |name, unit, value: Option<f64>, better| FigureRow {
        name,
        unit,
        text: with_unit(value, unit),
        value,
        better,
        kind: Kind::Amount,
    };
    let count = |name, value: usize, better| FigureRow {
        name,
        unit: "",
        text: value.to_string(),
        value: Some(value as f64),
        better,
        kind: Kind::Count,
    };
    let ms = |v: Option<u64>| v.map(|v| v as f64);
    vec![
        amount(
            "live after go_live",
            "s",
            figures.live_after_s,
            Better::Lower,
        ),
        back_after(&figures.back_after_s),
        amount(
            "viewer latency p50",
            "ms",
            ms(figures.latency_p50_ms),
            Better::Lower,
        ),
        amount(
            "viewer latency p95",
            "ms",
            ms(figures.latency_p95_ms),
            Better::Lower,
        ),
        count(
            "frames the viewer decoded",
            figures.viewer_frames,
            Better::Higher,
        ),
        count(
            "sales taken by the app",
            figures.sales_taken,
            Better::Neither,
        ),
        count(
            "sales on the platform",
            figures.sales_on_platform,
            Better::Neither,
        ),
        count("sales lost", figures.sales_lost, Better::Lower),
        count("sales doubled", figures.sales_doubled, Better::Lower),
        amount(
            "longest frame gap in the recording",
            "ms",
            ms(figures.max_frame_gap_ms),
            Better::Lower,
        ),
        count(
            "recording files read",
            figures.recording_files,
            Better::Neither,
        ),
        amount("peak RSS", "MB", figures.peak_rss_mb, Better::Lower),
        amount(
            "mean CPU while live",
            "% of the device",
            figures.cpu_pct_of_device,
            Better::Lower,
        ),
        amount(
            "CPU per media second",
            "CPU s per media s",
            figures.cpu_s_per_media_s,
            Better::Lower,
        ),
        amount(
            "media (seconds live)",
            "s",
            Some(figures.media_s),
            Better::Higher,
        ),
        count("reconnections", figures.reconnections, Better::Lower),
        amount(
            "CPU throttled by the device limit",
            "s",
            figures.throttled_s,
            Better::Lower,
        ),
    ]
}

/// The viewer's recovery after each outage: every one in words, the slowest as the value.
fn back_after(after: &[Option<f64>]) -> FigureRow {
    let text = if after.is_empty() {
        "— (no outage)".to_string()
    } else {
        after
            .iter()
            .map(|a| a.map_or("never".to_string(), |s| format!("{} s", number(s))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let value = after
        .iter()
        .map(|a| a.unwrap_or(f64::INFINITY))
        .reduce(f64::max);
    FigureRow {
        name: "viewer back after each outage",
        unit: "s",
        text,
        value,
        better: Better::Lower,
        kind: Kind::Amount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_the_decimals_they_need() {
        assert_eq!(number(2400.0), "2400");
        assert_eq!(number(82.54), "82.5");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.354), "0.35");
        assert_eq!(number(-0.001), "0");
        assert_eq!(with_unit(None, "ms"), "—");
        assert_eq!(with_unit(Some(12.0), ""), "12");
    }

    #[test]
    fn the_slowest_recovery_is_the_value_and_never_is_the_worst() {
        let row = back_after(&[Some(1.5), None, Some(3.0)]);
        assert_eq!(row.text, "1.5 s, never, 3 s");
        assert_eq!(row.value, Some(f64::INFINITY));
        assert_eq!(back_after(&[Some(1.5), Some(3.0)]).value, Some(3.0));
        assert_eq!(back_after(&[]).value, None);
    }

    #[test]
    fn every_figure_has_a_row() {
        let rows = rows(&Figures::default());
        assert_eq!(rows.len(), 17);
        assert!(rows.iter().any(|r| r.name == "peak RSS" && r.text == "—"));
    }
}
