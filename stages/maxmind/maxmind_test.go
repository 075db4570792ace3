package maxmind

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate/geolite"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

var build1 = time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)

// warnings counts the Warn records logged through it.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	w.msgs = append(w.msgs, msg)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	stage    *Stage
	warn     *warnings
	clock    *clock
	progress *pipeline.Progress
	city     string
	asn      string
}

// newFixture writes the sample databases (built at build1) into a temp dir
// and builds a stage on them; edit changes the config first.
func newFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	city, asn, err := geolite.WriteFiles(t.TempDir(), geolite.Sample(), build1)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{warn: &warnings{}, clock: &clock{t: time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)}, city: city, asn: asn}
	cfg := DefaultConfig()
	cfg.CityDB, cfg.ASNDB = city, asn
	if edit != nil {
		edit(cfg)
	}
	env := pipelinetest.Env("maxmind")
	env.Logger = slog.New(f.warn)
	env.Now = f.clock.Now
	f.progress = env.Progress
	st, err := New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.stage = st.(*Stage)
	t.Cleanup(func() { f.stage.Close() })
	return f
}

// rec returns a validated, public record for ip.
func rec(ip string) *pipeline.Record {
	r := pipeline.NewRecord(ip)
	r.Addr = netip.MustParseAddr(ip)
	r.Validation = &pipeline.Validation{}
	return r
}

func (f *fixture) process(t *testing.T, rs ...*pipeline.Record) {
	t.Helper()
	out, err := f.stage.Process(t.Context(), rs)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if len(out) != len(rs) {
		t.Fatalf("Process returned %d records, want %d", len(out), len(rs))
	}
}

func result(t *testing.T, r *pipeline.Record) *pipeline.MaxMindResult {
	t.Helper()
	if got := r.Source(source); got.State != pipeline.StateSucceeded {
		t.Fatalf("%s: maxmind state %+v, want succeeded", r.IP(), got)
	}
	m, _ := r.Enrichment[source].(*pipeline.MaxMindResult)
	return m
}

func ptr[T any](v T) *T { return &v }

func TestLookup(t *testing.T) {
	f := newFixture(t, nil)
	now := pipeline.At(f.clock.Now())
	built := pipeline.At(build1)
	tests := []struct {
		name string
		ip   string
		want *pipeline.MaxMindResult // nil: clean miss
	}{
		{name: "city and asn", ip: "81.2.69.160", want: &pipeline.MaxMindResult{
			Country: "GB", CountryName: "United Kingdom", City: "London", Latitude: ptr(51.5142), Longitude: ptr(-0.0931),
			ASN: ptr(int64(20712)), ASNOrg: "Andrews & Arnold Ltd", AccuracyRadius: ptr(10), Network: "81.2.69.0/24"}},
		{name: "city only", ip: "2.125.160.218", want: &pipeline.MaxMindResult{
			Country: "GB", CountryName: "United Kingdom", City: "Boxford", Latitude: ptr(51.75), Longitude: ptr(-1.25),
			AccuracyRadius: ptr(100), Network: "2.125.160.216/29"}},
		{name: "country level", ip: "67.43.156.7", want: &pipeline.MaxMindResult{
			Country: "BT", CountryName: "Bhutan", Latitude: ptr(27.5), Longitude: ptr(90.5),
			AccuracyRadius: ptr(534), Network: "67.43.156.0/24"}},
		{name: "asn only", ip: "1.128.0.1", want: &pipeline.MaxMindResult{
			ASN: ptr(int64(1221)), ASNOrg: "Telstra Pty Ltd", Network: "1.128.0.0/11"}},
		{name: "asn without organisation", ip: "12.81.92.9", want: &pipeline.MaxMindResult{
			ASN: ptr(int64(7018)), Network: "12.81.92.0/22"}},
		{name: "ipv6 city and asn", ip: "2a02:c7f:1234::1", want: &pipeline.MaxMindResult{
			Country: "GB", CountryName: "United Kingdom", City: "London", Latitude: ptr(51.5085), Longitude: ptr(-0.1257),
			ASN: ptr(int64(5607)), ASNOrg: "Sky UK Limited", AccuracyRadius: ptr(100), Network: "2a02:c7f::/32"}},
		{name: "ipv6 asn only", ip: "2400:cb00::1", want: &pipeline.MaxMindResult{
			ASN: ptr(int64(13335)), ASNOrg: "Cloudflare, Inc.", Network: "2400:cb00::/32"}},
		{name: "ipv4 miss", ip: "8.8.8.8"},
		{name: "ipv6 miss", ip: "2001:4860::8888"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rec(tt.ip)
			f.process(t, r)
			got := result(t, r)
			if tt.want == nil {
				if got != nil || len(r.Enrichment) != 0 || r.ASN != nil {
					t.Fatalf("miss stored %+v, ASN %+v; want nothing", got, r.ASN)
				}
				return
			}
			tt.want.DatabaseBuild, tt.want.CachedAt = built, now
			if got == nil {
				t.Fatalf("no result")
			}
			if !equalResult(got, tt.want) {
				t.Errorf("got  %s\nwant %s", dump(got), dump(tt.want))
			}
			if want := tt.want.ASNInfo(); (r.ASN == nil) != (want == nil) || (want != nil && *r.ASN != *want) {
				t.Errorf("record ASN %+v, want %+v", r.ASN, want)
			}
		})
	}
	if n, _ := f.progress.Value("maxmind_lookups"); n != int64(len(tests)) {
		t.Errorf("maxmind_lookups = %d, want %d", n, len(tests))
	}
	if w := f.warn.all(); len(w) != 0 {
		t.Errorf("unexpected warnings: %q", w)
	}
}

func TestCountryDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "GeoLite2-Country.mmdb")
	if err := geolite.Replace(path, func(w io.Writer) error { return geolite.WriteCountry(w, geolite.Sample(), build1) }); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) { c.CityDB = path })
	if !f.stage.city.cur.Load().country {
		t.Fatalf("country database not recognised")
	}
	r := rec("81.2.69.160")
	f.process(t, r)
	got := result(t, r)
	want := &pipeline.MaxMindResult{Country: "GB", CountryName: "United Kingdom", ASN: ptr(int64(20712)),
		ASNOrg: "Andrews & Arnold Ltd", Network: "81.2.69.0/24", DatabaseBuild: pipeline.At(build1), CachedAt: pipeline.At(f.clock.Now())}
	if !equalResult(got, want) {
		t.Errorf("got  %s\nwant %s", dump(got), dump(want))
	}
}

func TestWrongDatabaseType(t *testing.T) {
	tests := []struct {
		name        string
		swap        func(f *Config, city, asn string)
		errContains string
	}{
		{name: "asn file as city_db", swap: func(c *Config, city, asn string) { c.CityDB = asn },
			errContains: `city_db holds a "GeoLite2-ASN" database, want a City or Country database`},
		{name: "city file as asn_db", swap: func(c *Config, city, asn string) { c.ASNDB = city },
			errContains: `asn_db holds a "GeoLite2-City" database, want an ASN database`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			city, asn, err := geolite.WriteFiles(t.TempDir(), geolite.Sample(), build1)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, func(c *Config) { tt.swap(c, city, asn) })
			w := f.warn.all()
			if len(w) != 1 || !strings.Contains(w[0], tt.errContains) {
				t.Fatalf("warnings %q; want one containing %q", w, tt.errContains)
			}
			var typeErr *DatabaseTypeError
			_, err = openReader(optCity, asn, slog.New(slog.DiscardHandler))
			if !errors.As(err, &typeErr) {
				t.Errorf("openReader(asn file as city) = %v; want *DatabaseTypeError", err)
			}
		})
	}
}

func TestIneligibleUntouched(t *testing.T) {
	f := newFixture(t, nil)
	bogon := rec("81.2.69.160")
	bogon.Validation.IsBogon = true
	rejected := rec("81.2.69.161")
	rejected.Reject("validate", errors.New("malformed address"))
	unvalidated := pipeline.NewRecord("81.2.69.162")
	f.process(t, bogon, rejected, unvalidated)
	for _, r := range []*pipeline.Record{bogon, rejected, unvalidated} {
		if r.Sources != nil || r.Enrichment != nil || r.ASN != nil {
			t.Errorf("%s: touched: sources %v enrichment %v asn %v", r.Raw, r.Sources, r.Enrichment, r.ASN)
		}
	}
	if n, _ := f.progress.Value("maxmind_lookups"); n != 0 {
		t.Errorf("maxmind_lookups = %d, want 0", n)
	}
}

