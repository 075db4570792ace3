package pipeline

import (
	"encoding/json"
	"fmt"
	"time"
)

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
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(TimestampLayout))
}

// UnmarshalJSON reads the upstream layout and the other ISO 8601 forms
// found in existing databases (with or without fraction or zone).
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if string(b) == "null" {
		*t = Timestamp{}
		return nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
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

// nullable returns nil for "", so an unknown value is stored as JSON null as
// upstream stores it. An empty string would stop the generated geo_country
// column's COALESCE from falling back to Cymru's country or 'XX'.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// MarshalJSON writes unknown strings as null.
func (m MaxMindResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Country        *string   `json:"country"`
		CountryName    *string   `json:"country_name"`
		City           *string   `json:"city"`
		Latitude       *float64  `json:"latitude"`
		Longitude      *float64  `json:"longitude"`
		ASN            *int64    `json:"asn"`
		ASNOrg         *string   `json:"asn_org"`
		AccuracyRadius *int      `json:"accuracy_radius"`
		Network        *string   `json:"network"`
		DatabaseBuild  Timestamp `json:"database_build"`
		CachedAt       Timestamp `json:"cached_at"`
	}{nullable(m.Country), nullable(m.CountryName), nullable(m.City), m.Latitude, m.Longitude, m.ASN,
		nullable(m.ASNOrg), m.AccuracyRadius, nullable(m.Network), m.DatabaseBuild, m.CachedAt})
}

// MarshalJSON writes unknown strings as null.
func (c CymruResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ASN            *int64    `json:"asn"`
		ASNOrg         *string   `json:"asn_org"`
		Country        *string   `json:"country"`
		Registry       *string   `json:"registry"`
		Prefix         *string   `json:"prefix"`
		AllocationDate *string   `json:"allocation_date"`
		CachedAt       Timestamp `json:"cached_at"`
	}{c.ASN, nullable(c.ASNOrg), nullable(c.Country), nullable(c.Registry), nullable(c.Prefix), nullable(c.AllocationDate), c.CachedAt})
}

// MarshalJSON writes unknown strings as null.
func (g GreyNoiseResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Noise          bool      `json:"noise"`
		RIOT           bool      `json:"riot"`
		Classification *string   `json:"classification"`
		Name           *string   `json:"name"`
		LastSeen       *string   `json:"last_seen"`
		CachedAt       Timestamp `json:"cached_at"`
	}{g.Noise, g.RIOT, nullable(g.Classification), nullable(g.Name), nullable(g.LastSeen), g.CachedAt})
}
