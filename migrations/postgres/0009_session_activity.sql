-- The stale_ips source aggregates every session by source_ip (first and
-- last activity, count). Reading the spellings in order from this index
-- lets PostgreSQL aggregate them without hashing 10M rows and without
-- reading the session rows, whose enrichment JSON makes up most of the
-- table (10M sessions: the aggregation 8.6 s -> 4.7 s).
CREATE INDEX IF NOT EXISTS idx_session_ip_activity ON session_summaries (source_ip) INCLUDE (first_event_at, last_event_at);
