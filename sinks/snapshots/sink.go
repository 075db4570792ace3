package snapshots

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

const sampleYAML = "{}\n"

// Spec registers the sink under the name "snapshots". It is meant as a side
// sink after a main sink other than inventory (which fills snapshots in its
// own transaction): side sinks see only committed records, so the
// addresses are in ip_inventory when their sessions are filled.
var Spec = pipeline.SinkSpec("snapshots",
	"Fill empty session snapshot columns (ASN, country, IP type, enrichment_at) of the committed addresses from ip_inventory; first writer wins.",
	sampleYAML, DefaultConfig, newSink)

// Config holds the sink's options; it has none yet.
type Config struct{}

// DefaultConfig returns the default options.
func DefaultConfig() *Config { return &Config{} }

// Validate accepts the options.
func (c *Config) Validate() error { return nil }

var (
	_ pipeline.Sink   = (*Sink)(nil)
	_ pipeline.Closer = (*Sink)(nil)
)

// Sink fills the snapshots of the sessions of each batch's addresses with
// one statement per batch.
type Sink struct {
	db       *store.DB
	log      *slog.Logger
	progress *pipeline.Progress
	q        string
}

// New returns a sink writing to env.Store.
func New(env pipeline.Env, _ *Config) (*Sink, error) {
	if env.Store == nil {
		return nil, ErrNoStore
	}
	env = env.WithDefaults()
	s := &Sink{db: env.Store, log: env.Logger, progress: env.Progress}
	switch env.Store.Dialect {
	case store.Postgres, store.SQLite:
		s.q = FillSQL(env.Store.Dialect)
	default:
		return nil, fmt.Errorf("snapshots: unsupported dialect %q", env.Store.Dialect)
	}
	return s, nil
}

func newSink(env pipeline.Env, cfg *Config) (pipeline.Sink, error) {
	s, err := New(env, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Write fills the snapshots of the sessions of the batch's valid, accepted
// addresses. Writing a batch twice changes nothing the second time.
func (s *Sink) Write(ctx context.Context, b pipeline.Batch) error {
	ips := make([]string, 0, len(b))
	for _, r := range b {
		if !r.Rejected() && r.Addr.IsValid() {
			ips = append(ips, r.Addr.String())
		}
	}
	if len(ips) == 0 {
		return nil
	}
	var n int64
	switch s.db.Dialect {
	case store.Postgres:
		err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, NestedLoopsOnly); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, s.q, ips)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return fmt.Errorf("snapshots: fill sessions: %w", err)
		}
	default:
		doc, err := json.Marshal(ips)
		if err != nil {
			return fmt.Errorf("snapshots: encode addresses: %w", err)
		}
		r, err := s.db.SQL.ExecContext(ctx, s.q, string(doc))
		if err != nil {
			return fmt.Errorf("snapshots: fill sessions: %w", err)
		}
		if n, err = r.RowsAffected(); err != nil {
			return fmt.Errorf("snapshots: fill sessions: %w", err)
		}
	}
	s.progress.Add(CounterWritten, n)
	s.log.Debug("session snapshots filled", "batch_size", len(ips), "sessions", n)
	return nil
}

// Close releases nothing: the store belongs to the run.
func (s *Sink) Close() error { return nil }
