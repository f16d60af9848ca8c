//! PNG figures of time series for QA reports: panels stacked over one shared time axis, with
//! spans of time (outages, faults) shaded across every panel. A [`Figure`] takes its time axis from
//! its data; a [`Timeline`] has a fixed one (so that several figures of one run line up), several
//! sets of shaded spans, and rows of coloured bands with labelled markers (states and actions)
//! besides line charts. Each row's legend is above its chart, never over the data. Drawn with
//! `plotters`' bitmap backend; text is DejaVu Sans from Debian's `fonts-dejavu-core`, registered
//! once per process.
//!
//! ```no_run
//! use fieldcast_qa::plot::{Figure, Panel, Series, PALETTE};
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

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
pub use plotters::style::RGBColor;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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
/// The colour of a [`Figure`]'s shaded spans, and a good one for outages in a [`Timeline`].
pub const SPAN_COLOR: RGBColor = RGBColor(230, 85, 13);
/// How opaque shaded spans are over the data.
const SHADE_OPACITY: f64 = 0.22;

/// Pixels: the figure's width and its title band's height.
const WIDTH: u32 = 1400;
const TITLE_HEIGHT: u32 = 56;
/// Pixels: each row's title band, and each line of a row's legend.
const ROW_TITLE_HEIGHT: u32 = 34;
const LEGEND_LINE_HEIGHT: u32 = 28;
/// Pixels: a line chart, from the top of its plotting area to the bottom of its x axis' text.
const CHART_HEIGHT: u32 = 250;
/// Pixels around and beside the plotting area: every row's plotting area spans the same x.
const MARGIN_LEFT: u32 = 12;
const MARGIN_RIGHT: u32 = 28;
const MARGIN_V: u32 = 6;
const Y_LABEL_AREA: u32 = 96;
const X_LABEL_AREA: u32 = 56;
const PLOT_LEFT: u32 = MARGIN_LEFT + Y_LABEL_AREA;
const PLOT_WIDTH: u32 = WIDTH - PLOT_LEFT - MARGIN_RIGHT;
/// Pixels of a legend entry: the swatch, the gap to its label, the gap to the next entry.
const SWATCH_WIDTH: u32 = 26;
const SWATCH_GAP: u32 = 8;
const ENTRY_GAP: u32 = 30;
/// Pixels of an events row: padding, the band, the gap under it, one lane of marker labels.
const EVENTS_PAD: u32 = 8;
const BAND_HEIGHT: u32 = 40;
const BAND_GAP: u32 = 16;
const LANE_HEIGHT: u32 = 28;
/// Marker labels get at most this many lanes; a label that fits in none is left out (its marker
/// is drawn, and the legend says how many labels are left out).
const MAX_LANES: usize = 8;
/// Pixels from a marker to its label, and kept free between two labels in one lane.
const LABEL_OFFSET: i32 = 9;
const LABEL_GAP: i32 = 14;

/// Font sizes, pixels.
const TITLE_FONT: u32 = 28;
const ROW_TITLE_FONT: u32 = 21;
const AXIS_FONT: u32 = 18;
const TEXT_FONT: u32 = 17;
const TICK_FONT: u32 = 16;

/// The colour of axis text, markers and "no data".
const INK: RGBColor = RGBColor(50, 50, 50);
const MUTED: RGBColor = RGBColor(130, 130, 130);

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

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

/// How a series' line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// A continuous line.
    Solid,
    /// A dashed line, e.g. for a setpoint next to what was measured.
    Dashed,
}

/// One line: (x, y) points in x order; a non-finite y leaves a gap in the line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Shown in the panel's legend.
    pub label: String,
    /// The line's colour.
    pub color: RGBColor,
    /// The points.
    pub points: Vec<(f64, f64)>,
    /// How the line is drawn.
    pub stroke: Stroke,
}

