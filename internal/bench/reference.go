package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// referenceColumns are the ip_inventory columns a run writes; the
// generated ones follow from them.
const referenceColumns = `ip_address, current_asn, asn_last_verified, first_seen, last_seen, session_count,
  enrichment, enrichment_updated_at, created_at, updated_at, ip_types`

// referenceUpsert writes every staged row in one statement.
const referenceUpsert = `INSERT INTO ip_inventory (` + referenceColumns + `)
SELECT ` + referenceColumns + ` FROM cowrie_enrich_bench_rows WHERE true
ON CONFLICT (ip_address) DO UPDATE SET
  current_asn = excluded.current_asn, asn_last_verified = excluded.asn_last_verified,
  first_seen = excluded.first_seen, last_seen = excluded.last_seen, session_count = excluded.session_count,
  enrichment = excluded.enrichment, enrichment_updated_at = excluded.enrichment_updated_at,
  updated_at = excluded.updated_at, ip_types = excluded.ip_types`

// Reference measures the database's own limit on the rows a run wrote:
// it sets ip_inventory's rows aside, empties the table, and times one
// set-based INSERT … SELECT … ON CONFLICT DO UPDATE of all of them, with
// the same JSON. The inventory ends as the run left it.
func Reference(ctx context.Context, db *store.DB) (rows int64, elapsed time.Duration, err error) {
	setup := []string{
		"DROP TABLE IF EXISTS cowrie_enrich_bench_rows",
		"CREATE TABLE cowrie_enrich_bench_rows AS SELECT " + referenceColumns + " FROM ip_inventory",
		"DELETE FROM ip_inventory",
	}
	if db.Dialect == store.Postgres {
		setup[2] = "TRUNCATE ip_inventory"
	}
	for _, q := range setup {
		if err := db.Exec(ctx, q); err != nil {
			return 0, 0, fmt.Errorf("stage reference rows: %w", err)
		}
	}
	defer db.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS cowrie_enrich_bench_rows") //nolint:errcheck // a leftover table is dropped by the next bench
	// Read the staged rows once, so the timed statement finds them in
	// memory as a run finds its records.
	var staged int64
	if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM cowrie_enrich_bench_rows", nil, &staged); err != nil {
		return 0, 0, fmt.Errorf("count reference rows: %w", err)
	}
	start := time.Now()
	if db.Dialect == store.Postgres {
		tag, err := db.Pool.Exec(ctx, referenceUpsert)
		if err != nil {
			return 0, 0, fmt.Errorf("reference upsert: %w", err)
		}
		return tag.RowsAffected(), time.Since(start), nil
	}
	res, err := db.SQL.ExecContext(ctx, referenceUpsert)
	if err != nil {
		return 0, 0, fmt.Errorf("reference upsert: %w", err)
	}
	rows, err = res.RowsAffected()
	return rows, time.Since(start), err
}
