//! Resumable replay upload (tus 1.0). The server's upload URL is stored as soon as it exists, so a
//! stopped or killed app asks the server how far it got (`HEAD`) and sends only the rest. Failures
//! that may pass are retried with backoff; progress is reported as [`SyncEvent::UploadProgress`].
//! Behind a captive portal the upload waits with the portal's backoff, for as long as it takes,
//! without counting towards giving up.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{OptionalExtension, Transaction, params};
use tokio::sync::watch;
use url::Url;

use super::backoff::{Backoff, BackoffPolicy};
use super::error::SyncError;
use super::platform::Platform;
use super::shared::Shared;
use super::tus::{self, TusError};
use super::{PauseReason, SyncEvent};
use crate::commerce::new_record_id;
use crate::store::{Store, StoreError, now_rfc3339};

/// Failed attempts in a row, without any byte getting through, before the upload gives up.
const MAX_FAILURES: u32 = 8;

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadResult {
    /// The local id of the upload (the same across restarts for the same file and session).
    pub upload_id: String,
    /// The server's upload URL.
    pub upload_url: String,
    /// Bytes uploaded in total (the file size).
    pub size: u64,
    /// Bytes the server already had when this call started (0 for a fresh upload).
    pub resumed_from: u64,
}

/// Everything an upload needs from the engine.
pub(crate) struct UploadJob {
    pub store: Store,
    pub platform: Platform,
    pub shared: Arc<Shared>,
    pub policy: BackoffPolicy,
    pub chunk_size: usize,
}

/// The upload as stored.
struct UploadRecord {
    id: String,
    url: Option<String>,
    size: u64,
    completed: bool,
}

/// Why an attempt stopped.
enum Failure {
    /// Try again after a backoff.
    Retry(String),
    /// Sending is paused (offline, credentials): wait, without counting a failure.
    Paused,
    /// A captive portal or proxy answered: wait with its backoff, without counting a failure.
    Intercepted(String),
    /// Give up.
    Fatal(SyncError),
}

impl From<TusError> for Failure {
    fn from(e: TusError) -> Self {
        match e {
            TusError::Retry(reason) => Failure::Retry(reason),
            TusError::Intercepted(reason) => Failure::Intercepted(reason),
            TusError::Gone => Failure::Retry("the server no longer has this upload".into()),
            TusError::Unauthorized { status, message } => {
                Failure::Fatal(SyncError::Unauthorized { status, message })
            }
            TusError::Refused { status, message } => Failure::Fatal(SyncError::Refused {
                status,
                code: "upload_refused".into(),
                message,
            }),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Fatal(e.into())
    }
}

impl UploadJob {
    /// Uploads `path` for `session_id`, resuming an earlier upload of the same file.
    pub async fn run(self, path: &Path, session_id: &str) -> Result<UploadResult, SyncError> {
        let file_error = |e: std::io::Error| SyncError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let path = std::fs::canonicalize(path).map_err(file_error)?;
        let size = std::fs::metadata(&path).map_err(file_error)?.len();
        let key = path.to_string_lossy().into_owned();
        let mut record = self
            .store
            .write(|tx| find_or_create(tx, &key, session_id, size))?;
        if let (true, Some(url)) = (record.completed, &record.url) {
            return Ok(UploadResult {
                upload_id: record.id,
                upload_url: url.clone(),
                size,
                resumed_from: size,
            });
        }
        let mut may_send = self.shared.may_send_watch();
        let mut backoff = Backoff::default();
        let mut resumed_from = None;
        loop {
            while !*may_send.borrow_and_update() {
                if may_send.changed().await.is_err() {
                    return Err(SyncError::Stopped);
                }
            }
            let mut progressed = false;
            let reason = match self
                .attempt(
                    &path,
                    session_id,
                    &mut record,
                    &mut resumed_from,
                    &mut progressed,
                )
                .await
            {
                Ok(result) => return Ok(result),
                Err(Failure::Paused) => continue,
                Err(Failure::Intercepted(reason)) => {
                    let (attempt, delay) = self.shared.intercepted(
                        &reason,
                        &self.policy,
                        Instant::now(),
                        rand::random(),
                    );
                    self.retry_after(&record.id, attempt, delay, reason, &mut may_send)
                        .await;
                    continue;
                }
                Err(Failure::Fatal(e)) => {
                    if let SyncError::Unauthorized { status, message } = &e {
                        self.shared.pause(if *status == 403 {
                            PauseReason::Forbidden {
                                message: message.clone(),
                            }
                        } else {
                            PauseReason::Unauthorized {
                                message: message.clone(),
                            }
                        });
                    }
                    return Err(e);
                }
                Err(Failure::Retry(reason)) => reason,
            };
            if progressed {
                backoff = Backoff::default();
            }
            if backoff.failures() >= MAX_FAILURES {
                return Err(SyncError::Network(format!(
                    "upload {} failed {MAX_FAILURES} times in a row: {reason}",
                    record.id
                )));
            }
            let delay = backoff.failed(&self.policy, Instant::now(), rand::random());
            self.retry_after(&record.id, backoff.failures(), delay, reason, &mut may_send)
                .await;
        }
    }

