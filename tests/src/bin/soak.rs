//! `soak`: a long market day through the network lab loses nothing and leaks nothing.
//!
//! Builds a lab whose link (2.5 Mbit/s, 40 ms) drops out `--outages` times for 2-4 s over
//! `--minutes`, runs the sandbox (platform API and nginx-rtmp ingest) in the lab's ingest
//! namespace and `soak_app` (the seller's app: live with recording, a sale every ~3 s, a pin
//! change every minute, the outbox synced through the lab) in its publisher namespace, and
//! watches the live with `fieldcast probe --follow --frames` from the ingest side. Every 10 s it
//! samples the app's RSS, threads and open descriptors, its outbox depth and the viewer's
//! latency. At the end it checks the targets (see docs/QA.md, "Soak"), prints one line per
//! target, and writes to `--out`: `samples.csv`, `soak.png`, `outages.csv`, `summary.txt`,
//! `profile.json`, the app's and the viewer's lines and logs, and the lab's timeline.
//!
//! Exit status: 0 when every target is met, 1 when one is missed or the run failed, 2 when the
//! lab cannot run here (not root, tools missing). Needs `soak_app` and `fieldcast` next to it:
//! `cargo build --release -p fieldcast-tests --bins -p fieldcast-cli && target/release/soak`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Parser;
use fieldcast_core::probe::now_ms;
use fieldcast_core::receiver::FrameArrival;
use fieldcast_qa::child::Child;
use fieldcast_qa::events::AppLog;
use fieldcast_qa::platform::PlatformClient;
use fieldcast_qa::process::ProcessFigures;
use fieldcast_qa::stop::{catch_stop_signals, interrupted, sleep_until};
use fieldcast_sandbox::netlab::{NetLab, cleanup_stale};
use fieldcast_sandbox::{Sandbox, SandboxOptions};
use fieldcast_tests::soak::figure::figure;
use fieldcast_tests::soak::outages;
use fieldcast_tests::soak::samples::{CSV_HEADER, SAMPLE_EVERY_S, Sample, window};
use fieldcast_tests::soak::targets::{
    self, FDS_TOLERANCE, Ledger, LedgerVerdict, THREADS_TOLERANCE, Verdict, recoveries,
};

/// The shortest run, minutes: setting up takes a few seconds of it.
const MIN_MINUTES: f64 = 1.0;
/// The stock every product gets on the platform before the day starts.
const STOCK: i64 = 1_000_000;
/// How long the app may take from its start to going live.
const LIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the app may take from the end of the day to its exit (ending the session and
/// draining the outbox, bounded by the app itself at 30 s + 120 s).
const EXIT_TIMEOUT: Duration = Duration::from_secs(180);
/// The viewer plays this much longer than the day, so that it never stops first.
const VIEWER_EXTRA_S: f64 = 240.0;

/// The command line.
#[derive(Parser)]
#[command(about = "A long market day through the network lab: nothing lost, nothing leaked")]
struct Args {
    /// Length of the run, minutes.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Outages of 2-4 s spread over the run.
    #[arg(long, default_value_t = 100)]
    outages: usize,
    /// Where to write the samples, the plot and the logs (default: a new directory under /tmp).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the outages and of the app's sales (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Run the app with glibc's allocator on its default, adaptive settings instead of
    /// [`FIXED_MALLOC`] (its RSS then moves in steps of megabytes that are not leaks).
    #[arg(long)]
    default_malloc: bool,
}

/// glibc's allocator settings for the app, held fixed so that its RSS shows what the code keeps.
/// By default glibc raises its mmap threshold after the first large block is freed (up to
/// 32 MB) and gives threads arenas of their own: encoder and buffer-pool blocks freed at a rung
/// change then stay in the heap and the RSS moves in steps of megabytes (seen: +6 % over a day
/// whose RSS with these settings stayed within 0.4 %). With a fixed threshold large blocks are
/// mapped and unmapped, and freed heap is trimmed.
const FIXED_MALLOC: [(&str, &str); 3] = [
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
    ("MALLOC_TRIM_THRESHOLD_", "131072"),
    ("MALLOC_ARENA_MAX", "2"),
];

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    if let Err(reason) = NetLab::available() {
        eprintln!("soak: {reason}");
        return ExitCode::from(2);
    }
    catch_stop_signals();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The programs the soak runs, next to its own binary.
struct Binaries {
    app: PathBuf,
    fieldcast: PathBuf,
}

impl Binaries {
    fn find() -> Result<Binaries, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let dir = exe.parent().ok_or("the binary has no directory")?;
        let binaries = Binaries {
            app: dir.join("soak_app"),
            fieldcast: dir.join("fieldcast"),
        };
        for path in [&binaries.app, &binaries.fieldcast] {
            if !path.is_file() {
                return Err(format!(
                    "{} is missing: build it with `cargo build --release -p fieldcast-tests --bins -p fieldcast-cli`",
                    path.display()
                ));
            }
        }
        Ok(binaries)
    }
}

