-- enrichment_cache in upstream cowrieprocessor's shape (its ORM on SQLite:
-- TEXT cache_value, naive UTC DATETIME). The cache stage keeps "not found"
-- answers and back-filled file answers here, under service = maxmind, cymru
-- or greynoise. An upstream database already has the table and keeps it;
-- the indexes carry upstream's ORM names, so on such a database they are
-- either already there or only added.
CREATE TABLE IF NOT EXISTS enrichment_cache (
    id          INTEGER NOT NULL PRIMARY KEY,
    service     VARCHAR(64) NOT NULL,
    cache_key   VARCHAR(256) NOT NULL,
    cache_value TEXT NOT NULL,
    created_at  DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP),
    expires_at  DATETIME NOT NULL,
    CONSTRAINT uq_enrichment_cache_service_key UNIQUE (service, cache_key)
);
CREATE INDEX IF NOT EXISTS ix_enrichment_cache_service_key ON enrichment_cache (service, cache_key);
CREATE INDEX IF NOT EXISTS ix_enrichment_cache_expires_at ON enrichment_cache (expires_at);
CREATE INDEX IF NOT EXISTS ix_enrichment_cache_created_at ON enrichment_cache (created_at);
