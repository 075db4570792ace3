package demodata

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
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
	nets := simulate.Networks()
	pool := make([]string, 0, n/3+1)
	for len(pool) < cap(pool) {
		pool = append(pool, randomPublic(rng, nets))
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

// randomPublic returns an address of the simulated internet: nine times in
// ten inside one of simulate.Networks (so the simulated providers know it),
// otherwise an address no provider knows.
func randomPublic(rng *rand.Rand, nets []simulate.Network) string {
	if rng.IntN(10) == 0 {
		return netip.AddrFrom4([4]byte{151, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))}).String()
	}
	p := nets[rng.IntN(len(nets))].Prefix
	a := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		if rng.IntN(2) == 1 {
			a[i/8] |= 1 << (7 - i%8)
		}
	}
	addr := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		addr = addr.Unmap()
		if b := addr.As4(); b[3] == 0 || b[3] == 255 {
			b[3] = 1 + byte(rng.IntN(254)) // a host, not a network or broadcast address
			addr = netip.AddrFrom4(b)
		}
	}
	return addr.String()
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

// Address returns the session's address as the database holds it: its
// source_ip, or the first key of its enrichment.session JSON.
func (s Session) Address() string {
	if s.SourceIP != nil {
		return *s.SourceIP
	}
	var e struct {
		Session map[string]json.RawMessage `json:"session"`
	}
	_ = json.Unmarshal([]byte(s.Enrichment), &e)
	for k := range e.Session {
		return k // Generate writes exactly one key
	}
	return ""
}
