package status

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Spec registers the status side sink.
var Spec = pipeline.SinkSpec("status",
	"Write upstream-compatible JSON snapshots of committed progress (<dir>/<phase>.json, status.json).",
	"dir: \"\"\nevery: 5s\n", DefaultConfig, New)

// quotaUnknown is reported as greynoise_quota_remaining until the
// greynoise stage sets the run gauge of that name (no stage, or no quota).
const quotaUnknown = -1

// Config holds the sink's options.
type Config struct {
	// Dir is the status directory; empty means --status-dir, else the
	// default of DefaultDir.
	Dir string `koanf:"dir"`
	// Every is the least time between two snapshots while running; zero
	// writes after every committed batch.
	Every time.Duration `koanf:"every"`
}

// DefaultConfig returns the defaults: the default directory, a snapshot
// at most every five seconds, upstream's monitor polling interval.
func DefaultConfig() *Config { return &Config{Every: 5 * time.Second} }

// Validate checks the interval.
func (c *Config) Validate() error {
	if c.Every < 0 {
		return fmt.Errorf("every %s: must not be negative", c.Every)
	}
	return nil
}

// Sink counts committed records and writes status snapshots. Write and
// Finish are safe for concurrent use.
//
// greynoise_quota_remaining and the greynoise_not_found and
// greynoise_rate_limited counters come from the run's Progress, where the
// greynoise stage reports them.
type Sink struct {
	dir, phase, runID string
	every             time.Duration
	now               func() time.Time
	started           time.Time
	progress          *pipeline.Progress
	log               *slog.Logger

	stop     chan struct{} // closed to stop tick
	stopped  chan struct{} // closed when tick returned
	stopOnce sync.Once

	mu        sync.Mutex
	m         Metrics
	lastIP    string
	lastWrite time.Time
	wrote     bool
	failing   bool // a write failed and was logged; cleared by a success
}

var (
	_ pipeline.Sink     = (*Sink)(nil)
	_ pipeline.Finisher = (*Sink)(nil)
	_ pipeline.Closer   = (*Sink)(nil)
)

