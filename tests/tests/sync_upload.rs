//! Replay upload (tus 1.0) against the sandbox: resumes where the server is after the engine was
//! stopped mid-way, survives server errors, and the server's bytes equal the file.

mod sync_support;

use std::path::Path;
use std::time::{Duration, Instant};

use fieldcast_core::{Store, SyncConfig, SyncEngine, SyncError, SyncEvent, UploadResult};
use rand::RngCore;
use sync_support::{Platform, drain, wait_event};

const UPLOADS: &str = "/v1/uploads";

fn replay_file(dir: &Path, size: usize) -> (std::path::PathBuf, Vec<u8>) {
    let mut bytes = vec![0u8; size];
    rand::rng().fill_bytes(&mut bytes);
    let path = dir.join("replay.mp4");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// The bytes the sandbox holds for an upload.
fn server_bytes(platform: &Platform, result: &UploadResult) -> Vec<u8> {
    let id = result.upload_url.rsplit('/').next().unwrap();
    std::fs::read(platform.sandbox.data_dir().join("uploads").join(id)).unwrap()
}

fn config(platform: &Platform, chunk: usize) -> SyncConfig {
    SyncConfig {
        upload_chunk_size: chunk,
        ..platform.config()
    }
}

#[test]
fn an_upload_stopped_midway_resumes_where_the_server_is() {
    let platform = Platform::start(10);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("fieldcast.db")).unwrap();
    let (path, bytes) = replay_file(dir.path(), 2 * 1024 * 1024 + 123);
    let chunk = 64 * 1024;
    // Every upload request takes 100 ms, so the stop lands mid-way.
    platform.fault("slow", 10_000, &[UPLOADS], Some(100));

    let engine = SyncEngine::start(store.clone(), config(&platform, chunk)).unwrap();
    let mut events = engine.subscribe();
    let first = std::thread::scope(|s| {
        let upload = s.spawn(|| engine.upload_file(&path, "live-1"));
        let progressed = wait_event(
            &mut events,
            Duration::from_secs(10),
            |e| matches!(e, SyncEvent::UploadProgress { sent, .. } if *sent >= 4 * chunk as u64),
        );
        assert!(progressed.is_some(), "no progress");
        engine.stop();
        upload.join().unwrap()
    });
    assert_eq!(first, Err(SyncError::Stopped));
    drop(engine);
    platform.clear_faults();

    let engine = SyncEngine::start(store, config(&platform, chunk)).unwrap();
    let mut events = engine.subscribe();
    let result = engine.upload_file(&path, "live-1").unwrap();
    assert_eq!(result.size, bytes.len() as u64);
    assert!(
        result.resumed_from >= 4 * chunk as u64 && result.resumed_from < result.size,
        "resumed from {} of {}",
        result.resumed_from,
        result.size
    );
    assert!(
        server_bytes(&platform, &result) == bytes,
        "server bytes differ"
    );
    let progress: Vec<u64> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            SyncEvent::UploadProgress { sent, total, .. } => {
                assert_eq!(total, result.size);
                Some(sent)
            }
            _ => None,
        })
        .collect();
    assert_eq!(progress.first(), Some(&result.resumed_from));
    assert_eq!(progress.last(), Some(&result.size));
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");

    // Asking again for the same file is answered from the store, without a request.
    let before = platform.requests("/v1/uploads/{upload_id}");
    let again = engine.upload_file(&path, "live-1").unwrap();
    assert_eq!(again.upload_id, result.upload_id);
    assert_eq!(platform.requests("/v1/uploads/{upload_id}"), before);
}

#[test]
fn an_upload_goes_through_server_errors_and_dropped_connections() {
    let platform = Platform::start(10);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("fieldcast.db")).unwrap();
    let (path, bytes) = replay_file(dir.path(), 700 * 1024);
    platform.fault("status500", 2, &[UPLOADS], None);
    platform.fault("close", 2, &[UPLOADS], None);
    platform.fault("garbage", 1, &[UPLOADS], None);

    let engine = SyncEngine::start(store, config(&platform, 256 * 1024)).unwrap();
    let mut events = engine.subscribe();
    let started = Instant::now();
    let result = engine.upload_file(&path, "live-1").unwrap();
    println!("700 KiB upload through 5 faults in {:?}", started.elapsed());
    assert!(
        server_bytes(&platform, &result) == bytes,
        "server bytes differ"
    );
    let retries = drain(&mut events)
        .into_iter()
        .filter(|e| matches!(e, SyncEvent::Retrying { record_id, .. } if *record_id == result.upload_id))
        .count();
    assert!(retries >= 4, "{retries} retries");
}

#[test]
fn a_missing_file_is_a_typed_error() {
    let platform = Platform::start(10);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("fieldcast.db")).unwrap();
    let engine = SyncEngine::start(store, platform.config()).unwrap();
    let err = engine
        .upload_file(dir.path().join("nope.mp4"), "live-1")
        .unwrap_err();
    assert!(matches!(err, SyncError::File { .. }), "{err:?}");
}
