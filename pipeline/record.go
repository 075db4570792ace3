package pipeline

import (
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/jsonw"
)

// Source names used in enrichment JSON and in a record's provenance.
const (
	SourceMaxMind   = "maxmind"
	SourceCymru     = "cymru"
	SourceGreyNoise = "greynoise"
)

// SourceState says what happened to one enrichment source for one record.
type SourceState int

// The states a source can be in for a record, in the order they usually occur.
const (
	// StateNone means nothing has touched the source yet.
	StateNone SourceState = iota
	// StateSucceeded means the provider answered, with data or with a clean
	// "not found".
	StateSucceeded
	// StateCached means a fresh answer came from a cache tier and the
	// provider was not asked.
	StateCached
	// StateFailed means the provider was asked and the lookup failed.
	StateFailed
	// StateSkipped means the source was not asked; Reason says why.
	StateSkipped
)

// SourceResult is the provenance of one source for one record.
type SourceResult struct {
	State  SourceState
	Reason string // why it was skipped or failed; empty otherwise
}

// Validation is what the validate stage learned about an address.
type Validation struct {
	IsBogon bool   `json:"is_bogon"`
	Reason  string `json:"reason,omitempty"`
}

// AppendJSON appends what encoding/json writes for v.
func (v Validation) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"is_bogon":`...)
	b = strconv.AppendBool(b, v.IsBogon)
	if v.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonw.AppendString(b, v.Reason)
	}
	return append(b, '}'), nil
}

// ASN is the autonomous system a record is attributed to, with what is known
// about it. The first provider to set it wins (MaxMind before Cymru).
type ASN struct {
	Number   int64
	Org      string
	Country  string // ISO code, upper case; empty when unknown
	Registry string // lower case RIR name ("arin"); empty when unknown
}

// Record is one IP address and everything the pipeline learned about it.
//
// Stages run one at a time on a record, so a Record needs no locking; a stage
// must not keep a reference to it after Process returns.
type Record struct {
	// Raw is the address exactly as the source found it (possibly garbage).
	Raw string
	// Received is when the runtime took the record from the source; the
	// sink reports the time since then as _meta.duration_ms.
	Received time.Time
	// Token is the source's own handle on the record (a stream entry id),
	// opaque to everything else; a source that implements Committer gets
	// its records back once they are durable.
	Token any
	// Addr is the canonical address; valid once the validate stage accepted it.
	Addr netip.Addr

	// FirstSeen, LastSeen and Sessions summarise the sessions from this
	// address. Zero values mean the source did not know (ip_list).
	FirstSeen time.Time
	LastSeen  time.Time
	Sessions  int64

	// NotInInventory is set by a source that found no ip_inventory row for
	// the address when it read it (stale_ips). It is a hint that saves work
	// and never decides an outcome: the cache stage does not look for the
	// address's answers there, and the inventory sink inserts the row before
	// reading what is stored (a row written since is still found, then).
	NotInInventory bool
	// SessionIPsFilled is set by a source that found, when it read the
	// address, that every session from it names it in source_ip: none is
	// known only from its JSON (stale_ips). Like NotInInventory it is a
	// hint that saves work: the inventory sink looks for sessions whose
	// source_ip to fill only for addresses without it, and trusts it only
	// when Raw is the canonical address. A session added after the read
	// waits, as one added after the write does, for a later run that finds
	// it.
	SessionIPsFilled bool

	// Validation is set by the validate stage.
	Validation *Validation
	// ASN is the attributed autonomous system, nil while unknown.
	ASN *ASN
	// Enrichment holds the per-source answers (key: source name) that this
	// run refreshed. Values must marshal to JSON. Keys not present here are
	// kept from earlier runs by the inventory sink.
	Enrichment map[string]any
	// Sources is the provenance of each source for this record.
	Sources map[string]SourceResult

	// Err marks a record rejected for good (garbage input, a row the
	// database refused): it reaches no provider, no inventory row is written,
	// and the sink keeps it as a dead letter with ErrStage and Err.
	Err      error
	ErrStage string
}

// NewRecord returns a record for a raw address as a source found it.
func NewRecord(raw string) *Record {
	return &Record{Raw: raw}
}

// IP returns the canonical text form of the address, or Raw while the
// record has not been validated.
func (r *Record) IP() string {
	if r.Addr.IsValid() {
		return r.Addr.String()
	}
	return r.Raw
}

// Rejected reports whether the record was rejected and must not be enriched.
func (r *Record) Rejected() bool { return r.Err != nil }

// Reject marks the record as rejected for good by stage.
func (r *Record) Reject(stage string, err error) {
	r.Err, r.ErrStage = err, stage
}

// IsBogon reports whether validation classified the address as a bogon.
func (r *Record) IsBogon() bool { return r.Validation != nil && r.Validation.IsBogon }

// Eligible reports whether a provider may be asked about this record: it is
// valid, not a bogon and not rejected.
func (r *Record) Eligible() bool {
	return !r.Rejected() && r.Addr.IsValid() && !r.IsBogon()
}

// Set stores a provider's answer for source and marks it succeeded. A nil
// value records a clean "not found" answer without data.
func (r *Record) Set(source string, value any) {
	if value != nil {
		if r.Enrichment == nil {
			r.Enrichment = make(map[string]any)
		}
		r.Enrichment[source] = value
	}
	r.mark(source, SourceResult{State: StateSucceeded})
}

// SetCached stores an answer found in a cache tier for source.
func (r *Record) SetCached(source string, value any) {
	r.Set(source, value)
	r.mark(source, SourceResult{State: StateCached})
}

// Skip marks source as not asked for this record, with the reason.
func (r *Record) Skip(source, reason string) {
	r.mark(source, SourceResult{State: StateSkipped, Reason: reason})
}

// Fail marks source as asked and failed for this record. The record goes on.
func (r *Record) Fail(source string, err error) {
	r.mark(source, SourceResult{State: StateFailed, Reason: err.Error()})
}

// Source returns the provenance of source for this record.
func (r *Record) Source(source string) SourceResult {
	return r.Sources[source]
}

// Settled reports whether source already has an answer (fresh from a
// provider or a cache), so later stages need not ask again.
func (r *Record) Settled(source string) bool {
	s := r.Sources[source].State
	return s == StateSucceeded || s == StateCached
}

func (r *Record) mark(source string, res SourceResult) {
	if r.Sources == nil {
		r.Sources = make(map[string]SourceResult, 3)
	}
	r.Sources[source] = res
}

// Enriched reports whether the record is now fresh: a bogon, or at least
// one source answered and none failed. A record whose sources were all
// skipped, or one of whose providers failed, stays stale, so the next run
// asks again; the cache then answers the sources that did succeed, and
// only the failed one is asked.
func (r *Record) Enriched() bool {
	if r.IsBogon() {
		return true
	}
	answered := false
	for _, s := range r.Sources {
		switch s.State {
		case StateFailed:
			return false
		case StateSucceeded, StateCached:
			answered = true
		}
	}
	return answered
}

// Meta is the provenance object stored under enrichment._meta on every
// inventory row a run writes. All nine keys are always present.
type Meta struct {
	RunID            string            `json:"run_id"`
	Pipeline         string            `json:"pipeline"`
	SourcesAttempted []string          `json:"sources_attempted"`
	SourcesSucceeded []string          `json:"sources_succeeded"`
	SourcesFailed    []string          `json:"sources_failed"`
	SourcesSkipped   []string          `json:"sources_skipped"`
	SkipReasons      map[string]string `json:"skip_reasons"`
	CacheHits        []string          `json:"cache_hits"`
	DurationMS       int64             `json:"duration_ms"`
}

// AppendJSON appends what encoding/json writes for m.
func (m Meta) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"run_id":`...)
	b = jsonw.AppendString(b, m.RunID)
	b = append(b, `,"pipeline":`...)
	b = jsonw.AppendString(b, m.Pipeline)
	for _, f := range [...]struct {
		key  string
		list []string
	}{
		{`,"sources_attempted":`, m.SourcesAttempted}, {`,"sources_succeeded":`, m.SourcesSucceeded},
		{`,"sources_failed":`, m.SourcesFailed}, {`,"sources_skipped":`, m.SourcesSkipped},
	} {
		b = append(b, f.key...)
		b = jsonw.AppendStrings(b, f.list)
	}
	b = append(b, `,"skip_reasons":`...)
	b = jsonw.AppendStringMap(b, m.SkipReasons)
	b = append(b, `,"cache_hits":`...)
	b = jsonw.AppendStrings(b, m.CacheHits)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, m.DurationMS, 10)
	return append(b, '}'), nil
}

