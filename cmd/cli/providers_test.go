package cli_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// providerRequests counts what the simulated providers were asked.
func providerRequests(svc *simulate.Services) (whois, dns, greynoise int) {
	return svc.Whois.Stats().Connections, len(svc.DNS.Names()), len(svc.GreyNoise.Requests())
}

// TestSecondRunAsksNoProviderIntegration runs refresh-ips twice on
// PostgreSQL with Redis against the simulated providers: the first run
// asks them, the second (every address stale again, every answer fresh in
// the cache) sends not one request, and the inventory is unchanged.
func TestSecondRunAsksNoProviderIntegration(t *testing.T) {
	redisURL := os.Getenv(testdb.EnvRedis)
	if redisURL == "" {
		t.Fatalf("%s is not set: run ./scripts/test", testdb.EnvRedis)
	}
	url := testdb.PostgresURL(t)
	db := testdb.Migrated(t, url)
	sessions := demodata.Generate(11, 900, time.Now())
	if err := demodata.Insert(context.Background(), db, sessions); err != nil {
		t.Fatal(err)
	}
	svc, err := simulate.Start(t.TempDir(), simulate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	// A key prefix of its own keeps this test's answers apart in the
	// shared Redis; they are deleted afterwards.
	prefix := fmt.Sprintf("cowrie-enrich-test:%d", time.Now().UnixNano())
	t.Cleanup(func() { deleteKeys(t, redisURL, prefix+":*") })
	args := []string{"run", "refresh-ips", "--db", url, "--status-dir", t.TempDir(), "--progress", "never",
		"--set", "stages.greynoise.with.rate=2000",
		"--set", "stages.cache.with.redis_url=" + redisURL,
		"--set", "stages.cache.with.key_prefix=" + prefix,
		"--set", "stages.cache.with.file_dir=" + t.TempDir()}
	for _, s := range svc.Sets() {
		args = append(args, "--set", s)
	}
	if code, _, errOut := invoke(t, context.Background(), nil, args...); code != cli.ExitOK {
		t.Fatalf("first run: exit %d: %s", code, errOut)
	}
	w1, d1, g1 := providerRequests(svc)
	if w1 == 0 || g1 == 0 {
		t.Fatalf("first run asked whois %d times and GreyNoise %d times; the test needs both asked", w1, g1)
	}
	first := inventory(t, db)

	if code, _, errOut := invoke(t, context.Background(), nil, append(args, "--set", "source.with.stale_after=1ns")...); code != cli.ExitOK {
		t.Fatalf("second run: exit %d: %s", code, errOut)
	}
	w2, d2, g2 := providerRequests(svc)
	if w2 != w1 || d2 != d1 || g2 != g1 {
		t.Errorf("second run asked the providers: whois %d, DNS %d, GreyNoise %d more requests; want none", w2-w1, d2-d1, g2-g1)
	}
	second := inventory(t, db)
	for ip, r := range first {
		if second[ip] != r {
			t.Errorf("second run changed %s", ip)
		}
	}
}

func deleteKeys(t *testing.T, url, pattern string) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Error(err)
		return
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

// TestAPIKeyNeverLeaksIntegration runs with a GreyNoise key at debug level
// and as a dry run on SQLite, then on PostgreSQL with a database password
// while scraping /metrics and /status.json, and looks for the key and the
// password in everything the runs wrote: stdout, stderr, the status files,
// the scraped pages, the inventory and the run history.
func TestAPIKeyNeverLeaksIntegration(t *testing.T) {
	const key, password = "gn-secret-4f2a9c1e7b", "pg-secret-9d3b7a2c6e"
	t.Setenv("GREYNOISE_API_KEY", key)
	// The test server trusts every connection, so any password is accepted
	// and travels through the whole run.
	pg, err := neturl.Parse(testdb.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	pg.User = neturl.UserPassword(pg.User.Username(), password)
	statusDir := t.TempDir()
	var everything strings.Builder
	for _, run := range []struct {
		url    string
		extra  []string
		scrape bool
	}{
		{testdb.SQLiteURL(t), []string{"--verbose"}, false},
		{pg.String(), []string{"--verbose"}, true},
	} {
		url := run.url
		db := testdb.Migrated(t, url)
		if err := demodata.Insert(context.Background(), db, demodata.Generate(13, 200, time.Now())); err != nil {
			t.Fatal(err)
		}
		for _, extra := range [][]string{run.extra, {"--dry-run", "--verbose"}} {
			args := append([]string{"run", "refresh-ips", "--db", url, "--status-dir", statusDir, "--progress", "always"}, simulated(t)...)
			args = append(args, extra...)
			scraped := 0
			if run.scrape && extra[0] != "--dry-run" {
				addr := freeAddr(t)
				args = append(args, "--metrics-addr", addr)
				scraped = scrapeUntilDone(t, "http://"+addr, &everything, func() (int, string, string) {
					return invoke(t, context.Background(), nil, args...)
				})
				if scraped == 0 {
					t.Fatalf("no page could be scraped while the run went on")
				}
				continue
			}
			code, out, errOut := invoke(t, context.Background(), nil, args...)
			if code != cli.ExitOK {
				t.Fatalf("%v: exit %d: %s", extra, code, errOut)
			}
			everything.WriteString(out + errOut)
		}
		for _, q := range []string{"SELECT enrichment FROM ip_inventory", "SELECT coalesce(error, '') FROM cowrie_enrich_runs"} {
			err := db.Query(context.Background(), q, nil, func(scan func(...any) error) error {
				var s string
				if err := scan(&s); err != nil {
					return err
				}
				everything.WriteString(s)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(statusDir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		everything.Write(b)
	}
	if everything.Len() < 1000 || !strings.Contains(everything.String(), "cowrie_enrich_records_in_total") {
		t.Fatalf("the runs wrote only %d bytes, or no metrics; the test would prove nothing", everything.Len())
	}
	for name, secret := range map[string]string{"GreyNoise key": key, "database password": password} {
		if strings.Contains(everything.String(), secret) {
			t.Errorf("the %s appears in what the runs wrote", name)
		}
	}
}

// scrapeUntilDone runs run while fetching /metrics and /status.json from
// base until it returns, appending the pages and the run's output to w; it
// returns how many pages it fetched.
func scrapeUntilDone(t *testing.T, base string, w *strings.Builder, run func() (int, string, string)) int {
	t.Helper()
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := run()
		done <- result{code, out, errOut}
	}()
	pages := 0
	for {
		select {
		case r := <-done:
			if r.code != cli.ExitOK {
				t.Fatalf("exit %d: %s", r.code, r.err)
			}
			w.WriteString(r.out + r.err)
			return pages
		default:
		}
		for _, path := range []string{"/metrics", "/status.json"} {
			resp, err := http.Get(base + path)
			if err != nil {
				continue // not listening yet, or already closed
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			w.Write(b)
			pages++
		}
	}
}

// TestDemoConfigIsTheRefreshPipeline keeps the demo honest: it runs the
// same components in the same order as refresh-ips, under its own phase.
func TestDemoConfigIsTheRefreshPipeline(t *testing.T) {
	_, out, _ := invoke(t, context.Background(), nil, "validate", "refresh-ips", "demo")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("validate printed %q", out)
	}
	shape := func(l string) string { return l[strings.Index(l, "("):] }
	if shape(lines[0]) != shape(lines[1]) {
		t.Errorf("demo runs %s, refresh-ips runs %s", shape(lines[1]), shape(lines[0]))
	}
}