impl Series {
    /// A series from its label, colour and points, drawn solid.
    pub fn new(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            color,
            points,
            stroke: Stroke::Solid,
        }
    }

    /// A step function: each (from x, y) holds until the next one's x, the last until `end`;
    /// a non-finite y leaves a gap, and steps from `end` on are left out.
    pub fn steps(
        label: impl Into<String>,
        color: RGBColor,
        steps: &[(f64, f64)],
        end: f64,
    ) -> Series {
        let mut points = Vec::new();
        for (n, &(from, y)) in steps.iter().enumerate() {
            let to = steps.get(n + 1).map_or(end, |next| next.0).min(end);
            if from < to {
                points.extend([(from, y), (to, y)]);
            }
        }
        Series::new(label, color, points)
    }

    /// The same series, drawn dashed.
    pub fn dashed(self) -> Series {
        Series {
            stroke: Stroke::Dashed,
            ..self
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
    /// The finite y values of every series.
    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| y.is_finite())
    }

    /// The y range: the finite values padded by 8 % of their spread (at least 1), from 0 when
    /// asked.
    fn y_range(&self) -> Range<f64> {
        let (low, high) = self
            .values()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
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

    /// Draws the figure into a PNG file at `path`, 1400 pixels wide, each panel with its legend
    /// above its chart.
    pub fn write_png(&self, path: &Path) -> Result<(), PlotError> {
        let x_range = self
            .x_range()
            .filter(|_| !self.panels.is_empty())
            .ok_or(PlotError::Empty)?;
        Timeline {
            title: self.title.clone(),
            x_label: self.x_label.clone(),
            x_range,
            shades: vec![Shade {
                label: self.span_label.clone(),
                color: SPAN_COLOR,
                spans: self.spans.clone(),
            }],
            rows: self.panels.iter().cloned().map(Row::Lines).collect(),
        }
        .write_png(path)
    }
}

/// Spans of time shaded across every row of a [`Timeline`], e.g. network outages.
#[derive(Debug, Clone)]
pub struct Shade {
    /// What the spans are, for the legend (left out of it when there is no span).
    pub label: String,
    /// The shading's colour (drawn translucent).
    pub color: RGBColor,
    /// The spans, as (from, to).
    pub spans: Vec<(f64, f64)>,
}

/// A coloured span of time in an [`Events`] row, e.g. one state of a session.
#[derive(Debug, Clone)]
pub struct Band {
    /// Where it starts.
    pub from: f64,
    /// Where it ends.
    pub to: f64,
    /// What it is: written inside the band when it fits, and in the legend once per label.
    pub label: String,
    /// Its colour.
    pub color: RGBColor,
}

/// A labelled moment in an [`Events`] row, e.g. one action of a scenario.
#[derive(Debug, Clone)]
pub struct Marker {
    /// When.
    pub at: f64,
    /// What happened.
    pub label: String,
}

/// A row of coloured bands (one lane across the top) and labelled vertical markers (their labels
/// in lanes below, placed so that they do not overlap).
#[derive(Debug, Clone)]
pub struct Events {
    /// Above the row.
    pub title: String,
    /// What the bands are, left of them, e.g. `state`.
    pub bands_label: String,
    /// The bands, in time order.
    pub bands: Vec<Band>,
    /// What the markers are, left of their labels and in the legend, e.g. `action`.
    pub markers_label: String,
    /// The markers.
    pub markers: Vec<Marker>,
}

/// One row of a [`Timeline`].
#[derive(Debug, Clone)]
pub enum Row {
    /// A line chart.
    Lines(Panel),
    /// Bands and markers.
    Events(Events),
}

/// Rows stacked over one time axis with a fixed range, every row's plotting area spanning the
/// same pixels, with shaded spans across every row and each row's legend above its chart.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Across the top.
    pub title: String,
    /// The shared x axis' description, with its unit.
    pub x_label: String,
    /// The x range every row shows.
    pub x_range: Range<f64>,
    /// Shaded spans, each set with its own colour and legend entry.
    pub shades: Vec<Shade>,
    /// The rows, top to bottom.
    pub rows: Vec<Row>,
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
enum Swatch {
    Line(RGBColor, Stroke),
    Fill(RGBColor, f64),
    Marker,
}

/// A legend entry.
#[derive(Debug, Clone)]
struct Entry {
    label: String,
    swatch: Swatch,
}

/// Where a marker's label goes: its lane (0 under the bands; `None`: left out, too crowded) and
/// whether it is left of the marker (when right of it would run past the plotting area).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    lane: Option<usize>,
    left: bool,
}

/// A row measured before drawing: its legend's lines, marker placements and height.
struct Layout {
    legend: Vec<Vec<Entry>>,
    placements: Vec<Placement>,
    lanes: usize,
    height: u32,
}