    /// Announces the next attempt and waits for it; the wait ends early when sending is allowed
    /// again after a pause.
    async fn retry_after(
        &self,
        upload_id: &str,
        attempt: u32,
        delay: std::time::Duration,
        reason: String,
        may_send: &mut watch::Receiver<bool>,
    ) {
        self.shared.emit(SyncEvent::Retrying {
            record_id: upload_id.to_string(),
            attempt,
            delay,
            reason,
        });
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = allowed_again(may_send) => {}
        }
    }

    /// One pass: find or create the upload on the server, ask its offset, send the rest.
    async fn attempt(
        &self,
        path: &Path,
        session_id: &str,
        record: &mut UploadRecord,
        resumed_from: &mut Option<u64>,
        progressed: &mut bool,
    ) -> Result<UploadResult, Failure> {
        let url = match &record.url {
            Some(url) => Url::parse(url).map_err(|e| Failure::Retry(format!("stored URL: {e}")))?,
            None => {
                let filename = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let metadata = [("session_id", session_id), ("filename", filename.as_str())];
                let url = tus::create(&self.platform, record.size, &metadata).await?;
                self.store
                    .write(|tx| save_url(tx, &record.id, Some(url.as_str())))?;
                record.url = Some(url.to_string());
                url
            }
        };
        let mut offset = match tus::offset(&self.platform, &url).await {
            Ok(offset) => offset,
            Err(TusError::Gone) => {
                self.store.write(|tx| save_url(tx, &record.id, None))?;
                record.url = None;
                return Err(TusError::Gone.into());
            }
            Err(e) => return Err(e.into()),
        };
        resumed_from.get_or_insert(offset);
        self.progress(record, offset);
        let mut file = File::open(path).map_err(|e| self.file_failure(path, e))?;
        while offset < record.size {
            if !self.shared.may_send() {
                return Err(Failure::Paused);
            }
            let chunk = read_chunk(&mut file, offset, self.chunk_size, record.size)
                .map_err(|e| self.file_failure(path, e))?;
            let next = match tus::append(&self.platform, &url, offset, chunk).await {
                Err(TusError::Gone) => {
                    self.store.write(|tx| save_url(tx, &record.id, None))?;
                    record.url = None;
                    return Err(TusError::Gone.into());
                }
                other => other?,
            };
            if next <= offset || next > record.size {
                return Err(Failure::Retry(format!(
                    "server offset went from {offset} to {next} of {}",
                    record.size
                )));
            }
            offset = next;
            *progressed = true;
            self.progress(record, offset);
        }
        self.store.write(|tx| complete(tx, &record.id))?;
        Ok(UploadResult {
            upload_id: record.id.clone(),
            upload_url: url.to_string(),
            size: record.size,
            resumed_from: resumed_from.unwrap_or(0),
        })
    }

