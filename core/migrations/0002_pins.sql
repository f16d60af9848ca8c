-- Product pins on the stream timeline. A pin with a start and an end is a chapter of the replay.
-- Each start and end is also a pin event in the outbox; their event ids are kept here.

CREATE TABLE pins (
    id                   TEXT PRIMARY KEY NOT NULL,
    session_id           TEXT NOT NULL CHECK (length(session_id) >= 1),
    product_id           TEXT NOT NULL REFERENCES products(id),
    stream_time_ms       INTEGER NOT NULL CHECK (stream_time_ms >= 0),
    wall_time            TEXT NOT NULL,
    start_event_id       TEXT NOT NULL UNIQUE,
    ended_stream_time_ms INTEGER CHECK (ended_stream_time_ms >= stream_time_ms),
    ended_wall_time      TEXT,
    end_event_id         TEXT UNIQUE
) STRICT;

CREATE INDEX pins_by_session ON pins (session_id, stream_time_ms);