impl Timeline {
    /// Draws the timeline into a PNG file at `path`, 1400 pixels wide; `PlotError::Empty` when
    /// it has no row or its x range is empty.
    pub fn write_png(&self, path: &Path) -> Result<(), PlotError> {
        register_fonts()?;
        let Range { start, end } = self.x_range;
        if self.rows.is_empty() || !(start.is_finite() && end.is_finite() && start < end) {
            return Err(PlotError::Empty);
        }
        let layouts = self
            .rows
            .iter()
            .map(|row| self.layout(row))
            .collect::<Result<Vec<_>, _>>()?;
        let mut breaks = vec![TITLE_HEIGHT];
        for layout in &layouts {
            breaks.push(breaks[breaks.len() - 1] + layout.height);
        }
        let height = breaks.pop().unwrap_or(TITLE_HEIGHT);
        let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let areas = root.split_by_breakpoints([] as [u32; 0], &breaks);
        let title = font(TITLE_FONT, true)
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        areas[0]
            .draw_text(
                &self.title,
                &title,
                (WIDTH as i32 / 2, TITLE_HEIGHT as i32 / 2),
            )
            .map_err(draw_error)?;
        for ((area, row), layout) in areas[1..].iter().zip(&self.rows).zip(&layouts) {
            let (head, body) = area.split_vertically(
                ROW_TITLE_HEIGHT + LEGEND_LINE_HEIGHT * layout.legend.len() as u32,
            );
            let row_title = match row {
                Row::Lines(panel) => &panel.title,
                Row::Events(events) => &events.title,
            };
            draw_head(&head, row_title, &layout.legend)?;
            match row {
                Row::Lines(panel) => self.draw_lines(&body, panel)?,
                Row::Events(events) => self.draw_events(&body, events, layout)?,
            }
        }
        root.present().map_err(draw_error)
    }

