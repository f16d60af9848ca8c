//! The network a run plays on: the scenario's network profile with its scripted outages laid
//! over it, as one profile the network lab applies on its own clock.

use fieldcast_sandbox::netlab::{Profile, Step};

/// The network profile `base` for a run of `duration_s`, with the link down during each span of
/// `outages` ((from, to) seconds) whatever `base` says then.
pub fn with_outages(base: &Profile, outages: &[(f64, f64)], duration_s: f64) -> Profile {
    let mut times: Vec<f64> = (0..)
        .map_while(|n| base.change(n))
        .map(|c| c.at_s)
        .take_while(|&t| t <= duration_s)
        .chain(outages.iter().flat_map(|&(from, to)| [from, to]))
        .filter(|&t| t <= duration_s)
        .collect();
    times.push(0.0);
    times.sort_by(f64::total_cmp);
    times.dedup();
    let down = |t: f64| outages.iter().any(|&(from, to)| (from..to).contains(&t));
    let mut steps: Vec<Step> = Vec::new();
    let mut last = None;
    for t in times {
        let mut conditions = base.conditions_at(t);
        conditions.outage |= down(t);
        if last == Some(conditions) {
            continue;
        }
        last = Some(conditions);
        steps.push(Step {
            at_s: t,
            rate_kbit: conditions.rate_kbit,
            delay_ms: Some(conditions.delay_ms),
            loss_pct: Some(conditions.loss_pct),
            outage: Some(conditions.outage),
        });
    }
    Profile {
        name: base.name.clone(),
        description: if outages.is_empty() {
            base.description.clone()
        } else {
            format!("{} With the scenario's outages.", base.description)
        },
        repeat_every_s: None,
        steps,
    }
}

/// The spans with the link down in `profile` up to `duration_s`: (from, to) seconds.
pub fn outage_spans(profile: &Profile, duration_s: f64) -> Vec<(f64, f64)> {
    let mut spans = Vec::new();
    let mut down = None;
    for change in (0..).map_while(|n| profile.change(n)) {
        if change.at_s > duration_s {
            break;
        }
        match (change.conditions.outage, down) {
            (true, None) => down = Some(change.at_s),
            (false, Some(from)) => {
                spans.push((from, change.at_s));
                down = None;
            }
            _ => {}
        }
    }
    if let Some(from) = down {
        spans.push((from, duration_s));
    }
    spans
}

/// The link's capacity as a step function up to `duration_s`: (from second, kbit/s), 0 while
/// down, `None` when not limited.
pub fn capacity(profile: &Profile, duration_s: f64) -> Vec<(f64, Option<f64>)> {
    (0..)
        .map_while(|n| profile.change(n))
        .take_while(|c| c.at_s <= duration_s)
        .map(|c| {
            let kbps = match c.conditions.outage {
                true => Some(0.0),
                false => c.conditions.rate_kbit.map(f64::from),
            };
            (c.at_s, kbps)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_outages_are_laid_over_a_repeating_profile() {
        let flaky = Profile::builtin("flaky").unwrap();
        let merged = with_outages(&flaky, &[(5.0, 9.0)], 70.0);
        assert_eq!(merged.repeat_every_s, None);
        assert_eq!(
            outage_spans(&merged, 70.0),
            [(5.0, 9.0), (20.0, 28.0), (65.0, 70.0)]
        );
        let during = merged.conditions_at(6.0);
        assert!(during.outage);
        assert_eq!(during.rate_kbit, Some(1000));
        assert!(!merged.conditions_at(10.0).outage);
        // The merged profile is one the lab accepts.
        let json = format!(
            r#"{{"name":"m","steps":[{}]}}"#,
            merged
                .steps
                .iter()
                .map(|s| format!(
                    r#"{{"at_s":{},"rate_kbit":{},"delay_ms":{},"loss_pct":{},"outage":{}}}"#,
                    s.at_s,
                    s.rate_kbit.unwrap(),
                    s.delay_ms.unwrap(),
                    s.loss_pct.unwrap(),
                    s.outage.unwrap()
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        Profile::parse(&json, "merged").unwrap();
    }

    #[test]
    fn the_capacity_is_zero_while_down_and_none_when_unlimited() {
        let rural = Profile::builtin("rural-3g").unwrap();
        let merged = with_outages(&rural, &[(10.0, 12.0)], 30.0);
        assert_eq!(
            capacity(&merged, 30.0),
            [(0.0, Some(1000.0)), (10.0, Some(0.0)), (12.0, Some(1000.0))]
        );
        let good = Profile::builtin("good-4g").unwrap();
        let rate = good.conditions_at(0.0).rate_kbit.map(f64::from);
        assert_eq!(capacity(&good, 30.0), [(0.0, rate)]);
    }
}
