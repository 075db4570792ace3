package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// File names inside the status directory.
const (
	aggregateFile = "status.json"
	lockFile      = "status.json.lock"
)

// dshieldDir is the status directory of a DShield sensor, used when it
// exists so upstream's monitoring finds our snapshots.
const dshieldDir = "/mnt/dshield/data/logs/status"

// Metrics are the counters of one phase (DESIGN §5).
type Metrics struct {
	IPsTotal       int64   `json:"ips_total"`
	IPsProcessed   int64   `json:"ips_processed"`
	IPErrors       int64   `json:"ip_errors"`
	IPsPerSecond   float64 `json:"ips_per_second"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	CacheHits      int64   `json:"cache_hits"`
	MaxMindHits    int64   `json:"maxmind_hits"`
	CymruHits      int64   `json:"cymru_hits"`
	GreyNoiseHits  int64   `json:"greynoise_hits"`
	// GreyNoiseQuotaRemaining is -1 while unknown.
	GreyNoiseQuotaRemaining int64 `json:"greynoise_quota_remaining"`
	// GreyNoiseNotFound and GreyNoiseRateLimited are the greynoise stage's
	// run counters (addresses GreyNoise has not seen, 429 answers); they
	// count lookups, committed or not, and are absent from older files.
	GreyNoiseNotFound    int64            `json:"greynoise_not_found"`
	GreyNoiseRateLimited int64            `json:"greynoise_rate_limited"`
	SourcesSkipped       map[string]int64 `json:"sources_skipped"`
	State                string           `json:"state"`
	// Counters are every run counter and gauge the components report
	// (provider queries, cache hits per tier, backfill sessions scanned and
	// written, …), by name; absent from older files.
	Counters map[string]int64 `json:"counters,omitempty"`
}

// Checkpoint says how far the phase got: the last committed address and
// the number of committed records.
type Checkpoint struct {
	LastIP    string `json:"last_ip"`
	Committed int64  `json:"committed"`
}

// DeadLetter counts the records kept as dead letters.
type DeadLetter struct {
	Total int64 `json:"total"`
}

// Snapshot is the content of <dir>/<phase>.json.
type Snapshot struct {
	Phase       string     `json:"phase"`
	IngestID    string     `json:"ingest_id"`
	LastUpdated string     `json:"last_updated"`
	Metrics     Metrics    `json:"metrics"`
	Checkpoint  Checkpoint `json:"checkpoint"`
	DeadLetter  DeadLetter `json:"dead_letter"`
}

// Phase is one entry of the aggregate: a snapshot and the file it is in.
type Phase struct {
	Snapshot
	StatusFile string `json:"status_file"`
}

// Aggregate is the content of <dir>/status.json.
type Aggregate struct {
	LastUpdated string           `json:"last_updated"`
	Phases      map[string]Phase `json:"phases"`
	// Foreign holds phases written by other tools (upstream's emitter)
	// whose shape differs from Phase, as found in the file.
	Foreign map[string]json.RawMessage `json:"-"`
}

// PhaseNames returns the names of Phases, sorted, so listings are stable.
func (a Aggregate) PhaseNames() []string {
	return slices.Sorted(maps.Keys(a.Phases))
}

// rawAggregate is the aggregate as read and rewritten by the sink, which
// must keep every other phase exactly as it found it.
type rawAggregate struct {
	LastUpdated string                     `json:"last_updated"`
	Phases      map[string]json.RawMessage `json:"phases"`
}

// DefaultDir returns the status directory: override if set, else the
// DShield sensor's directory if it exists, else
// ~/.cache/cowrie-enrich/status.
func DefaultDir(override string) string {
	return chooseDir(override, dshieldDir, os.UserHomeDir)
}

func chooseDir(override, dshield string, home func() (string, error)) string {
	if override != "" {
		return override
	}
	if fi, err := os.Stat(dshield); err == nil && fi.IsDir() {
		return dshield
	}
	h, err := home()
	if err != nil || h == "" {
		// Without a home directory the cache lives next to other
		// temporary files rather than in the working directory.
		h = os.TempDir()
	}
	return filepath.Join(h, ".cache", "cowrie-enrich", "status")
}

// Read returns the aggregate in dir. A missing file is an empty aggregate,
// so `status` works before the first run.
func Read(dir string) (Aggregate, error) {
	agg := Aggregate{Phases: map[string]Phase{}, Foreign: map[string]json.RawMessage{}}
	raw, err := readAggregate(filepath.Join(dir, aggregateFile))
	if err != nil {
		return agg, err
	}
	agg.LastUpdated = raw.LastUpdated
	for name, msg := range raw.Phases {
		var p Phase
		if err := strictDecode(msg, &p); err != nil {
			agg.Foreign[name] = msg
			continue
		}
		agg.Phases[name] = p
	}
	return agg, nil
}

// strictDecode decodes msg into v, refusing keys v does not know, so that a
// phase of another shape lands in Aggregate.Foreign instead of being
// half-read.
func strictDecode(msg []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(msg))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

func readAggregate(path string) (rawAggregate, error) {
	var agg rawAggregate
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return agg, nil
	}
	if err != nil {
		return agg, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &agg); err != nil {
		return agg, fmt.Errorf("decode %s: %w", path, err)
	}
	return agg, nil
}

// writePhase writes the phase file and merges the phase into the aggregate.
func writePhase(ctx context.Context, dir string, snap Snapshot) error {
	file := snap.Phase + ".json"
	b, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := writeAtomic(dir, file, b); err != nil {
		return err
	}
	entry, err := json.Marshal(Phase{Snapshot: snap, StatusFile: file})
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}

	unlock, err := lock(ctx, filepath.Join(dir, lockFile))
	if err != nil {
		return fmt.Errorf("lock %s: %w", filepath.Join(dir, lockFile), err)
	}
	defer unlock()
	agg, err := readAggregate(filepath.Join(dir, aggregateFile))
	if err != nil {
		// A corrupt aggregate cannot be merged into; starting afresh
		// repairs it, and every phase rewrites its entry on its next
		// snapshot.
		agg = rawAggregate{}
	}
	if agg.Phases == nil {
		agg.Phases = map[string]json.RawMessage{}
	}
	agg.LastUpdated = snap.LastUpdated
	agg.Phases[snap.Phase] = entry
	b, err = json.Marshal(agg)
	if err != nil {
		return fmt.Errorf("encode aggregate: %w", err)
	}
	return writeAtomic(dir, aggregateFile, b)
}

// writeAtomic replaces dir/name with data: a temp file in the same
// directory (same file system, so rename is atomic), fsync, rename.
func writeAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	// CreateTemp makes the file private; snapshots are read by monitoring
	// running as other users, as upstream's were.
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}
