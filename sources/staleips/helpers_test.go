package staleips_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
	"github.com/cowrie-enrich/cowrie-enrich/sources/staleips"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// now is the clock of every test: stale_after is measured from it.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fixture writes test rows in either dialect. Queries use ? placeholders.
type fixture struct {
	t  testing.TB
	db *store.DB
}

func (f fixture) exec(q string, args ...any) {
	f.t.Helper()
	var err error
	if f.db.Dialect == store.Postgres {
		for i := 1; strings.Contains(q, "?"); i++ {
			q = strings.Replace(q, "?", "$"+strconv.Itoa(i), 1)
		}
		_, err = f.db.Pool.Exec(context.Background(), q, args...)
	} else {
		_, err = f.db.SQL.ExecContext(context.Background(), q, args...)
	}
	if err != nil {
		f.t.Fatalf("exec %.80q: %v", q, err)
	}
}

// ts renders a timestamp argument: time.Time for Postgres, fixed-width
// text for SQLite; the zero time is NULL.
func (f fixture) ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if f.db.Dialect == store.Postgres {
		return t
	}
	return store.FormatTime(t)
}

// nullable turns "" into NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// session inserts one session; ip or enrichment "" leaves them NULL.
func (f fixture) session(id, ip string, first, last time.Time, enrichment string) {
	f.t.Helper()
	f.exec(`INSERT INTO session_summaries (session_id, source_ip, first_event_at, last_event_at, enrichment, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, id, nullable(ip), f.ts(first), f.ts(last), nullable(enrichment), f.ts(now), f.ts(now))
}

// inventory inserts an ip_inventory row enriched at updated (zero: NULL).
func (f fixture) inventory(ip string, updated time.Time) {
	f.t.Helper()
	f.exec(`INSERT INTO ip_inventory (ip_address, first_seen, last_seen, session_count, enrichment_updated_at, created_at, updated_at)
		VALUES (?, ?, ?, 1, ?, ?, ?)`, ip, f.ts(now), f.ts(now), f.ts(updated), f.ts(now), f.ts(now))
}

// loadUpstream creates upstream cowrieprocessor's schema from the fixture
// the migration tests use.
func (f fixture) loadUpstream() {
	f.t.Helper()
	name := "upstream_sqlite.sql"
	if f.db.Dialect == store.Postgres {
		name = "upstream_postgres.sql"
	}
	body, err := os.ReadFile(filepath.Join("..", "..", "migrations", "testdata", name))
	if err != nil {
		f.t.Fatal(err)
	}
	f.exec(string(body))
}

func newSource(t testing.TB, db *store.DB, limit int) *staleips.Source {
	t.Helper()
	env := pipelinetest.Env("stale_ips")
	env.Store = db
	env.Now = func() time.Time { return now }
	src, err := staleips.New(env, &staleips.Config{StaleAfter: 720 * time.Hour, Limit: limit})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return src.(*staleips.Source)
}

// collect runs src to the end and returns what it emitted.
func collect(t testing.TB, src *staleips.Source) []*pipeline.Record {
	t.Helper()
	var out []*pipeline.Record
	err := src.Run(context.Background(), func(r *pipeline.Record) error {
		out = append(out, r)
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	return out
}

func raws(recs []*pipeline.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Raw
	}
	return out
}
