package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

var (
	first = time.Date(2025, 10, 1, 8, 30, 15, 123456000, time.UTC)
	last  = time.Date(2025, 11, 19, 23, 59, 59, 999999000, time.UTC)
)

var metaKeys = []string{"cache_hits", "duration_ms", "pipeline", "run_id", "skip_reasons",
	"sources_attempted", "sources_failed", "sources_skipped", "sources_succeeded"}

func checkMeta(t *testing.T, doc map[string]any) {
	t.Helper()
	meta, ok := doc["_meta"].(map[string]any)
	if !ok {
		t.Fatalf("_meta missing or not an object: %v", doc["_meta"])
	}
	var keys []string
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, metaKeys) {
		t.Errorf("_meta keys = %v, want %v", keys, metaKeys)
	}
	if meta["run_id"] != "run-1" || meta["pipeline"] != "refresh-ips" {
		t.Errorf("_meta run_id/pipeline = %v/%v", meta["run_id"], meta["pipeline"])
	}
}

func TestWriteIntegration_NewRows(t *testing.T) {
	eachShape(t, func(t *testing.T, db *store.DB) {
		s := newTestSink(t, db, t0, nil)
		enriched := withMaxMind(withASN(withSessions(rec("198.51.100.7"), 4, first, last), 64500, "Example Net", "US", "arin"), "US")
		bogon := rec("10.0.0.1")
		bogon.Validation = &pipeline.Validation{IsBogon: true, Reason: "private"}
		skipped := rec("203.0.113.9")
		skipped.Skip(pipeline.SourceMaxMind, "no database")
		write(t, s, enriched, bogon, skipped)

		now := store.FormatTime(t0)
		tests := []struct {
			name                 string
			ip                   string
			asn                  int64 // 0: NULL
			first, last          string
			sessions             int64
			enrichedAt, verified string // "": NULL
			geo                  string
			isBogon              bool
			keys                 []string
		}{
			{"enriched with sessions", "198.51.100.7", 64500, store.FormatTime(first), store.FormatTime(last), 4, now, now, "US", false,
				[]string{"_meta", "maxmind", "validation"}},
			{"bogon without sessions", "10.0.0.1", 0, now, now, 0, now, "", "XX", true,
				[]string{"_meta", "validation"}},
			{"all sources skipped stays stale", "203.0.113.9", 0, now, now, 0, "", "", "XX", false,
				[]string{"_meta", "validation"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := mustReadIP(t, db, tt.ip)
				if got := r.ASN.Int64; got != tt.asn || r.ASN.Valid != (tt.asn != 0) {
					t.Errorf("current_asn = %v, want %d", r.ASN, tt.asn)
				}
				if r.FirstSeen != tt.first || r.LastSeen != tt.last || r.Sessions != tt.sessions {
					t.Errorf("first/last/count = %s/%s/%d, want %s/%s/%d", r.FirstSeen, r.LastSeen, r.Sessions, tt.first, tt.last, tt.sessions)
				}
				if r.EnrichedAt.String != tt.enrichedAt || r.EnrichedAt.Valid != (tt.enrichedAt != "") {
					t.Errorf("enrichment_updated_at = %v, want %q", r.EnrichedAt, tt.enrichedAt)
				}
				if r.Verified.String != tt.verified || r.Verified.Valid != (tt.verified != "") {
					t.Errorf("asn_last_verified = %v, want %q", r.Verified, tt.verified)
				}
				if r.Created != now {
					t.Errorf("created_at = %s, want %s", r.Created, now)
				}
				if r.GeoCountry != tt.geo || r.IsBogon != tt.isBogon {
					t.Errorf("geo_country/is_bogon = %s/%v, want %s/%v", r.GeoCountry, r.IsBogon, tt.geo, tt.isBogon)
				}
				var keys []string
				for k := range r.Enrichment {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if !slices.Equal(keys, tt.keys) {
					t.Errorf("enrichment keys = %v, want %v", keys, tt.keys)
				}
				checkMeta(t, r.Enrichment)
			})
		}
	})
}

func TestWriteIntegration_MergeKeepsEarlierKeys(t *testing.T) {
	eachShape(t, func(t *testing.T, db *store.DB) {
		earlier := store.FormatTime(t0.Add(-24 * time.Hour))
		execSQL(t, db, `INSERT INTO asn_inventory (asn_number, first_seen, last_seen, enrichment, created_at, updated_at)
VALUES (64496, $1, $1, '{}', $1, $1)`, earlier)
		execSQL(t, db, `INSERT INTO ip_inventory (ip_address, current_asn, first_seen, last_seen, session_count, enrichment, enrichment_updated_at, created_at, updated_at)
VALUES ('198.51.100.7', 64496, $1, $1, 9, $2, $1, $1, $1)`,
			earlier, `{"dshield":{"ip":{"count":3}},"maxmind":{"country":"DE","city":"Berlin"}}`)

		s := newTestSink(t, db, t0, nil)
		write(t, s, withMaxMind(rec("198.51.100.7"), "US"))

		r := mustReadIP(t, db, "198.51.100.7")
		if _, ok := r.Enrichment["dshield"]; !ok {
			t.Errorf("dshield key lost: %v", r.Enrichment)
		}
		mm, _ := r.Enrichment["maxmind"].(map[string]any)
		if mm["country"] != "US" || mm["city"] != nil {
			t.Errorf("maxmind = %v, want the new object whole (country US, no city)", mm)
		}
		checkMeta(t, r.Enrichment)
		if r.ASN.Int64 != 64496 || r.Sessions != 9 || r.FirstSeen != earlier {
			t.Errorf("kept columns changed: asn %v sessions %d first_seen %s", r.ASN, r.Sessions, r.FirstSeen)
		}
		if r.EnrichedAt.String != store.FormatTime(t0) {
			t.Errorf("enrichment_updated_at = %v, want now", r.EnrichedAt)
		}
		if r.GeoCountry != "US" {
			t.Errorf("geo_country = %s, want US", r.GeoCountry)
		}
	})
}

func TestWriteIntegration_DuplicateIPInBatch(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Migrated(t, url)
		s := newTestSink(t, db, t0, nil)
		a := withASN(withSessions(rec("198.51.100.7"), 2, first, last), 64500, "Example Net", "", "")
		a.Set(pipeline.SourceCymru, map[string]any{"asn": 64500})
		b := withMaxMind(rec("198.51.100.7"), "US")
		write(t, s, a, b)

		if n := count(t, db, "ip_inventory"); n != 1 {
			t.Fatalf("rows = %d, want 1", n)
		}
		r := mustReadIP(t, db, "198.51.100.7")
		if r.ASN.Int64 != 64500 || r.Sessions != 2 {
			t.Errorf("asn/sessions = %v/%d, want 64500/2 from the first record", r.ASN, r.Sessions)
		}
		for _, k := range []string{"cymru", "maxmind", "_meta"} {
			if _, ok := r.Enrichment[k]; !ok {
				t.Errorf("enrichment lacks %q: %v", k, r.Enrichment)
			}
		}
	})
}

