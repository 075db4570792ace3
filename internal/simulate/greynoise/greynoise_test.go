package greynoise

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url, key string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if key != "" {
		req.Header.Set("key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return res.StatusCode, res.Header.Get("Retry-After"), b.String()
}

func TestPolicing(t *testing.T) {
	// A fixed clock: the bucket refills only when the test moves it.
	now := time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC)
	s := New(Options{Key: "k", Rate: 1, Burst: 2, DailyQuota: 2, Now: func() time.Time { return now },
		Records: map[string]Record{"45.83.64.1": {Noise: true, Classification: "malicious", LastSeen: "2025-11-20"}}})
	defer s.Close()
	u := s.URL + "/v3/community/"

	tests := []struct {
		name, ip, key string
		advance       time.Duration
		status        int
		retryAfter    string
		bodyContains  string
	}{
		{name: "known", ip: "45.83.64.1", key: "k", status: 200, bodyContains: `"classification":"malicious"`},
		{name: "unknown is 404", ip: "45.83.64.2", status: 404, bodyContains: "not observed"},
		{name: "over the bucket", ip: "45.83.64.1", key: "k", status: 429, retryAfter: "1", bodyContains: "rate limit for this endpoint"},
		{name: "wrong key", ip: "45.83.64.1", key: "bad", advance: time.Second, status: 401},
		{name: "over the quota", ip: "45.83.64.1", advance: time.Second, status: 429, bodyContains: "daily rate limit"},
		{name: "next day", ip: "45.83.64.1", advance: time.Minute, status: 200},
		{name: "ipv6 refused", ip: "2a01:4f8::1", advance: time.Second, status: 400},
	}
	for _, tt := range tests {
		now = now.Add(tt.advance)
		status, ra, body := get(t, u+tt.ip, tt.key)
		if status != tt.status || ra != tt.retryAfter || !strings.Contains(body, tt.bodyContains) {
			t.Errorf("%s: %d %q %s; want %d %q containing %q", tt.name, status, ra, body, tt.status, tt.retryAfter, tt.bodyContains)
		}
	}
	if v := s.Violations(); v.Rate != 1 || v.Quota != 1 {
		t.Errorf("violations %+v; want one of each", v)
	}
	if n := len(s.Requests()); n != len(tests) {
		t.Errorf("recorded %d requests; want %d", n, len(tests))
	}
	if m := s.MaxInWindow(time.Second); m != 3 {
		t.Errorf("MaxInWindow = %d; want the three requests at the first instant", m)
	}
}

func TestBehaviourFor(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	s.SetBehaviorFor("45.83.64.1", ServerError, 1)
	s.SetBehavior("45.83.64.3", Malformed)
	for _, want := range []int{500, 404} {
		if status, _, _ := get(t, s.URL+"/v3/community/45.83.64.1", ""); status != want {
			t.Errorf("status %d; want %d", status, want)
		}
	}
	if _, _, body := get(t, s.URL+"/v3/community/45.83.64.3", ""); !strings.HasPrefix(body, "{") || strings.HasSuffix(body, "}") {
		t.Errorf("malformed body %q", body)
	}
}
