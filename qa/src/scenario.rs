//! Scenarios: one JSON file describes a whole live — the device profile, the network profile, a
//! timeline of what the farmer and the world do, and the bounds the run must stay within.
//!
//! ```json
//! {
//!   "name": "market-day",
//!   "description": "...",
//!   "device": "entry-2019",
//!   "network": "rural-3g",
//!   "duration_s": 180,
//!   "timeline": [
//!     { "at_s": 2, "action": "go_live", "profile": "480p", "abr": true, "record": true },
//!     { "at_s": 20, "action": "pin", "product": "orange-box" },
//!     { "at_s": 30, "action": "sell", "product": "orange-box", "quantity": 1, "count": 4, "every_s": 10 },
//!     { "at_s": 90, "action": "network_down" },
//!     { "at_s": 96, "action": "network_up" },
//!     { "at_s": 170, "action": "end" },
//!     { "at_s": 172, "action": "upload_replay" }
//!   ],
//!   "assertions": { "live_within_s": 20, "latency_p95_ms": 4000, "sales_match": true }
//! }
//! ```
//!
//! Times are seconds from the start of the run, which is also time 0 of the network profile.
//! The shipped scenarios are in `qa/scenarios/` and load by name.

use std::fmt;
use std::path::Path;

use fieldcast_core::StreamProfile;
use serde::{Deserialize, Serialize};

/// The shipped scenarios: (name, JSON).
const BUILTIN: [(&str, &str); 5] = [
    ("market-day", include_str!("../scenarios/market-day.json")),
    ("hilltop", include_str!("../scenarios/hilltop.json")),
    ("tunnel", include_str!("../scenarios/tunnel.json")),
    ("power-cut", include_str!("../scenarios/power-cut.json")),
    ("smoke", include_str!("../scenarios/smoke.json")),
];

/// Products a scenario may pin and sell: the sandbox's seed catalog.
pub fn known_products() -> Vec<&'static str> {
    fieldcast_sandbox::SEED_CATALOG
        .iter()
        .map(|(id, ..)| *id)
        .collect()
}

/// A whole live, as a QA engineer writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name, used in reports and directory names.
    pub name: String,
    /// What the scenario plays out, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// The device profile: a shipped name (`entry-2019`, ...) or a file.
    pub device: String,
    /// The network profile: a shipped name (`rural-3g`, ...) or a file.
    pub network: String,
    /// How long the run lasts, seconds from its start.
    pub duration_s: f64,
    /// What happens, in time order.
    pub timeline: Vec<Step>,
    /// The bounds the run must stay within.
    #[serde(default)]
    pub assertions: Assertions,
}

/// One action at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Seconds from the start of the run.
    pub at_s: f64,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
}

/// What can happen during a live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// The farmer goes live.
    GoLive {
        /// The stream profile: `270p`, `360p`, `480p` (default) or `720p`.
        #[serde(default = "default_profile")]
        profile: String,
        /// The adaptive bitrate (default on).
        #[serde(default = "yes")]
        abr: bool,
        /// Recording the replay on the phone (default off).
        #[serde(default)]
        record: bool,
    },
    /// A product is pinned (the pin open before, if any, is ended first).
    Pin {
        /// The product's id.
        product: String,
    },
    /// The open pin is ended.
    Unpin,
    /// `count` sales of `quantity` units of `product`, `every_s` apart.
    Sell {
        /// The product's id.
        product: String,
        /// Units per sale (default 1).
        #[serde(default = "one")]
        quantity: i64,
        /// Sales (default 1).
        #[serde(default = "one_u32")]
        count: u32,
        /// Seconds between them (default 0: all at once).
        #[serde(default)]
        every_s: f64,
    },
    /// The network drops out completely (until `network_up`).
    NetworkDown,
    /// The network comes back.
    NetworkUp,
    /// The app goes to the background: no frames for `secs` seconds.
    Background {
        /// How long, seconds.
        secs: f64,
    },
    /// The battery runs low: the app captures at most `max_fps` frames per second from now on.
    LowBattery {
        /// The frame-rate cap.
        max_fps: u32,
    },
    /// The phone is charged again: the frame rate is no longer capped.
    Charged,
    /// The app is killed with SIGKILL and started again `restart_after_s` later; when it was
    /// live it goes live again, as the farmer would.
    KillApp {
        /// Seconds until the restart (default 3).
        #[serde(default = "three")]
        restart_after_s: f64,
    },
    /// The farmer ends the live.
    End,
    /// The recorded replay is uploaded to the platform.
    UploadReplay,
}

fn default_profile() -> String {
    "480p".into()
}
fn yes() -> bool {
    true
}
fn one() -> i64 {
    1
}
fn one_u32() -> u32 {
    1
}
fn three() -> f64 {
    3.0
}

