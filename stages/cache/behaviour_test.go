package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// upstreamPath is where upstream's EnrichmentCacheManager keeps key ip of
// service, computed here independently of the stage.
func upstreamPath(dir, service, ip string) string {
	sum := sha256.Sum256([]byte(ip))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(dir, service, h[:2], h+".json")
}

func writeFile(t *testing.T, path, body string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// TestUpstreamFiles reads files written the way upstream cowrieprocessor
// writes them, and writes files upstream can read.
func TestUpstreamFiles(t *testing.T) {
	dir := t.TempDir()
	iso := "2026-02-28T10:00:00.123456+00:00" // Python's isoformat
	writeFile(t, upstreamPath(dir, "cymru", "8.8.8.8"),
		`{"ip_address":"8.8.8.8","asn":15169,"asn_org":"GOOGLE, US","country_code":"us","registry":"ARIN","prefix":"8.8.8.0/24","allocation_date":"1992-12-01","source":"cymru","cached_at":"`+iso+`","ttl_days":90}`,
		testNow)
	// The DNS path leaves asn_org null.
	writeFile(t, upstreamPath(dir, "cymru", "1.1.1.1"),
		`{"ip_address":"1.1.1.1","asn":13335,"asn_org":null,"country_code":"AU","registry":"apnic","prefix":"1.1.1.0/24","allocation_date":"2011-08-11","source":"cymru","cached_at":"`+iso+`","ttl_days":90}`,
		testNow)
	writeFile(t, upstreamPath(dir, "greynoise", "8.8.8.8"),
		`{"ip_address":"8.8.8.8","noise":false,"riot":true,"classification":"benign","name":"Google Public DNS","last_seen":"2026-02-27","source":"greynoise","cached_at":"`+iso+`","ttl_days":7}`,
		testNow)
	// A 404, as upstream caches it; no cached_at: dated by mtime.
	writeFile(t, upstreamPath(dir, "greynoise", "1.1.1.1"),
		`{"ip_address":"1.1.1.1","noise":false,"riot":false,"classification":"unknown","name":null,"last_seen":null,"source":"greynoise","ttl_days":7}`,
		testNow.Add(-6*24*time.Hour))
	// Same without cached_at, but the mtime is older than the 7-day TTL.
	writeFile(t, upstreamPath(dir, "greynoise", "9.9.9.9"),
		`{"ip_address":"9.9.9.9","noise":false,"riot":false,"classification":"unknown","name":null,"last_seen":null,"source":"greynoise","ttl_days":7}`,
		testNow.Add(-8*24*time.Hour))
	// Upstream's quota counter lives among the GreyNoise files; it is never
	// mistaken for an address.
	writeFile(t, upstreamPath(dir, "greynoise", "greynoise:quota:2026-03-01"), `{"count": 17, "date": "2026-03-01"}`, testNow)

	c := DefaultConfig()
	c.FileDir = dir
	st := newStage(t, env(nil), c)
	b := records("8.8.8.8", "1.1.1.1", "9.9.9.9")
	if _, err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	at := pipeline.Timestamp{Time: time.Date(2026, 2, 28, 10, 0, 0, 123456000, time.UTC)}
	want := map[string]map[string]any{
		"8.8.8.8": {
			"cymru": &pipeline.CymruResult{ASN: i64(15169), ASNOrg: "GOOGLE, US", Country: "US", Registry: "arin",
				Prefix: "8.8.8.0/24", AllocationDate: "1992-12-01", CachedAt: at},
			"greynoise": &pipeline.GreyNoiseResult{RIOT: true, Classification: "benign", Name: "Google Public DNS",
				LastSeen: "2026-02-27T00:00:00+00:00", CachedAt: at},
		},
		"1.1.1.1": {
			"cymru": &pipeline.CymruResult{ASN: i64(13335), Country: "AU", Registry: "apnic",
				Prefix: "1.1.1.0/24", AllocationDate: "2011-08-11", CachedAt: at},
			"greynoise": &pipeline.GreyNoiseResult{Classification: "unknown"},
		},
		"9.9.9.9": {},
	}
	for _, r := range b {
		for _, src := range sources {
			w, ok := want[r.IP()][src]
			if !ok {
				if r.Settled(src) {
					t.Errorf("%s %s: settled from %v; want a miss", r.IP(), src, r.Enrichment[src])
				}
				continue
			}
			if r.Source(src).State != pipeline.StateCached {
				t.Errorf("%s %s: state %v, want cached", r.IP(), src, r.Source(src).State)
				continue
			}
			if g, w := mustJSON(t, r.Enrichment[src]), mustJSON(t, w); g != w {
				t.Errorf("%s %s:\n got %s\nwant %s", r.IP(), src, g, w)
			}
		}
	}
	if r := b[0]; r.ASN == nil || r.ASN.Number != 15169 || r.ASN.Registry != "arin" {
		t.Errorf("ASN = %+v; want Cymru's 15169 (no MaxMind answer)", r.ASN)
	}

	// What the stage writes upstream reads: same path, upstream's keys.
	r := records("4.4.4.4")[0]
	r.Set(pipeline.SourceCymru, cymruAt(testNow))
	r.Set(pipeline.SourceGreyNoise, &pipeline.GreyNoiseResult{Classification: "unknown", CachedAt: pipeline.At(testNow)})
	if err := st.Committed(t.Context(), pipeline.Batch{r}); err != nil {
		t.Fatal(err)
	}
	for src, keys := range map[string]string{
		"cymru":     "allocation_date,asn,asn_org,cached_at,country_code,ip_address,prefix,registry,source,ttl_days",
		"greynoise": "cached_at,classification,ip_address,last_seen,name,noise,riot,source,ttl_days",
	} {
		raw, err := os.ReadFile(upstreamPath(dir, src, "4.4.4.4"))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		var got []string
		for k := range m {
			got = append(got, k)
		}
		if g := strings.Join(sorted(got), ","); g != keys {
			t.Errorf("%s file keys %s; want upstream's %s", src, g, keys)
		}
		if m["source"] != src || m["ip_address"] != "4.4.4.4" || m["cached_at"] != "2026-03-01T12:00:00.000000+00:00" {
			t.Errorf("%s file %s", src, raw)
		}
	}
}

func sorted(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// TestBackfillIntegration checks that a hit in a lower tier reaches the
// tiers above: L2 → Redis, L3 → Redis and enrichment_cache.
func TestBackfillIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, dbURL string) {
		f := newFixture(t, dbURL)
		age := 24 * time.Hour
		mm := maxmindAt(testNow.Add(-age))
		putInventory(t, f.db, "192.0.2.10", fmt.Sprintf(`{"maxmind": %s}`, mustJSON(t, mm)))
		gn := greynoiseAt(testNow.Add(-age))
		if err := (&files{dir: f.cfg.FileDir}).write("greynoise", "192.0.2.10", entry{value: gn, cachedAt: gn.CachedAt.Time}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := (&files{dir: f.cfg.FileDir}).write("cymru", "192.0.2.10", entry{cachedAt: testNow.Add(-time.Hour)}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := f.stage(t).Process(t.Context(), records("192.0.2.10")); err != nil {
			t.Fatal(err)
		}

		rc := redisClient(t, f.cfg.RedisURL)
		ctx := context.Background()
		for src, ttl := range map[string]time.Duration{"maxmind": f.cfg.TTL.MaxMind - age, "greynoise": f.cfg.TTL.GreyNoise - age, "cymru": f.cfg.NegativeTTL - time.Hour} {
			key := f.prefix + ":" + src + ":192.0.2.10"
			got, err := rc.TTL(ctx, key).Result()
			if err != nil || got <= 0 || got > ttl || got < ttl-time.Minute {
				t.Errorf("%s: Redis TTL %v, %v; want about %v (what is left of the answer's life)", src, got, err, ttl)
			}
		}
		rows := map[string]string{}
		err := f.db.Query(ctx, `SELECT service, cache_value FROM enrichment_cache WHERE cache_key = ?`, []any{"192.0.2.10"}, func(scan func(...any) error) error {
			var s, v string
			err := scan(&s, &v)
			rows[s] = v
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || !strings.Contains(rows["cymru"], `"not_found": true`) && !strings.Contains(rows["cymru"], `"not_found":true`) || !strings.Contains(rows["greynoise"], "malicious") {
			t.Errorf("enrichment_cache rows %v; want the two file answers (maxmind is in the inventory already)", rows)
		}

		// A second stage with an empty file tier now answers all three from
		// Redis alone.
		f.cfg.FileDir = ""
		f.env.Progress = pipeline.NewProgress(testNow)
		r := records("192.0.2.10")
		if _, err := f.stage(t).Process(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.env.Progress.Value("l1_hits"); got != 3 {
			t.Errorf("l1_hits = %d after back-fill; want 3", got)
		}
		if r[0].ASN == nil || r[0].ASN.Number != 15169 {
			t.Errorf("ASN %+v; want MaxMind's", r[0].ASN)
		}
	})
}

// warnCounter is a slog handler counting Warn records by message.
type warnCounter struct {
	mu    sync.Mutex
	warns map[string]int
}

func (w *warnCounter) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.warns == nil {
			w.warns = map[string]int{}
		}
		key := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "tier" {
				key = a.Value.String() + ": " + key
			}
			return true
		})
		w.warns[key]++
	}
	return nil
}
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCounter) WithGroup(string) slog.Handler      { return w }

