package greynoise

import (
	"testing"
	"time"
)

// FuzzDecode feeds hostile answer bodies to the three GreyNoise decoders:
// no panic, and an accepted answer always carries a classification.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"ip":"45.142.121.9","noise":true,"riot":false,"classification":"malicious","name":"unknown","last_seen":"2024-01-02"}`))
	f.Add([]byte(`{"data":[{"ip":"::ffff:1.2.3.4","internet_scanner_intelligence":{"found":true,"classification":"benign","last_seen":"2024-01-02T03:04:05Z"}}],"request_metadata":{"ips_not_found":["8.8.8.8"]}}`))
	f.Add([]byte(`{"ip":"1.2.3.4","business_service_intelligence":{"found":true,"name":"x","last_updated":"garbage"}}`))
	f.Add([]byte(`{"message":"IP not observed scanning the internet or contained in RIOT data set."}`))
	f.Add([]byte(`{"data":null}`))
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		if r, err := decodeCommunity(body, now); err == nil && (r == nil || r.Classification == "") {
			t.Fatalf("community %q decoded to %+v", body, r)
		}
		if r, err := decodeV3(body, now); err == nil && (r == nil || r.Classification == "") {
			t.Fatalf("v3 %q decoded to %+v", body, r)
		}
		if m, err := decodeMulti(body, now); err == nil {
			for ip, r := range m {
				if r == nil || r.Classification == "" {
					t.Fatalf("multi %q: %s decoded to %+v", body, ip, r)
				}
			}
		}
	})
}