// New builds the sink: it picks the directory (Config.Dir, else
// env.StatusDir, else DefaultDir), creates it and checks it is writable, so
// a bad directory stops the run before any work rather than after.
func New(env pipeline.Env, cfg *Config) (pipeline.Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sink %q: %w", env.ID, err)
	}
	phase := env.Pipeline
	if phase == "" || phase == "status" || phase == "." || phase == ".." || strings.ContainsAny(phase, `/\`) {
		return nil, fmt.Errorf("sink %q: %w: %q", env.ID, ErrPhaseName, phase)
	}
	override := cfg.Dir
	if override == "" {
		override = env.StatusDir
	}
	dir := DefaultDir(override)
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("sink %q: %w %s (choose another with --status-dir or the sink's dir option): %w", env.ID, ErrUnwritableDir, dir, err)
	}
	env = env.WithDefaults()
	now, log := env.Now, env.Logger
	s := &Sink{
		dir: dir, phase: phase, runID: env.RunID, every: cfg.Every,
		now: now, started: now(), progress: env.Progress, log: log,
		m:    Metrics{State: string(pipeline.RunRunning), SourcesSkipped: map[string]int64{}},
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	if cfg.Every > 0 {
		go s.tick()
	} else {
		close(s.stopped)
	}
	return s, nil
}

// tick refreshes the snapshot every Every even when no batch commits, so a
// phase that works without committing records (the backfill's snapshot
// sweep, a slow provider) still shows its progress and counters. Finish
// and Close stop it and wait for it.
func (s *Sink) tick() {
	defer close(s.stopped)
	t := time.NewTicker(s.every)
	defer t.Stop()
	// The ticker has no caller whose context it could use; writes are
	// bounded by the lock's own timeout.
	ctx := context.Background()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if now := s.now(); !s.wrote || now.Sub(s.lastWrite) >= s.every {
				s.writeOrWarn(ctx, now)
			}
			s.mu.Unlock()
		}
	}
}

// halt stops the ticker and waits for it; it is safe to call again.
func (s *Sink) halt() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.stopped
}

// Close stops the periodic snapshots.
func (s *Sink) Close() error {
	s.halt()
	return nil
}

// checkDir creates dir and proves it writable with a throwaway file.
func checkDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".probe.*.tmp")
	if err != nil {
		return err
	}
	_ = f.Close()
	return os.Remove(f.Name())
}

// Dir returns the directory the sink writes to.
func (s *Sink) Dir() string { return s.dir }

// Write counts a committed batch and writes a snapshot when Every has
// passed since the last one (always for the first batch). A failed
// snapshot is logged, not returned: status must never fail a run.
func (s *Sink) Write(ctx context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count(b)
	now := s.now()
	if s.wrote && now.Sub(s.lastWrite) < s.every {
		return nil
	}
	s.writeOrWarn(ctx, now)
	return nil
}

// writeOrWarn writes a snapshot; a failure is logged once until a write
// succeeds again. s.mu is held.
func (s *Sink) writeOrWarn(ctx context.Context, now time.Time) {
	if err := s.write(ctx, now); err != nil {
		if !s.failing {
			s.log.WarnContext(ctx, "status snapshot not written; the run goes on", "dir", s.dir, "err", err)
		}
		s.failing = true
		return
	}
	s.failing = false
}

// Finish writes the final snapshot with the run's end state.
func (s *Sink) Finish(ctx context.Context, sum pipeline.Summary) error {
	s.halt()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.State = string(sum.State)
	if err := s.write(ctx, s.now()); err != nil {
		return fmt.Errorf("final status snapshot: %w", err)
	}
	return nil
}

func (s *Sink) count(b pipeline.Batch) {
	for _, r := range b {
		s.m.IPsProcessed++
		if r.Rejected() {
			s.m.IPErrors++
		}
		if r.Addr.IsValid() {
			// Only canonical addresses: Raw of a rejected record may be
			// arbitrary input.
			s.lastIP = r.Addr.String()
		}
		cached := false
		for name, src := range r.Sources {
			switch src.State {
			case pipeline.StateCached:
				cached = true
			case pipeline.StateSkipped:
				s.m.SourcesSkipped[name]++
			}
		}
		if cached {
			s.m.CacheHits++
		}
		s.m.MaxMindHits += hit(r, pipeline.SourceMaxMind)
		s.m.CymruHits += hit(r, pipeline.SourceCymru)
		s.m.GreyNoiseHits += hit(r, pipeline.SourceGreyNoise)
	}
}

// hit is 1 when the record holds an answer from source, fresh or cached.
func hit(r *pipeline.Record, source string) int64 {
	if _, ok := r.Enrichment[source]; ok && r.Settled(source) {
		return 1
	}
	return 0
}

// write builds the snapshot at now and writes it; s.mu is held.
func (s *Sink) write(ctx context.Context, now time.Time) error {
	snap := s.snapshot(now)
	if err := writePhase(ctx, s.dir, snap); err != nil {
		return err
	}
	s.lastWrite, s.wrote = now, true
	return nil
}

func (s *Sink) snapshot(now time.Time) Snapshot {
	m := s.m
	m.SourcesSkipped = maps.Clone(s.m.SourcesSkipped)
	started := s.started
	m.IPsTotal = -1
	if s.progress != nil {
		if !s.progress.Started.IsZero() {
			started = s.progress.Started
		}
		m.IPsTotal = s.progress.Total()
	}
	if m.IPsTotal < 0 {
		m.IPsTotal = m.IPsProcessed
	}
	if elapsed := now.Sub(started); elapsed > 0 {
		m.ElapsedSeconds = elapsed.Seconds()
		m.IPsPerSecond = float64(m.IPsProcessed) / m.ElapsedSeconds
	}
	m.GreyNoiseQuotaRemaining = quotaUnknown
	if s.progress != nil {
		if v, ok := s.progress.Value("greynoise_quota_remaining"); ok {
			m.GreyNoiseQuotaRemaining = v
		}
		m.GreyNoiseNotFound, _ = s.progress.Value("greynoise_not_found")
		m.GreyNoiseRateLimited, _ = s.progress.Value("greynoise_rate_limited")
		m.Counters = s.progress.Values()
	}
	return Snapshot{
		Phase:       s.phase,
		IngestID:    s.runID,
		LastUpdated: now.UTC().Format(time.RFC3339),
		Metrics:     m,
		Checkpoint:  Checkpoint{LastIP: s.lastIP, Committed: m.IPsProcessed},
		DeadLetter:  DeadLetter{Total: m.IPErrors},
	}
}
