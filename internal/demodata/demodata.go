package demodata

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// Session is one row of session_summaries.
type Session struct {
	ID         string
	SourceIP   *string // nil: upstream row whose address is only in Enrichment
	FirstEvent time.Time
	LastEvent  time.Time
	Enrichment string // JSON, may be empty
}

// publicV4 are first octets of ranges allocated to public networks, so
// generated attackers look like real ones and are never bogons.
var publicV4 = []byte{5, 23, 31, 37, 45, 46, 61, 77, 78, 89, 91, 103, 109, 115, 117, 118, 121, 125, 141, 159, 162, 167, 176, 178, 185, 193, 195, 212, 213, 218, 222}

// publicV6 are /16s of public IPv6 space.
var publicV6 = []uint16{0x2a01, 0x2a02, 0x2a03, 0x2400, 0x2401, 0x2600, 0x2604, 0x2001}

// Odd addresses mixed into the data: bogons and garbage as honeypot logs
// really contain them.
var (
	Bogons  = []string{"10.0.0.5", "192.168.1.20", "127.0.0.1", "100.64.3.2", "172.16.9.9", "fe80::1", "::1", "224.0.0.251"}
	Garbage = []string{"not-an-ip", "999.1.1.1", "1.2.3", "fe80::1%eth0", "203.0.113.0/24"}
)

// Generate returns n sessions from about n/3 addresses, deterministic for
// seed, with event times in the 90 days before now.
func Generate(seed uint64, n int, now time.Time) []Session {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pool := make([]string, 0, n/3+1)
	for len(pool) < cap(pool) {
		pool = append(pool, randomPublic(rng))
	}
	// Zipf: a few addresses own most sessions, as real attackers do.
	zipf := rand.NewZipf(rng, 1.3, 2, uint64(len(pool)-1))
	out := make([]Session, 0, n)
	for i := range n {
		ip := pool[zipf.Uint64()]
		switch {
		case i%97 == 5:
			ip = Bogons[(i/97)%len(Bogons)]
		case i%89 == 7:
			ip = Garbage[(i/89)%len(Garbage)]
		case i%53 == 3 && netip.MustParseAddr(ip).Is4():
			ip = "::ffff:" + ip // the dual-stack socket spelling
		}
		first := now.Add(-time.Duration(rng.Int64N(int64(90 * 24 * time.Hour)))).Truncate(time.Microsecond)
		last := first.Add(time.Duration(rng.Int64N(int64(10 * time.Minute)))).Truncate(time.Microsecond)
		s := Session{ID: fmt.Sprintf("demo%012x", i), FirstEvent: first, LastEvent: last}
		if i%11 == 4 {
			// Upstream's loader leaves source_ip NULL until the address is
			// in ip_inventory and keeps it in the session JSON.
			b, _ := json.Marshal(map[string]any{"session": map[string]any{ip: map[string]any{"dshield": map[string]any{}}}})
			s.Enrichment = string(b)
		} else {
			s.SourceIP = &ip
		}
		out = append(out, s)
	}
	return out
}

func randomPublic(rng *rand.Rand) string {
	if rng.IntN(10) == 0 {
		var a [16]byte
		hi := publicV6[rng.IntN(len(publicV6))]
		a[0], a[1] = byte(hi>>8), byte(hi)
		for i := 2; i < 16; i++ {
			a[i] = byte(rng.IntN(256))
		}
		return netip.AddrFrom16(a).String()
	}
	return netip.AddrFrom4([4]byte{publicV4[rng.IntN(len(publicV4))], byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))}).String()
}

// Insert writes sessions into session_summaries in one transaction.
func Insert(ctx context.Context, db *store.DB, sessions []Session) error {
	const q = `INSERT INTO session_summaries (session_id, source_ip, first_event_at, last_event_at, enrichment, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`
	now := time.Now()
	enrichment := func(s Session) any {
		if s.Enrichment == "" {
			return nil
		}
		return s.Enrichment
	}
	switch db.Dialect {
	case store.Postgres:
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
		for _, s := range sessions {
			if _, err := tx.Exec(ctx, store.Rebind(q), s.ID, s.SourceIP, s.FirstEvent, s.LastEvent, enrichment(s), now, now); err != nil {
				return fmt.Errorf("insert session %s: %w", s.ID, err)
			}
		}
		return tx.Commit(ctx)
	default:
		tx, err := db.SQL.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		stmt, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, s := range sessions {
			if _, err := stmt.ExecContext(ctx, s.ID, s.SourceIP, store.FormatTime(s.FirstEvent), store.FormatTime(s.LastEvent), enrichment(s), store.FormatTime(now), store.FormatTime(now)); err != nil {
				return fmt.Errorf("insert session %s: %w", s.ID, err)
			}
		}
		return tx.Commit()
	}
}
