// Package migrations creates and upgrades the cowrie-enrich schema on
// PostgreSQL and SQLite from SQL files embedded in the binary.
//
// Invariants: every step is idempotent and only adds what is missing
// (tables, columns, indexes); upstream cowrieprocessor tables are never
// dropped or rewritten, so an existing upstream database works in place.
// Applied steps are recorded in cowrie_enrich_schema_migrations; on
// PostgreSQL, concurrent runs are serialised with an advisory lock.
package migrations