func TestMissingFiles(t *testing.T) {
	missing := func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent.mmdb") }
	tests := []struct {
		name     string
		edit     func(t *testing.T, c *Config)
		warnings []string // substrings, one per expected warning
		state    pipeline.SourceState
		reason   string
		asn      bool
		country  bool
	}{
		{name: "both missing", edit: func(t *testing.T, c *Config) { c.CityDB, c.ASNDB = missing(t), missing(t) },
			warnings: []string{"geoipupdate or set stages.maxmind.with.city_db", "geoipupdate or set stages.maxmind.with.asn_db"},
			state:    pipeline.StateSkipped, reason: ReasonUnavailable},
		{name: "city missing", edit: func(t *testing.T, c *Config) { c.CityDB = missing(t) },
			warnings: []string{"absent.mmdb"}, state: pipeline.StateSucceeded, asn: true},
		{name: "asn missing", edit: func(t *testing.T, c *Config) { c.ASNDB = missing(t) },
			warnings: []string{"stages.maxmind.with.asn_db"}, state: pipeline.StateSucceeded, country: true},
		{name: "asn not configured", edit: func(t *testing.T, c *Config) { c.ASNDB = "" },
			state: pipeline.StateSucceeded, country: true},
		{name: "unreadable city", edit: func(t *testing.T, c *Config) {
			c.CityDB = filepath.Join(t.TempDir(), "garbage.mmdb")
			if err := os.WriteFile(c.CityDB, []byte("not a database"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, warnings: []string{"garbage.mmdb"}, state: pipeline.StateSucceeded, asn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { tt.edit(t, c) })
			// Several batches across reload checks still warn once.
			for range 3 {
				r := rec("81.2.69.160")
				f.process(t, r)
				f.clock.Add(2 * time.Minute)
				if got := r.Source(source); got.State != tt.state || got.Reason != tt.reason {
					t.Fatalf("source %+v, want state %d reason %q", got, tt.state, tt.reason)
				}
				m, _ := r.Enrichment[source].(*pipeline.MaxMindResult)
				if tt.state != pipeline.StateSucceeded {
					if m != nil || r.ASN != nil {
						t.Fatalf("skipped record has data %+v", m)
					}
					continue
				}
				if (m.ASN != nil) != tt.asn || (r.ASN != nil) != tt.asn || (m.Country == "GB") != tt.country {
					t.Fatalf("result %s, record ASN %+v; want asn=%v country=%v", dump(m), r.ASN, tt.asn, tt.country)
				}
			}
			w := f.warn.all()
			if len(w) != len(tt.warnings) {
				t.Fatalf("warnings %q; want %d", w, len(tt.warnings))
			}
			for i, sub := range tt.warnings {
				if !strings.Contains(w[i], sub) {
					t.Errorf("warning %d = %q; want it to contain %q", i, w[i], sub)
				}
			}
		})
	}
}

func TestFileAppearsLater(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, geolite.ASNFile)
	f := newFixture(t, func(c *Config) { c.ASNDB = path })
	r := rec("1.128.0.1")
	f.process(t, r)
	if result(t, r) != nil {
		t.Fatalf("asn-only address found without the asn database")
	}
	if err := geolite.Replace(path, func(w io.Writer) error { return geolite.WriteASN(w, geolite.Sample(), build1) }); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	r = rec("1.128.0.1")
	f.process(t, r)
	if m := result(t, r); m == nil || m.ASN == nil || *m.ASN != 1221 {
		t.Fatalf("asn database not picked up: %s", dump(m))
	}
}

