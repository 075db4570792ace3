-- Nothing on SQLite: its stale_ips query groups every spelling by address
-- and needs no index of odd spellings.
SELECT 1;
