//! Network profiles: a timeline of link conditions, read from JSON (see docs/QA.md, "Network lab").

use std::path::Path;

use serde::Deserialize;

use super::NetLabError;

/// The profiles shipped in `sandbox/netlab-profiles/`, embedded in the binary.
const BUILTIN: [(&str, &str); 7] = [
    (
        "good-4g",
        include_str!("../../netlab-profiles/good-4g.json"),
    ),
    (
        "rural-3g",
        include_str!("../../netlab-profiles/rural-3g.json"),
    ),
    ("edge", include_str!("../../netlab-profiles/edge.json")),
    ("flaky", include_str!("../../netlab-profiles/flaky.json")),
    (
        "collapse",
        include_str!("../../netlab-profiles/collapse.json"),
    ),
    (
        "steady-outage",
        include_str!("../../netlab-profiles/steady-outage.json"),
    ),
    (
        "step-up",
        include_str!("../../netlab-profiles/step-up.json"),
    ),
];

/// The highest one-way delay a profile may ask for, in milliseconds.
const MAX_DELAY_MS: u32 = 10_000;
/// The shortest repeat period, in seconds, so a repeating timeline cannot spin.
const MIN_REPEAT_S: f64 = 0.1;

/// The link conditions in force at one moment; the same in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Conditions {
    /// Rate limit in kbit/s (1000 bit/s) at the IP layer; `None` is unlimited.
    pub rate_kbit: Option<u32>,
    /// One-way delay in milliseconds (the round trip is twice this).
    pub delay_ms: u32,
    /// Random loss in percent of packets, 0 to 100, with a resolution of 0.01.
    pub loss_pct: f64,
    /// Whether the link passes nothing at all.
    pub outage: bool,
}

impl std::fmt::Display for Conditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rate_kbit {
            Some(rate) => write!(f, "rate {rate} kbit/s")?,
            None => write!(f, "rate unlimited")?,
        }
        write!(f, ", delay {} ms, loss {}%", self.delay_ms, self.loss_pct)?;
        if self.outage {
            write!(f, ", OUTAGE")?;
        }
        Ok(())
    }
}

/// One point of a timeline: the fields it sets change at `at_s`; the others keep their value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Seconds from the start of the lab (or of the current repetition).
    pub at_s: f64,
    /// New rate limit in kbit/s.
    #[serde(default)]
    pub rate_kbit: Option<u32>,
    /// New one-way delay in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u32>,
    /// New random loss in percent.
    #[serde(default)]
    pub loss_pct: Option<f64>,
    /// Whether the link is down from here on.
    #[serde(default)]
    pub outage: Option<bool>,
}

impl Step {
    /// `before` with the fields this step sets replaced.
    pub fn apply(&self, before: Conditions) -> Conditions {
        Conditions {
            rate_kbit: self.rate_kbit.or(before.rate_kbit),
            delay_ms: self.delay_ms.unwrap_or(before.delay_ms),
            loss_pct: self.loss_pct.unwrap_or(before.loss_pct),
            outage: self.outage.unwrap_or(before.outage),
        }
    }
}

/// A network profile: a named timeline of [`Step`]s, optionally repeating.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name, e.g. `rural-3g`.
    pub name: String,
    /// What the profile emulates.
    #[serde(default)]
    pub description: String,
    /// When set, the timeline starts over every this many seconds.
    #[serde(default)]
    pub repeat_every_s: Option<f64>,
    /// The steps, the first at 0 s, in increasing time.
    pub steps: Vec<Step>,
}

/// A planned change of conditions: when, and what is in force from then on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// Seconds since the lab started.
    pub at_s: f64,
    /// Index of the step in [`Profile::steps`].
    pub step: usize,
    /// The conditions from `at_s` on.
    pub conditions: Conditions,
}