// replaceCity writes a city database of nets built at build over the
// fixture's file, as geoipupdate does.
func (f *fixture) replaceCity(t *testing.T, nets []geolite.Network, build time.Time) {
	t.Helper()
	if err := geolite.Replace(f.city, func(w io.Writer) error { return geolite.WriteCity(w, nets, build) }); err != nil {
		t.Fatal(err)
	}
}

// TestSharedRecords checks the record cache: networks that share one
// database record (every network of a city, every network of an AS) give
// the same answer, each with its own network, however often and in
// whatever order they are looked up.
func TestSharedRecords(t *testing.T) {
	nets := geolite.Sample()
	london := nets[0] // 81.2.69.0/24
	for _, p := range []string{"81.2.70.0/24", "2001:db8:1::/48"} {
		n := london
		n.Prefix = netip.MustParsePrefix(p)
		nets = append(nets, n)
	}
	f := newFixture(t, nil)
	f.replaceCity(t, nets, build1)
	if err := geolite.Replace(f.asn, func(w io.Writer) error { return geolite.WriteASN(w, nets, build1) }); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute) // pick the files up
	want := map[string]string{"81.2.69.1": "81.2.69.0/24", "81.2.70.1": "81.2.70.0/24", "2001:db8:1::1": "2001:db8:1::/48"}
	for range 3 {
		for ip, network := range want {
			r := rec(ip)
			f.process(t, r)
			m := result(t, r)
			if m == nil || m.Network != network || m.City != "London" || *m.Latitude != london.Latitude || *m.AccuracyRadius != int(london.AccuracyRadius) ||
				m.ASN == nil || *m.ASN != int64(london.ASN) || m.ASNOrg != london.ASNOrg {
				t.Fatalf("%s: %s, want London's records in %s", ip, dump(m), network)
			}
		}
	}
}

// TestNeighboursInOneBatch checks that a batch of addresses that follow
// each other in a network, or in the empty space between networks, gets
// the answers each address gets on its own.
func TestNeighboursInOneBatch(t *testing.T) {
	f := newFixture(t, nil)
	ips := []string{
		"81.2.69.1", "81.2.69.2", "81.2.70.1", "81.2.70.2", "8.8.8.8", "81.2.69.3", // a network, a gap, a network again
		"175.16.199.1", "175.16.199.2", "1.128.0.1", "1.159.255.255", // city without ASN, ASN without city
		"2a02:c7f::1", "2a02:c7f::2", "81.2.69.4", "2001:4860::8888", "2a02:c7f::3",
	}
	batch := make(pipeline.Batch, len(ips))
	for i, ip := range ips {
		batch[i] = rec(ip)
	}
	f.process(t, batch...)
	for i, ip := range ips {
		alone := rec(ip)
		f.process(t, alone)
		if got, want := dump(result(t, batch[i])), dump(result(t, alone)); got != want {
			t.Errorf("%s in a batch: %s\nalone: %s", ip, got, want)
		}
	}
}

func TestHotReload(t *testing.T) {
	f := newFixture(t, nil)
	old := f.stage.city.cur.Load()
	// A batch in flight holds the old reader across the reload.
	if !old.acquire() {
		t.Fatal("acquire the loaded reader")
	}

	build2 := build1.Add(24 * time.Hour)
	nets := geolite.Sample()
	nets[0].City, nets[0].CountryISO = "Manchester", "gb"
	f.replaceCity(t, nets, build2)

	r := rec("81.2.69.160")
	f.process(t, r)
	if m := result(t, r); m.City != "London" {
		t.Fatalf("replacement picked up before reload_check passed: %s", dump(m))
	}
	f.clock.Add(time.Minute)
	r = rec("81.2.69.160")
	f.process(t, r)
	m := result(t, r)
	if m.City != "Manchester" || m.Country != "GB" || !m.DatabaseBuild.Equal(build2) {
		t.Fatalf("after reload: %s; want Manchester, GB, build %v", dump(m), build2)
	}
	if f.stage.city.cur.Load() == old {
		t.Fatal("old reader still loaded")
	}
	if err := old.db.Lookup(r.Addr).Err(); err != nil {
		t.Fatalf("old reader closed while a batch still used it: %v", err)
	}
	old.release()
	if err := old.db.Lookup(r.Addr).Err(); err == nil {
		t.Errorf("old reader not closed after its last batch")
	}
	if w := f.warn.all(); len(w) != 0 {
		t.Errorf("unexpected warnings: %q", w)
	}
}

