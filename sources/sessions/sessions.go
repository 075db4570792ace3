package sessions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/snapshots"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

const sampleYAML = `since: ""        # RFC 3339 or YYYY-MM-DD; empty = no lower bound
until: ""        # exclusive; empty = no upper bound
chunk_size: 10000
resume: false
`

// Spec registers the sessions source.
var Spec = pipeline.SourceSpec("sessions",
	"Backfill session snapshots in a window: enrich the sessions' addresses missing from ip_inventory, then fill snapshots in resumable chunks.",
	sampleYAML, DefaultConfig, New)

// Config holds the options of the sessions source.
type Config struct {
	// Since and Until bound the window by first_event_at (Until exclusive);
	// RFC 3339 or YYYY-MM-DD (UTC), empty for open.
	Since string `koanf:"since"`
	Until string `koanf:"until"`
	// ChunkSize is the number of sessions per snapshot chunk.
	ChunkSize int `koanf:"chunk_size"`
	// Resume continues the sweep after the window's checkpoint.
	Resume bool `koanf:"resume"`
}

// DefaultConfig returns the defaults: all time, 10,000 sessions per chunk.
func DefaultConfig() *Config {
	return &Config{ChunkSize: snapshots.DefaultChunkSize}
}

// Validate checks the options without I/O.
func (c *Config) Validate() error {
	if _, err := c.window(); err != nil {
		return err
	}
	if c.ChunkSize < 1 || c.ChunkSize > snapshots.MaxChunkSize {
		return fmt.Errorf("chunk_size must be between 1 and %d, got %d", snapshots.MaxChunkSize, c.ChunkSize)
	}
	return nil
}

func (c *Config) window() (snapshots.Window, error) {
	var w snapshots.Window
	var err error
	if w.Since, err = ParseTime(c.Since); err != nil {
		return w, fmt.Errorf("since: %w", err)
	}
	if w.Until, err = ParseTime(c.Until); err != nil {
		return w, fmt.Errorf("until: %w", err)
	}
	if !w.Since.IsZero() && !w.Until.IsZero() && !w.Since.Before(w.Until) {
		return w, fmt.Errorf("%w: since %s is not before until %s", snapshots.ErrWindow, c.Since, c.Until)
	}
	return w, nil
}

// ParseTime reads a window bound: RFC 3339, or YYYY-MM-DD as midnight UTC;
// empty is the zero time (an open bound).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w %q: use RFC 3339 (2025-01-31T12:00:00Z) or YYYY-MM-DD", ErrTime, s)
}

// ErrTime is returned for a window bound in an unknown format.
var ErrTime = errors.New("unreadable time")

// pollEvery is how often phase 2 checks whether phase 1 is committed.
const pollEvery = 50 * time.Millisecond

// counterDuplicates is the dedupe stage's run counter of dropped records
// (stages/dedupe.CounterDuplicates).
const counterDuplicates = "duplicates"

// Source is the sessions source.
type Source struct {
	db       *store.DB
	cfg      Config
	window   snapshots.Window
	log      *slog.Logger
	progress *pipeline.Progress
}

var (
	_ pipeline.Source = (*Source)(nil)
	_ pipeline.Sizer  = (*Source)(nil)
)

// New builds the source.
func New(env pipeline.Env, cfg *Config) (pipeline.Source, error) {
	if env.Store == nil {
		return nil, snapshots.ErrNoStore
	}
	w, err := cfg.window()
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	env = env.WithDefaults()
	s := &Source{db: env.Store, cfg: *cfg, window: w, log: env.Logger, progress: env.Progress}
	return s, nil
}

