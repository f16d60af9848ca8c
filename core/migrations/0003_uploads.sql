-- Resumable replay uploads (tus 1.0): the server's upload URL is kept so that a restarted app
-- asks the server for its offset and goes on from there.

CREATE TABLE uploads (
    id           TEXT PRIMARY KEY NOT NULL,
    path         TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    upload_url   TEXT,
    created_at   TEXT NOT NULL,
    completed_at TEXT,
    UNIQUE (path, session_id, size)
) STRICT;
