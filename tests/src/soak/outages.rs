//! The soak's network: a steady uplink with short outages spread over the run, as a lab
//! [`Profile`].

use fieldcast_sandbox::netlab::{NetLabError, Profile};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// The uplink between outages: a decent 4G cell.
pub const RATE_KBIT: u32 = 2_500;
/// Its one-way delay.
pub const DELAY_MS: u32 = 40;
/// The shortest and longest outage, seconds.
pub const OUTAGE_S: (f64, f64) = (2.0, 4.0);
/// The link stays up at least this long after each outage, so each recovery is seen on its own.
pub const MIN_UP_AFTER_S: f64 = 10.0;

/// The time without outages at the start (to go live) and at the end (to finish cleanly):
/// 5 % of the run, within 15 s to 60 s.
pub fn quiet_s(total_s: f64) -> f64 {
    (total_s * 0.05).clamp(15.0, 60.0)
}

/// `count` outages over a run of `total_s` seconds, as (start, end) seconds from the lab's
/// start: one in each equal slot between the quiet start and end, lasting 2-4 s at a random
/// place in its slot, with at least [`MIN_UP_AFTER_S`] of link before the next slot. The same
/// `seed` gives the same outages.
pub fn schedule(total_s: f64, count: usize, seed: u64) -> Result<Vec<(f64, f64)>, String> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let quiet = quiet_s(total_s);
    let slot = (total_s - 2.0 * quiet) / count as f64;
    if slot < OUTAGE_S.1 + MIN_UP_AFTER_S {
        return Err(format!(
            "{count} outages of up to {} s with {MIN_UP_AFTER_S} s of link after each do not fit \
             in {:.1} minutes (at most {} fit)",
            OUTAGE_S.1,
            total_s / 60.0,
            ((total_s - 2.0 * quiet) / (OUTAGE_S.1 + MIN_UP_AFTER_S)).floor()
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    Ok((0..count)
        .map(|n| {
            let length = rng.random_range(OUTAGE_S.0..=OUTAGE_S.1);
            let room = slot - length - MIN_UP_AFTER_S;
            let start = quiet + n as f64 * slot + rng.random_range(0.0..=room);
            // Tenths of a second, as a person would write the profile.
            let start = (start * 10.0).round() / 10.0;
            (start, start + (length * 10.0).round() / 10.0)
        })
        .collect())
}

/// The lab profile: [`RATE_KBIT`] and [`DELAY_MS`], no loss, and the outages.
pub fn profile(outages: &[(f64, f64)]) -> Result<Profile, NetLabError> {
    Profile::parse(&profile_json(outages), "soak")
}

/// The JSON of [`profile`], as a profile file holds it (`fieldcast netlab run FILE` takes it).
pub fn profile_json(outages: &[(f64, f64)]) -> String {
    let mut steps = vec![json!({
        "at_s": 0, "rate_kbit": RATE_KBIT, "delay_ms": DELAY_MS, "loss_pct": 0, "outage": false
    })];
    for &(down, up) in outages {
        steps.push(json!({ "at_s": down, "outage": true }));
        steps.push(json!({ "at_s": up, "outage": false }));
    }
    let profile = json!({
        "name": "soak",
        "description": format!(
            "{RATE_KBIT} kbit/s, {DELAY_MS} ms one-way delay, no loss, with {} outages of {}-{} s",
            outages.len(), OUTAGE_S.0, OUTAGE_S.1
        ),
        "steps": steps,
    });
    serde_json::to_string_pretty(&profile).expect("a JSON value serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_fall_in_their_slots_with_the_link_up_between_them() {
        let (total, count) = (1800.0, 100);
        let outages = schedule(total, count, 7).unwrap();
        assert_eq!(outages.len(), count);
        let quiet = quiet_s(total);
        assert!(outages[0].0 >= quiet, "{outages:?}");
        assert!(outages[count - 1].1 <= total - quiet, "{outages:?}");
        for (down, up) in &outages {
            let length = up - down;
            assert!((1.95..=4.05).contains(&length), "{length}");
        }
        for pair in outages.windows(2) {
            assert!(pair[1].0 - pair[0].1 >= MIN_UP_AFTER_S - 0.1, "{pair:?}");
        }
        assert_eq!(outages, schedule(total, count, 7).unwrap());
        assert_ne!(outages, schedule(total, count, 8).unwrap());
    }

    #[test]
    fn too_many_outages_for_the_run_are_refused() {
        let err = schedule(180.0, 20, 1).unwrap_err();
        assert!(err.contains("do not fit"), "{err}");
        assert!(schedule(180.0, 10, 1).is_ok());
    }

    #[test]
    fn the_profile_goes_down_and_up_at_each_outage() {
        let profile = profile(&[(20.0, 23.5), (40.0, 42.0)]).unwrap();
        assert!(!profile.conditions_at(19.9).outage);
        assert!(profile.conditions_at(21.0).outage);
        assert!(!profile.conditions_at(23.5).outage);
        assert!(profile.conditions_at(41.0).outage);
        let after = profile.conditions_at(100.0);
        assert!(!after.outage);
        assert_eq!(
            (after.rate_kbit, after.delay_ms),
            (Some(RATE_KBIT), DELAY_MS)
        );
    }
}
