package iptype

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oschwald/geoip2-golang/v2"

	"github.com/cowrie-enrich/cowrie-enrich/internal/jsonw"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Spec registers the iptype stage.
var Spec = pipeline.StageSpec("iptype",
	"classify addresses as bogon, tor, vpn, cloud, hosting, residential or unknown from local lists and AS names",
	"tor_exits: \"\"\naws_ranges: \"\"\ngcp_ranges: \"\"\nazure_ranges: \"\"\ncidr_lists: []\nanonymous_ip_db: \"\"\nisp_db: \"\"\nreload_check: 1m\n",
	DefaultConfig, New)

// Key is the enrichment key of the classification, upstream's.
const Key = "ip_classification"

// The address types, in precedence order (see Rank).
const (
	TypeBogon       = "bogon"
	TypeVPN         = "vpn"
	TypeTor         = "tor"
	TypeCloud       = "cloud"
	TypeHosting     = "hosting"
	TypeResidential = "residential"
	TypeUnknown     = "unknown"
)

// Evidence names, stored as the classification's source.
const (
	SourceValidate    = "validate"
	SourceTorExits    = "tor_exits"
	SourceAWSRanges   = "aws_ranges"
	SourceGCPRanges   = "gcp_ranges"
	SourceAzureRanges = "azure_ranges"
	SourceCIDRList    = "cidr_list"
	SourceAnonymousIP = "anonymous_ip_db"
	SourceISP         = "isp_db"
	SourceASNOrg      = "asn_org"
)

// Confidence of each kind of evidence.
const (
	confidenceBogon       = 1
	confidenceList        = 0.95
	confidenceAnonymousIP = 0.9
	confidenceISPName     = 0.7
	confidenceASName      = 0.6
	confidenceResidential = 0.5 // an access-network word in an AS name
)

// ReasonNoEvidence is the skip reason of an address nothing is known about.
const ReasonNoEvidence = "no evidence"

// Classification is enrichment.ip_classification, with upstream's keys.
type Classification struct {
	IPType       string             `json:"ip_type"`
	Provider     string             `json:"provider"` // "" when unknown
	Confidence   float64            `json:"confidence"`
	Source       string             `json:"source"`
	ClassifiedAt pipeline.Timestamp `json:"classified_at"`
}

// ClassifiedType returns the address type; the inventory sink writes it to
// the ip_types column.
func (c *Classification) ClassifiedType() string { return c.IPType }

