package snapshots_test

import (
	"context"
	"database/sql"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/migrations"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/snapshots"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

var (
	now      = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	enriched = time.Date(2025, 5, 1, 8, 30, 0, 123456000, time.UTC)
)

// fixture writes rows in either dialect with ? placeholders.
type fixture struct {
	t  testing.TB
	db *store.DB
}

func (f fixture) exec(q string, args ...any) {
	f.t.Helper()
	if err := f.db.Exec(context.Background(), q, args...); err != nil {
		f.t.Fatalf("exec %.80q: %v", q, err)
	}
}

// upstream opens url, loads upstream cowrieprocessor's schema and migrates.
func upstream(t testing.TB, url string) fixture {
	t.Helper()
	db := testdb.Open(t, url)
	name := "upstream_sqlite.sql"
	if db.Dialect == store.Postgres {
		name = "upstream_postgres.sql"
	}
	body, err := os.ReadFile(filepath.Join("..", "..", "migrations", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{t, db}
	if db.Dialect == store.Postgres {
		if _, err := db.Pool.Exec(context.Background(), string(body)); err != nil {
			t.Fatalf("load upstream schema: %v", err)
		}
	} else if _, err := db.SQL.Exec(string(body)); err != nil {
		t.Fatalf("load upstream schema: %v", err)
	}
	if _, err := migrations.Apply(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return f
}

// inventory inserts an enriched ip_inventory row (asn 0: none).
func (f fixture) inventory(ip string, asn int64, doc string, at time.Time) {
	f.t.Helper()
	var a, u any
	if asn > 0 {
		f.exec(`INSERT INTO asn_inventory (asn_number, first_seen, last_seen, enrichment, created_at, updated_at)
			VALUES (?, ?, ?, '{}', ?, ?) ON CONFLICT DO NOTHING`, asn, now, now, now, now)
		a = asn
	}
	if !at.IsZero() {
		u = at
	}
	f.exec(`INSERT INTO ip_inventory (ip_address, current_asn, first_seen, last_seen, session_count, enrichment, enrichment_updated_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)`, ip, a, now, now, doc, u, now, now)
}

// session inserts a session; ip "" leaves source_ip NULL, doc "" leaves
// enrichment NULL.
func (f fixture) session(id, ip string, first time.Time, doc string) {
	f.t.Helper()
	f.exec(`INSERT INTO session_summaries (session_id, source_ip, first_event_at, last_event_at, enrichment, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, id, nullable(ip), first, first, nullable(doc), now, now)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// snap is a session's snapshot columns as text ("" for NULL).
type snap struct {
	ip, asn, country, ipType string
	at                       bool
}

func (f fixture) snapshot(id string) snap {
	f.t.Helper()
	var ip, asn, country, ipType, at sql.NullString
	err := f.db.QueryRow(context.Background(), `SELECT source_ip, CAST(snapshot_asn AS TEXT), snapshot_country, snapshot_ip_type, CAST(enrichment_at AS TEXT)
		FROM session_summaries WHERE session_id = ?`, []any{id}, &ip, &asn, &country, &ipType, &at)
	if err != nil {
		f.t.Fatalf("read session %s: %v", id, err)
	}
	return snap{ip.String, asn.String, country.String, ipType.String, at.Valid}
}

func backfill(t testing.TB, db *store.DB, opts snapshots.Options) (snapshots.Result, error) {
	t.Helper()
	b, err := snapshots.NewBackfill(db, opts, nil, nil)
	if err != nil {
		t.Fatalf("NewBackfill: %v", err)
	}
	return b.Run(context.Background())
}

// TestBackfillSnapshotsIntegration covers the snapshot rules on an
// upstream-shaped database: address from JSON for a NULL source_ip, XX to
// NULL, first writer wins, bogons classified without an ASN, sessions of
// unknown or never-enriched addresses left alone.
func TestBackfillSnapshotsIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := upstream(t, url)
		day := now.Add(-24 * time.Hour)
		f.inventory("1.2.3.4", 64500, `{"maxmind":{"country":"DE"},"ip_classification":{"ip_type":"cloud"}}`, enriched)
		f.inventory("5.6.7.8", 64501, `{}`, enriched) // geo_country XX
		f.inventory("10.0.0.1", 0, `{"validation":{"is_bogon":true,"reason":"private"}}`, enriched)
		f.inventory("9.9.9.9", 64502, `{"maxmind":{"country":"US"}}`, time.Time{}) // never enriched
		f.session("json-session", "", day, `{"session":{"1.2.3.4":{"dshield":{}}, "7.7.7.7":{}}}`)
		f.session("json-dshield", "", day, `{"dshield":{"ip":{"number":"5.6.7.8"}}}`)
		f.session("xx", "5.6.7.8", day, "")
		f.session("bogon", "10.0.0.1", day, "")
		f.session("unknown", "", day, `{"session":{"8.8.4.4":{}}}`)
		f.session("stale", "9.9.9.9", day, "")
		f.session("first-writer", "1.2.3.4", day, "")
		f.exec(`UPDATE session_summaries SET snapshot_asn = 1, snapshot_country = 'FR' WHERE session_id = 'first-writer'`)
		f.session("done", "1.2.3.4", day, "")
		f.exec(`UPDATE session_summaries SET snapshot_asn = 2, enrichment_at = ? WHERE session_id = 'done'`, day)

		res, err := backfill(t, f.db, snapshots.Options{ChunkSize: 3})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Scanned != 7 || res.Written != 5 {
			t.Errorf("scanned %d, written %d; want 7 and 5", res.Scanned, res.Written)
		}
		want := map[string]snap{
			"json-session": {"1.2.3.4", "64500", "DE", "cloud", true},
			"json-dshield": {"5.6.7.8", "64501", "", "", true},
			"xx":           {"5.6.7.8", "64501", "", "", true},
			"bogon":        {"10.0.0.1", "", "", "bogon", true},
			"unknown":      {"", "", "", "", false},
			"stale":        {"9.9.9.9", "", "", "", false},
			"first-writer": {"1.2.3.4", "1", "FR", "cloud", true},
			"done":         {"1.2.3.4", "2", "", "", true},
		}
		for id, w := range want {
			if got := f.snapshot(id); got != w {
				t.Errorf("session %s: got %+v, want %+v", id, got, w)
			}
		}
		var at time.Time
		var atText string
		if f.db.Dialect == store.Postgres {
			err = f.db.QueryRow(context.Background(), "SELECT enrichment_at FROM session_summaries WHERE session_id = 'xx'", nil, &at)
		} else if err = f.db.QueryRow(context.Background(), "SELECT enrichment_at FROM session_summaries WHERE session_id = 'xx'", nil, &atText); err == nil {
			at, err = store.ParseTime(atText)
		}
		if err != nil || !at.Equal(enriched) {
			t.Errorf("enrichment_at = %v (%v), want ip_inventory.enrichment_updated_at %v", at, err, enriched)
		}
	})
}

// TestBackfillWindowIntegration checks the window bounds: since is
// included, until excluded.
func TestBackfillWindowIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := upstream(t, url)
		f.inventory("1.2.3.4", 64500, `{"maxmind":{"country":"DE"}}`, enriched)
		since := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		until := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
		cases := []struct {
			id    string
			first time.Time
			in    bool
		}{
			{"before", since.Add(-time.Microsecond), false},
			{"at-since", since, true},
			{"inside", since.Add(240 * time.Hour), true},
			{"before-until", until.Add(-time.Microsecond), true},
			{"at-until", until, false},
		}
		for _, c := range cases {
			f.session(c.id, "1.2.3.4", c.first, "")
		}
		if _, err := backfill(t, f.db, snapshots.Options{Window: snapshots.Window{Since: since, Until: until}}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, c := range cases {
			if got := f.snapshot(c.id).at; got != c.in {
				t.Errorf("session %s (first_event_at %s): written %v, want %v", c.id, c.first.Format(time.RFC3339Nano), got, c.in)
			}
		}
	})
}

// installCrash counts every update of a session in table writes and makes
// the update of the session named in crash_on fail, as a crash in the
// middle of a chunk would.
func (f fixture) installCrash() {
	f.t.Helper()
	f.exec("CREATE TABLE writes (session_id TEXT NOT NULL)")
	f.exec("CREATE TABLE crash_on (session_id TEXT NOT NULL)")
	if f.db.Dialect == store.Postgres {
		f.exec(`CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM crash_on c WHERE c.session_id = NEW.session_id) THEN RAISE EXCEPTION 'simulated crash'; END IF;
  INSERT INTO writes VALUES (NEW.session_id);
  RETURN NEW;
END $$`)
		f.exec("CREATE TRIGGER count_write BEFORE UPDATE ON session_summaries FOR EACH ROW EXECUTE FUNCTION count_write()")
		return
	}
	f.exec(`CREATE TRIGGER count_write AFTER UPDATE ON session_summaries BEGIN
  SELECT RAISE(ABORT, 'simulated crash') WHERE NEW.session_id IN (SELECT session_id FROM crash_on);
  INSERT INTO writes VALUES (NEW.session_id);
END`)
}

// TestBackfillResumeIntegration crashes the sweep in the middle of its
// third chunk, then resumes: the first two chunks are not redone, and every
// session is written exactly once.
func TestBackfillResumeIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := upstream(t, url)
		f.inventory("1.2.3.4", 64500, `{"maxmind":{"country":"DE"}}`, enriched)
		const n, chunk = 50, 10
		for i := range n {
			f.session("s"+pad(i), "1.2.3.4", now.Add(-time.Hour), "")
		}
		f.installCrash()
		f.exec("INSERT INTO crash_on VALUES ('s" + pad(25) + "')")
		opts := snapshots.Options{ChunkSize: chunk}
		if _, err := backfill(t, f.db, opts); err == nil || !strings.Contains(err.Error(), "simulated crash") {
			t.Fatalf("Run with a crash: err = %v, want the simulated crash", err)
		}
		f.exec("DELETE FROM crash_on")
		opts.Resume = true
		res, err := backfill(t, f.db, opts)
		if err != nil {
			t.Fatalf("resumed Run: %v", err)
		}
		if !res.Resumed || res.Scanned != n-2*chunk || res.Written != n-2*chunk {
			t.Errorf("resumed run: %+v, want resumed with %d scanned and written", res, n-2*chunk)
		}
		var sessions, writes, distinct int64
		if err := f.db.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM session_summaries WHERE enrichment_at IS NOT NULL),
			(SELECT count(*) FROM writes), (SELECT count(DISTINCT session_id) FROM writes)`, nil, &sessions, &writes, &distinct); err != nil {
			t.Fatal(err)
		}
		if sessions != n || writes != n || distinct != n {
			t.Errorf("%d sessions with snapshots, %d writes of %d sessions; want %d each", sessions, writes, distinct, n)
		}
		var key string
		var done bool
		if err := f.db.QueryRow(context.Background(), "SELECT last_key, done FROM cowrie_enrich_checkpoints WHERE job = ?", []any{opts.Job()}, &key, &done); err != nil {
			t.Fatal(err)
		}
		if key != "s"+pad(n-1) || !done {
			t.Errorf("checkpoint %q done=%v, want %q done", key, done, "s"+pad(n-1))
		}
	})
}

func pad(i int) string { return strings.Repeat("0", 4-len(strconv.Itoa(i))) + strconv.Itoa(i) }

// TestCountIntegration checks that the dry-run count reports the pending
// sessions and changes nothing.
func TestCountIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := upstream(t, url)
		f.inventory("1.2.3.4", 64500, `{}`, enriched)
		f.session("a", "1.2.3.4", now, "")
		f.session("b", "", now, `{"session":{"1.2.3.4":{}}}`)
		f.session("c", "", now, `{"session":{"8.8.8.8":{}}}`)
		f.installCrash() // counts writes
		p, err := snapshots.Count(context.Background(), f.db, snapshots.Window{})
		if err != nil {
			t.Fatal(err)
		}
		if p != (snapshots.Pending{Sessions: 3, Ready: 2}) {
			t.Errorf("Count = %+v, want 3 sessions, 2 ready", p)
		}
		var writes int64
		if err := f.db.QueryRow(context.Background(), "SELECT count(*) FROM writes", nil, &writes); err != nil || writes != 0 {
			t.Errorf("dry run wrote %d sessions (%v)", writes, err)
		}
	})
}

