-- An upstream cowrieprocessor database on SQLite: the plain ORM tables
-- (v16 is PostgreSQL-only). JSON is TEXT, timestamps are naive UTC text,
-- there are no generated columns, no CHECKs, and session_summaries has no
-- snapshot columns yet (they came with v16), so migrations must add them.

CREATE TABLE schema_state (
    key   VARCHAR(128) NOT NULL PRIMARY KEY,
    value VARCHAR(256) NOT NULL
);
INSERT INTO schema_state (key, value) VALUES ('schema_version', '17');

CREATE TABLE asn_inventory (
    asn_number            INTEGER NOT NULL PRIMARY KEY,
    organization_name     TEXT,
    organization_country  VARCHAR(2),
    rir_registry          VARCHAR(10),
    asn_type              TEXT,
    is_known_hosting      BOOLEAN NOT NULL DEFAULT 0,
    is_known_vpn          BOOLEAN NOT NULL DEFAULT 0,
    first_seen            DATETIME NOT NULL,
    last_seen             DATETIME NOT NULL,
    unique_ip_count       INTEGER NOT NULL DEFAULT 0,
    total_session_count   INTEGER NOT NULL DEFAULT 0,
    enrichment            JSON NOT NULL DEFAULT '{}',
    enrichment_updated_at DATETIME,
    created_at            DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP),
    updated_at            DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP)
);

CREATE TABLE ip_inventory (
    ip_address            VARCHAR(45) NOT NULL PRIMARY KEY,
    current_asn           INTEGER REFERENCES asn_inventory (asn_number),
    asn_last_verified     DATETIME,
    first_seen            DATETIME NOT NULL,
    last_seen             DATETIME NOT NULL,
    session_count         INTEGER NOT NULL DEFAULT '1',
    enrichment            JSON NOT NULL DEFAULT '{}',
    enrichment_updated_at DATETIME,
    enrichment_version    VARCHAR(10) NOT NULL DEFAULT '2.2',
    created_at            DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP),
    updated_at            DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP)
);
CREATE INDEX ix_ip_inventory_current_asn ON ip_inventory (current_asn);
CREATE INDEX ix_ip_inventory_enrichment_updated ON ip_inventory (enrichment_updated_at);

CREATE TABLE session_summaries (
    session_id      VARCHAR(64) NOT NULL PRIMARY KEY,
    first_event_at  DATETIME,
    last_event_at   DATETIME,
    event_count     INTEGER NOT NULL DEFAULT 0,
    command_count   INTEGER NOT NULL DEFAULT 0,
    file_downloads  INTEGER NOT NULL DEFAULT 0,
    login_attempts  INTEGER NOT NULL DEFAULT 0,
    vt_flagged      BOOLEAN NOT NULL DEFAULT 0,
    dshield_flagged BOOLEAN NOT NULL DEFAULT 0,
    risk_score      INTEGER,
    matcher         VARCHAR(32),
    source_files    JSON,
    enrichment      JSON,
    source_ip       VARCHAR(45) REFERENCES ip_inventory (ip_address),
    created_at      DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP),
    updated_at      DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP)
);
CREATE INDEX ix_session_summaries_source_ip ON session_summaries (source_ip);

CREATE TABLE enrichment_cache (
    id          INTEGER NOT NULL PRIMARY KEY,
    service     VARCHAR(64) NOT NULL,
    cache_key   VARCHAR(256) NOT NULL,
    cache_value TEXT NOT NULL,
    created_at  DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP),
    expires_at  DATETIME NOT NULL,
    CONSTRAINT uq_enrichment_cache_service_key UNIQUE (service, cache_key)
);