/// The output directory, created; a new one under the temp dir when none is given.
fn output_dir(asked: Option<&Path>) -> Result<PathBuf, String> {
    match asked {
        Some(dir) => std::fs::create_dir_all(dir)
            .map(|()| dir.to_path_buf())
            .map_err(|e| format!("{}: {e}", dir.display())),
        None => tempfile::Builder::new()
            .prefix("fieldcast-soak-")
            .tempdir()
            .map(tempfile::TempDir::keep)
            .map_err(|e| format!("output directory: {e}")),
    }
}

/// The port of `scheme://host:port[/path]`.
fn port_of(url: &str) -> Result<u16, String> {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .ok_or_else(|| format!("no port in {url}"))
}

fn create(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The whole run; true when every target is met.
fn run(args: &Args) -> Result<bool, String> {
    if args.minutes.is_nan() || args.minutes < MIN_MINUTES {
        return Err(format!("--minutes must be at least {MIN_MINUTES}"));
    }
    let binaries = Binaries::find()?;
    let seed = args.seed.unwrap_or_else(now_ms);
    let total_s = args.minutes * 60.0;
    let planned = outages::schedule(total_s, args.outages, seed)?;
    let out = output_dir(args.out.as_deref())?;
    std::fs::write(out.join("profile.json"), outages::profile_json(&planned))
        .map_err(|e| format!("profile.json: {e}"))?;
    println!(
        "soak: {:.1} min, {} outages of {}-{} s, seed {seed}, the app's allocator {}; writing to {}",
        args.minutes,
        planned.len(),
        outages::OUTAGE_S.0,
        outages::OUTAGE_S.1,
        if args.default_malloc {
            "on glibc's defaults"
        } else {
            "with a fixed mmap threshold"
        },
        out.display()
    );
    for stale in cleanup_stale() {
        println!("soak: removed the lab {stale} left by a process that is gone");
    }

    let lab_log = Mutex::new(create(&out.join("netlab.log"))?);
    let lab = NetLab::start_observed(
        outages::profile(&planned).map_err(|e| e.to_string())?,
        Box::new(move |change| {
            let _ = writeln!(lock(&lab_log), "{change}");
        }),
    )
    .map_err(|e| e.to_string())?;
    let t0_ms = now_ms() - lab.started().elapsed().as_millis() as u64;
    let sandbox = lab
        .in_ingest(|| Sandbox::start(SandboxOptions::default()))
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("sandbox: {e}"))?;
    let ingest_url = sandbox.ingest_url().ok_or("the sandbox runs no ingest")?;
    let api = lab
        .forward(port_of(&sandbox.base_url())?)
        .map_err(|e| e.to_string())?;
    let rtmp = lab
        .forward(port_of(&ingest_url)?)
        .map_err(|e| e.to_string())?;
    let platform = lab
        .in_ingest(|| PlatformClient::new(&sandbox.base_url(), sandbox.token()))
        .map_err(|e| e.to_string())??;
    platform.restock(STOCK)?;

    let work = tempfile::Builder::new()
        .prefix("fieldcast-soak-app-")
        .tempdir()
        .map_err(|e| format!("app directory: {e}"))?;
    let day_s = total_s - lab.started().elapsed().as_secs_f64();
    let app_log = Arc::new(Mutex::new(AppLog::default()));
    let mut app = {
        let mut cmd = Command::new(&binaries.app);
        cmd.arg("--api")
            .arg(format!("http://{api}"))
            .args(["--token", sandbox.token()])
            .arg("--rtmp")
            .arg(rtmp.to_string())
            .arg("--dir")
            .arg(work.path())
            .args([
                "--secs",
                &format!("{day_s:.1}"),
                "--seed",
                &seed.to_string(),
            ]);
        if !args.default_malloc {
            cmd.envs(FIXED_MALLOC);
        }
        lab.command_in_publisher(&mut cmd)
            .map_err(|e| e.to_string())?;
        let (log, mut jsonl) = (app_log.clone(), create(&out.join("app.jsonl"))?);
        Child::spawn("soak_app", &mut cmd, &out.join("app.log"), move |line| {
            let _ = writeln!(jsonl, "{line}");
            lock(&log).push_line(line);
        })
        .map_err(|e| e.to_string())?
    };
    let app_pid = app.pid().ok_or("soak_app is not running")?;
    let session_id = wait_live(&mut app, &app_log)?;
    let live = platform.live_session(&session_id)?;
    let play_url = live["publish_url"]
        .as_str()
        .ok_or("the live session has no publish URL")?;

    let frames = Arc::new(Mutex::new(Vec::<FrameArrival>::new()));
    let mut viewer = {
        let mut cmd = Command::new(&binaries.fieldcast);
        cmd.args(["probe", "--url", play_url, "--follow", "--frames"])
            .args(["--duration", &format!("{:.0}", day_s + VIEWER_EXTRA_S)]);
        lab.command_in_ingest(&mut cmd).map_err(|e| e.to_string())?;
        let (frames, mut jsonl) = (frames.clone(), create(&out.join("viewer.jsonl"))?);
        Child::spawn(
            "fieldcast probe",
            &mut cmd,
            &out.join("viewer.log"),
            move |line| {
                let _ = writeln!(jsonl, "{line}");
                if let Ok(frame) = serde_json::from_str::<FrameArrival>(line) {
                    lock(&frames).push(frame);
                }
            },
        )
        .map_err(|e| e.to_string())?
    };

    let samples = sample_the_day(&mut app, app_pid, &app_log, &frames, t0_ms, &out)?;
    let status = match interrupted() {
        true => None,
        false => app.wait_exit(EXIT_TIMEOUT),
    };
    app.stop();
    viewer.stop();

    let log = lock(&app_log);
    let day_end_ms = log.stopping_ms().unwrap_or_else(now_ms);
    let applied = applied_outages(&lab, t0_ms, day_end_ms);
    let frames = lock(&frames);
    let recovered = recoveries(&applied, &frames);
    write_outages(&out.join("outages.csv"), &applied, &recovered, t0_ms)?;
    let on_platform_sales: Vec<String> = platform
        .sales(&session_id)?
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    let on_platform_pins: Vec<(String, String)> = platform.live_session(&session_id)?["pins"]
        .as_array()
        .map(|pins| {
            pins.iter()
                .filter_map(|p| Some((p["pin_id"].as_str()?.into(), p["action"].as_str()?.into())))
                .collect()
        })
        .unwrap_or_default();

    let warmup_s = targets::warmup_s(samples.last().map_or(0.0, |s| s.t_s));
    let errors = log.errors();
    let verdicts = [
        targets::rss_growth(&samples, warmup_s),
        targets::flat(&samples, warmup_s, "open fds", FDS_TOLERANCE, |s| s.fds),
        targets::flat(&samples, warmup_s, "threads", THREADS_TOLERANCE, |s| {
            s.threads
        }),
        Ledger::compare(&log.sale_ids(), &on_platform_sales).verdict("sales", "sale"),
        Ledger::compare(&log.pin_events(), &on_platform_pins).verdict("pin events", "pin event"),
        targets::recovery(&recovered),
        lab_verdict(&lab, applied.len(), planned.len()),
        Verdict {
            name: "clean end",
            measured: format!(
                "{}, outbox drained: {}, {} failed action(s){}; the session reconnected {} times",
                status.map_or("not exited (stopped)".to_string(), |s| s.to_string()),
                if log.drained() { "yes" } else { "no" },
                errors.len(),
                errors
                    .first()
                    .map_or(String::new(), |e| format!(" (first: {e})")),
                log.reconnections()
            ),
            target: "the app exits 0: session ended, outbox drained, no failed sale or pin".into(),
            pass: status.is_some_and(|s| s.success()) && errors.is_empty(),
        },
    ];
    let outage_spans: Vec<(f64, f64)> = applied
        .iter()
        .map(|&(down, up)| {
            let s = |ms: u64| (ms - t0_ms) as f64 / 1000.0;
            (s(down), s(up))
        })
        .collect();
    let title = format!(
        "FieldCast soak: {:.0} min live, {} outages of {}-{} s (shaded), a sale every ~3 s, pins every minute",
        samples.last().map_or(0.0, |s| s.t_s) / 60.0,
        applied.len(),
        outages::OUTAGE_S.0,
        outages::OUTAGE_S.1
    );
    let plot = out.join("soak.png");
    let plotted = figure(title, &samples, &outage_spans).write_png(&plot);

    let mut summary = String::new();
    if interrupted() {
        summary.push_str("FAIL run: interrupted before the end of the day\n");
    }
    for verdict in &verdicts {
        summary.push_str(&format!("{verdict}\n"));
    }
    print!("{summary}");
    std::fs::write(out.join("summary.txt"), &summary).map_err(|e| format!("summary: {e}"))?;
    match plotted {
        Ok(()) => println!("soak: plot {}", plot.display()),
        Err(e) => println!("soak: no plot: {e}"),
    }
    println!("soak: samples {}", out.join("samples.csv").display());
    println!("soak: everything in {}", out.display());
    Ok(!interrupted() && verdicts.iter().all(|v| v.pass))
}

