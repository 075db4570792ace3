package pipeline

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/jsonr"
	"github.com/cowrie-enrich/cowrie-enrich/internal/jsonw"
)

// JSONAppender is an enrichment value that appends its own JSON (exactly
// what encoding/json writes for it) without reflection. The built-in
// answers implement it; sinks write any other value with encoding/json.
type JSONAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// AppendValue appends the JSON of an enrichment value: a JSONAppender
// writes itself, anything else goes through encoding/json, which also
// checks what a third-party MarshalJSON returns. A nil pointer is left to
// encoding/json, which writes null where a value-receiver method would
// panic.
func AppendValue(b []byte, v any) ([]byte, error) {
	if a, ok := v.(JSONAppender); ok {
		if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || !rv.IsNil() {
			return a.AppendJSON(b)
		}
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// The provider answers stored under ip_inventory.enrichment.<source>. They
// keep upstream cowrieprocessor's keys (DESIGN.md §2) so existing queries
// and dashboards keep working; stages, the cache and the sinks all share
// these types.

// MaxMindResult is enrichment.maxmind: GeoLite2/GeoIP2 City and ASN data.
type MaxMindResult struct {
	Country        string   `json:"country"` // ISO code, upper case; "" when unknown
	CountryName    string   `json:"country_name"`
	City           string   `json:"city"`
	Latitude       *float64 `json:"latitude"`
	Longitude      *float64 `json:"longitude"`
	ASN            *int64   `json:"asn"`
	ASNOrg         string   `json:"asn_org"`
	AccuracyRadius *int     `json:"accuracy_radius"`
	Network        string   `json:"network"` // the matched prefix; "" when no record matched
	// DatabaseBuild is the build time of the .mmdb the answer came from, so
	// answers from an older build can be recognised as stale.
	DatabaseBuild Timestamp `json:"database_build"`
	CachedAt      Timestamp `json:"cached_at"`
}

// CymruResult is enrichment.cymru: Team Cymru IP-to-ASN data.
type CymruResult struct {
	ASN            *int64    `json:"asn"`
	ASNOrg         string    `json:"asn_org"`
	Country        string    `json:"country"`  // upper case
	Registry       string    `json:"registry"` // lower case, as Cymru writes it
	Prefix         string    `json:"prefix"`
	AllocationDate string    `json:"allocation_date"` // YYYY-MM-DD
	CachedAt       Timestamp `json:"cached_at"`
}

// GreyNoiseResult is enrichment.greynoise. An address GreyNoise has not
// observed (HTTP 404) is {noise: false, riot: false, classification:
// "unknown"}.
type GreyNoiseResult struct {
	Noise          bool      `json:"noise"`
	RIOT           bool      `json:"riot"`
	Classification string    `json:"classification"`
	Name           string    `json:"name"`
	LastSeen       string    `json:"last_seen"` // YYYY-MM-DDT00:00:00+00:00, "" when never seen
	CachedAt       Timestamp `json:"cached_at"`
}

// ASNInfo returns the autonomous system of a MaxMind answer, or nil.
func (m *MaxMindResult) ASNInfo() *ASN {
	if m == nil || m.ASN == nil || *m.ASN <= 0 {
		return nil
	}
	return &ASN{Number: *m.ASN, Org: m.ASNOrg, Country: m.Country}
}

// ASNInfo returns the autonomous system of a Cymru answer, or nil.
func (c *CymruResult) ASNInfo() *ASN {
	if c == nil || c.ASN == nil || *c.ASN <= 0 {
		return nil
	}
	return &ASN{Number: *c.ASN, Org: c.ASNOrg, Country: c.Country, Registry: c.Registry}
}

// Timestamp is a UTC time written the way upstream (Python's isoformat)
// writes it: 2025-11-06T10:00:00.123456+00:00. The zero time is null.
type Timestamp struct{ time.Time }

// TimestampLayout is the text form of a Timestamp.
const TimestampLayout = "2006-01-02T15:04:05.000000-07:00"

// At returns t as a Timestamp in UTC.
func At(t time.Time) Timestamp { return Timestamp{t.UTC()} }

// MarshalJSON writes the upstream layout, or null for the zero time.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return t.appendJSON(make([]byte, 0, len(TimestampLayout)+2)), nil
}

// AppendJSON appends what MarshalJSON returns.
func (t Timestamp) AppendJSON(b []byte) ([]byte, error) { return t.appendJSON(b), nil }

func (t Timestamp) appendJSON(b []byte) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	// The layout has nothing JSON would escape.
	b = append(b, '"')
	b = appendUTC(b, t.Time)
	return append(b, '"')
}

