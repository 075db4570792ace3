package inventory

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// TestFreshRowsWriteWhatOthersWriteIntegration writes the same batches
// with and without the hint of stale_ips (every record marked
// NotInInventory: wrongly, for the addresses an earlier batch stored and
// for those moving between ASNs): the tables, counters included, must be
// the same, and the counters must match a recount.
func TestFreshRowsWriteWhatOthersWriteIntegration(t *testing.T) {
	tables := []string{"ip_inventory", "asn_inventory", "cowrie_enrich_dead_letters"}
	for _, d := range []struct {
		name string
		url  func(testing.TB) string
	}{{"postgres", testdb.PostgresURL}, {"sqlite", testdb.SQLiteURL}} {
		t.Run(d.name, func(t *testing.T) {
			read := func(hint bool) map[string][]map[string]any {
				db := testdb.Migrated(t, d.url(t))
				s := newTestSink(t, db, t0, nil)
				defer s.Close()
				for k, b := range prepareBatches() {
					for _, r := range b {
						r.NotInInventory = hint
					}
					if err := s.Write(context.Background(), b); err != nil {
						t.Fatalf("Write batch %d (hint %v): %v", k, hint, err)
					}
				}
				checkCounters(t, db)
				out := map[string][]map[string]any{}
				for _, tbl := range tables {
					out[tbl] = dump(t, db, tbl, "created_at", "updated_at", "first_seen", "last_seen", "run_id")
				}
				return out
			}
			sameTables(t, tables, read(false), read(true), "with every record marked NotInInventory")
		})
	}
}

// checkCounters fails t when an ASN's counters, with their pending
// changes, differ from a recount of ip_inventory.
func checkCounters(t *testing.T, db *store.DB) {
	t.Helper()
	queryAll(t, db, `SELECT a.asn_number, `+countersWithPending+`,
    (SELECT count(*) FROM ip_inventory i WHERE i.current_asn = a.asn_number),
    (SELECT COALESCE(sum(i.session_count), 0) FROM ip_inventory i WHERE i.current_asn = a.asn_number)
FROM asn_inventory a`, func(scan func(...any) error) error {
		var asn, ips, sessions, wantIPs, wantSessions int64
		if err := scan(&asn, &ips, &sessions, &wantIPs, &wantSessions); err != nil {
			return err
		}
		if ips != wantIPs || sessions != wantSessions {
			t.Errorf("ASN %d counts %d addresses and %d sessions; ip_inventory holds %d and %d", asn, ips, sessions, wantIPs, wantSessions)
		}
		return nil
	})
}

// lookupCounter is a PostgreSQL batch transaction that records the
// addresses the sink reads from ip_inventory.
type lookupCounter struct {
	*pgTx
	looked []string
}

func (c *lookupCounter) existing(ctx context.Context, rows []*row) (map[string]stored, error) {
	c.looked = append(c.looked, addresses(rows)...)
	return c.pgTx.existing(ctx, rows)
}

// TestFreshRowsAreNotLookedUpIntegration writes a staged batch as Write
// does after Prepare: only the addresses without the hint, and the one
// whose hint turned out wrong, are read from ip_inventory.
func TestFreshRowsAreNotLookedUpIntegration(t *testing.T) {
	db := testdb.Migrated(t, testdb.PostgresURL(t))
	s := newTestSink(t, db, t0, nil)
	ctx := context.Background()
	sessions := func(r *pipeline.Record, n int64) *pipeline.Record { return withSessions(r, n, t0.Add(-time.Hour), t0) }
	write(t, s, withASN(sessions(rec("10.9.0.1"), 3), 64501, "AS One", "NL", "ripencc"))

	b := pipeline.Batch{
		withASN(sessions(rec("10.9.0.1"), 5), 64502, "AS Two", "NL", "ripencc"), // stored: the hint is wrong
		withASN(sessions(rec("10.9.0.2"), 2), 64502, "AS Two", "NL", "ripencc"),
		withASN(sessions(rec("10.9.0.3"), 1), 64501, "AS One", "NL", "ripencc"),
		sessions(rec("10.9.0.4"), 4),
		withASN(sessions(rec("10.9.0.5"), 7), 64503, "AS Three", "NL", "ripencc"), // no hint
	}
	for _, r := range b[:4] {
		r.NotInInventory = true
	}
	p := s.plan(b)
	tx, err := s.db.(stager).beginUnlocked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counted := &lookupCounter{pgTx: tx.(*pgTx)}
	kept, refused, err := counted.stage(ctx, p.now, p.rows)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.commit(ctx, p, false, &staged{n: len(b), p: p, tx: counted, kept: kept, refused: refused}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	slices.Sort(counted.looked)
	if want := []string{"10.9.0.1", "10.9.0.5"}; !slices.Equal(counted.looked, want) {
		t.Errorf("looked up %q, want %q", counted.looked, want)
	}
	if n := count(t, db, "ip_inventory"); n != 5 {
		t.Errorf("ip_inventory has %d rows, want 5", n)
	}
	if got := mustReadIP(t, db, "10.9.0.1"); got.Sessions != 5 || !got.ASN.Valid || got.ASN.Int64 != 64502 {
		t.Errorf("10.9.0.1 = %+v, want 5 sessions in AS64502", got)
	}
	checkCounters(t, db)
}
