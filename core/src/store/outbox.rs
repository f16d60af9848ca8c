//! The outbox: records written in the same transaction as the business change they report, then
//! sent to the platform by the sync relay. The state machine is pure ([`OutboxState::after`]); the
//! table functions apply it, so an update that the machine forbids never reaches the file.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::error::StoreError;

/// What kind of record a row carries, which decides the platform endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A sale (`POST /v1/sales`).
    Sale,
    /// A pin or unpin event (`POST /v1/pin-events`).
    PinEvent,
}

impl RecordKind {
    /// The platform path the record is posted to.
    pub fn path(self) -> &'static str {
        match self {
            RecordKind::Sale => "/v1/sales",
            RecordKind::PinEvent => "/v1/pin-events",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            RecordKind::Sale => "sale",
            RecordKind::PinEvent => "pin_event",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "sale" => Ok(RecordKind::Sale),
            "pin_event" => Ok(RecordKind::PinEvent),
            other => Err(StoreError::decode("outbox kind", other)),
        }
    }
}

/// Where an outbox record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxState {
    /// Waiting to be sent (first time or again after a transient failure).
    Pending,
    /// A request is on the wire.
    InFlight,
    /// The platform accepted it (final).
    Synced,
    /// The platform refused it for a business reason (oversold, price changed…); the app must
    /// show it. Never retried automatically: the platform stores its answer under the record id.
    Conflicted,
    /// The app dropped a conflicted record (final).
    Discarded,
}

impl OutboxState {
    fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::InFlight => "in_flight",
            OutboxState::Synced => "synced",
            OutboxState::Conflicted => "conflicted",
            OutboxState::Discarded => "discarded",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(OutboxState::Pending),
            "in_flight" => Ok(OutboxState::InFlight),
            "synced" => Ok(OutboxState::Synced),
            "conflicted" => Ok(OutboxState::Conflicted),
            "discarded" => Ok(OutboxState::Discarded),
            other => Err(StoreError::decode("outbox state", other)),
        }
    }

    /// The state after `transition`, or `None` if the transition is not allowed from here.
    pub fn after(self, transition: &Transition) -> Option<OutboxState> {
        use OutboxState::*;
        match (self, transition) {
            (Pending, Transition::Send) => Some(InFlight),
            (InFlight, Transition::Accepted { .. }) => Some(Synced),
            (InFlight, Transition::Refused { .. }) => Some(Conflicted),
            (InFlight, Transition::Requeue { .. }) => Some(Pending),
            (Conflicted, Transition::Discard) => Some(Discarded),
            _ => None,
        }
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of an outbox record's state, with what is recorded along with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// A request is about to go out (counts an attempt).
    Send,
    /// The platform accepted the record; `response` is its answer, kept as a receipt.
    Accepted {
        /// The response body (compact JSON).
        response: String,
    },
    /// The platform refused the record for good.
    Refused {
        /// The platform's machine code (`oversold`, `price_changed`…).
        code: String,
        /// The platform's human message.
        message: String,
    },
    /// The attempt failed in a way that may pass (or never finished); the record waits again.
    Requeue {
        /// Why, if an attempt failed.
        error: Option<String>,
    },
    /// The app drops a conflicted record.
    Discard,
}

/// The rejected change of state, for messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbox record {record_id} is {state}: cannot apply {transition}")]
pub struct InvalidTransition {
    /// The record.
    pub record_id: String,
    /// Its current state.
    pub state: OutboxState,
    /// The refused transition's name.
    pub transition: &'static str,
}

impl Transition {
    fn name(&self) -> &'static str {
        match self {
            Transition::Send => "send",
            Transition::Accepted { .. } => "accepted",
            Transition::Refused { .. } => "refused",
            Transition::Requeue { .. } => "requeue",
            Transition::Discard => "discard",
        }
    }
}

/// The platform's refusal of a conflicted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Machine code (`oversold`, `price_changed`, `idempotency_key_mismatch`, `unknown_product`…).
    pub code: String,
    /// Human message from the platform.
    pub message: String,
}

