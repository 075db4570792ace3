package staleips_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/migrations"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
	"github.com/cowrie-enrich/cowrie-enrich/sources/staleips"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		cfg         staleips.Config
		errContains string
	}{
		{name: "defaults", cfg: *staleips.DefaultConfig()},
		{name: "limit", cfg: staleips.Config{StaleAfter: time.Hour, Limit: 10}},
		{name: "zero stale_after", cfg: staleips.Config{}, errContains: "stale_after must be positive"},
		{name: "negative stale_after", cfg: staleips.Config{StaleAfter: -time.Hour}, errContains: "stale_after must be positive"},
		{name: "negative limit", cfg: staleips.Config{StaleAfter: time.Hour, Limit: -1}, errContains: "limit must be 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.errContains == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.errContains != "" && (err == nil || !strings.Contains(err.Error(), tt.errContains)) {
				t.Fatalf("Validate = %v, want error containing %q", err, tt.errContains)
			}
		})
	}
}

func TestSampleDecodes(t *testing.T) {
	cfg, err := pipeline.DecodeSample(staleips.Spec)
	if err != nil {
		t.Fatalf("sample: %v", err)
	}
	if got := *cfg.(*staleips.Config); got != *staleips.DefaultConfig() {
		t.Errorf("sample decodes to %+v, want the defaults %+v", got, *staleips.DefaultConfig())
	}
}

func TestNewNeedsStore(t *testing.T) {
	_, err := staleips.New(pipelinetest.Env("stale_ips"), staleips.DefaultConfig())
	if !errors.Is(err, staleips.ErrNoStore) {
		t.Fatalf("New without store = %v, want ErrNoStore", err)
	}
}

func TestStaleRuleIntegration(t *testing.T) {
	tests := []struct {
		name        string
		ip          string
		enriched    time.Time // zero: NULL enrichment_updated_at
		inInventory bool
		sessions    bool
		want        bool
	}{
		{name: "new address, not in inventory", ip: "192.0.2.10", sessions: true, want: true},
		{name: "never enriched", ip: "192.0.2.11", inInventory: true, sessions: true, want: true},
		{name: "older than stale_after", ip: "192.0.2.12", enriched: now.Add(-721 * time.Hour), inInventory: true, sessions: true, want: true},
		{name: "a microsecond past stale_after", ip: "192.0.2.13", enriched: now.Add(-720*time.Hour - time.Microsecond), inInventory: true, sessions: true, want: true},
		{name: "exactly stale_after old is fresh", ip: "192.0.2.14", enriched: now.Add(-720 * time.Hour), inInventory: true, sessions: true},
		{name: "fresh", ip: "192.0.2.15", enriched: now.Add(-time.Hour), inInventory: true, sessions: true},
		{name: "stale but without sessions", ip: "192.0.2.16", inInventory: true},
		{name: "garbage is emitted for validate to reject", ip: "not-an-ip", sessions: true, want: true},
		{name: "empty address is skipped", ip: "  ", sessions: true},
	}
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := fixture{t, testdb.Migrated(t, url)}
		for i, tt := range tests {
			if tt.inInventory {
				f.inventory(tt.ip, tt.enriched)
			}
			if tt.sessions {
				f.session(fmt.Sprint("s", i), tt.ip, now.Add(-48*time.Hour), now.Add(-time.Duration(i)*time.Hour), "")
			}
		}
		recs := collect(t, newSource(t, f.db, 0))
		got := raws(recs)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if slices.Contains(got, tt.ip) != tt.want {
					t.Errorf("%q emitted = %v, want %v (emitted: %q)", tt.ip, !tt.want, tt.want, got)
				}
				for _, r := range recs {
					if r.Raw == tt.ip && r.NotInInventory == tt.inInventory {
						t.Errorf("%q: NotInInventory = %v, but the address is in ip_inventory: %v", tt.ip, r.NotInInventory, tt.inInventory)
					}
				}
			})
		}
	})
}

func TestOrderAndLimitIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := fixture{t, testdb.Migrated(t, url)}
		base := now.Add(-24 * time.Hour)
		f.session("a", "192.0.2.1", base, base.Add(1*time.Minute), "")
		f.session("b", "192.0.2.2", base, base.Add(3*time.Minute), "")
		f.session("c", "192.0.2.4", base, base.Add(2*time.Minute), "")
		f.session("d", "192.0.2.3", base, base.Add(2*time.Minute), "") // tie with 192.0.2.4: address order
		f.session("e", "192.0.2.5", base, time.Time{}, "")             // no last_event_at: last

		tests := []struct {
			name  string
			limit int
			want  []string
		}{
			{name: "all, most recently active first", want: []string{"192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.1", "192.0.2.5"}},
			{name: "limit takes the most recent", limit: 2, want: []string{"192.0.2.2", "192.0.2.3"}},
			{name: "limit above the candidates", limit: 50, want: []string{"192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.1", "192.0.2.5"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				src := newSource(t, f.db, tt.limit)
				got := raws(collect(t, src))
				if !slices.Equal(got, tt.want) {
					t.Errorf("Run emitted %q, want %q", got, tt.want)
				}
				n, err := src.Total(context.Background())
				if err != nil || n != int64(len(tt.want)) {
					t.Errorf("Total = %d, %v; want %d", n, err, len(tt.want))
				}
			})
		}
	})
}

// TestSessionIPsFilledIntegration: a record is marked SessionIPsFilled
// exactly when no session of its address has a NULL source_ip, whatever
// the spellings of the others; the sink looks for sessions to fill only
// for the unmarked ones.
func TestSessionIPsFilledIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := fixture{t, testdb.Migrated(t, url)}
		at := now.Add(-time.Hour)
		f.session("a1", "198.51.100.1", at, at, "")
		f.session("a2", " 198.51.100.1", at, at, "")
		f.session("b1", "198.51.100.2", at, at, "")
		f.session("b2", "", at, at, `{"dshield":{"ip":{"number":"198.51.100.2"}}}`)
		f.session("c1", "", at, at, `{"session":{"198.51.100.3":{}}}`)
		// A blank spelling is not NULL: filling leaves it alone.
		f.session("d1", " ", at, at, `{"session":{"198.51.100.4":{}}}`)
		f.session("e1", "::ffff:198.51.100.5", at, at, "")
		want := map[string]bool{"198.51.100.1": true, "198.51.100.2": false, "198.51.100.3": false, "198.51.100.4": true, "198.51.100.5": true}
		recs := collect(t, newSource(t, f.db, 0))
		if len(recs) != len(want) {
			t.Fatalf("emitted %q, want the %d addresses of %v", raws(recs), len(want), want)
		}
		for _, r := range recs {
			if w, ok := want[r.Raw]; !ok || r.SessionIPsFilled != w {
				t.Errorf("%q: SessionIPsFilled = %v, want %v", r.Raw, r.SessionIPsFilled, w)
			}
		}
	})
}

func TestSessionStatsIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := fixture{t, testdb.Migrated(t, url)}
		t0 := time.Date(2025, 5, 30, 8, 15, 30, 0, time.UTC)
		us := time.Microsecond
		f.session("s1", "::ffff:198.51.100.7", t0.Add(1*us), t0.Add(5*us), "")
		f.session("s2", "198.51.100.7", t0.Add(2*us), t0.Add(9*us), "")
		f.session("s3", " ::FFFF:198.51.100.7 ", t0.Add(3*us), t0.Add(4*us), "")
		f.session("s4", "198.51.100.8", t0.Add(7*us), t0.Add(9*us), "")
		// Another spelling inside s4's span, and one with no times: s4's
		// figures stand, and the session counts.
		f.session("s7", " 198.51.100.8", t0.Add(8*us), t0.Add(8*us), "")
		f.session("s8", "198.51.100.8 ", time.Time{}, time.Time{}, "")
		// An address known only from the JSON.
		f.session("s9", "", t0.Add(2*us), t0.Add(3*us), `{"dshield":{"ip":{"number":"198.51.100.9"}}}`)
		// The same address from the enrichment JSON, with no source_ip or a
		// blank one, counts toward the same record.
		f.session("s5", "", t0.Add(6*us), t0.Add(10*us), `{"dshield":{"ip":{"number":"198.51.100.7"}}}`)
		f.session("s6", " ", t0.Add(6*us), t0.Add(7*us), `{"session":{"::ffff:198.51.100.7":{}}}`)

		recs := collect(t, newSource(t, f.db, 0))
		if len(recs) != 3 {
			t.Fatalf("emitted %q, want 198.51.100.7, 198.51.100.8 and 198.51.100.9", raws(recs))
		}
		r := recs[0]
		if r.Raw != "198.51.100.7" || r.Sessions != 5 || !r.FirstSeen.Equal(t0.Add(us)) || !r.LastSeen.Equal(t0.Add(10*us)) {
			t.Errorf("first record = %q sessions=%d first=%s last=%s; want 198.51.100.7, 5, %s, %s",
				r.Raw, r.Sessions, r.FirstSeen.Format(time.RFC3339Nano), r.LastSeen.Format(time.RFC3339Nano),
				t0.Add(us).Format(time.RFC3339Nano), t0.Add(10*us).Format(time.RFC3339Nano))
		}
		if r := recs[1]; r.Raw != "198.51.100.8" || r.Sessions != 3 || !r.FirstSeen.Equal(t0.Add(7*us)) || !r.LastSeen.Equal(t0.Add(9*us)) {
			t.Errorf("second record = %q sessions=%d first=%s last=%s; want 198.51.100.8, 3, %s, %s",
				r.Raw, r.Sessions, r.FirstSeen.Format(time.RFC3339Nano), r.LastSeen.Format(time.RFC3339Nano),
				t0.Add(7*us).Format(time.RFC3339Nano), t0.Add(9*us).Format(time.RFC3339Nano))
		}
		if r := recs[2]; r.Raw != "198.51.100.9" || r.Sessions != 1 || !r.FirstSeen.Equal(t0.Add(2*us)) || !r.LastSeen.Equal(t0.Add(3*us)) {
			t.Errorf("third record = %q sessions=%d first=%s last=%s; want 198.51.100.9, 1, %s, %s",
				r.Raw, r.Sessions, r.FirstSeen.Format(time.RFC3339Nano), r.LastSeen.Format(time.RFC3339Nano),
				t0.Add(2*us).Format(time.RFC3339Nano), t0.Add(3*us).Format(time.RFC3339Nano))
		}
		if r.FirstSeen.Location() != time.UTC {
			t.Errorf("FirstSeen in %s, want UTC", r.FirstSeen.Location())
		}
	})
}

func TestUpstreamDiscoveryIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Open(t, url)
		f := fixture{t, db}
		f.loadUpstream()
		if _, err := migrations.Apply(context.Background(), db); err != nil {
			t.Fatalf("migrate upstream database: %v", err)
		}
		last := now.Add(-time.Hour)
		f.inventory("198.51.100.7", now.Add(-time.Hour)) // fresh
		f.inventory("198.51.100.8", time.Time{})         // seeded by upstream v16, never enriched
		f.session("known-fresh", "198.51.100.7", last, last, "")
		f.session("known-stale", "198.51.100.8", last, last, "")
		f.session("json-session", "", last, last, `{"session":{"203.0.113.9":{"dshield":{"ip":{"asname":"X"}}}}}`)
		f.session("json-dshield", "", last, last, `{"dshield":{"ip":{"number":"203.0.113.10"}}}`)
		f.session("json-none", "", last, last, "")
		f.session("json-array", "", last, last, `[1, 2]`)
		f.session("json-odd-session", "", last, last, `{"session":"203.0.113.99"}`)
		if db.Dialect != "postgres" {
			// Only SQLite stores text that is not JSON; PostgreSQL's json
			// type refuses it on insert.
			f.session("json-malformed", "", last, last, `{"session": {"203.0.113.11"`)
		}

		src := newSource(t, db, 0)
		got := raws(collect(t, src))
		slices.Sort(got)
		want := []string{"198.51.100.8", "203.0.113.10", "203.0.113.9"}
		if !slices.Equal(got, want) {
			t.Errorf("emitted %q, want %q", got, want)
		}
		if n, err := src.Total(context.Background()); err != nil || n != int64(len(want)) {
			t.Errorf("Total = %d, %v; want %d", n, err, len(want))
		}
	})
}

func TestRunStopsIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := fixture{t, testdb.Migrated(t, url)}
		for i := range 300 {
			at := now.Add(-time.Duration(i) * time.Minute)
			f.session(fmt.Sprint("s", i), fmt.Sprintf("192.0.2.%d", i%250), at, at, "")
		}
		src := newSource(t, f.db, 0)

		t.Run("cancelled context", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			err := src.Run(ctx, func(*pipeline.Record) error {
				n++
				cancel()
				return nil
			})
			if !errors.Is(err, context.Canceled) || n != 1 {
				t.Errorf("Run after cancel = %v with %d records, want context.Canceled after 1", err, n)
			}
		})
		t.Run("emit error", func(t *testing.T) {
			n := 0
			err := src.Run(context.Background(), func(*pipeline.Record) error {
				n++
				if n == 3 {
					return pipeline.ErrStopped
				}
				return nil
			})
			if !errors.Is(err, pipeline.ErrStopped) || n != 3 {
				t.Errorf("Run = %v with %d records, want ErrStopped after 3", err, n)
			}
		})
	})
}

func TestTotalIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		f := fixture{t, testdb.Migrated(t, url)}
		t.Run("no candidates", func(t *testing.T) {
			src := newSource(t, f.db, 0)
			collect(t, src)
			if n, err := src.Total(context.Background()); err != nil || n != 0 {
				t.Errorf("Total = %d, %v; want 0", n, err)
			}
		})
		for i := range 5 {
			at := now.Add(-time.Duration(i) * time.Minute)
			f.session(fmt.Sprint("s", i), fmt.Sprintf("192.0.2.%d", i), at, at, "")
		}

		t.Run("called before Run, answered by Run", func(t *testing.T) {
			src := newSource(t, f.db, 3)
			type result struct {
				n   int64
				err error
			}
			got := make(chan result, 1)
			go func() {
				n, err := src.Total(context.Background())
				got <- result{n, err}
			}()
			if recs := collect(t, src); len(recs) != 3 {
				t.Fatalf("Run emitted %d records, want 3", len(recs))
			}
			if r := <-got; r.err != nil || r.n != 3 {
				t.Errorf("Total = %d, %v; want 3 (the limit)", r.n, r.err)
			}
		})
		t.Run("Run never called", func(t *testing.T) {
			src := newSource(t, f.db, 0)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := src.Total(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Total = %v, want context.Canceled", err)
			}
		})
		t.Run("Run fails before its first row", func(t *testing.T) {
			src := newSource(t, f.db, 0)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := src.Run(ctx, func(*pipeline.Record) error { return nil }); err == nil {
				t.Fatal("Run with a cancelled context succeeded")
			}
			if _, err := src.Total(context.Background()); err == nil {
				t.Error("Total after a failed Run succeeded, want Run's error")
			}
		})
	})
}

// TestRunHoldsNoSnapshotIntegration checks that on PostgreSQL the source
// keeps no transaction open while the pipeline works on what it emitted:
// an open one would keep every row version the run makes obsolete from
// being cleaned up until the run ends.
func TestRunHoldsNoSnapshotIntegration(t *testing.T) {
	app := fmt.Sprintf("staleips-snapshot-%d", time.Now().UnixNano())
	f := fixture{t, testdb.Migrated(t, testdb.PostgresURL(t)+"&application_name="+app)}
	for i := range 30 {
		at := now.Add(-time.Duration(i) * time.Minute)
		f.session(fmt.Sprint("s", i), fmt.Sprintf("192.0.2.%d", i), at, at, "")
	}
	n := 0
	err := newSource(t, f.db, 0).Run(t.Context(), func(r *pipeline.Record) error {
		n++
		var open int
		err := f.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
WHERE application_name = $1 AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`, app).Scan(&open)
		if err != nil {
			return err
		}
		if open != 0 {
			t.Errorf("record %d (%s): %d transactions of the source open while the pipeline works", n, r.Raw, open)
		}
		return nil
	})
	if err != nil || n != 30 {
		t.Fatalf("Run = %v after %d records; want nil after 30", err, n)
	}
}

// TestRunReadsEveryPageIntegration emits more candidates than one fetch
// of the held cursor returns, each once, most recently active first.
func TestRunReadsEveryPageIntegration(t *testing.T) {
	f := fixture{t, testdb.Migrated(t, testdb.PostgresURL(t))}
	const ips = 12007
	f.exec(`INSERT INTO session_summaries (session_id, source_ip, first_event_at, last_event_at, created_at, updated_at)
SELECT 's' || n, '10.' || (n / 65536) || '.' || (n / 256 % 256) || '.' || (n % 256),
       ?::timestamptz - n * interval '1 second', ?::timestamptz - n * interval '1 second', ?::timestamptz, ?::timestamptz
FROM generate_series(0, ?) AS n`, now, now, now, now, ips-1)
	recs := collect(t, newSource(t, f.db, 0))
	if len(recs) != ips {
		t.Fatalf("emitted %d records; want %d", len(recs), ips)
	}
	seen := map[string]bool{}
	for i, r := range recs {
		if seen[r.Raw] {
			t.Fatalf("%s emitted twice", r.Raw)
		}
		seen[r.Raw] = true
		if i > 0 && r.LastSeen.After(recs[i-1].LastSeen) {
			t.Fatalf("record %d (%s, last seen %s) after %s (last seen %s): want most recently active first",
				i, r.Raw, r.LastSeen, recs[i-1].Raw, recs[i-1].LastSeen)
		}
	}
}
