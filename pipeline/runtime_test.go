package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

// harness builds a pipeline from in-memory parts through the registry, as
// the CLI does.
type harness struct {
	source pipeline.Source
	stages []pipeline.Stage
	sink   pipeline.Sink
	side   pipeline.Sink
}

func (h harness) build(t *testing.T) *pipeline.Pipeline {
	t.Helper()
	none := func() *pipeline.NoConfig { return &pipeline.NoConfig{} }
	specs := []pipeline.Spec{
		pipeline.SourceSpec("src", "test source", "", none, func(pipeline.Env, *pipeline.NoConfig) (pipeline.Source, error) { return h.source, nil }),
		pipeline.SinkSpec("out", "test sink", "", none, func(pipeline.Env, *pipeline.NoConfig) (pipeline.Sink, error) { return h.sink, nil }),
	}
	y := "version: 1\nname: t\nsource: {type: src}\nsink: {type: out}\nstages:\n"
	for i, st := range h.stages {
		name := fmt.Sprintf("s%d", i)
		specs = append(specs, pipeline.StageSpec(name, "test stage", "", none, func(pipeline.Env, *pipeline.NoConfig) (pipeline.Stage, error) { return st, nil }))
		y += "  - type: " + name + "\n"
	}
	if len(h.stages) == 0 {
		y += "  []\n"
	}
	if h.side != nil {
		specs = append(specs, pipeline.SinkSpec("side", "side sink", "", none, func(pipeline.Env, *pipeline.NoConfig) (pipeline.Sink, error) { return h.side, nil }))
		y += "side_sinks: [{type: side}]\n"
	}
	f, err := pipeline.Load("t.yaml", []byte(y), pipeline.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Resolve(pipeline.NewRegistry(specs...), f)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Build(context.Background(), plan, pipelinetest.Env(""))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ips(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("198.51.%d.%d", i/256, i%256)
	}
	return out
}

func pass() pipeline.Stage {
	return pipelinetest.StageFunc(func(_ context.Context, b pipeline.Batch) (pipeline.Batch, error) { return b, nil })
}

func TestRunDeliversEverythingInOrder(t *testing.T) {
	sink := &pipelinetest.Sink{}
	side := &recordingSide{}
	want := ips(1000)
	p := harness{source: &pipelinetest.Source{IPs: want}, stages: []pipeline.Stage{pass(), pass()}, sink: sink, side: side}.build(t)
	sum, err := p.Run(context.Background(), pipeline.RunOptions{Window: pipeline.Window{Size: 64, MaxWait: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if got := sink.IPs(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("sink got %d records (first %v), want all %d in source order", len(got), head(got), len(want))
	}
	if sum.State != pipeline.RunDone || sum.Committed != 1000 {
		t.Errorf("summary = %+v, want done with 1000 committed", sum)
	}
	if side.records() != 1000 || side.final.State != pipeline.RunDone {
		t.Errorf("side sink saw %d records and final state %q, want 1000 and done", side.records(), side.final.State)
	}
}

func head(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

// windowedSink records batch sizes and asks for batches of at most 10.
type windowedSink struct {
	pipelinetest.Sink
	mu    sync.Mutex
	sizes []int
}

func (s *windowedSink) Window() pipeline.Window {
	return pipeline.Window{Size: 10, MaxWait: 50 * time.Millisecond}
}

func (s *windowedSink) Write(ctx context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(b))
	s.mu.Unlock()
	return s.Sink.Write(ctx, b)
}

func TestBatchesCloseAtSizeOrAge(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		sink := &windowedSink{}
		p := harness{source: &pipelinetest.Source{IPs: ips(95)}, sink: sink}.build(t)
		if _, err := p.Run(context.Background(), pipeline.RunOptions{Window: pipeline.Window{Size: 1000, MaxWait: time.Minute}}); err != nil {
			t.Fatal(err)
		}
		want := "[10 10 10 10 10 10 10 10 10 5]"
		if got := fmt.Sprint(sink.sizes); got != want {
			t.Errorf("batch sizes = %s, want %s", got, want)
		}
	})
	t.Run("age", func(t *testing.T) {
		// A source that emits 3 records and then waits: the batch must be
		// written after MaxWait, before the source ends.
		sink := &windowedSink{}
		written := make(chan struct{})
		src := sourceFunc(func(ctx context.Context, emit func(*pipeline.Record) error) error {
			for _, ip := range ips(3) {
				if err := emit(pipeline.NewRecord(ip)); err != nil {
					return err
				}
			}
			select {
			case <-written:
				return nil
			case <-time.After(10 * time.Second):
				return errors.New("batch was not written by age")
			}
		})
		notify := &notifySink{sink: sink, once: sync.OnceFunc(func() { close(written) })}
		p := harness{source: src, sink: notify}.build(t)
		if _, err := p.Run(context.Background(), pipeline.RunOptions{Window: pipeline.Window{Size: 1000, MaxWait: 20 * time.Millisecond}}); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(sink.sizes); got != "[3]" {
			t.Errorf("batch sizes = %s, want [3]", got)
		}
	})
}

type notifySink struct {
	sink *windowedSink
	once func()
}

func (n *notifySink) Window() pipeline.Window { return n.sink.Window() }
func (n *notifySink) Write(ctx context.Context, b pipeline.Batch) error {
	err := n.sink.Write(ctx, b)
	n.once()
	return err
}

type sourceFunc func(ctx context.Context, emit func(*pipeline.Record) error) error

func (f sourceFunc) Run(ctx context.Context, emit func(*pipeline.Record) error) error {
	return f(ctx, emit)
}

// recordingSide is a side sink that counts what it sees and the final summary.
type recordingSide struct {
	mu    sync.Mutex
	n     int
	final pipeline.Summary
}

func (s *recordingSide) Write(_ context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n += len(b)
	return nil
}

func (s *recordingSide) Finish(_ context.Context, sum pipeline.Summary) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.final = sum
	return nil
}

func (s *recordingSide) records() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func TestStageFailures(t *testing.T) {
	boom := errors.New("provider unreachable")
	tests := []struct {
		name        string
		stage       pipeline.Stage
		errContains string
		panicked    bool
	}{
		{
			name: "error",
			stage: pipelinetest.StageFunc(func(_ context.Context, b pipeline.Batch) (pipeline.Batch, error) {
				if b[0].Raw == "198.51.1.0" {
					return nil, boom
				}
				return b, nil
			}),
			errContains: `stage "s0": provider unreachable`,
		},
		{
			name: "panic",
			stage: pipelinetest.StageFunc(func(_ context.Context, b pipeline.Batch) (pipeline.Batch, error) {
				if b[0].Raw == "198.51.1.0" {
					panic("stage exploded")
				}
				return b, nil
			}),
			errContains: `stage "s0": panic: stage exploded`,
			panicked:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &pipelinetest.Sink{}
			side := &recordingSide{}
			p := harness{source: &pipelinetest.Source{IPs: ips(2000)}, stages: []pipeline.Stage{tt.stage}, sink: sink, side: side}.build(t)
			sum, err := p.Run(context.Background(), pipeline.RunOptions{Window: pipeline.Window{Size: 256, MaxWait: time.Second}})
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("Run error = %v, want %q", err, tt.errContains)
			}
			var pe *pipeline.PanicError
			if got := errors.As(err, &pe); got != tt.panicked {
				t.Errorf("errors.As(err, *PanicError) = %v, want %v", got, tt.panicked)
			}
			// The first batch (198.51.0.x) was committed before the failure;
			// the failing batch was not; nothing after it was either.
			got := sink.IPs()
			if len(got) != 256 || got[0] != "198.51.0.0" {
				t.Errorf("committed %d records starting %v, want the 256 before the failing batch", len(got), head(got))
			}
			if sum.State != pipeline.RunFailed || side.final.State != pipeline.RunFailed || side.records() != len(got) {
				t.Errorf("state %q, side state %q with %d records; want failed, failed, %d", sum.State, side.final.State, side.records(), len(got))
			}
		})
	}
}