// AppendJSON appends what encoding/json writes for c, without reflection:
// the sink writes one classification for every address. A confidence that
// is NaN or infinite is not JSON: the error is encoding/json's.
func (c Classification) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"ip_type":`...)
	b = jsonw.AppendString(b, c.IPType)
	b = append(b, `,"provider":`...)
	b = jsonw.AppendString(b, c.Provider)
	b = append(b, `,"confidence":`...)
	b, ok := jsonw.AppendFloat(b, c.Confidence)
	if !ok {
		return b, &json.UnsupportedValueError{Value: reflect.ValueOf(c.Confidence), Str: strconv.FormatFloat(c.Confidence, 'g', -1, 64)}
	}
	b = append(b, `,"source":`...)
	b = jsonw.AppendString(b, c.Source)
	b = append(b, `,"classified_at":`...)
	b, _ = c.ClassifiedAt.AppendJSON(b)
	return append(b, '}'), nil
}

// Rank returns the precedence of an address type: lower wins.
func Rank(ipType string) int {
	switch ipType {
	case TypeBogon:
		return 0
	case TypeVPN:
		return 1
	case TypeTor:
		return 2
	case TypeCloud:
		return 3
	case TypeHosting:
		return 4
	case TypeResidential:
		return 5
	}
	return 6
}

// better reports whether a should replace b: a higher-ranked type, or the
// same type on stronger evidence.
func better(a, b Classification) bool {
	ra, rb := Rank(a.IPType), Rank(b.IPType)
	return ra < rb || (ra == rb && a.Confidence > b.Confidence)
}

// Stage classifies records. Process is safe for concurrent use.
type Stage struct {
	log      *slog.Logger
	now      func() time.Time
	progress *pipeline.Progress
	every    time.Duration

	lists     []*file[*rangeSet]
	anon, isp *file[*geoip2.Reader]

	reloadMu  sync.Mutex
	lastCheck time.Time
	closed    bool
}

var (
	_ pipeline.Stage  = (*Stage)(nil)
	_ pipeline.Closer = (*Stage)(nil)
	_ pipeline.Asker  = (*Stage)(nil)
)

// Asks returns nil: the stage reads local lists and databases only.
func (s *Stage) Asks() []string { return nil }

// New loads the configured files. A file that is missing or does not parse
// is warned about once and not an error: the stage classifies without it
// and picks it up when it appears.
func New(env pipeline.Env, cfg *Config) (pipeline.Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stage %q: %w", env.ID, err)
	}
	env = env.WithDefaults()
	s := &Stage{log: env.Logger, now: env.Now, progress: env.Progress, every: cfg.ReloadCheck}
	add := func(option, path string, parse func(io.Reader) (parsed, error), c Classification) {
		if path = strings.TrimSpace(path); path != "" {
			c.Confidence = confidenceList
			s.lists = append(s.lists, rangeFile(option, path, parse, c))
		}
	}
	add("tor_exits", cfg.TorExits, parseLines, Classification{IPType: TypeTor, Source: SourceTorExits})
	add("aws_ranges", cfg.AWSRanges, parseAWS, Classification{IPType: TypeCloud, Provider: "aws", Source: SourceAWSRanges})
	add("gcp_ranges", cfg.GCPRanges, parseGCP, Classification{IPType: TypeCloud, Provider: "gcp", Source: SourceGCPRanges})
	add("azure_ranges", cfg.AzureRanges, parseAzure, Classification{IPType: TypeCloud, Provider: "azure", Source: SourceAzureRanges})
	for i, l := range cfg.CIDRLists {
		typ := l.Type
		if typ == "" {
			typ = TypeHosting
		}
		add(fmt.Sprintf("cidr_lists[%d]", i), l.Path, parseLines,
			Classification{IPType: typ, Provider: strings.TrimSpace(l.Label), Source: SourceCIDRList})
	}
	if p := strings.TrimSpace(cfg.AnonymousIPDB); p != "" {
		s.anon = mmdbFile("anonymous_ip_db", p, func(db *geoip2.Reader, a netip.Addr) error { _, err := db.AnonymousIP(a); return err })
	}
	if p := strings.TrimSpace(cfg.ISPDB); p != "" {
		s.isp = mmdbFile("isp_db", p, func(db *geoip2.Reader, a netip.Addr) error { _, err := db.ISP(a); return err })
	}
	s.load(true)
	s.lastCheck = s.now()
	return s, nil
}

// load checks every file for a new version.
func (s *Stage) load(first bool) {
	for _, f := range s.lists {
		f.load(s.log, first)
	}
	for _, f := range []*file[*geoip2.Reader]{s.anon, s.isp} {
		if f != nil {
			f.load(s.log, first)
		}
	}
}

// reload checks the files when reload_check has passed since the last
// check. A batch already checking is enough: others go on with the loaded
// versions.
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
	s.load(false)
}

// evidence is what one batch classifies with: the versions loaded when it
// started.
type evidence struct {
	sets      []*rangeSet
	anon, isp *geoip2.Reader
}

func (s *Stage) evidence() evidence {
	var ev evidence
	for _, f := range s.lists {
		if v, ok := f.get(); ok {
			ev.sets = append(ev.sets, v)
		}
	}
	if s.anon != nil {
		ev.anon, _ = s.anon.get()
	}
	if s.isp != nil {
		ev.isp, _ = s.isp.get()
	}
	return ev
}

// Process classifies the valid records of b in place and returns b.
func (s *Stage) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	if len(b) == 0 {
		return b, nil
	}
	s.reload()
	ev := s.evidence()
	at := pipeline.At(s.now())
	var classified int64
	for _, r := range b {
		if r.Rejected() || !r.Addr.IsValid() {
			continue
		}
		if r.IsBogon() {
			r.Set(Key, &Classification{IPType: TypeBogon, Confidence: confidenceBogon, Source: SourceValidate, ClassifiedAt: at})
			classified++
			continue
		}
		c, err := ev.classify(r.Addr, asOrg(r))
		switch {
		case err != nil:
			r.Fail(Key, err)
			continue
		case c.IPType == TypeUnknown && !r.Enriched():
			r.Skip(Key, ReasonNoEvidence)
			continue
		}
		c.ClassifiedAt = at
		r.Set(Key, &c)
		classified++
	}
	if classified > 0 {
		s.progress.Add("iptype_classified", classified)
	}
	s.log.DebugContext(ctx, "classified batch", "batch_size", len(b), "classified", classified, "files", len(ev.sets))
	return b, nil
}

// classify returns the best classification the evidence gives addr, whose
// AS organisation name is org ("" when unknown).
func (ev evidence) classify(addr netip.Addr, org string) (Classification, error) {
	best := Classification{IPType: TypeUnknown}
	consider := func(c Classification) {
		if better(c, best) {
			best = c
		}
	}
	for _, set := range ev.sets {
		if set.ranges.contains(addr) {
			consider(set.class)
		}
	}
	if ev.anon != nil {
		rec, err := ev.anon.AnonymousIP(addr)
		if err != nil {
			return best, fmt.Errorf("%s lookup: %w", SourceAnonymousIP, err)
		}
		for _, c := range anonymous(rec) {
			consider(c)
		}
	}
	if ev.isp != nil {
		rec, err := ev.isp.ISP(addr)
		if err != nil {
			return best, fmt.Errorf("%s lookup: %w", SourceISP, err)
		}
		for _, name := range []string{rec.ISP, rec.Organization} {
			if c, ok := heuristic(name); ok {
				c.Source, c.Confidence = SourceISP, confidenceISPName
				consider(c)
			}
		}
	}
	if c, ok := heuristic(org); ok {
		c.Source, c.Confidence = SourceASNOrg, confidenceASName
		if c.IPType == TypeResidential {
			c.Confidence = confidenceResidential
		}
		consider(c)
	}
	return best, nil
}

// anonymous returns what an Anonymous-IP record says about an address.
// Public proxies count as vpn (upstream's PROXY ranks between TOR and
// DATACENTER; both are anonymising services); residential proxies are
// residential, the hijacked home routers analysts look for.
func anonymous(rec *geoip2.AnonymousIP) []Classification {
	var out []Classification
	add := func(flag bool, typ string) {
		if flag {
			out = append(out, Classification{IPType: typ, Confidence: confidenceAnonymousIP, Source: SourceAnonymousIP})
		}
	}
	add(rec.IsAnonymousVPN || rec.IsPublicProxy, TypeVPN)
	add(rec.IsTorExitNode, TypeTor)
	add(rec.IsHostingProvider, TypeHosting)
	add(rec.IsResidentialProxy, TypeResidential)
	return out
}

// asOrg returns the AS organisation name known for r: its ASN's, else the
// maxmind or cymru answer's (the cache may have supplied either).
func asOrg(r *pipeline.Record) string {
	if r.ASN != nil && r.ASN.Org != "" {
		return r.ASN.Org
	}
	if m, ok := r.Enrichment[pipeline.SourceMaxMind].(*pipeline.MaxMindResult); ok && m != nil && m.ASNOrg != "" {
		return m.ASNOrg
	}
	if c, ok := r.Enrichment[pipeline.SourceCymru].(*pipeline.CymruResult); ok && c != nil {
		return c.ASNOrg
	}
	return ""
}

// Close drops the loaded evidence. It is safe to call more than once.
func (s *Stage) Close() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.closed = true
	for _, f := range s.lists {
		f.cur.Store(nil)
	}
	for _, f := range []*file[*geoip2.Reader]{s.anon, s.isp} {
		if f != nil {
			f.cur.Store(nil)
		}
	}
	return nil
}
