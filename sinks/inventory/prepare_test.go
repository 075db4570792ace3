package inventory

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
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

// sameTables fails t when a table's dump differs between want and got
// (got is want's batches written the other way, how), or is empty.
func sameTables(t *testing.T, tables []string, want, got map[string][]map[string]any, how string) {
	t.Helper()
	for _, tbl := range tables {
		if len(want[tbl]) == 0 {
			t.Fatalf("%s is empty; the batches prove nothing", tbl)
		}
		if !reflect.DeepEqual(got[tbl], want[tbl]) {
			t.Errorf("%s differs %s:\n got %v\nwant %v", tbl, how, got[tbl], want[tbl])
		}
	}
}

// writeBatches writes bs with Write alone or, with prepare, as the runtime
// does with a Preparer: Prepare of each batch while Write of the one
// before runs, on another goroutine. check sees what Prepare staged for
// each batch before it is written.
func writeBatches(t *testing.T, s *Sink, bs []pipeline.Batch, prepare bool, check func(k int, a *staged)) {
	t.Helper()
	ctx := context.Background()
	if prepare {
		s.Prepare(ctx, bs[0])
	}
	for k, b := range bs {
		if prepare {
			check(k, s.ahead[b[0]])
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
		writeBatches(t, s, prepareBatches(), prepare, func(k int, a *staged) {
			if a == nil {
				t.Fatalf("batch %d was not staged by Prepare", k)
			}
		})
		if prepare && len(s.ahead) != 0 {
			t.Errorf("%d prepared batches left after every batch was written", len(s.ahead))
		}
		out := map[string][]map[string]any{}
		for _, tbl := range tables {
			out[tbl] = dump(t, db, tbl, "created_at", "updated_at", "first_seen", "last_seen", "run_id")
		}
		return out
	}
	sameTables(t, tables, read(t, false), read(t, true), "with Prepare")
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

// TestPrepareCopiesNewAddressesIntegration writes batches of addresses
// marked NotInInventory as the runtime does with a Preparer, and without
// Prepare or the mark: the tables must be the same. Prepare copies a
// batch straight into ip_inventory only when that is safe, and stages it
// otherwise: while its ASN rows are not stored yet, when it shares an
// address with the batch being written, and when the mark is wrong (the
// copy fails on the stored address).
func TestPrepareCopiesNewAddressesIntegration(t *testing.T) {
	batches := func() []pipeline.Batch {
		var out []pipeline.Batch
		for k := range 6 {
			var b pipeline.Batch
			for i := range 40 {
				r := withSessions(rec(fmt.Sprintf("10.30.%d.%d", k, i)), int64(1+i%3), t0.Add(-time.Hour), t0)
				b = append(b, withASN(withMaxMind(r, "NL"), int64(64600+i%5), "AS Org", "NL", "ripencc"))
			}
			out = append(out, b)
		}
		// Batch 1 is prepared while batch 0, which stores the first ASN
		// rows, is written: one ASN of its own keeps it from depending on
		// which finishes first.
		out[1] = append(out[1], withASN(rec("10.30.8.1"), 64610, "AS Other", "NL", "ripencc"))
		out[3] = append(out[3], withASN(rec("10.30.2.5"), 64601, "AS Org", "NL", "ripencc")) // in the batch being written
		out[4] = append(out[4], withASN(rec("10.30.0.7"), 64602, "AS Org", "NL", "ripencc")) // stored: the mark is wrong
		out[5] = append(out[5], withASN(rec("10.30.9.1"), 64999, "AS New", "NL", "ripencc")) // an ASN not stored yet
		return out
	}
	// The first two batches' ASN rows are not all stored when they are
	// prepared.
	wantCopied := []bool{false, false, true, false, false, false}
	tables := []string{"ip_inventory", "asn_inventory"}
	read := func(t *testing.T, prepare bool) map[string][]map[string]any {
		db := testdb.Migrated(t, testdb.PostgresURL(t))
		s := newTestSink(t, db, t0, nil)
		defer s.Close()
		bs := batches()
		for _, b := range bs {
			for _, r := range b {
				r.NotInInventory = prepare
			}
		}
		writeBatches(t, s, bs, prepare, func(k int, a *staged) {
			if a == nil || a.inserted != wantCopied[k] {
				t.Errorf("batch %d: staged %+v, want copied into ip_inventory: %v", k, a, wantCopied[k])
			}
		})
		checkCounters(t, db)
		out := map[string][]map[string]any{}
		for _, tbl := range tables {
			out[tbl] = dump(t, db, tbl) // the clock is fixed: every column must match
		}
		return out
	}
	sameTables(t, tables, read(t, false), read(t, true), "with Prepare and the mark")
}

// TestCopyableIntegration: Prepare copies a batch ahead of the writer
// lock only when every row is fresh, none shares its address with
// another batch in flight (whose insert could then wait on Prepare's
// transaction, which waits for that batch's Write to finish), and every
// ASN row is stored.
func TestCopyableIntegration(t *testing.T) {
	db := testdb.Migrated(t, testdb.PostgresURL(t))
	s := newTestSink(t, db, t0, nil)
	write(t, s, withASN(rec("10.40.0.1"), 64700, "AS Org", "NL", "ripencc"))
	// Stored by another writer: this sink must look for it.
	execSQL(t, db, "INSERT INTO asn_inventory (asn_number, first_seen, last_seen, created_at, updated_at) VALUES (64702, $1, $1, $1, $1)", t0)
	plan := func(fresh bool, asn int64, ips ...string) []*row {
		var b pipeline.Batch
		for _, ip := range ips {
			r := withASN(rec(ip), asn, "AS Org", "NL", "ripencc")
			r.NotInInventory = fresh
			b = append(b, r)
		}
		return s.plan(b).rows
	}
	tx, err := s.db.(stager).beginUnlocked(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.rollback(context.Background()) //nolint:errcheck
	c := tx.(copier)
	writing := rec("10.40.1.9")
	s.inflight = map[*pipeline.Record]map[string]bool{writing: {"10.40.1.9": true}}
	for _, tt := range []struct {
		name string
		rows []*row
		want bool
	}{
		{"fresh, ASN stored", plan(true, 64700, "10.40.1.1", "10.40.1.2"), true},
		{"an address of the batch being written", plan(true, 64700, "10.40.1.1", "10.40.1.9"), false},
		{"not fresh", plan(false, 64700, "10.40.1.1"), false},
		{"ASN not stored", plan(true, 64701, "10.40.1.1"), false},
		{"ASN stored by another writer", plan(true, 64702, "10.40.1.1"), true},
	} {
		if got := s.copyable(context.Background(), c, tt.rows[0].records[0], tt.rows); got != tt.want {
			t.Errorf("%s: copyable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestTwoWritersSameNewAddressIntegration: process B has copied a new
// address ahead (Prepare of its next batch) and waits for the writer
// lock to write the batch before, while process A holds that lock and
// writes the same address. A waits for a transaction that waits for A,
// which PostgreSQL cannot see: A must give up on the row, let B through
// and write its batch again.
func TestTwoWritersSameNewAddressIntegration(t *testing.T) {
	defer func(d time.Duration) { rowLockTimeout = d }(rowLockTimeout)
	rowLockTimeout = 300 * time.Millisecond
	app := fmt.Sprintf("inventory-writer-a-%d", time.Now().UnixNano())
	url := testdb.PostgresURL(t)
	dbA := testdb.Migrated(t, url+"&application_name="+app)
	dbB := testdb.Open(t, url)
	a, b := newTestSink(t, dbA, t0, nil), newTestSink(t, dbB, t0, nil)
	defer b.Close()
	write(t, a, withASN(rec("10.50.0.1"), 64800, "AS Org", "NL", "ripencc")) // the ASN row is stored
	batch := func(fresh bool, ip string) pipeline.Batch {
		r := withASN(withSessions(rec(ip), 2, t0.Add(-time.Hour), t0), 64800, "AS Org", "NL", "ripencc")
		r.NotInInventory = fresh
		return pipeline.Batch{r}
	}
	bNow, bNext, aBatch := batch(false, "10.50.1.1"), batch(true, "10.50.2.1"), batch(false, "10.50.2.1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b.Prepare(ctx, bNow)
	b.Prepare(ctx, bNext)
	if st := b.ahead[bNext[0]]; st == nil || !st.inserted {
		t.Fatalf("B's next batch was not copied ahead: %+v", st)
	}
	aDone := make(chan error, 1)
	go func() { aDone <- a.Write(ctx, aBatch) }()
	// Wait until A holds the writer lock and waits for B's copy.
	for waiting := 0; waiting == 0; time.Sleep(10 * time.Millisecond) {
		if err := dbB.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE application_name = $1 AND wait_event_type = 'Lock' AND wait_event = 'transactionid'`, app).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Write(ctx, bNow); err != nil {
		t.Fatalf("B's batch: %v", err)
	}
	if err := b.Write(ctx, bNext); err != nil {
		t.Fatalf("B's batch copied ahead: %v", err)
	}
	if err := <-aDone; err != nil {
		t.Fatalf("A's batch: %v", err)
	}
	if n := count(t, dbA, "ip_inventory"); n != 3 {
		t.Errorf("ip_inventory has %d rows, want 3", n)
	}
	checkCounters(t, dbA)
}

// storeASNs stores the ASN rows first to last, as an earlier run would
// have, so that batches pointing at them may be copied ahead.
func storeASNs(t *testing.T, db *store.DB, first, last int64) {
	t.Helper()
	execSQL(t, db, `INSERT INTO asn_inventory (asn_number, organization_name, organization_country, rir_registry, first_seen, last_seen, created_at, updated_at)
SELECT a, 'AS Org', 'NL', 'ripencc', $1, $1, $1, $1 FROM generate_series($2::bigint, $3::bigint) AS a`, t0, first, last)
}

// checkedTables checks the ASN counters against ip_inventory and returns
// every column of tables (the clock is fixed, so all must match).
func checkedTables(t *testing.T, db *store.DB, tables []string) map[string][]map[string]any {
	t.Helper()
	checkCounters(t, db)
	out := map[string][]map[string]any{}
	for _, tbl := range tables {
		out[tbl] = dump(t, db, tbl)
	}
	return out
}

// TestLaterCopyOfAnEarlierAddressIntegration: the runtime calls Prepare
// on goroutines of their own, so the Prepare of a later batch can copy an
// address ahead before the earlier batch that also holds it registers.
// The earlier batch's Write then waits for a row of a transaction that
// commits only after it: it must give up on the row, roll the later copy
// back and write again, and the later batch must then write all itself.
func TestLaterCopyOfAnEarlierAddressIntegration(t *testing.T) {
	defer func(d time.Duration) { rowLockTimeout = d }(rowLockTimeout)
	rowLockTimeout = 300 * time.Millisecond
	batch := func(ips ...string) pipeline.Batch {
		var b pipeline.Batch
		for _, ip := range ips {
			r := withASN(withSessions(rec(ip), 2, t0.Add(-time.Hour), t0), 64950, "AS Org", "NL", "ripencc")
			r.NotInInventory = true
			b = append(b, r)
		}
		return b
	}
	tables := []string{"ip_inventory", "asn_inventory"}
	read := func(t *testing.T, prepare bool) map[string][]map[string]any {
		db := testdb.Migrated(t, testdb.PostgresURL(t))
		storeASNs(t, db, 64950, 64950)
		s := newTestSink(t, db, t0, nil)
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		earlier, later := batch("10.70.0.1", "10.70.0.2"), batch("10.70.0.2", "10.70.0.3")
		if prepare {
			s.Prepare(ctx, later)
			if st := s.ahead[later[0]]; st == nil || !st.inserted {
				t.Fatalf("the later batch was not copied ahead: %+v", st)
			}
			s.Prepare(ctx, earlier)
		}
		for i, b := range []pipeline.Batch{earlier, later} {
			if err := s.Write(ctx, b); err != nil {
				t.Fatalf("Write batch %d: %v", i, err)
			}
		}
		return checkedTables(t, db, tables)
	}
	sameTables(t, tables, read(t, false), read(t, true), "with the later batch copied ahead")
}

// TestConcurrentPreparesIntegration writes batches of new addresses as
// the runtime does: the Prepares of two batches at once, beside Write of
// the batch before. Every third batch shares no address with another and
// is copied ahead; the other two of each three share ten addresses, and at
// most one of them may be copied (a copy waiting on the other's would wait
// for good). The tables must be those of Write alone, within seconds.
func TestConcurrentPreparesIntegration(t *testing.T) {
	batches := func() []pipeline.Batch {
		var out []pipeline.Batch
		for k := range 12 {
			var b pipeline.Batch
			for i := range 30 {
				n := k*30 + i
				if k%3 == 2 && i < 10 {
					n -= 30 // the batch before's first ten
				}
				r := withSessions(rec(fmt.Sprintf("10.60.%d.%d", n/250, n%250)), int64(1+n%4), t0.Add(-time.Hour), t0)
				b = append(b, withASN(withMaxMind(r, "NL"), int64(64900+n%3), "AS Org", "NL", "ripencc"))
			}
			out = append(out, b)
		}
		return out
	}
	tables := []string{"ip_inventory", "asn_inventory"}
	read := func(t *testing.T, prepare bool) map[string][]map[string]any {
		db := testdb.Migrated(t, testdb.PostgresURL(t))
		// Every ASN row is stored, so only the addresses decide.
		storeASNs(t, db, 64900, 64902)
		s := newTestSink(t, db, t0, nil)
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		bs := batches()
		for _, b := range bs {
			for _, r := range b {
				r.NotInInventory = prepare
			}
		}
		copied := make([]bool, len(bs))
		if !prepare {
			for k, b := range bs {
				if err := s.Write(ctx, b); err != nil {
					t.Fatalf("Write batch %d: %v", k, err)
				}
			}
		} else {
			// As the runtime: a batch goes to Write once prepared, and
			// two more may be in Prepare meanwhile.
			type preparing struct {
				k    int
				done chan struct{}
			}
			queue := make(chan preparing, 1)
			go func() {
				defer close(queue)
				for k := range bs {
					p := preparing{k, make(chan struct{})}
					go func() { defer close(p.done); s.Prepare(ctx, bs[k]) }()
					queue <- p
				}
			}()
			for p := range queue {
				<-p.done
				s.mu.Lock()
				copied[p.k] = s.ahead[bs[p.k][0]] != nil && s.ahead[bs[p.k][0]].inserted
				s.mu.Unlock()
				if err := s.Write(ctx, bs[p.k]); err != nil {
					t.Fatalf("Write batch %d: %v", p.k, err)
				}
			}
			for k := 0; k < len(bs); k += 3 {
				if !copied[k] || (copied[k+1] && copied[k+2]) {
					t.Errorf("batches %d to %d copied ahead: %v; want the first, and not both others", k, k+2, copied[k:k+3])
				}
			}
		}
		return checkedTables(t, db, tables)
	}
	sameTables(t, tables, read(t, false), read(t, true), "with concurrent Prepares and the mark")
}

// TestCopiedBatchFillsSessionsIntegration shows a batch Prepare copies
// into ip_inventory fills its sessions in Prepare's transaction, before
// the writer lock: the session row is locked by then, and filled once the
// batch is written.
func TestCopiedBatchFillsSessionsIntegration(t *testing.T) {
	ctx := context.Background()
	db := testdb.Migrated(t, testdb.PostgresURL(t))
	ts := store.FormatTime(t0.Add(-time.Hour))
	execSQL(t, db, `INSERT INTO asn_inventory (asn_number, organization_name, first_seen, last_seen, unique_ip_count, total_session_count, enrichment, created_at, updated_at)
VALUES (64500, 'AS Org', $1, $1, 0, 0, '{}', $1, $1)`, ts)
	execSQL(t, db, `INSERT INTO session_summaries (session_id, enrichment) VALUES ('json-only', '{"session":{"198.51.100.7":{}}}'), ('other', '{"session":{"198.51.100.8":{}}}')`)
	r := withASN(withSessions(rec("198.51.100.7"), 1, first, last), 64500, "AS Org", "", "")
	r.NotInInventory = true
	b := pipeline.Batch{r}
	s := newTestSink(t, db, t0, nil)
	defer s.Close()
	s.Prepare(ctx, b)
	if a := s.ahead[b[0]]; a == nil || !a.inserted {
		t.Fatalf("the batch was not copied ahead: %+v", a)
	}
	_, err := db.Pool.Exec(ctx, "SELECT 1 FROM session_summaries WHERE session_id = 'json-only' FOR UPDATE NOWAIT")
	if err == nil {
		t.Error("the session is not locked after Prepare: its fill waits for Write")
	}
	write(t, s, b...)
	got := testdb.Strings(t, db, "SELECT session_id, COALESCE(source_ip, 'NULL') FROM session_summaries ORDER BY session_id", 2)
	if want := [][]string{{"json-only", "198.51.100.7"}, {"other", "NULL"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("sessions = %v, want %v", got, want)
	}
}
