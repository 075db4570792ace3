package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
	"github.com/cowrie-enrich/cowrie-enrich/migrations"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// Dataset is the shape of a synthetic honeypot database.
type Dataset struct {
	// Sessions is the number of session_summaries rows; session j comes
	// from address j mod IPs, so every address has Sessions/IPs sessions.
	Sessions int
	// IPs is the number of distinct attacker addresses.
	IPs int
	// NullEvery makes one session in NullEvery keep its address only in
	// its JSON with a NULL source_ip, as upstream's loader leaves new
	// addresses; 0 gives every session a source_ip.
	NullEvery int
}

// MaxIPs is the largest dataset: its addresses are 11.0.0.0 onwards.
const MaxIPs = 1 << 24

// Validate checks the shape.
func (d Dataset) Validate() error {
	switch {
	case d.IPs < 1 || d.IPs > MaxIPs:
		return fmt.Errorf("ips must be between 1 and %d, got %d", MaxIPs, d.IPs)
	case d.Sessions < d.IPs:
		return fmt.Errorf("sessions (%d) must be at least ips (%d): every address has a session", d.Sessions, d.IPs)
	case d.NullEvery < 0:
		return fmt.Errorf("null_every must be 0 or positive, got %d", d.NullEvery)
	}
	return nil
}

// Addr returns address i of a dataset: 11.0.0.0 + i.
func Addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})
}

// countries spreads the simulated networks over a few registries.
var countries = []struct{ iso, name, registry string }{
	{"CN", "China", "apnic"}, {"US", "United States", "arin"}, {"RU", "Russia", "ripencc"},
	{"BR", "Brazil", "lacnic"}, {"DE", "Germany", "ripencc"}, {"IN", "India", "apnic"},
	{"VN", "Vietnam", "apnic"}, {"ZA", "South Africa", "afrinic"}, {"NL", "Netherlands", "ripencc"},
	{"KR", "South Korea", "apnic"},
}

// World returns the simulated internet of a dataset of ips addresses: one
// /24 per 256 addresses over 4,000 ASNs; every tenth /24 has no MaxMind
// ASN, so about 10% of the addresses go to Team Cymru.
func World(ips int) []simulate.Network {
	n := (ips + 255) / 256
	out := make([]simulate.Network, n)
	for k := range out {
		c := countries[k%len(countries)]
		asn := uint32(100000 + k%4000)
		out[k] = simulate.Network{
			Prefix:  netip.PrefixFrom(Addr(k<<8), 24),
			Country: c.iso, CountryName: c.name, City: c.name + " City",
			ASN: asn, Org: fmt.Sprintf("SIM-NET-%d", asn), Registry: c.registry, Allocated: "2015-01-01",
			NoMaxMindASN: k%10 == 9,
		}
	}
	return out
}

// ErrNotBench is returned by Prepare for a database holding sessions the
// bench did not generate.
var ErrNotBench = errors.New("the database holds sessions the bench did not generate; give the bench an empty database of its own")

// markerTable marks a bench database with the shape of its sessions.
const markerTable = "cowrie_enrich_bench"

// Prepare migrates db and makes its sessions those of d: it keeps them
// when the database already holds exactly d, otherwise it generates them
// (progress is told through say). Either way it empties the inventory.
func Prepare(ctx context.Context, db *store.DB, d Dataset, say func(format string, args ...any)) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if _, err := migrations.Apply(ctx, db); err != nil {
		return err
	}
	if err := db.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+markerTable+" (sessions BIGINT NOT NULL, ips BIGINT NOT NULL, null_every BIGINT NOT NULL)"); err != nil {
		return fmt.Errorf("mark bench database: %w", err)
	}
	var marked int
	var have Dataset
	err := db.Query(ctx, "SELECT sessions, ips, null_every FROM "+markerTable, nil, func(scan func(...any) error) error {
		marked++
		return scan(&have.Sessions, &have.IPs, &have.NullEvery)
	})
	if err != nil {
		return fmt.Errorf("read bench marker: %w", err)
	}
	if marked == 0 {
		var any int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM session_summaries LIMIT 1) AS s", nil, &any); err != nil {
			return fmt.Errorf("look for sessions: %w", err)
		}
		if any > 0 {
			return ErrNotBench
		}
	}
	if marked != 1 || have != d {
		say("generating %d sessions over %d addresses", d.Sessions, d.IPs)
		if err := generate(ctx, db, d); err != nil {
			return err
		}
	}
	return Reset(ctx, db)
}

// Reset empties the inventory tables (and everything a run derives from
// them), so the next run finds every address stale, and restores the
// sessions a run fills in: source_ip of those known only from their JSON,
// and the snapshots.
func Reset(ctx context.Context, db *store.DB) error {
	stmts := []string{
		"DELETE FROM ip_inventory",
		"DELETE FROM asn_inventory",
		"DELETE FROM cowrie_enrich_dead_letters",
		"DELETE FROM enrichment_cache",
		"DELETE FROM cowrie_enrich_quota",
		restoreSessions,
	}
	if db.Dialect == store.Postgres {
		stmts[0], stmts[1] = "TRUNCATE ip_inventory, asn_inventory", "SELECT 1"
	}
	for _, q := range stmts {
		if err := db.Exec(ctx, q); err != nil {
			return fmt.Errorf("reset bench database: %w", err)
		}
	}
	return vacuum(ctx, db)
}