/// The bounds of a run; each one left out is not checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assertions {
    /// Live within this many seconds of `go_live`.
    pub live_within_s: Option<f64>,
    /// The viewer gets frames again within this many seconds of each outage's end and of each
    /// restart of the app.
    pub back_within_s: Option<f64>,
    /// The viewer's p95 latency over the run, capture to decode, at most this many ms.
    pub latency_p95_ms: Option<u64>,
    /// The platform holds every sale taken exactly once, and nothing else (default on).
    #[serde(default = "yes")]
    pub sales_match: bool,
    /// No gap between consecutive video frames of the recording longer than this, ms.
    pub max_frame_gap_ms: Option<u64>,
    /// The publisher's resident memory never above this, MB.
    pub peak_rss_mb: Option<f64>,
    /// The publisher's mean CPU while live at most this percent of the device.
    pub cpu_pct_of_device: Option<f64>,
}

impl Default for Assertions {
    fn default() -> Self {
        Assertions {
            live_within_s: None,
            back_within_s: None,
            latency_p95_ms: None,
            sales_match: true,
            max_frame_gap_ms: None,
            peak_rss_mb: None,
            cpu_pct_of_device: None,
        }
    }
}

/// Why a scenario cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum ScenarioError {
    /// The file could not be read.
    Read(String),
    /// The file is not a scenario (JSON or a field is wrong).
    Parse(String),
    /// The scenario is well-formed but cannot be played; says what and where.
    Invalid(String),
    /// No shipped scenario has this name and no such file exists.
    Unknown(String),
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Read(m) => write!(f, "cannot read the scenario: {m}"),
            ScenarioError::Parse(m) => write!(f, "not a scenario: {m}"),
            ScenarioError::Invalid(m) => write!(f, "the scenario cannot be played: {m}"),
            ScenarioError::Unknown(name) => write!(
                f,
                "no scenario `{name}`: neither a file nor one of {}",
                Scenario::builtin_names().join(", ")
            ),
        }
    }
}

impl std::error::Error for ScenarioError {}

impl Action {
    /// A short label for reports, e.g. `sell 3 × 1 orange-box`.
    pub fn label(&self) -> String {
        match self {
            Action::GoLive {
                profile,
                abr,
                record,
            } => format!(
                "go live {profile}{}{}",
                if *abr { ", ABR" } else { "" },
                if *record { ", recording" } else { "" }
            ),
            Action::Pin { product } => format!("pin {product}"),
            Action::Unpin => "unpin".into(),
            Action::Sell {
                product,
                quantity,
                count,
                ..
            } => format!("sell {count} × {quantity} {product}"),
            Action::NetworkDown => "network down".into(),
            Action::NetworkUp => "network up".into(),
            Action::Background { secs } => format!("background {secs} s"),
            Action::LowBattery { max_fps } => format!("low battery ({max_fps} fps)"),
            Action::Charged => "charged".into(),
            Action::KillApp { .. } => "app killed".into(),
            Action::End => "end".into(),
            Action::UploadReplay => "upload replay".into(),
        }
    }
}

