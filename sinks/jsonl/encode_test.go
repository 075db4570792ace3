package jsonl

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/inventory"
)

// reference is the line as encoding/json writes it: the definition the
// encoder must match byte for byte.
func reference(t testing.TB, l *line) (string, bool) {
	t.Helper()
	j, err := json.Marshal(l)
	if err != nil {
		return "", false
	}
	return string(j) + "\n", true
}

// awkward are strings that need escaping or are otherwise unusual.
var awkward = []string{
	"", "plain", "São Paulo", "Linköping", `quote " and \ backslash`, "tab\tnew\nline\rcr\b\f",
	"<script>&amp;</script>", "\x00\x01\x1f\x7f", "bad utf8 \xff\xfe end", "\u2028 and \u2029", "日本語", "emoji 🛰",
	"truncated \xe6\x97", "AS64500 Example, Inc.",
}

func randomString(rng *rand.Rand) string {
	return awkward[rng.IntN(len(awkward))]
}

func randomFloat(rng *rand.Rand) *float64 {
	vals := []float64{0, math.Copysign(0, -1), 51.5142, -122.3149, 1e-7, 1e21, 1e20, 123456789.123, -1e-300, math.MaxFloat64, 5e-324, 0.000001, 90, -180}
	if rng.IntN(5) == 0 {
		return nil
	}
	v := vals[rng.IntN(len(vals))]
	return &v
}

// randomRecord builds a record with a random mix of what stages set.
func randomRecord(rng *rand.Rand) *pipeline.Record {
	r := pipeline.NewRecord(randomString(rng))
	if rng.IntN(4) == 0 {
		r.Reject("validate", errors.New(randomString(rng)))
		return r
	}
	switch rng.IntN(4) {
	case 0:
		r.Addr = netip.MustParseAddr("2001:db8::1")
	case 1:
		r.Addr = netip.MustParseAddr("fe80::1").WithZone(randomString(rng))
	case 2:
		r.Addr = netip.MustParseAddr("::ffff:192.0.2.1")
	default:
		r.Addr = netip.AddrFrom4([4]byte{byte(rng.IntN(256)), 2, 3, 4})
	}
	if rng.IntN(2) == 0 {
		r.Received = time.Date(2026, 1, 6, 11, 59, 59, rng.IntN(2e9), time.UTC)
	}
	if rng.IntN(3) == 0 {
		r.Sessions = rng.Int64N(1000) + 1
		r.FirstSeen = time.Date(2025, 1, 1, 0, 0, 0, rng.IntN(1e9), time.FixedZone("x", 3600))
		r.LastSeen = r.FirstSeen.Add(time.Duration(rng.Int64N(1e15)))
	}
	if rng.IntN(2) == 0 {
		r.Validation = &pipeline.Validation{IsBogon: rng.IntN(2) == 0, Reason: randomString(rng)}
	}
	if rng.IntN(2) == 0 {
		r.ASN = &pipeline.ASN{Number: rng.Int64N(1 << 32), Org: randomString(rng), Country: randomString(rng), Registry: randomString(rng)}
	}
	switch rng.IntN(4) {
	case 0:
		r.Skip(pipeline.SourceMaxMind, randomString(rng))
	case 1:
		r.Set(pipeline.SourceMaxMind, nil)
	default:
		m := &pipeline.MaxMindResult{
			Country: randomString(rng), CountryName: randomString(rng), City: randomString(rng),
			Latitude: randomFloat(rng), Longitude: randomFloat(rng), ASNOrg: randomString(rng), Network: randomString(rng),
		}
		if rng.IntN(3) > 0 {
			asn := rng.Int64N(1 << 32)
			m.ASN = &asn
		}
		if rng.IntN(3) > 0 {
			radius := rng.IntN(1000)
			m.AccuracyRadius = &radius
		}
		if rng.IntN(3) > 0 {
			m.DatabaseBuild = pipeline.At(time.Unix(rng.Int64N(2e9), 0))
		}
		m.CachedAt = pipeline.At(time.Unix(1.7e9, rng.Int64N(1e9)))
		r.Set(pipeline.SourceMaxMind, m)
	}
	if rng.IntN(3) == 0 {
		asn := int64(64500)
		r.Set(pipeline.SourceCymru, &pipeline.CymruResult{ASN: &asn, ASNOrg: randomString(rng), Country: "US"})
	}
	if rng.IntN(3) == 0 {
		r.SetCached(pipeline.SourceGreyNoise, pipeline.GreyNoiseResult{Noise: true, Classification: randomString(rng)})
	}
	if rng.IntN(4) == 0 {
		r.Set("custom", map[string]any{"k": randomString(rng), "n": 1.5, "list": []int{1, 2}})
	}
	if rng.IntN(8) == 0 { // answers named like the keys the sink sets
		r.Set("validation", map[string]any{"from": "a provider"})
	}
	if rng.IntN(8) == 0 {
		r.Set("_meta", "overwritten")
	}
	if rng.IntN(4) == 0 {
		r.Fail(pipeline.SourceGreyNoise, errors.New(randomString(rng)))
	}
	return r
}

func TestEncoderMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	for i := range 5000 {
		r := randomRecord(rng)
		runID := "run-" + randomString(rng)
		l := newLine(r, runID, "enrich-list", now)
		want, wantOK := reference(t, &l)
		meta := inventory.Meta(r, runID, "enrich-list", now)
		got, ok := appendRecord(nil, r, &meta)
		if ok != wantOK {
			t.Fatalf("record %d: encoder ok=%v, encoding/json ok=%v\n%s", i, ok, wantOK, want)
		}
		if ok && string(got) != want {
			t.Fatalf("record %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestEncoderRefusesWhatEncodingJSONRefuses checks the values encoding/json
// cannot write: the encoder hands them back instead of writing other bytes.
func TestEncoderRefusesWhatEncodingJSONRefuses(t *testing.T) {
	nan := math.NaN()
	inf := math.Inf(1)
	tests := []struct {
		name string
		edit func(r *pipeline.Record)
	}{
		{"NaN latitude", func(r *pipeline.Record) { r.Set(pipeline.SourceMaxMind, &pipeline.MaxMindResult{Latitude: &nan}) }},
		{"infinite longitude", func(r *pipeline.Record) { r.Set(pipeline.SourceMaxMind, &pipeline.MaxMindResult{Longitude: &inf}) }},
		{"year past 9999", func(r *pipeline.Record) {
			r.Sessions, r.FirstSeen, r.LastSeen = 1, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		}},
		{"unsupported custom value", func(r *pipeline.Record) { r.Set("custom", map[string]any{"f": func() {}}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := pipeline.NewRecord("192.0.2.1")
			r.Addr = netip.MustParseAddr("192.0.2.1")
			tt.edit(r)
			now := time.Now()
			l := newLine(r, "run", "p", now)
			if _, ok := reference(t, &l); ok {
				t.Fatal("encoding/json wrote the line; the case tests nothing")
			}
			meta := inventory.Meta(r, "run", "p", now)
			if got, ok := appendRecord([]byte("kept"), r, &meta); ok || string(got) != "kept" {
				t.Errorf("appendLine = %q, %v; want the buffer unchanged and false", got, ok)
			}
		})
	}
}

// TestWriteFallsBackToEncodingJSON checks that a line the encoder refuses
// fails the batch with encoding/json's error, as before.
func TestWriteFallsBackToEncodingJSON(t *testing.T) {
	var out strings.Builder
	s, err := New(pipeline.Env{}, &Config{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	r := pipeline.NewRecord("192.0.2.1")
	r.Set(pipeline.SourceMaxMind, &pipeline.MaxMindResult{Latitude: &nan})
	var unsupported *json.UnsupportedValueError
	if err := s.Write(t.Context(), pipeline.Batch{r}); !errors.As(err, &unsupported) {
		t.Errorf("Write = %v, want encoding/json's UnsupportedValueError", err)
	}
}