func TestCorruptReplacementKeepsOldReader(t *testing.T) {
	f := newFixture(t, nil)
	old := f.stage.city.cur.Load()
	if err := geolite.Replace(f.city, func(w io.Writer) error { _, err := io.WriteString(w, "truncated download"); return err }); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.clock.Add(time.Minute)
		r := rec("81.2.69.160")
		f.process(t, r)
		if m := result(t, r); m.City != "London" {
			t.Fatalf("lost the old database: %s", dump(m))
		}
	}
	if f.stage.city.cur.Load() != old {
		t.Errorf("old reader replaced")
	}
	w := f.warn.all()
	if len(w) != 1 || !strings.Contains(w[0], "keeping the loaded one") || !strings.Contains(w[0], f.city) {
		t.Errorf("warnings %q; want one about the replacement", w)
	}
	// A good file after the bad one is picked up.
	f.replaceCity(t, geolite.Sample(), build1.Add(time.Hour))
	f.clock.Add(time.Minute)
	r := rec("81.2.69.160")
	f.process(t, r)
	if m := result(t, r); !m.DatabaseBuild.Equal(build1.Add(time.Hour)) {
		t.Errorf("good replacement not picked up: %s", dump(m))
	}
}

func TestCachedAnswers(t *testing.T) {
	f := newFixture(t, nil)
	cached := func(ip string, m *pipeline.MaxMindResult) *pipeline.Record {
		r := rec(ip)
		if m == nil {
			r.SetCached(source, nil)
		} else {
			r.SetCached(source, m)
		}
		return r
	}
	older := &pipeline.MaxMindResult{Country: "FR", ASN: ptr(int64(1)), DatabaseBuild: pipeline.At(build1.Add(-time.Hour))}
	current := &pipeline.MaxMindResult{Country: "FR", ASN: ptr(int64(2)), ASNOrg: "Cached", DatabaseBuild: pipeline.At(build1)}
	newer := &pipeline.MaxMindResult{Country: "FR", DatabaseBuild: pipeline.At(build1.Add(time.Hour))}
	tests := []struct {
		name    string
		r       *pipeline.Record
		refresh bool
		asn     int64
	}{
		{name: "older build is looked up again", r: cached("81.2.69.160", older), refresh: true, asn: 20712},
		{name: "current build is kept", r: cached("81.2.69.160", current), asn: 2},
		{name: "newer build is kept", r: cached("81.2.69.160", newer)},
		{name: "cached not-found is looked up again", r: cached("81.2.69.160", nil), refresh: true, asn: 20712},
		{name: "stale answer replaced by a miss", r: cached("8.8.8.8", older), refresh: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.r.Enrichment[source]
			f.process(t, tt.r)
			st := tt.r.Source(source).State
			m, _ := tt.r.Enrichment[source].(*pipeline.MaxMindResult)
			if tt.refresh {
				if st != pipeline.StateSucceeded {
					t.Fatalf("state %d, want succeeded (looked up again)", st)
				}
				if m != nil && !m.DatabaseBuild.Equal(build1) {
					t.Errorf("refreshed answer build %v", m.DatabaseBuild)
				}
				if tt.r.IP() == "8.8.8.8" && m != nil {
					t.Errorf("stale answer kept after a miss: %s", dump(m))
				}
			} else if st != pipeline.StateCached || tt.r.Enrichment[source] != before {
				t.Fatalf("state %d, answer %s; want the cached answer kept", st, dump(m))
			}
			switch {
			case tt.asn == 0 && tt.r.ASN != nil:
				t.Errorf("record ASN %+v, want none", tt.r.ASN)
			case tt.asn != 0 && (tt.r.ASN == nil || tt.r.ASN.Number != tt.asn):
				t.Errorf("record ASN %+v, want %d", tt.r.ASN, tt.asn)
			}
		})
	}
}

