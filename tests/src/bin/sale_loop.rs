//! The child of the crash-safety test: opens the store at the given path and records sales of the
//! given products in a loop, printing each acknowledged sale id (flushed right after the call
//! returned) until it is killed. It exits by itself after 30 s so it can never linger.
//!
//! Usage: `sale_loop DB_PATH PRODUCT_ID...`

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fieldcast_core::{NewSale, Sales, Store};

const LIFETIME: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, products @ ..] = args.as_slice() else {
        eprintln!("usage: sale_loop DB_PATH PRODUCT_ID...");
        return ExitCode::from(2);
    };
    if products.is_empty() {
        eprintln!("usage: sale_loop DB_PATH PRODUCT_ID...");
        return ExitCode::from(2);
    }
    match run(path, products) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sale_loop: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &str, products: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let sales = Sales::new(Store::open(path)?);
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        if started.elapsed() > LIFETIME {
            break;
        }
        let sale = sales.record_sale(NewSale {
            allow_oversell: true,
            buyer: Some(format!("buyer {i}")),
            ..NewSale::new(&products[i % products.len()], 1 + (i % 3) as i64)
        })?;
        writeln!(out, "{}", sale.id)?;
        out.flush()?;
    }
    Ok(())
}