/// Waits for the app's `live` line; the platform's live-session id.
fn wait_live(app: &mut Child, log: &Mutex<AppLog>) -> Result<String, String> {
    let deadline = Instant::now() + LIVE_TIMEOUT;
    loop {
        if let Some(id) = lock(log).session_id() {
            return Ok(id.to_string());
        }
        if let Some(status) = app.exited() {
            return Err(format!(
                "soak_app exited ({status}) before going live: {:?}",
                lock(log).errors()
            ));
        }
        if Instant::now() > deadline || !sleep_until(Instant::now() + Duration::from_millis(100)) {
            return Err(format!("soak_app not live within {LIVE_TIMEOUT:?}"));
        }
    }
}

/// Samples every 10 s until the app ends its day (or exits, or the run is interrupted),
/// writing each sample to `samples.csv` and a line to stdout.
fn sample_the_day(
    app: &mut Child,
    pid: u32,
    log: &Mutex<AppLog>,
    frames: &Mutex<Vec<FrameArrival>>,
    t0_ms: u64,
    out: &Path,
) -> Result<Vec<Sample>, String> {
    let mut csv = create(&out.join("samples.csv"))?;
    writeln!(csv, "{CSV_HEADER}").map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    let every = Duration::from_secs(SAMPLE_EVERY_S);
    let mut next = Instant::now() + every;
    while sleep_until(next) && app.exited().is_none() {
        let wall_ms = now_ms();
        let from_ms = wall_ms - every.as_millis() as u64;
        let (state, outbox, stopping) = {
            let log = lock(log);
            let outbox = log.outbox_peak(from_ms).or_else(|| log.outbox());
            (log.state().to_string(), outbox, log.stopping_ms())
        };
        if stopping.is_some() {
            break;
        }
        let Ok(figures) = ProcessFigures::read(pid) else {
            break;
        };
        let (count, latency) = window(&lock(frames), from_ms, wall_ms);
        let sample = Sample {
            t_s: (wall_ms - t0_ms) as f64 / 1000.0,
            wall_ms,
            state,
            rss_mb: figures.rss_mb(),
            threads: figures.threads,
            fds: figures.fds,
            outbox,
            frames: count,
            latency_ms: (latency.samples > 0).then_some((latency.p50_ms, latency.p95_ms)),
        };
        writeln!(csv, "{}", sample.csv_row()).map_err(|e| e.to_string())?;
        println!(
            "{:6.1} min  {:<12} RSS {:6.1} MB  threads {:3}  fds {:3}  outbox {:>3}  latency p50/p95 {}  ({} frames)",
            sample.t_s / 60.0,
            sample.state,
            sample.rss_mb,
            sample.threads,
            sample.fds,
            sample
                .outbox_depth()
                .map_or("-".to_string(), |d| d.to_string()),
            sample
                .latency_ms
                .map_or("-".to_string(), |(p50, p95)| format!("{p50}/{p95} ms")),
            sample.frames
        );
        samples.push(sample);
        next += every;
    }
    Ok(samples)
}

