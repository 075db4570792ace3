-- The stale_ips source probes ip_inventory once per session address and
-- reads only enrichment_updated_at; this index answers the probe without
-- reading the row and its enrichment JSON.
CREATE INDEX IF NOT EXISTS idx_ip_stale_lookup ON ip_inventory (ip_address, enrichment_updated_at);
