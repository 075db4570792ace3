-- Daily lookup budgets of rate-limited providers (the greynoise stage),
-- shared by every process that works on this database. A budget is
-- reserved in an immediate transaction, so concurrent runs together never
-- spend more than the limit. name identifies the provider and key
-- ("greynoise:<first 12 hex of sha256(key)>"), never the key itself; day is
-- the UTC date as YYYY-MM-DD.
CREATE TABLE IF NOT EXISTS cowrie_enrich_quota (
    name TEXT NOT NULL,
    day  TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, day)
);