// Meta builds the provenance object of the record for a run.
func (r *Record) Meta(runID, pipelineName string, d time.Duration) Meta {
	m := Meta{
		RunID: runID, Pipeline: pipelineName,
		SourcesAttempted: []string{}, SourcesSucceeded: []string{},
		SourcesFailed: []string{}, SourcesSkipped: []string{},
		SkipReasons: map[string]string{}, CacheHits: []string{},
		DurationMS: d.Milliseconds(),
	}
	for name, s := range r.Sources {
		switch s.State {
		case StateSucceeded:
			m.SourcesAttempted = append(m.SourcesAttempted, name)
			m.SourcesSucceeded = append(m.SourcesSucceeded, name)
		case StateCached:
			m.SourcesSucceeded = append(m.SourcesSucceeded, name)
			m.CacheHits = append(m.CacheHits, name)
		case StateFailed:
			m.SourcesAttempted = append(m.SourcesAttempted, name)
			m.SourcesFailed = append(m.SourcesFailed, name)
			m.SkipReasons[name] = s.Reason
		case StateSkipped:
			m.SourcesSkipped = append(m.SourcesSkipped, name)
			m.SkipReasons[name] = s.Reason
		}
	}
	for _, l := range [][]string{m.SourcesAttempted, m.SourcesSucceeded, m.SourcesFailed, m.SourcesSkipped, m.CacheHits} {
		sort.Strings(l)
	}
	return m
}

// Batch is an ordered group of records moving through the pipeline together.
type Batch []*Record
