//! `fieldcast products`, `fieldcast sell` and `fieldcast queue`: the local catalog, sales taken
//! offline, and the outbox that syncs them to the platform.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use fieldcast_core::{
    Catalog, NewSale, OutboxCounts, Product, Sales, Store, SyncConfig, SyncEngine,
};

/// Where the local store is.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The local database of products, sales and the outbox, for the commands that use it
    /// (default: ~/.local/share/fieldcast/fieldcast.db). Accepted before or after a subcommand
    /// (`fieldcast products --store X sync` and `fieldcast products sync --store X`).
    #[arg(long, global = true, env = "FIELDCAST_STORE")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    /// Opens (creating if needed) the store.
    pub fn open(&self) -> Result<Store, String> {
        let path = match &self.store {
            Some(p) => p.clone(),
            None => {
                let home = std::env::var_os("HOME").ok_or("HOME is not set: pass --store PATH")?;
                PathBuf::from(home).join(".local/share/fieldcast/fieldcast.db")
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        Store::open(&path).map_err(|e| e.to_string())
    }
}

/// The platform to sync with. Its `Debug` does not show the token.
#[derive(Args, Clone)]
pub struct PlatformArgs {
    /// Platform API root, e.g. http://127.0.0.1:8080 (see `fieldcast sandbox`).
    #[arg(long, env = "FIELDCAST_PLATFORM")]
    pub platform: Option<String>,
    /// Bearer token for the platform.
    #[arg(long, env = "FIELDCAST_TOKEN", default_value = "sandbox-token")]
    pub token: String,
    /// Also trust the certificate authorities in this PEM file for an https:// platform, besides
    /// the system's roots (a platform behind a private CA, e.g. `fieldcast sandbox --tls-port`).
    #[arg(long, env = "FIELDCAST_PLATFORM_CA", value_name = "FILE")]
    pub platform_ca: Option<PathBuf>,
}

impl fmt::Debug for PlatformArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformArgs")
            .field("platform", &self.platform)
            .field("token", &"<redacted>")
            .field("platform_ca", &self.platform_ca)
            .finish()
    }
}

impl PlatformArgs {
    fn engine(&self, store: Store) -> Result<SyncEngine, String> {
        let base = self
            .platform
            .as_deref()
            .ok_or("--platform URL (or FIELDCAST_PLATFORM) is needed to sync")?;
        let mut config = SyncConfig::new(base, &self.token);
        if let Some(path) = &self.platform_ca {
            config.platform_ca_pem = Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("--platform-ca {}: {e}", path.display()))?,
            );
        }
        SyncEngine::start(store, config).map_err(|e| e.to_string())
    }
}

/// `fieldcast products ...`
#[derive(Subcommand, Debug)]
pub enum ProductsCommand {
    /// List the local catalog.
    List,
    /// Add or replace a product in the local catalog.
    Add {
        /// Product id, e.g. orange-box.
        id: String,
        #[arg(long)]
        title: String,
        /// Price of one unit in minor units (e.g. 2500 for 25.00).
        #[arg(long)]
        price_minor: i64,
        /// ISO 4217 code.
        #[arg(long, default_value = "CNY")]
        currency: String,
        #[arg(long, default_value = "box")]
        unit: String,
        #[arg(long, default_value_t = 0)]
        stock: i64,
    },
    /// Replace the local catalog's fields with the platform's catalog.
    Sync(PlatformArgs),
}

/// Runs `fieldcast products`.
pub fn products(store: &StoreArgs, command: ProductsCommand) -> Result<(), String> {
    let store = store.open()?;
    let catalog = Catalog::new(store.clone());
    match command {
        ProductsCommand::List => {
            let products = catalog.list().map_err(|e| e.to_string())?;
            if products.is_empty() {
                println!(
                    "the catalog is empty: `fieldcast products add` or `fieldcast products sync`"
                );
            }
            for p in products {
                println!(
                    "{:<16} {:<28} {:>10} {} / {:<6} stock {}",
                    p.id,
                    p.title,
                    money(p.price_minor),
                    p.currency,
                    p.unit,
                    p.stock
                );
            }
        }
        ProductsCommand::Add {
            id,
            title,
            price_minor,
            currency,
            unit,
            stock,
        } => {
            let product = Product {
                id,
                title,
                price_minor,
                currency,
                unit,
                stock,
                image_path: None,
            };
            catalog.upsert(&product).map_err(|e| e.to_string())?;
            println!("stored {}", product.id);
        }
        ProductsCommand::Sync(platform) => {
            let engine = platform.engine(store)?;
            let n = engine.refresh_catalog().map_err(|e| e.to_string())?;
            engine.stop();
            println!("{n} products from the platform");
        }
    }
    Ok(())
}

