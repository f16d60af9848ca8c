//! `fieldcast demo`: the whole story on the embedded default. A local sandbox (platform API +
//! nginx-rtmp ingest), a live session from the test source, two pinned products, five sales taken
//! while the network is marked unavailable, their sync when it returns, the replay upload, and a
//! summary of what the platform and the ingest hold. While live it prints the viewer's page.

use std::sync::Arc;
use std::time::Duration;

use fieldcast_core::{
    Catalog, LiveSession, NewSale, Pins, Sales, SessionConfig, SessionEvent, SessionState, Source,
    Store, StreamProfile, SyncConfig, SyncEngine, SyncEvent,
};
use fieldcast_sandbox::{MediaReport, Sandbox, SandboxOptions};
use tokio::time::sleep;

use crate::commerce::money;
use crate::platform::Platform;

/// What the farmer sells during the demo: (product, quantity).
const SALES: [(&str, i64); 5] = [
    ("orange-box", 2),
    ("honey-jar", 1),
    ("orange-box", 1),
    ("egg-tray", 3),
    ("honey-jar", 2),
];

/// Runs the demo with `secs` seconds of live time (at least 15).
pub async fn run(secs: u64) -> Result<(), String> {
    let secs = secs.max(15);
    let work = tempfile::Builder::new()
        .prefix("fieldcast-demo-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let sandbox = tokio::task::spawn_blocking(|| Sandbox::start(SandboxOptions::default()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    println!(
        "sandbox: API {}, ingest {}",
        sandbox.base_url(),
        sandbox.ingest_url().unwrap_or_default()
    );

    // The phone side: its store, synced with the platform.
    let store = Store::open(work.path().join("fieldcast.db")).map_err(|e| e.to_string())?;
    let engine = Arc::new(
        SyncEngine::start(
            store.clone(),
            SyncConfig::new(sandbox.base_url(), sandbox.token()),
        )
        .map_err(|e| e.to_string())?,
    );
    let refresh = engine.clone();
    let products = tokio::task::spawn_blocking(move || refresh.refresh_catalog())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "catalog: {} products from the platform",
        products.map_err(|e| e.to_string())?
    );
    let mut sync_events = engine.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = sync_events.recv().await {
            match event {
                SyncEvent::Synced {
                    record_id,
                    kind,
                    replayed,
                } => {
                    println!(
                        "  synced {kind:?} {record_id}{}",
                        if replayed { " (already there)" } else { "" }
                    )
                }
                SyncEvent::Conflict {
                    record_id,
                    code,
                    message,
                } => println!("  refused {record_id}: {code}: {message}"),
                SyncEvent::Paused { reason } => println!("  sync paused: {reason}"),
                SyncEvent::Resumed => println!("  sync resumed"),
                _ => {}
            }
        }
    });

    // Go live where the platform says.
    let platform = Platform::new(&sandbox.base_url(), sandbox.token());
    let live = platform
        .create_live_session("Oranges from the hill")
        .await?;
    let replay_dir = work.path().join("replay");
    let config = SessionConfig::builder(&live.publish_url)
        .source(Source::Test)
        .profile(StreamProfile::P480)
        .record_to(&replay_dir)
        .build()
        .map_err(|e| e.to_string())?;
    println!(
        "live session {}: publishing to {}",
        live.id,
        config.target.redacted()
    );
    let session = Arc::new(LiveSession::new(config).map_err(|e| e.to_string())?);
    session.link_commerce(Pins::new(store.clone()), &live.id);
    let mut events = session.subscribe();
    session.start().map_err(|e| e.to_string())?;
    println!(
        "watch it as a buyer: {} (open it in a browser while the demo runs)",
        sandbox.watch_url(&live.id)
    );
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            match event {
                SessionEvent::StateChanged { to, .. } => println!("state: {to:?}"),
                SessionEvent::Stats(s) if s.uptime.as_secs() % 5 == 0 => println!(
                    "  {:.0} fps, video {:.0} kbit/s, sent {:.1} MB, dropped {}",
                    s.output_fps,
                    s.video_kbps,
                    s.bytes_sent as f64 / 1e6,
                    s.dropped_frames
                ),
                SessionEvent::Error(e) => println!("error: {e}"),
                _ => {}
            }
        }
    });

    sleep(Duration::from_secs(3)).await;
    let first = session
        .pin_product("orange-box")
        .map_err(|e| e.to_string())?;
    println!("pinned orange-box at {} ms", first.stream_time_ms);

    println!("network marked unavailable: sales are kept on the phone");
    engine.set_network_available(false);
    let sales = Sales::new(store.clone());
    for (product, quantity) in SALES {
        let sale = sales
            .record_sale(NewSale {
                session_id: Some(live.id.clone()),
                ..NewSale::new(product, quantity)
            })
            .map_err(|e| e.to_string())?;
        println!(
            "  sold {} x {product} at {} {} (sale {})",
            sale.quantity,
            money(sale.unit_price_minor),
            sale.currency,
            sale.id
        );
        sleep(Duration::from_millis(600)).await;
    }
    let counts = store.outbox_counts().map_err(|e| e.to_string())?;
    println!(
        "outbox while offline: {} pending, {} synced",
        counts.pending, counts.synced
    );

    let second = session
        .pin_product("honey-jar")
        .map_err(|e| e.to_string())?;
    println!("pinned honey-jar at {} ms", second.stream_time_ms);
    sleep(Duration::from_secs(2)).await;
    println!("network back");
    engine.set_network_available(true);
    let idle = engine.clone();
    let drained = tokio::task::spawn_blocking(move || idle.wait_idle(Duration::from_secs(30)))
        .await
        .map_err(|e| e.to_string())?;
    if !drained {
        return Err("the outbox did not empty within 30 s".into());
    }

    let elapsed = session.stats().uptime.as_secs();
    sleep(Duration::from_secs(secs.saturating_sub(elapsed + 2))).await;
    session
        .unpin_product(&second.id)
        .map_err(|e| e.to_string())?;
    sleep(Duration::from_secs(2)).await;
    session.stop();
    let waiter = session.clone();
    let end = tokio::task::spawn_blocking(move || waiter.wait(Some(Duration::from_secs(15))))
        .await
        .map_err(|e| e.to_string())?;
    if end.map_err(|e| e.to_string())? != SessionState::Ended {
        return Err("the live session did not end cleanly".into());
    }
    let ended = platform.end_live_session(&live.id).await?;
    let idle = engine.clone();
    tokio::task::spawn_blocking(move || idle.wait_idle(Duration::from_secs(15)))
        .await
        .map_err(|e| e.to_string())?;

    // The replay: every recorded segment, uploaded resumably.
    let mut segments: Vec<_> = std::fs::read_dir(&replay_dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    segments.sort();
    let mut replay_bytes = 0;
    for segment in &segments {
        let (up, path, id) = (engine.clone(), segment.clone(), live.id.clone());
        let result = tokio::task::spawn_blocking(move || up.upload_file(path, &id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        replay_bytes += result.size;
    }
    engine.stop();

    println!();
    println!("== summary ==");
    let key = live
        .publish_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    match sandbox
        .ingest_recording(&key)
        .map(|p| MediaReport::probe(&p))
    {
        Some(Ok(report)) => print!("the ingest received: {report}"),
        Some(Err(e)) => println!("the ingest recording cannot be read: {e}"),
        None => println!("the ingest kept no recording"),
    }
    println!("pins (replay chapters):");
    for pin in Pins::new(store.clone())
        .pins(&live.id)
        .map_err(|e| e.to_string())?
    {
        let end = pin.ended_stream_time_ms.map_or("open".to_string(), |t| {
            format!("{:.2} s", t as f64 / 1000.0)
        });
        println!(
            "  {:<12} {:>7.2} s -> {end}",
            pin.product_id,
            pin.stream_time_ms as f64 / 1000.0
        );
    }
    let on_platform = ended["pins"].as_array().map_or(0, |p| p.len());
    println!("  the platform has {on_platform} pin events for the session");
    let platform_sales = platform.sales(&live.id).await?;
    let total: i64 = platform_sales
        .iter()
        .map(|s| s["quantity"].as_i64().unwrap_or(0) * s["unit_price_minor"].as_i64().unwrap_or(0))
        .sum();
    println!(
        "sales on the platform: {} (taken offline: {}), total {}",
        platform_sales.len(),
        SALES.len(),
        money(total)
    );
    let catalog = Catalog::new(store.clone());
    for product in ["orange-box", "honey-jar", "egg-tray"] {
        if let Ok(p) = catalog.get(product) {
            println!("  {product}: {} left on the phone", p.stock);
        }
    }
    println!(
        "replay: {} segment(s), {replay_bytes} bytes uploaded",
        segments.len()
    );
    if platform_sales.len() != SALES.len() {
        return Err(format!(
            "the platform holds {} sales, expected {}",
            platform_sales.len(),
            SALES.len()
        ));
    }
    sandbox.stop();
    Ok(())
}
