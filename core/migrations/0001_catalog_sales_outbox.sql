-- The local catalog, the sales taken on the phone, and the outbox of records waiting to reach the
-- platform. A sale, its stock change and its outbox row are always written in one transaction.

CREATE TABLE products (
    id          TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 64),
    title       TEXT NOT NULL CHECK (length(title) >= 1),
    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
    currency    TEXT NOT NULL CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
    unit        TEXT NOT NULL,
    stock       INTEGER NOT NULL,
    image_path  TEXT,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE sales (
    id               TEXT PRIMARY KEY NOT NULL,
    product_id       TEXT NOT NULL REFERENCES products(id),
    session_id       TEXT,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
    currency         TEXT NOT NULL,
    taken_at         TEXT NOT NULL,
    allow_oversell   INTEGER NOT NULL CHECK (allow_oversell IN (0, 1)),
    buyer            TEXT,
    stock_after      INTEGER NOT NULL
) STRICT;

CREATE INDEX sales_by_product ON sales (product_id);

-- state: pending -> in_flight -> synced | conflicted (-> discarded); in_flight -> pending on retry.
-- order_key: records with the same key are sent one after the other, in seq order.
CREATE TABLE outbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id        TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    order_key        TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'in_flight', 'synced', 'conflicted', 'discarded')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    conflict_code    TEXT,
    conflict_message TEXT,
    response         TEXT,
    created_at       TEXT NOT NULL,
    settled_at       TEXT
) STRICT;

CREATE INDEX outbox_by_state ON outbox (state, seq);
CREATE INDEX outbox_unsettled_by_key ON outbox (order_key, seq) WHERE state IN ('pending', 'in_flight');
