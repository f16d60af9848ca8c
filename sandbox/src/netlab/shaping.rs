//! Applies [`Conditions`] to the lab's veth pair: `tc tbf` for the rate, nftables for random
//! loss and outages, and the delay relays' shared delay; or `tc netem` for delay and loss where
//! the kernel has it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::NetLabError;
use super::ns::tool;
use super::profile::Conditions;

/// The veth end inside the publisher namespace.
pub(crate) const PUBLISHER_IF: &str = "fcl-pub";
/// The veth end inside the ingest namespace.
pub(crate) const INGEST_IF: &str = "fcl-ing";
/// The nftables table the lab owns in each namespace.
const NFT_TABLE: &str = "fieldcast_netlab";
/// How long a packet may wait in the rate limiter's queue before it is dropped.
const QUEUE_LATENCY: &str = "300ms";
/// The smallest token bucket: two full-size Ethernet frames.
const MIN_BURST_BYTES: u64 = 3028;
/// nftables loss rules draw from 0..LOSS_SCALE, so loss has a resolution of 0.01 %.
const LOSS_SCALE: u64 = 10_000;

/// How delay and loss are emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapingMode {
    /// The kernel has netem: delay and loss by `tc netem`, rate by `tbf` under it.
    Netem,
    /// No netem: delay by the in-process relays, loss by nftables `numgen random`, rate by `tbf`.
    Relay,
}

/// Applies conditions to both directions of the lab's link.
pub(crate) struct Shaper {
    sides: [(String, &'static str); 2],
    mode: ShapingMode,
    relay_delay_ms: Arc<AtomicU32>,
    /// The conditions fully in force; `None` before the first change and after a failed one.
    in_force: Mutex<Option<Conditions>>,
}

/// Which of the lab's tools a change of conditions has to run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rerun {
    /// The qdiscs (`tc`): rate, and delay and loss under netem.
    qdisc: bool,
    /// The nftables filter: outage, and loss without netem.
    filter: bool,
}

impl ShapingMode {
    /// What the qdiscs carry of `c` in this mode.
    fn qdisc_part(self, c: &Conditions) -> (Option<u32>, u32, f64) {
        match self {
            ShapingMode::Netem => (c.rate_kbit, c.delay_ms, c.loss_pct),
            ShapingMode::Relay => (c.rate_kbit, 0, 0.0),
        }
    }

    /// What the nftables filter carries of `c` in this mode: loss in percent, and the outage.
    fn filter_part(self, c: &Conditions) -> (f64, bool) {
        match self {
            ShapingMode::Netem => (0.0, c.outage),
            ShapingMode::Relay => (c.loss_pct, c.outage),
        }
    }

    /// The tools to run to go from `was` (unknown: `None`) to `now`; a change that touches
    /// only the rate runs `tc` alone, so it is in force sooner.
    fn rerun(self, was: Option<&Conditions>, now: &Conditions) -> Rerun {
        Rerun {
            qdisc: was.is_none_or(|w| self.qdisc_part(w) != self.qdisc_part(now)),
            filter: was.is_none_or(|w| self.filter_part(w) != self.filter_part(now)),
        }
    }
}

impl Shaper {
    /// Picks the mode by trying a netem qdisc on the publisher's veth.
    pub(crate) fn new(publisher: &str, ingest: &str, relay_delay_ms: Arc<AtomicU32>) -> Shaper {
        let probe = [
            "-n",
            publisher,
            "qdisc",
            "add",
            "dev",
            PUBLISHER_IF,
            "root",
            "handle",
            "1:",
            "netem",
        ];
        let mode = match tool("tc", &probe, None) {
            Ok(_) => ShapingMode::Netem,
            Err(_) => ShapingMode::Relay,
        };
        Shaper {
            sides: [
                (publisher.to_string(), PUBLISHER_IF),
                (ingest.to_string(), INGEST_IF),
            ],
            mode,
            relay_delay_ms,
            in_force: Mutex::new(None),
        }
    }

    /// How delay and loss are emulated.
    pub(crate) fn mode(&self) -> ShapingMode {
        self.mode
    }

