-- Indexes the stale-IP source and the sinks rely on. Names match upstream's
-- where upstream has the same index, so nothing is built twice.
CREATE INDEX IF NOT EXISTS idx_ip_enrichment_updated ON ip_inventory (enrichment_updated_at);
CREATE INDEX IF NOT EXISTS idx_ip_current_asn ON ip_inventory (current_asn);
CREATE INDEX IF NOT EXISTS idx_session_source_ip ON session_summaries (source_ip);
