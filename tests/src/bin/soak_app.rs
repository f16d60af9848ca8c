//! The seller's app of the soak run (`soak` starts it in the network lab's publisher namespace,
//! so its /proc figures are the publisher's alone): a store in `--dir`, its sync to the
//! platform at `--api`, a live session created on the platform and published from the test
//! source (latency stamp, adaptive bitrate, recording to `--dir/replay`) to the platform's
//! ingest reached at `--rtmp`, a sale every 2-4 s, and every minute the pinned product
//! changes (the previous pin ended, then the other product pinned). After `--secs` it stops the
//! session, ends the live session on the platform, waits up to 2 minutes for the outbox to
//! drain, and exits: 0 when the session ended cleanly, the outbox drained and nothing failed.
//!
//! Prints one JSON line per event on stdout (see `fieldcast_tests::soak::events`).
//!
//! Usage: `soak_app --api URL --token T --rtmp HOST:PORT --dir DIR --secs N [--seed S]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use fieldcast_core::probe::now_ms;
use fieldcast_core::{
    LiveSession, NewSale, Pin, Pins, Sales, SessionConfig, SessionEvent, SessionState, Source,
    Store, StreamProfile, SyncConfig, SyncEngine,
};
use fieldcast_tests::soak::events::AppEvent;
use fieldcast_tests::soak::platform::{LiveSessionInfo, PlatformClient};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::broadcast::error::RecvError;

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
/// Time between outbox reports.
const OUTBOX_EVERY: Duration = Duration::from_secs(1);
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

fn report_error(action: &str, message: &str) {
    AppEvent::Error {
        wall_ms: now_ms(),
        action: action.into(),
        message: message.into(),
    }
    .print();
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
    let session = go_live(args, &store, &live)?;
    AppEvent::Live {
        wall_ms: now_ms(),
        session_id: live.id.clone(),
    }
    .print();

    let mut day = MarketDay {
        sales: Sales::new(store.clone()),
        session,
        session_id: live.id.clone(),
        rng: StdRng::seed_from_u64(args.seed),
        open_pin: None,
        failures: 0,
    };
    day.run(&store, Duration::from_secs_f64(args.secs));
    AppEvent::Stopping { wall_ms: now_ms() }.print();
    let ended = day.close();
    if let Err(e) = platform.end_live_session(&live.id) {
        report_error("end the live session", &e);
        day.failures += 1;
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
    Ok(ended && drained && day.failures == 0)
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
    let mut events = session.subscribe();
    // Ends when the session is dropped (the channel closes) or the process exits.
    std::thread::Builder::new()
        .name("session-events".into())
        .spawn(move || {
            loop {
                match events.blocking_recv() {
                    Ok(SessionEvent::StateChanged { to, .. }) => AppEvent::State {
                        wall_ms: now_ms(),
                        to: format!("{to:?}").to_lowercase(),
                    }
                    .print(),
                    Ok(SessionEvent::Error(e)) => AppEvent::SessionError {
                        wall_ms: now_ms(),
                        message: e.to_string(),
                    }
                    .print(),
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        })
        .map_err(|e| format!("event thread: {e}"))?;
    session.start().map_err(|e| e.to_string())?;
    Ok(session)
}

/// The seller at work: sales, pins and outbox reports on their own clocks.
struct MarketDay {
    sales: Sales,
    session: LiveSession,
    session_id: String,
    rng: StdRng,
    open_pin: Option<Pin>,
    failures: usize,
}

impl MarketDay {
    /// Sells, pins and reports the outbox until `length` has passed.
    fn run(&mut self, store: &Store, length: Duration) {
        let start = Instant::now();
        let end = start + length;
        let (mut next_sale, mut next_pin, mut next_outbox) =
            (start + self.sale_interval(), start + FIRST_PIN_AFTER, start);
        let (mut sold, mut pinned) = (0_usize, 0_usize);
        loop {
            let next = next_sale.min(next_pin).min(next_outbox);
            if next >= end {
                std::thread::sleep(end.saturating_duration_since(Instant::now()));
                return;
            }
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            let now = Instant::now();
            if now >= next_outbox {
                report_outbox(store);
                next_outbox += OUTBOX_EVERY;
            }
            if now >= next_sale {
                self.sell(PRODUCTS[sold % PRODUCTS.len()], sold);
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
    fn sell(&mut self, product: &str, n: usize) {
        let quantity = self.rng.random_range(1..=3);
        let taken = self.sales.record_sale(NewSale {
            session_id: Some(self.session_id.clone()),
            buyer: Some(format!("buyer {n}")),
            ..NewSale::new(product, quantity)
        });
        match taken {
            Ok(sale) => AppEvent::Sale {
                wall_ms: now_ms(),
                sale_id: sale.id,
                product_id: sale.product_id,
                quantity: sale.quantity,
            }
            .print(),
            Err(e) => self.fail("sell", &e.to_string()),
        }
    }

    /// Ends the open pin, if any, and pins `product`.
    fn change_pin(&mut self, product: &str) {
        self.unpin();
        match self.session.pin_product(product) {
            Ok(pin) => {
                AppEvent::Pin {
                    wall_ms: now_ms(),
                    pin_id: pin.id.clone(),
                    product_id: pin.product_id.clone(),
                }
                .print();
                self.open_pin = Some(pin);
            }
            Err(e) => self.fail("pin", &e.to_string()),
        }
    }

    fn unpin(&mut self) {
        let Some(pin) = self.open_pin.take() else {
            return;
        };
        match self.session.unpin_product(&pin.id) {
            Ok(pin) => AppEvent::Unpin {
                wall_ms: now_ms(),
                pin_id: pin.id,
                product_id: pin.product_id,
            }
            .print(),
            Err(e) => self.fail("unpin", &e.to_string()),
        }
    }

    fn fail(&mut self, action: &str, message: &str) {
        self.failures += 1;
        report_error(action, message);
    }

    /// Ends the open pin and stops the session; true when it ended cleanly.
    fn close(&mut self) -> bool {
        self.unpin();
        self.session.stop();
        match self.session.wait(Some(END_TIMEOUT)) {
            Ok(SessionState::Ended) => true,
            Ok(state) => {
                self.fail("stop", &format!("the session stopped as {state:?}"));
                false
            }
            Err(e) => {
                self.fail("stop", &e.to_string());
                false
            }
        }
    }
}

fn report_outbox(store: &Store) {
    match store.outbox_counts() {
        Ok(counts) => AppEvent::Outbox {
            wall_ms: now_ms(),
            pending: counts.pending,
            in_flight: counts.in_flight,
            synced: counts.synced,
            conflicted: counts.conflicted,
        }
        .print(),
        Err(e) => report_error("read the outbox", &e.to_string()),
    }
}
