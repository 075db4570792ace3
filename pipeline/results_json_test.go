package pipeline

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// nullableRef is how the answers wrote unknown strings before they wrote
// their JSON by hand.
func nullableRef(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// The reference encodings: encoding/json on structs with the answers'
// keys and null for unknown strings.

func maxMindRef(m MaxMindResult) ([]byte, error) {
	return json.Marshal(struct {
		Country        *string  `json:"country"`
		CountryName    *string  `json:"country_name"`
		City           *string  `json:"city"`
		Latitude       *float64 `json:"latitude"`
		Longitude      *float64 `json:"longitude"`
		ASN            *int64   `json:"asn"`
		ASNOrg         *string  `json:"asn_org"`
		AccuracyRadius *int     `json:"accuracy_radius"`
		Network        *string  `json:"network"`
		DatabaseBuild  *string  `json:"database_build"`
		CachedAt       *string  `json:"cached_at"`
	}{nullableRef(m.Country), nullableRef(m.CountryName), nullableRef(m.City), m.Latitude, m.Longitude, m.ASN,
		nullableRef(m.ASNOrg), m.AccuracyRadius, nullableRef(m.Network), timeRef(m.DatabaseBuild), timeRef(m.CachedAt)})
}

func cymruRef(c CymruResult) ([]byte, error) {
	return json.Marshal(struct {
		ASN            *int64  `json:"asn"`
		ASNOrg         *string `json:"asn_org"`
		Country        *string `json:"country"`
		Registry       *string `json:"registry"`
		Prefix         *string `json:"prefix"`
		AllocationDate *string `json:"allocation_date"`
		CachedAt       *string `json:"cached_at"`
	}{c.ASN, nullableRef(c.ASNOrg), nullableRef(c.Country), nullableRef(c.Registry), nullableRef(c.Prefix),
		nullableRef(c.AllocationDate), timeRef(c.CachedAt)})
}

func greyNoiseRef(g GreyNoiseResult) ([]byte, error) {
	return json.Marshal(struct {
		Noise          bool    `json:"noise"`
		RIOT           bool    `json:"riot"`
		Classification *string `json:"classification"`
		Name           *string `json:"name"`
		LastSeen       *string `json:"last_seen"`
		CachedAt       *string `json:"cached_at"`
	}{g.Noise, g.RIOT, nullableRef(g.Classification), nullableRef(g.Name), nullableRef(g.LastSeen), timeRef(g.CachedAt)})
}

// timeRef is the upstream layout as a string, nil for the zero time.
func timeRef(t Timestamp) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(TimestampLayout)
	return &s
}

// metaRef and validationRef drop the AppendJSON methods, so encoding/json
// writes them by reflection.
type (
	metaRef       Meta
	validationRef Validation
)

var awkwardStrings = []string{
	"", "", "plain", "São Paulo", `quote " and \ backslash`, "tab\tnew\nline", "<script>&amp;</script>",
	"\x00\x1f\x7f", "bad utf8 \xff end", "\u2028 \u2029", "日本語", "AS64500 Example, Inc.",
}

func pick[T any](rng *rand.Rand, l []T) T { return l[rng.IntN(len(l))] }

func maybe[T any](rng *rand.Rand, v T) *T {
	if rng.IntN(4) == 0 {
		return nil
	}
	return &v
}

func randomTime(rng *rand.Rand) Timestamp {
	if rng.IntN(4) == 0 {
		return Timestamp{}
	}
	loc := time.FixedZone("x", 3600*(rng.IntN(25)-12))
	return Timestamp{time.Date(1990+rng.IntN(60), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60),
		rng.IntN(60), rng.IntN(1e9), loc)}
}

func randomStrings(rng *rand.Rand) []string {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	l := make([]string, rng.IntN(4))
	for i := range l {
		l[i] = pick(rng, awkwardStrings)
	}
	return l
}

