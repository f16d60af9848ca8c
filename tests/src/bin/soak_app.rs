//! The seller's app of the soak run (`soak` starts it in the network lab's publisher namespace,
//! so its /proc figures are the publisher's alone): a store in `--dir`, its sync to the
//! platform at `--api`, a live session created on the platform and published from the test
//! source (latency stamp, adaptive bitrate, recording to `--dir/replay`) to the platform's
//! ingest reached at `--rtmp`, a sale every 2-4 s, and every minute the pinned product
//! changes (the previous pin ended, then the other product pinned). After `--secs` it stops the
//! session, ends the live session on the platform, waits up to 2 minutes for the outbox to
//! drain, and exits: 0 when the session ended cleanly, the outbox drained and nothing failed.
//!
//! Prints one JSON line per event on stdout (see `fieldcast_qa::events`).
//!
//! Usage: `soak_app --api URL --token T --rtmp HOST:PORT --dir DIR --secs N [--seed S]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use fieldcast_core::probe::now_ms;
use fieldcast_core::{
    LiveSession, Pins, SessionConfig, SessionState, Source, Store, StreamProfile, SyncConfig,
    SyncEngine,
};
use fieldcast_qa::app::{OutboxReports, Seller, report_error, report_session_events};
use fieldcast_qa::events::AppEvent;
use fieldcast_qa::platform::{LiveSessionInfo, PlatformClient};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What is sold, in turn.
const PRODUCTS: [&str; 3] = ["orange-box", "honey-jar", "egg-tray"];
/// What is pinned, in turn.
const PINNED: [&str; 2] = ["orange-box", "honey-jar"];
/// Seconds between sales: at random within this range.
const SALE_EVERY_S: (f64, f64) = (2.0, 4.0);
/// Time between pin changes.
const PIN_EVERY: Duration = Duration::from_secs(60);
/// The first pin, after going live.
const FIRST_PIN_AFTER: Duration = Duration::from_secs(5);
/// How long the session may take to end.
const END_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the outbox may take to drain at the end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// The command line.
#[derive(Parser)]
#[command(about = "The seller's app of the soak run: live, sales, pins and sync for --secs")]
struct Args {
    /// The platform API root as reached from here, `http://HOST:PORT`.
    #[arg(long)]
    api: String,
    /// The platform's bearer token.
    #[arg(long)]
    token: String,
    /// The platform's RTMP ingest as reached from here, `HOST:PORT` (the stream key comes with
    /// the live session).
    #[arg(long)]
    rtmp: String,
    /// An existing directory for the store and the recording.
    #[arg(long)]
    dir: PathBuf,
    /// How long the market day lasts, seconds.
    #[arg(long)]
    secs: f64,
    /// Seed of the sales' products, quantities and intervals.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("soak_app: {message}");
            report_error("run", &message);
            ExitCode::FAILURE
        }
    }
}

/// The whole day; true when it ended cleanly with the outbox drained and nothing failed.
fn run(args: &Args) -> Result<bool, String> {
    let store = Store::open(args.dir.join("fieldcast.db")).map_err(|e| e.to_string())?;
    let engine = SyncEngine::start(store.clone(), SyncConfig::new(&args.api, &args.token))
        .map_err(|e| e.to_string())?;
    engine
        .refresh_catalog()
        .map_err(|e| format!("catalog: {e}"))?;
    let platform = PlatformClient::new(&args.api, &args.token)?;
    let live = platform.create_live_session("Market day")?;
    let _outbox = OutboxReports::start(store.clone())?;
    let session = go_live(args, &store, &live)?;
    AppEvent::Live {
        wall_ms: now_ms(),
        session_id: live.id.clone(),
    }
    .print();

    let mut seller = Seller::new(store.clone());
    seller.set_session(&live.id);
    let mut day = MarketDay {
        seller,
        session,
        rng: StdRng::seed_from_u64(args.seed),
    };
    day.run(Duration::from_secs_f64(args.secs));
    AppEvent::Stopping { wall_ms: now_ms() }.print();
    let ended = day.close();
    if let Err(e) = platform.end_live_session(&live.id) {
        day.seller.fail("end the live session", &e);
    }

    engine.sync_now();
    let drained = engine.wait_idle(DRAIN_TIMEOUT);
    let counts = store.outbox_counts().map_err(|e| e.to_string())?;
    AppEvent::Done {
        wall_ms: now_ms(),
        drained,
        pending: counts.pending,
        in_flight: counts.in_flight,
        conflicted: counts.conflicted,
        synced: counts.synced,
    }
    .print();
    engine.stop();
    Ok(ended && drained && day.seller.failures == 0)
}

/// Builds the session for the platform's live session, links it to the store's pins, reports
/// its state changes and errors, and starts it.
fn go_live(args: &Args, store: &Store, live: &LiveSessionInfo) -> Result<LiveSession, String> {
    let config = SessionConfig::builder(live.publish_url_via(&args.rtmp)?)
        .source(Source::Test)
        .latency_stamp(true)
        .profile(StreamProfile::P480)
        .adaptive_bitrate(true)
        .record_to(args.dir.join("replay"))
        .build()
        .map_err(|e| e.to_string())?;
    let session = LiveSession::new(config).map_err(|e| e.to_string())?;
    session.link_commerce(Pins::new(store.clone()), &live.id);
    report_session_events(&session)?;
    session.start().map_err(|e| e.to_string())?;
    Ok(session)
}

/// The seller at work: sales and pins on their own clocks.
struct MarketDay {
    seller: Seller,
    session: LiveSession,
    rng: StdRng,
}

impl MarketDay {
    /// Sells and pins until `length` has passed.
    fn run(&mut self, length: Duration) {
        let start = Instant::now();
        let end = start + length;
        let (mut next_sale, mut next_pin) = (start + self.sale_interval(), start + FIRST_PIN_AFTER);
        let (mut sold, mut pinned) = (0_usize, 0_usize);
        loop {
            let next = next_sale.min(next_pin);
            if next >= end {
                std::thread::sleep(end.saturating_duration_since(Instant::now()));
                return;
            }
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            let now = Instant::now();
            if now >= next_sale {
                self.sell(PRODUCTS[sold % PRODUCTS.len()]);
                sold += 1;
                next_sale += self.sale_interval();
            }
            if now >= next_pin {
                self.change_pin(PINNED[pinned % PINNED.len()]);
                pinned += 1;
                next_pin += PIN_EVERY;
            }
        }
    }

    fn sale_interval(&mut self) -> Duration {
        Duration::from_secs_f64(self.rng.random_range(SALE_EVERY_S.0..=SALE_EVERY_S.1))
    }

    /// Takes one sale of 1-3 units of `product`.
    fn sell(&mut self, product: &str) {
        let quantity = self.rng.random_range(1..=3);
        self.seller.sell(product, quantity);
    }

    /// Ends the open pin, if any, and pins `product`.
    fn change_pin(&mut self, product: &str) {
        self.seller.pin(&self.session, product);
    }

    /// Ends the open pin and stops the session; true when it ended cleanly.
    fn close(&mut self) -> bool {
        self.seller.unpin(&self.session);
        self.session.stop();
        match self.session.wait(Some(END_TIMEOUT)) {
            Ok(SessionState::Ended) => true,
            Ok(state) => {
                self.seller
                    .fail("stop", &format!("the session stopped as {state:?}"));
                false
            }
            Err(e) => {
                self.seller.fail("stop", &e.to_string());
                false
            }
        }
    }
}