func TestWriteIntegration_SessionStatsSetExactly(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Migrated(t, url)
		execSQL(t, db, `INSERT INTO ip_inventory (ip_address, first_seen, last_seen, session_count, enrichment, created_at, updated_at)
VALUES ('198.51.100.7', $1, $1, 99, '{}', $1, $1)`, store.FormatTime(t0.Add(-time.Hour)))
		s := newTestSink(t, db, t0, nil)
		for range 2 {
			write(t, s, withSessions(rec("198.51.100.7"), 3, first, last))
			r := mustReadIP(t, db, "198.51.100.7")
			if r.Sessions != 3 || r.FirstSeen != store.FormatTime(first) || r.LastSeen != store.FormatTime(last) {
				t.Fatalf("first/last/count = %s/%s/%d, want %s/%s/3", r.FirstSeen, r.LastSeen, r.Sessions,
					store.FormatTime(first), store.FormatTime(last))
			}
		}
		// A record that does not know its sessions keeps the stored ones.
		write(t, s, rec("198.51.100.7"))
		if r := mustReadIP(t, db, "198.51.100.7"); r.Sessions != 3 || r.FirstSeen != store.FormatTime(first) {
			t.Errorf("sessions unknown: count %d first %s, want kept", r.Sessions, r.FirstSeen)
		}
	})
}

