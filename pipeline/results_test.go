package pipeline_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

func TestResultsRoundTripWithNulls(t *testing.T) {
	asn := int64(20712)
	at := pipeline.At(time.Date(2025, 11, 6, 10, 0, 0, 123456000, time.UTC))
	tests := []struct {
		name string
		v    any
		want string
		back any
	}{
		{
			name: "maxmind with an ASN and no country",
			v:    pipeline.MaxMindResult{ASN: &asn, ASNOrg: "Andrews & Arnold Ltd", CachedAt: at},
			want: `{"country":null,"country_name":null,"city":null,"latitude":null,"longitude":null,"asn":20712,"asn_org":"Andrews \u0026 Arnold Ltd","accuracy_radius":null,"network":null,"database_build":null,"cached_at":"2025-11-06T10:00:00.123456+00:00"}`,
			back: &pipeline.MaxMindResult{},
		},
		{
			name: "cymru",
			v:    pipeline.CymruResult{ASN: &asn, Country: "GB", Registry: "ripencc", Prefix: "81.2.69.0/24", CachedAt: at},
			want: `{"asn":20712,"asn_org":null,"country":"GB","registry":"ripencc","prefix":"81.2.69.0/24","allocation_date":null,"cached_at":"2025-11-06T10:00:00.123456+00:00"}`,
			back: &pipeline.CymruResult{},
		},
		{
			name: "greynoise not observed",
			v:    pipeline.GreyNoiseResult{Classification: "unknown", CachedAt: at},
			want: `{"noise":false,"riot":false,"classification":"unknown","name":null,"last_seen":null,"cached_at":"2025-11-06T10:00:00.123456+00:00"}`,
			back: &pipeline.GreyNoiseResult{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
			if err := json.Unmarshal(b, tt.back); err != nil {
				t.Fatal(err)
			}
			again, _ := json.Marshal(tt.back)
			if string(again) != tt.want {
				t.Errorf("round trip changed it: %s", again)
			}
		})
	}
}

// TestTimestampUnmarshalJSON reads timestamps as written (a plain string)
// and as any JSON writer may escape them, in a document as encoding/json
// hands them over.
func TestTimestampUnmarshalJSON(t *testing.T) {
	want := time.Date(2025, 11, 6, 10, 0, 0, 123456000, time.UTC)
	cases := []struct {
		doc     string
		want    time.Time
		wantErr bool
	}{
		{doc: `{"cached_at":"2025-11-06T10:00:00.123456+00:00"}`, want: want},
		{doc: `{"cached_at":"2025-11-06T12:00:00.123456+02:00"}`, want: want},
		{doc: `{"cached_at":"2025-11-06T10:00:00.123456\u002b00:00"}`, want: want},
		{doc: `{"cached_at":"2025-11-06 10:00:00.123456"}`, want: want},
		{doc: `{"cached_at":null}`},
		{doc: `{"cached_at":""}`},
		{doc: `{"cached_at":"yesterday"}`, wantErr: true},
		{doc: `{"cached_at":"2025-11-06\"T10"}`, wantErr: true},
		{doc: `{"cached_at":20251106}`, wantErr: true},
	}
	for _, c := range cases {
		var got struct {
			CachedAt pipeline.Timestamp `json:"cached_at"`
		}
		err := json.Unmarshal([]byte(c.doc), &got)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: error %v, want error %t", c.doc, err, c.wantErr)
			continue
		}
		if !c.wantErr && (!got.CachedAt.Equal(c.want) || got.CachedAt.Location() != time.UTC) {
			t.Errorf("%s: %s, want %s in UTC", c.doc, got.CachedAt.Time, c.want)
		}
	}
}
