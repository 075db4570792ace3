-- The stale_ips source groups the sessions of an ordinary source_ip spelling
-- (trimmed, lower case, not IPv4-mapped: the spelling is its address) on
-- the raw column, and works out the address of the others, the odd ones.
-- This partial index, generated from store.OddSpelling (see oddSpellings in
-- migrations.go), finds the odd spellings and their activity without
-- reading all the sessions; on most databases it is empty.
SELECT 1;
