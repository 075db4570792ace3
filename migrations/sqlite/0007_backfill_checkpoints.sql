-- Checkpoints of resumable jobs (the session snapshot backfill): one row per
-- job key, updated in the same transaction as the chunk of sessions it covers.
CREATE TABLE IF NOT EXISTS cowrie_enrich_checkpoints (
    job        TEXT PRIMARY KEY,
    last_key   TEXT NOT NULL DEFAULT '',
    scanned    INTEGER NOT NULL DEFAULT 0,
    written    INTEGER NOT NULL DEFAULT 0,
    done       BOOLEAN NOT NULL DEFAULT 0,
    started_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
