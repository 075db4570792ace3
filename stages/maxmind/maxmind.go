package maxmind

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Spec registers the maxmind stage.
var Spec = pipeline.StageSpec("maxmind",
	"Look addresses up in local GeoLite2 City/Country and ASN databases (hot-reloaded).",
	"city_db: /var/lib/GeoIP/GeoLite2-City.mmdb\nasn_db: /var/lib/GeoIP/GeoLite2-ASN.mmdb\nconcurrency: 2\n",
	DefaultConfig, New)

// Skip reasons; short and stable, since reports group records by them.
const (
	ReasonUnavailable = "maxmind databases unavailable"
)

const source = pipeline.SourceMaxMind

// Config holds the stage's options.
type Config struct {
	// CityDB is a GeoLite2/GeoIP2 City or Country database; empty: none.
	CityDB string `koanf:"city_db"`
	// ASNDB is a GeoLite2 ASN database; empty: none.
	ASNDB string `koanf:"asn_db"`
	// ReloadCheck is how often, at most, the files are checked for a
	// replacement; 0 checks before every batch.
	ReloadCheck time.Duration `koanf:"reload_check"`
	// Concurrency is the number of batches looked up at once. Lookups are
	// local and CPU-bound, so more than the machine's cores gains nothing.
	Concurrency int `koanf:"concurrency"`
}

// DefaultConfig returns the defaults: geoipupdate's default paths, checked
// for replacement once a minute.
func DefaultConfig() *Config {
	return &Config{
		CityDB:      "/var/lib/GeoIP/GeoLite2-City.mmdb",
		ASNDB:       "/var/lib/GeoIP/GeoLite2-ASN.mmdb",
		ReloadCheck: time.Minute,
		Concurrency: 2,
	}
}

// Validate checks the options without touching the files: a missing file
// is not a config error, the stage degrades.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.CityDB) == "" && strings.TrimSpace(c.ASNDB) == "" {
		return ErrNoDatabase
	}
	if c.ReloadCheck < 0 {
		return fmt.Errorf("reload_check %s: %w", c.ReloadCheck, ErrReloadCheck)
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("concurrency %d: %w", c.Concurrency, ErrConcurrency)
	}
	return nil
}

// Stage looks records up in the databases. Process is safe for concurrent
// use.
type Stage struct {
	log      *slog.Logger
	now      func() time.Time
	progress *pipeline.Progress
	every    time.Duration
	workers  int

	city, asn slot

	reloadMu  sync.Mutex
	lastCheck time.Time
	closed    bool
}

var (
	_ pipeline.Stage    = (*Stage)(nil)
	_ pipeline.Asker    = (*Stage)(nil)
	_ pipeline.Closer   = (*Stage)(nil)
	_ pipeline.Parallel = (*Stage)(nil)
)

// New opens the databases. A file that is missing or does not open is
// warned about once and not an error: the stage works with what it has and
// picks the file up when it appears.
func New(env pipeline.Env, cfg *Config) (pipeline.Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stage %q: %w", env.ID, err)
	}
	env = env.WithDefaults()
	s := &Stage{
		log: env.Logger, now: env.Now, progress: env.Progress, every: cfg.ReloadCheck, workers: cfg.Concurrency,
		city: slot{option: optCity, path: strings.TrimSpace(cfg.CityDB), hint: "stages." + env.ID + ".with." + optCity},
		asn:  slot{option: optASN, path: strings.TrimSpace(cfg.ASNDB), hint: "stages." + env.ID + ".with." + optASN},
	}
	s.city.load(s.log, true)
	s.asn.load(s.log, true)
	s.lastCheck = s.now()
	return s, nil
}

// Parallelism returns how many batches the runtime may hand the stage at
// once.
func (s *Stage) Parallelism() int { return s.workers }

// reload checks the files for replacement when reload_check has passed
// since the last check. A batch already checking is enough: others go on
// with the loaded readers.
func (s *Stage) reload() {
	if !s.reloadMu.TryLock() {
		return
	}
	defer s.reloadMu.Unlock()
	now := s.now()
	if s.closed || now.Sub(s.lastCheck) < s.every {
		return
	}
	s.lastCheck = now
	s.city.load(s.log, false)
	s.asn.load(s.log, false)
}

// Asks returns the source the stage asks for, for the cache.
func (s *Stage) Asks() []string { return []string{source} }

