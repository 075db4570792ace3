package pipeline

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reugn/go-streams"
	"github.com/reugn/go-streams/extension"
	"github.com/reugn/go-streams/flow"
)

// RunOptions tunes Run. The zero value is usable.
type RunOptions struct {
	// Window shapes the batches that leave the source; stages and sinks
	// that implement Windowed get their own. Default: 256 records or 250ms.
	Window Window
	// DrainTimeout bounds how long in-flight batches may take to reach the
	// sink after ctx is cancelled; past it, uncommitted work is abandoned
	// (a rerun picks it up). Default: 30s.
	DrainTimeout time.Duration
	// Observer, when set, sees every batch a stage or the main sink
	// handled (metrics).
	Observer Observer
}

// Observer receives one event per batch a stage processed or the main sink
// wrote. Observe is called from the runtime's goroutines: it must be safe
// for concurrent use and quick.
type Observer interface {
	Observe(e BatchEvent)
}

// BatchEvent describes one batch handled by one component.
type BatchEvent struct {
	Kind     Kind
	ID       string
	In, Out  int           // records given and records passed on (committed, for the sink)
	Duration time.Duration // time spent in Process or Write
	Err      error         // the component's error, which fails the run
	// Batch is the batch after the component handled it (nil on error);
	// observers may read it but not keep or change it.
	Batch Batch
}

func (o RunOptions) withDefaults() RunOptions {
	if o.Window.Size <= 0 {
		o.Window.Size = 256
	}
	if o.Window.MaxWait <= 0 {
		o.Window.MaxWait = 250 * time.Millisecond
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	return o
}

// Run streams every record of the source through the stages into the sink
// and returns when all are committed, the source failed, a component
// failed, or ctx was cancelled.
//
// Cancelling ctx is a request to stop: the source stops, batches already
// emitted still flow through the stages and are committed (within
// DrainTimeout), side sinks record the end, and Run returns ErrInterrupted.
// A stage or sink error stops the source the same way and is returned;
// what the failing component held is not committed, so a rerun redoes it.
func (p *Pipeline) Run(ctx context.Context, opts RunOptions) (Summary, error) {
	opts = opts.withDefaults()
	started := time.Now()
	r := &run{p: p, emittedAt: time.Now, observer: opts.Observer}

	// Stages and sinks work on a context that outlives ctx, so that a
	// cancelled run still commits what it already took from the source.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	srcCtx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	r.stopSource = stopSource

	var wg sync.WaitGroup
	finished := make(chan struct{})
	wg.Add(1)
	go func() { // the drain deadline
		defer wg.Done()
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(opts.DrainTimeout)
		defer t.Stop()
		select {
		case <-finished:
		case <-t.C:
			p.logger.Warn("drain timed out; abandoning uncommitted batches", "drain_timeout", opts.DrainTimeout)
			cancelWork()
		}
	}()

	if s, ok := p.source.c.(Sizer); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.Total(srcCtx)
			switch {
			case err == nil:
				p.progress.SetTotal(n)
			case srcCtx.Err() == nil:
				p.logger.Debug("count source records", "err", err)
			}
		}()
	}

	in := make(chan any)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(in)
		emit := func(rec *Record) error {
			rec.Received = r.emittedAt()
			select {
			case in <- rec:
				r.emitted.Add(1)
				return nil
			case <-srcCtx.Done():
				return ErrStopped
			}
		}
		err := protect(func() error { return p.source.c.Run(srcCtx, emit) })
		if err != nil && srcCtx.Err() == nil {
			r.fail(fmt.Errorf("source %q: %w", p.source.id, err))
		}
	}()

	var f streams.Flow = newBatcher(opts.Window)
	extension.NewChanSource(in).Via(f)
	for _, st := range p.stages {
		var bypass *router
		if sel, ok := st.c.(Selective); ok {
			bypass = newRouter(sel)
			f = f.Via(bypass)
		}
		if w, ok := st.c.(Windowed); ok {
			f = f.Via(newBatcher(w.Window()))
		}
		n := 1
		if par, ok := st.c.(Parallel); ok && par.Parallelism() > 1 {
			n = par.Parallelism()
		}
		f = f.Via(flow.NewMap(r.stage(work, st), n))
		if bypass != nil {
			f = f.Via(bypass.rejoin())
		}
	}
	if w, ok := p.sink.c.(Windowed); ok {
		f = f.Via(newBatcher(w.Window()))
	}
	f.To(r.sink(work)) // blocks until the sink has seen every batch

	stopSource()
	close(finished)
	wg.Wait()

	sum := Summary{
		RunID: p.runID, Pipeline: p.name,
		Committed: r.committed.Load(), Rejected: r.rejected.Load(), Dropped: r.dropped.Load(),
		Elapsed: time.Since(started),
	}
	var err error
	switch {
	case r.err() != nil:
		sum.State, err = RunFailed, r.err()
	case ctx.Err() != nil:
		sum.State, err = RunInterrupted, ErrInterrupted
	default:
		sum.State = RunDone
	}
	sum.Err = err
	r.finish(ctx, sum)
	return sum, err
}

