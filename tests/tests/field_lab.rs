//! The field lab end to end: `fieldcast qa run smoke` plays the one-minute scenario that touches
//! every kind of action (live with recording on the mid-2021 device profile over good 4G, a pin,
//! sales, an outage with a sale in it, the app in the background, a low battery, the app killed
//! and started again, the end and the replay upload), and its report's numbers are checked
//! against what the run must have seen. Needs root (network namespaces, cgroups); without it the
//! test says so and passes only when `FIELDCAST_REQUIRE_LAB` is not set.

use std::process::Command;

use fieldcast_qa::cage::DeviceCage;
use fieldcast_qa::record::{RUN_FILE, RunRecord, SUMMARY_FILE};
use fieldcast_qa::scenario::{Action, Scenario};
use fieldcast_sandbox::netlab::NetLab;
use fieldcast_tests::fieldcast_binary;

/// The plots every report has.
const PLOTS: [&str; 5] = [
    "bitrate.png",
    "latency.png",
    "states.png",
    "outbox.png",
    "device.png",
];

#[test]
fn the_smoke_scenario_runs_end_to_end_and_its_report_adds_up() {
    if !NetLab::available_or_skip() || !DeviceCage::available_or_skip() {
        return;
    }
    let scenario = Scenario::builtin("smoke").unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(fieldcast_binary())
        .args(["qa", "run", "smoke", "--out"])
        .arg(out.path())
        .output()
        .expect("fieldcast runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");

    let record = RunRecord::read(out.path()).unwrap_or_else(|e| panic!("{e}\n{stderr}"));
    assert!(
        output.status.success() && record.pass,
        "the smoke scenario failed ({}): {}",
        output.status,
        record.summary_line()
    );
    assert!(stdout.contains(&record.summary_line()), "{stdout}");

    // Every scripted sale was taken (none falls while the app is down) and is on the platform once.
    let sales: u32 = scenario
        .timeline
        .iter()
        .map(|s| match s.action {
            Action::Sell { count, .. } => count,
            _ => 0,
        })
        .sum();
    let f = &record.figures;
    assert_eq!(f.sales_taken, sales as usize, "{f:?}");
    assert_eq!(
        (f.sales_on_platform, f.sales_lost, f.sales_doubled),
        (f.sales_taken, 0, 0)
    );
    // The outage and the restart each count as an interruption the viewer came back from.
    assert_eq!(f.back_after_s.len(), 2, "{f:?}");
    // Two recording segments: the one cut by the kill is readable, the restart's continues
    // the numbering.
    assert_eq!(f.recording_files, 2, "{f:?}");
    assert!(
        f.live_after_s.is_some() && f.latency_p95_ms.is_some(),
        "{f:?}"
    );
    assert!(f.viewer_frames > 300, "{f:?}");
    assert!(
        f.media_s > 30.0 && f.cpu_s_per_media_s.is_some_and(|c| c > 0.0),
        "{f:?}"
    );
    assert!(f.peak_rss_mb.is_some_and(|mb| mb > 10.0), "{f:?}");

    // One sample a second over the whole run, each with the device's figures once the app runs.
    assert!(
        record.samples.len() as f64 >= scenario.duration_s - 3.0,
        "{} samples",
        record.samples.len()
    );
    let with_cpu = record
        .samples
        .iter()
        .filter(|s| s.cpu_pct.is_some())
        .count();
    assert!(with_cpu as f64 >= scenario.duration_s - 5.0, "{with_cpu}");
    let killed = record
        .states
        .iter()
        .position(|m| m.label == "killed")
        .expect("the kill is in the state timeline");
    let live = |marks: &[fieldcast_qa::record::Mark]| marks.iter().any(|m| m.label == "live");
    assert!(
        live(&record.states[..killed]) && live(&record.states[killed..]),
        "live before the kill and after the restart: {:?}",
        record.states
    );
    // The network lab's capacity drops to 0 during the scripted outage.
    assert!(record.capacity_kbps.iter().any(|&(_, c)| c == Some(0.0)));
    assert_eq!(record.outages.len(), 1);

    // The files people read.
    let summary = RunRecord::read(&out.path().join(SUMMARY_FILE)).unwrap();
    assert!(summary.samples.is_empty() && summary.assertions == record.assertions);
    assert!(out.path().join(RUN_FILE).is_file());
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    for plot in PLOTS {
        let png = std::fs::read(out.path().join(plot)).unwrap_or_else(|e| panic!("{plot}: {e}"));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{plot}");
    }
    assert!(html.matches("data:image/png;base64,").count() >= PLOTS.len());
    for check in &record.assertions {
        assert!(
            html.contains(&check.name),
            "{} missing from the report",
            check.name
        );
    }
}