// Process looks up the eligible records of b in place and returns b.
func (s *Stage) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	if len(b) == 0 {
		return b, nil
	}
	s.reload()
	l := lookup{city: s.city.acquire(), asn: s.asn.acquire(), cachedAt: pipeline.At(s.now())}
	defer l.release()
	current := l.newestBuild()
	l.build = pipeline.At(current)

	var looked int64
	for _, r := range b {
		if !r.Eligible() || (r.Settled(source) && keep(r, current)) {
			continue
		}
		if l.city == nil && l.asn == nil {
			r.Skip(source, ReasonUnavailable)
			continue
		}
		looked++
		res, err := l.find(r.Addr)
		switch {
		case err != nil:
			r.Fail(source, err)
		case res == nil:
			// A clean miss replaces a stale cached answer.
			delete(r.Enrichment, source)
			r.Set(source, nil)
		default:
			r.Set(source, res)
			if a := res.ASNInfo(); a != nil {
				r.ASN = a
			}
		}
	}
	if s.progress != nil && looked > 0 {
		s.progress.Add("maxmind_lookups", looked)
	}
	s.log.DebugContext(ctx, "looked up batch", "batch_size", len(b), "lookups", looked, "build", current)
	return b, nil
}

// keep reports whether a record's settled answer stands, setting the
// record's ASN from it. A cached answer stands when it came from a build
// at least as new as current; a cached "not found" carries no build, so it
// stands only while no database is loaded.
func keep(r *pipeline.Record, current time.Time) bool {
	m, _ := r.Enrichment[source].(*pipeline.MaxMindResult)
	if r.Source(source).State == pipeline.StateCached && !current.IsZero() {
		if m == nil || m.DatabaseBuild.Before(current) {
			return false
		}
	}
	if r.ASN == nil {
		r.ASN = m.ASNInfo()
	}
	return true
}

// Close unloads the databases; each reader closes once no batch uses it.
// It is safe to call more than once.
func (s *Stage) Close() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.closed = true
	s.city.swap(nil)
	s.asn.swap(nil)
	return nil
}

// lookup is the pair of readers one batch uses.
type lookup struct {
	city, asn         *reader
	cachedAt          pipeline.Timestamp
	build             pipeline.Timestamp // the newest build of the two
	lastCity, lastASN last
}

func (l *lookup) release() {
	if l.city != nil {
		l.city.release()
	}
	if l.asn != nil {
		l.asn.release()
	}
}

// newestBuild returns the newest build of the loaded databases, zero with
// none.
func (l *lookup) newestBuild() time.Time {
	var t time.Time
	for _, rd := range []*reader{l.city, l.asn} {
		if rd != nil && rd.build.After(t) {
			t = rd.build
		}
	}
	return t
}

// answer is a result with room for its pointer fields, so one answer costs
// one allocation.
type answer struct {
	res            pipeline.MaxMindResult
	lat, lon       float64
	asn            int64
	accuracyRadius int
}

// find looks addr up in both databases; nil means neither has a record.
func (l *lookup) find(addr netip.Addr) (*pipeline.MaxMindResult, error) {
	a := new(answer)
	var network netip.Prefix
	found := false
	if l.city != nil {
		geo, n, err := l.city.lookup(addr, &l.lastCity)
		if err != nil {
			return nil, fmt.Errorf("%s lookup: %w", optCity, err)
		}
		if found, network = geo.found, n; found {
			a.res.Country, a.res.CountryName, a.res.City = geo.country, geo.countryName, geo.city
			if geo.coordinates {
				a.lat, a.lon = geo.lat, geo.lon
				a.res.Latitude, a.res.Longitude = &a.lat, &a.lon
			}
			if geo.accuracyRadius != 0 {
				a.accuracyRadius = geo.accuracyRadius
				a.res.AccuracyRadius = &a.accuracyRadius
			}
		}
	}
	if l.asn != nil {
		as, n, err := l.asn.lookup(addr, &l.lastASN)
		if err != nil {
			return nil, fmt.Errorf("%s lookup: %w", optASN, err)
		}
		if as.found {
			if !found {
				network = n
			}
			found = true
			if as.asn != 0 {
				a.asn = as.asn
				a.res.ASN = &a.asn
			}
			a.res.ASNOrg = as.asnOrg
		}
	}
	if !found {
		return nil, nil
	}
	a.res.Network = network.String()
	a.res.DatabaseBuild = l.build
	a.res.CachedAt = l.cachedAt
	return &a.res, nil
}
