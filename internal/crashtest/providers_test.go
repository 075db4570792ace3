package crashtest_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/crashtest"
	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate/cymru"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate/greynoise"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// retries is the retries setting of both provider stages in these runs;
// every bound on requests below follows from it.
const retries = 1

// TestProviderFaultsIntegration runs refresh-ips through the CLI against
// simulated providers that misbehave. Every run must complete, each
// record the faulty provider was asked about must say in _meta why it has
// no answer, requests must stay within (retries+1) per address asked, and
// the fakes must see no rate or etiquette violation.
func TestProviderFaultsIntegration(t *testing.T) {
	ctx := context.Background()
	bin := crashtest.Build(t)
	sessions := demodata.Generate(23, 60, time.Now())
	for _, tc := range []struct {
		name   string
		opts   simulate.Options
		gn     greynoise.Behavior
		sets   []string
		source string // the provider at fault
		// wantFailed is whether the fault leaves records of source
		// failed; false when the client recovers (garbage lines skipped).
		wantFailed bool
	}{
		{name: "whois reset mid-answer", opts: simulate.Options{WhoisFaults: cymru.WhoisOptions{DropAfter: 1}}, source: "cymru", wantFailed: true},
		{name: "whois garbage lines", opts: simulate.Options{WhoisFaults: cymru.WhoisOptions{Garbage: []string{"%%%% not a row", "64512 | | 10.0.0.0/8 | zz", "\x00\xff"}}}, source: "cymru"},
		{name: "whois slower than the timeout", opts: simulate.Options{WhoisFaults: cymru.WhoisOptions{Latency: 2 * time.Second}},
			sets: []string{"stages.cymru.with.timeout=300ms"}, source: "cymru", wantFailed: true},
		{name: "whois closes at once", opts: simulate.Options{WhoisFaults: cymru.WhoisOptions{CloseImmediately: true}}, source: "cymru", wantFailed: true},
		{name: "dns servfail", opts: simulate.Options{DNSFaults: cymru.DNSOptions{ServFail: true}},
			sets: []string{"stages.cymru.with.mode=dns"}, source: "cymru", wantFailed: true},
		{name: "dns silent", opts: simulate.Options{DNSFaults: cymru.DNSOptions{Silent: true}},
			sets: []string{"stages.cymru.with.mode=dns", "stages.cymru.with.timeout=300ms"}, source: "cymru", wantFailed: true},
		{name: "greynoise 429 with Retry-After", opts: simulate.Options{GreyNoiseRetryAfter: time.Second}, gn: greynoise.RateLimited,
			sets: []string{"source.with.limit=4"}, source: "greynoise", wantFailed: true},
		{name: "greynoise 429 without Retry-After", gn: greynoise.RateLimitedNoRetryAfter, source: "greynoise", wantFailed: true},
		{name: "greynoise 500", gn: greynoise.ServerError, source: "greynoise", wantFailed: true},
		{name: "greynoise slow", opts: simulate.Options{GreyNoiseSlowDelay: 2 * time.Second}, gn: greynoise.Slow,
			sets: []string{"stages.greynoise.with.timeout=300ms"}, source: "greynoise", wantFailed: true},
		{name: "greynoise malformed", gn: greynoise.Malformed, source: "greynoise", wantFailed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := simulate.Start(t.TempDir(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			if tc.gn != greynoise.Normal {
				svc.GreyNoise.SetDefault(tc.gn)
			}
			url := testdb.SQLiteURL(t)
			db := testdb.Migrated(t, url)
			if err := demodata.Insert(ctx, db, sessions); err != nil {
				t.Fatal(err)
			}
			args := []string{"run", "refresh-ips", "--db", url, "--status-dir", t.TempDir(), "--progress", "never"}
			sets := append([]string{
				"stages.cymru.with.retries=1", "stages.cymru.with.backoff=10ms", "stages.cymru.with.window.max_wait=50ms",
				"stages.greynoise.with.retries=1", "stages.greynoise.with.backoff=10ms",
			}, tc.sets...)
			for _, s := range append(sets, svc.Sets()...) {
				args = append(args, "--set", s)
			}
			start := time.Now()
			o, err := crashtest.Run(ctx, bin, 0, args...)
			if err != nil || o.ExitCode != 0 {
				t.Fatalf("exit %d, %v\n%s", o.ExitCode, err, o.Stderr)
			}

			asked, failed, unexplained := 0, 0, 0
			err = db.Query(ctx, "SELECT ip_address, enrichment FROM ip_inventory", nil, func(scan func(...any) error) error {
				var ip, doc string
				if err := scan(&ip, &doc); err != nil {
					return err
				}
				var d struct {
					Meta struct {
						Attempted   []string          `json:"sources_attempted"`
						Succeeded   []string          `json:"sources_succeeded"`
						Failed      []string          `json:"sources_failed"`
						SkipReasons map[string]string `json:"skip_reasons"`
					} `json:"_meta"`
				}
				if err := json.Unmarshal([]byte(doc), &d); err != nil {
					return err
				}
				m := d.Meta
				if !slices.Contains(m.Attempted, tc.source) {
					return nil
				}
				asked++
				if slices.Contains(m.Succeeded, tc.source) {
					return nil
				}
				if slices.Contains(m.Failed, tc.source) && m.SkipReasons[tc.source] != "" {
					failed++
					return nil
				}
				unexplained++
				t.Errorf("%s: %s attempted, neither succeeded nor failed with a reason: %s", ip, tc.source, doc)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if asked == 0 {
				t.Fatalf("no record asked %s: the fault was never exercised", tc.source)
			}
			if tc.wantFailed && failed == 0 {
				t.Errorf("%d records asked %s, none failed", asked, tc.source)
			}
			if !tc.wantFailed && failed > 0 {
				t.Errorf("%d of %d records failed %s; the client should have recovered", failed, asked, tc.source)
			}

			ws := svc.Whois.Stats()
			gv := svc.GreyNoise.Violations()
			gnRequests := len(svc.GreyNoise.Requests())
			bound := (retries + 1) * asked
			switch tc.source {
			case "cymru":
				if !strings.Contains(strings.Join(tc.sets, " "), "mode=dns") && ws.Connections > bound {
					t.Errorf("whois saw %d connections for %d addresses; bound %d", ws.Connections, asked, bound)
				}
			case "greynoise":
				if gnRequests > bound {
					t.Errorf("greynoise saw %d requests for %d addresses; bound %d", gnRequests, asked, bound)
				}
			}
			if len(ws.Violations) > 0 {
				t.Errorf("whois etiquette violations: %v", ws.Violations)
			}
			if gv.Rate > 0 || gv.Quota > 0 {
				t.Errorf("greynoise violations: %+v", gv)
			}
			t.Logf("%s: exit 0 in %v; %d records asked %s, %d failed with a reason; whois connections %d, greynoise requests %d (bound %d)",
				tc.name, time.Since(start).Round(time.Millisecond), asked, tc.source, failed, ws.Connections, gnRequests, bound)
		})
	}
}