func TestWriteIntegration_ASNRows(t *testing.T) {
	eachShape(t, func(t *testing.T, db *store.DB) {
		earlier := store.FormatTime(t0.Add(-48 * time.Hour))
		execSQL(t, db, `INSERT INTO asn_inventory (asn_number, organization_name, organization_country, rir_registry, first_seen, last_seen, enrichment, created_at, updated_at)
VALUES (64500, 'First Org', NULL, '', $1, $1, '{}', $1, $1)`, earlier)
		s := newTestSink(t, db, t0, nil)
		write(t, s,
			withASN(withSessions(rec("198.51.100.1"), 2, first, last), 64500, "Second Org", "US", "arin"),
			withASN(withSessions(rec("198.51.100.2"), 3, first, last), 64500, "Third Org", "DE", "ripencc"),
			withASN(withSessions(rec("198.51.100.3"), 5, first, last), 64501, "", "NL", ""),
			withASN(rec("198.51.100.4"), 64501, "Late Org", "", "ripencc"),
		)
		now := store.FormatTime(t0)
		tests := []struct {
			name                   string
			asn                    int64
			org, country, registry string
			firstSeen              string
			ips, sessions          int64
		}{
			{"existing row keeps its name and fills the blanks", 64500, "First Org", "US", "arin", earlier, 2, 5},
			{"new row takes the first non-empty values", 64501, "Late Org", "NL", "ripencc", now, 2, 5},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a := readASN(t, db, tt.asn)
				if a.Org.String != tt.org || a.Country.String != tt.country || a.Registry.String != tt.registry {
					t.Errorf("org/country/registry = %q/%q/%q, want %q/%q/%q", a.Org.String, a.Country.String, a.Registry.String, tt.org, tt.country, tt.registry)
				}
				if a.FirstSeen != tt.firstSeen || a.LastSeen != now {
					t.Errorf("first_seen/last_seen = %s/%s, want %s/%s", a.FirstSeen, a.LastSeen, tt.firstSeen, now)
				}
				if a.UniqueIPs != tt.ips || a.Sessions != tt.sessions {
					t.Errorf("unique_ip_count/total_session_count = %d/%d, want %d/%d", a.UniqueIPs, a.Sessions, tt.ips, tt.sessions)
				}
			})
		}

		// An address moving to another ASN leaves its old ASN's counters.
		write(t, s, withASN(rec("198.51.100.3"), 64500, "", "", ""))
		if a := readASN(t, db, 64501); a.UniqueIPs != 1 || a.Sessions != 0 {
			t.Errorf("old ASN after move: %d IPs, %d sessions, want 1, 0", a.UniqueIPs, a.Sessions)
		}
		if a := readASN(t, db, 64500); a.UniqueIPs != 3 || a.Sessions != 10 {
			t.Errorf("new ASN after move: %d IPs, %d sessions, want 3, 10", a.UniqueIPs, a.Sessions)
		}
	})
}

func TestWriteIntegration_Idempotent(t *testing.T) {
	eachShape(t, func(t *testing.T, db *store.DB) {
		execSQL(t, db, `INSERT INTO session_summaries (session_id, enrichment) VALUES ('s1', '{"session":{"198.51.100.2":{}}}')`)
		batch := func() pipeline.Batch {
			bad := pipeline.NewRecord("not-an-ip")
			bad.Reject("validate", errors.New("parse address"))
			return pipeline.Batch{
				withMaxMind(withASN(withSessions(rec("198.51.100.1"), 2, first, last), 64500, "Example Net", "US", "arin"), "US"),
				withASN(rec("198.51.100.2"), 64501, "", "", ""),
				rec("2001:db8::1"),
				bad,
			}
		}
		s := newTestSink(t, db, t0, nil)
		tables := []string{"ip_inventory", "asn_inventory", "session_summaries", "cowrie_enrich_dead_letters"}
		var before [][]map[string]any
		for i := range 2 {
			if err := s.Write(context.Background(), batch()); err != nil {
				t.Fatalf("Write %d: %v", i, err)
			}
			var now [][]map[string]any
			for _, tbl := range tables {
				now = append(now, dump(t, db, tbl, "updated_at"))
			}
			if i == 1 {
				for j, tbl := range tables {
					if !equalRows(before[j], now[j]) {
						t.Errorf("%s changed on the second write:\nfirst:  %v\nsecond: %v", tbl, before[j], now[j])
					}
				}
			}
			before = now
		}
	})
}