/// One outbox record as the queue listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Position in the queue (grows with every new record).
    pub seq: i64,
    /// The record id, sent as `Idempotency-Key`.
    pub record_id: String,
    /// What it is.
    pub kind: RecordKind,
    /// Records with the same key (the product id) are sent in order.
    pub order_key: String,
    /// Where it is.
    pub state: OutboxState,
    /// Requests started for it so far.
    pub attempts: u32,
    /// The last transient failure, if any.
    pub last_error: Option<String>,
    /// The platform's refusal, for a conflicted record.
    pub conflict: Option<Conflict>,
    /// When it was queued (RFC 3339).
    pub created_at: String,
}

/// How many records are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting to be sent.
    pub pending: u64,
    /// On the wire.
    pub in_flight: u64,
    /// Accepted by the platform.
    pub synced: u64,
    /// Refused by the platform, waiting for the app.
    pub conflicted: u64,
    /// Dropped by the app after a conflict.
    pub discarded: u64,
}

/// What the relay needs to send one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub record_id: String,
    pub kind: RecordKind,
    pub body: String,
}

/// Queues a record inside the caller's transaction.
pub(crate) fn enqueue(
    tx: &Transaction<'_>,
    record_id: &str,
    kind: RecordKind,
    order_key: &str,
    body: &serde_json::Value,
    created_at: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO outbox (record_id, kind, order_key, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![record_id, kind.as_str(), order_key, body.to_string(), created_at],
    )?;
    Ok(())
}

/// Applies `transition` to a record, checking it against the state machine, and returns the new
/// state.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    record_id: &str,
    transition: &Transition,
) -> Result<Result<OutboxState, InvalidTransition>, StoreError> {
    let current: Option<String> = tx
        .query_row(
            "SELECT state FROM outbox WHERE record_id = ?1",
            [record_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(current) = current else {
        return Err(StoreError::NotFound {
            what: format!("outbox record {record_id}"),
        });
    };
    let current = OutboxState::parse(&current)?;
    let Some(next) = current.after(transition) else {
        return Ok(Err(InvalidTransition {
            record_id: record_id.to_string(),
            state: current,
            transition: transition.name(),
        }));
    };
    let now = super::now_rfc3339();
    let state = next.as_str();
    match transition {
        Transition::Send => tx.execute(
            "UPDATE outbox SET state = ?2, attempts = attempts + 1 WHERE record_id = ?1",
            params![record_id, state],
        )?,
        Transition::Accepted { response } => tx.execute(
            "UPDATE outbox SET state = ?2, response = ?3, last_error = NULL, settled_at = ?4
             WHERE record_id = ?1",
            params![record_id, state, response, now],
        )?,
        Transition::Refused { code, message } => tx.execute(
            "UPDATE outbox SET state = ?2, conflict_code = ?3, conflict_message = ?4, settled_at = ?5
             WHERE record_id = ?1",
            params![record_id, state, code, message, now],
        )?,
        Transition::Requeue { error } => tx.execute(
            "UPDATE outbox SET state = ?2, last_error = COALESCE(?3, last_error) WHERE record_id = ?1",
            params![record_id, state, error],
        )?,
        Transition::Discard => tx.execute(
            "UPDATE outbox SET state = ?2, settled_at = ?3 WHERE record_id = ?1",
            params![record_id, state, now],
        )?,
    };
    Ok(Ok(next))
}

/// Puts every in-flight record back to pending (their requests died with the process or the
/// relay); returns how many.
pub(crate) fn requeue_in_flight(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE outbox SET state = 'pending' WHERE state = 'in_flight'",
        [],
    )?)
}

/// The unsettled (pending or in-flight) records queued after `seq`, oldest first, as
/// `(seq, record_id, order_key)`.
pub(crate) fn unsettled_after(
    conn: &Connection,
    seq: i64,
) -> Result<Vec<(i64, String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, record_id, order_key FROM outbox
         WHERE seq > ?1 AND state IN ('pending', 'in_flight') ORDER BY seq",
    )?;
    let rows = stmt
        .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The kind and body of one record.