    /// The legend entries of the shades that have spans.
    fn shade_entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.shades
            .iter()
            .filter(|s| !s.spans.is_empty())
            .map(|s| Entry {
                label: s.label.clone(),
                swatch: Swatch::Fill(s.color, SHADE_OPACITY),
            })
    }

    fn layout(&self, row: &Row) -> Result<Layout, PlotError> {
        let mut entries: Vec<Entry> = self.shade_entries().collect();
        match row {
            Row::Lines(panel) => {
                entries.extend(panel.series.iter().map(|s| Entry {
                    label: s.label.clone(),
                    swatch: Swatch::Line(s.color, s.stroke),
                }));
                let legend = legend_lines(entries)?;
                Ok(Layout {
                    height: ROW_TITLE_HEIGHT
                        + LEGEND_LINE_HEIGHT * legend.len() as u32
                        + CHART_HEIGHT,
                    legend,
                    placements: Vec::new(),
                    lanes: 0,
                })
            }
            Row::Events(events) => {
                let mut seen: Vec<(&str, RGBColor)> = Vec::new();
                for band in &events.bands {
                    if !seen.contains(&(band.label.as_str(), band.color)) {
                        seen.push((band.label.as_str(), band.color));
                    }
                }
                entries.extend(seen.into_iter().map(|(label, color)| Entry {
                    label: label.to_string(),
                    swatch: Swatch::Fill(color, 1.0),
                }));
                let (placements, lanes) = place_labels(&events.markers, &self.x_range)?;
                let left_out = placements.iter().filter(|p| p.lane.is_none()).count();
                if !events.markers.is_empty() {
                    let label = match left_out {
                        0 => events.markers_label.clone(),
                        1 => format!(
                            "{} (1 label left out where too crowded)",
                            events.markers_label
                        ),
                        n => format!(
                            "{} ({n} labels left out where too crowded)",
                            events.markers_label
                        ),
                    };
                    entries.push(Entry {
                        label,
                        swatch: Swatch::Marker,
                    });
                }
                let legend = legend_lines(entries)?;
                Ok(Layout {
                    height: ROW_TITLE_HEIGHT
                        + LEGEND_LINE_HEIGHT * legend.len() as u32
                        + 2 * MARGIN_V
                        + X_LABEL_AREA
                        + events_plot_height(lanes),
                    legend,
                    placements,
                    lanes,
                })
            }
        }
    }

    fn draw_lines(&self, area: &Area<'_>, panel: &Panel) -> Result<(), PlotError> {
        let y_range = panel.y_range();
        let mut chart = chart_builder(area)
            .build_cartesian_2d(self.x_range.clone(), y_range.clone())
            .map_err(draw_error)?;
        mesh(&mut chart, &self.x_label)
            .y_desc(panel.y_label.as_str())
            .y_label_formatter(&tick_text)
            .y_labels(6)
            .draw()
            .map_err(draw_error)?;
        self.draw_shades(&mut chart, y_range.clone())?;
        for series in &panel.series {
            let style = series.color.stroke_width(2);
            for segment in series.segments() {
                match series.stroke {
                    Stroke::Solid => chart.draw_series(LineSeries::new(segment, style)),
                    Stroke::Dashed => {
                        chart.draw_series(DashedLineSeries::new(segment, 10, 6, style))
                    }
                }
                .map_err(draw_error)?;
            }
        }
        if panel.values().next().is_none() {
            let middle = (
                (self.x_range.start + self.x_range.end) / 2.0,
                (y_range.start + y_range.end) / 2.0,
            );
            draw_no_data(&mut chart, middle)?;
        }
        Ok(())
    }

    fn draw_events(
        &self,
        area: &Area<'_>,
        events: &Events,
        layout: &Layout,
    ) -> Result<(), PlotError> {
        let top = events_plot_height(layout.lanes) as f64;
        let band_top = top - EVENTS_PAD as f64;
        let band_bottom = band_top - BAND_HEIGHT as f64;
        let lane_y =
            |lane: usize| band_bottom - BAND_GAP as f64 - (lane as f64 + 0.5) * LANE_HEIGHT as f64;
        let mut chart = chart_builder(area)
            .build_cartesian_2d(self.x_range.clone(), 0.0..top)
            .map_err(draw_error)?;
        mesh(&mut chart, &self.x_label)
            .disable_y_mesh()
            .disable_y_axis()
            .draw()
            .map_err(draw_error)?;
        let clamp = |x: f64| x.clamp(self.x_range.start, self.x_range.end);
        chart
            .draw_series(events.bands.iter().map(|band| {
                Rectangle::new(
                    [(clamp(band.from), band_bottom), (clamp(band.to), band_top)],
                    band.color.filled(),
                )
            }))
            .map_err(draw_error)?;
        self.draw_shades(&mut chart, 0.0..top)?;
        let band_font = font(TICK_FONT, false);
        let px_per_x = PLOT_WIDTH as f64 / (self.x_range.end - self.x_range.start);
        for band in &events.bands {
            let (from, to) = (clamp(band.from), clamp(band.to));
            let width = text_width(&band.label, TICK_FONT)?;
            if (to - from) * px_per_x < f64::from(width + 10) {
                continue;
            }
            let style = band_font
                .color(&contrasting(band.color))
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart
                .draw_series(std::iter::once(Text::new(
                    band.label.clone(),
                    ((from + to) / 2.0, (band_top + band_bottom) / 2.0),
                    style,
                )))
                .map_err(draw_error)?;
        }
        let line = INK.mix(0.75).stroke_width(1);
        chart
            .draw_series(events.markers.iter().zip(&layout.placements).map(|(m, p)| {
                let bottom = p.lane.map_or(band_bottom - BAND_GAP as f64 / 2.0, lane_y);
                PathElement::new([(m.at, band_top), (m.at, bottom)], line)
            }))
            .map_err(draw_error)?;
        let label_font = font(TICK_FONT, false);
        for (marker, placement) in events.markers.iter().zip(&layout.placements) {
            let Some(lane) = placement.lane else {
                continue;
            };
            let width = text_width(&marker.label, TICK_FONT)? as i32;
            let half = LANE_HEIGHT as i32 / 2 - 2;
            let (text_x, box_x, anchor) = if placement.left {
                (
                    -LABEL_OFFSET,
                    (-LABEL_OFFSET - width - 3, -LABEL_OFFSET + 3),
                    HPos::Right,
                )
            } else {
                (
                    LABEL_OFFSET,
                    (LABEL_OFFSET - 3, LABEL_OFFSET + width + 3),
                    HPos::Left,
                )
            };
            let element = EmptyElement::at((marker.at, lane_y(lane)))
                + Rectangle::new([(box_x.0, -half), (box_x.1, half)], WHITE.mix(0.9).filled())
                + Circle::new((0, 0), 4, INK.filled())
                + Text::new(
                    marker.label.clone(),
                    (text_x, 0),
                    label_font.color(&INK).pos(Pos::new(anchor, VPos::Center)),
                );
            chart
                .draw_series(std::iter::once(element))
                .map_err(draw_error)?;
        }
        let side = font(TEXT_FONT, true)
            .color(&INK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        let base = area.get_base_pixel();
        let mut side_labels = vec![(&events.bands_label, (band_top + band_bottom) / 2.0)];
        if layout.lanes > 0 {
            side_labels.push((
                &events.markers_label,
                (lane_y(0) + lane_y(layout.lanes - 1)) / 2.0,
            ));
        }
        for (label, y) in side_labels {
            let (_, pixel_y) = chart.backend_coord(&(self.x_range.start, y));
            area.draw_text(label, &side, (PLOT_LEFT as i32 - 12, pixel_y - base.1))
                .map_err(draw_error)?;
        }
        if events.bands.is_empty() && events.markers.is_empty() {
            let middle = ((self.x_range.start + self.x_range.end) / 2.0, top / 2.0);
            draw_no_data(&mut chart, middle)?;
        }
        Ok(())
    }

    /// Shades every span of every shade over the whole height of `y_range`.
    fn draw_shades(&self, chart: &mut Chart<'_, '_>, y_range: Range<f64>) -> Result<(), PlotError> {
        let clamp = |x: f64| x.clamp(self.x_range.start, self.x_range.end);
        for shade in &self.shades {
            let fill = shade.color.mix(SHADE_OPACITY).filled();
            chart
                .draw_series(shade.spans.iter().map(|&(from, to)| {
                    Rectangle::new(
                        [(clamp(from), y_range.start), (clamp(to), y_range.end)],
                        fill,
                    )
                }))
                .map_err(draw_error)?;
        }
        Ok(())
    }
}