func equalRows(a, b []map[string]any) bool {
	return slices.EqualFunc(a, b, func(x, y map[string]any) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if y[k] != v {
				return false
			}
		}
		return true
	})
}

func TestWriteIntegration_BadRowIsolation(t *testing.T) {
	tests := []struct {
		name         string
		postgresOnly bool
		bad          func() *pipeline.Record
		errContains  string
	}{
		{
			name:        "ASN above an upstream INTEGER column",
			bad:         func() *pipeline.Record { return withASN(rec("198.51.100.66"), 4294967295, "Private", "", "") },
			errContains: "out of range",
		},
		{
			// An unvalidated record keeps its raw text as its address.
			name:         "address longer than VARCHAR(45)",
			postgresOnly: true,
			bad: func() *pipeline.Record {
				r := pipeline.NewRecord(strings.Repeat("x", 60))
				r.Set(pipeline.SourceMaxMind, map[string]any{"country": "US"})
				return r
			},
			errContains: "too long",
		},
		{
			name: "enrichment that does not encode to JSON",
			bad: func() *pipeline.Record {
				r := withASN(rec("198.51.100.66"), 64501, "Other Net", "", "")
				r.Set("broken", func() {})
				return r
			},
			errContains: "encode enrichment",
		},
		{
			// encoding/json checks a third-party MarshalJSON's output.
			name: "enrichment whose MarshalJSON writes invalid JSON",
			bad: func() *pipeline.Record {
				r := withASN(rec("198.51.100.66"), 64501, "Other Net", "", "")
				r.Set("broken", badJSON{})
				return r
			},
			errContains: `"broken": json: error calling MarshalJSON`,
		},
	}
	testdb.Dialects(t, func(t *testing.T, url string) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.postgresOnly && !isPostgresURL(url) {
					t.Skip("SQLite does not enforce VARCHAR lengths")
				}
				u := url
				if i > 0 {
					u = freshURL(t, url)
				}
				db := testdb.Migrated(t, u)
				upstreamShape(t, db, false)
				s := newTestSink(t, db, t0, nil)
				good1 := withASN(withSessions(rec("198.51.100.1"), 2, first, last), 64500, "Example Net", "US", "arin")
				good2 := withMaxMind(rec("198.51.100.2"), "US")
				bad := tt.bad()
				if err := s.Write(context.Background(), pipeline.Batch{good1, bad, good2}); err != nil {
					t.Fatalf("Write = %v, want nil", err)
				}
				for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
					mustReadIP(t, db, ip)
				}
				if n := count(t, db, "ip_inventory"); n != 2 {
					t.Errorf("ip_inventory rows = %d, want 2", n)
				}
				if a := readASN(t, db, 64500); a.UniqueIPs != 1 || a.Sessions != 2 {
					t.Errorf("ASN 64500 counters = %d/%d, want 1/2", a.UniqueIPs, a.Sessions)
				}
				if n := count(t, db, "asn_inventory"); n != 1 {
					t.Errorf("asn_inventory rows = %d, want 1 (none for the refused row)", n)
				}
				var stage, raw, reason string
				if err := queryRow(t, db, `SELECT stage, ip_raw, reason FROM cowrie_enrich_dead_letters`, nil, &stage, &raw, &reason); err != nil {
					t.Fatalf("read dead letter: %v", err)
				}
				if stage != StageRefused || raw != bad.Raw || !strings.Contains(reason, tt.errContains) {
					t.Errorf("dead letter = %q %q %q, want stage %q, raw %q, reason containing %q", stage, raw, reason, StageRefused, bad.Raw, tt.errContains)
				}
				if !bad.Rejected() || bad.ErrStage != StageRefused {
					t.Errorf("bad record not marked rejected: %v %q", bad.Err, bad.ErrStage)
				}
				if good1.Rejected() || good2.Rejected() {
					t.Errorf("good records marked rejected: %v, %v", good1.Err, good2.Err)
				}

				// Once counted, an ASN's counters move with each row written
				// one at a time, and not with the refused one.
				good3 := withASN(withSessions(rec("198.51.100.3"), 3, first, last), 64500, "", "", "")
				if err := s.Write(context.Background(), pipeline.Batch{good3, tt.bad()}); err != nil {
					t.Fatalf("second Write = %v, want nil", err)
				}
				if a := readASN(t, db, 64500); a.UniqueIPs != 2 || a.Sessions != 5 {
					t.Errorf("ASN 64500 counters after the second batch = %d/%d, want 2/5", a.UniqueIPs, a.Sessions)
				}
			})
		}
	})
}