func (w *warnCounter) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, v := range w.warns {
		n += v
	}
	return n
}

// proxy forwards loopback TCP connections to a server until cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { p.Cut(); p.wg.Wait() })
	return p
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(up, c); up.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, up); c.Close() }()
	}
}

// Cut closes the listener and every open connection: Redis is gone.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestRedisOutageIntegration cuts Redis in the middle of a run: lookups go
// on from the database and the files, the run never fails, and the outage
// is warned about once.
func TestRedisOutageIntegration(t *testing.T) {
	f := newFixture(t, testdb.PostgresURL(t))
	addr := strings.TrimPrefix(strings.SplitN(strings.TrimPrefix(f.cfg.RedisURL, "redis://"), "/", 2)[0], "")
	p := newProxy(t, addr)
	f.cfg.RedisURL = "redis://" + p.ln.Addr().String() + "/" + strings.SplitN(strings.TrimPrefix(redisURL(t), "redis://"), "/", 2)[1]
	f.cfg.Timeout = 500 * time.Millisecond
	warns := &warnCounter{}
	f.env.Logger = slog.New(warns)
	st := f.stage(t)

	// Everything is in Redis and in the inventory.
	ips := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}
	for _, ip := range ips {
		r := records(ip)[0]
		r.Set("cymru", cymruAt(testNow.Add(-time.Hour)))
		if err := st.Committed(t.Context(), pipeline.Batch{r}); err != nil {
			t.Fatal(err)
		}
		putInventory(t, f.db, ip, fmt.Sprintf(`{"cymru": %s}`, mustJSON(t, cymruAt(testNow.Add(-time.Hour)))))
	}
	if _, err := st.Process(t.Context(), records(ips[0])); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.env.Progress.Value("l1_hits"); n != 1 {
		t.Fatalf("l1_hits = %d before the outage; want 1", n)
	}

	p.Cut()
	for _, ip := range ips[1:] {
		b := records(ip)
		if _, err := st.Process(t.Context(), b); err != nil {
			t.Fatalf("Process during the outage: %v", err)
		}
		if b[0].Source("cymru").State != pipeline.StateCached {
			t.Errorf("%s: cymru %v during the outage; want cached from the database", ip, b[0].Source("cymru"))
		}
		r := records(ip)[0]
		r.Set("greynoise", greynoiseAt(testNow))
		if err := st.Committed(t.Context(), pipeline.Batch{r}); err != nil {
			t.Fatalf("Committed during the outage: %v", err)
		}
	}
	if n, _ := f.env.Progress.Value("l2_hits"); n != 2 {
		t.Errorf("l2_hits = %d; want 2", n)
	}
	// One failed call, then Redis is left alone for the cooldown.
	if n, _ := f.env.Progress.Value("cache_errors"); n != 1 {
		t.Errorf("cache_errors = %d; want 1", n)
	}
	if n := warns.total(); n != 1 {
		t.Errorf("%d warnings (%v); want one", n, warns.warns)
	}
}

