//! `fieldcast qa run`: one scenario played end to end. The network lab takes the scenario's
//! network profile (its scripted outages laid over it); the sandbox (platform API and nginx-rtmp
//! ingest) runs behind the lab's link; the seller's app (`fieldcast qa app`) runs in the lab's
//! publisher namespace inside the device profile's cgroups and is told what to do at each
//! moment of the timeline; a viewer (`fieldcast probe --follow --frames`) watches from the
//! ingest side. Every second the run samples the app (state, encoder, outbox, CPU, memory) and
//! the viewer (frames, latency). At the end it reads the platform's sales and the recording,
//! checks the scenario's assertions, and writes `run.json`, `summary.json` and `report.html`
//! with its plots to the output directory.

pub mod measure;
pub mod network;
pub mod recording;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fieldcast_core::LatencyReport;
use fieldcast_core::probe::now_ms;
use fieldcast_core::receiver::FrameArrival;
use fieldcast_sandbox::netlab::{NetLab, Profile};
use fieldcast_sandbox::{Sandbox, SandboxOptions};

use crate::app::Command as AppCommand;
use crate::cage::DeviceCage;
use crate::child::Child;
use crate::device::DeviceProfile;
use crate::events::{AppEvent, AppLog};
use crate::platform::PlatformClient;
use crate::process::ProcessFigures;
use crate::record::{Mark, RunRecord, RunSample};
use crate::scenario::{Action, Scenario};
use measure::Observed;

/// The stock every product gets on the platform before the run.
const STOCK: i64 = 100_000;
/// How long the app may take to open its store and fetch the catalog.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the app may take, after the run, to finish what it was told (a replay upload over a
/// slow link takes minutes), drain its outbox and exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(300);
/// Time between samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// The viewer's latency in a sample is taken over this many seconds of frames.
const LATENCY_WINDOW_MS: u64 = 3_000;
/// The gap threshold when the scenario sets none (the gaps are reported either way).
const DEFAULT_GAP_MS: u64 = 1_000;
/// The viewer plays this much longer than the run, so that it never stops first.
const VIEWER_EXTRA_S: f64 = 120.0;

/// How a run is set up beyond its scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where to write the run (default: a new directory under the temp dir).
    pub out: Option<PathBuf>,
    /// Another device profile than the scenario's.
    pub device: Option<String>,
    /// Another network profile than the scenario's.
    pub network: Option<String>,
    /// The `fieldcast` binary that runs the app and the viewer (default: this process's own).
    pub fieldcast: Option<PathBuf>,
}

