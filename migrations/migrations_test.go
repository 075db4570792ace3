package migrations_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/migrations"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// The columns DESIGN §2 promises on every store, fresh or upstream.
var wantColumns = map[string][]string{
	"session_summaries": {"session_id", "source_ip", "first_event_at", "last_event_at", "enrichment",
		"enrichment_at", "snapshot_asn", "snapshot_country", "snapshot_ip_type", "created_at", "updated_at"},
	"ip_inventory": {"ip_address", "current_asn", "asn_last_verified", "first_seen", "last_seen",
		"session_count", "enrichment", "enrichment_updated_at", "enrichment_version", "geo_country",
		"is_scanner", "is_bogon", "ip_types", "created_at", "updated_at"},
	"asn_inventory": {"asn_number", "organization_name", "organization_country", "rir_registry",
		"first_seen", "last_seen", "unique_ip_count", "total_session_count", "enrichment",
		"enrichment_updated_at", "created_at", "updated_at"},
	"cowrie_enrich_dead_letters": {"stage", "ip_raw", "reason", "pipeline", "run_id", "first_seen", "last_seen"},
	"cowrie_enrich_runs":         {"run_id", "pipeline", "started_at", "finished_at", "state", "committed", "rejected", "error"},
}

func TestApplyFreshIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := testdb.Open(t, url)
		applied, err := migrations.Apply(ctx, db)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if !slices.Equal(applied, migrations.Names()) {
			t.Errorf("applied %v, want every step: %v", applied, migrations.Names())
		}
		assertColumns(t, db, wantColumns)

		const doc = `{"maxmind":{"country":"gb"},"greynoise":{"noise":true},"validation":{"is_bogon":true}}`
		now := time.Date(2025, 11, 6, 10, 0, 0, 123456000, time.UTC)
		var country string
		var scanner, bogon bool
		switch db.Dialect {
		case store.Postgres:
			mustExec(t, db, `INSERT INTO ip_inventory (ip_address, first_seen, last_seen, enrichment)
				VALUES ('192.0.2.1', $1, $1, $2::jsonb)`, now, doc)
			err = db.Pool.QueryRow(ctx, `SELECT geo_country, is_scanner, is_bogon FROM ip_inventory`).Scan(&country, &scanner, &bogon)
		default:
			ts := store.FormatTime(now)
			mustExec(t, db, `INSERT INTO ip_inventory (ip_address, first_seen, last_seen, enrichment, created_at, updated_at)
				VALUES ('192.0.2.1', ?, ?, ?, ?, ?)`, ts, ts, doc, ts, ts)
			err = db.SQL.QueryRowContext(ctx, `SELECT geo_country, is_scanner, is_bogon FROM ip_inventory`).Scan(&country, &scanner, &bogon)
		}
		if err != nil {
			t.Fatalf("read generated columns: %v", err)
		}
		if country != "GB" || !scanner || !bogon {
			t.Errorf("generated columns = (%q, %v, %v), want (GB, true, true)", country, scanner, bogon)
		}
	})
}

func TestApplyTwiceIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Open(t, url)
		if _, err := migrations.Apply(context.Background(), db); err != nil {
			t.Fatalf("first Apply: %v", err)
		}
		applied, err := migrations.Apply(context.Background(), db)
		if err != nil {
			t.Fatalf("second Apply: %v", err)
		}
		if len(applied) != 0 {
			t.Errorf("second Apply applied %v, want nothing", applied)
		}
	})
}