// TestRedisDownFromTheStart points L1 at a closed port: the run goes on
// from the other tiers.
func TestRedisDownFromTheStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := DefaultConfig()
	c.RedisURL, c.FileDir = "redis://"+addr+"/0", t.TempDir()
	e := env(nil)
	warns := &warnCounter{}
	e.Logger = slog.New(warns)
	st := newStage(t, e, c)
	if err := (&files{dir: c.FileDir}).write("cymru", "192.0.2.1", entry{value: cymruAt(testNow), cachedAt: testNow}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b := records("192.0.2.1")
		if _, err := st.Process(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if b[0].Source("cymru").State != pipeline.StateCached {
			t.Errorf("cymru %v; want cached from the file", b[0].Source("cymru"))
		}
	}
	if n := warns.total(); n != 1 {
		t.Errorf("%d warnings (%v); want one", n, warns.warns)
	}
}

// TestCorruptEntriesIntegration puts undecodable answers in every tier:
// each is a miss, counted, and warned about once per tier.
func TestCorruptEntriesIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, dbURL string) {
		f := newFixture(t, dbURL)
		warns := &warnCounter{}
		f.env.Logger = slog.New(warns)
		rc := redisClient(t, f.cfg.RedisURL)
		ctx := context.Background()
		var ips []string
		for i := range 4 {
			ip := fmt.Sprintf("192.0.2.%d", i+1)
			ips = append(ips, ip)
			// Redis: not JSON; wrong type.
			rc.Set(ctx, f.prefix+":maxmind:"+ip, "{not json", time.Hour)
			rc.Set(ctx, f.prefix+":cymru:"+ip, `{"asn":"AS15169"}`, time.Hour)
			// Database: a wrong type in the inventory and in a row.
			putInventory(t, f.db, ip, `{"greynoise": {"noise": "yes"}, "maxmind": "garbage"}`)
			putCacheRow(t, f.db, "cymru", ip, `{"asn": [1]}`, testNow)
			// Files: truncated JSON.
			writeFile(t, upstreamPath(f.cfg.FileDir, "greynoise", ip), `{"ip_address":"`+ip+`","noise":tr`, testNow)
		}
		st := f.stage(t)
		b := records(ips...)
		if _, err := st.Process(t.Context(), b); err != nil {
			t.Fatalf("Process: %v (corrupt entries must not fail the run)", err)
		}
		for _, r := range b {
			for _, src := range sources {
				if r.Settled(src) {
					t.Errorf("%s %s settled from a corrupt entry: %v", r.IP(), src, r.Enrichment[src])
				}
			}
		}
		// Per address: 2 in Redis, 3 in the database, 1 file.
		if n, _ := f.env.Progress.Value("cache_corrupt"); n != 6*int64(len(ips)) {
			t.Errorf("cache_corrupt = %d; want %d", n, 6*len(ips))
		}
		if len(warns.warns) != 3 || warns.total() != 3 {
			t.Errorf("warnings %v; want one per tier", warns.warns)
		}
	})
}

