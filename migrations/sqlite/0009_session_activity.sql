-- The stale_ips source aggregates every session by source_ip (first and
-- last activity, count); this index answers that without reading the
-- session rows and their enrichment JSON.
CREATE INDEX IF NOT EXISTS idx_session_ip_activity ON session_summaries (source_ip, first_event_at, last_event_at);
