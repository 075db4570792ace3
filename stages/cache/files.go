package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// files is the L3 tier: one JSON file per source and address in upstream
// cowrieprocessor's cache_dir layout, so an existing upstream cache is
// read and stays readable by upstream.
type files struct {
	dir string
}

// path returns <dir>/<source>/<sha256(ip)[:2]>/<sha256(ip)>.json, the path
// upstream's EnrichmentCacheManager uses for the key ip.
func (f *files) path(source, ip string) string {
	sum := sha256.Sum256([]byte(ip))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(f.dir, source, h[:2], h+".json")
}

// fileEntry is every key a cache file may hold. Upstream writes, for
// Cymru, {ip_address, asn, asn_org, country_code, registry, prefix,
// allocation_date, source, cached_at, ttl_days} and, for GreyNoise,
// {ip_address, noise, riot, classification, name, last_seen, source,
// cached_at, ttl_days}; it wrote no MaxMind files, so those hold the
// inventory's maxmind keys. not_found marks a negative answer (upstream
// never cached one).
type fileEntry struct {
	IPAddress string             `json:"ip_address"`
	Source    string             `json:"source"`
	NotFound  bool               `json:"not_found,omitempty"`
	CachedAt  pipeline.Timestamp `json:"cached_at"`
	TTLDays   int                `json:"ttl_days"`
}

type cymruFile struct {
	fileEntry
	ASN            *int64  `json:"asn"`
	ASNOrg         *string `json:"asn_org"`
	CountryCode    *string `json:"country_code"`
	Registry       *string `json:"registry"`
	Prefix         *string `json:"prefix"`
	AllocationDate *string `json:"allocation_date"`
}

type greyNoiseFile struct {
	fileEntry
	Noise          bool    `json:"noise"`
	RIOT           bool    `json:"riot"`
	Classification *string `json:"classification"`
	Name           *string `json:"name"`
	LastSeen       *string `json:"last_seen"`
}

// maxMindFile carries cached_at (and every other answer key) in the
// embedded result, so no key is declared twice.
type maxMindFile struct {
	IPAddress string `json:"ip_address"`
	Source    string `json:"source"`
	TTLDays   int    `json:"ttl_days"`
	*pipeline.MaxMindResult
}

// read returns the file's entry; ok is false when there is no file. An
// entry without cached_at is dated by the file's mtime, as upstream did.
func (f *files) read(source, ip string) (e entry, ok bool, err error) {
	p := f.path(source, ip)
	raw, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return entry{}, false, nil
	}
	if err != nil {
		return entry{}, false, err
	}
	e, err = decodeFile(source, raw)
	if err != nil {
		return entry{}, false, fmt.Errorf("%s: %w", p, err)
	}
	if e.cachedAt.IsZero() {
		if st, err := os.Stat(p); err == nil {
			e.cachedAt = st.ModTime()
		}
	}
	return e, true, nil
}

func decodeFile(source string, raw []byte) (entry, error) {
	var head fileEntry
	if err := json.Unmarshal(raw, &head); err != nil {
		return entry{}, fmt.Errorf("%w: %s file: %v", ErrCorrupt, source, err)
	}
	if head.NotFound {
		return entry{cachedAt: head.CachedAt.Time}, nil
	}
	var v any
	switch source {
	case pipeline.SourceCymru:
		var c cymruFile
		if err := json.Unmarshal(raw, &c); err != nil {
			return entry{}, fmt.Errorf("%w: cymru file: %v", ErrCorrupt, err)
		}
		v = &pipeline.CymruResult{ASN: c.ASN, ASNOrg: str(c.ASNOrg), Country: strings.ToUpper(str(c.CountryCode)),
			Registry: strings.ToLower(str(c.Registry)), Prefix: str(c.Prefix), AllocationDate: str(c.AllocationDate),
			CachedAt: c.CachedAt}
	case pipeline.SourceGreyNoise:
		var g greyNoiseFile
		if err := json.Unmarshal(raw, &g); err != nil {
			return entry{}, fmt.Errorf("%w: greynoise file: %v", ErrCorrupt, err)
		}
		v = &pipeline.GreyNoiseResult{Noise: g.Noise, RIOT: g.RIOT, Classification: str(g.Classification),
			Name: str(g.Name), LastSeen: lastSeen(str(g.LastSeen)), CachedAt: g.CachedAt}
	case pipeline.SourceMaxMind:
		m := new(pipeline.MaxMindResult)
		if err := json.Unmarshal(raw, m); err != nil {
			return entry{}, fmt.Errorf("%w: maxmind file: %v", ErrCorrupt, err)
		}
		v = m
	default:
		return entry{}, fmt.Errorf("%w: unknown source %q", ErrCorrupt, source)
	}
	return entry{value: v, cachedAt: head.CachedAt.Time}, nil
}

// encodeFile writes e with upstream's keys for source.
func encodeFile(source, ip string, e entry, ttl time.Duration) ([]byte, error) {
	head := fileEntry{IPAddress: ip, Source: source, NotFound: e.negative(), CachedAt: pipeline.At(e.cachedAt),
		TTLDays: max(int(ttl/(24*time.Hour)), 1)}
	var v any = head
	switch r := e.value.(type) {
	case *pipeline.CymruResult:
		v = cymruFile{fileEntry: head, ASN: r.ASN, ASNOrg: &r.ASNOrg, CountryCode: &r.Country, Registry: &r.Registry,
			Prefix: &r.Prefix, AllocationDate: &r.AllocationDate}
	case *pipeline.GreyNoiseResult:
		v = greyNoiseFile{fileEntry: head, Noise: r.Noise, RIOT: r.RIOT, Classification: &r.Classification,
			Name: nullable(r.Name), LastSeen: nullable(r.LastSeen)}
	case *pipeline.MaxMindResult:
		m := *r
		m.CachedAt = head.CachedAt
		v = maxMindFile{IPAddress: ip, Source: source, TTLDays: head.TTLDays, MaxMindResult: &m}
	}
	return json.Marshal(v)
}

// write stores e atomically (temp file, rename) so a reader never sees a
// half-written file; upstream's writes were not atomic.
func (f *files) write(source, ip string, e entry, ttl time.Duration) error {
	raw, err := encodeFile(source, ip, e, ttl)
	if err != nil {
		return err
	}
	p := f.path(source, ip)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(raw)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// lastSeen normalises GreyNoise's last_seen to the inventory's form
// (YYYY-MM-DDT00:00:00+00:00); a bare date, as the API sends it, gets
// midnight UTC.
func lastSeen(s string) string {
	if len(s) == len("2006-01-02") {
		if _, err := time.Parse("2006-01-02", s); err == nil {
			return s + "T00:00:00+00:00"
		}
	}
	return s
}
