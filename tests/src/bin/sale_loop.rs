//! The child of the crash-safety and power-cut tests: opens the store at the given path and
//! records sales of the given products in a loop, printing each acknowledged sale id (flushed
//! right after the call returned) until it is killed or a write fails. With `--sync` it also runs
//! the outbox relay against that platform, so that a kill or a power cut can fall in the middle of
//! a sync. It exits by itself after 30 s so it can never linger.
//!
//! Usage: `sale_loop [--sync BASE_URL TOKEN] DB_PATH PRODUCT_ID...`

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fieldcast_core::{BackoffPolicy, NewSale, Sales, Store, SyncConfig, SyncEngine};

const LIFETIME: Duration = Duration::from_secs(30);
const USAGE: &str = "usage: sale_loop [--sync BASE_URL TOKEN] DB_PATH PRODUCT_ID...";

/// What to run, from the command line.
struct Args<'a> {
    sync: Option<SyncConfig>,
    path: &'a str,
    products: &'a [String],
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(args) = parse(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sale_loop: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Option<Args<'_>> {
    let (sync, rest) = match args {
        [flag, url, token, rest @ ..] if flag == "--sync" => (Some(sync_config(url, token)), rest),
        rest => (None, rest),
    };
    match rest {
        [path, products @ ..] if !products.is_empty() => Some(Args {
            sync,
            path,
            products,
        }),
        _ => None,
    }
}

/// A relay that retries quickly, so that many syncs start (and are cut) within a short run.
fn sync_config(url: &str, token: &str) -> SyncConfig {
    SyncConfig {
        request_timeout: Duration::from_secs(2),
        backoff: BackoffPolicy {
            min: Duration::from_millis(50),
            max: Duration::from_millis(500),
        },
        ..SyncConfig::new(url, token)
    }
}

fn run(args: Args<'_>) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(args.path)?;
    let _relay = args
        .sync
        .map(|config| SyncEngine::start(store.clone(), config))
        .transpose()?;
    let sales = Sales::new(store);
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        if started.elapsed() > LIFETIME {
            break;
        }
        let sale = sales.record_sale(NewSale {
            allow_oversell: true,
            buyer: Some(format!("buyer {i}")),
            ..NewSale::new(&args.products[i % args.products.len()], 1 + (i % 3) as i64)
        })?;
        writeln!(out, "{}", sale.id)?;
        out.flush()?;
    }
    Ok(())
}