    /// Puts `c` in force on both veth ends (each shapes what it sends and filters what it gets),
    /// running again only the tools whose part of the conditions changed.
    pub(crate) fn apply(&self, c: &Conditions) -> Result<(), NetLabError> {
        let mut in_force = self.in_force.lock().unwrap_or_else(|p| p.into_inner());
        // Unknown until every step below has succeeded: a failed change is redone in full.
        let rerun = self.mode.rerun(in_force.take().as_ref(), c);
        for (ns, dev) in &self.sides {
            if rerun.qdisc {
                match self.mode {
                    ShapingMode::Netem => netem(ns, dev, c)?,
                    ShapingMode::Relay => tbf(ns, dev, c.rate_kbit)?,
                }
            }
            if rerun.filter {
                let (loss, outage) = self.mode.filter_part(c);
                let rules = nft_rules(dev, loss, outage);
                tool("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(&rules))?;
            }
        }
        if self.mode == ShapingMode::Relay {
            self.relay_delay_ms.store(c.delay_ms, Ordering::Relaxed);
        }
        *in_force = Some(*c);
        Ok(())
    }
}

/// The token-bucket arguments for a rate: burst about 10 ms of traffic, at least two frames.
fn tbf_args(rate_kbit: u32) -> [String; 6] {
    let burst = (u64::from(rate_kbit) * 1000 / 8 / 100).max(MIN_BURST_BYTES);
    [
        "rate".into(),
        format!("{rate_kbit}kbit"),
        "burst".into(),
        burst.to_string(),
        "latency".into(),
        QUEUE_LATENCY.into(),
    ]
}

fn tc(ns: &str, args: &[&str]) -> Result<(), NetLabError> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    tool("tc", &full, None).map(drop)
}

fn tbf(ns: &str, dev: &str, rate_kbit: Option<u32>) -> Result<(), NetLabError> {
    match rate_kbit {
        Some(rate) => {
            let extra = tbf_args(rate);
            let mut args = vec!["qdisc", "replace", "dev", dev, "root", "tbf"];
            args.extend(extra.iter().map(String::as_str));
            tc(ns, &args)
        }
        // Deleting a root qdisc that is not there fails harmlessly.
        None => {
            let _ = tc(ns, &["qdisc", "del", "dev", dev, "root"]);
            Ok(())
        }
    }
}

fn netem(ns: &str, dev: &str, c: &Conditions) -> Result<(), NetLabError> {
    let delay = format!("{}ms", c.delay_ms);
    let loss = format!("{}%", c.loss_pct);
    let root = [
        "qdisc", "replace", "dev", dev, "root", "handle", "1:", "netem", "delay", &delay, "loss",
        &loss,
    ];
    tc(ns, &root)?;
    match c.rate_kbit {
        Some(rate) => {
            let extra = tbf_args(rate);
            let mut args = vec![
                "qdisc", "replace", "dev", dev, "parent", "1:1", "handle", "10:", "tbf",
            ];
            args.extend(extra.iter().map(String::as_str));
            tc(ns, &args)
        }
        None => {
            let _ = tc(
                ns,
                &["qdisc", "del", "dev", dev, "parent", "1:1", "handle", "10:"],
            );
            Ok(())
        }
    }
}

/// One atomic nftables transaction replacing the lab's table: drop everything arriving on
/// `dev` during an outage, else a random `loss_pct` of it.
fn nft_rules(dev: &str, loss_pct: f64, outage: bool) -> String {
    let rule = if outage {
        format!("iifname \"{dev}\" drop")
    } else if loss_pct > 0.0 {
        let below = (loss_pct / 100.0 * LOSS_SCALE as f64).round() as u64;
        format!("iifname \"{dev}\" numgen random mod {LOSS_SCALE} < {below} drop")
    } else {
        String::new()
    };
    format!(
        "table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n\
         table inet {NFT_TABLE} {{\n  chain arrive {{\n    \
         type filter hook prerouting priority raw; policy accept;\n    {rule}\n  }}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_rules_use_basis_points() {
        let rules = nft_rules("fcl-ing", 1.5, false);
        assert!(
            rules.contains("numgen random mod 10000 < 150 drop"),
            "{rules}"
        );
        assert!(nft_rules("x", 0.0, true).contains("iifname \"x\" drop"));
        assert!(!nft_rules("x", 0.0, false).contains("drop"));
    }

    #[test]
    fn a_change_reruns_only_the_tools_whose_part_changed() {
        let was = Conditions {
            rate_kbit: Some(1000),
            delay_ms: 40,
            loss_pct: 1.0,
            outage: false,
        };
        let rate = Conditions {
            rate_kbit: Some(4000),
            ..was
        };
        let delay = Conditions {
            delay_ms: 300,
            ..was
        };
        let loss = Conditions {
            loss_pct: 5.0,
            ..was
        };
        let outage = Conditions {
            outage: true,
            ..was
        };
        let rerun = |qdisc, filter| Rerun { qdisc, filter };
        for (mode, now, expected) in [
            (ShapingMode::Relay, &rate, rerun(true, false)),
            (ShapingMode::Relay, &delay, rerun(false, false)),
            (ShapingMode::Relay, &loss, rerun(false, true)),
            (ShapingMode::Relay, &outage, rerun(false, true)),
            (ShapingMode::Netem, &rate, rerun(true, false)),
            (ShapingMode::Netem, &delay, rerun(true, false)),
            (ShapingMode::Netem, &loss, rerun(true, false)),
            (ShapingMode::Netem, &outage, rerun(false, true)),
            (ShapingMode::Relay, &was, rerun(false, false)),
        ] {
            assert_eq!(mode.rerun(Some(&was), now), expected, "{mode:?} to {now}");
        }
        for mode in [ShapingMode::Relay, ShapingMode::Netem] {
            assert_eq!(mode.rerun(None, &was), rerun(true, true), "{mode:?} first");
        }
    }

    #[test]
    fn bursts_cover_ten_milliseconds_and_two_frames() {
        assert_eq!(tbf_args(5000)[3], "6250");
        assert_eq!(tbf_args(300)[3], MIN_BURST_BYTES.to_string());
    }
}
