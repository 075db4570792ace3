package inventory

import (
	"fmt"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// storedCounters reads an ASN's counters as asn_inventory holds them,
// without pending changes.
func storedCounters(t *testing.T, db *store.DB, asn int64) string {
	t.Helper()
	var ips, sessions int64
	if err := queryRow(t, db, "SELECT unique_ip_count, total_session_count FROM asn_inventory WHERE asn_number = $1", []any{asn}, &ips, &sessions); err != nil {
		t.Fatalf("read ASN %d: %v", asn, err)
	}
	return fmt.Sprintf("%d/%d", ips, sessions)
}

// leftPending commits what another writer leaves behind: an ASN row whose
// counters do not count its address yet, the address with its sessions,
// and the change pending.
func leftPending(t *testing.T, db *store.DB, asn int64, ip string, sessions int) {
	t.Helper()
	ts := store.FormatTime(t0.Add(-time.Hour))
	execSQL(t, db, `INSERT INTO asn_inventory (asn_number, organization_name, first_seen, last_seen, unique_ip_count, total_session_count, enrichment, created_at, updated_at)
VALUES ($1, 'Net', $2, $2, 0, 0, '{}', $2, $2)`, asn, ts)
	execSQL(t, db, `INSERT INTO ip_inventory (ip_address, current_asn, first_seen, last_seen, session_count, enrichment, created_at, updated_at)
VALUES ($1, $2, $3, $3, $4, '{}', $3, $3)`, ip, asn, ts, sessions)
	execSQL(t, db, `INSERT INTO cowrie_enrich_asn_pending (asn_number, ips, sessions, seen_at) VALUES ($1, 1, $2, $3)`, asn, sessions, ts)
}

// TestPendingCountersIntegration follows the counters of one ASN through a
// run of foldEvery+2 batches: the first batch folds what a stopped run
// left pending, the next ones leave their changes pending, the
// foldEvery+1-th folds them, and Close folds the rest. Counters with their
// pending changes are exact after every batch. (PostgreSQL only: SQLite
// applies counter changes in place.)
func TestPendingCountersIntegration(t *testing.T) {
	db := testdb.Migrated(t, testdb.PostgresURL(t))
	// A run stopped after committing 198.51.100.1 and its pending change.
	leftPending(t, db, 64520, "198.51.100.1", 3)

	s := newTestSink(t, db, t0, nil)
	batch := func(i int) {
		t.Helper()
		write(t, s, withASN(withSessions(rec(fmt.Sprintf("198.51.101.%d", i)), 2, first, last), 64520, "", "", ""))
		checkCounters(t, db)
	}
	batch(1)
	if got := storedCounters(t, db, 64520); got != "2/5" || count(t, db, "cowrie_enrich_asn_pending") != 0 {
		t.Errorf("after the first batch: stored %s with %d pending, want 2/5 and none", got, count(t, db, "cowrie_enrich_asn_pending"))
	}
	batch(2)
	if got := storedCounters(t, db, 64520); got != "2/5" {
		t.Errorf("after the second batch: stored %s, want 2/5 (its change pending)", got)
	}
	for i := 3; i <= foldEvery+1; i++ {
		batch(i)
	}
	if got, want := storedCounters(t, db, 64520), fmt.Sprintf("%d/%d", foldEvery+2, 3+2*(foldEvery+1)); got != want || count(t, db, "cowrie_enrich_asn_pending") != 0 {
		t.Errorf("after batch %d: stored %s with %d pending, want %s and none", foldEvery+1, got, count(t, db, "cowrie_enrich_asn_pending"), want)
	}
	batch(foldEvery + 2)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := storedCounters(t, db, 64520), fmt.Sprintf("%d/%d", foldEvery+3, 3+2*(foldEvery+2)); got != want || count(t, db, "cowrie_enrich_asn_pending") != 0 {
		t.Errorf("after Close: stored %s with %d pending, want %s and none", got, count(t, db, "cowrie_enrich_asn_pending"), want)
	}
}

// TestRecountDropsPendingIntegration shows an ASN a run recounts, after
// its first batch, drops the changes another writer left pending for it:
// the recount already counts that writer's rows. (PostgreSQL only, like
// pending changes.)
func TestRecountDropsPendingIntegration(t *testing.T) {
	db := testdb.Migrated(t, testdb.PostgresURL(t))
	s := newTestSink(t, db, t0, nil)
	write(t, s, withASN(withSessions(rec("198.51.100.1"), 2, first, last), 64520, "", "", ""))
	// Another process writes an address of AS64530 and leaves its
	// change pending.
	leftPending(t, db, 64530, "198.51.100.2", 4)
	write(t, s, withASN(withSessions(rec("198.51.100.3"), 5, first, last), 64530, "", "", ""))
	checkCounters(t, db)
	if a := readASN(t, db, 64530); a.UniqueIPs != 2 || a.Sessions != 9 {
		t.Errorf("AS64530 with its pending changes: %d IPs, %d sessions, want 2, 9", a.UniqueIPs, a.Sessions)
	}
}

// TestLaterBatchFillsOrganisationIntegration shows a run's later batch
// still fills an organisation field its first batch left empty, once a
// record offers it, while fields already set keep their first value.
func TestLaterBatchFillsOrganisationIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, url string) {
		db := testdb.Migrated(t, url)
		s := newTestSink(t, db, t0, nil)
		write(t, s, withASN(withSessions(rec("198.51.100.1"), 1, first, last), 64540, "First Net", "", ""))
		write(t, s, withASN(withSessions(rec("198.51.100.2"), 1, first, last), 64540, "First Net", "", ""))
		write(t, s, withASN(withSessions(rec("198.51.100.3"), 1, first, last), 64540, "Second Net", "NL", "ripencc"))
		a := readASN(t, db, 64540)
		if got := fmt.Sprintf("%s %s %s %d", a.Org.String, a.Country.String, a.Registry.String, a.UniqueIPs); got != "First Net NL ripencc 3" {
			t.Errorf("AS64540 = %q, want %q", got, "First Net NL ripencc 3")
		}
	})
}

// TestFoldsVacuumPendingIntegration checks that the sink vacuums the
// pending changes after each fold, a batch's and Close's, and only then:
// the rows a fold deletes would otherwise stay for every later fold to
// scan when autovacuum is off or behind. (PostgreSQL only.)
func TestFoldsVacuumPendingIntegration(t *testing.T) {
	db := testdb.Migrated(t, testdb.PostgresURL(t))
	vacuums := func() int64 {
		t.Helper()
		var n int64
		if err := queryRow(t, db, "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'cowrie_enrich_asn_pending'::regclass", nil, &n); err != nil {
			t.Fatalf("read vacuum_count: %v", err)
		}
		return n
	}
	s := newTestSink(t, db, t0, nil)
	write(t, s, withASN(withSessions(rec("198.51.100.1"), 1, first, last), 64520, "", "", ""))
	if n := vacuums(); n != 1 {
		t.Errorf("after the first batch, which folds: %d vacuums, want 1", n)
	}
	write(t, s, withASN(withSessions(rec("198.51.100.2"), 1, first, last), 64520, "", "", ""))
	if n := vacuums(); n != 1 {
		t.Errorf("after the second batch, which does not fold: %d vacuums, want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := vacuums(); n != 2 {
		t.Errorf("after Close's fold: %d vacuums, want 2", n)
	}
}
