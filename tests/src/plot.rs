//! PNG figures of time series for QA reports: panels stacked over one shared time axis, with
//! spans of time (outages, faults) shaded across every panel. Drawn with `plotters`' bitmap
//! backend; text is DejaVu Sans from Debian's `fonts-dejavu-core`, registered once per process.
//!
//! ```no_run
//! use fieldcast_tests::plot::{Figure, Panel, Series, PALETTE};
//! let figure = Figure {
//!     title: "One run".into(),
//!     x_label: "time (min)".into(),
//!     spans: vec![(1.0, 1.1)],
//!     span_label: "outage".into(),
//!     panels: vec![Panel {
//!         title: "Memory".into(),
//!         y_label: "RSS (MB)".into(),
//!         from_zero: false,
//!         series: vec![Series::new("RSS", PALETTE[0], vec![(0.0, 80.0), (2.0, 81.0)])],
//!     }],
//! };
//! figure.write_png(std::path::Path::new("/tmp/run.png")).unwrap();
//! ```

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
pub use plotters::style::RGBColor;

/// The regular face, from Debian's `fonts-dejavu-core`.
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// The bold face, for titles.
pub const BOLD_FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
/// The family name the fonts are registered under.
const FAMILY: &str = "sans-serif";

/// Distinct colours for series, in the order to use them.
pub const PALETTE: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];
/// The colour of the shaded spans.
const SPAN_COLOR: RGBColor = RGBColor(230, 85, 13);

/// Pixels: the figure's width, each panel's height and the title band's height.
const WIDTH: u32 = 1400;
const PANEL_HEIGHT: u32 = 270;
const TITLE_HEIGHT: u32 = 56;

/// Why a figure could not be written.
#[derive(Debug)]
pub enum PlotError {
    /// The font file is missing or unreadable; says which and the Debian package.
    Font(String),
    /// The figure has no panel, or no point to draw.
    Empty,
    /// plotters failed to draw or to write the PNG.
    Draw(String),
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::Font(reason) => write!(f, "no font for the plot: {reason}"),
            PlotError::Empty => f.write_str("nothing to plot: no panel, or every series is empty"),
            PlotError::Draw(reason) => write!(f, "cannot draw the plot: {reason}"),
        }
    }
}

impl std::error::Error for PlotError {}

/// One line: (x, y) points in x order; a non-finite y leaves a gap in the line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Shown in the panel's legend.
    pub label: String,
    /// The line's colour.
    pub color: RGBColor,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from its label, colour and points.
    pub fn new(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            color,
            points,
        }
    }

    /// The runs of consecutive points with a finite y, each drawn as one line.
    fn segments(&self) -> Vec<Vec<(f64, f64)>> {
        let mut runs = vec![Vec::new()];
        for &(x, y) in &self.points {
            match (x.is_finite() && y.is_finite(), runs.last_mut()) {
                (true, Some(run)) => run.push((x, y)),
                (false, Some(run)) if !run.is_empty() => runs.push(Vec::new()),
                _ => {}
            }
        }
        runs.retain(|run| !run.is_empty());
        runs
    }
}

/// One chart of the figure.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Above the chart.
    pub title: String,
    /// The y axis' description, with its unit, e.g. `RSS (MB)`.
    pub y_label: String,
    /// Whether the y axis starts at 0 (else it spans the data, padded).
    pub from_zero: bool,
    /// The lines.
    pub series: Vec<Series>,
}

impl Panel {
    /// The y range: the finite values padded by 8 % of their spread (at least 1), from 0 when
    /// asked.
    fn y_range(&self) -> Range<f64> {
        let values = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| y.is_finite());
        let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
        if low > high {
            return 0.0..1.0;
        }
        let pad = ((high - low) * 0.08).max(1.0);
        let bottom = if self.from_zero { 0.0 } else { low - pad };
        bottom..high + pad
    }
}

/// Stacked panels over one x axis, with shaded spans.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Across the top.
    pub title: String,
    /// The shared x axis' description, with its unit.
    pub x_label: String,
    /// The charts, top to bottom.
    pub panels: Vec<Panel>,
    /// Spans of x shaded in every panel, as (from, to).
    pub spans: Vec<(f64, f64)>,
    /// What the spans are, for the legend.
    pub span_label: String,
}

impl Figure {
    /// The x range over every point and span.
    fn x_range(&self) -> Option<Range<f64>> {
        let xs = self
            .panels
            .iter()
            .flat_map(|p| &p.series)
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .chain(self.spans.iter().flat_map(|&(a, b)| [a, b]))
            .filter(|x| x.is_finite());
        let (low, high) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        (low <= high).then_some(if low == high {
            low - 1.0..high + 1.0
        } else {
            low..high
        })
    }

