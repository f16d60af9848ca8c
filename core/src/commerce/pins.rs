//! Product pins on the stream timeline: "this product is being shown now". One product is pinned at
//! a time per session, so starting a pin ends the open one at the same stream time; a pin with a
//! start and an end is a chapter of the replay. Every start and end is a pin event queued in the
//! outbox in the same transaction (the platform's `PinEvent`, its id the `Idempotency-Key`).
//! The in-video SEI copy of a pin is written by the media path, not here.

use rusqlite::{OptionalExtension, Row, Transaction, params};
use time::OffsetDateTime;

use super::{CommerceError, new_record_id, products};
use crate::store::outbox::{self, RecordKind};
use crate::store::{Store, StoreError, decoded, format_time, parse_time};

/// A product pinned during a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// UUIDv7 of the pin; its pin and unpin events carry it.
    pub id: String,
    /// The product shown.
    pub product_id: String,
    /// The live session.
    pub session_id: String,
    /// Where the pin starts, ms from the stream start.
    pub stream_time_ms: u64,
    /// Wall-clock time of the start (UTC).
    pub wall_time: OffsetDateTime,
    /// Where it ends, once ended.
    pub ended_stream_time_ms: Option<u64>,
}

/// The pins of a store.
#[derive(Debug, Clone)]
pub struct Pins {
    store: Store,
}

#[derive(Clone, Copy)]
enum Action {
    Pin,
    Unpin,
}

impl Pins {
    /// The pins kept in `store`.
    pub fn new(store: Store) -> Self {
        Pins { store }
    }

    /// Pins `product_id` at `stream_time_ms` of `session_id`, ending the session's open pin there.
    pub fn start_pin(
        &self,
        session_id: &str,
        product_id: &str,
        stream_time_ms: u64,
    ) -> Result<Pin, CommerceError> {
        if session_id.is_empty() {
            return Err(CommerceError::Invalid {
                field: "session_id",
                reason: "must not be empty".into(),
            });
        }
        let at = stream_time(stream_time_ms)?;
        self.store.write(|tx| {
            if products::find(tx, product_id)?.is_none() {
                return Err(CommerceError::UnknownProduct {
                    product_id: product_id.to_string(),
                });
            }
            if let Some(open) = open_pin(tx, session_id)? {
                end(tx, open, stream_time_ms)?;
            }
            let pin = Pin {
                id: new_record_id(),
                product_id: product_id.to_string(),
                session_id: session_id.to_string(),
                stream_time_ms,
                wall_time: OffsetDateTime::now_utc(),
                ended_stream_time_ms: None,
            };
            let event_id = new_record_id();
            tx.execute(
                "INSERT INTO pins (id, session_id, product_id, stream_time_ms, wall_time, start_event_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    pin.id,
                    pin.session_id,
                    pin.product_id,
                    at,
                    format_time(pin.wall_time),
                    event_id
                ],
            )?;
            queue_event(tx, &event_id, &pin, Action::Pin, stream_time_ms, pin.wall_time)?;
            Ok(pin)
        })
    }

    /// Ends a pin at `stream_time_ms` (not before its start) and returns it.
    pub fn end_pin(&self, pin_id: &str, stream_time_ms: u64) -> Result<Pin, CommerceError> {
        stream_time(stream_time_ms)?;
        self.store.write(|tx| {
            let pin = find(tx, pin_id)?.ok_or_else(|| CommerceError::UnknownPin {
                pin_id: pin_id.to_string(),
            })?;
            if let Some(ended) = pin.ended_stream_time_ms {
                return Err(CommerceError::PinAlreadyEnded {
                    pin_id: pin_id.to_string(),
                    ended_stream_time_ms: ended,
                });
            }
            end(tx, pin, stream_time_ms)
        })
    }

    /// The pins of a session in stream order: the replay's chapters (an open pin has no end yet).
    pub fn pins(&self, session_id: &str) -> Result<Vec<Pin>, CommerceError> {
        self.store.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{SELECT} WHERE session_id = ?1 ORDER BY stream_time_ms, id"
            ))?;
            let pins = stmt
                .query_map([session_id], from_row)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from)?;
            Ok(pins)
        })
    }
}

fn stream_time(ms: u64) -> Result<i64, CommerceError> {
    i64::try_from(ms).map_err(|_| CommerceError::Invalid {
        field: "stream_time_ms",
        reason: format!("{ms} is out of range"),
    })
}

fn end(tx: &Transaction<'_>, mut pin: Pin, stream_time_ms: u64) -> Result<Pin, CommerceError> {
    if stream_time_ms < pin.stream_time_ms {
        return Err(CommerceError::Invalid {
            field: "stream_time_ms",
            reason: format!(
                "pin {} starts at {} ms and cannot end earlier, at {stream_time_ms} ms",
                pin.id, pin.stream_time_ms
            ),
        });
    }
    let event_id = new_record_id();
    let wall_time = OffsetDateTime::now_utc();
    tx.execute(
        "UPDATE pins SET ended_stream_time_ms = ?2, ended_wall_time = ?3, end_event_id = ?4
         WHERE id = ?1",
        params![
            pin.id,
            stream_time(stream_time_ms)?,
            format_time(wall_time),
            event_id
        ],
    )?;
    queue_event(
        tx,
        &event_id,
        &pin,
        Action::Unpin,
        stream_time_ms,
        wall_time,
    )?;
    pin.ended_stream_time_ms = Some(stream_time_ms);
    Ok(pin)
}

