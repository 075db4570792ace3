-- The stale_ips source probes ip_inventory once per session address and
-- reads only enrichment_updated_at. Covering that column lets the probe be
-- an index-only scan instead of a heap fetch of a row whose JSONB
-- enrichment can be kilobytes (1M sessions / 200K addresses: 3.9 s -> 3.4 s).
CREATE INDEX IF NOT EXISTS idx_ip_stale_lookup ON ip_inventory (ip_address) INCLUDE (enrichment_updated_at);
