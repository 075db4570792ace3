package inventory

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// prepareBatches returns batches with new addresses, addresses moving
// between ASNs, repeated addresses and a record rejected upstream, built
// afresh on every call (the sink marks records).
func prepareBatches() []pipeline.Batch {
	var out []pipeline.Batch
	for k := range 6 {
		var b pipeline.Batch
		for i := range 40 {
			ip := fmt.Sprintf("10.20.%d.%d", (k*40+i)%90/30, (k*40+i)%90)
			r := withSessions(rec(ip), int64(1+i%3), t0.Add(-time.Hour), t0)
			r = withASN(withMaxMind(r, "NL"), int64(64500+(k+i)%7), "AS Org", "NL", "ripencc")
			b = append(b, r)
		}
		bad := pipeline.NewRecord(fmt.Sprintf("garbage-%d", k))
		bad.Reject("validate", fmt.Errorf("not an address"))
		out = append(out, append(b, bad))
	}
	return out
}

// TestPrepareWritesWhatWriteWritesIntegration writes the same batches
// twice, on fresh databases: with Write alone, and as the runtime does
// with a Preparer (Prepare of each batch while Write of the one before
// runs, on another goroutine). The tables must be the same.
func TestPrepareWritesWhatWriteWritesIntegration(t *testing.T) {
	tables := []string{"ip_inventory", "asn_inventory", "cowrie_enrich_dead_letters"}
	read := func(t *testing.T, prepare bool) map[string][]map[string]any {
		db := testdb.Migrated(t, testdb.PostgresURL(t))
		s := newTestSink(t, db, t0, nil)
		defer s.Close()
		bs := prepareBatches()
		ctx := context.Background()
		if prepare {
			s.Prepare(ctx, bs[0])
		}
		for k, b := range bs {
			if prepare && s.ahead[b[0]] == nil {
				t.Fatalf("batch %d was not staged by Prepare", k)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				if prepare && k+1 < len(bs) {
					s.Prepare(ctx, bs[k+1])
				}
			}()
			if err := s.Write(ctx, b); err != nil {
				t.Fatalf("Write batch %d: %v", k, err)
			}
			<-done
		}
		if prepare && len(s.ahead) != 0 {
			t.Errorf("%d prepared batches left after every batch was written", len(s.ahead))
		}
		out := map[string][]map[string]any{}
		for _, tbl := range tables {
			out[tbl] = dump(t, db, tbl, "created_at", "updated_at", "first_seen", "last_seen", "run_id")
		}
		return out
	}
	want, got := read(t, false), read(t, true)
	for _, tbl := range tables {
		if len(want[tbl]) == 0 {
			t.Fatalf("%s is empty after Write alone; the batches prove nothing", tbl)
		}
		if !reflect.DeepEqual(got[tbl], want[tbl]) {
			t.Errorf("%s differs with Prepare:\n got %v\nwant %v", tbl, got[tbl], want[tbl])
		}
	}
}

// TestPreparedBatchNeverWrittenIntegration prepares a batch that is never
// written, as when the run fails: Close rolls its transaction back,
// leaving no row and no connection in a transaction.
func TestPreparedBatchNeverWrittenIntegration(t *testing.T) {
	app := fmt.Sprintf("inventory-prepare-%d", time.Now().UnixNano())
	db := testdb.Migrated(t, testdb.PostgresURL(t)+"&application_name="+app)
	s := newTestSink(t, db, t0, nil)
	s.Prepare(context.Background(), prepareBatches()[0])
	open := func() int {
		var n int
		err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
WHERE application_name = $1 AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`, app).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := open(); n != 1 {
		t.Fatalf("%d transactions open after Prepare; want the prepared batch's", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := open(); n != 0 {
		t.Errorf("%d transactions still open after Close", n)
	}
	if n := count(t, db, "ip_inventory"); n != 0 {
		t.Errorf("ip_inventory has %d rows from a batch never written", n)
	}
}