func TestSinkErrorFailsRun(t *testing.T) {
	sink := &pipelinetest.Sink{Err: errors.New("database is gone")}
	side := &recordingSide{}
	p := harness{source: &pipelinetest.Source{IPs: ips(100)}, sink: sink, side: side}.build(t)
	sum, err := p.Run(context.Background(), pipeline.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), `sink "out": database is gone`) {
		t.Fatalf("err = %v", err)
	}
	if sum.Committed != 0 || side.records() != 0 {
		t.Errorf("committed %d, side saw %d; want 0 and 0: nothing the sink refused is reported", sum.Committed, side.records())
	}
}

func TestSourceErrorFailsRunAfterCommittingWhatItEmitted(t *testing.T) {
	sink := &pipelinetest.Sink{}
	src := sourceFunc(func(ctx context.Context, emit func(*pipeline.Record) error) error {
		for _, ip := range ips(10) {
			if err := emit(pipeline.NewRecord(ip)); err != nil {
				return err
			}
		}
		return errors.New("cursor closed")
	})
	p := harness{source: src, sink: sink}.build(t)
	_, err := p.Run(context.Background(), pipeline.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), `source "src": cursor closed`) {
		t.Fatalf("err = %v", err)
	}
	if n := len(sink.IPs()); n != 10 {
		t.Errorf("committed %d records, want the 10 emitted before the error", n)
	}
}

