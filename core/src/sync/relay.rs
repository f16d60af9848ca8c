//! The relay loop: picks records with the [`Schedule`], posts them, applies the verdicts to the
//! outbox, and runs uploads and catalog refreshes beside it. Runs on the engine's own runtime.

use std::collections::{HashMap, HashSet};
use std::future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};

use super::backoff::BackoffPolicy;
use super::error::SyncError;
use super::platform::Platform;
use super::queue::Queue;
use super::response::Outcome;
use super::schedule::{Next, Schedule, Slot};
use super::shared::Shared;
use super::upload::{UploadJob, UploadResult};
use super::{PauseReason, SyncEvent};
use crate::commerce::Catalog;
use crate::store::outbox::{self, InvalidTransition, OutboxState, RecordKind, Transition};
use crate::store::{Store, StoreError};

/// Wait before trying again after the local store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// What the public handle asks of the relay.
pub(crate) enum Command {
    /// Look at the queue again now.
    Wake,
    /// Use another bearer token from now on.
    SetToken(String),
    /// Fetch the platform's catalog into the local one.
    RefreshCatalog(SyncSender<Result<usize, SyncError>>),
    /// Upload a replay file.
    Upload {
        path: PathBuf,
        session_id: String,
        reply: SyncSender<Result<UploadResult, SyncError>>,
    },
    /// Finish: abort requests on the wire (their records go back to pending) and return.
    Stop,
}

/// The answer to one posted record.
struct Reply {
    record_id: String,
    kind: RecordKind,
    token_generation: u64,
    outcome: Outcome,
}

pub(crate) struct Relay {
    store: Store,
    shared: Arc<Shared>,
    platform: Platform,
    /// Bumped by every new token, so a 401 to a request sent with an old token does not pause.
    token_generation: u64,
    policy: BackoffPolicy,
    schedule: Schedule,
    chunk_size: usize,
    commands: mpsc::UnboundedReceiver<Command>,
    queue: Queue,
    sends: JoinSet<Reply>,
    in_flight: HashSet<String>,
    tasks: HashMap<tokio::task::Id, String>,
    side_jobs: JoinSet<()>,
    wake_at: Option<Instant>,
}