func TestWriteIntegration_RejectedBecomeDeadLetters(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Migrated(t, url)
		reject := func(raw string) *pipeline.Record {
			r := pipeline.NewRecord(raw)
			r.Reject("validate", errors.New("parse address "+raw[:min(len(raw), 20)]))
			return r
		}
		batch := func() pipeline.Batch {
			return pipeline.Batch{
				reject("not-an-ip"),
				reject("not-an-ip"), // the same garbage twice in one batch
				reject("nul\x00byte"),
				reject("bad utf-8 \xff\xfe"),
				reject(strings.Repeat("é", 700)), // 1400 bytes
				rec("198.51.100.1"),
			}
		}
		write(t, newTestSink(t, db, t0, nil), batch()...)
		if n := count(t, db, "cowrie_enrich_dead_letters"); n != 4 {
			t.Fatalf("dead letters = %d, want 4", n)
		}

		later := t0.Add(time.Hour)
		env := testEnv(db, later)
		env.RunID = "run-2"
		s2, err := New(env, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		write(t, s2, batch()...)
		if n := count(t, db, "cowrie_enrich_dead_letters"); n != 4 {
			t.Fatalf("dead letters after rerun = %d, want 4", n)
		}
		q := `SELECT ip_raw, run_id, ` + tsCol(db, "first_seen") + `, ` + tsCol(db, "last_seen") + ` FROM cowrie_enrich_dead_letters ORDER BY ip_raw`
		var rows [][4]string
		queryAll(t, db, q, func(scan func(...any) error) error {
			var r [4]string
			if err := scan(&r[0], &r[1], &r[2], &r[3]); err != nil {
				return err
			}
			rows = append(rows, r)
			return nil
		})
		for _, r := range rows {
			if len(r[0]) > maxRawBytes || strings.ContainsRune(r[0], 0) {
				t.Errorf("ip_raw %q: longer than %d bytes or holds NUL", r[0][:min(len(r[0]), 40)], maxRawBytes)
			}
			if r[1] != "run-2" || r[2] != store.FormatTime(t0) || r[3] != store.FormatTime(later) {
				t.Errorf("dead letter %q: run_id %s first_seen %s last_seen %s, want run-2, %s, %s",
					r[0][:min(len(r[0]), 40)], r[1], r[2], r[3], store.FormatTime(t0), store.FormatTime(later))
			}
		}
	})
}

