package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Statements counts the statements a PostgreSQL pool sends: plain queries,
// COPYs and each query of a batch. Install it as store.Options.Tracer.
type Statements struct{ n atomic.Int64 }

var (
	_ pipeline.Observer  = (*Stages)(nil)
	_ pgx.QueryTracer    = (*Statements)(nil)
	_ pgx.BatchTracer    = (*Statements)(nil)
	_ pgx.CopyFromTracer = (*Statements)(nil)
)

// Count returns the statements sent so far.
func (s *Statements) Count() int64 { return s.n.Load() }

func (s *Statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	s.n.Add(1)
	return ctx
}

func (s *Statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (s *Statements) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (s *Statements) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) { s.n.Add(1) }

func (s *Statements) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (s *Statements) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	s.n.Add(1)
	return ctx
}

func (s *Statements) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

// Stage is what one component did during a run.
type Stage struct {
	ID      string
	Kind    pipeline.Kind
	Batches int
	In, Out int64
	Busy    time.Duration // time spent in Process or Write, summed over batches
}

// Rate is the component's records per second of its own busy time.
func (s Stage) Rate() float64 {
	if s.Busy <= 0 {
		return 0
	}
	return float64(s.In) / s.Busy.Seconds()
}

// Stages observes a run and adds up, per component, the batches, records
// and busy time.
type Stages struct {
	mu    sync.Mutex
	order []string
	by    map[string]*Stage
}

// Observe implements pipeline.Observer.
func (o *Stages) Observe(e pipeline.BatchEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.by == nil {
		o.by = map[string]*Stage{}
	}
	s := o.by[e.ID]
	if s == nil {
		s = &Stage{ID: e.ID, Kind: e.Kind}
		o.by[e.ID] = s
		o.order = append(o.order, e.ID)
	}
	s.Batches++
	s.In += int64(e.In)
	s.Out += int64(e.Out)
	s.Busy += e.Duration
}

// List returns the components in the order they first reported.
func (o *Stages) List() []Stage {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Stage, len(o.order))
	for i, id := range o.order {
		out[i] = *o.by[id]
	}
	return out
}
