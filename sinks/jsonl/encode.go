package jsonl

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// encoder appends lines byte for byte as encoding/json writes newLine's
// line struct, but straight from the record, without reflection or the
// intermediate map: on a list of a million addresses the generic encoder
// (a map per record, a MarshalJSON call per provider answer, each compacted
// again) cost more than reading, validating and looking the addresses up
// together. TestEncoderMatchesEncodingJSON holds the two together.
//
// It knows the types the built-in stages store; any other enrichment value
// is handed to encoding/json, and a line it cannot write exactly (a NaN
// coordinate, a year past 9999) is reported so the caller writes that line
// with encoding/json, which then reports the same error as before.
type encoder struct {
	// Provider answers of one batch share their timestamps (cached_at,
	// database_build); the last ones formatted are kept.
	times [2]formatted
	next  int // the slot to reuse
}

// formatted is a timestamp and its JSON text.
type formatted struct {
	t    time.Time
	text []byte
}

// appendRecord appends the line of r, with meta as its provenance, and a
// newline to b. ok is false when the line must be written by encoding/json
// instead; b is then returned unchanged.
func (e *encoder) appendRecord(b []byte, r *pipeline.Record, meta *pipeline.Meta) (_ []byte, ok bool) {
	start := len(b)
	b = append(b, `{"ip":`...)
	if r.Addr.IsValid() && r.Addr.Zone() == "" {
		b = append(b, '"')
		b = r.Addr.AppendTo(b) // digits, dots and colons: nothing to escape
		b = append(b, '"')
	} else {
		b = appendString(b, r.IP())
	}
	b = append(b, `,"raw":`...)
	b = appendString(b, r.Raw)
	if r.Sessions > 0 {
		b = append(b, `,"first_seen":`...)
		if b, ok = appendTime(b, r.FirstSeen); !ok {
			return b[:start], false
		}
		b = append(b, `,"last_seen":`...)
		if b, ok = appendTime(b, r.LastSeen); !ok {
			return b[:start], false
		}
		b = append(b, `,"session_count":`...)
		b = strconv.AppendInt(b, r.Sessions, 10)
	} else {
		b = append(b, `,"first_seen":null,"last_seen":null,"session_count":0`...)
	}
	b = append(b, `,"asn":`...)
	b = appendASN(b, r.ASN)
	if r.Rejected() {
		b = append(b, `,"enrichment":null,"rejected":{"stage":`...)
		b = appendString(b, r.ErrStage)
		b = append(b, `,"reason":`...)
		b = appendString(b, r.Err.Error())
		return append(b, '}', '}', '\n'), true
	}
	b = append(b, `,"enrichment":`...)
	if b, ok = e.appendDocument(b, r, meta); !ok {
		return b[:start], false
	}
	return append(b, '}', '\n'), true
}

func appendTime(b []byte, t time.Time) ([]byte, bool) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false // time.Time.MarshalJSON refuses it
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