func TestWriteIntegration_ConnectionErrors(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, db *store.DB) context.Context
	}{
		{"cancelled context", func(t *testing.T, db *store.DB) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
		{"database closed", func(t *testing.T, db *store.DB) context.Context {
			db.Close()
			return context.Background()
		}},
	}
	testdb.Dialects(t, func(t *testing.T, url string) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u := url
				if i > 0 {
					u = freshURL(t, url)
				}
				testdb.Migrated(t, u)
				db := testdb.Open(t, u)
				s := newTestSink(t, db, t0, nil)
				bad := pipeline.NewRecord("garbage")
				bad.Reject("validate", errors.New("parse address"))
				ctx := tt.break_(t, db)
				err := s.Write(ctx, pipeline.Batch{withSessions(rec("198.51.100.1"), 1, first, last), bad})
				if err == nil {
					t.Fatal("Write = nil, want an error")
				}
				if !strings.HasPrefix(err.Error(), "inventory: ") {
					t.Errorf("error %q lacks the inventory prefix", err)
				}
				check := testdb.Open(t, u)
				for _, tbl := range []string{"ip_inventory", "cowrie_enrich_dead_letters"} {
					if n := count(t, check, tbl); n != 0 {
						t.Errorf("%s rows = %d, want 0", tbl, n)
					}
				}
			})
		}
	})
}

func TestWriteIntegration_FillsSessionSourceIP(t *testing.T) {
	tests := []struct {
		name   string
		fill   bool
		filled bool              // the record says its source found no session to fill
		raw    string            // the source's spelling of the address; "" is the canonical one
		want   map[string]string // session_id -> source_ip ("" = NULL)
	}{
		{"fill on", true, false, "", map[string]string{"s1": "203.0.113.5", "s2": "", "s3": "198.51.100.9", "s4": "203.0.113.5"}},
		{"fill off", false, false, "", map[string]string{"s1": "", "s2": "", "s3": "198.51.100.9", "s4": ""}},
		// The hint is trusted: the sink does not look (this fixture lies to show it).
		{"fill on, record marked SessionIPsFilled", true, true, "", map[string]string{"s1": "", "s2": "", "s3": "198.51.100.9", "s4": ""}},
		// ... unless the source spelled the address otherwise: its hint then
		// speaks of other sessions.
		{"fill on, marked record of another spelling", true, true, "::ffff:203.0.113.5", map[string]string{"s1": "203.0.113.5", "s2": "", "s3": "198.51.100.9", "s4": "203.0.113.5"}},
	}
	eachShape(t, func(t *testing.T, db *store.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				execSQL(t, db, `DELETE FROM session_summaries`)
				execSQL(t, db, `DELETE FROM ip_inventory`)
				execSQL(t, db, `INSERT INTO ip_inventory (ip_address, first_seen, last_seen, session_count, enrichment, created_at, updated_at)
VALUES ('198.51.100.9', $1, $1, 1, '{}', $1, $1)`, store.FormatTime(t0))
				execSQL(t, db, `INSERT INTO session_summaries (session_id, source_ip, enrichment) VALUES
  ('s1', NULL, '{"session":{"203.0.113.5":{}}}'),
  ('s2', NULL, '{"session":{"203.0.113.77":{}}}'),
  ('s3', '198.51.100.9', '{"session":{"203.0.113.5":{}}}'),
  ('s4', NULL, '{"dshield":{"ip":{"number":"::ffff:203.0.113.5"}}}')`)
				s := newTestSink(t, db, t0, func(c *Config) { c.FillSessionIP = tt.fill })
				r := withSessions(rec("203.0.113.5"), 2, first, last)
				r.SessionIPsFilled = tt.filled
				if tt.raw != "" {
					r.Raw = tt.raw
				}
				write(t, s, r)
				for id, want := range tt.want {
					var got *string
					if err := queryRow(t, db, `SELECT source_ip FROM session_summaries WHERE session_id = $1`, []any{id}, &got); err != nil {
						t.Fatal(err)
					}
					if g := deref(got); g != want {
						t.Errorf("session %s source_ip = %q, want %q", id, g, want)
					}
				}
			})
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestWriteIntegration_EmptyBatch(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		s := newTestSink(t, testdb.Migrated(t, url), t0, nil)
		if err := s.Write(context.Background(), nil); err != nil {
			t.Fatalf("Write(nil) = %v", err)
		}
	})
}