/// Why a run could not be made.
#[derive(Debug)]
pub enum RunError {
    /// The lab cannot run here (not root, a tool or a cgroup controller missing): says what.
    Unavailable(String),
    /// A profile or the output directory is wrong, or setting up failed.
    Setup(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Unavailable(m) => write!(f, "the field lab cannot run here: {m}"),
            RunError::Setup(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for RunError {}

fn setup<E: fmt::Display>(what: &str) -> impl FnOnce(E) -> RunError + '_ {
    move |e| RunError::Setup(format!("{what}: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the field lab can run here: root, the network lab's tools and the cgroups.
pub fn available() -> Result<(), String> {
    NetLab::available()?;
    DeviceCage::available()
}

/// Plays `scenario`; the run's record (also written, with the report, into the returned
/// directory). A run that completes but misses an assertion is a record with `pass: false`.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<(RunRecord, PathBuf), RunError> {
    available().map_err(RunError::Unavailable)?;
    let device_name = options.device.as_deref().unwrap_or(&scenario.device);
    let device = DeviceProfile::load(device_name).map_err(setup("device profile"))?;
    let network_name = options.network.as_deref().unwrap_or(&scenario.network);
    let network = Profile::load(network_name).map_err(setup("network profile"))?;
    let fieldcast = match &options.fieldcast {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(setup("own path"))?,
    };
    let out = output_dir(options.out.as_deref(), &scenario.name)?;
    for stale in fieldcast_sandbox::netlab::cleanup_stale() {
        log::warn!("removed the network lab {stale} left by a process that is gone");
    }
    for stale in crate::cage::cleanup_stale() {
        log::warn!("removed the device cgroup {stale} left by a process that is gone");
    }
    let profile =
        network::with_outages(&network, &scenario.scripted_outages(), scenario.duration_s);
    let mut run = Run::set_up(scenario, &device, profile, &fieldcast, &out)?;
    let result = run.play();
    let record = run.finish(result, device_name, network_name, &fieldcast)?;
    record.write(&out).map_err(setup("writing the record"))?;
    crate::report::write_report(&record, &out).map_err(setup("writing the report"))?;
    Ok((record, out))
}

/// The output directory, created; a new one under the temp dir when none is given.
fn output_dir(asked: Option<&Path>, name: &str) -> Result<PathBuf, RunError> {
    match asked {
        Some(dir) => std::fs::create_dir_all(dir)
            .map(|()| dir.to_path_buf())
            .map_err(setup(&format!("{}", dir.display()))),
        None => tempfile::Builder::new()
            .prefix(&format!("fieldcast-qa-{name}-"))
            .tempdir()
            .map(tempfile::TempDir::keep)
            .map_err(setup("output directory")),
    }
}

/// The port of `scheme://host:port[/path]`.
fn port_of(url: &str) -> Result<u16, RunError> {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .ok_or_else(|| RunError::Setup(format!("no port in {url}")))
}

/// One planned moment of the timeline.
#[derive(Debug, Clone)]
enum Planned {
    /// A scenario action (a `sell` of several sales is one per sale).
    Act(Action),
    /// The app killed before starts again.
    Restart,
}

/// The timeline as moments: each sale on its own, each kill followed by its restart.
fn plan(scenario: &Scenario) -> Vec<(f64, Planned)> {
    let mut planned = Vec::new();
    for step in &scenario.timeline {
        match &step.action {
            Action::Sell {
                product,
                quantity,
                count,
                every_s,
            } => {
                for n in 0..*count {
                    let one = Action::Sell {
                        product: product.clone(),
                        quantity: *quantity,
                        count: 1,
                        every_s: 0.0,
                    };
                    planned.push((step.at_s + every_s * n as f64, Planned::Act(one)));
                }
            }
            Action::KillApp { restart_after_s } => {
                planned.push((step.at_s, Planned::Act(step.action.clone())));
                planned.push((step.at_s + restart_after_s, Planned::Restart));
            }
            action => planned.push((step.at_s, Planned::Act(action.clone()))),
        }
    }
    planned.sort_by(|a, b| a.0.total_cmp(&b.0));
    planned
}

/// The go-live of the run, repeated after a restart.
struct GoLive {
    command: AppCommand,
    /// The frame-rate cap in force, applied again after a restart.
    max_fps: Option<u32>,
}

/// A run in progress.
struct Run<'s> {
    scenario: &'s Scenario,
    lab: NetLab,
    /// Held for the run: the platform and its ingest.
    _sandbox: Sandbox,
    platform: PlatformClient,
    session_id: String,
    /// The viewer's URL, inside the ingest namespace.
    play_url: String,
    cage: DeviceCage,
    host_cores: f64,
    fieldcast: PathBuf,
    api: String,
    token: String,
    work: PathBuf,
    out: PathBuf,
    t0: Instant,
    t0_ms: u64,
    app: Option<Child>,
    log: Arc<Mutex<AppLog>>,
    frames: Arc<Mutex<Vec<FrameArrival>>>,
    viewer: Option<Child>,
    go_live: Option<GoLive>,
    go_live_ms: Option<u64>,
    end_ms: Option<u64>,
    /// A restarted app waiting for its `ready` to go live again: since when.
    resuming_since: Option<u64>,
    /// When the app was killed, while it is down.
    killed_ms: Option<u64>,
    restarts: Vec<(u64, u64)>,
    actions: Vec<Mark>,
    samples: Vec<RunSample>,
    cpu_live_s: f64,
    last_cpu: Option<(Instant, f64)>,
    starts: usize,
}

impl<'s> Run<'s> {
    fn set_up(
        scenario: &'s Scenario,
        device: &DeviceProfile,
        profile: Profile,
        fieldcast: &Path,
        out: &Path,
    ) -> Result<Run<'s>, RunError> {
        let lab_log =
            Mutex::new(std::fs::File::create(out.join("netlab.log")).map_err(setup("netlab.log"))?);
        let lab = NetLab::start_observed(
            profile,
            Box::new(move |change| {
                let _ = writeln!(lock(&lab_log), "{change}");
            }),
        )
        .map_err(setup("network lab"))?;
        let t0 = lab.started();
        let t0_ms = now_ms() - t0.elapsed().as_millis() as u64;
        let sandbox = lab
            .in_ingest(|| Sandbox::start(SandboxOptions::default()))
            .map_err(setup("network lab"))?
            .map_err(setup("sandbox"))?;
        let ingest_url = sandbox
            .ingest_url()
            .ok_or_else(|| RunError::Setup("the sandbox runs no ingest".into()))?;
        let api = lab
            .forward(port_of(&sandbox.base_url())?)
            .map_err(setup("forwarding the API"))?;
        let rtmp = lab
            .forward(port_of(&ingest_url)?)
            .map_err(setup("forwarding the ingest"))?;
        let platform = lab
            .in_ingest(|| PlatformClient::new(&sandbox.base_url(), sandbox.token()))
            .map_err(setup("network lab"))?
            .map_err(RunError::Setup)?;
        platform.restock(STOCK).map_err(setup("restocking"))?;
        let live = platform
            .create_live_session(&format!("FieldCast QA: {}", scenario.name))
            .map_err(setup("creating the live session"))?;
        let publish_url = live
            .publish_url_via(&rtmp.to_string())
            .map_err(RunError::Setup)?;
        let cage = DeviceCage::create(device.clone()).map_err(setup("device cgroups"))?;
        let work = out.join("app");
        std::fs::create_dir_all(&work).map_err(setup("the app's directory"))?;
        let go_live = scenario.timeline.iter().find_map(|s| match &s.action {
            Action::GoLive {
                profile,
                abr,
                record,
            } => Some(GoLive {
                command: AppCommand::GoLive {
                    publish_url: publish_url.clone(),
                    session_id: live.id.clone(),
                    profile: profile.clone(),
                    abr: *abr,
                    record: *record,
                },
                max_fps: None,
            }),
            _ => None,
        });
        let mut run = Run {
            scenario,
            host_cores: device.host_cores(),
            lab,
            platform,
            session_id: live.id.clone(),
            play_url: live.publish_url.clone(),
            cage,
            fieldcast: fieldcast.to_path_buf(),
            api: format!("http://{api}"),
            token: sandbox.token().to_string(),
            _sandbox: sandbox,
            work,
            out: out.to_path_buf(),
            t0,
            t0_ms,
            app: None,
            log: Arc::new(Mutex::new(AppLog::default())),
            frames: Arc::new(Mutex::new(Vec::new())),
            viewer: None,
            go_live,
            go_live_ms: None,
            end_ms: None,
            resuming_since: None,
            killed_ms: None,
            restarts: Vec::new(),
            actions: Vec::new(),
            samples: Vec::new(),
            cpu_live_s: 0.0,
            last_cpu: None,
            starts: 0,
        };
        run.start_app()?;
        run.wait_ready(0)?;
        Ok(run)
    }

    fn t_s(&self, wall_ms: u64) -> f64 {
        wall_ms.saturating_sub(self.t0_ms) as f64 / 1000.0
    }

    /// Starts the app in the publisher namespace, inside the device's cgroups.
    fn start_app(&mut self) -> Result<(), RunError> {
        self.starts += 1;
        let mut cmd = Command::new(&self.fieldcast);
        cmd.args([
            "qa",
            "app",
            "--api",
            &self.api,
            "--token",
            &self.token,
            "--dir",
        ])
        .arg(&self.work);
        self.lab
            .command_in_publisher(&mut cmd)
            .map_err(setup("network lab"))?;
        self.cage.command_in(&mut cmd);
        let log = self.log.clone();
        let mut jsonl = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.out.join("app.jsonl"))
            .map_err(setup("app.jsonl"))?;
        let stderr = self.out.join(format!("app-{}.log", self.starts));
        let child = Child::spawn_commanded("fieldcast qa app", &mut cmd, &stderr, move |line| {
            let _ = writeln!(jsonl, "{line}");
            lock(&log).push_line(line);
        })
        .map_err(setup("starting the app"))?;
        self.app = Some(child);
        Ok(())
    }

    /// Whether the app printed `ready` at or after `since_ms`.
    fn ready_since(&self, since_ms: u64) -> bool {
        lock(&self.log)
            .events
            .iter()
            .any(|e| matches!(e, AppEvent::Ready { wall_ms } if *wall_ms >= since_ms))
    }

    fn wait_ready(&mut self, since_ms: u64) -> Result<(), RunError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.ready_since(since_ms) {
            if let Some(status) = self.app.as_mut().and_then(Child::exited) {
                return Err(RunError::Setup(format!(
                    "the app exited ({status}) before it was ready: {:?}",
                    lock(&self.log).errors()
                )));
            }
            if Instant::now() > deadline {
                return Err(RunError::Setup(format!(
                    "the app was not ready within {READY_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn send(&mut self, command: &AppCommand) -> Result<(), String> {
        match self.app.as_mut() {
            Some(app) => app
                .send(&command.line())
                .map_err(|e| format!("the app does not take commands: {e}")),
            None => Err("the app is not running".into()),
        }
    }

    fn mark(&mut self, label: String) {
        let t_s = self.t0.elapsed().as_secs_f64();
        self.actions.push(Mark { t_s, label });
    }

    /// Plays the timeline to the end of the run; an error ends the run early.
    fn play(&mut self) -> Result<(), String> {
        let duration = Duration::from_secs_f64(self.scenario.duration_s);
        let mut planned = plan(self.scenario).into_iter().peekable();
        let mut next_sample = self.t0 + SAMPLE_EVERY;
        loop {
            let next_action = planned
                .peek()
                .map(|(at, _)| self.t0 + Duration::from_secs_f64(*at));
            let next = next_action.map_or(next_sample, |a| a.min(next_sample));
            let (wait_until, last) = match next >= self.t0 + duration {
                true => (self.t0 + duration, true),
                false => (next, false),
            };
            if !crate::stop::sleep_until(wait_until) {
                return Err("interrupted (SIGINT or SIGTERM) before the end of the run".into());
            }
            if last {
                return Ok(());
            }
            self.resume_if_ready()?;
            if next_action.is_some_and(|a| a <= Instant::now())
                && let Some((_, moment)) = planned.next()
            {
                self.act(moment)?;
            }
            if Instant::now() >= next_sample {
                self.sample();
                next_sample += SAMPLE_EVERY;
            }
        }
    }

    /// Does one planned moment.
    fn act(&mut self, moment: Planned) -> Result<(), String> {
        let action = match moment {
            Planned::Restart => {
                self.mark("app started again".into());
                self.resuming_since = Some(now_ms());
                return self.start_app().map_err(|e| e.to_string());
            }
            Planned::Act(action) => action,
        };
        self.mark(action.label());
        let command = match &action {
            Action::GoLive { .. } => {
                self.go_live_ms = Some(now_ms());
                self.start_viewer()?;
                self.go_live.as_ref().map(|g| g.command.clone())
            }
            Action::Pin { product } => Some(AppCommand::Pin {
                product: product.clone(),
            }),
            Action::Unpin => Some(AppCommand::Unpin),
            Action::Sell {
                product, quantity, ..
            } => Some(AppCommand::Sell {
                product: product.clone(),
                quantity: *quantity,
            }),
            Action::NetworkDown | Action::NetworkUp => None,
            Action::Background { secs } => Some(AppCommand::Background { secs: *secs }),
            Action::LowBattery { max_fps } => {
                self.set_cap(Some(*max_fps));
                Some(AppCommand::MaxFps {
                    fps: Some(*max_fps),
                })
            }
            Action::Charged => {
                self.set_cap(None);
                Some(AppCommand::MaxFps { fps: None })
            }
            Action::KillApp { .. } => {
                if let Some(app) = self.app.as_mut() {
                    app.kill();
                }
                let now = now_ms();
                self.killed_ms = Some(now);
                lock(&self.log).events.push(AppEvent::State {
                    wall_ms: now,
                    to: "killed".into(),
                });
                None
            }
            Action::End => {
                self.end_ms = Some(now_ms());
                Some(AppCommand::End)
            }
            Action::UploadReplay => Some(AppCommand::UploadReplay),
        };
        if let Some(command) = command {
            self.send(&command)?;
        }
        Ok(())
    }

    fn set_cap(&mut self, fps: Option<u32>) {
        if let Some(go_live) = self.go_live.as_mut() {
            go_live.max_fps = fps;
        }
    }

    /// A restarted app that is ready goes live again (and takes the frame-rate cap in force)
    /// when the live was on when it was killed.
    fn resume_if_ready(&mut self) -> Result<(), String> {
        let Some(since) = self.resuming_since else {
            return Ok(());
        };
        if !self.ready_since(since) {
            return Ok(());
        }
        self.resuming_since = None;
        let killed = self.killed_ms.take().unwrap_or(since);
        let live = self.go_live_ms.is_some_and(|t| t <= killed) && self.end_ms.is_none();
        if let (true, Some(go_live)) = (live, self.go_live.as_ref()) {
            let (command, cap) = (go_live.command.clone(), go_live.max_fps);
            self.send(&command)?;
            if cap.is_some() {
                self.send(&AppCommand::MaxFps { fps: cap })?;
            }
            self.mark("live again after the restart".into());
            self.restarts.push((killed, now_ms()));
        }
        Ok(())
    }

    /// Starts the viewer in the ingest namespace.
    fn start_viewer(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(&self.fieldcast);
        cmd.args(["probe", "--url", &self.play_url, "--follow", "--frames"])
            .args([
                "--duration",
                &format!("{:.0}", self.scenario.duration_s + VIEWER_EXTRA_S),
            ]);
        self.lab
            .command_in_ingest(&mut cmd)
            .map_err(|e| e.to_string())?;
        let frames = self.frames.clone();
        let mut jsonl = std::fs::File::create(self.out.join("viewer.jsonl"))
            .map_err(|e| format!("viewer.jsonl: {e}"))?;
        let viewer = Child::spawn(
            "fieldcast probe",
            &mut cmd,
            &self.out.join("viewer.log"),
            move |line| {
                let _ = writeln!(jsonl, "{line}");
                if let Ok(frame) = serde_json::from_str::<FrameArrival>(line) {
                    lock(&frames).push(frame);
                }
            },
        )
        .map_err(|e| e.to_string())?;
        self.viewer = Some(viewer);
        Ok(())
    }

    /// Takes one sample.
    fn sample(&mut self) {
        let wall_ms = now_ms();
        let t_s = self.t_s(wall_ms);
        let (state, stats, outbox) = {
            let log = lock(&self.log);
            let stats = log.events.iter().rev().find_map(|e| match e {
                AppEvent::Stats {
                    wall_ms: at,
                    video_kbps,
                    target_kbps,
                    link_kbps,
                    output_fps,
                    ..
                } if *at + 1_500 >= wall_ms => {
                    Some((*video_kbps, *target_kbps, *link_kbps, *output_fps))
                }
                _ => None,
            });
            let outbox = log
                .outbox_peak(wall_ms - SAMPLE_EVERY.as_millis() as u64)
                .or_else(|| log.outbox());
            (log.state().to_string(), stats, outbox)
        };
        let (viewer_frames, latency) = {
            let frames = lock(&self.frames);
            let count = frames
                .iter()
                .rev()
                .take_while(|f| f.wall_ms + 1_000 > wall_ms)
                .count();
            let stamped: Vec<u64> = frames
                .iter()
                .rev()
                .take_while(|f| f.wall_ms + LATENCY_WINDOW_MS > wall_ms)
                .filter_map(|f| f.latency_ms)
                .collect();
            (count, LatencyReport::from_samples(stamped, 0))
        };
        let now = Instant::now();
        let cpu_pct = match (self.cage.cpu_seconds(), self.last_cpu) {
            (Ok(cpu), Some((then, before))) => {
                self.last_cpu = Some((now, cpu));
                let used = cpu - before;
                if state == "live" {
                    self.cpu_live_s += used;
                }
                Some(used / (now - then).as_secs_f64() / self.host_cores * 100.0)
            }
            (Ok(cpu), None) => {
                self.last_cpu = Some((now, cpu));
                None
            }
            (Err(e), _) => {
                log::warn!("device CPU not read: {e}");
                None
            }
        };
        let rss_mb = self
            .app
            .as_ref()
            .and_then(Child::pid)
            .and_then(|pid| ProcessFigures::read(pid).ok())
            .map(|f| f.rss_mb());
        let conditions = self.lab.profile().conditions_at(t_s);
        self.samples.push(RunSample {
            t_s,
            state,
            encoder_kbps: stats.map(|s| s.0),
            target_kbps: stats.map(|s| f64::from(s.1)),
            estimate_kbps: stats.and_then(|s| (s.2 > 0).then_some(f64::from(s.2))),
            capacity_kbps: match conditions.outage {
                true => Some(0.0),
                false => conditions.rate_kbit.map(f64::from),
            },
            encoder_fps: stats.map(|s| s.3),
            viewer_frames,
            latency_p50_ms: (latency.samples > 0).then_some(latency.p50_ms as f64),
            latency_p95_ms: (latency.samples > 0).then_some(latency.p95_ms as f64),
            outbox_depth: outbox.map(|(pending, in_flight)| pending + in_flight),
            cpu_pct,
            rss_mb,
        });
    }

    /// Lets the app drain and exit, stops the viewer, reads what the platform and the
    /// recording hold, and judges the run.
    fn finish(
        mut self,
        played: Result<(), String>,
        device: &str,
        network: &str,
        fieldcast: &Path,
    ) -> Result<RunRecord, RunError> {
        let mut failure = played.err();
        let seconds = self.t0.elapsed().as_secs_f64();
        if let Some(mut app) = self.app.take() {
            let _ = app.send(&AppCommand::Exit.line());
            app.close_stdin();
            if app.wait_exit(EXIT_TIMEOUT).is_none() && failure.is_none() {
                failure = Some(format!("the app did not exit within {EXIT_TIMEOUT:?}"));
            }
            app.stop();
        }
        if let Some(mut viewer) = self.viewer.take() {
            viewer.stop();
        }
        let on_platform: Vec<String> = match self.platform.sales(&self.session_id) {
            Ok(sales) => sales
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_string))
                .collect(),
            Err(e) => {
                failure.get_or_insert(format!("reading the platform's sales: {e}"));
                Vec::new()
            }
        };
        if let Err(e) = self.platform.end_live_session(&self.session_id) {
            log::warn!("the live session was not ended on the platform: {e}");
        }
        let gap_bound = self
            .scenario
            .assertions
            .max_frame_gap_ms
            .unwrap_or(DEFAULT_GAP_MS);
        let recording = match self.scenario.records() {
            true => match recording::gaps(&self.work.join("replay"), gap_bound) {
                Ok(segments) => Some(segments),
                Err(e) => {
                    failure.get_or_insert(format!("reading the recording: {e}"));
                    None
                }
            },
            false => None,
        };
        let outages = network::outage_spans(self.lab.profile(), self.scenario.duration_s);
        let live_from = self.go_live_ms.unwrap_or(u64::MAX);
        let live_to = self.end_ms.unwrap_or(u64::MAX);
        let mut interruptions: Vec<(u64, u64)> = outages
            .iter()
            .map(|&(from, to)| {
                let ms = |s: f64| self.t0_ms + (s * 1000.0) as u64;
                (ms(from), ms(to))
            })
            .filter(|&(from, to)| from >= live_from && to <= live_to)
            .chain(self.restarts.iter().copied())
            .collect();
        interruptions.sort_unstable();
        let log = lock(&self.log);
        let frames = lock(&self.frames);
        let observed = Observed {
            scenario: self.scenario,
            log: &log,
            frames: &frames,
            samples: &self.samples,
            go_live_ms: self.go_live_ms,
            end_ms: self.end_ms,
            interruptions: &interruptions,
            on_platform: &on_platform,
            recording: recording.as_deref(),
            cpu_live_s: Some(self.cpu_live_s).filter(|_| self.last_cpu.is_some()),
            throttled_s: self.cage.throttled().ok().map(|t| t.throttled_seconds),
        };
        let figures = observed.figures();
        let mut assertions = observed.checks(&figures);
        let errors = log.errors();
        assertions.push(crate::record::Check {
            name: "actions".into(),
            target: "every action done without an error".into(),
            measured: match errors.first() {
                None => format!("{} actions, no error", self.actions.len()),
                Some(first) => format!("{} error(s), the first: {first}", errors.len()),
            },
            pass: errors.is_empty(),
        });
        let states = log
            .events
            .iter()
            .filter_map(|e| match e {
                AppEvent::State { wall_ms, to } => Some(Mark {
                    t_s: self.t_s(*wall_ms),
                    label: to.clone(),
                }),
                _ => None,
            })
            .collect();
        let build = format!(
            "fieldcast {} ({}{})",
            env!("CARGO_PKG_VERSION"),
            fieldcast.display(),
            std::fs::metadata(fieldcast)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(String::new(), |t| format!(", built at {} s", t.as_secs()))
        );
        Ok(RunRecord {
            scenario: self.scenario.name.clone(),
            description: self.scenario.description.clone(),
            device: device.into(),
            device_host_cores: self.host_cores,
            network: network.into(),
            build,
            started_wall_ms: self.t0_ms,
            seconds,
            pass: failure.is_none() && assertions.iter().all(|c| c.pass),
            failure,
            figures,
            bounds: self.scenario.assertions.clone(),
            assertions,
            actions: self.actions.clone(),
            states,
            outages,
            capacity_kbps: network::capacity(self.lab.profile(), self.scenario.duration_s),
            samples: self.samples.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_spreads_sales_and_follows_each_kill_with_its_restart() {
        let scenario = Scenario::parse(
            r#"{"name":"t","device":"desktop","network":"good-4g","duration_s":60,"timeline":[
                {"at_s":1,"action":"go_live"},
                {"at_s":10,"action":"sell","product":"egg-tray","count":3,"every_s":8},
                {"at_s":12,"action":"kill_app","restart_after_s":4}]}"#,
            "test",
        )
        .unwrap();
        let times: Vec<(f64, &str)> = plan(&scenario)
            .iter()
            .map(|(at, p)| {
                let kind = match p {
                    Planned::Act(Action::GoLive { .. }) => "live",
                    Planned::Act(Action::Sell { count: 1, .. }) => "sale",
                    Planned::Act(Action::KillApp { .. }) => "kill",
                    Planned::Restart => "restart",
                    Planned::Act(_) => "other",
                };
                (*at, kind)
            })
            .collect();
        assert_eq!(
            times,
            [
                (1.0, "live"),
                (10.0, "sale"),
                (12.0, "kill"),
                (16.0, "restart"),
                (18.0, "sale"),
                (26.0, "sale")
            ]
        );
    }

    #[test]
    fn ports_are_read_from_urls() {
        assert_eq!(port_of("http://10.0.0.1:8080/v1").unwrap(), 8080);
        assert_eq!(port_of("rtmp://127.0.0.1:1935/live/k").unwrap(), 1935);
        assert!(port_of("nonsense").is_err());
    }
}
