package cymru_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sim "github.com/cowrie-enrich/cowrie-enrich/internal/simulate/cymru"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
	"github.com/cowrie-enrich/cowrie-enrich/stages/cymru"
	"github.com/cowrie-enrich/cowrie-enrich/stages/validate"
)

// fakeSpec is cymru.Spec with a sample pointing at the fakes, so checks
// that build the stage from its sample never reach Team Cymru.
func fakeSpec(whois, dns string) pipeline.Spec {
	sample := fmt.Sprintf("whois_addr: %s\ndns_server: %q\nwindow: {size: 500, max_wait: 2s}\nconcurrency: 1\ntimeout: 5s\nbackoff: 1ms\n", whois, dns)
	return pipeline.StageSpec(cymru.Spec.Name, cymru.Spec.Summary, sample, cymru.DefaultConfig, cymru.New)
}

func TestConformance(t *testing.T) {
	w := sim.NewWhois(t, sim.WhoisOptions{})
	d := sim.NewDNS(t, sim.DNSOptions{})
	pipelinetest.Conformance(t, fakeSpec(w.Addr(), d.Addr()), pipelinetest.Env("cymru"))
}

// run builds source → validate → cymru → sink through the registry, as the
// CLI does, and runs it. with is the cymru stage's `with:` mapping.
func run(t testing.TB, src pipeline.Source, with string) (*pipelinetest.Sink, pipeline.Summary, *pipeline.Progress) {
	t.Helper()
	sink := &pipelinetest.Sink{}
	none := func() *pipeline.NoConfig { return &pipeline.NoConfig{} }
	reg := pipeline.NewRegistry(
		pipeline.SourceSpec("src", "test source", "", none, func(pipeline.Env, *pipeline.NoConfig) (pipeline.Source, error) { return src, nil }),
		pipeline.SinkSpec("out", "test sink", "", none, func(pipeline.Env, *pipeline.NoConfig) (pipeline.Sink, error) { return sink, nil }),
		validate.Spec, cymru.Spec,
	)
	y := "version: 1\nname: t\nsource: {type: src}\nstages:\n  - type: validate\n  - type: cymru\n    with: " + with + "\nsink: {type: out}\n"
	f, err := pipeline.Load("t.yaml", []byte(y), pipeline.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Resolve(reg, f)
	if err != nil {
		t.Fatal(err)
	}
	env := pipelinetest.Env("")
	p, err := pipeline.Build(context.Background(), plan, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	sum, err := p.Run(context.Background(), pipeline.RunOptions{Window: pipeline.Window{Size: 1000, MaxWait: 10 * time.Millisecond}})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return sink, sum, env.Progress
}

// distinct returns n addresses in distinct /24s, none of them in the
// sample table, so no answer covers another.
func distinct(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("45.%d.%d.1", 40+i/256, i%256)
	}
	return out
}

func querySizes(w *sim.Whois) []int {
	var out []int
	for _, q := range w.Stats().Queries {
		out = append(out, len(q.IPs))
	}
	return out
}

func TestWindowClosesBySize(t *testing.T) {
	w := sim.NewWhois(t, sim.WhoisOptions{})
	sink, sum, _ := run(t, &pipelinetest.Source{IPs: distinct(25)},
		fmt.Sprintf("{whois_addr: %q, dns_server: 127.0.0.1:1, window: {size: 10, max_wait: 1m}}", w.Addr()))
	if got := querySizes(w); fmt.Sprint(got) != "[10 10 5]" {
		t.Errorf("query sizes %v, want [10 10 5]", got)
	}
	if sum.Committed != 25 || len(sink.Records()) != 25 {
		t.Errorf("committed %d, sink %d; want 25", sum.Committed, len(sink.Records()))
	}
}

// stallingSource emits ips, then waits until released, so only the age of
// the window can close the batch.
type stallingSource struct {
	ips     []string
	release chan struct{}
}

func (s *stallingSource) Run(ctx context.Context, emit func(*pipeline.Record) error) error {
	for _, ip := range s.ips {
		if err := emit(pipeline.NewRecord(ip)); err != nil {
			return err
		}
	}
	select {
	case <-s.release:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("the window did not close by age")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestWindowClosesByAge: the source stalls after three records and is
// released only once the fake has answered a query, so the batch can only
// have been closed by its age.
func TestWindowClosesByAge(t *testing.T) {
	src := &stallingSource{ips: distinct(3), release: make(chan struct{})}
	var once sync.Once
	w := sim.NewWhois(t, sim.WhoisOptions{Now: func() time.Time {
		// The banner is written once per answer: the batch was sent.
		once.Do(func() { close(src.release) })
		return time.Now()
	}})
	run(t, src, fmt.Sprintf("{whois_addr: %q, dns_server: 127.0.0.1:1, window: {size: 1000, max_wait: 30ms}}", w.Addr()))
	if got := querySizes(w); fmt.Sprint(got) != "[3]" {
		t.Errorf("query sizes %v, want [3]: one batch closed by age", got)
	}
}

func TestRuntimeConcurrency(t *testing.T) {
	w := sim.NewWhois(t, sim.WhoisOptions{Latency: 20 * time.Millisecond})
	_, sum, progress := run(t, &pipelinetest.Source{IPs: distinct(60)},
		fmt.Sprintf("{whois_addr: %q, dns_server: 127.0.0.1:1, window: {size: 5, max_wait: 1m}, concurrency: 2}", w.Addr()))
	s := w.Stats()
	if s.PeakConcurrent > 2 || s.Connections != 12 {
		t.Errorf("peak %d over %d connections; want 12 connections, at most 2 at once", s.PeakConcurrent, s.Connections)
	}
	if len(s.Violations) != 0 {
		t.Errorf("etiquette violations: %v", s.Violations)
	}
	if n, _ := progress.Value(cymru.CounterQueries); n != 12 || sum.Committed != 60 {
		t.Errorf("%s = %d, committed %d; want 12 and 60", cymru.CounterQueries, n, sum.Committed)
	}
}

func TestFailedBatchDegrades(t *testing.T) {
	w := sim.NewWhois(t, sim.WhoisOptions{CloseImmediately: true})
	ips := append(distinct(4), "10.0.0.1", "not-an-ip")
	sink, sum, progress := run(t, &pipelinetest.Source{IPs: ips},
		fmt.Sprintf("{whois_addr: %q, dns_server: 127.0.0.1:1, retries: 1, backoff: 1ms}", w.Addr()))
	if sum.State != pipeline.RunDone || sum.Committed != int64(len(ips)) {
		t.Fatalf("summary %+v, want done with every record committed", sum)
	}
	for _, r := range sink.Records() {
		s := r.Source(pipeline.SourceCymru)
		switch {
		case !r.Eligible():
			if s.State != pipeline.StateNone {
				t.Errorf("%s (not eligible): cymru state %v, want untouched", r.Raw, s.State)
			}
		case s.State != pipeline.StateFailed || !strings.Contains(s.Reason, "truncated"):
			t.Errorf("%s: cymru %+v, want failed with the reason", r.IP(), s)
		}
	}
	if got := w.Stats().Queries; len(got) != 2 || !slices.Equal(got[0].IPs, got[1].IPs) {
		t.Errorf("queries %+v, want one attempt and one retry of the same batch", got)
	}
	if n, _ := progress.Value(cymru.CounterFailed); n != 4 {
		t.Errorf("%s = %d, want 4", cymru.CounterFailed, n)
	}
}
