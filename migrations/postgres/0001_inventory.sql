-- Inventory tables in upstream cowrieprocessor's effective PostgreSQL shape,
-- created only where missing: an existing upstream database keeps its
-- tables untouched. Differences on a fresh database, on purpose:
-- asn_number/current_asn are BIGINT (4-byte ASNs above 2^31 exist) and
-- session_summaries.source_ip has no foreign key (it hid new IPs).

CREATE TABLE IF NOT EXISTS asn_inventory (
    asn_number            BIGINT PRIMARY KEY,
    organization_name     TEXT,
    organization_country  VARCHAR(2),
    rir_registry          VARCHAR(10),
    asn_type              TEXT,
    is_known_hosting      BOOLEAN NOT NULL DEFAULT false,
    is_known_vpn          BOOLEAN NOT NULL DEFAULT false,
    first_seen            TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen             TIMESTAMPTZ NOT NULL DEFAULT now(),
    unique_ip_count       INTEGER NOT NULL DEFAULT 0,
    total_session_count   BIGINT NOT NULL DEFAULT 0,
    enrichment            JSONB NOT NULL DEFAULT '{}'::jsonb,
    enrichment_updated_at TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ip_inventory (
    ip_address            VARCHAR(45) PRIMARY KEY,
    current_asn           BIGINT CONSTRAINT fk_ip_current_asn REFERENCES asn_inventory (asn_number),
    asn_last_verified     TIMESTAMPTZ,
    first_seen            TIMESTAMPTZ NOT NULL,
    last_seen             TIMESTAMPTZ NOT NULL,
    session_count         INTEGER NOT NULL DEFAULT 1 CHECK (session_count >= 0),
    enrichment            JSONB NOT NULL DEFAULT '{}'::jsonb,
    enrichment_updated_at TIMESTAMPTZ,
    enrichment_version    VARCHAR(20) DEFAULT '2.2',
    geo_country VARCHAR(2) GENERATED ALWAYS AS (UPPER(COALESCE(
        enrichment->'maxmind'->>'country', enrichment->'cymru'->>'country',
        enrichment->'dshield'->'ip'->>'ascountry', 'XX'))) STORED,
    ip_types    TEXT[] DEFAULT ARRAY[]::text[],
    is_scanner  BOOLEAN GENERATED ALWAYS AS (COALESCE((enrichment->'greynoise'->>'noise')::boolean, false)) STORED,
    is_bogon    BOOLEAN GENERATED ALWAYS AS (COALESCE((enrichment->'validation'->>'is_bogon')::boolean, false)) STORED,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS session_summaries (
    session_id       VARCHAR(64) PRIMARY KEY,
    source_ip        VARCHAR(45),
    first_event_at   TIMESTAMPTZ,
    last_event_at    TIMESTAMPTZ,
    enrichment       JSON,
    enrichment_at    TIMESTAMPTZ,
    snapshot_asn     BIGINT,
    snapshot_country VARCHAR(2),
    snapshot_ip_type TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Records that can never be enriched (garbage addresses, rows the database
-- refused), one row per stage and raw value so reruns do not pile up.
CREATE TABLE IF NOT EXISTS cowrie_enrich_dead_letters (
    stage      TEXT NOT NULL,
    ip_raw     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    pipeline   TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (stage, ip_raw)
);

-- One row per run, for `cowrie-enrich status` and operators' queries.
CREATE TABLE IF NOT EXISTS cowrie_enrich_runs (
    run_id      TEXT PRIMARY KEY,
    pipeline    TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    state       TEXT NOT NULL,
    committed   BIGINT NOT NULL DEFAULT 0,
    rejected    BIGINT NOT NULL DEFAULT 0,
    error       TEXT
);