// appendUTC appends t in UTC as TimestampLayout writes it. Every answer
// carries one or two timestamps, each written for the inventory row and
// every cache tier; time.AppendFormat, which interprets the layout each
// time, was a sixth of the cost of writing a MaxMind answer. Years
// outside 0-9999 are left to it.
func appendUTC(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimestampLayout)
	}
	hour, minute, second := t.Clock()
	b = appendDigits(b, year, 4)
	b = appendDigits(append(b, '-'), int(month), 2)
	b = appendDigits(append(b, '-'), day, 2)
	b = appendDigits(append(b, 'T'), hour, 2)
	b = appendDigits(append(b, ':'), minute, 2)
	b = appendDigits(append(b, ':'), second, 2)
	b = appendDigits(append(b, '.'), t.Nanosecond()/1000, 6)
	return append(b, "+00:00"...)
}

// appendDigits appends the n low decimal digits of v, zero-padded.
func appendDigits(b []byte, v, n int) []byte {
	var buf [6]byte
	for i := n - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:n]...)
}

// UnmarshalJSON reads the upstream layout and the other ISO 8601 forms
// found in existing databases (with or without fraction or zone).
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	// The caller has validated the JSON, so jsonr.String reads a string
	// (or null) as encoding/json would, and a plain one, as every writer
	// of timestamps leaves it, as its own text: decoding it with
	// json.Unmarshal scanned it twice and was a fifth of the cost of a
	// cached lookup's decoding. Anything else fails in encoding/json.
	var s string
	if !jsonr.String(&s, b) {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
	}
	if s == "" {
		*t = Timestamp{}
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
		if v, err := time.Parse(layout, s); err == nil {
			*t = Timestamp{v.UTC()}
			return nil
		}
	}
	return fmt.Errorf("timestamp: cannot parse %q", s)
}

// The provider answers write unknown strings as null, as upstream stores
// them: an empty string would stop the generated geo_country column's
// COALESCE from falling back to Cymru's country or 'XX'. Each writes its
// JSON by hand (TestResultsMatchEncodingJSON holds them to encoding/json's
// bytes for the same keys): every answer is written for the inventory row
// and again for each cache tier.

// MarshalJSON writes unknown strings as null.
func (m MaxMindResult) MarshalJSON() ([]byte, error) { return m.AppendJSON(make([]byte, 0, 320)) }

// AppendJSON appends what MarshalJSON returns. A latitude or longitude
// that is NaN or infinite is not JSON: the error is encoding/json's.
func (m MaxMindResult) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"country":`...)
	b = jsonw.AppendNullable(b, m.Country)
	b = append(b, `,"country_name":`...)
	b = jsonw.AppendNullable(b, m.CountryName)
	b = append(b, `,"city":`...)
	b = jsonw.AppendNullable(b, m.City)
	for _, f := range [...]struct {
		key string
		v   *float64
	}{{`,"latitude":`, m.Latitude}, {`,"longitude":`, m.Longitude}} {
		var ok bool
		b = append(b, f.key...)
		if b, ok = jsonw.AppendFloatPointer(b, f.v); !ok {
			return b, &json.UnsupportedValueError{Value: reflect.ValueOf(*f.v), Str: strconv.FormatFloat(*f.v, 'g', -1, 64)}
		}
	}
	b = append(b, `,"asn":`...)
	b = jsonw.AppendIntPointer(b, m.ASN)
	b = append(b, `,"asn_org":`...)
	b = jsonw.AppendNullable(b, m.ASNOrg)
	b = append(b, `,"accuracy_radius":`...)
	b = jsonw.AppendIntPointer(b, m.AccuracyRadius)
	b = append(b, `,"network":`...)
	b = jsonw.AppendNullable(b, m.Network)
	b = append(b, `,"database_build":`...)
	b = m.DatabaseBuild.appendJSON(b)
	b = append(b, `,"cached_at":`...)
	b = m.CachedAt.appendJSON(b)
	return append(b, '}'), nil
}

// MarshalJSON writes unknown strings as null.
func (c CymruResult) MarshalJSON() ([]byte, error) { return c.AppendJSON(make([]byte, 0, 256)) }

// AppendJSON appends what MarshalJSON returns.
func (c CymruResult) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"asn":`...)
	b = jsonw.AppendIntPointer(b, c.ASN)
	for _, f := range [...]struct{ key, v string }{{`,"asn_org":`, c.ASNOrg}, {`,"country":`, c.Country},
		{`,"registry":`, c.Registry}, {`,"prefix":`, c.Prefix}, {`,"allocation_date":`, c.AllocationDate}} {
		b = append(b, f.key...)
		b = jsonw.AppendNullable(b, f.v)
	}
	b = append(b, `,"cached_at":`...)
	b = c.CachedAt.appendJSON(b)
	return append(b, '}'), nil
}