    fn progress(&self, record: &UploadRecord, sent: u64) {
        self.shared.emit(SyncEvent::UploadProgress {
            upload_id: record.id.clone(),
            sent,
            total: record.size,
        });
    }

    fn file_failure(&self, path: &Path, e: std::io::Error) -> Failure {
        Failure::Fatal(SyncError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

/// Waits until sending goes from not allowed to allowed; never returns while it stays allowed.
async fn allowed_again(may_send: &mut watch::Receiver<bool>) {
    let mut was_blocked = !*may_send.borrow_and_update();
    while may_send.changed().await.is_ok() {
        let allowed = *may_send.borrow_and_update();
        if allowed && was_blocked {
            return;
        }
        was_blocked |= !allowed;
    }
    std::future::pending().await
}

/// Reads the bytes at `offset`, up to `chunk_size` and the expected file end.
fn read_chunk(
    file: &mut File,
    offset: u64,
    chunk_size: usize,
    size: u64,
) -> std::io::Result<Vec<u8>> {
    let want = (size - offset).min(chunk_size as u64) as usize;
    let mut chunk = vec![0; want];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut chunk).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            std::io::Error::new(e.kind(), "the file got shorter during the upload")
        } else {
            e
        }
    })?;
    Ok(chunk)
}

fn find_or_create(
    tx: &Transaction<'_>,
    path: &str,
    session_id: &str,
    size: u64,
) -> Result<UploadRecord, StoreError> {
    let size_i64 = i64::try_from(size).map_err(|_| StoreError::Constraint {
        message: format!("file size {size} is out of range"),
    })?;
    let existing: Option<(String, Option<String>, Option<String>)> = tx
        .query_row(
            "SELECT id, upload_url, completed_at FROM uploads
             WHERE path = ?1 AND session_id = ?2 AND size = ?3",
            params![path, session_id, size_i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((id, url, completed_at)) = existing {
        return Ok(UploadRecord {
            id,
            url,
            size,
            completed: completed_at.is_some(),
        });
    }
    let id = new_record_id();
    tx.execute(
        "INSERT INTO uploads (id, path, session_id, size, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, path, session_id, size_i64, now_rfc3339()],
    )?;
    Ok(UploadRecord {
        id,
        url: None,
        size,
        completed: false,
    })
}

fn save_url(tx: &Transaction<'_>, id: &str, url: Option<&str>) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE uploads SET upload_url = ?2 WHERE id = ?1",
        params![id, url],
    )?;
    Ok(())
}

fn complete(tx: &Transaction<'_>, id: &str) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE uploads SET completed_at = COALESCE(completed_at, ?2) WHERE id = ?1",
        params![id, now_rfc3339()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn chunks_stop_at_the_file_end() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&(0..=9).collect::<Vec<u8>>()).unwrap();
        assert_eq!(read_chunk(&mut f, 0, 4, 10).unwrap(), [0, 1, 2, 3]);
        assert_eq!(read_chunk(&mut f, 8, 4, 10).unwrap(), [8, 9]);
        let err = read_chunk(&mut f, 8, 4, 12).unwrap_err();
        assert!(err.to_string().contains("shorter"), "{err}");
    }

    #[test]
    fn the_same_file_and_session_is_the_same_upload() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("fc.db")).unwrap();
        let a = store
            .write(|tx| find_or_create(tx, "/r/replay.mp4", "live-1", 100))
            .unwrap();
        store
            .write(|tx| save_url(tx, &a.id, Some("http://h/v1/uploads/x")))
            .unwrap();
        let again = store
            .write(|tx| find_or_create(tx, "/r/replay.mp4", "live-1", 100))
            .unwrap();
        assert_eq!(again.id, a.id);
        assert_eq!(again.url.as_deref(), Some("http://h/v1/uploads/x"));
        let other = store
            .write(|tx| find_or_create(tx, "/r/replay.mp4", "live-2", 100))
            .unwrap();
        assert_ne!(other.id, a.id);
        assert_eq!(other.url, None);
    }
}
