package cache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// sources are the providers the cache answers for, in lookup order.
var sources = [...]string{pipeline.SourceMaxMind, pipeline.SourceCymru, pipeline.SourceGreyNoise}

// The indexes of sources the lookups single out.
const (
	maxMindIndex = 0
	cymruIndex   = 1
)

// entry is one cached answer: a typed result (*pipeline.MaxMindResult,
// *pipeline.CymruResult or *pipeline.GreyNoiseResult), or nil for a
// "not found" answer, and when it was fetched from the provider.
type entry struct {
	value    any
	cachedAt time.Time
}

func (e entry) negative() bool { return e.value == nil }

// limit returns how long e stays fresh.
func (c *Config) limit(source string, e entry) time.Duration {
	if e.negative() {
		return c.NegativeTTL
	}
	return c.ttl(source)
}

// remaining returns how much longer e stays fresh at now; zero or less
// means it is stale. An answer of unknown age is stale: it cannot be
// shown to be younger than the limit. An answer from the future (clock
// skew between hosts) counts as fetched now.
func (c *Config) remaining(source string, e entry, now time.Time) time.Duration {
	if e.cachedAt.IsZero() {
		return 0
	}
	return c.limit(source, e) - max(now.Sub(e.cachedAt), 0)
}

// negativeMarker is how a "not found" answer is stored in Redis, in
// enrichment_cache and (with upstream's file keys around it) in files.
type negativeMarker struct {
	NotFound bool               `json:"not_found"`
	CachedAt pipeline.Timestamp `json:"cached_at"`
}

// encode returns the JSON stored in Redis and enrichment_cache: the typed
// result as the inventory stores it, or the negative marker.
func encode(e entry) ([]byte, error) {
	if e.negative() {
		return json.Marshal(negativeMarker{NotFound: true, CachedAt: pipeline.At(e.cachedAt)})
	}
	// The answers write their own JSON; json.Marshal would check and
	// compact it again, which costs as much as writing it.
	return pipeline.AppendValue(make([]byte, 0, 320), e.value)
}

// decode reads what encode wrote. ok is false for JSON null, which means
// there is no answer.
func decode(source string, raw []byte) (e entry, ok bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return entry{}, false, nil
	}
	// Most entries are answers; decoding JSON dominates the lookup cost,
	// so only a value that can be the marker is decoded as one first.
	if bytes.Contains(raw, []byte(`"not_found"`)) {
		var m negativeMarker
		if err := json.Unmarshal(raw, &m); err != nil {
			return entry{}, false, fmt.Errorf("%w: %s: %v", ErrCorrupt, source, err)
		}
		if m.NotFound {
			return entry{cachedAt: m.CachedAt.Time}, true, nil
		}
	}
	v, at, err := decodeResult(source, raw)
	if err != nil {
		return entry{}, false, err
	}
	return entry{value: v, cachedAt: at}, true, nil
}

// decodeResult decodes a positive answer into source's typed result.
func decodeResult(source string, raw []byte) (any, time.Time, error) {
	var v interface{ DecodeJSON([]byte) error }
	switch source {
	case pipeline.SourceMaxMind:
		v = new(pipeline.MaxMindResult)
	case pipeline.SourceCymru:
		v = new(pipeline.CymruResult)
	case pipeline.SourceGreyNoise:
		v = new(pipeline.GreyNoiseResult)
	default:
		return nil, time.Time{}, fmt.Errorf("%w: unknown source %q", ErrCorrupt, source)
	}
	if err := v.DecodeJSON(raw); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, source, err)
	}
	at, _ := cachedAt(v)
	return v, at, nil
}

// cachedAt returns when a typed result was fetched; ok is false for a
// value of another type.
func cachedAt(v any) (t time.Time, ok bool) {
	switch r := v.(type) {
	case *pipeline.MaxMindResult:
		return r.CachedAt.Time, true
	case *pipeline.CymruResult:
		return r.CachedAt.Time, true
	case *pipeline.GreyNoiseResult:
		return r.CachedAt.Time, true
	}
	return time.Time{}, false
}

// fetched returns the entry for an answer a provider gave in this run:
// the typed result as stored on the record (a value of another type is
// converted through its JSON form) and its cached_at, or now when it has
// none.
func fetched(source string, value any, now time.Time) (entry, error) {
	if value == nil {
		return entry{cachedAt: now}, nil
	}
	at, ok := cachedAt(value)
	if !ok {
		raw, err := json.Marshal(value)
		if err != nil {
			return entry{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, source, err)
		}
		if value, at, err = decodeResult(source, raw); err != nil {
			return entry{}, err
		}
	}
	if at.IsZero() {
		at = now
	}
	return entry{value: value, cachedAt: at}, nil
}