// TestSinkIntegration fills the snapshots of a committed batch's sessions.
func TestSinkIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := upstream(t, url)
		f.inventory("1.2.3.4", 64500, `{"cymru":{"country":"NL"}}`, enriched)
		f.inventory("5.6.7.8", 64501, `{}`, enriched)
		f.session("a", "1.2.3.4", now, "")
		f.session("b", "", now, `{"session":{"1.2.3.4":{}}}`)
		f.session("c", "5.6.7.8", now, "")
		env := pipeline.Env{Store: f.db, Now: func() time.Time { return now }, Progress: pipeline.NewProgress(now)}
		s, err := snapshots.New(env, snapshots.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		r := pipeline.NewRecord("1.2.3.4")
		r.Addr = mustAddr(t, "1.2.3.4")
		for range 2 { // idempotent
			if err := s.Write(context.Background(), pipeline.Batch{r}); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		if v, _ := env.Progress.Value(snapshots.CounterWritten); v != 2 {
			t.Errorf("written counter %d, want 2", v)
		}
		for id, want := range map[string]snap{
			"a": {"1.2.3.4", "64500", "NL", "", true},
			"b": {"1.2.3.4", "64500", "NL", "", true},
			"c": {"5.6.7.8", "", "", "", false},
		} {
			if got := f.snapshot(id); got != want {
				t.Errorf("session %s: got %+v, want %+v", id, got, want)
			}
		}
	})
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