fn queue_event(
    tx: &Transaction<'_>,
    event_id: &str,
    pin: &Pin,
    action: Action,
    stream_time_ms: u64,
    wall_time: OffsetDateTime,
) -> Result<(), StoreError> {
    let wall_time = format_time(wall_time);
    let body = serde_json::json!({
        "id": event_id,
        "pin_id": pin.id,
        "session_id": pin.session_id,
        "product_id": pin.product_id,
        "action": match action { Action::Pin => "pin", Action::Unpin => "unpin" },
        "stream_time_ms": stream_time_ms,
        "wall_time": wall_time,
    });
    outbox::enqueue(
        tx,
        event_id,
        RecordKind::PinEvent,
        &pin.product_id,
        &body,
        &wall_time,
    )
}

const SELECT: &str = "SELECT id, product_id, session_id, stream_time_ms, wall_time,
        ended_stream_time_ms FROM pins";

fn find(tx: &Transaction<'_>, pin_id: &str) -> Result<Option<Pin>, StoreError> {
    Ok(tx
        .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row([pin_id], from_row)
        .optional()?)
}

fn open_pin(tx: &Transaction<'_>, session_id: &str) -> Result<Option<Pin>, StoreError> {
    Ok(tx
        .prepare_cached(&format!(
            "{SELECT} WHERE session_id = ?1 AND ended_stream_time_ms IS NULL"
        ))?
        .query_row([session_id], from_row)
        .optional()?)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Pin> {
    let ms = |index: usize| -> rusqlite::Result<u64> {
        let v: i64 = row.get(index)?;
        decoded(
            index,
            u64::try_from(v).map_err(|_| StoreError::decode("pin stream time", &v.to_string())),
        )
    };
    let wall_time: String = row.get(4)?;
    Ok(Pin {
        id: row.get(0)?,
        product_id: row.get(1)?,
        session_id: row.get(2)?,
        stream_time_ms: ms(3)?,
        wall_time: decoded(4, parse_time("pin wall_time", &wall_time))?,
        ended_stream_time_ms: match row.get::<_, Option<i64>>(5)? {
            Some(_) => Some(ms(5)?),
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::testing::store_with_oranges;
    use crate::store::outbox::{envelope, open_items};

    #[test]
    fn a_pin_and_its_end_are_a_chapter_with_two_queued_events() {
        let (_dir, store) = store_with_oranges();
        let pins = Pins::new(store.clone());
        let pin = pins.start_pin("live-1", "orange-box", 12_000).unwrap();
        assert_eq!(pin.ended_stream_time_ms, None);
        let ended = pins.end_pin(&pin.id, 47_500).unwrap();
        assert_eq!(ended.ended_stream_time_ms, Some(47_500));
        assert_eq!(pins.pins("live-1").unwrap(), vec![ended]);

        let items = store.read(open_items).unwrap();
        assert_eq!(items.len(), 2);
        let bodies: Vec<serde_json::Value> = items
            .iter()
            .map(|i| {
                assert_eq!(i.kind, RecordKind::PinEvent);
                let e = store.read(|c| envelope(c, &i.record_id)).unwrap();
                serde_json::from_str(&e.body).unwrap()
            })
            .collect();
        assert_eq!(bodies[0]["action"], "pin");
        assert_eq!(bodies[0]["stream_time_ms"], 12_000);
        assert_eq!(bodies[1]["action"], "unpin");
        assert_eq!(bodies[1]["stream_time_ms"], 47_500);
        for (body, item) in bodies.iter().zip(&items) {
            assert_eq!(body["id"], item.record_id.as_str());
            assert_eq!(body["pin_id"], pin.id.as_str());
            assert_eq!(body["session_id"], "live-1");
            assert_eq!(body["product_id"], "orange-box");
        }
    }

    #[test]
    fn a_new_pin_ends_the_open_one() {
        let (_dir, store) = store_with_oranges();
        let pins = Pins::new(store);
        let first = pins.start_pin("live-1", "orange-box", 1_000).unwrap();
        let second = pins.start_pin("live-1", "orange-box", 5_000).unwrap();
        let other_session = pins.start_pin("live-2", "orange-box", 2_000).unwrap();
        let chapters = pins.pins("live-1").unwrap();
        assert_eq!(chapters.len(), 2);
        assert_eq!(chapters[0].id, first.id);
        assert_eq!(chapters[0].ended_stream_time_ms, Some(5_000));
        assert_eq!(chapters[1], second);
        assert_eq!(pins.pins("live-2").unwrap(), vec![other_session]);
    }

    #[test]
    fn pin_errors_are_typed() {
        let (_dir, store) = store_with_oranges();
        let pins = Pins::new(store);
        assert!(matches!(
            pins.start_pin("live-1", "mango", 0),
            Err(CommerceError::UnknownProduct { .. })
        ));
        assert!(matches!(
            pins.start_pin("", "orange-box", 0),
            Err(CommerceError::Invalid {
                field: "session_id",
                ..
            })
        ));
        assert!(matches!(
            pins.end_pin("nope", 10),
            Err(CommerceError::UnknownPin { .. })
        ));
        let pin = pins.start_pin("live-1", "orange-box", 9_000).unwrap();
        assert!(matches!(
            pins.end_pin(&pin.id, 8_999),
            Err(CommerceError::Invalid {
                field: "stream_time_ms",
                ..
            })
        ));
        pins.end_pin(&pin.id, 9_000).unwrap();
        assert_eq!(
            pins.end_pin(&pin.id, 9_500),
            Err(CommerceError::PinAlreadyEnded {
                pin_id: pin.id.clone(),
                ended_stream_time_ms: 9_000
            })
        );
        assert!(matches!(
            pins.start_pin("live-1", "orange-box", u64::MAX),
            Err(CommerceError::Invalid {
                field: "stream_time_ms",
                ..
            })
        ));
    }
}