/// Options of `fieldcast sell`.
#[derive(Args, Debug)]
pub struct SellArgs {
    /// The product sold.
    pub product: String,
    /// Units sold.
    #[arg(long, default_value_t = 1)]
    pub qty: i64,
    /// Unit price in minor units (default: the catalog price).
    #[arg(long)]
    pub price_minor: Option<i64>,
    /// Sell beyond the stock (the farmer confirmed).
    #[arg(long)]
    pub oversell: bool,
    /// Who bought.
    #[arg(long)]
    pub buyer: Option<String>,
    /// The live session the sale belongs to.
    #[arg(long)]
    pub session: Option<String>,
}

/// Runs `fieldcast sell`: the sale is durable when this prints.
pub fn sell(store: &StoreArgs, args: SellArgs) -> Result<(), String> {
    let sales = Sales::new(store.open()?);
    let sale = sales
        .record_sale(NewSale {
            unit_price_minor: args.price_minor,
            allow_oversell: args.oversell,
            buyer: args.buyer,
            session_id: args.session,
            ..NewSale::new(args.product, args.qty)
        })
        .map_err(|e| e.to_string())?;
    println!(
        "sale {}: {} x {} at {} {} (stock now {}), queued for sync",
        sale.id,
        sale.quantity,
        sale.product_id,
        money(sale.unit_price_minor),
        sale.currency,
        sale.stock_after
    );
    Ok(())
}

/// Options of `fieldcast queue`.
#[derive(Args, Debug)]
pub struct QueueArgs {
    /// Send the queue to the platform before showing it.
    #[arg(long)]
    pub sync: bool,
    /// Longest time to spend syncing, in seconds.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

/// Runs `fieldcast queue`: the outbox counts, and with `--sync` every unsettled record after
/// sending what can be sent.
pub fn queue(store: &StoreArgs, args: QueueArgs) -> Result<(), String> {
    let store = store.open()?;
    if !args.sync {
        print_counts(&store.outbox_counts().map_err(|e| e.to_string())?);
        return Ok(());
    }
    let engine = args.platform.engine(store)?;
    engine.sync_now();
    if !engine.wait_idle(Duration::from_secs(args.wait)) {
        eprintln!("the queue did not empty in {} s", args.wait);
    }
    // Read after the stop: a record that was on the wire when the wait ended is pending again,
    // as it is on disk, instead of shown in flight by chance.
    engine.stop();
    let state = engine.queue_state().map_err(|e| e.to_string())?;
    print_counts(&OutboxCounts {
        pending: state.pending,
        in_flight: state.in_flight,
        conflicted: state.conflicted,
        synced: state.synced,
        discarded: state.discarded,
    });
    if let Some(reason) = &state.paused_reason {
        println!("paused: {reason}");
    }
    for item in &state.items {
        let r = &item.record;
        let detail = match (&r.conflict, &r.last_error) {
            (Some(c), _) => format!("refused: {} ({})", c.code, c.message),
            (None, Some(e)) => format!("last error: {e}"),
            _ => String::new(),
        };
        println!(
            "  {:?} {} {:?}, {} attempts {detail}",
            r.kind, r.record_id, r.state, r.attempts
        );
    }
    Ok(())
}

fn print_counts(c: &OutboxCounts) {
    println!(
        "pending {}, in flight {}, conflicted {}, synced {}, discarded {}",
        c.pending, c.in_flight, c.conflicted, c.synced, c.discarded
    );
}

/// Minor units as a decimal amount with two places.
pub fn money(minor: i64) -> String {
    format!(
        "{}{}.{:02}",
        if minor < 0 { "-" } else { "" },
        minor.abs() / 100,
        minor.abs() % 100
    )
}