// MarshalJSON writes unknown strings as null.
func (g GreyNoiseResult) MarshalJSON() ([]byte, error) { return g.AppendJSON(make([]byte, 0, 192)) }

// AppendJSON appends what MarshalJSON returns.
func (g GreyNoiseResult) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"noise":`...)
	b = strconv.AppendBool(b, g.Noise)
	b = append(b, `,"riot":`...)
	b = strconv.AppendBool(b, g.RIOT)
	for _, f := range [...]struct{ key, v string }{{`,"classification":`, g.Classification}, {`,"name":`, g.Name},
		{`,"last_seen":`, g.LastSeen}} {
		b = append(b, f.key...)
		b = jsonw.AppendNullable(b, f.v)
	}
	b = append(b, `,"cached_at":`...)
	b = g.CachedAt.appendJSON(b)
	return append(b, '}'), nil
}

// The answers read their JSON by hand too: a cached run decodes every
// answer it serves. Each DecodeJSON reads the flat objects the answers are
// written as with jsonr and leaves anything else (escaped or differently
// cased keys, nested values, errors) to encoding/json, so the result is
// always json.Unmarshal's. FuzzDecodeJSONMatchesEncodingJSON holds them
// to it.

// decodeAnswer sets *v to the answer in b, as json.Unmarshal decodes b
// into a zero value: member reads each member of a flat object, and
// anything it or jsonr.Walk refuses goes to encoding/json.
func decodeAnswer[T any](v *T, b []byte, member func(*T, []byte, []byte) bool) error {
	var zero T
	*v = zero
	if jsonr.Walk(b, func(key, value []byte) bool { return member(v, key, value) }) {
		return nil
	}
	*v = zero
	return json.Unmarshal(b, v)
}

// DecodeJSON sets m to the answer in b, as json.Unmarshal decodes b into
// a zero MaxMindResult.
func (m *MaxMindResult) DecodeJSON(b []byte) error {
	return decodeAnswer(m, b, (*MaxMindResult).member)
}

func (m *MaxMindResult) member(key, v []byte) bool {
	switch string(key) {
	case "country":
		return jsonr.String(&m.Country, v)
	case "country_name":
		return jsonr.String(&m.CountryName, v)
	case "city":
		return jsonr.String(&m.City, v)
	case "latitude":
		return jsonr.FloatPointer(&m.Latitude, v)
	case "longitude":
		return jsonr.FloatPointer(&m.Longitude, v)
	case "asn":
		return jsonr.IntPointer(&m.ASN, v)
	case "asn_org":
		return jsonr.String(&m.ASNOrg, v)
	case "accuracy_radius":
		return jsonr.IntPointer(&m.AccuracyRadius, v)
	case "network":
		return jsonr.String(&m.Network, v)
	case "database_build":
		return m.DatabaseBuild.UnmarshalJSON(v) == nil
	case "cached_at":
		return m.CachedAt.UnmarshalJSON(v) == nil
	}
	return false
}

// DecodeJSON sets c to the answer in b, as json.Unmarshal decodes b into
// a zero CymruResult.
func (c *CymruResult) DecodeJSON(b []byte) error { return decodeAnswer(c, b, (*CymruResult).member) }

func (c *CymruResult) member(key, v []byte) bool {
	switch string(key) {
	case "asn":
		return jsonr.IntPointer(&c.ASN, v)
	case "asn_org":
		return jsonr.String(&c.ASNOrg, v)
	case "country":
		return jsonr.String(&c.Country, v)
	case "registry":
		return jsonr.String(&c.Registry, v)
	case "prefix":
		return jsonr.String(&c.Prefix, v)
	case "allocation_date":
		return jsonr.String(&c.AllocationDate, v)
	case "cached_at":
		return c.CachedAt.UnmarshalJSON(v) == nil
	}
	return false
}

// DecodeJSON sets g to the answer in b, as json.Unmarshal decodes b into
// a zero GreyNoiseResult.
func (g *GreyNoiseResult) DecodeJSON(b []byte) error {
	return decodeAnswer(g, b, (*GreyNoiseResult).member)
}

func (g *GreyNoiseResult) member(key, v []byte) bool {
	switch string(key) {
	case "noise":
		return jsonr.Bool(&g.Noise, v)
	case "riot":
		return jsonr.Bool(&g.RIOT, v)
	case "classification":
		return jsonr.String(&g.Classification, v)
	case "name":
		return jsonr.String(&g.Name, v)
	case "last_seen":
		return jsonr.String(&g.LastSeen, v)
	case "cached_at":
		return g.CachedAt.UnmarshalJSON(v) == nil
	}
	return false
}