/// A chart with f64 coordinates on both axes.
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart builder with the margins and label areas every row shares.
fn chart_builder<'a, 'b>(area: &'a Area<'b>) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_left(MARGIN_LEFT)
        .margin_right(MARGIN_RIGHT)
        .margin_top(MARGIN_V)
        .margin_bottom(MARGIN_V)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA);
    builder
}

/// The grid, the time axis and the text every row's chart shares; the caller adds its y axis.
fn mesh<'a, 'c, 'b>(
    chart: &'c mut Chart<'a, 'b>,
    x_desc: &str,
) -> MeshStyle<'a, 'c, RangedCoordf64, RangedCoordf64, BitMapBackend<'b>> {
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .x_label_formatter(&tick_text)
        .x_labels(16)
        .label_style(font(TICK_FONT, false).color(&INK))
        .axis_desc_style(font(AXIS_FONT, false).color(&INK))
        .max_light_lines(1)
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(205, 205, 205));
    mesh
}

/// [`tick_label`] in the form plotters' label formatters take.
fn tick_text(value: &f64) -> String {
    tick_label(*value)
}

/// The DejaVu face at `size` pixels.
fn font(size: u32, bold: bool) -> FontDesc<'static> {
    let style = if bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    (FAMILY, size).into_font().style(style)
}

/// The width of `text` in the regular face at `size` pixels.
fn text_width(text: &str, size: u32) -> Result<u32, PlotError> {
    font(size, false)
        .box_size(text)
        .map(|(width, _)| width)
        .map_err(|e| PlotError::Font(e.to_string()))
}

/// Black or white text, whichever reads better on `color`.
fn contrasting(color: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = color;
    let luma = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
    if luma > 150.0 { INK } else { WHITE }
}

/// The legend's entries in lines that fit the plotting area's width.
fn legend_lines(entries: Vec<Entry>) -> Result<Vec<Vec<Entry>>, PlotError> {
    let mut lines: Vec<Vec<Entry>> = Vec::new();
    let mut used = 0;
    for entry in entries {
        let width = SWATCH_WIDTH + SWATCH_GAP + text_width(&entry.label, TEXT_FONT)? + ENTRY_GAP;
        match lines.last_mut() {
            Some(line) if used + width <= PLOT_WIDTH + ENTRY_GAP => {
                line.push(entry);
                used += width;
            }
            _ => {
                lines.push(vec![entry]);
                used = width;
            }
        }
    }
    Ok(lines)
}