// queryCounter counts SQL statements sent through a pgx pool.
type queryCounter struct{ n atomic.Int64 }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}
func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestBatchingIntegration counts round trips: a batch of 500 addresses
// costs one Redis MGET, one Redis pipeline for back-fills, and one query
// per table.
func TestBatchingIntegration(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	testdb.Migrated(t, dbURL)
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	qc := &queryCounter{}
	cfg.ConnConfig.Tracer = qc
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	f := newFixture(t, dbURL)
	f.env.Store = &store.DB{Dialect: store.Postgres, Pool: pool}
	st := f.stage(t)
	hook := &countingHook{}
	st.l1.client.AddHook(hook)

	var ips []string
	var inRedis pipeline.Batch
	for i := range 500 {
		ip := fmt.Sprintf("198.51.%d.%d", i/250, i%250)
		ips = append(ips, ip)
		switch i % 3 {
		case 0: // in Redis
			r := records(ip)[0]
			r.Set("maxmind", maxmindAt(testNow))
			inRedis = append(inRedis, r)
		case 1: // in the inventory
			putInventory(t, f.db, ip, fmt.Sprintf(`{"maxmind": %s}`, mustJSON(t, maxmindAt(testNow))))
		case 2: // in a file
			if err := (&files{dir: f.cfg.FileDir}).write("maxmind", ip, entry{value: maxmindAt(testNow), cachedAt: testNow}, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.Committed(t.Context(), inRedis); err != nil {
		t.Fatal(err)
	}
	hook.calls.Store(0)
	qc.n.Store(0)
	b := records(ips...)
	if _, err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if n := hook.calls.Load(); n != 2 {
		t.Errorf("%d Redis round trips for one batch; want 2 (MGET, back-fill pipeline)", n)
	}
	// inventory, enrichment_cache, back-fill upsert
	if n := qc.n.Load(); n != 3 {
		t.Errorf("%d SQL statements for one batch; want 3", n)
	}
	if n, _ := f.env.Progress.Value("cache_hits_maxmind"); n != 500 {
		t.Errorf("cache_hits_maxmind = %d; want 500", n)
	}

	// Committed writes a batch through in one pipeline.
	hook.calls.Store(0)
	for _, r := range b {
		r.Set("greynoise", greynoiseAt(testNow))
	}
	if err := st.Committed(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if n := hook.calls.Load(); n != 1 {
		t.Errorf("%d Redis round trips for Committed; want 1", n)
	}
}

// TestCommittedIntegration checks the write-through: answers fetched in
// this run (not cached, failed or skipped ones) reach every tier, negative
// answers with negative_ttl, and a later run finds them.
func TestCommittedIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, dbURL string) {
		f := newFixture(t, dbURL)
		st := f.stage(t)
		fetchedRec := records("192.0.2.1")[0]
		fetchedRec.Set("maxmind", maxmindAt(testNow))
		fetchedRec.Set("cymru", nil) // "not found"
		fetchedRec.Fail("greynoise", errors.New("timeout"))
		cachedRec := records("192.0.2.2")[0]
		cachedRec.SetCached("maxmind", maxmindAt(testNow))
		cachedRec.Skip("cymru", "maxmind gave an asn")
		bogon := records("10.0.0.1")[0]
		bogon.Validation.IsBogon = true
		bogon.Set("maxmind", maxmindAt(testNow))
		if err := st.Committed(t.Context(), pipeline.Batch{fetchedRec, cachedRec, bogon}); err != nil {
			t.Fatal(err)
		}
		if n, _ := f.env.Progress.Value("cache_writes"); n != 2 {
			t.Errorf("cache_writes = %d; want 2 (the fetched answers)", n)
		}
		rc := redisClient(t, f.cfg.RedisURL)
		keys, _ := rc.Keys(context.Background(), f.prefix+":*").Result()
		if g := strings.Join(sorted(keys), " "); g != f.prefix+":cymru:192.0.2.1 "+f.prefix+":maxmind:192.0.2.1" {
			t.Errorf("Redis keys %q", g)
		}
		if ttl, _ := rc.TTL(context.Background(), f.prefix+":cymru:192.0.2.1").Result(); ttl > f.cfg.NegativeTTL || ttl < f.cfg.NegativeTTL-time.Minute {
			t.Errorf("negative answer's Redis TTL %v; want negative_ttl %v", ttl, f.cfg.NegativeTTL)
		}
		var n int
		if err := f.db.QueryRow(context.Background(), `SELECT count(*) FROM enrichment_cache WHERE service = 'cymru' AND cache_key = '192.0.2.1'`, nil, &n); err != nil || n != 1 {
			t.Errorf("negative answer rows in enrichment_cache: %d, %v; want 1", n, err)
		}

		// Another run, without Redis, finds both in the files and the row.
		f.cfg.RedisURL = ""
		f.env.Progress = pipeline.NewProgress(testNow)
		b := records("192.0.2.1")
		if _, err := f.stage(t).Process(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if !b[0].Settled("maxmind") || !b[0].Settled("cymru") || b[0].Settled("greynoise") || b[0].Enrichment["cymru"] != nil {
			t.Errorf("second run sources %v enrichment %v; want maxmind and a negative cymru", b[0].Sources, b[0].Enrichment)
		}
	})
}

// TestFullDisk makes the file tier unwritable: Committed goes on, counts
// the failures and warns once.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "cymru")
	// A plain file where the source directory should be: every write fails
	// as on a full or read-only disk.
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.FileDir = dir
	e := env(nil)
	warns := &warnCounter{}
	e.Logger = slog.New(warns)
	st := newStage(t, e, c)
	b := records("192.0.2.1", "192.0.2.2")
	for _, r := range b {
		r.Set("cymru", cymruAt(testNow))
	}
	if err := st.Committed(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.Progress.Value("cache_errors"); n != 2 {
		t.Errorf("cache_errors = %d; want 2", n)
	}
	if warns.total() != 1 {
		t.Errorf("warnings %v; want one", warns.warns)
	}
}

// TestLookupsFollowWhatIsAskedIntegration checks that the stage looks
// only for the sources the stages after it ask, and for Cymru below Redis
// only where the MaxMind answer found has no ASN: the file tier holds
// answers for both, and only the wanted ones are read (and back-filled to
// Redis).
func TestLookupsFollowWhatIsAskedIntegration(t *testing.T) {
	testdb.Dialects(t, func(t *testing.T, dbURL string) {
		f := newFixture(t, dbURL)
		ctx := context.Background()
		rc := redisClient(t, f.cfg.RedisURL)
		withASN, without := "192.0.2.20", "192.0.2.21"
		noASN := maxmindAt(testNow)
		noASN.ASN = nil
		for ip, mm := range map[string]*pipeline.MaxMindResult{withASN: maxmindAt(testNow), without: noASN} {
			if err := rc.Set(ctx, f.prefix+":maxmind:"+ip, mustEncode(t, entry{value: mm, cachedAt: testNow}), time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			for src, v := range map[string]any{"cymru": cymruAt(testNow), "greynoise": greynoiseAt(testNow)} {
				if err := (&files{dir: f.cfg.FileDir}).write(src, ip, entry{value: v, cachedAt: testNow}, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
		}
		st := f.stage(t)
		st.AskedAfter([]string{pipeline.SourceMaxMind, pipeline.SourceCymru})
		b := records(withASN, without)
		if _, err := st.Process(ctx, b); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			r          *pipeline.Record
			src        string
			settled    bool
			redisAfter int64
		}{
			{b[0], "maxmind", true, 1}, {b[0], "cymru", false, 0}, {b[0], "greynoise", false, 0},
			{b[1], "maxmind", true, 1}, {b[1], "cymru", true, 1}, {b[1], "greynoise", false, 0},
		} {
			if c.r.Settled(c.src) != c.settled {
				t.Errorf("%s %s: settled %v; want %v", c.r.IP(), c.src, c.r.Settled(c.src), c.settled)
			}
			if n, err := rc.Exists(ctx, f.prefix+":"+c.src+":"+c.r.IP()).Result(); err != nil || n != c.redisAfter {
				t.Errorf("%s %s: %d Redis keys (%v); want %d", c.r.IP(), c.src, n, err, c.redisAfter)
			}
		}
		if n, _ := f.env.Progress.Value("cache_misses_greynoise"); n != 0 {
			t.Errorf("cache_misses_greynoise = %d; want 0, GreyNoise is not asked", n)
		}
	})
}
