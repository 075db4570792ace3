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
