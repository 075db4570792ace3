-- The effective PostgreSQL schema of an upstream cowrieprocessor database
-- at schema_version 17 (ORM create_all, then the v16 three-tier step):
-- asn_inventory in ORM shape, ip_inventory in v16 shape with INTEGER
-- current_asn and generated columns, session_summaries with the
-- fk_session_source_ip foreign key and snapshot columns.

CREATE TABLE schema_state (
    key   VARCHAR(128) PRIMARY KEY,
    value VARCHAR(256) NOT NULL
);
INSERT INTO schema_state (key, value) VALUES ('schema_version', '17');

CREATE TABLE asn_inventory (
    asn_number            SERIAL PRIMARY KEY,
    organization_name     TEXT,
    organization_country  VARCHAR(2),
    rir_registry          VARCHAR(10),
    asn_type              TEXT,
    is_known_hosting      BOOLEAN NOT NULL DEFAULT false,
    is_known_vpn          BOOLEAN NOT NULL DEFAULT false,
    first_seen            TIMESTAMPTZ NOT NULL,
    last_seen             TIMESTAMPTZ NOT NULL,
    unique_ip_count       INTEGER NOT NULL DEFAULT 0,
    total_session_count   INTEGER NOT NULL DEFAULT 0,
    enrichment            JSON NOT NULL DEFAULT '{}',
    enrichment_updated_at TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ix_asn_inventory_org_name ON asn_inventory (organization_name);

CREATE TABLE ip_inventory (
    ip_address            VARCHAR(45) PRIMARY KEY,
    current_asn           INTEGER,
    asn_last_verified     TIMESTAMPTZ,
    first_seen            TIMESTAMPTZ NOT NULL,
    last_seen             TIMESTAMPTZ NOT NULL,
    session_count         INTEGER DEFAULT 1 CHECK (session_count >= 0),
    enrichment            JSONB NOT NULL DEFAULT '{}'::jsonb,
    enrichment_updated_at TIMESTAMPTZ,
    enrichment_version    VARCHAR(20) DEFAULT '2.2',
    geo_country VARCHAR(2) GENERATED ALWAYS AS (UPPER(COALESCE(
        enrichment->'maxmind'->>'country', enrichment->'cymru'->>'country',
        enrichment->'dshield'->'ip'->>'ascountry', 'XX'))) STORED,
    ip_types    TEXT[] DEFAULT ARRAY[]::text[],
    is_scanner  BOOLEAN GENERATED ALWAYS AS (COALESCE((enrichment->'greynoise'->>'noise')::boolean, false)) STORED,
    is_bogon    BOOLEAN GENERATED ALWAYS AS (COALESCE((enrichment->'validation'->>'is_bogon')::boolean, false)) STORED,
    created_at  TIMESTAMPTZ DEFAULT NOW() NOT NULL,
    updated_at  TIMESTAMPTZ DEFAULT NOW() NOT NULL
);
CREATE INDEX idx_ip_current_asn ON ip_inventory (current_asn);
CREATE INDEX idx_ip_geo_country ON ip_inventory (geo_country);
CREATE INDEX idx_ip_session_count ON ip_inventory (session_count DESC);
CREATE INDEX idx_ip_enrichment_updated ON ip_inventory (enrichment_updated_at);
CREATE INDEX idx_ip_staleness_active ON ip_inventory (enrichment_updated_at, last_seen)
    WHERE enrichment_updated_at IS NOT NULL;
ALTER TABLE ip_inventory ADD CONSTRAINT fk_ip_current_asn
    FOREIGN KEY (current_asn) REFERENCES asn_inventory (asn_number) NOT VALID;
ALTER TABLE ip_inventory VALIDATE CONSTRAINT fk_ip_current_asn;

CREATE TABLE session_summaries (
    session_id         VARCHAR(64) PRIMARY KEY,
    first_event_at     TIMESTAMPTZ,
    last_event_at      TIMESTAMPTZ,
    event_count        INTEGER NOT NULL DEFAULT 0,
    command_count      INTEGER NOT NULL DEFAULT 0,
    file_downloads     INTEGER NOT NULL DEFAULT 0,
    login_attempts     INTEGER NOT NULL DEFAULT 0,
    vt_flagged         BOOLEAN NOT NULL DEFAULT false,
    dshield_flagged    BOOLEAN NOT NULL DEFAULT false,
    risk_score         INTEGER,
    matcher            VARCHAR(32),
    source_files       JSON,
    enrichment         JSON,
    source_ip          VARCHAR(45),
    snapshot_asn       INTEGER,
    snapshot_country   VARCHAR(2),
    snapshot_ip_type   TEXT,
    enrichment_at      TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT snapshot_country_iso CHECK (snapshot_country IS NULL OR snapshot_country ~ '^[A-Z]{2}$')
);
CREATE INDEX idx_session_source_ip ON session_summaries (source_ip);
CREATE INDEX idx_session_first_event_brin ON session_summaries USING brin (first_event_at);
CREATE INDEX idx_session_last_event_brin ON session_summaries USING brin (last_event_at);
CREATE INDEX idx_session_snapshot_asn ON session_summaries (snapshot_asn);
CREATE INDEX idx_session_snapshot_country ON session_summaries (snapshot_country);
ALTER TABLE session_summaries ADD CONSTRAINT fk_session_source_ip
    FOREIGN KEY (source_ip) REFERENCES ip_inventory (ip_address) NOT VALID;
ALTER TABLE session_summaries VALIDATE CONSTRAINT fk_session_source_ip;

CREATE TABLE enrichment_cache (
    id          SERIAL PRIMARY KEY,
    service     VARCHAR(64) NOT NULL,
    cache_key   VARCHAR(256) NOT NULL,
    cache_value JSON NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_enrichment_cache_service_key UNIQUE (service, cache_key)
);
CREATE INDEX ix_enrichment_cache_expires_at ON enrichment_cache (expires_at);