impl Relay {
    pub fn new(
        store: Store,
        shared: Arc<Shared>,
        platform: Platform,
        config: &super::SyncConfig,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Relay {
        Relay {
            store,
            shared,
            platform,
            token_generation: 0,
            policy: config.backoff,
            schedule: Schedule {
                max_in_flight: config.max_concurrent_sends.max(1),
            },
            chunk_size: config.upload_chunk_size.max(1),
            commands,
            queue: Queue::default(),
            sends: JoinSet::new(),
            in_flight: HashSet::new(),
            tasks: HashMap::new(),
            side_jobs: JoinSet::new(),
            wake_at: None,
        }
    }

    /// Runs until [`Command::Stop`] or until the handle is gone.
    pub async fn run(mut self) {
        let mut commits = self.store.commits();
        loop {
            self.dispatch();
            let wake_at = self.wake_at;
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    None | Some(Command::Stop) => break,
                    Some(command) => self.handle(command),
                },
                Some(done) = self.sends.join_next_with_id(), if !self.sends.is_empty() => {
                    self.finish(done);
                }
                Some(_) = self.side_jobs.join_next(), if !self.side_jobs.is_empty() => {}
                Ok(()) = commits.changed() => {}
                () = sleep_until(wake_at) => {}
            }
        }
        self.shutdown().await;
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Wake | Command::Stop => {}
            Command::SetToken(token) => {
                self.platform = self.platform.with_token(&token);
                self.token_generation += 1;
                self.shared.resume();
            }
            Command::RefreshCatalog(reply) => {
                let platform = self.platform.clone();
                let catalog = Catalog::new(self.store.clone());
                self.side_jobs.spawn(async move {
                    let result = match platform.products().await {
                        Ok(products) => catalog.apply_remote(&products).map_err(SyncError::from),
                        Err(e) => Err(e),
                    };
                    // The caller may have given up waiting; nothing to do then.
                    let _ = reply.send(result);
                });
            }
            Command::Upload {
                path,
                session_id,
                reply,
            } => {
                let job = UploadJob {
                    store: self.store.clone(),
                    platform: self.platform.clone(),
                    shared: self.shared.clone(),
                    policy: self.policy,
                    chunk_size: self.chunk_size,
                };
                self.side_jobs.spawn(async move {
                    let _ = reply.send(job.run(&path, &session_id).await);
                });
            }
        }
    }

    /// Reads the records committed since the last look into the queue.
    fn read_new_records(&mut self) -> Result<(), StoreError> {
        let after = self.queue.last_seq();
        for (seq, record_id, order_key) in self.store.read(|c| outbox::unsettled_after(c, after))? {
            self.queue.push(seq, record_id, order_key);
        }
        Ok(())
    }

    /// Starts every request the schedule allows now and sets the next wake-up time.
    fn dispatch(&mut self) {
        self.wake_at = None;
        if let Err(e) = self.read_new_records() {
            log::error!("sync: cannot read the outbox: {e}");
            self.wake_at = Some(Instant::now() + STORE_RETRY);
            return;
        }
        if !self.shared.may_send() {
            return;
        }
        // Behind a captive portal, one record at a time tries again, after the portal's backoff.
        let portal = self.shared.interception();
        let schedule = match portal {
            Some(_) => Schedule { max_in_flight: 1 },
            None => self.schedule,
        };
        let heads: Vec<(String, String)> = self
            .queue
            .heads()
            .into_iter()
            .map(|(key, q)| (key.to_string(), q.record_id.clone()))
            .collect();
        let mut slots: Vec<Slot> = heads
            .iter()
            .map(|(key, record_id)| Slot {
                order_key: key.clone(),
                in_flight: self.in_flight.contains(record_id),
                ready_at: self.shared.ready_at(record_id).max(portal),
            })
            .collect();
        let now = Instant::now();
        loop {
            match schedule.next(&slots, now) {
                Next::Send(i) => {
                    // Checked per record: the app may have reported "offline" a moment ago.
                    if !self.shared.may_send() {
                        return;
                    }
                    slots[i].in_flight = true;
                    let record_id = &heads[i].1;
                    if let Err(e) = self.start_send(record_id) {
                        self.failed(record_id, format!("local store: {e}"));
                    }
                }
                Next::Wait { until } => {
                    self.wake_at = until;
                    return;
                }
            }
        }
    }

    /// Marks a record in flight and posts it.
    fn start_send(&mut self, record_id: &str) -> Result<(), StoreError> {
        let envelope = self.store.read(|c| outbox::envelope(c, record_id))?;
        let moved = self.store.write(|tx| {
            match outbox::apply(tx, record_id, &Transition::Send)? {
                // Still marked in flight from an attempt whose verdict could not be stored.
                Err(InvalidTransition {
                    state: OutboxState::InFlight,
                    ..
                }) => {
                    outbox::apply(tx, record_id, &Transition::Requeue { error: None })?.ok();
                    outbox::apply(tx, record_id, &Transition::Send)
                }
                moved => Ok(moved),
            }
        })?;
        if let Err(invalid) = moved {
            // Settled meanwhile (e.g. discarded): it leaves the queue.
            log::warn!("sync: {invalid}");
            self.queue.remove(record_id);
            return Ok(());
        }
        self.in_flight.insert(record_id.to_string());
        let platform = self.platform.clone();
        let token_generation = self.token_generation;
        let handle = self.sends.spawn(async move {
            let outcome = platform.send(&envelope).await;
            Reply {
                record_id: envelope.record_id,
                kind: envelope.kind,
                token_generation,
                outcome,
            }
        });
        self.tasks.insert(handle.id(), record_id.to_string());
        Ok(())
    }

    /// Applies the verdict on one request.
    fn finish(&mut self, done: Result<(tokio::task::Id, Reply), JoinError>) {
        let reply = match done {
            Ok((id, reply)) => {
                self.tasks.remove(&id);
                reply
            }
            Err(e) => {
                // Only a panic gets here (aborts happen at shutdown, after the loop).
                if let Some(record_id) = self.tasks.remove(&e.id()) {
                    self.in_flight.remove(&record_id);
                    self.failed(&record_id, format!("internal error: {e}"));
                }
                return;
            }
        };
        self.in_flight.remove(&reply.record_id);
        let id = reply.record_id.as_str();
        match reply.outcome {
            Outcome::Accepted { response, replayed } => {
                if self.settle(id, Transition::Accepted { response }) {
                    self.shared.emit(SyncEvent::Synced {
                        record_id: reply.record_id.clone(),
                        kind: reply.kind,
                        replayed,
                    });
                }
            }
            Outcome::Refused { code, message } => {
                let transition = Transition::Refused {
                    code: code.clone(),
                    message: message.clone(),
                };
                if self.settle(id, transition) {
                    self.shared.emit(SyncEvent::Conflict {
                        record_id: reply.record_id.clone(),
                        code,
                        message,
                    });
                }
            }
            Outcome::Transient { reason } => self.failed(id, reason),
            Outcome::Intercepted { reason } => self.intercepted(id, reason),
            Outcome::Unauthorized { status, message } => {
                self.requeue(id, Some(format!("HTTP {status}: {message}")));
                if reply.token_generation == self.token_generation {
                    self.shared.pause(if status == 403 {
                        PauseReason::Forbidden { message }
                    } else {
                        PauseReason::Unauthorized { message }
                    });
                }
            }
        }
    }

    /// Stores a final verdict; false (and a retry later) if the store failed.
    fn settle(&mut self, record_id: &str, transition: Transition) -> bool {
        match self
            .store
            .write(|tx| outbox::apply(tx, record_id, &transition))
        {
            Ok(Ok(_)) => {
                self.shared.record_settled(record_id);
                self.queue.remove(record_id);
                true
            }
            Ok(Err(invalid)) => {
                log::warn!("sync: {invalid}");
                false
            }
            Err(e) => {
                // The platform has it; the next attempt gets its stored answer again.
                self.failed(record_id, format!("local store: {e}"));
                false
            }
        }
    }

    /// Puts a record back to pending after a failure that may pass, with backoff.
    fn failed(&mut self, record_id: &str, reason: String) {
        self.requeue(record_id, Some(reason.clone()));
        let (attempt, delay) =
            self.shared
                .record_failed(record_id, &self.policy, Instant::now(), rand::random());
        log::info!("sync: {record_id} failed ({reason}); attempt {attempt}, next in {delay:?}");
        self.shared.emit(SyncEvent::Retrying {
            record_id: record_id.to_string(),
            attempt,
            delay,
            reason,
        });
    }

    /// Puts a record back to pending after a captive portal answered for it: the backoff is the
    /// portal's, shared by every request, not the record's.
    fn intercepted(&mut self, record_id: &str, reason: String) {
        self.requeue(record_id, Some(reason.clone()));
        let (attempt, delay) =
            self.shared
                .intercepted(&reason, &self.policy, Instant::now(), rand::random());
        log::info!(
            "sync: {record_id} intercepted ({reason}); attempt {attempt}, next in {delay:?}"
        );
        self.shared.emit(SyncEvent::Retrying {
            record_id: record_id.to_string(),
            attempt,
            delay,
            reason,
        });
    }

    fn requeue(&mut self, record_id: &str, error: Option<String>) {
        let result = self
            .store
            .write(|tx| outbox::apply(tx, record_id, &Transition::Requeue { error }));
        match result {
            Ok(Ok(_)) => {}
            // Still pending (its send could not be marked) or already settled: nothing to undo.
            Ok(Err(invalid)) => log::debug!("sync: {invalid}"),
            // Left in flight in the file; `dispatch` puts it back before its next send.
            Err(e) => log::error!("sync: cannot requeue {record_id}: {e}"),
        }
    }

    async fn shutdown(mut self) {
        self.sends.abort_all();
        self.side_jobs.abort_all();
        while self.sends.join_next().await.is_some() {}
        while self.side_jobs.join_next().await.is_some() {}
        match self.store.write(|tx| outbox::requeue_in_flight(tx)) {
            Ok(0) => {}
            Ok(n) => log::info!("sync: stopped with {n} records in flight; they are pending again"),
            Err(e) => log::error!("sync: cannot requeue records in flight: {e}"),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => future::pending().await,
    }
}
