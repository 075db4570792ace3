package cache

import (
	"fmt"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// TestLookupsProbeTablesThatGrewIntegration reads the database tier while
// its tables are empty, as at the start of a first run, and again after
// they grew: the later lookups must probe the indexes, not keep a plan
// made for the empty tables and scan them whole for every batch (which
// made a run's cost grow with the square of its addresses).
func TestLookupsProbeTablesThatGrewIntegration(t *testing.T) {
	db := testdb.Migrated(t, testdb.SingleConnection(t))
	ctx := t.Context()
	for _, table := range []string{"ip_inventory", "enrichment_cache"} {
		// Autovacuum's ANALYZE would invalidate a stale plan by chance.
		if err := db.Exec(ctx, "ALTER TABLE "+table+" SET (autovacuum_enabled = false)"); err != nil {
			t.Fatal(err)
		}
		if err := db.Exec(ctx, "ANALYZE "+table); err != nil {
			t.Fatal(err)
		}
	}
	d := &database{db: db}
	var ips []string
	for i := range 200 {
		ips = append(ips, fmt.Sprintf("10.9.%d.%d", i/100, i%100))
	}
	lookups := func() {
		t.Helper()
		for range 8 {
			if _, err := d.inventory(ctx, ips); err != nil {
				t.Fatal(err)
			}
			if _, err := d.cacheRows(ctx, ips); err != nil {
				t.Fatal(err)
			}
		}
	}
	lookups()
	err := db.Exec(ctx, `INSERT INTO ip_inventory (ip_address, first_seen, last_seen, enrichment)
SELECT '10.8.' || (n / 256) || '.' || (n % 256), now(), now(), '{"maxmind": {"country": "NL"}}'
FROM generate_series(0, 29999) AS n`)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Exec(ctx, `INSERT INTO enrichment_cache (service, cache_key, cache_value, created_at, expires_at)
SELECT 'cymru', '10.8.' || (n / 256) || '.' || (n % 256), '{"asn": 64500}', now(), now() + interval '1 day'
FROM generate_series(0, 29999) AS n`)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]int64{}
	for _, table := range []string{"ip_inventory", "enrichment_cache"} {
		before[table] = testdb.SeqScans(t, db, table)
	}
	lookups()
	for table, n := range before {
		if scans := testdb.SeqScans(t, db, table) - n; scans != 0 {
			t.Errorf("8 lookups of 200 addresses scanned %s (30,000 rows) whole %d times; want index probes only", table, scans)
		}
	}
}
