package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/store"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// advisoryLockKey serialises migrations across processes on PostgreSQL
// ("cowrie-enrich" folded into an int64).
const advisoryLockKey int64 = 0x636f77726965

// step is one schema version: an SQL file per dialect, then the columns
// that must exist afterwards (added where an older or upstream table lacks
// them).
type step struct {
	version int
	name    string
	file    string // file name below postgres/ and sqlite/
	// generated, when set, adds SQL built from Go values (shared SQL
	// expressions) after the file's statements.
	generated func(store.Dialect) string
	columns   []column
}

// column is a column that upstream databases may lack.
type column struct {
	table, name string
	postgres    string // type and constraints for ALTER TABLE ADD COLUMN
	sqlite      string
}

const (
	pgGeoCountry = `VARCHAR(2) GENERATED ALWAYS AS (UPPER(COALESCE(enrichment->'maxmind'->>'country', enrichment->'cymru'->>'country', enrichment->'dshield'->'ip'->>'ascountry', 'XX'))) STORED`
	sqGeoCountry = `VARCHAR(2) GENERATED ALWAYS AS (UPPER(COALESCE(json_extract(enrichment, '$.maxmind.country'), json_extract(enrichment, '$.cymru.country'), json_extract(enrichment, '$.dshield.ip.ascountry'), 'XX'))) VIRTUAL`
)

var steps = []step{
	{version: 1, name: "inventory tables", file: "0001_inventory.sql", columns: []column{
		{"session_summaries", "source_ip", "VARCHAR(45)", "VARCHAR(45)"},
		{"session_summaries", "first_event_at", "TIMESTAMPTZ", "TIMESTAMP"},
		{"session_summaries", "last_event_at", "TIMESTAMPTZ", "TIMESTAMP"},
		{"session_summaries", "enrichment", "JSON", "JSON"},
		{"session_summaries", "enrichment_at", "TIMESTAMPTZ", "TIMESTAMP"},
		{"session_summaries", "snapshot_asn", "BIGINT", "INTEGER"},
		{"session_summaries", "snapshot_country", "VARCHAR(2)", "VARCHAR(2)"},
		{"session_summaries", "snapshot_ip_type", "TEXT", "TEXT"},
		{"ip_inventory", "asn_last_verified", "TIMESTAMPTZ", "TIMESTAMP"},
		{"ip_inventory", "enrichment_updated_at", "TIMESTAMPTZ", "TIMESTAMP"},
		{"ip_inventory", "enrichment_version", "VARCHAR(20) DEFAULT '2.2'", "VARCHAR(20) DEFAULT '2.2'"},
		{"ip_inventory", "ip_types", "TEXT[] DEFAULT ARRAY[]::text[]", "JSON DEFAULT '[]'"},
		{"ip_inventory", "geo_country", pgGeoCountry, sqGeoCountry},
		{"ip_inventory", "is_scanner",
			`BOOLEAN GENERATED ALWAYS AS (COALESCE((enrichment->'greynoise'->>'noise')::boolean, false)) STORED`,
			`BOOLEAN GENERATED ALWAYS AS (COALESCE(json_extract(enrichment, '$.greynoise.noise'), 0)) VIRTUAL`},
		{"ip_inventory", "is_bogon",
			`BOOLEAN GENERATED ALWAYS AS (COALESCE((enrichment->'validation'->>'is_bogon')::boolean, false)) STORED`,
			`BOOLEAN GENERATED ALWAYS AS (COALESCE(json_extract(enrichment, '$.validation.is_bogon'), 0)) VIRTUAL`},
		{"asn_inventory", "organization_name", "TEXT", "TEXT"},
		{"asn_inventory", "organization_country", "VARCHAR(2)", "VARCHAR(2)"},
		{"asn_inventory", "rir_registry", "VARCHAR(10)", "VARCHAR(10)"},
		{"asn_inventory", "unique_ip_count", "INTEGER NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"},
		{"asn_inventory", "total_session_count", "BIGINT NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"},
		{"asn_inventory", "enrichment", "JSONB NOT NULL DEFAULT '{}'::jsonb", "JSON NOT NULL DEFAULT '{}'"},
		{"asn_inventory", "enrichment_updated_at", "TIMESTAMPTZ", "TIMESTAMP"},
	}},
	{version: 2, name: "indexes", file: "0002_indexes.sql"},
	{version: 3, name: "stale lookup index", file: "0003_stale_lookup.sql"},
	{version: 4, name: "enrichment cache", file: "0004_enrichment_cache.sql"},
	{version: 5, name: "provider quota", file: "0005_quota.sql"},
	{version: 6, name: "session address index", file: "0006_session_address.sql", generated: sessionAddressFunction},
	{version: 7, name: "backfill checkpoints", file: "0007_backfill_checkpoints.sql"},
	{version: 8, name: "session address evaluated once", file: "0008_session_address_once.sql", generated: sessionAddressOnce},
	{version: 9, name: "session activity index", file: "0009_session_activity.sql"},
	{version: 10, name: "pending ASN counter changes", file: "0010_asn_pending.sql"},
	{version: 11, name: "odd source_ip spellings index", file: "0011_odd_spellings.sql", generated: oddSpellings},
}

// Latest is the newest schema version this binary knows.
func Latest() int {
	v := 0
	for _, s := range steps {
		v = max(v, s.version)
	}
	return v
}

// Names lists every step's name in the order Apply applies them.
func Names() []string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.name
	}
	return names
}