// TestResultsMatchEncodingJSON compares each hand-written encoder with
// encoding/json on random values, unknown and awkward strings, nil
// pointers and all.
func TestResultsMatchEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	floats := []float64{0, math.Copysign(0, -1), 51.5142, -122.3149, 1e-7, 1e21, 123456789.123, 5e-324, 90, -180}
	check := func(name string, got []byte, gotErr error, want []byte, wantErr error) {
		t.Helper()
		if (gotErr == nil) != (wantErr == nil) || string(got) != string(want) && gotErr == nil {
			t.Fatalf("%s:\n got %s (%v)\nwant %s (%v)", name, got, gotErr, want, wantErr)
		}
	}
	for range 3000 {
		m := MaxMindResult{
			Country: pick(rng, awkwardStrings), CountryName: pick(rng, awkwardStrings), City: pick(rng, awkwardStrings),
			Latitude: maybe(rng, pick(rng, floats)), Longitude: maybe(rng, pick(rng, floats)), ASN: maybe(rng, rng.Int64()-rng.Int64()),
			ASNOrg: pick(rng, awkwardStrings), AccuracyRadius: maybe(rng, rng.IntN(1000)), Network: pick(rng, awkwardStrings),
			DatabaseBuild: randomTime(rng), CachedAt: randomTime(rng),
		}
		got, err := m.MarshalJSON()
		want, wantErr := maxMindRef(m)
		check("MaxMindResult", got, err, want, wantErr)

		c := CymruResult{ASN: maybe(rng, rng.Int64()), ASNOrg: pick(rng, awkwardStrings), Country: pick(rng, awkwardStrings),
			Registry: pick(rng, awkwardStrings), Prefix: pick(rng, awkwardStrings), AllocationDate: pick(rng, awkwardStrings),
			CachedAt: randomTime(rng)}
		got, err = c.MarshalJSON()
		want, wantErr = cymruRef(c)
		check("CymruResult", got, err, want, wantErr)

		g := GreyNoiseResult{Noise: rng.IntN(2) == 0, RIOT: rng.IntN(2) == 0, Classification: pick(rng, awkwardStrings),
			Name: pick(rng, awkwardStrings), LastSeen: pick(rng, awkwardStrings), CachedAt: randomTime(rng)}
		got, err = g.MarshalJSON()
		want, wantErr = greyNoiseRef(g)
		check("GreyNoiseResult", got, err, want, wantErr)

		ts := randomTime(rng)
		got, err = ts.MarshalJSON()
		want, wantErr = json.Marshal(timeRef(ts))
		check("Timestamp", got, err, want, wantErr)

		var reasons map[string]string
		if rng.IntN(3) > 0 {
			reasons = map[string]string{}
			for range rng.IntN(4) {
				reasons[pick(rng, awkwardStrings)] = pick(rng, awkwardStrings)
			}
		}
		meta := Meta{RunID: pick(rng, awkwardStrings), Pipeline: pick(rng, awkwardStrings),
			SourcesAttempted: randomStrings(rng), SourcesSucceeded: randomStrings(rng), SourcesFailed: randomStrings(rng),
			SourcesSkipped: randomStrings(rng), SkipReasons: reasons, CacheHits: randomStrings(rng), DurationMS: rng.Int64()}
		got, err = meta.AppendJSON(nil)
		want, wantErr = json.Marshal(metaRef(meta))
		check("Meta", got, err, want, wantErr)

		v := Validation{IsBogon: rng.IntN(2) == 0, Reason: pick(rng, awkwardStrings)}
		got, err = v.AppendJSON(nil)
		want, wantErr = json.Marshal(validationRef(v))
		check("Validation", got, err, want, wantErr)
	}
}

// TestMaxMindRefusesNaN keeps encoding/json's error for a coordinate that
// is not a number.
func TestMaxMindRefusesNaN(t *testing.T) {
	nan := math.NaN()
	_, err := MaxMindResult{Longitude: &nan}.MarshalJSON()
	var unsupported *json.UnsupportedValueError
	if !errors.As(err, &unsupported) {
		t.Errorf("MarshalJSON = %v; want encoding/json's UnsupportedValueError", err)
	}
	if _, err := json.Marshal(map[string]any{"maxmind": &MaxMindResult{Latitude: &nan}}); !errors.As(err, &unsupported) {
		t.Errorf("json.Marshal = %v; want an UnsupportedValueError inside", err)
	}
}

// TestAppendUTCMatchesAppendFormat holds the hand-written timestamp
// writer to time.AppendFormat, across zones, years and fractions.
func TestAppendUTCMatchesAppendFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	times := []time.Time{{}, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 11, 6, 10, 0, 0, 123456789, time.FixedZone("x", -5*3600))}
	for range 10000 {
		loc := time.FixedZone("z", 60*(rng.IntN(28*60)-14*60))
		times = append(times, time.Date(rng.IntN(3000), time.Month(1+rng.IntN(12)), 1+rng.IntN(31), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1e9), loc))
	}
	for _, tm := range times {
		if got, want := string(appendUTC(nil, tm)), tm.UTC().Format(TimestampLayout); got != want {
			t.Fatalf("appendUTC(%v) = %s; want %s", tm, got, want)
		}
	}
}

// BenchmarkTimestampAppendJSON measures writing one timestamp, which every
// answer does once or twice for each place it is stored.
func BenchmarkTimestampAppendJSON(b *testing.B) {
	ts := At(time.Date(2025, 11, 6, 10, 0, 0, 123456789, time.UTC))
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf, _ = ts.AppendJSON(buf[:0])
	}
}