// TestCancelDrains cancels a run whose source would go on forever: every
// record the source handed over must be committed, in order, before Run
// returns ErrInterrupted, and the side sink records "interrupted" last.
func TestCancelDrains(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var emitted []string
	src := sourceFunc(func(ctx context.Context, emit func(*pipeline.Record) error) error {
		for i := 0; ; i++ {
			ip := fmt.Sprintf("203.0.%d.%d", (i/256)%256, i%256)
			if err := emit(pipeline.NewRecord(ip)); err != nil {
				return err
			}
			mu.Lock()
			emitted = append(emitted, ip)
			mu.Unlock()
			if i == 700 {
				cancel()
			}
		}
	})
	slow := pipelinetest.StageFunc(func(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return b, nil
	})
	sink := &pipelinetest.Sink{}
	side := &recordingSide{}
	p := harness{source: src, stages: []pipeline.Stage{slow}, sink: sink, side: side}.build(t)
	sum, err := p.Run(ctx, pipeline.RunOptions{Window: pipeline.Window{Size: 100, MaxWait: time.Second}})
	if !errors.Is(err, pipeline.ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	mu.Lock()
	defer mu.Unlock()
	got := sink.IPs()
	if strings.Join(got, ",") != strings.Join(emitted, ",") {
		t.Fatalf("committed %d records, source handed over %d: every handed-over record must be committed", len(got), len(emitted))
	}
	if sum.State != pipeline.RunInterrupted || sum.Committed != int64(len(got)) || side.final.State != pipeline.RunInterrupted || side.records() != len(got) {
		t.Errorf("summary %+v, side %d records state %q", sum, side.records(), side.final.State)
	}
}

func TestDroppedRecordsAreCounted(t *testing.T) {
	odd := pipelinetest.StageFunc(func(_ context.Context, b pipeline.Batch) (pipeline.Batch, error) {
		var out pipeline.Batch
		for i, r := range b {
			if i%2 == 0 {
				out = append(out, r)
			}
		}
		return out, nil
	})
	sink := &pipelinetest.Sink{}
	p := harness{source: &pipelinetest.Source{IPs: ips(100)}, stages: []pipeline.Stage{odd}, sink: sink}.build(t)
	sum, err := p.Run(context.Background(), pipeline.RunOptions{Window: pipeline.Window{Size: 10, MaxWait: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Committed != 50 || sum.Dropped != 50 {
		t.Errorf("committed %d dropped %d, want 50 and 50", sum.Committed, sum.Dropped)
	}
}

// committerStage passes records on and counts what it is told was committed.
type committerStage struct {
	mu        sync.Mutex
	committed int
}

func (s *committerStage) Process(_ context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	return b, nil
}

func (s *committerStage) Committed(_ context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed += len(b)
	return nil
}

func TestCommittedIsCalledOnlyForCommittedBatches(t *testing.T) {
	for _, tt := range []struct {
		name    string
		sinkErr error
		want    int
	}{
		{"sink commits", nil, 300},
		{"sink refuses", errors.New("disk full"), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &committerStage{}
			p := harness{source: &pipelinetest.Source{IPs: ips(300)}, stages: []pipeline.Stage{st}, sink: &pipelinetest.Sink{Err: tt.sinkErr}}.build(t)
			_, _ = p.Run(context.Background(), pipeline.RunOptions{})
			if st.committed != tt.want {
				t.Errorf("Committed saw %d records, want %d", st.committed, tt.want)
			}
		})
	}
}

func TestProgressValues(t *testing.T) {
	p := pipeline.NewProgress(time.Now())
	p.Add("greynoise_rate_limited", 2)
	p.Add("greynoise_rate_limited", 3)
	p.Set("greynoise_quota_remaining", 9000)
	if v, ok := p.Value("greynoise_rate_limited"); !ok || v != 5 {
		t.Errorf("counter = %d, %v; want 5, true", v, ok)
	}
	if _, ok := p.Value("missing"); ok {
		t.Errorf("unset value reported as set")
	}
	vals := p.Values()
	vals["greynoise_quota_remaining"] = 0
	if v, _ := p.Value("greynoise_quota_remaining"); v != 9000 {
		t.Errorf("Values must return a copy; gauge now %d", v)
	}
}

// parallelStage records how many Process calls overlap.
type parallelStage struct {
	n            int
	mu           sync.Mutex
	active, peak int
}

func (s *parallelStage) Parallelism() int { return s.n }

func (s *parallelStage) Process(_ context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	s.mu.Lock()
	s.active++
	s.peak = max(s.peak, s.active)
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
	return b, nil
}

func TestParallelStageOverlapsBatchesWithinItsLimit(t *testing.T) {
	st := &parallelStage{n: 3}
	sink := &pipelinetest.Sink{}
	p := harness{source: &pipelinetest.Source{IPs: ips(400)}, stages: []pipeline.Stage{st}, sink: sink}.build(t)
	if _, err := p.Run(context.Background(), pipeline.RunOptions{Window: pipeline.Window{Size: 10, MaxWait: time.Second}}); err != nil {
		t.Fatal(err)
	}
	if st.peak < 2 || st.peak > 3 {
		t.Errorf("peak concurrent Process calls = %d, want 2 or 3 (parallelism 3)", st.peak)
	}
	if n := len(sink.IPs()); n != 400 {
		t.Errorf("committed %d, want 400", n)
	}
}

// countingObserver tallies events per component.
type countingObserver struct {
	mu     sync.Mutex
	in     map[string]int
	out    map[string]int
	errors int
}

func (o *countingObserver) Observe(e pipeline.BatchEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.in[string(e.Kind)+":"+e.ID] += e.In
	o.out[string(e.Kind)+":"+e.ID] += e.Out
	if e.Err != nil {
		o.errors++
	}
}

func TestObserverSeesEveryBatch(t *testing.T) {
	o := &countingObserver{in: map[string]int{}, out: map[string]int{}}
	odd := pipelinetest.StageFunc(func(_ context.Context, b pipeline.Batch) (pipeline.Batch, error) { return b[:len(b)/2], nil })
	p := harness{source: &pipelinetest.Source{IPs: ips(200)}, stages: []pipeline.Stage{odd}, sink: &pipelinetest.Sink{}}.build(t)
	if _, err := p.Run(context.Background(), pipeline.RunOptions{Window: pipeline.Window{Size: 20, MaxWait: time.Second}, Observer: o}); err != nil {
		t.Fatal(err)
	}
	want := "map[sink:out:100 stage:s0:200] map[sink:out:100 stage:s0:100] 0"
	if got := fmt.Sprint(o.in, " ", o.out, " ", o.errors); got != want {
		t.Errorf("observed %s, want %s", got, want)
	}
}

// ackingSource hands out tokens and records which come back committed.
type ackingSource struct {
	pipelinetest.Source
	mu    sync.Mutex
	acked []any
}

func (s *ackingSource) Run(ctx context.Context, emit func(*pipeline.Record) error) error {
	for i, ip := range s.IPs {
		r := pipeline.NewRecord(ip)
		r.Token = i
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *ackingSource) Committed(_ context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range b {
		s.acked = append(s.acked, r.Token)
	}
	return nil
}

func TestSourceSeesItsCommittedTokens(t *testing.T) {
	src := &ackingSource{Source: pipelinetest.Source{IPs: ips(50)}}
	p := harness{source: src, sink: &pipelinetest.Sink{}}.build(t)
	if _, err := p.Run(context.Background(), pipeline.RunOptions{Window: pipeline.Window{Size: 7, MaxWait: time.Second}}); err != nil {
		t.Fatal(err)
	}
	if len(src.acked) != 50 || src.acked[0] != 0 || src.acked[49] != 49 {
		t.Errorf("acknowledged %d tokens (%v…), want all 50 in order", len(src.acked), src.acked[:min(3, len(src.acked))])
	}
}

// selective wants every tenth record and holds its batches until released;
// it marks the records it passes over.
type selective struct {
	release chan struct{}
	mu      sync.Mutex
	seen    []string
}

func (s *selective) Wants(r *pipeline.Record) bool {
	if strings.HasSuffix(r.Raw, "0") {
		return true
	}
	r.Skip("test", "not wanted")
	return false
}

func (s *selective) Window() pipeline.Window { return pipeline.Window{Size: 1000, MaxWait: time.Hour} }

func (s *selective) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range b {
		s.seen = append(s.seen, r.Raw)
		r.Set("test", map[string]any{"ok": true})
	}
	return b, nil
}

func TestSelectiveStageGetsOnlyWhatItWantsAndHoldsNothingElseBack(t *testing.T) {
	sink := &pipelinetest.Sink{}
	st := &selective{release: make(chan struct{})}
	all := ips(1000)
	var wanted []string
	for _, ip := range all {
		if strings.HasSuffix(ip, "0") {
			wanted = append(wanted, ip)
		}
	}
	p := harness{source: &pipelinetest.Source{IPs: all}, stages: []pipeline.Stage{st, pass()}, sink: sink}.build(t)
	done := make(chan error, 1)
	go func() {
		_, err := p.Run(context.Background(), pipeline.RunOptions{Window: pipeline.Window{Size: 64, MaxWait: 10 * time.Millisecond}})
		done <- err
	}()

	// Every record the stage passes over reaches the sink while the stage
	// still holds its window.
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.Records()) < len(all)-len(wanted) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := len(sink.Records()); got != len(all)-len(wanted) {
		t.Fatalf("before the stage released its window, the sink had %d records, want %d", got, len(all)-len(wanted))
	}
	for _, r := range sink.Records() {
		if r.Sources["test"].State != pipeline.StateSkipped {
			t.Fatalf("%s passed the stage without the mark Wants set: %+v", r.Raw, r.Sources["test"])
		}
	}
	close(st.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(sink.Records()); got != len(all) {
		t.Fatalf("committed %d records, want %d", got, len(all))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if strings.Join(st.seen, ",") != strings.Join(wanted, ",") {
		t.Fatalf("the stage saw %d records %v…, want exactly the %d it wants", len(st.seen), st.seen[:min(3, len(st.seen))], len(wanted))
	}
}

// preparingSink logs Prepare and Write calls by each batch's first
// address. Write waits (up to a second) for a Prepare beyond its own
// batch, and counts it when one comes while it runs.
type preparingSink struct {
	windowedSink
	mu         sync.Mutex
	prepares   []string
	writes     []string
	early      []string // writes that began before their batch's Prepare
	overlapped int
}

func (s *preparingSink) Prepare(_ context.Context, b pipeline.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prepares = append(s.prepares, b[0].Raw)
}

func (s *preparingSink) Write(ctx context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	if !slices.Contains(s.prepares, b[0].Raw) {
		s.early = append(s.early, b[0].Raw)
	}
	s.writes = append(s.writes, b[0].Raw)
	n := len(s.writes)
	s.mu.Unlock()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.mu.Lock()
		ahead := len(s.prepares) > n
		if ahead {
			s.overlapped++
		}
		s.mu.Unlock()
		if ahead {
			break
		}
	}
	return s.windowedSink.Write(ctx, b)
}

// TestPreparerRunsAhead checks that a Preparer sink gets every batch in
// Prepare before Write (the Prepares of two batches may run at once, so
// in any order), Write in order, and that Prepare of a later batch runs
// while Write of the one before is still going.
func TestPreparerRunsAhead(t *testing.T) {
	s := &preparingSink{}
	all := ips(30)
	p := harness{source: &pipelinetest.Source{IPs: all}, sink: s}.build(t)
	if _, err := p.Run(context.Background(), pipeline.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	first := []string{all[0], all[10], all[20]} // batches of 10
	if !slices.Equal(slices.Sorted(slices.Values(s.prepares)), first) || !slices.Equal(s.writes, first) || len(s.early) > 0 {
		t.Fatalf("prepares %q, writes %q (before their prepare: %q); want both %q, each prepared first",
			s.prepares, s.writes, s.early, first)
	}
	if s.overlapped != len(first)-1 {
		t.Errorf("%d writes saw the next batch prepared while they ran; want %d", s.overlapped, len(first)-1)
	}
}
