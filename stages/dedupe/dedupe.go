package dedupe

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Spec registers the dedupe stage.
var Spec = pipeline.StageSpec("dedupe",
	"Drop records whose address was already seen in this run (bounded memory).",
	"capacity: 1000000\n", DefaultConfig, New)

// Config holds the stage's options.
type Config struct {
	// Capacity is the most addresses remembered at once.
	Capacity int `koanf:"capacity"`
}

// DefaultConfig returns the defaults: one million addresses, a few tens of
// megabytes.
func DefaultConfig() *Config { return &Config{Capacity: 1_000_000} }

// Validate checks that capacity can hold two generations.
func (c *Config) Validate() error {
	if c.Capacity < 2 {
		return fmt.Errorf("capacity %d: %w", c.Capacity, ErrCapacity)
	}
	return nil
}

// Stage drops repeated addresses. Process is safe for concurrent use.
type Stage struct {
	log *slog.Logger
	gen int // the most addresses one generation holds

	mu       sync.Mutex
	cur, old map[string]struct{}

	progress *pipeline.Progress
}

var _ pipeline.Stage = (*Stage)(nil)

// New builds the stage from validated options.
func New(env pipeline.Env, cfg *Config) (pipeline.Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stage %q: %w", env.ID, err)
	}
	env = env.WithDefaults()
	return &Stage{log: env.Logger, gen: cfg.Capacity / 2, cur: make(map[string]struct{}), progress: env.Progress}, nil
}

// Process returns the records of b whose address was not seen before, in
// order. b itself is left as it is, since the caller may still hold it.
func (s *Stage) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	out := make(pipeline.Batch, 0, len(b))
	s.mu.Lock()
	for _, r := range b {
		if r.Rejected() || !s.remember(r.IP()) {
			out = append(out, r)
		}
	}
	s.mu.Unlock()
	n := int64(len(b) - len(out))
	s.progress.Add(CounterDuplicates, n)
	s.log.DebugContext(ctx, "deduplicated batch", "batch_size", len(b), "dropped", n)
	return out, nil
}

// remember records ip and reports whether it had been seen already.
func (s *Stage) remember(ip string) (seen bool) {
	if _, ok := s.cur[ip]; ok {
		return true
	}
	if _, ok := s.old[ip]; ok {
		return true
	}
	if len(s.cur) >= s.gen {
		s.old, s.cur = s.cur, make(map[string]struct{}, s.gen)
	}
	s.cur[ip] = struct{}{}
	return false
}

// CounterDuplicates is the run counter (pipeline.Progress) of records the
// stage dropped, shown by status files and metrics.
const CounterDuplicates = "duplicates"