impl Profile {
    /// The names of the shipped profiles.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(name, _)| *name).collect()
    }

    /// A shipped profile by name (`good-4g`, `rural-3g`, `edge`, `flaky`, `collapse`).
    pub fn builtin(name: &str) -> Result<Profile, NetLabError> {
        let (_, json) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| NetLabError::UnknownProfile(name.to_string()))?;
        Profile::parse(json, name)
    }

    /// A profile from a JSON file if `path_or_name` is an existing file, else a shipped profile.
    pub fn load(path_or_name: &str) -> Result<Profile, NetLabError> {
        let path = Path::new(path_or_name);
        if path.is_file() {
            let json = std::fs::read_to_string(path).map_err(|e| NetLabError::Profile {
                origin: path_or_name.to_string(),
                reason: e.to_string(),
            })?;
            Profile::parse(&json, path_or_name)
        } else {
            Profile::builtin(path_or_name)
        }
    }

    /// Parses and validates a profile; `source` names it in errors (a path or a name).
    pub fn parse(json: &str, source: &str) -> Result<Profile, NetLabError> {
        let invalid = |reason: String| NetLabError::Profile {
            origin: source.to_string(),
            reason,
        };
        let profile: Profile = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        profile.validate().map_err(invalid)?;
        Ok(profile)
    }

    fn validate(&self) -> Result<(), String> {
        let first = self.steps.first().ok_or("`steps` is empty")?;
        if first.at_s != 0.0 {
            return Err(format!("the first step must be at 0 s, not {}", first.at_s));
        }
        for (i, pair) in self.steps.windows(2).enumerate() {
            if pair[1].at_s <= pair[0].at_s {
                return Err(format!(
                    "step {}: `at_s` {} is not after the previous step's {}",
                    i + 1,
                    pair[1].at_s,
                    pair[0].at_s
                ));
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            if !step.at_s.is_finite() {
                return Err(format!("step {i}: `at_s` must be a finite number"));
            }
            if step.rate_kbit == Some(0) {
                return Err(format!("step {i}: `rate_kbit` must be at least 1"));
            }
            if step.delay_ms.is_some_and(|d| d > MAX_DELAY_MS) {
                return Err(format!(
                    "step {i}: `delay_ms` must be at most {MAX_DELAY_MS}"
                ));
            }
            if step.loss_pct.is_some_and(|l| !(0.0..=100.0).contains(&l)) {
                return Err(format!("step {i}: `loss_pct` must be within 0 to 100"));
            }
        }
        if let Some(every) = self.repeat_every_s {
            let last = self.steps[self.steps.len() - 1].at_s;
            if !(every >= MIN_REPEAT_S && every > last && every.is_finite()) {
                return Err(format!(
                    "`repeat_every_s` must be at least {MIN_REPEAT_S} and after the last step ({last} s)"
                ));
            }
        }
        Ok(())
    }

    /// The `n`th change of the timeline (0 is the start), or `None` past the end of a
    /// timeline that does not repeat.
    pub fn change(&self, n: usize) -> Option<Change> {
        let len = self.steps.len();
        let (cycle, step) = (n / len, n % len);
        let offset = match (cycle, self.repeat_every_s) {
            (0, _) => 0.0,
            (_, Some(every)) => cycle as f64 * every,
            (_, None) => return None,
        };
        // A repetition starts from where the previous one ended, the first from the defaults.
        let mut conditions = Conditions::default();
        if cycle > 0 {
            for s in &self.steps {
                conditions = s.apply(conditions);
            }
        }
        for s in &self.steps[..=step] {
            conditions = s.apply(conditions);
        }
        Some(Change {
            at_s: offset + self.steps[step].at_s,
            step,
            conditions,
        })
    }

    /// The conditions in force `t_s` seconds after the lab started.
    pub fn conditions_at(&self, t_s: f64) -> Conditions {
        let mut current = Conditions::default();
        for n in 0.. {
            match self.change(n) {
                Some(change) if change.at_s <= t_s => current = change.conditions,
                _ => break,
            }
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_with_the_documented_figures() {
        for name in Profile::builtin_names() {
            Profile::builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let rural = Profile::builtin("rural-3g").unwrap().conditions_at(0.0);
        assert_eq!(rural.rate_kbit, Some(1000));
        assert_eq!(rural.delay_ms, 150);
        assert_eq!(rural.loss_pct, 1.0);
        let edge = Profile::builtin("edge").unwrap().conditions_at(5.0);
        assert_eq!(
            (edge.rate_kbit, edge.delay_ms, edge.loss_pct),
            (Some(300), 300, 2.0)
        );
        let good = Profile::builtin("good-4g").unwrap().conditions_at(1.0);
        assert_eq!((good.rate_kbit, good.delay_ms), (Some(5000), 40));
    }

    #[test]
    fn collapse_falls_for_thirty_seconds_then_recovers() {
        let p = Profile::builtin("collapse").unwrap();
        assert_eq!(p.conditions_at(19.9).rate_kbit, Some(2000));
        assert_eq!(p.conditions_at(20.0).rate_kbit, Some(300));
        assert_eq!(p.conditions_at(49.9).rate_kbit, Some(300));
        assert_eq!(p.conditions_at(50.0).rate_kbit, Some(2000));
        assert_eq!(p.conditions_at(500.0).rate_kbit, Some(2000));
        assert_eq!(p.change(3), None);
    }

    #[test]
    fn flaky_repeats_an_eight_second_outage_every_45_seconds() {
        let p = Profile::builtin("flaky").unwrap();
        for cycle in 0..4 {
            let base = cycle as f64 * 45.0;
            assert!(!p.conditions_at(base + 19.0).outage);
            assert!(p.conditions_at(base + 20.0).outage);
            assert!(p.conditions_at(base + 27.9).outage);
            assert!(!p.conditions_at(base + 28.0).outage);
            assert_eq!(p.conditions_at(base + 24.0).rate_kbit, Some(1000));
        }
        assert_eq!(p.change(4).map(|c| c.at_s), Some(65.0));
    }

    #[test]
    fn fields_left_out_keep_their_value_across_repetitions() {
        let json = r#"{"name":"t","repeat_every_s":10,"steps":[
            {"at_s":0,"delay_ms":5},{"at_s":4,"rate_kbit":100}]}"#;
        let p = Profile::parse(json, "t").unwrap();
        assert_eq!(p.conditions_at(1.0).rate_kbit, None);
        assert_eq!(p.conditions_at(5.0).rate_kbit, Some(100));
        // The second repetition's first step does not reset the rate set by the first one.
        assert_eq!(p.conditions_at(11.0).rate_kbit, Some(100));
        assert_eq!(p.conditions_at(11.0).delay_ms, 5);
    }

    #[test]
    fn invalid_profiles_say_what_is_wrong() {
        let cases = [
            (r#"{"name":"t","steps":[]}"#, "empty"),
            (r#"{"name":"t","steps":[{"at_s":1}]}"#, "at 0 s"),
            (
                r#"{"name":"t","steps":[{"at_s":0},{"at_s":0}]}"#,
                "not after",
            ),
            (
                r#"{"name":"t","steps":[{"at_s":0,"rate_kbit":0}]}"#,
                "at least 1",
            ),
            (
                r#"{"name":"t","steps":[{"at_s":0,"loss_pct":101}]}"#,
                "0 to 100",
            ),
            (
                r#"{"name":"t","steps":[{"at_s":0,"rate":5}]}"#,
                "unknown field",
            ),
            (
                r#"{"name":"t","repeat_every_s":2,"steps":[{"at_s":0},{"at_s":3}]}"#,
                "repeat_every_s",
            ),
        ];
        for (json, expected) in cases {
            let err = Profile::parse(json, "mine.json").unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
            assert!(err.contains("mine.json"), "{err}");
        }
    }

    #[test]
    fn unknown_names_list_the_shipped_profiles() {
        let err = Profile::load("no-such-profile").unwrap_err().to_string();
        assert!(err.contains("rural-3g"), "{err}");
    }
}