/// The row's title and its legend, left-aligned with the plotting area.
fn draw_head(area: &Area<'_>, title: &str, legend: &[Vec<Entry>]) -> Result<(), PlotError> {
    let title_style = font(ROW_TITLE_FONT, true)
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    area.draw_text(
        title,
        &title_style,
        (PLOT_LEFT as i32, ROW_TITLE_HEIGHT as i32 / 2 + 2),
    )
    .map_err(draw_error)?;
    let text = font(TEXT_FONT, false)
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (n, line) in legend.iter().enumerate() {
        let y = (ROW_TITLE_HEIGHT + LEGEND_LINE_HEIGHT * n as u32 + LEGEND_LINE_HEIGHT / 2) as i32;
        let mut x = PLOT_LEFT as i32;
        for entry in line {
            draw_swatch(area, entry.swatch, x, y)?;
            x += (SWATCH_WIDTH + SWATCH_GAP) as i32;
            area.draw_text(&entry.label, &text, (x, y))
                .map_err(draw_error)?;
            x += (text_width(&entry.label, TEXT_FONT)? + ENTRY_GAP) as i32;
        }
    }
    Ok(())
}

/// A legend entry's swatch, its left end at `x`, centred on `y`.
fn draw_swatch(area: &Area<'_>, swatch: Swatch, x: i32, y: i32) -> Result<(), PlotError> {
    let right = x + SWATCH_WIDTH as i32;
    match swatch {
        Swatch::Line(color, Stroke::Solid) => area.draw(&PathElement::new(
            [(x, y), (right, y)],
            color.stroke_width(3),
        )),
        Swatch::Line(color, Stroke::Dashed) => area.draw(&DashedPathElement::new(
            [(x, y), (right, y)],
            7,
            4,
            color.stroke_width(3),
        )),
        Swatch::Fill(color, opacity) => area.draw(&Rectangle::new(
            [(x, y - 9), (right, y + 9)],
            color.mix(opacity).filled(),
        )),
        Swatch::Marker => {
            let middle = x + SWATCH_WIDTH as i32 / 2;
            area.draw(&PathElement::new(
                [(middle, y - 11), (middle, y + 11)],
                INK.stroke_width(1),
            ))
            .and_then(|_| area.draw(&Circle::new((middle, y + 4), 4, INK.filled())))
        }
    }
    .map_err(draw_error)
}

/// "no data", centred at `at`.
fn draw_no_data(chart: &mut Chart<'_, '_>, at: (f64, f64)) -> Result<(), PlotError> {
    let style = font(22, true)
        .color(&MUTED)
        .pos(Pos::new(HPos::Center, VPos::Center));
    chart
        .draw_series(std::iter::once(Text::new("no data", at, style)))
        .map(|_| ())
        .map_err(draw_error)
}

/// The plotting area's height of an events row with `lanes` lanes of marker labels.
fn events_plot_height(lanes: usize) -> u32 {
    let labels = if lanes == 0 {
        0
    } else {
        BAND_GAP + LANE_HEIGHT * lanes as u32
    };
    2 * EVENTS_PAD + BAND_HEIGHT + labels
}

