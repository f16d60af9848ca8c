//! `fieldcast demo`: the embedded default. A local ingest, the test source live for a while,
//! then what the ingest received, read back from its recording.

use fieldcast_sandbox::{LocalIngest, MediaReport};

use crate::live::{LiveArgs, run as go_live};

/// Stream key the demo publishes under.
const KEY: &str = "demo";

/// Runs the demo for `secs` seconds of live time.
pub async fn run(secs: u64) -> Result<(), String> {
    let ingest = LocalIngest::start().map_err(|e| e.to_string())?;
    println!("local ingest (nginx-rtmp) on 127.0.0.1:{}", ingest.port());
    let args = LiveArgs {
        ingest: ingest.url(KEY),
        source: "test".into(),
        profile: "480p".into(),
        video_kbps: None,
        fps: 30,
        encoder: "auto".into(),
        record: None,
        duration: Some(secs as f64),
        latency_stamp: false,
        quiet: false,
    };
    go_live(args).await?;
    // nginx closes the recording when the publisher leaves; give it a moment.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let report = MediaReport::probe(&ingest.recording(KEY))?;
    println!("the ingest received: {report}");
    Ok(())
}
