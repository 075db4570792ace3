package inventory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// t0 is the fixed clock of the tests.
var t0 = time.Date(2025, 11, 20, 12, 0, 0, 0, time.UTC)

func testEnv(db *store.DB, now time.Time) pipeline.Env {
	return pipeline.Env{
		ID: "inventory", Pipeline: "refresh-ips", RunID: "run-1",
		Logger: slog.New(slog.DiscardHandler), Store: db,
		Now: func() time.Time { return now },
	}
}

func newTestSink(t testing.TB, db *store.DB, now time.Time, mod func(*Config)) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(cfg)
	}
	s, err := New(testEnv(db, now), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// rec returns a validated record for ip, received a second before t0.
func rec(ip string) *pipeline.Record {
	r := pipeline.NewRecord(ip)
	r.Addr = netip.MustParseAddr(ip)
	r.Received = t0.Add(-time.Second)
	r.Validation = &pipeline.Validation{}
	return r
}

func withSessions(r *pipeline.Record, n int64, first, last time.Time) *pipeline.Record {
	r.Sessions, r.FirstSeen, r.LastSeen = n, first, last
	return r
}

func withASN(r *pipeline.Record, number int64, org, country, registry string) *pipeline.Record {
	r.ASN = &pipeline.ASN{Number: number, Org: org, Country: country, Registry: registry}
	return r
}

func withMaxMind(r *pipeline.Record, country string) *pipeline.Record {
	r.Set(pipeline.SourceMaxMind, map[string]any{"country": country, "asn": 64500})
	return r
}

func write(t *testing.T, s *Sink, b ...*pipeline.Record) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// queryRow runs q, written with $n placeholders (both drivers accept
// them), and scans its one row into dest.
func queryRow(t testing.TB, db *store.DB, q string, args []any, dest ...any) error {
	t.Helper()
	if db.Dialect == store.Postgres {
		return db.Pool.QueryRow(context.Background(), q, args...).Scan(dest...)
	}
	return db.SQL.QueryRow(q, args...).Scan(dest...)
}

// queryAll runs q and calls each with the Scan of every row.
func queryAll(t testing.TB, db *store.DB, q string, each func(scan func(...any) error) error) {
	t.Helper()
	type rowsLike interface {
		Next() bool
		Scan(...any) error
		Err() error
	}
	var rows rowsLike
	if db.Dialect == store.Postgres {
		rs, err := db.Pool.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("query %q: %v", q, err)
		}
		defer rs.Close()
		rows = rs
	} else {
		rs, err := db.SQL.Query(q)
		if err != nil {
			t.Fatalf("query %q: %v", q, err)
		}
		defer rs.Close()
		rows = rs
	}
	for rows.Next() {
		if err := each(rows.Scan); err != nil {
			t.Fatalf("scan %q: %v", q, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
}

func execSQL(t testing.TB, db *store.DB, q string, args ...any) {
	t.Helper()
	var err error
	if db.Dialect == store.Postgres {
		_, err = db.Pool.Exec(context.Background(), q, args...)
	} else {
		_, err = db.SQL.Exec(q, args...)
	}
	if err != nil {
		t.Fatalf("exec %q: %v", q, err)
	}
}

func count(t testing.TB, db *store.DB, table string) int {
	t.Helper()
	var n int
	if err := queryRow(t, db, "SELECT count(*) FROM "+table, nil, &n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// tsCol renders a timestamp column as store.TimeLayout text in both
// dialects, so tests compare timestamps exactly. On SQLite the
// concatenation hides the declared type, which would make the driver parse
// the stored text into a time.Time.
func tsCol(db *store.DB, col string) string {
	if db.Dialect == store.Postgres {
		return fmt.Sprintf(`to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`, col)
	}
	return "(" + col + " || '')"
}

func jsonCol(db *store.DB, col string) string {
	if db.Dialect == store.Postgres {
		return col + "::text"
	}
	return col
}

// ipRow is an ip_inventory row as tests inspect it.
type ipRow struct {
	ASN        sql.NullInt64
	FirstSeen  string
	LastSeen   string
	Sessions   int64
	Enrichment map[string]any
	EnrichedAt sql.NullString
	Verified   sql.NullString
	Created    string
	GeoCountry string
	IsBogon    bool
}

func readIP(t testing.TB, db *store.DB, ip string) (ipRow, bool) {
	t.Helper()
	q := fmt.Sprintf(`SELECT current_asn, %s, %s, session_count, %s, %s, %s, %s, geo_country, is_bogon
FROM ip_inventory WHERE ip_address = $1`,
		tsCol(db, "first_seen"), tsCol(db, "last_seen"), jsonCol(db, "enrichment"),
		tsCol(db, "enrichment_updated_at"), tsCol(db, "asn_last_verified"), tsCol(db, "created_at"))
	var r ipRow
	var doc string
	err := queryRow(t, db, q, []any{ip}, &r.ASN, &r.FirstSeen, &r.LastSeen, &r.Sessions, &doc,
		&r.EnrichedAt, &r.Verified, &r.Created, &r.GeoCountry, &r.IsBogon)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
			return ipRow{}, false
		}
		t.Fatalf("read %s: %v", ip, err)
	}
	if err := json.Unmarshal([]byte(doc), &r.Enrichment); err != nil {
		t.Fatalf("decode enrichment of %s: %v", ip, err)
	}
	return r, true
}

func mustReadIP(t testing.TB, db *store.DB, ip string) ipRow {
	t.Helper()
	r, ok := readIP(t, db, ip)
	if !ok {
		t.Fatalf("no ip_inventory row for %s", ip)
	}
	return r
}

// asnRowState is an asn_inventory row as tests inspect it.
type asnRowState struct {
	Org, Country, Registry sql.NullString
	FirstSeen, LastSeen    string
	UniqueIPs, Sessions    int64
}

// countersWithPending are an ASN's counters (of asn_inventory a) with its
// pending changes added: what they are once folded, and what the sink
// keeps exact at every commit.
const countersWithPending = `a.unique_ip_count + COALESCE((SELECT sum(p.ips) FROM cowrie_enrich_asn_pending p WHERE p.asn_number = a.asn_number), 0),
    a.total_session_count + COALESCE((SELECT sum(p.sessions) FROM cowrie_enrich_asn_pending p WHERE p.asn_number = a.asn_number), 0)`

// readASN reads an ASN row, its counters with their pending changes.
func readASN(t testing.TB, db *store.DB, asn int64) asnRowState {
	t.Helper()
	q := fmt.Sprintf(`SELECT organization_name, organization_country, rir_registry, %s, %s, %s
FROM asn_inventory AS a WHERE asn_number = $1`, tsCol(db, "first_seen"), tsCol(db, "last_seen"), countersWithPending)
	var a asnRowState
	if err := queryRow(t, db, q, []any{asn}, &a.Org, &a.Country, &a.Registry, &a.FirstSeen, &a.LastSeen, &a.UniqueIPs, &a.Sessions); err != nil {
		t.Fatalf("read ASN %d: %v", asn, err)
	}
	return a
}

// dump returns every row of table, ordered by its first column, with the
// columns in skip left out: a comparable picture of the table's contents.
func dump(t testing.TB, db *store.DB, table string, skip ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	collect := func(cols []string, vals []any) {
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			if !slices.Contains(skip, c) {
				m[c] = fmt.Sprint(vals[i])
			}
		}
		out = append(out, m)
	}
	q := "SELECT * FROM " + table + " ORDER BY 1"
	if db.Dialect == store.Postgres {
		rows, err := db.Pool.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		defer rows.Close()
		var cols []string
		for _, f := range rows.FieldDescriptions() {
			cols = append(cols, f.Name)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			collect(cols, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		return out
	}
	rows, err := db.SQL.Query(q)
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		collect(cols, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	return out
}

// upstreamShape turns a migrated database into the shape of an upstream
// cowrieprocessor database where it matters to the sink: INTEGER ASN
// columns (4-byte ASNs above 2^31 overflow), a JSON (not JSONB)
// asn_inventory.enrichment, and the foreign key from session_summaries to
// ip_inventory. With jsonEnrichment, ip_inventory.enrichment is JSON too,
// as on a database whose v16 step did not recreate the table. SQLite has
// no fixed-width integers, so there triggers raise the same error where
// PostgreSQL's INTEGER would overflow.
func upstreamShape(t testing.TB, db *store.DB, jsonEnrichment bool) {
	t.Helper()
	if db.Dialect == store.SQLite {
		for _, tbl := range []struct{ table, col string }{{"asn_inventory", "asn_number"}, {"ip_inventory", "current_asn"}} {
			for _, op := range []string{"INSERT", "UPDATE"} {
				execSQL(t, db, fmt.Sprintf(`CREATE TRIGGER %[1]s_%[3]s_int32 BEFORE %[3]s ON %[1]s
WHEN NEW.%[2]s > 2147483647 BEGIN SELECT RAISE(ABORT, 'integer out of range'); END`, tbl.table, tbl.col, op))
			}
		}
		return
	}
	execSQL(t, db, `ALTER TABLE ip_inventory DROP CONSTRAINT fk_ip_current_asn`)
	execSQL(t, db, `ALTER TABLE ip_inventory ALTER COLUMN current_asn TYPE INTEGER`)
	execSQL(t, db, `ALTER TABLE asn_inventory ALTER COLUMN asn_number TYPE INTEGER,
  ALTER COLUMN total_session_count TYPE INTEGER,
  ALTER COLUMN enrichment DROP DEFAULT,
  ALTER COLUMN enrichment TYPE JSON USING enrichment::json,
  ALTER COLUMN enrichment SET DEFAULT '{}'::json`)
	execSQL(t, db, `ALTER TABLE ip_inventory ADD CONSTRAINT fk_ip_current_asn FOREIGN KEY (current_asn) REFERENCES asn_inventory (asn_number)`)
	execSQL(t, db, `ALTER TABLE session_summaries ADD CONSTRAINT fk_session_source_ip FOREIGN KEY (source_ip) REFERENCES ip_inventory (ip_address)`)
	if jsonEnrichment {
		// Generated columns pin the type of the column they read, so they
		// are dropped and re-added around the change.
		execSQL(t, db, `ALTER TABLE ip_inventory DROP COLUMN geo_country, DROP COLUMN is_scanner, DROP COLUMN is_bogon`)
		execSQL(t, db, `ALTER TABLE ip_inventory ALTER COLUMN enrichment DROP DEFAULT,
  ALTER COLUMN enrichment TYPE JSON USING enrichment::json,
  ALTER COLUMN enrichment SET DEFAULT '{}'::json`)
		execSQL(t, db, `ALTER TABLE ip_inventory
  ADD COLUMN geo_country VARCHAR(2) GENERATED ALWAYS AS (UPPER(COALESCE(enrichment->'maxmind'->>'country', enrichment->'cymru'->>'country', enrichment->'dshield'->'ip'->>'ascountry', 'XX'))) STORED,
  ADD COLUMN is_scanner BOOLEAN GENERATED ALWAYS AS (COALESCE((enrichment->'greynoise'->>'noise')::boolean, false)) STORED,
  ADD COLUMN is_bogon BOOLEAN GENERATED ALWAYS AS (COALESCE((enrichment->'validation'->>'is_bogon')::boolean, false)) STORED`)
	}
}

// shapes are the table shapes the row-semantics tests run on.
var shapes = []struct {
	name  string
	apply func(t testing.TB, db *store.DB)
}{
	{"fresh", func(testing.TB, *store.DB) {}},
	{"upstream", func(t testing.TB, db *store.DB) { upstreamShape(t, db, false) }},
	{"upstream_json", func(t testing.TB, db *store.DB) { upstreamShape(t, db, true) }},
}

// eachShape runs f on every dialect and table shape, each on a fresh
// database. SQLite has one shape for JSON (text), so upstream_json is
// PostgreSQL only.
func eachShape(t *testing.T, f func(t *testing.T, db *store.DB)) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		for i, sh := range shapes {
			if sh.name == "upstream_json" && !isPostgresURL(url) {
				continue
			}
			t.Run(sh.name, func(t *testing.T) {
				u := url
				if i > 0 {
					u = freshURL(t, url)
				}
				db := testdb.Migrated(t, u)
				sh.apply(t, db)
				f(t, db)
			})
		}
	})
}

func isPostgresURL(url string) bool {
	tg, err := store.Parse(url)
	return err == nil && tg.Dialect == store.Postgres
}

// freshURL returns another empty database of the same dialect as url.
func freshURL(t testing.TB, url string) string {
	if isPostgresURL(url) {
		return testdb.PostgresURL(t)
	}
	return testdb.SQLiteURL(t)
}