/// The outages the lab applied that were over before `until_ms`, as (went down, came back)
/// wall-clock ms.
fn applied_outages(lab: &NetLab, t0_ms: u64, until_ms: u64) -> Vec<(u64, u64)> {
    let mut found = Vec::new();
    let mut down = None;
    for applied in lab.applied() {
        let at = t0_ms + applied.applied_after.as_millis() as u64;
        match (applied.change.conditions.outage, down) {
            (true, None) => down = Some(at),
            (false, Some(from)) => {
                if at <= until_ms {
                    found.push((from, at));
                }
                down = None;
            }
            _ => {}
        }
    }
    found
}

/// Whether the lab put every planned outage in force: all of them over before the day ended,
/// no change failed; with how late the latest change was applied.
fn lab_verdict(lab: &NetLab, applied: usize, planned: usize) -> Verdict {
    let changes = lab.applied();
    let failed = changes.iter().filter(|c| c.error.is_some()).count();
    let latest_ms = changes
        .iter()
        .map(|c| (c.applied_after.as_secs_f64() - c.change.at_s) * 1000.0)
        .fold(0.0, f64::max);
    Verdict {
        name: "network lab",
        measured: format!(
            "{applied} of {planned} outages applied and over before the end of the day, {failed} \
             change(s) failed, the latest applied {latest_ms:.0} ms after its time"
        ),
        target: "every planned outage applied".into(),
        pass: applied == planned && failed == 0,
    }
}

fn write_outages(
    path: &Path,
    outages: &[(u64, u64)],
    recovered: &[Option<u64>],
    t0_ms: u64,
) -> Result<(), String> {
    let mut csv = String::from("n,down_s,up_s,length_s,recovered_after_ms\n");
    for (n, (&(down, up), recovery)) in outages.iter().zip(recovered).enumerate() {
        csv.push_str(&format!(
            "{n},{:.2},{:.2},{:.2},{}\n",
            (down - t0_ms) as f64 / 1000.0,
            (up - t0_ms) as f64 / 1000.0,
            (up - down) as f64 / 1000.0,
            recovery.map_or(String::new(), |ms| ms.to_string())
        ));
    }
    std::fs::write(path, csv).map_err(|e| format!("{}: {e}", path.display()))
}
