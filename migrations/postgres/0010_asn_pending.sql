-- Changes of asn_inventory's counters that inventory writers have
-- committed with their ip_inventory rows but not yet added to the
-- counters. Rewriting every ASN row a batch touches was the costliest part
-- of a refresh after the inventory rows themselves, so a batch appends its
-- changes here, in the same transaction as its rows, and every few batches
-- (and at the end of a run) one statement adds them up into asn_inventory
-- and empties the table. A run killed in between loses nothing: its
-- changes wait here for the next run. No index: the table is only ever
-- read whole, and holds a few batches' worth of rows.
CREATE TABLE IF NOT EXISTS cowrie_enrich_asn_pending (
    asn_number BIGINT NOT NULL,
    ips        BIGINT NOT NULL,
    sessions   BIGINT NOT NULL,
    seen_at    TIMESTAMPTZ NOT NULL
);
