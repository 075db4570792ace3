package jsonl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/inventory"
)

const sampleYAML = `path: "-"
`

// Spec registers the sink under the name "jsonl".
var Spec = pipeline.SinkSpec("jsonl",
	"Write one JSON object per record to a file or stdout: what the inventory sink would store (dry runs, tests).",
	sampleYAML, DefaultConfig, newSink)

var (
	_ pipeline.Sink   = (*Sink)(nil)
	_ pipeline.Closer = (*Sink)(nil)
)

// Config holds the sink's options.
type Config struct {
	// Path is the file to write, created or truncated; "-" or empty means
	// Stdout.
	Path string `koanf:"path"`
	// Stdout receives the lines when Path is "-" or empty; nil means
	// os.Stdout. It is set by code (the CLI, tests), never by a config file.
	Stdout io.Writer `koanf:"-"`
}

// DefaultConfig returns the default options: write to standard output.
func DefaultConfig() *Config { return &Config{Path: "-"} }

// Validate accepts any path: whether it can be created is known only when
// the sink opens it.
func (c *Config) Validate() error { return nil }

// Sink writes records as JSON lines. It is safe for concurrent use.
type Sink struct {
	mu     sync.Mutex
	w      *bufio.Writer
	file   *os.File // the file the sink opened and must close; nil otherwise
	closed bool

	runID, pipeline string
	now             func() time.Time

	buf []byte // one batch's lines, reused
}

// New returns a sink writing to cfg.Path, with the run's id and pipeline
// name in each line's _meta.
func New(env pipeline.Env, cfg *Config) (*Sink, error) {
	env = env.WithDefaults()
	s := &Sink{runID: env.RunID, pipeline: env.Pipeline, now: env.Now}
	switch {
	case cfg.Path != "" && cfg.Path != "-":
		f, err := os.Create(cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("jsonl: open output: %w", err)
		}
		s.file, s.w = f, bufio.NewWriter(f)
	case cfg.Stdout != nil:
		s.w = bufio.NewWriter(cfg.Stdout)
	default:
		s.w = bufio.NewWriter(os.Stdout)
	}
	return s, nil
}

// newSink adapts New to the registry's constructor type.
func newSink(env pipeline.Env, cfg *Config) (pipeline.Sink, error) {
	s, err := New(env, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// line is the JSON object written for one record.
type line struct {
	IP           string         `json:"ip"`
	Raw          string         `json:"raw"`
	FirstSeen    *time.Time     `json:"first_seen"`
	LastSeen     *time.Time     `json:"last_seen"`
	SessionCount int64          `json:"session_count"`
	ASN          *lineASN       `json:"asn"`
	Enrichment   map[string]any `json:"enrichment"`
	Rejected     *rejection     `json:"rejected,omitempty"`
}

// lineASN is the autonomous system a line's address is attributed to.
type lineASN struct {
	Number   int64  `json:"number"`
	Org      string `json:"org,omitempty"`
	Country  string `json:"country,omitempty"`
	Registry string `json:"registry,omitempty"`
}

// rejection says why a record would be kept as a dead letter.
type rejection struct {
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
}

// newLine returns the line of r at time now: session data only when the
// record knows its sessions, enrichment only when it is not rejected. It
// defines what the encoder writes, and is what Write falls back to.
func newLine(r *pipeline.Record, runID, pipelineName string, now time.Time) line {
	l := line{IP: r.IP(), Raw: r.Raw}
	if r.Sessions > 0 {
		first, last := r.FirstSeen.UTC(), r.LastSeen.UTC()
		l.FirstSeen, l.LastSeen, l.SessionCount = &first, &last, r.Sessions
	}
	if r.ASN != nil {
		l.ASN = &lineASN{Number: r.ASN.Number, Org: r.ASN.Org, Country: r.ASN.Country, Registry: r.ASN.Registry}
	}
	if r.Rejected() {
		l.Rejected = &rejection{Stage: r.ErrStage, Reason: r.Err.Error()}
		return l
	}
	l.Enrichment = inventory.Document(r, inventory.Meta(r, runID, pipelineName, now))
	return l
}

// Write writes one line per record and flushes them.
func (s *Sink) Write(_ context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("jsonl: write: %w", os.ErrClosed)
	}
	now := s.now()
	buf := s.buf[:0]
	for _, r := range b {
		meta := inventory.Meta(r, s.runID, s.pipeline, now)
		var ok bool
		if buf, ok = appendRecord(buf, r, &meta); ok {
			continue
		}
		j, err := json.Marshal(newLine(r, s.runID, s.pipeline, now))
		if err != nil {
			return fmt.Errorf("jsonl: write %s: %w", r.IP(), err)
		}
		buf = append(append(buf, j...), '\n')
	}
	s.buf = buf
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("jsonl: write: %w", err)
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("jsonl: flush: %w", err)
	}
	return nil
}

// Close flushes and closes the file the sink opened. It is safe to call
// more than once.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.w.Flush()
	if s.file != nil {
		if cerr := s.file.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("jsonl: close: %w", err)
	}
	return nil
}