// TestWriteIntegration_RepairsCountersOncePerRun shows counters an older
// tool left wrong are recounted the first time a run touches their ASN,
// and moved by deltas after that.
func TestWriteIntegration_RepairsCountersOncePerRun(t *testing.T) {
	eachShape(t, func(t *testing.T, db *store.DB) {
		ts := store.FormatTime(t0.Add(-time.Hour))
		execSQL(t, db, `INSERT INTO asn_inventory (asn_number, organization_name, first_seen, last_seen, unique_ip_count, total_session_count, enrichment, created_at, updated_at)
VALUES (64510, 'Old Net', $1, $1, 0, 0, '{}', $1, $1)`, ts)
		execSQL(t, db, `INSERT INTO ip_inventory (ip_address, current_asn, first_seen, last_seen, session_count, enrichment, created_at, updated_at)
VALUES ('198.51.100.9', 64510, $1, $1, 7, '{}', $1, $1)`, ts)
		s := newTestSink(t, db, t0, nil)
		write(t, s, withASN(withSessions(rec("198.51.100.10"), 2, first, last), 64510, "", "", ""))
		if a := readASN(t, db, 64510); a.UniqueIPs != 2 || a.Sessions != 9 {
			t.Errorf("after the first batch: %d IPs, %d sessions, want the recount 2, 9", a.UniqueIPs, a.Sessions)
		}
		write(t, s, withASN(withSessions(rec("198.51.100.11"), 4, first, last), 64510, "", "", ""),
			withASN(withSessions(rec("198.51.100.10"), 3, first, last), 64510, "", "", ""))
		if a := readASN(t, db, 64510); a.UniqueIPs != 3 || a.Sessions != 14 {
			t.Errorf("after the second batch: %d IPs, %d sessions, want 3, 14", a.UniqueIPs, a.Sessions)
		}
	})
}

// TestWriteIntegration_FillsSnapshotsInTheSameTransaction shows the sessions
// of a written address get their snapshot with it, and keep a snapshot
// already written (first writer wins); fill_snapshots: false leaves them.
func TestWriteIntegration_FillsSnapshotsInTheSameTransaction(t *testing.T) {
	eachShape(t, func(t *testing.T, db *store.DB) {
		// Upstream's foreign key keeps source_ip NULL until the address is
		// in the inventory; the address is in the session's JSON.
		execSQL(t, db, `INSERT INTO session_summaries (session_id, enrichment) VALUES ('new', '{"session":{"198.51.100.20":{}}}')`)
		execSQL(t, db, `INSERT INTO session_summaries (session_id, enrichment, snapshot_country) VALUES ('old', '{"session":{"198.51.100.20":{}}}', 'FR')`)
		execSQL(t, db, `INSERT INTO session_summaries (session_id, enrichment) VALUES ('off', '{"session":{"198.51.100.21":{}}}')`)
		write(t, newTestSink(t, db, t0, nil), withMaxMind(withASN(withSessions(rec("198.51.100.20"), 2, first, last), 64500, "", "", ""), "US"))
		write(t, newTestSink(t, db, t0, func(c *Config) { c.FillSnapshots = false }),
			withMaxMind(withASN(withSessions(rec("198.51.100.21"), 1, first, last), 64500, "", "", ""), "US"))
		for _, tt := range []struct{ id, want string }{{"new", "64500 US true"}, {"old", "64500 FR true"}, {"off", "0 - false"}} {
			var asn sql.NullInt64
			var country sql.NullString
			var at sql.NullString
			if err := db.QueryRow(context.Background(), "SELECT snapshot_asn, snapshot_country, CAST(enrichment_at AS TEXT) FROM session_summaries WHERE session_id = ?", []any{tt.id}, &asn, &country, &at); err != nil {
				t.Fatal(err)
			}
			c := country.String
			if !country.Valid {
				c = "-"
			}
			if got := fmt.Sprintf("%d %s %v", asn.Int64, c, at.Valid); got != tt.want {
				t.Errorf("session %s: snapshot %q, want %q", tt.id, got, tt.want)
			}
		}
	})
}
