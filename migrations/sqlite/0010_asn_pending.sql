-- Pending changes of asn_inventory's counters: see the PostgreSQL
-- migration. SQLite's single writer applies counter changes in place, so
-- only PostgreSQL writers use the table; it exists here too so that both
-- dialects have the same schema.
CREATE TABLE IF NOT EXISTS cowrie_enrich_asn_pending (
    asn_number INTEGER NOT NULL,
    ips        INTEGER NOT NULL,
    sessions   INTEGER NOT NULL,
    seen_at    TIMESTAMP NOT NULL
);