func TestASNPrecedence(t *testing.T) {
	f := newFixture(t, nil)
	cymru := &pipeline.ASN{Number: 64500, Org: "from cymru", Registry: "ripencc"}
	withASN := rec("81.2.69.160")
	withASN.ASN = cymru
	cityOnly := rec("2.125.160.218")
	cityOnly.ASN = cymru
	f.process(t, withASN, cityOnly)
	if withASN.ASN == nil || withASN.ASN.Number != 20712 || withASN.ASN.Org != "Andrews & Arnold Ltd" || withASN.ASN.Country != "GB" {
		t.Errorf("maxmind's ASN did not win: %+v", withASN.ASN)
	}
	if cityOnly.ASN != cymru {
		t.Errorf("record ASN replaced by an answer without one: %+v", cityOnly.ASN)
	}
}

func TestConcurrentReloads(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ReloadCheck = 0 })
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				r := rec("81.2.69.160")
				if _, err := f.stage.Process(context.Background(), pipeline.Batch{r}); err != nil {
					t.Errorf("Process: %v", err)
					return
				}
				if m, _ := r.Enrichment[source].(*pipeline.MaxMindResult); m == nil || m.ASN == nil {
					t.Errorf("goroutine %d batch %d: %+v", g, i, r.Sources)
					return
				}
			}
		})
	}
	for i := range 10 {
		f.replaceCity(t, geolite.Sample(), build1.Add(time.Duration(i+1)*time.Second))
	}
	wg.Wait()
}

func TestClose(t *testing.T) {
	f := newFixture(t, nil)
	city := f.stage.city.cur.Load()
	for range 2 {
		if err := f.stage.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if err := city.db.Lookup(netip.MustParseAddr("81.2.69.160")).Err(); err == nil {
		t.Errorf("reader still open after Close")
	}
	// A late batch degrades instead of touching closed readers or
	// reopening the files.
	f.clock.Add(time.Hour)
	r := rec("81.2.69.160")
	f.process(t, r)
	if got := r.Source(source); got.State != pipeline.StateSkipped {
		t.Errorf("after Close: %+v, want skipped", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(*Config)
		errContains string
		is          error
	}{
		{name: "defaults"},
		{name: "city only", edit: func(c *Config) { c.ASNDB = "" }},
		{name: "check every batch", edit: func(c *Config) { c.ReloadCheck = 0 }},
		{name: "no database", edit: func(c *Config) { c.CityDB, c.ASNDB = " ", "" }, errContains: "set city_db or asn_db", is: ErrNoDatabase},
		{name: "negative reload_check", edit: func(c *Config) { c.ReloadCheck = -time.Second }, errContains: "reload_check -1s", is: ErrReloadCheck},
		{name: "one batch at a time", edit: func(c *Config) { c.Concurrency = 1 }},
		{name: "zero concurrency", edit: func(c *Config) { c.Concurrency = 0 }, errContains: "concurrency 0", is: ErrConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			if tt.edit != nil {
				tt.edit(c)
			}
			err := c.Validate()
			if tt.errContains == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errContains) || !errors.Is(err, tt.is) {
				t.Fatalf("Validate = %v; want %v containing %q", err, tt.is, tt.errContains)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	t.Run("sample paths", func(t *testing.T) {
		// The shipped sample points at /var/lib/GeoIP, absent here: the
		// stage must still build and keep the contract, degraded.
		pipelinetest.Conformance(t, Spec, pipelinetest.Env("maxmind"))
	})
	t.Run("real databases", func(t *testing.T) {
		city, asn, err := geolite.WriteFiles(t.TempDir(), geolite.Sample(), build1)
		if err != nil {
			t.Fatal(err)
		}
		spec := pipeline.StageSpec(Spec.Name, Spec.Summary,
			"city_db: "+city+"\nasn_db: "+asn+"\nreload_check: 1s\n", DefaultConfig, New)
		pipelinetest.Conformance(t, spec, pipelinetest.Env("maxmind"))
	})
}

func equalResult(a, b *pipeline.MaxMindResult) bool {
	return dump(a) == dump(b)
}

func dump(m *pipeline.MaxMindResult) string {
	if m == nil {
		return "<nil>"
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
