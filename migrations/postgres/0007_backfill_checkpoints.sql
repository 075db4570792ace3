-- Checkpoints of resumable jobs (the session snapshot backfill): one row per
-- job key. The backfill updates its row in the same statement as the chunk
-- of sessions it covers, so a crash loses both or neither.
CREATE TABLE IF NOT EXISTS cowrie_enrich_checkpoints (
    job        TEXT PRIMARY KEY,
    last_key   TEXT NOT NULL DEFAULT '',
    scanned    BIGINT NOT NULL DEFAULT 0,
    written    BIGINT NOT NULL DEFAULT 0,
    done       BOOLEAN NOT NULL DEFAULT false,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