// missingSQL returns the addresses of the window's sessions lacking a
// snapshot that have no enriched inventory row, with the statistics of all
// their sessions, in address order. The OFFSET fence makes both engines
// compute each session's address once (see sources/staleips).
func missingSQL(d store.Dialect, w snapshots.Window) (string, []any) {
	cond, args := w.Where(d, 1)
	fence := "LIMIT -1 OFFSET 0"
	if d == store.Postgres {
		fence = "OFFSET 0"
	}
	return `WITH pending AS (
  SELECT DISTINCT ` + store.SessionIP(d, "s") + ` AS ip
  FROM session_summaries AS s
  WHERE s.enrichment_at IS NULL` + cond + `
), missing AS (
  SELECT p.ip FROM pending AS p
  WHERE p.ip IS NOT NULL AND p.ip <> ''
    AND NOT EXISTS (SELECT 1 FROM ip_inventory AS i WHERE i.ip_address = p.ip AND i.enrichment_updated_at IS NOT NULL)
), sessions AS (
  SELECT ` + store.SessionIP(d, "a") + ` AS ip, a.first_event_at, a.last_event_at
  FROM session_summaries AS a
  ` + fence + `
)
SELECT m.ip, MIN(x.first_event_at), MAX(x.last_event_at), COUNT(*)
FROM missing AS m JOIN sessions AS x ON x.ip = m.ip
GROUP BY m.ip
ORDER BY m.ip`, args
}

// Total returns the number of addresses phase 1 will emit.
func (s *Source) Total(ctx context.Context) (int64, error) {
	q, args := missingSQL(s.db.Dialect, s.window)
	var n int64
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM ("+q+") AS m", args, &n); err != nil {
		return 0, fmt.Errorf("sessions: count addresses: %w", err)
	}
	return n, nil
}

// Run emits the addresses to enrich, waits until they are committed, then
// sweeps the window's snapshots.
func (s *Source) Run(ctx context.Context, emit func(*pipeline.Record) error) error {
	emitted, err := s.emitMissing(ctx, emit)
	if err != nil {
		return err
	}
	if err := s.awaitCommitted(ctx, emitted); err != nil {
		return err
	}
	b, err := snapshots.NewBackfill(s.db, snapshots.Options{Window: s.window, ChunkSize: s.cfg.ChunkSize, Resume: s.cfg.Resume}, s.log, s.progress)
	if err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	if _, err := b.Run(ctx); err != nil {
		return err
	}
	return nil
}

func (s *Source) emitMissing(ctx context.Context, emit func(*pipeline.Record) error) (int64, error) {
	q, args := missingSQL(s.db.Dialect, s.window)
	var n int64
	err := s.db.Query(ctx, q, args, func(scan func(...any) error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := s.read(scan)
		if err != nil {
			return fmt.Errorf("read address: %w", err)
		}
		if err := emit(r); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		if errors.Is(err, pipeline.ErrStopped) || ctx.Err() != nil {
			return n, err
		}
		return n, fmt.Errorf("sessions: query addresses: %w", err)
	}
	s.log.Info("addresses to enrich before the snapshot backfill", "count", n)
	return n, nil
}

func (s *Source) read(scan func(...any) error) (*pipeline.Record, error) {
	var ip string
	var count int64
	if s.db.Dialect == store.Postgres {
		var first, last *time.Time
		if err := scan(&ip, &first, &last, &count); err != nil {
			return nil, err
		}
		r := pipeline.NewRecord(ip)
		r.Sessions = count
		if first != nil {
			r.FirstSeen = first.UTC()
		}
		if last != nil {
			r.LastSeen = last.UTC()
		}
		return r, nil
	}
	var first, last sql.NullString
	if err := scan(&ip, &first, &last, &count); err != nil {
		return nil, err
	}
	r := pipeline.NewRecord(ip)
	r.Sessions = count
	// An unreadable timestamp stays zero ("unknown"): the sink keeps what
	// the inventory had.
	if first.Valid {
		r.FirstSeen, _ = store.ParseTime(first.String)
	}
	if last.Valid {
		r.LastSeen, _ = store.ParseTime(last.String)
	}
	return r, nil
}

// awaitCommitted returns once every emitted record is committed or was
// dropped as a duplicate, or when ctx is done (the run stopping or
// failing).
func (s *Source) awaitCommitted(ctx context.Context, emitted int64) error {
	settled := func() bool {
		dup, _ := s.progress.Value(counterDuplicates)
		return s.progress.Committed()+dup >= emitted
	}
	if settled() {
		return nil
	}
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if settled() {
				return nil
			}
		}
	}
}
