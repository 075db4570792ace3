package dedupe

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
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

// DefaultConfig returns the defaults: one million addresses, under ten
// megabytes of IPv4 or some forty of IPv6.
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
	cur, old *generation

	progress *pipeline.Progress
}

var (
	_ pipeline.Stage = (*Stage)(nil)
	_ pipeline.Asker = (*Stage)(nil)
)

// Asks returns nil: the stage asks no provider.
func (s *Stage) Asks() []string { return nil }

// New builds the stage from validated options.
func New(env pipeline.Env, cfg *Config) (pipeline.Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stage %q: %w", env.ID, err)
	}
	env = env.WithDefaults()
	return &Stage{log: env.Logger, gen: cfg.Capacity / 2, cur: newGeneration(), old: newGeneration(), progress: env.Progress}, nil
}

// Process returns the records of b whose address was not seen before, in
// order. b itself is left as it is, since the caller may still hold it.
func (s *Stage) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	out := make(pipeline.Batch, 0, len(b))
	s.mu.Lock()
	for _, r := range b {
		if r.Rejected() || !s.remember(keyOf(r)) {
			out = append(out, r)
		}
	}
	s.mu.Unlock()
	n := int64(len(b) - len(out))
	s.progress.Add(CounterDuplicates, n)
	s.log.DebugContext(ctx, "deduplicated batch", "batch_size", len(b), "dropped", n)
	return out, nil
}

// remember records k and reports whether it had been seen already.
func (s *Stage) remember(k key) (seen bool) {
	if s.cur.has(k) || s.old.has(k) {
		return true
	}
	if s.cur.len() >= s.gen {
		s.old, s.cur = s.cur, newGeneration()
	}
	s.cur.add(k)
	return false
}

// key identifies a record's address as its canonical text (Record.IP)
// does, but IP addresses are kept as numbers, in sets without pointers:
// a million remembered IPv4 addresses cost under ten megabytes and nothing
// for the garbage collector to scan.
type key struct {
	kind byte // kindV4, kindV6 or kindText
	v4   uint32
	v6   [16]byte
	text string
}

const (
	kindV4 byte = iota
	kindV6
	kindText
)

// keyOf returns the key of r's canonical text: its address when it has
// one, else its raw text, which is numeric too when it is already an
// address in canonical form (a source that does not validate).
func keyOf(r *pipeline.Record) key {
	a := r.Addr
	if !a.IsValid() {
		var err error
		if a, err = netip.ParseAddr(r.Raw); err != nil || a.String() != r.Raw {
			return key{kind: kindText, text: r.Raw}
		}
	}
	switch {
	case a.Zone() != "":
		return key{kind: kindText, text: a.String()}
	case a.Is4():
		b := a.As4()
		return key{kind: kindV4, v4: binary.BigEndian.Uint32(b[:])}
	}
	return key{kind: kindV6, v6: a.As16()}
}

// generation is one set of remembered addresses.
type generation struct {
	v4   *set[uint32]
	v6   *set[[16]byte]
	text map[string]struct{}
}

func newGeneration() *generation {
	return &generation{v4: newSet[uint32](), v6: newSet[[16]byte](), text: map[string]struct{}{}}
}

func (g *generation) len() int { return g.v4.len() + g.v6.len() + len(g.text) }

func (g *generation) has(k key) bool {
	switch k.kind {
	case kindV4:
		return g.v4.has(k.v4)
	case kindV6:
		return g.v6.has(k.v6)
	}
	_, ok := g.text[k.text]
	return ok
}

func (g *generation) add(k key) {
	switch k.kind {
	case kindV4:
		g.v4.add(k.v4)
	case kindV6:
		g.v6.add(k.v6)
	default:
		g.text[k.text] = struct{}{}
	}
}

// CounterDuplicates is the run counter (pipeline.Progress) of records the
// stage dropped, shown by status files and metrics.
const CounterDuplicates = "duplicates"