// sessionAddressFunction defines, on PostgreSQL, the SQL function behind
// idx_session_missing_ip: store.SessionIP written once, so the inventory
// sink finds the sessions whose source_ip is still NULL through an index
// instead of reading every such session per batch. Parameters are
// qualified with the function's name, which PostgreSQL allows.
func sessionAddressFunction(d store.Dialect) string {
	if d != store.Postgres {
		return ""
	}
	return sessionAddressDefinition("SELECT "+store.SessionIP(store.Postgres, "cowrie_enrich_session_ip")) + `
CREATE INDEX IF NOT EXISTS idx_session_missing_ip ON session_summaries (cowrie_enrich_session_ip(source_ip, enrichment::json)) WHERE source_ip IS NULL;`
}

// sessionAddressOnce replaces, on PostgreSQL, the body of migration 6's
// function with store.SessionIPQuery, which gives the same address for
// every row (the index stays valid) and parses the JSON half as often.
func sessionAddressOnce(d store.Dialect) string {
	if d != store.Postgres {
		return ""
	}
	return sessionAddressDefinition(store.SessionIPQuery("cowrie_enrich_session_ip"))
}

// oddSpellings creates, on PostgreSQL, idx_session_odd_ip: the sessions
// whose source_ip is an odd spelling (store.OddSpelling) with their
// activity, so that the stale_ips source reads them index-only.
func oddSpellings(d store.Dialect) string {
	if d != store.Postgres {
		return ""
	}
	return `CREATE INDEX IF NOT EXISTS idx_session_odd_ip ON session_summaries (source_ip) INCLUDE (first_event_at, last_event_at) WHERE ` + store.OddSpelling("source_ip") + `;`
}

// sessionAddressDefinition defines cowrie_enrich_session_ip with body, a
// query; migrations 6 and 8 differ only in the body.
func sessionAddressDefinition(body string) string {
	return `CREATE OR REPLACE FUNCTION cowrie_enrich_session_ip(source_ip text, enrichment json) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$ ` + body + ` $fn$;`
}

// Apply brings db to the latest schema and returns the names of the steps
// it applied (none when the schema is current).
func Apply(ctx context.Context, db *store.DB) ([]string, error) {
	switch db.Dialect {
	case store.Postgres:
		return applyPostgres(ctx, db)
	case store.SQLite:
		return applySQLite(ctx, db)
	}
	return nil, fmt.Errorf("migrate: unsupported dialect %q", db.Dialect)
}

func load(dialect store.Dialect, file string) (string, error) {
	b, err := files.ReadFile(string(dialect) + "/" + file)
	if err != nil {
		return "", fmt.Errorf("read migration %s/%s: %w", dialect, file, err)
	}
	return string(b), nil
}

func applyPostgres(ctx context.Context, db *store.DB) ([]string, error) {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", advisoryLockKey); err != nil {
		return nil, fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	// The unlock must run even when ctx is cancelled, or the session would
	// keep the lock until the pooled connection closes.
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", advisoryLockKey) //nolint:errcheck

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS cowrie_enrich_schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrate: create version table: %w", err)
	}
	done := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM cowrie_enrich_schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: read versions: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("migrate: read versions: %w", err)
	}
	for _, v := range vs {
		done[v] = true
	}
	var applied []string
	for _, s := range steps {
		if done[s.version] {
			continue
		}
		body, err := load(store.Postgres, s.file)
		if err != nil {
			return applied, err
		}
		if s.generated != nil {
			body += "\n" + s.generated(store.Postgres)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, body); err != nil {
				return err
			}
			for _, c := range s.columns {
				q := fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", c.table, c.name, c.postgres)
				if _, err := tx.Exec(ctx, q); err != nil {
					return fmt.Errorf("add %s.%s: %w", c.table, c.name, err)
				}
			}
			_, err := tx.Exec(ctx, "INSERT INTO cowrie_enrich_schema_migrations (version, name) VALUES ($1, $2)", s.version, s.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate: step %d (%s): %w", s.version, s.name, err)
		}
		applied = append(applied, s.name)
	}
	return applied, nil
}

func applySQLite(ctx context.Context, db *store.DB) ([]string, error) {
	if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS cowrie_enrich_schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrate: create version table: %w", err)
	}
	var applied []string
	for _, s := range steps {
		body, err := load(store.SQLite, s.file)
		if err != nil {
			return applied, err
		}
		if s.generated != nil {
			body += "\n" + s.generated(store.SQLite)
		}
		// BEGIN IMMEDIATE (the connection's _txlock) serialises concurrent
		// migrations; the version check happens inside the transaction.
		ok, err := applySQLiteStep(ctx, db.SQL, s, body)
		if err != nil {
			return applied, fmt.Errorf("migrate: step %d (%s): %w", s.version, s.name, err)
		}
		if ok {
			applied = append(applied, s.name)
		}
	}
	return applied, nil
}

func applySQLiteStep(ctx context.Context, sdb *sql.DB, s step, body string) (bool, error) {
	tx, err := sdb.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM cowrie_enrich_schema_migrations WHERE version = ?", s.version).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return false, err
	}
	for _, c := range s.columns {
		exists, err := sqliteHasColumn(ctx, tx, c.table, c.name)
		if err != nil {
			return false, err
		}
		if exists {
			continue
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", c.table, c.name, c.sqlite)); err != nil {
			return false, fmt.Errorf("add %s.%s: %w", c.table, c.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO cowrie_enrich_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		s.version, s.name, store.FormatTime(time.Now())); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

func sqliteHasColumn(ctx context.Context, tx *sql.Tx, table, name string) (bool, error) {
	// table_xinfo, unlike table_info, lists generated columns too.
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM pragma_table_xinfo(?) WHERE lower(name) = ?", table, strings.ToLower(name)).Scan(&n)
	return n > 0, err
}
