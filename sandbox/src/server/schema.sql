-- The sandbox's platform data. Applied once to a new database (PRAGMA user_version 0 -> 2); an
-- older database is brought up to date by db.rs's MIGRATIONS.

CREATE TABLE products (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    price_minor INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    unit        TEXT NOT NULL,
    stock       INTEGER NOT NULL,
    image_url   TEXT,
    updated_at  TEXT NOT NULL
);

CREATE TABLE live_sessions (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    ingest_url TEXT NOT NULL,
    stream_key TEXT NOT NULL UNIQUE,
    state      TEXT NOT NULL CHECK (state IN ('created', 'ended')),
    created_at TEXT NOT NULL,
    ended_at   TEXT
);

CREATE TABLE pin_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    pin_id         TEXT NOT NULL,
    session_id     TEXT NOT NULL REFERENCES live_sessions (id),
    product_id     TEXT NOT NULL,
    action         TEXT NOT NULL CHECK (action IN ('pin', 'unpin')),
    stream_time_ms INTEGER NOT NULL,
    wall_time      TEXT NOT NULL,
    -- The phone's clock minus the sandbox's when the event arrived (ms), from its Date header.
    client_clock_skew_ms INTEGER
);
CREATE INDEX pin_events_by_session ON pin_events (session_id, stream_time_ms);

CREATE TABLE sales (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    product_id       TEXT NOT NULL,
    session_id       TEXT,
    quantity         INTEGER NOT NULL,
    unit_price_minor INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    taken_at         TEXT NOT NULL,
    allow_oversell   INTEGER NOT NULL,
    buyer            TEXT,
    recorded_at      TEXT NOT NULL,
    -- The phone's clock minus the sandbox's when the sale arrived (ms), from its Date header.
    client_clock_skew_ms INTEGER
);
CREATE INDEX sales_by_session ON sales (session_id);

-- One row per processed Idempotency-Key: the canonical request body and the stored response.
CREATE TABLE idempotency_records (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    request    TEXT NOT NULL,
    status     INTEGER NOT NULL,
    response   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE uploads (
    id         TEXT PRIMARY KEY,
    length     INTEGER NOT NULL,
    session_id TEXT,
    filename   TEXT,
    created_at TEXT NOT NULL
);
