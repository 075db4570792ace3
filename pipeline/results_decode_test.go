package pipeline

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/internal/jsonr"
)

// decodeSeeds are answers as the answers write them, and as other writers
// (upstream, hand edits, a corrupted cache) may leave them.
func decodeSeeds() [][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	var seeds [][]byte
	for range 20 {
		asn := rng.Int64N(400000)
		lat := rng.Float64()*180 - 90
		m, _ := MaxMindResult{Country: pick(rng, awkwardStrings), City: pick(rng, awkwardStrings), Latitude: &lat, ASN: &asn,
			ASNOrg: pick(rng, awkwardStrings), Network: "198.51.100.0/24", DatabaseBuild: randomTime(rng), CachedAt: randomTime(rng)}.MarshalJSON()
		c, _ := CymruResult{ASN: maybe(rng, asn), ASNOrg: pick(rng, awkwardStrings), Country: "US", Registry: "arin",
			Prefix: "198.51.100.0/24", AllocationDate: "2001-02-03", CachedAt: randomTime(rng)}.MarshalJSON()
		g, _ := GreyNoiseResult{Noise: rng.IntN(2) == 0, Classification: pick(rng, awkwardStrings), LastSeen: "2025-11-05T00:00:00+00:00",
			CachedAt: randomTime(rng)}.MarshalJSON()
		seeds = append(seeds, m, c, g)
	}
	for _, s := range []string{
		`{"asn":1,"asn":null,"country":"DE","country":null}`, `{"Country":"DE","ASN":7}`, `{"asn":1.0}`, `{"asn":1e3}`,
		`{"asn":"7"}`, `{"asn":9223372036854775808}`, `{"accuracy_radius":-0}`, `{"latitude":1e400}`, `{"latitude":"1"}`,
		`{"noise":"true"}`, `{"noise":null,"riot":true}`, `{"cached_at":5}`, `{"cached_at":"yesterday"}`, `{"cached_at":""}`,
		`{"cached_at":"2025-11-06"}`, `{"cached_at":"2025-11-06T10:00:00\u002b01:00"}`, `{"asn_org":"AT\u0026T"}`,
		"{\"city\":\"bad \xff utf8\"}", `{"extra":{"nested":[1]},"asn":5}`, `{"unknown":1}`, `{"asn":5} trailing`,
		`{"asn":5,}`, `null`, `[]`, `{}`, ``, `"x"`, `{"country_name":"a\u0000b"}`, `{"not_found":true,"cached_at":null}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// sameDecode checks that DecodeJSON and json.Unmarshal into a zero value
// agree on b: both fail, or both succeed with equal values.
func sameDecode[T any, P interface {
	*T
	DecodeJSON([]byte) error
}](t *testing.T, b []byte) {
	t.Helper()
	var got, want T
	gotErr := P(&got).DecodeJSON(b)
	wantErr := json.Unmarshal(b, &want)
	if (gotErr == nil) != (wantErr == nil) || gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%T.DecodeJSON(%q) = %+v, %v\njson.Unmarshal: %+v, %v", &got, b, got, gotErr, want, wantErr)
	}
}

// FuzzDecodeJSONMatchesEncodingJSON holds each answer's DecodeJSON to
// encoding/json on the same bytes.
func FuzzDecodeJSONMatchesEncodingJSON(f *testing.F) {
	for _, s := range decodeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameDecode[MaxMindResult](t, b)
		sameDecode[CymruResult](t, b)
		sameDecode[GreyNoiseResult](t, b)
	})
}

// TestDecodeJSONReadsAnswersDirectly checks that the answers' own JSON
// takes the direct path, which is the point of DecodeJSON, and reads as
// encoding/json reads it.
func TestDecodeJSONReadsAnswersDirectly(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 500 {
		asn, radius, lat := rng.Int64N(400000), rng.IntN(1000), rng.Float64()*180-90
		in := MaxMindResult{Country: "DE", CountryName: pick(rng, awkwardStrings), City: pick(rng, awkwardStrings), Latitude: &lat,
			Longitude: maybe(rng, -lat), ASN: &asn, ASNOrg: pick(rng, awkwardStrings), AccuracyRadius: &radius,
			Network: "198.51.100.0/24", DatabaseBuild: At(randomTime(rng).Time), CachedAt: At(randomTime(rng).Time)}
		b, err := in.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var walked MaxMindResult
		if !jsonr.Walk(b, walked.member) {
			t.Fatalf("the direct path refused an answer's own JSON: %s", b)
		}
		var out, want MaxMindResult
		if err := errors.Join(out.DecodeJSON(b), json.Unmarshal(b, &want)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out, want) {
			t.Fatalf("DecodeJSON(%s) = %+v; json.Unmarshal: %+v", b, out, want)
		}
	}
	c, _ := CymruResult{ASN: new(int64), ASNOrg: "AS64500 Example, Inc.", Country: "US", Registry: "arin", CachedAt: At(randomTime(rng).Time)}.MarshalJSON()
	g, _ := GreyNoiseResult{Noise: true, Classification: "malicious", Name: "unknown", CachedAt: At(randomTime(rng).Time)}.MarshalJSON()
	if !jsonr.Walk(c, new(CymruResult).member) || !jsonr.Walk(g, new(GreyNoiseResult).member) {
		t.Fatalf("the direct path refused\n%s\nor\n%s", c, g)
	}
}
