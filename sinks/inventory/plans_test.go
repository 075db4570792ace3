package inventory

import (
	"fmt"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// TestForeignKeyChecksProbeTheIndexIntegration grows asn_inventory from
// nothing, as a first run does: the foreign-key check of each inserted
// ip_inventory row must keep probing asn_inventory's primary key once the
// table has grown, not keep the plan made while it was empty and scan it
// whole for every row.
func TestForeignKeyChecksProbeTheIndexIntegration(t *testing.T) {
	db := testdb.Migrated(t, testdb.SingleConnection(t))
	// Autovacuum's ANALYZE would refresh a stale plan by chance.
	execSQL(t, db, "ALTER TABLE asn_inventory SET (autovacuum_enabled = false)")
	execSQL(t, db, "ANALYZE asn_inventory")
	s := newTestSink(t, db, t0, nil)
	batch := func(first, n, asns int) pipeline.Batch {
		var b pipeline.Batch
		for i := first; i < first+n; i++ {
			ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
			asn := int64(64000 + i%asns)
			b = append(b, withASN(withSessions(rec(ip), 1, t0.Add(-time.Hour), t0), asn, "AS", "NL", "ripencc"))
		}
		return b
	}
	// The first batch's checks are planned against a table of a few rows.
	write(t, s, batch(0, 50, 5)...)
	for i := range 10 {
		write(t, s, batch(100+i*300, 300, 3000)...)
	}
	before := testdb.SeqScans(t, db, "asn_inventory")
	write(t, s, batch(5000, 500, 3000)...)
	// The counters' statements may scan the table once each; a check per
	// row may not.
	if scans := testdb.SeqScans(t, db, "asn_inventory") - before; scans > 10 {
		t.Errorf("a batch of 500 new addresses over %d ASNs scanned asn_inventory whole %d times; want index probes",
			count(t, db, "asn_inventory"), scans)
	}
}