/// Where each marker's label goes, and how many lanes that takes: markers in time order, each
/// label in the first lane where it does not overlap the labels already there (a new lane when
/// none is free, none beyond `MAX_LANES`), right of its marker unless that runs past the plotting
/// area.
fn place_labels(
    markers: &[Marker],
    x_range: &Range<f64>,
) -> Result<(Vec<Placement>, usize), PlotError> {
    let pixel = |x: f64| (x - x_range.start) / (x_range.end - x_range.start) * PLOT_WIDTH as f64;
    let mut order: Vec<usize> = (0..markers.len()).collect();
    order.sort_by(|&a, &b| markers[a].at.total_cmp(&markers[b].at));
    let mut ends: Vec<f64> = Vec::new();
    let mut placements = vec![
        Placement {
            lane: None,
            left: false
        };
        markers.len()
    ];
    for n in order {
        let x = pixel(markers[n].at);
        let width = f64::from(text_width(&markers[n].label, TICK_FONT)?) + 4.0;
        let offset = f64::from(LABEL_OFFSET);
        let left = x + offset + width > PLOT_WIDTH as f64;
        let (from, to) = if left {
            (x - offset - width, x + 5.0)
        } else {
            (x - 5.0, x + offset + width)
        };
        let free = ends
            .iter()
            .position(|&end| end + f64::from(LABEL_GAP) <= from);
        let lane = match free {
            Some(lane) => Some(lane),
            None if ends.len() < MAX_LANES => {
                ends.push(f64::NEG_INFINITY);
                Some(ends.len() - 1)
            }
            None => None,
        };
        if let Some(lane) = lane {
            ends[lane] = to;
        }
        placements[n] = Placement { lane, left };
    }
    Ok((placements, ends.len()))
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

    #[test]
    fn a_step_function_holds_each_value_until_the_next_step() {
        let series = Series::steps(
            "capacity",
            PALETTE[0],
            &[(0.0, f64::NAN), (5.0, 1500.0), (60.0, 900.0), (400.0, 1.0)],
            100.0,
        )
        .dashed();
        assert_eq!(series.stroke, Stroke::Dashed);
        assert_eq!(
            series.segments(),
            vec![vec![
                (5.0, 1500.0),
                (60.0, 1500.0),
                (60.0, 900.0),
                (100.0, 900.0)
            ]]
        );
    }

    fn marker(at: f64, label: &str) -> Marker {
        Marker {
            at,
            label: label.into(),
        }
    }

    #[test]
    fn marker_labels_take_lanes_so_as_not_to_overlap() {
        register_fonts().unwrap();
        let markers = [
            marker(10.0, "go live 480p, ABR, recording"),
            marker(11.0, "pin orange-box"),
            marker(50.0, "sell 1 × 1 orange-box"),
            marker(99.5, "end"),
        ];
        let (placements, lanes) = place_labels(&markers, &(0.0..100.0)).unwrap();
        let lanes_of: Vec<_> = placements.iter().map(|p| p.lane).collect();
        assert_eq!(lanes_of, [Some(0), Some(1), Some(0), Some(0)]);
        assert_eq!(lanes, 2);
        assert!(placements[3].left, "a label at the right edge goes left");
        assert!(!placements[0].left);

        let crowd: Vec<_> = (0..30)
            .map(|n| marker(f64::from(n), "sell 1 × 1 egg-tray"))
            .collect();
        let (placements, lanes) = place_labels(&crowd, &(0.0..100.0)).unwrap();
        assert_eq!(lanes, MAX_LANES);
        assert!(placements.iter().any(|p| p.lane.is_none()));
    }

    #[test]
    fn a_long_legend_wraps() {
        register_fonts().unwrap();
        let entry = |n: usize| Entry {
            label: format!("a rather long legend entry number {n}"),
            swatch: Swatch::Marker,
        };
        let lines = legend_lines((0..8).map(entry).collect()).unwrap();
        assert!(lines.len() > 1);
        assert_eq!(lines.iter().map(Vec::len).sum::<usize>(), 8);
    }

    #[test]
    fn a_timeline_with_bands_markers_and_an_empty_panel_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.png");
        let timeline = Timeline {
            title: "run".into(),
            x_label: "time (s)".into(),
            x_range: 0.0..60.0,
            shades: vec![Shade {
                label: "outage".into(),
                color: SPAN_COLOR,
                spans: vec![(20.0, 30.0)],
            }],
            rows: vec![
                Row::Events(Events {
                    title: "states".into(),
                    bands_label: "state".into(),
                    bands: vec![Band {
                        from: 0.0,
                        to: 60.0,
                        label: "live".into(),
                        color: PALETTE[2],
                    }],
                    markers_label: "action".into(),
                    markers: vec![marker(5.0, "go live")],
                }),
                Row::Lines(Panel {
                    title: "nothing measured".into(),
                    y_label: "v (ms)".into(),
                    from_zero: true,
                    series: vec![Series::new("v", PALETTE[0], Vec::new())],
                }),
            ],
        };
        timeline.write_png(&path).unwrap();
        assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
        let empty = Timeline {
            x_range: 5.0..5.0,
            ..timeline
        };
        assert!(matches!(empty.write_png(&path), Err(PlotError::Empty)));
    }
}