// upstreamRows inserts a small upstream dataset: an ASN, an IP pointing at
// it, a session whose IP is in the inventory and one whose address is only
// in its enrichment JSON (source_ip NULL, as upstream's loader leaves it).
func upstreamRows(t *testing.T, db *store.DB) {
	t.Helper()
	ts := "2025-11-06 10:00:00.123456"
	ipDoc := `{"maxmind":{"country":"NL","asn":1136}}`
	sessDoc := `{"session":{"203.0.113.9":{"dshield":{"ip":{"number":"203.0.113.9"}}}}}`
	if db.Dialect == store.Postgres {
		mustExec(t, db, `INSERT INTO asn_inventory (asn_number, organization_name, first_seen, last_seen) VALUES (1136, 'KPN', $1, $1)`, ts)
		mustExec(t, db, `INSERT INTO ip_inventory (ip_address, current_asn, first_seen, last_seen, session_count, enrichment)
			VALUES ('198.51.100.7', 1136, $1, $1, 1, $2::jsonb)`, ts, ipDoc)
		mustExec(t, db, `INSERT INTO session_summaries (session_id, first_event_at, last_event_at, event_count, risk_score, source_ip, enrichment, snapshot_country)
			VALUES ('s1', $1, $1, 12, 40, '198.51.100.7', NULL, 'NL'), ('s2', $1, $1, 3, NULL, NULL, $2::json, NULL)`, ts, sessDoc)
		mustExec(t, db, `INSERT INTO enrichment_cache (service, cache_key, cache_value, expires_at) VALUES ('dshield', '198.51.100.7', '{}', $1)`, ts)
		return
	}
	mustExec(t, db, `INSERT INTO asn_inventory (asn_number, organization_name, first_seen, last_seen) VALUES (1136, 'KPN', ?, ?)`, ts, ts)
	mustExec(t, db, `INSERT INTO ip_inventory (ip_address, current_asn, first_seen, last_seen, session_count, enrichment)
		VALUES ('198.51.100.7', 1136, ?, ?, 1, ?)`, ts, ts, ipDoc)
	mustExec(t, db, `INSERT INTO session_summaries (session_id, first_event_at, last_event_at, event_count, risk_score, source_ip, enrichment)
		VALUES ('s1', ?, ?, 12, 40, '198.51.100.7', NULL), ('s2', ?, ?, 3, NULL, NULL, ?)`, ts, ts, ts, ts, sessDoc)
	mustExec(t, db, `INSERT INTO enrichment_cache (service, cache_key, cache_value, expires_at) VALUES ('dshield', '198.51.100.7', '{}', ?)`, ts)
}

// upstreamState is what Apply must leave untouched on an upstream database.
type upstreamState struct {
	counts  map[string]int64
	samples map[string]string
	types   map[string]string
}

// The upstream columns sampled per table (all exist before Apply).
var upstreamSamples = []struct{ table, key, value, cols string }{
	{"asn_inventory", "asn_number", "1136", "asn_number, organization_name, first_seen, total_session_count, enrichment"},
	{"ip_inventory", "ip_address", "198.51.100.7", "ip_address, current_asn, first_seen, last_seen, session_count, enrichment, enrichment_updated_at"},
	{"session_summaries", "session_id", "s2", "session_id, first_event_at, event_count, risk_score, source_ip, enrichment"},
	{"enrichment_cache", "service", "dshield", "service, cache_key, cache_value, expires_at"},
	{"schema_state", "key", "schema_version", "key, value"},
}

func readUpstream(t *testing.T, db *store.DB) upstreamState {
	t.Helper()
	ctx := context.Background()
	s := upstreamState{counts: map[string]int64{}, samples: map[string]string{}, types: map[string]string{}}
	for _, u := range upstreamSamples {
		var n int64
		var sample string
		var err error
		if db.Dialect == store.Postgres {
			if err = db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+u.table).Scan(&n); err == nil {
				err = db.Pool.QueryRow(ctx, "SELECT row_to_json(x)::text FROM (SELECT "+u.cols+" FROM "+u.table+" WHERE "+u.key+"::text = $1) AS x", u.value).Scan(&sample)
			}
		} else {
			if err = db.SQL.QueryRowContext(ctx, "SELECT count(*) FROM "+u.table).Scan(&n); err == nil {
				err = db.SQL.QueryRowContext(ctx, "SELECT json_array("+u.cols+") FROM "+u.table+" WHERE "+u.key+" = ?", u.value).Scan(&sample)
			}
		}
		if err != nil {
			t.Fatalf("read %s: %v", u.table, err)
		}
		s.counts[u.table], s.samples[u.table] = n, sample
	}
	for table, cols := range map[string][]string{
		"ip_inventory":      {"current_asn", "enrichment", "ip_types"},
		"asn_inventory":     {"asn_number", "enrichment", "total_session_count"},
		"session_summaries": {"source_ip", "enrichment", "snapshot_asn"},
	} {
		for _, c := range cols {
			s.types[table+"."+c] = columnType(t, db, table, c)
		}
	}
	return s
}

func TestApplyUpstreamIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := testdb.Open(t, url)
		fixture := "upstream_sqlite.sql"
		if db.Dialect == store.Postgres {
			fixture = "upstream_postgres.sql"
		}
		body, err := os.ReadFile(filepath.Join("testdata", fixture))
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, string(body))
		upstreamRows(t, db)
		before := readUpstream(t, db)

		if _, err := migrations.Apply(ctx, db); err != nil {
			t.Fatalf("Apply on upstream database: %v", err)
		}
		after := readUpstream(t, db)
		for table, n := range before.counts {
			if after.counts[table] != n {
				t.Errorf("%s: %d rows after Apply, want %d", table, after.counts[table], n)
			}
			if after.samples[table] != before.samples[table] {
				t.Errorf("%s sample row changed:\n before %s\n after  %s", table, before.samples[table], after.samples[table])
			}
		}
		for col, typ := range before.types {
			if typ != "" && after.types[col] != typ {
				t.Errorf("%s: type %q after Apply, want upstream's %q", col, after.types[col], typ)
			}
		}
		if db.Dialect == store.Postgres {
			for col, want := range map[string]string{"ip_inventory.current_asn": "integer", "asn_inventory.asn_number": "integer", "session_summaries.enrichment": "json"} {
				if after.types[col] != want {
					t.Errorf("%s: type %q, want upstream's %q", col, after.types[col], want)
				}
			}
			var n int
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint
				WHERE connamespace = current_schema()::regnamespace
				  AND conname IN ('fk_session_source_ip', 'fk_ip_current_asn', 'snapshot_country_iso')`).Scan(&n); err != nil || n != 3 {
				t.Errorf("upstream constraints after Apply: %d of 3 (%v)", n, err)
			}
		}
		assertColumns(t, db, wantColumns)
		applied, err := migrations.Apply(ctx, db)
		if err != nil || len(applied) != 0 {
			t.Errorf("second Apply on upstream database = %v, %v; want nothing applied", applied, err)
		}
	})
}

func TestApplyConcurrentIntegration(t *testing.T) {
	url := testdb.PostgresURL(t)
	dbs := []*store.DB{testdb.Open(t, url), testdb.Open(t, url)}
	var wg sync.WaitGroup
	errs := make([]error, len(dbs))
	applied := make([][]string, len(dbs))
	for i, db := range dbs {
		wg.Go(func() { applied[i], errs[i] = migrations.Apply(context.Background(), db) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Apply %d: %v", i, err)
		}
	}
	if n := len(applied[0]) + len(applied[1]); n != len(migrations.Names()) {
		t.Errorf("steps applied in total = %d (%v), want %d, each once", n, applied, len(migrations.Names()))
	}
	assertColumns(t, dbs[0], wantColumns)
}

func assertColumns(t *testing.T, db *store.DB, want map[string][]string) {
	t.Helper()
	for table, cols := range want {
		for _, c := range cols {
			if columnType(t, db, table, c) == "" {
				t.Errorf("column %s.%s missing", table, c)
			}
		}
	}
}

// columnType returns the declared type of table.column, "" when missing.
func columnType(t *testing.T, db *store.DB, table, column string) string {
	t.Helper()
	ctx := context.Background()
	var typ string
	var err error
	if db.Dialect == store.Postgres {
		err = db.Pool.QueryRow(ctx, `SELECT COALESCE(max(data_type), '') FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`, table, column).Scan(&typ)
	} else {
		err = db.SQL.QueryRowContext(ctx, `SELECT COALESCE(max(lower(type)), '') FROM pragma_table_xinfo(?) WHERE name = ?`, table, column).Scan(&typ)
	}
	if err != nil {
		t.Fatalf("column type %s.%s: %v", table, column, err)
	}
	return typ
}

func mustExec(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	var err error
	if db.Dialect == store.Postgres {
		_, err = db.Pool.Exec(context.Background(), q, args...)
	} else {
		_, err = db.SQL.ExecContext(context.Background(), q, args...)
	}
	if err != nil {
		t.Fatalf("exec %.60q: %v", q, err)
	}
}
