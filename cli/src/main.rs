//! `fieldcast`: go live from a desktop, run a local ingest, measure latency, run the demo.

mod demo;
mod live;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "fieldcast",
    version,
    about = "FieldCast: live selling from the field"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Go live to an ingest URL (rtmp://, rtmps:// or srt://).
    Live(live::LiveArgs),
    /// Play a stream as a viewer and report capture-to-player latency (needs a source with --latency-stamp).
    Probe {
        /// Stream URL to play, e.g. rtmp://127.0.0.1:1935/live/farm.
        #[arg(long)]
        url: String,
        /// How long to measure, in seconds.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a local RTMP ingest (nginx-rtmp) until Ctrl-C and print its publish URL.
    Ingest {
        /// Stream key to print the URL for.
        #[arg(long, default_value = "farm")]
        key: String,
    },
    /// The end-to-end demo: local ingest, go live from the test source, read back what arrived.
    Demo {
        /// Seconds to stay live.
        #[arg(long, default_value_t = 20)]
        secs: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let result = match Cli::parse().command {
        Command::Live(args) => live::run(args).await,
        Command::Probe {
            url,
            duration,
            json,
        } => probe(url, duration, json).await,
        Command::Ingest { key } => ingest(key).await,
        Command::Demo { secs } => demo::run(secs).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn probe(url: String, secs: u64, json: bool) -> Result<(), String> {
    let report = tokio::task::spawn_blocking(move || {
        fieldcast_core::receiver::measure_latency(&url, std::time::Duration::from_secs(secs))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "latency over {} frames: p50 {} ms, p95 {} ms, p99 {} ms, max {} ms ({} frames without a stamp)",
            report.samples,
            report.p50_ms,
            report.p95_ms,
            report.p99_ms,
            report.max_ms,
            report.unreadable
        );
    }
    if report.samples == 0 {
        return Err(
            "no stamped frame arrived: is the publisher running with --latency-stamp?".into(),
        );
    }
    Ok(())
}

async fn ingest(key: String) -> Result<(), String> {
    let ingest = fieldcast_sandbox::LocalIngest::start().map_err(|e| e.to_string())?;
    println!("ingest listening: publish to {}", ingest.url(&key));
    println!("press Ctrl-C to stop");
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    drop(ingest);
    Ok(())
}