pub(crate) fn envelope(conn: &Connection, record_id: &str) -> Result<Envelope, StoreError> {
    let (kind, body): (String, String) = conn
        .query_row(
            "SELECT kind, body FROM outbox WHERE record_id = ?1",
            [record_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("outbox record {record_id}"),
        })?;
    Ok(Envelope {
        record_id: record_id.to_string(),
        kind: RecordKind::parse(&kind)?,
        body,
    })
}

/// The kind of one record, if it exists.
pub(crate) fn kind_of(
    conn: &Connection,
    record_id: &str,
) -> Result<Option<RecordKind>, StoreError> {
    conn.query_row(
        "SELECT kind FROM outbox WHERE record_id = ?1",
        [record_id],
        |r| r.get::<_, String>(0),
    )
    .optional()?
    .map(|k| RecordKind::parse(&k))
    .transpose()
}

/// How many records are in each state.
pub(crate) fn counts(conn: &Connection) -> Result<OutboxCounts, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT state, COUNT(*) FROM outbox GROUP BY state")?;
    let mut counts = OutboxCounts::default();
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (state, n) = row?;
        let n = n as u64;
        match OutboxState::parse(&state)? {
            OutboxState::Pending => counts.pending = n,
            OutboxState::InFlight => counts.in_flight = n,
            OutboxState::Synced => counts.synced = n,
            OutboxState::Conflicted => counts.conflicted = n,
            OutboxState::Discarded => counts.discarded = n,
        }
    }
    Ok(counts)
}

/// Every record not yet settled for good (pending, in flight, conflicted), oldest first.
pub(crate) fn open_items(conn: &Connection) -> Result<Vec<OutboxItem>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, record_id, kind, order_key, state, attempts, last_error,
                conflict_code, conflict_message, created_at
         FROM outbox WHERE state IN ('pending', 'in_flight', 'conflicted') ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, Option<String>>(8)?,
            r.get::<_, String>(9)?,
        ))
    })?;
    rows.map(|row| {
        let (seq, record_id, kind, order_key, state, attempts, last_error, code, message, created) =
            row?;
        Ok(OutboxItem {
            seq,
            record_id,
            kind: RecordKind::parse(&kind)?,
            order_key,
            state: OutboxState::parse(&state)?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            last_error,
            conflict: code.map(|code| Conflict {
                code,
                message: message.unwrap_or_default(),
            }),
            created_at: created,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutboxState::*;

    fn all_transitions() -> Vec<Transition> {
        vec![
            Transition::Send,
            Transition::Accepted {
                response: "{}".into(),
            },
            Transition::Refused {
                code: "oversold".into(),
                message: "m".into(),
            },
            Transition::Requeue { error: None },
            Transition::Discard,
        ]
    }

    #[test]
    fn state_machine_allows_exactly_the_documented_moves() {
        let allowed = [
            (Pending, "send", InFlight),
            (InFlight, "accepted", Synced),
            (InFlight, "refused", Conflicted),
            (InFlight, "requeue", Pending),
            (Conflicted, "discard", Discarded),
        ];
        for from in [Pending, InFlight, Synced, Conflicted, Discarded] {
            for t in all_transitions() {
                let expected = allowed
                    .iter()
                    .find(|(f, name, _)| *f == from && *name == t.name())
                    .map(|(_, _, to)| *to);
                assert_eq!(from.after(&t), expected, "{from} + {}", t.name());
            }
        }
    }

    #[test]
    fn settled_states_never_move() {
        for t in all_transitions() {
            assert_eq!(Synced.after(&t), None);
            assert_eq!(Discarded.after(&t), None);
        }
    }

    #[test]
    fn states_and_kinds_round_trip_through_their_names() {
        for s in [Pending, InFlight, Synced, Conflicted, Discarded] {
            assert_eq!(OutboxState::parse(s.as_str()).unwrap(), s);
        }
        for k in [RecordKind::Sale, RecordKind::PinEvent] {
            assert_eq!(RecordKind::parse(k.as_str()).unwrap(), k);
        }
        assert!(OutboxState::parse("lost").is_err());
    }
}