    /// Draws the figure into a PNG file at `path`, 1400 pixels wide and 270 per panel.
    pub fn write_png(&self, path: &Path) -> Result<(), PlotError> {
        register_fonts()?;
        let x_range = self
            .x_range()
            .filter(|_| !self.panels.is_empty())
            .ok_or(PlotError::Empty)?;
        let height = TITLE_HEIGHT + PANEL_HEIGHT * self.panels.len().max(1) as u32;
        let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let body = root
            .titled(&self.title, (FAMILY, 28).into_font().style(FontStyle::Bold))
            .map_err(draw_error)?;
        for (area, panel) in body
            .split_evenly((self.panels.len(), 1))
            .iter()
            .zip(&self.panels)
        {
            self.draw_panel(area, panel, x_range.clone())?;
        }
        root.present().map_err(draw_error)
    }

    fn draw_panel(
        &self,
        area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
        panel: &Panel,
        x_range: Range<f64>,
    ) -> Result<(), PlotError> {
        let y_range = panel.y_range();
        let mut chart = ChartBuilder::on(area)
            .caption(
                &panel.title,
                (FAMILY, 21).into_font().style(FontStyle::Bold),
            )
            .margin_left(12)
            .margin_right(24)
            .margin_top(4)
            .margin_bottom(4)
            .x_label_area_size(46)
            .y_label_area_size(86)
            .build_cartesian_2d(x_range, y_range.clone())
            .map_err(draw_error)?;
        let y_format = |v: &f64| tick_label(*v);
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(panel.y_label.as_str())
            .y_label_formatter(&y_format)
            .x_labels(16)
            .y_labels(6)
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .light_line_style(RGBColor(236, 236, 236))
            .bold_line_style(RGBColor(205, 205, 205))
            .draw()
            .map_err(draw_error)?;
        if !self.spans.is_empty() {
            let (bottom, top) = (y_range.start, y_range.end);
            let fill = SPAN_COLOR.mix(0.22).filled();
            chart
                .draw_series(
                    self.spans
                        .iter()
                        .map(move |&(from, to)| Rectangle::new([(from, bottom), (to, top)], fill)),
                )
                .map_err(draw_error)?
                .label(self.span_label.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], fill));
        }
        for series in &panel.series {
            let style = series.color.stroke_width(2);
            for (n, segment) in series.segments().into_iter().enumerate() {
                let drawn = chart
                    .draw_series(LineSeries::new(segment, style))
                    .map_err(draw_error)?;
                if n == 0 {
                    drawn
                        .label(series.label.as_str())
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .map_err(draw_error)
    }
}

/// A tick's value with at most two decimals and no trailing zeros: `21`, `82.5`, `0.25`.
fn tick_label(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "-0" => "0".to_string(),
        other => other.to_string(),
    }
}

fn draw_error(e: impl fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Registers DejaVu Sans (regular and bold) as `sans-serif`, once per process; the font bytes
/// stay loaded for the life of the process, as plotters requires.
pub fn register_fonts() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            for (path, style) in [
                (FONT_PATH, FontStyle::Normal),
                (BOLD_FONT_PATH, FontStyle::Bold),
            ] {
                let bytes = std::fs::read(path).map_err(|e| {
                    format!("{path}: {e} (install the Debian package fonts-dejavu-core)")
                })?;
                plotters::style::register_font(FAMILY, style, Box::leak(bytes.into_boxed_slice()))
                    .map_err(|_| format!("{path} is not a font plotters can read"))?;
            }
            Ok(())
        })
        .clone()
        .map_err(PlotError::Font)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_split_a_series_into_segments() {
        let series = Series::new(
            "s",
            PALETTE[0],
            vec![
                (0.0, 1.0),
                (1.0, 2.0),
                (2.0, f64::NAN),
                (3.0, 4.0),
                (4.0, f64::NAN),
            ],
        );
        assert_eq!(
            series.segments(),
            vec![vec![(0.0, 1.0), (1.0, 2.0)], vec![(3.0, 4.0)]]
        );
    }

    #[test]
    fn tick_labels_drop_trailing_zeros() {
        assert_eq!(tick_label(21.0), "21");
        assert_eq!(tick_label(4000.0), "4000");
        assert_eq!(tick_label(82.5), "82.5");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(-0.0001), "0");
    }

    #[test]
    fn the_y_range_pads_the_data_and_may_start_at_zero() {
        let mut panel = Panel {
            title: "t".into(),
            y_label: "y".into(),
            from_zero: false,
            series: vec![Series::new(
                "s",
                PALETTE[0],
                vec![(0.0, 100.0), (1.0, 200.0)],
            )],
        };
        assert_eq!(panel.y_range(), 92.0..208.0);
        panel.from_zero = true;
        assert_eq!(panel.y_range(), 0.0..208.0);
    }

    #[test]
    fn a_figure_is_written_as_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("figure.png");
        let figure = Figure {
            title: "test".into(),
            x_label: "time (min)".into(),
            spans: vec![(0.5, 0.7)],
            span_label: "outage".into(),
            panels: vec![Panel {
                title: "p".into(),
                y_label: "v (ms)".into(),
                from_zero: true,
                series: vec![Series::new("v", PALETTE[1], vec![(0.0, 1.0), (1.0, 3.0)])],
            }],
        };
        figure.write_png(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    }
}
