package cli

import (
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

func TestProgressBar(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := pipeline.NewProgress(start)
	if got, want := progressBar(p, start.Add(2*time.Second)), "0 IPs  0/s"; got != want {
		t.Errorf("unknown total: %q, want %q", got, want)
	}
	p.SetTotal(100)
	p.Add("cymru_queries", 3)
	p.Add("greynoise_rate_limited", 0)
	want := "[........................] 0/100 IPs  0/s  cymru_queries 3"
	if got := progressBar(p, start.Add(2*time.Second)); got != want {
		t.Errorf("bar = %q, want %q", got, want)
	}
}