func appendASN(b []byte, a *pipeline.ASN) []byte {
	if a == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"number":`...)
	b = strconv.AppendInt(b, a.Number, 10)
	for _, f := range [...]struct{ key, v string }{{`,"org":`, a.Org}, {`,"country":`, a.Country}, {`,"registry":`, a.Registry}} {
		if f.v != "" {
			b = append(b, f.key...)
			b = appendString(b, f.v)
		}
	}
	return append(b, '}')
}

// Document keys the sink sets over the providers' answers, as
// inventory.Document does.
const (
	keyValidation = "validation"
	keyMeta       = "_meta"
)

// appendDocument writes the enrichment document inventory.Document
// builds for r: the providers' answers, "validation" when the validate
// stage ran and "_meta", with the keys sorted as encoding/json sorts a
// map's.
func (e *encoder) appendDocument(b []byte, r *pipeline.Record, meta *pipeline.Meta) ([]byte, bool) {
	var stack [8]string
	keys := append(stack[:0], keyMeta)
	for k := range r.Enrichment {
		if k != keyMeta && (k != keyValidation || r.Validation == nil) {
			keys = append(keys, k)
		}
	}
	if r.Validation != nil {
		keys = append(keys, keyValidation)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var ok bool
		switch {
		case k == keyMeta:
			b = e.appendMeta(b, meta)
		case k == keyValidation && r.Validation != nil:
			b = appendValidation(b, r.Validation)
		default:
			if b, ok = e.appendValue(b, r.Enrichment[k]); !ok {
				return b, false
			}
		}
	}
	return append(b, '}'), true
}

// appendMap writes m with its keys sorted, as encoding/json writes a map;
// a nil map is null.
func appendMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var stack [8]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

func appendValidation(b []byte, v *pipeline.Validation) []byte {
	b = append(b, `{"is_bogon":`...)
	b = strconv.AppendBool(b, v.IsBogon)
	if v.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, v.Reason)
	}
	return append(b, '}')
}

// appendValue writes one enrichment value: the types the built-in stages
// store directly, anything else through encoding/json.
func (e *encoder) appendValue(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case *pipeline.Validation:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendValidation(b, v), true
	case *pipeline.MaxMindResult:
		if v == nil {
			return append(b, "null"...), true
		}
		return e.appendMaxMind(b, v)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, false
	}
	return append(b, j...), true
}

func (e *encoder) appendMeta(b []byte, m *pipeline.Meta) []byte {
	b = append(b, `{"run_id":`...)
	b = appendString(b, m.RunID)
	b = append(b, `,"pipeline":`...)
	b = appendString(b, m.Pipeline)
	for _, f := range [...]struct {
		key  string
		list []string
	}{
		{`,"sources_attempted":`, m.SourcesAttempted}, {`,"sources_succeeded":`, m.SourcesSucceeded},
		{`,"sources_failed":`, m.SourcesFailed}, {`,"sources_skipped":`, m.SourcesSkipped},
	} {
		b = append(b, f.key...)
		b = appendStrings(b, f.list)
	}
	b = append(b, `,"skip_reasons":`...)
	b = appendMap(b, m.SkipReasons)
	b = append(b, `,"cache_hits":`...)
	b = appendStrings(b, m.CacheHits)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, m.DurationMS, 10)
	return append(b, '}')
}

// appendMaxMind writes what MaxMindResult.MarshalJSON writes: unknown
// strings as null.
func (e *encoder) appendMaxMind(b []byte, m *pipeline.MaxMindResult) ([]byte, bool) {
	b = append(b, '{')
	for _, f := range [...]struct{ key, v string }{{`"country":`, m.Country}, {`,"country_name":`, m.CountryName}, {`,"city":`, m.City}} {
		b = append(b, f.key...)
		b = appendNullable(b, f.v)
	}
	for _, f := range [...]struct {
		key string
		v   *float64
	}{{`,"latitude":`, m.Latitude}, {`,"longitude":`, m.Longitude}} {
		var ok bool
		b = append(b, f.key...)
		if b, ok = appendFloat(b, f.v); !ok {
			return b, false
		}
	}
	b = append(b, `,"asn":`...)
	b = appendIntPointer(b, m.ASN)
	b = append(b, `,"asn_org":`...)
	b = appendNullable(b, m.ASNOrg)
	b = append(b, `,"accuracy_radius":`...)
	b = appendIntPointer(b, m.AccuracyRadius)
	b = append(b, `,"network":`...)
	b = appendNullable(b, m.Network)
	b = append(b, `,"database_build":`...)
	b = e.appendTimestamp(b, m.DatabaseBuild)
	b = append(b, `,"cached_at":`...)
	b = e.appendTimestamp(b, m.CachedAt)
	return append(b, '}'), true
}

func appendIntPointer[T int | int64](b []byte, v *T) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, int64(*v), 10)
}

// appendTimestamp writes what Timestamp.MarshalJSON writes.
func (e *encoder) appendTimestamp(b []byte, t pipeline.Timestamp) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	for _, f := range e.times {
		if f.text != nil && f.t.Equal(t.Time) {
			return append(b, f.text...)
		}
	}
	f := &e.times[e.next]
	e.next = (e.next + 1) % len(e.times)
	f.t = t.Time
	f.text = append(f.text[:0], '"')
	f.text = t.UTC().AppendFormat(f.text, pipeline.TimestampLayout)
	f.text = append(f.text, '"')
	return append(b, f.text...)
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

func appendStrings(b []byte, l []string) []byte {
	if l == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendFloat writes a float64 as encoding/json does (ES6 number
// formatting); NaN and infinities are not JSON and are refused.
func appendFloat(b []byte, f *float64) ([]byte, bool) {
	if f == nil {
		return append(b, "null"...), true
	}
	v := *f
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if format == 'e' {
		// e-09 is written e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes a JSON string holds as they are: printable ASCII
// other than the quote, the backslash and the HTML characters.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString writes s as a JSON string escaped as encoding/json escapes
// it by default: quotes, backslashes and control characters, the HTML
// characters <, > and &, U+2028 and U+2029, and invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
