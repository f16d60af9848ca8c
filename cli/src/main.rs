//! `fieldcast`: go live from a desktop, run a local ingest, measure latency, run the demo.

mod commerce;
mod demo;
mod event_json;
mod live;
mod platform;
mod qa;
mod signals;

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
    Probe(ProbeArgs),
    /// Run a local RTMP ingest (nginx-rtmp) until Ctrl-C or SIGTERM and print its publish URL.
    Ingest {
        /// Stream key to print the URL for.
        #[arg(long, default_value = "farm")]
        key: String,
    },
    /// The end-to-end demo on a local sandbox: go live, pin products, sell offline, sync, upload the replay.
    Demo {
        /// Seconds to stay live.
        #[arg(long, default_value_t = 20)]
        secs: u64,
    },
    /// Run the local platform sandbox (API + RTMP ingest) until Ctrl-C.
    Sandbox {
        /// API port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Keep the database, uploads and recordings here (default: a temp dir removed at exit).
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Write token to accept (default: sandbox-token).
        #[arg(long)]
        token: Option<String>,
        /// Do not start the nginx-rtmp ingest.
        #[arg(long)]
        no_ingest: bool,
        /// Also serve the API over TLS on this port (0 picks a free one), with a certificate from
        /// a private CA written to the data directory as tls-ca.pem.
        #[arg(long)]
        tls_port: Option<u16>,
    },
    /// The network lab (root): run COMMAND in a namespace shaped by PROFILE, with an nginx-rtmp
    /// ingest behind the shaped link at $FIELDCAST_NETLAB_INGEST.
    Netlab {
        #[command(subcommand)]
        command: NetlabCommand,
    },
    /// The field lab (root): scenarios on emulated phones and networks, with reports.
    Qa {
        #[command(subcommand)]
        command: qa::QaCommand,
    },
    /// The local product catalog.
    Products {
        #[command(flatten)]
        store: commerce::StoreArgs,
        #[command(subcommand)]
        command: commerce::ProductsCommand,
    },
    /// Record a sale; it is durable when the command returns and syncs later.
    Sell {
        #[command(flatten)]
        store: commerce::StoreArgs,
        #[command(flatten)]
        sale: commerce::SellArgs,
    },
    /// Inspect the outbox of records waiting for the platform (and sync it with --sync).
    Queue {
        #[command(flatten)]
        store: commerce::StoreArgs,
        #[command(flatten)]
        queue: commerce::QueueArgs,
    },
}

/// Options of `fieldcast probe`.
#[derive(clap::Args)]
struct ProbeArgs {
    /// Stream URL to play, e.g. rtmp://127.0.0.1:1935/live/farm.
    #[arg(long)]
    url: String,
    /// How long to measure, in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Keep playing until the duration, opening the stream again whenever it ends or fails
    /// (the publisher lost its link, the ingest closed its players).
    #[arg(long)]
    follow: bool,
    /// Print one JSON line per decoded frame (wall_ms, capture_ms, latency_ms, pts_ms, width,
    /// height), then a JSON summary line with "event":"summary".
    #[arg(long)]
    frames: bool,
}

/// `fieldcast netlab ...`
#[derive(Subcommand)]
enum NetlabCommand {
    /// Run COMMAND under a profile: a built-in name (good-4g, rural-3g, edge, flaky, collapse) or
    /// a JSON file, e.g. `fieldcast netlab run edge -- fieldcast live --ingest $FIELDCAST_NETLAB_INGEST/key`.
    Run {
        profile: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let result = match Cli::parse().command {
        Command::Live(args) => live::run(args).await,
        Command::Probe(args) => probe(args).await,
        Command::Ingest { key } => ingest(key).await,
        Command::Demo { secs } => demo::run(secs).await,
        Command::Sandbox {
            port,
            data_dir,
            token,
            no_ingest,
            tls_port,
        } => {
            let mut opts = fieldcast_sandbox::SandboxOptions {
                port,
                data_dir,
                ingest: !no_ingest,
                tls_port,
                ..Default::default()
            };
            if let Some(token) = token {
                opts.tokens = vec![token];
            }
            tokio::task::spawn_blocking(move || fieldcast_sandbox::run_until_signal(opts))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
        }
        Command::Netlab {
            command: NetlabCommand::Run { profile, command },
        } => match tokio::task::spawn_blocking(move || {
            fieldcast_sandbox::netlab::run_command(&profile, &command)
        })
        .await
        {
            Ok(Ok(0)) => Ok(()),
            Ok(Ok(code)) => return ExitCode::from(code.clamp(1, 255) as u8),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        // On a thread of its own outside the async runtime, as an app runs the SDK.
        Command::Qa { command } => {
            return std::thread::spawn(move || qa::run(command))
                .join()
                .unwrap_or(ExitCode::FAILURE);
        }
        Command::Products { store, command } => {
            blocking(move || commerce::products(&store, command)).await
        }
        Command::Sell { store, sale } => blocking(move || commerce::sell(&store, sale)).await,
        Command::Queue { store, queue } => blocking(move || commerce::queue(&store, queue)).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs blocking store and sync work off the async runtime.
async fn blocking(f: impl FnOnce() -> Result<(), String> + Send + 'static) -> Result<(), String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
}

async fn probe(args: ProbeArgs) -> Result<(), String> {
    let ProbeArgs {
        url,
        duration,
        json,
        follow,
        frames,
    } = args;
    let duration = std::time::Duration::from_secs(duration);
    let (report, mut summary) = tokio::task::spawn_blocking(move || {
        let print = |frame: fieldcast_core::receiver::FrameArrival| {
            if let (true, Ok(line)) = (frames, serde_json::to_string(&frame)) {
                println!("{line}");
            }
        };
        let summary = if follow {
            fieldcast_core::receiver::follow_frames(&url, duration, print)
                .map(|r| (r.latency, serde_json::json!(r)))
        } else {
            fieldcast_core::receiver::play_frames(&url, duration, print)
                .map(|r| (r, serde_json::json!(r)))
        };
        summary.map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    if frames {
        summary["event"] = "summary".into();
        println!("{summary}");
    } else if json {
        println!("{summary}");
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
        if let Some(plays) = summary["plays"].as_u64() {
            println!("the stream was opened {plays} time(s)");
        }
    }
    if report.samples == 0 {
        return Err(
            "no stamped frame arrived: is the publisher running with --latency-stamp?".into(),
        );
    }
    Ok(())
}

async fn ingest(key: String) -> Result<(), String> {
    let mut signals = signals::StopSignals::new()?;
    let ingest = fieldcast_sandbox::LocalIngest::start().map_err(|e| e.to_string())?;
    let recording = ingest.recording(&key);
    if let Some(dir) = recording.parent() {
        println!("recordings: {}", dir.display());
    }
    println!("ingest listening: publish to {}", ingest.url(&key));
    println!("press Ctrl-C to stop");
    let signal = signals.recv().await;
    eprintln!("{signal}: stopping the ingest");
    drop(ingest);
    Ok(())
}