// run is the state of one Run call shared by its goroutines.
type run struct {
	p          *Pipeline
	emittedAt  func() time.Time
	stopSource context.CancelFunc
	observer   Observer

	emitted, committed, rejected, dropped atomic.Int64

	mu       sync.Mutex
	firstErr error
}

// fail records the first fatal error and stops the source.
func (r *run) fail(err error) {
	r.mu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.mu.Unlock()
	r.stopSource()
}

func (r *run) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstErr
}

func (r *run) observe(e BatchEvent) {
	if r.observer != nil {
		r.observer.Observe(e)
	}
}

// stage adapts a Stage to a go-streams map function. After any fatal error
// stages drop their input: those records are not committed and a rerun
// picks them up.
func (r *run) stage(ctx context.Context, st node[Stage]) flow.MapFunction[Batch, Batch] {
	return func(b Batch) Batch {
		if len(b) == 0 || r.err() != nil {
			return nil
		}
		var out Batch
		start := time.Now()
		err := protect(func() error {
			var err error
			out, err = st.c.Process(ctx, b)
			return err
		})
		r.observe(BatchEvent{Kind: KindStage, ID: st.id, In: len(b), Out: len(out), Duration: time.Since(start), Err: err, Batch: out})
		if err != nil {
			r.fail(fmt.Errorf("stage %q: %w", st.id, err))
			return nil
		}
		if n := len(b) - len(out); n > 0 {
			r.dropped.Add(int64(n))
		}
		return out
	}
}

// sink returns the go-streams sink that commits batches to the main sink
// and then hands them to the side sinks, so side sinks only ever see
// committed records.
func (r *run) sink(ctx context.Context) streams.Sink {
	s := &sinkNode{in: make(chan any), done: make(chan struct{})}
	// The after-commit steps of a batch run on their own goroutine while
	// the sink writes the next batch; the channel's buffer lets the sink
	// run one batch ahead, and they still see batches in commit order.
	committed := make(chan Batch, 1)
	afterDone := make(chan struct{})
	go func() {
		defer close(afterDone)
		r.afterCommit(ctx, committed)
	}()
	// A Preparer gets each batch on a goroutine of its own, up to
	// prepareAhead batches ahead of Write: the channel holds one batch
	// and the loop below waits to hand over the next, so while Write works
	// on one batch, the next two may be in Prepare.
	batches := make(chan preparing, prepareAhead-1)
	var failed atomic.Bool
	go func() {
		defer close(batches)
		prep, _ := r.p.sink.c.(Preparer)
		for el := range s.in {
			b := el.(Batch)
			if len(b) == 0 || failed.Load() {
				continue
			}
			p := preparing{b: b, done: make(chan struct{})}
			if prep == nil {
				close(p.done)
			} else {
				go func() {
					defer close(p.done)
					// Prepare returns nothing to fail on; a panic is a bug.
					if err := protect(func() error { prep.Prepare(ctx, b); return nil }); err != nil {
						failed.Store(true)
						r.fail(fmt.Errorf("sink %q: prepare: %w", r.p.sink.id, err))
					}
				}()
			}
			batches <- p
		}
	}()
	go func() {
		defer close(s.done)
		defer func() { <-afterDone }()
		defer close(committed)
		for p := range batches {
			<-p.done
			b := p.b
			if failed.Load() {
				continue
			}
			start := time.Now()
			err := protect(func() error { return r.p.sink.c.Write(ctx, b) })
			ev := BatchEvent{Kind: KindSink, ID: r.p.sink.id, In: len(b), Duration: time.Since(start), Err: err}
			if err == nil {
				ev.Out, ev.Batch = len(b), b
			}
			r.observe(ev)
			if err != nil {
				failed.Store(true)
				r.fail(fmt.Errorf("sink %q: %w", r.p.sink.id, err))
				continue
			}
			r.committed.Add(int64(len(b)))
			r.p.progress.committed.Add(int64(len(b)))
			for _, rec := range b {
				if rec.Rejected() {
					r.rejected.Add(1)
				}
			}
			committed <- b
		}
	}()
	return s
}

