-- Nothing on SQLite: migration 8 replaces a PostgreSQL function.
SELECT 1;
