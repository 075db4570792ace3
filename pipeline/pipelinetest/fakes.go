package pipelinetest

import (
	"context"
	"sync"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Source emits one record per address, in order.
type Source struct {
	IPs []string
}

var _ pipeline.Source = (*Source)(nil)

// Run emits the addresses and returns emit's first error.
func (s *Source) Run(ctx context.Context, emit func(*pipeline.Record) error) error {
	for _, ip := range s.IPs {
		if err := emit(pipeline.NewRecord(ip)); err != nil {
			return err
		}
	}
	return nil
}

// Total returns the number of addresses.
func (s *Source) Total(context.Context) (int64, error) { return int64(len(s.IPs)), nil }

// Sink collects every batch written to it. It is safe for concurrent use.
type Sink struct {
	mu      sync.Mutex
	batches []pipeline.Batch
	// Err, when set, is returned by Write (and nothing is collected).
	Err error
}

var _ pipeline.Sink = (*Sink)(nil)

// Write collects b.
func (s *Sink) Write(_ context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	s.batches = append(s.batches, append(pipeline.Batch(nil), b...))
	return nil
}

// Records returns every collected record, in write order.
func (s *Sink) Records() []*pipeline.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*pipeline.Record
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

// Batches returns the number of batches written.
func (s *Sink) Batches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.batches)
}

// IPs returns the addresses of the collected records, in write order.
func (s *Sink) IPs() []string {
	var out []string
	for _, r := range s.Records() {
		out = append(out, r.IP())
	}
	return out
}

// StageFunc is a stage built from a function.
type StageFunc func(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error)

var _ pipeline.Stage = StageFunc(nil)

// Process calls the function.
func (f StageFunc) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	return f(ctx, b)
}