// restoreSessions undoes what a run writes to the sessions. Generated
// sessions carry their address in source_ip or, for the JSON-only ones,
// under "session" in their JSON, so those are found again by their JSON.
const restoreSessions = `UPDATE session_summaries
SET source_ip = CASE WHEN CAST(enrichment AS TEXT) LIKE '{"session"%' THEN NULL ELSE source_ip END,
    enrichment_at = NULL, snapshot_asn = NULL, snapshot_country = NULL, snapshot_ip_type = NULL
WHERE enrichment_at IS NOT NULL OR (source_ip IS NOT NULL AND CAST(enrichment AS TEXT) LIKE '{"session"%')`

// vacuum refreshes the planner's statistics (and PostgreSQL's visibility
// map), as autovacuum would on a real database.
func vacuum(ctx context.Context, db *store.DB) error {
	q := "ANALYZE "
	if db.Dialect == store.Postgres {
		q = "VACUUM ANALYZE "
	}
	for _, table := range []string{"session_summaries", "ip_inventory", "asn_inventory"} {
		if err := db.Exec(ctx, q+table); err != nil {
			return fmt.Errorf("analyze bench database: %w", err)
		}
	}
	return nil
}

// generate replaces the sessions with those of d, server-side.
func generate(ctx context.Context, db *store.DB, d Dataset) error {
	steps := []string{"DELETE FROM " + markerTable, "DELETE FROM session_summaries"}
	if db.Dialect == store.Postgres {
		steps[1] = "TRUNCATE session_summaries"
	}
	for _, q := range steps {
		if err := db.Exec(ctx, q); err != nil {
			return fmt.Errorf("clear sessions: %w", err)
		}
	}
	if err := db.Exec(ctx, sessionsSQL(db.Dialect), d.Sessions, d.IPs, d.NullEvery); err != nil {
		return fmt.Errorf("generate sessions: %w", err)
	}
	if err := db.Exec(ctx, "INSERT INTO "+markerTable+" (sessions, ips, null_every) VALUES (?, ?, ?)", d.Sessions, d.IPs, d.NullEvery); err != nil {
		return fmt.Errorf("mark bench database: %w", err)
	}
	return nil
}

// sessionsSQL generates the sessions (parameters: sessions, ips,
// null_every). Session j comes from address j mod ips, started within the
// 90 days before now and lasted up to ten minutes; its JSON is a DShield
// answer, or for the JSON-only sessions upstream's per-session shape.
func sessionsSQL(d store.Dialect) string {
	const cols = `INSERT INTO session_summaries (session_id, source_ip, first_event_at, last_event_at, enrichment, created_at, updated_at)
`
	if d == store.Postgres {
		return cols + `SELECT 'bench-' || j,
  CASE WHEN $3 > 0 AND j % $3 = 0 THEN NULL ELSE ip END,
  t, t + (j % 600) * interval '1 second',
  CASE WHEN $3 > 0 AND j % $3 = 0
       THEN '{"session":{"' || ip || '":{"dshield":{"ip":{"number":"' || ip || '","count":3}}}}}'
       ELSE '{"dshield":{"ip":{"number":"' || ip || '","count":3,"attacks":12}}}' END::json,
  now(), now()
FROM generate_series(0, $1::bigint - 1) AS j
CROSS JOIN LATERAL (SELECT '11.' || (j % $2 >> 16 & 255) || '.' || (j % $2 >> 8 & 255) || '.' || (j % $2 & 255) AS ip,
  date_trunc('second', now()) - ((j * 7919) % 7776000) * interval '1 second' AS t) AS a`
	}
	// SQLite has no generate_series in this build: a recursive CTE counts.
	return cols + `WITH RECURSIVE n(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM n WHERE j + 1 < ?1),
a AS (SELECT j, '11.' || ((j % ?2) >> 16 & 255) || '.' || ((j % ?2) >> 8 & 255) || '.' || ((j % ?2) & 255) AS ip,
  unixepoch('now') - ((j * 7919) % 7776000) AS t FROM n)
SELECT 'bench-' || j,
  CASE WHEN ?3 > 0 AND j % ?3 = 0 THEN NULL ELSE ip END,
  datetime(t, 'unixepoch') || '.000000', datetime(t + j % 600, 'unixepoch') || '.000000',
  CASE WHEN ?3 > 0 AND j % ?3 = 0
       THEN '{"session":{"' || ip || '":{"dshield":{"ip":{"number":"' || ip || '","count":3}}}}}'
       ELSE '{"dshield":{"ip":{"number":"' || ip || '","count":3,"attacks":12}}}' END,
  datetime('now') || '.000000', datetime('now') || '.000000'
FROM a`
}

// Settle writes PostgreSQL's dirty pages out (CHECKPOINT) before a
// measurement, so that each one starts from the same state rather than
// paying for the writes of the one before it. It needs the
// pg_checkpoint role or a superuser; without either the bench goes on
// with a warning. SQLite has nothing to settle.
func Settle(ctx context.Context, db *store.DB) error {
	if db.Dialect != store.Postgres {
		return nil
	}
	if err := db.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint before measuring (grant pg_checkpoint to the bench's user for steadier figures): %w", err)
	}
	return nil
}
