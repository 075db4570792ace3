-- Inventory tables in the shape of upstream cowrieprocessor's PostgreSQL
-- schema, for embedded SQLite. JSON is stored as TEXT, timestamps as
-- fixed-width UTC text (store.TimeLayout), arrays as JSON text. The
-- generated columns mirror the PostgreSQL ones with json_extract.

CREATE TABLE IF NOT EXISTS asn_inventory (
    asn_number            INTEGER PRIMARY KEY,
    organization_name     TEXT,
    organization_country  VARCHAR(2),
    rir_registry          VARCHAR(10),
    asn_type              TEXT,
    is_known_hosting      BOOLEAN NOT NULL DEFAULT 0,
    is_known_vpn          BOOLEAN NOT NULL DEFAULT 0,
    first_seen            TIMESTAMP NOT NULL,
    last_seen             TIMESTAMP NOT NULL,
    unique_ip_count       INTEGER NOT NULL DEFAULT 0,
    total_session_count   INTEGER NOT NULL DEFAULT 0,
    enrichment            JSON NOT NULL DEFAULT '{}',
    enrichment_updated_at TIMESTAMP,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS ip_inventory (
    ip_address            VARCHAR(45) PRIMARY KEY,
    current_asn           INTEGER REFERENCES asn_inventory (asn_number),
    asn_last_verified     TIMESTAMP,
    first_seen            TIMESTAMP NOT NULL,
    last_seen             TIMESTAMP NOT NULL,
    session_count         INTEGER NOT NULL DEFAULT 1,
    enrichment            JSON NOT NULL DEFAULT '{}',
    enrichment_updated_at TIMESTAMP,
    enrichment_version    VARCHAR(20) DEFAULT '2.2',
    ip_types              JSON DEFAULT '[]',
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS session_summaries (
    session_id       VARCHAR(64) PRIMARY KEY,
    source_ip        VARCHAR(45),
    first_event_at   TIMESTAMP,
    last_event_at    TIMESTAMP,
    enrichment       JSON,
    enrichment_at    TIMESTAMP,
    snapshot_asn     INTEGER,
    snapshot_country VARCHAR(2),
    snapshot_ip_type TEXT,
    created_at       TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    updated_at       TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);

CREATE TABLE IF NOT EXISTS cowrie_enrich_dead_letters (
    stage      TEXT NOT NULL,
    ip_raw     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    pipeline   TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    first_seen TIMESTAMP NOT NULL,
    last_seen  TIMESTAMP NOT NULL,
    PRIMARY KEY (stage, ip_raw)
);

CREATE TABLE IF NOT EXISTS cowrie_enrich_runs (
    run_id      TEXT PRIMARY KEY,
    pipeline    TEXT NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    state       TEXT NOT NULL,
    committed   INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