// prepareAhead is how many batches a Preparer may be preparing while
// Write works on the one before them. Two keep a database sink's copy of
// the next batch going while the one after it starts, when copying a
// batch takes longer than writing one.
const prepareAhead = 2

// preparing is a batch on its way to Write, and the end of its Prepare.
type preparing struct {
	b    Batch
	done chan struct{}
}

// afterCommit hands every committed batch to the source and stages that
// act after a commit (Committer), then to the side sinks. Their failures
// are warned about once each and never fail the run: the records are
// already safe.
func (r *run) afterCommit(ctx context.Context, committed <-chan Batch) {
	warned := map[string]bool{}
	committers := append([]node[any]{{id: r.p.source.id, kind: KindSource, c: r.p.source.c}}, r.p.stageNodes()...)
	for b := range committed {
		for _, n := range committers {
			c, ok := n.c.(Committer)
			if !ok {
				continue
			}
			err := protect(func() error { return c.Committed(ctx, b) })
			if err != nil && !warned[n.id] {
				warned[n.id] = true
				r.p.logger.Warn("after-commit step failed; the run goes on", string(n.kind), n.id, "err", err)
			}
		}
		for _, side := range r.p.sideSinks {
			err := protect(func() error { return side.c.Write(ctx, b) })
			if err != nil && !warned[side.id] {
				warned[side.id] = true
				r.p.logger.Warn("side sink write failed; the run goes on", "sink", side.id, "err", err)
			}
		}
	}
}

// stageNodes returns the stages as untyped nodes.
func (p *Pipeline) stageNodes() []node[any] {
	out := make([]node[any], len(p.stages))
	for i, st := range p.stages {
		out[i] = node[any]{id: st.id, kind: KindStage, c: st.c}
	}
	return out
}

// finish gives side sinks the final summary, last of all.
func (r *run) finish(ctx context.Context, sum Summary) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, side := range r.p.sideSinks {
		f, ok := side.c.(Finisher)
		if !ok {
			continue
		}
		if err := protect(func() error { return f.Finish(fctx, sum) }); err != nil {
			r.p.logger.Warn("side sink could not record the end of the run", "sink", side.id, "err", err)
		}
	}
}

// sinkNode is the terminal go-streams inlet of a run.
type sinkNode struct {
	in   chan any
	done chan struct{}
}

var _ streams.Sink = (*sinkNode)(nil)

func (s *sinkNode) In() chan<- any   { return s.in }
func (s *sinkNode) AwaitCompletion() { <-s.done }

// PanicError is a panic recovered from a component, with its stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// protect runs f and turns a panic into a *PanicError, so one broken
// component fails the run cleanly instead of killing the process before the
// sink committed what it holds.
func protect(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}