impl Scenario {
    /// The names of the shipped scenarios.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(name, _)| *name).collect()
    }

    /// A shipped scenario by name.
    pub fn builtin(name: &str) -> Result<Scenario, ScenarioError> {
        let (_, json) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ScenarioError::Unknown(name.into()))?;
        Scenario::parse(json, name)
    }

    /// A scenario from a file, or a shipped one by name.
    pub fn load(path_or_name: &str) -> Result<Scenario, ScenarioError> {
        let path = Path::new(path_or_name);
        if path.exists() {
            let json = std::fs::read_to_string(path)
                .map_err(|e| ScenarioError::Read(format!("{path_or_name}: {e}")))?;
            return Scenario::parse(&json, path_or_name);
        }
        Scenario::builtin(path_or_name)
    }

    /// Parses and checks a scenario; `source` names it in errors.
    pub fn parse(json: &str, source: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = serde_json::from_str(json)
            .map_err(|e| ScenarioError::Parse(format!("{source}: {e}")))?;
        scenario
            .check()
            .map_err(|m| ScenarioError::Invalid(format!("{source}: {m}")))?;
        Ok(scenario)
    }

    /// The stream profile of a `go_live` action's `profile`.
    pub fn stream_profile(name: &str) -> Option<StreamProfile> {
        match name {
            "270p" => Some(StreamProfile::P270),
            "360p" => Some(StreamProfile::P360),
            "480p" => Some(StreamProfile::P480),
            "720p" => Some(StreamProfile::P720),
            _ => None,
        }
    }

    /// Spans with the network scripted down: (from, to) seconds; an outage still open at the
    /// end lasts to `duration_s`.
    pub fn scripted_outages(&self) -> Vec<(f64, f64)> {
        let mut spans = Vec::new();
        let mut down = None;
        for step in &self.timeline {
            match (&step.action, down) {
                (Action::NetworkDown, None) => down = Some(step.at_s),
                (Action::NetworkUp, Some(from)) => {
                    spans.push((from, step.at_s));
                    down = None;
                }
                _ => {}
            }
        }
        if let Some(from) = down {
            spans.push((from, self.duration_s));
        }
        spans
    }

    /// Whether the scenario records the replay.
    pub fn records(&self) -> bool {
        self.timeline
            .iter()
            .any(|s| matches!(s.action, Action::GoLive { record: true, .. }))
    }

    /// Every rule a playable scenario keeps; the first broken one, in words.
    fn check(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "the name `{}` must be letters, digits, `-` or `_`",
                self.name
            ));
        }
        if !(self.duration_s.is_finite() && self.duration_s > 0.0 && self.duration_s <= 86_400.0) {
            return Err(format!(
                "duration_s {} must be above 0 and at most a day",
                self.duration_s
            ));
        }
        let products = known_products();
        let down_windows: Vec<(f64, f64)> = self
            .timeline
            .iter()
            .filter_map(|s| match s.action {
                Action::KillApp { restart_after_s } => Some((s.at_s, s.at_s + restart_after_s)),
                _ => None,
            })
            .collect();
        let app_down = |t: f64| down_windows.iter().find(|&&(from, to)| t > from && t < to);
        let (mut live, mut ended, mut down, mut last) = (false, false, false, 0.0);
        for (n, step) in self.timeline.iter().enumerate() {
            let at = |m: String| {
                format!(
                    "step {} (at {} s, {}): {m}",
                    n + 1,
                    step.at_s,
                    step.action.label()
                )
            };
            if !(step.at_s.is_finite() && step.at_s >= 0.0 && step.at_s <= self.duration_s) {
                return Err(at(format!("at_s must be within 0..={}", self.duration_s)));
            }
            if step.at_s < last {
                return Err(at("the timeline must be in time order".into()));
            }
            last = step.at_s;
            let app_action = !matches!(
                step.action,
                Action::NetworkDown | Action::NetworkUp | Action::KillApp { .. }
            );
            let times: Vec<f64> = match &step.action {
                Action::Sell { count, every_s, .. } => (0..*count)
                    .map(|n| step.at_s + every_s * f64::from(n))
                    .collect(),
                _ => vec![step.at_s],
            };
            if let Some((from, to)) = times
                .iter()
                .find_map(|&t| app_down(t))
                .filter(|_| app_action)
            {
                return Err(at(format!(
                    "the app is not running then (killed at {from} s, started again at {to} s)"
                )));
            }
            let needs_live = |what: &str| {
                if live && !ended {
                    Ok(())
                } else {
                    Err(at(format!(
                        "{what} needs a live that has started and not ended"
                    )))
                }
            };
            match &step.action {
                Action::GoLive { profile, .. } => {
                    if live {
                        return Err(at("the scenario goes live once".into()));
                    }
                    if Scenario::stream_profile(profile).is_none() {
                        return Err(at(format!(
                            "profile `{profile}` is not one of 270p, 360p, 480p, 720p"
                        )));
                    }
                    live = true;
                }
                Action::Pin { product } | Action::Sell { product, .. }
                    if !products.contains(&product.as_str()) =>
                {
                    return Err(at(format!(
                        "unknown product `{product}` (the platform sells {})",
                        products.join(", ")
                    )));
                }
                Action::Pin { .. } | Action::Unpin => needs_live("a pin")?,
                Action::Sell {
                    quantity,
                    count,
                    every_s,
                    ..
                } => {
                    if *quantity < 1 || *count < 1 || !(every_s.is_finite() && *every_s >= 0.0) {
                        return Err(at(
                            "quantity and count must be at least 1, every_s at least 0".into(),
                        ));
                    }
                    let last_sale = step.at_s + every_s * (*count - 1) as f64;
                    if last_sale > self.duration_s {
                        return Err(at(format!(
                            "the last sale would be at {last_sale} s, after the end of the run"
                        )));
                    }
                }
                Action::NetworkDown if down => {
                    return Err(at("the network is already down".into()));
                }
                Action::NetworkUp if !down => return Err(at("the network is not down".into())),
                Action::NetworkDown | Action::NetworkUp => down = !down,
                Action::Background { secs } => {
                    needs_live("backgrounding")?;
                    if !(secs.is_finite() && *secs > 0.0) {
                        return Err(at("secs must be above 0".into()));
                    }
                }
                Action::LowBattery { max_fps } => {
                    needs_live("a frame-rate cap")?;
                    if !(1..=60).contains(max_fps) {
                        return Err(at("max_fps must be within 1..=60".into()));
                    }
                }
                Action::Charged => needs_live("the end of a frame-rate cap")?,
                Action::KillApp { restart_after_s } => {
                    if !(restart_after_s.is_finite() && *restart_after_s >= 0.0) {
                        return Err(at("restart_after_s must be at least 0".into()));
                    }
                }
                Action::End => {
                    needs_live("ending")?;
                    ended = true;
                }
                Action::UploadReplay => {
                    if !ended || !self.records() {
                        return Err(at(
                            "a replay upload needs a recorded live that has ended".into()
                        ));
                    }
                }
            }
        }
        if !live {
            return Err("the timeline never goes live".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(timeline: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(
            &format!(
                r#"{{"name":"t","device":"desktop","network":"good-4g","duration_s":60,"timeline":[{timeline}]}}"#
            ),
            "test",
        )
    }

    #[test]
    fn every_shipped_scenario_loads() {
        for name in Scenario::builtin_names() {
            let s = Scenario::builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, name);
        }
        assert!(matches!(
            Scenario::load("no-such-scenario"),
            Err(ScenarioError::Unknown(_))
        ));
    }

    #[test]
    fn actions_take_their_defaults() {
        let s = scenario(
            r#"{"at_s":1,"action":"go_live"},{"at_s":2,"action":"sell","product":"egg-tray"},
               {"at_s":3,"action":"kill_app"}"#,
        )
        .unwrap();
        assert_eq!(
            s.timeline[0].action,
            Action::GoLive {
                profile: "480p".into(),
                abr: true,
                record: false
            }
        );
        assert_eq!(
            s.timeline[1].action,
            Action::Sell {
                product: "egg-tray".into(),
                quantity: 1,
                count: 1,
                every_s: 0.0
            }
        );
        assert_eq!(
            s.timeline[2].action,
            Action::KillApp {
                restart_after_s: 3.0
            }
        );
        assert!(s.assertions.sales_match);
    }

    #[test]
    fn broken_timelines_are_refused_with_the_step_named() {
        let invalid = |timeline: &str, needle: &str| match scenario(timeline) {
            Err(ScenarioError::Invalid(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{timeline}: {other:?}"),
        };
        invalid(
            r#"{"at_s":1,"action":"pin","product":"egg-tray"}"#,
            "step 1",
        );
        invalid(
            r#"{"at_s":5,"action":"go_live"},{"at_s":2,"action":"end"}"#,
            "time order",
        );
        invalid(
            r#"{"at_s":1,"action":"go_live"},{"at_s":2,"action":"sell","product":"goat"}"#,
            "unknown product `goat`",
        );
        invalid(
            r#"{"at_s":1,"action":"go_live","profile":"4k"}"#,
            "not one of",
        );
        invalid(
            r#"{"at_s":1,"action":"go_live"},{"at_s":2,"action":"network_up"}"#,
            "not down",
        );
        invalid(
            r#"{"at_s":1,"action":"go_live"},{"at_s":50,"action":"sell","product":"egg-tray","count":3,"every_s":10}"#,
            "after the end",
        );
        invalid(
            r#"{"at_s":1,"action":"go_live"},{"at_s":2,"action":"end"},{"at_s":3,"action":"upload_replay"}"#,
            "recorded live",
        );
        invalid(r#"{"at_s":70,"action":"go_live"}"#, "within 0..=60");
        invalid("", "never goes live");
        invalid(
            r#"{"at_s":1,"action":"go_live"},{"at_s":5,"action":"kill_app","restart_after_s":4},
               {"at_s":3,"action":"sell","product":"egg-tray","count":3,"every_s":3}"#,
            "time order",
        );
        invalid(
            r#"{"at_s":1,"action":"go_live"},{"at_s":3,"action":"sell","product":"egg-tray","count":3,"every_s":3},
               {"at_s":5,"action":"kill_app","restart_after_s":4}"#,
            "not running then",
        );
    }

    #[test]
    fn unknown_actions_and_fields_are_parse_errors() {
        assert!(matches!(
            scenario(r#"{"at_s":1,"action":"dance"}"#),
            Err(ScenarioError::Parse(_))
        ));
        let extra =
            r#"{"name":"t","device":"d","network":"n","duration_s":1,"timeline":[],"colour":1}"#;
        assert!(matches!(
            Scenario::parse(extra, "x"),
            Err(ScenarioError::Parse(_))
        ));
    }

    #[test]
    fn scripted_outages_pair_down_with_up() {
        let s = scenario(
            r#"{"at_s":1,"action":"go_live"},{"at_s":10,"action":"network_down"},
               {"at_s":14,"action":"network_up"},{"at_s":50,"action":"network_down"}"#,
        )
        .unwrap();
        assert_eq!(s.scripted_outages(), [(10.0, 14.0), (50.0, 60.0)]);
    }
}
