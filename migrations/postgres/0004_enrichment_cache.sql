-- enrichment_cache in upstream cowrieprocessor's shape (its v15 DDL). The
-- cache stage keeps "not found" answers and back-filled file answers here,
-- under service = maxmind, cymru or greynoise. An upstream database already
-- has the table (with JSON or JSONB cache_value); it is left as it is.
DO $$
BEGIN
    IF to_regclass('enrichment_cache') IS NULL THEN
        CREATE TABLE enrichment_cache (
            id          SERIAL PRIMARY KEY,
            service     VARCHAR(64) NOT NULL,
            cache_key   VARCHAR(256) NOT NULL,
            cache_value JSONB NOT NULL,
            created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            expires_at  TIMESTAMPTZ NOT NULL,
            CONSTRAINT uq_enrichment_cache_service_key UNIQUE (service, cache_key)
        );
        CREATE INDEX ix_enrichment_cache_service_key ON enrichment_cache (service, cache_key);
        CREATE INDEX ix_enrichment_cache_expires_at ON enrichment_cache (expires_at);
        CREATE INDEX ix_enrichment_cache_created_at ON enrichment_cache (created_at);
    END IF;
END
$$;
