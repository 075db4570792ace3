-- SQLite keeps no index on the session address: an index on a custom
-- function would make the table unwritable for other SQLite clients, and
-- embedded databases are small enough to scan.
SELECT 1;
