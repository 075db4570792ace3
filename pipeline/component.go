package pipeline

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// Source produces records. Run calls emit for each record and returns when
// it has no more or ctx is done; emit blocks while the pipeline is busy
// (backpressure) and returns an error once the run is stopping, which Run
// should return.
type Source interface {
	Run(ctx context.Context, emit func(*Record) error) error
}

// Stage transforms a batch. A per-record failure is marked on the record
// (Record.Fail, Record.Reject) and the record moves on; a returned error
// fails the run. A stage may drop records (dedupe) by leaving them out of
// the returned batch.
type Stage interface {
	Process(ctx context.Context, b Batch) (Batch, error)
}

// Sink writes batches. A nil error means every record of the batch is
// durable (written, or kept as a dead letter). Write must be idempotent:
// the same batch written twice leaves the same state.
type Sink interface {
	Write(ctx context.Context, b Batch) error
}

// Closer is implemented by components holding resources. Close is called
// once, after the run drained, and must be safe to call again.
type Closer interface {
	Close() error
}

// Sizer is implemented by sources that can tell how many records a run will
// see, for progress and ETA. Total may be called concurrently with Run.
type Sizer interface {
	Total(ctx context.Context) (int64, error)
}

// Windowed is implemented by stages and sinks that want batches of a given
// shape; the runtime re-batches their input accordingly.
type Windowed interface {
	Window() Window
}

// Parallel is implemented by stages that can process several batches at
// once (each Process call on its own goroutine), such as a network stage
// allowed more than one connection. Batches may then leave the stage out of
// order; nothing downstream depends on order.
type Parallel interface {
	Parallelism() int
}

// Selective is implemented by stages that act on some records only, such
// as a provider asked only about addresses an earlier stage could not
// answer. The runtime gives the stage only the records Wants accepts
// (windowed by the stage's Window) and routes the others around it, so
// they are not held back while the stage waits on the network, and a
// window fills with records that need the stage. Wants is called once per
// record, on one goroutine, before the record reaches the stage; it may
// mark a record it passes over (a skip reason). Process must still accept
// any record: direct callers do not route.
type Selective interface {
	Wants(r *Record) bool
}

// Asker is implemented by stages that say which sources (enrichment keys)
// they ask providers for: MaxMind's stage asks "maxmind", validate asks
// none. Build tells an AskListener which sources the stages after it ask
// only when every one of them is an Asker; a stage of your own that is
// not one may ask anything, and the cache then serves every source.
type Asker interface {
	Asks() []string
}

// AskListener is implemented by stages that answer for the stages after
// them, such as the cache. Build calls AskedAfter once, before the run,
// with the sources the enabled stages after it ask, when all of them are
// Askers; the stage can leave the other sources alone (no GreyNoise
// lookups when the greynoise stage is disabled). A stage that is never
// told serves every source.
type AskListener interface {
	AskedAfter(sources []string)
}

// Window closes a batch at Size records or MaxWait after its first record,
// whichever comes first.
type Window struct {
	Size    int           `koanf:"size"`
	MaxWait time.Duration `koanf:"max_wait"`
}

// Committer is implemented by sources and stages that act once their
// records are durable: a queue source acknowledging its entries, the cache
// writing fresh answers through to its tiers. Committed is called with
// every batch the main sink committed (the source first, then the stages,
// before the side sinks see it), in commit order, on a goroutine of its
// own: it may run while the sink writes the next batch. An error is logged
// and never fails the run: the records are already safe.
type Committer interface {
	Committed(ctx context.Context, b Batch) error
}

// Preparer is implemented by main sinks that can start on a batch before
// its turn to be written, such as a database sink staging the batch's rows
// on a second connection. The runtime calls Prepare with each batch, in
// order, on a goroutine per batch, up to two batches ahead of Write: the
// Prepare of two batches may run at once, beside Write of the batch
// before them. Write of a batch starts after its Prepare has returned.
// Preparing is only a head start: Write must also work when
// Prepare did not finish its part, and a prepared batch may never be
// written (the run failed or stopped); the sink then releases what it
// holds in Close.
type Preparer interface {
	Prepare(ctx context.Context, b Batch)
}

// Finisher is implemented by side sinks that record the end of a run (the
// status snapshots). Finish is called last, after the main sink committed.
type Finisher interface {
	Finish(ctx context.Context, s Summary) error
}

// RunState is the life-cycle state reported in status snapshots.
type RunState string

// Run states, as written to status files.
const (
	RunRunning     RunState = "running"
	RunDone        RunState = "done"
	RunFailed      RunState = "failed"
	RunInterrupted RunState = "interrupted"
)

// Summary is the outcome of a run.
type Summary struct {
	RunID     string
	Pipeline  string
	State     RunState
	Err       error
	Committed int64 // records the main sink committed (dead letters included)
	Rejected  int64 // of those, records kept as dead letters
	Dropped   int64 // records stages dropped (duplicates)
	Elapsed   time.Duration
}

// Progress is run-wide state that components share: the expected total,
// set by the runtime when the source is a Sizer, and the start time.
type Progress struct {
	Started   time.Time
	total     atomic.Int64
	committed atomic.Int64

	mu     sync.Mutex
	values map[string]int64
}

// Add adds delta to the named run counter (e.g. "greynoise_rate_limited").
// Components report what status files and metrics show through it.
func (p *Progress) Add(name string, delta int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.values == nil {
		p.values = make(map[string]int64)
	}
	p.values[name] += delta
}

// Set sets the named run gauge (e.g. "greynoise_quota_remaining").
func (p *Progress) Set(name string, v int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.values == nil {
		p.values = make(map[string]int64)
	}
	p.values[name] = v
}

// Value returns the named counter or gauge and whether it was ever set.
func (p *Progress) Value(name string) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.values[name]
	return v, ok
}

// Values returns a copy of every counter and gauge.
func (p *Progress) Values() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.values))
	for k, v := range p.values {
		out[k] = v
	}
	return out
}

// Committed returns the number of records the main sink has committed so
// far (dead letters included).
func (p *Progress) Committed() int64 { return p.committed.Load() }

// SetTotal records the number of records the run expects; -1 means unknown.
func (p *Progress) SetTotal(n int64) { p.total.Store(n) }

// Total returns the number of records the run expects, or -1 when unknown.
func (p *Progress) Total() int64 { return p.total.Load() }

// NewProgress returns progress with an unknown total, started now.
func NewProgress(now time.Time) *Progress {
	p := &Progress{Started: now}
	p.total.Store(-1)
	return p
}

// Env is what a component's constructor receives.
type Env struct {
	// ID is the component's id in the config (default: its type).
	ID string
	// Pipeline is the pipeline's name, which is also the status phase.
	Pipeline string
	// RunID identifies this run in logs, status files and _meta.
	RunID string
	// Logger is pre-scoped with the component's kind and id.
	Logger *slog.Logger
	// Store is the database the run works on; nil when the run has none.
	Store *store.DB
	// HTTP is the client for network components.
	HTTP *http.Client
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Progress is shared by all components of the run.
	Progress *Progress
	// StatusDir is the directory chosen by --status-dir, empty when unset.
	StatusDir string
}

// WithDefaults returns env with its unset fields filled: a discarding
// logger, the real clock, fresh progress and an HTTP client with a
// timeout. Build hands components a complete Env; constructors call this
// so they also work when built directly (tests, custom programs).
func (e Env) WithDefaults() Env {
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Progress == nil {
		e.Progress = NewProgress(e.Now())
	}
	if e.HTTP == nil {
		e.HTTP = &http.Client{Timeout: time.Minute}
	}
	return e
}
