// Package store opens the database a pipeline works on: PostgreSQL through
// pgx, or embedded SQLite through modernc.org/sqlite, chosen by URL.
//
// Both stores hold the same tables (see package migrations); components
// write dialect-specific SQL where the two differ and share everything else.
// Invariants: URLs are only ever shown redacted; SQLite timestamps are
// stored as fixed-width UTC text (see FormatTime) so that comparing them as
// text orders them correctly.
package store
