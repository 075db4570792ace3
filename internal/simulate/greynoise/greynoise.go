package greynoise

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Behavior is how the server answers a lookup.
type Behavior int

// Behaviours a test can ask for.
const (
	// Normal answers from the table: the address's record, or "not seen"
	// (404 on the Community API, found:false on v3) for unknown addresses.
	Normal Behavior = iota
	// BadRequest answers 400, as for an address GreyNoise does not accept.
	BadRequest
	// ServerError answers 500.
	ServerError
	// Malformed answers 200 with a body that is not valid JSON.
	Malformed
	// Slow answers normally after Options.SlowDelay, or not at all when
	// the client gives up first.
	Slow
	// RateLimited answers the rate-limit 429 with a Retry-After header of
	// Options.RetryAfter (whole seconds).
	RateLimited
	// RateLimitedNoRetryAfter answers the rate-limit 429 without
	// Retry-After.
	RateLimitedNoRetryAfter
	// QuotaSpent answers the documented 429 of a spent daily plan limit.
	QuotaSpent
)

// Record is what the server knows about an address.
type Record struct {
	Noise          bool
	RIOT           bool
	Classification string // benign, malicious, unknown
	Name           string // actor (noise) or provider (RIOT)
	LastSeen       string // YYYY-MM-DD
}

// Options configure a Server. The zero value is a server without rate or
// quota limits that accepts any key and knows no address.
type Options struct {
	// Key is the accepted API key. Empty accepts any key. A request with
	// another non-empty key gets 401; the Community API also accepts
	// requests without a key (the unauthenticated plan).
	Key string
	// Rate and Burst are the token bucket: requests per second and
	// bucket size (default 1). Zero Rate disables the bucket.
	Rate  float64
	Burst int
	// DailyQuota is the lookups allowed per UTC day (a v3 multi request
	// costs one per address). Zero is unlimited.
	DailyQuota int
	// RetryAfter is sent with rate-limit 429s (default 1s, whole seconds).
	RetryAfter time.Duration
	// SlowDelay is how long Slow answers take (default 2s).
	SlowDelay time.Duration
	// Records is the table of known addresses.
	Records map[string]Record
	// Classify, when set, answers for addresses not in Records (a whole
	// simulated network at once). It must be safe for concurrent use.
	Classify func(ip string) (Record, bool)
	// Addr is the loopback host:port to listen on; empty picks a free port.
	Addr string
	// Now is the clock for arrival times and quota days (default
	// time.Now).
	Now func() time.Time
}

// Request is one request the server received.
type Request struct {
	At     time.Time
	Method string
	Path   string
	Key    string   // the key header as sent
	IPs    []string // the addresses asked about
	Status int
}

// Violations counts requests a well-behaved client would not have sent.
type Violations struct {
	Rate  int // requests refused by the token bucket
	Quota int // lookups past the daily quota
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, http://127.0.0.1:port, without a trailing slash.
	URL string

	srv  *httptest.Server
	opts Options
	lim  *rate.Limiter

	mu         sync.Mutex
	records    map[string]Record
	behavior   map[string]scripted
	def        Behavior
	requests   []Request
	violations Violations
	used       map[string]int // lookups per UTC day
}

// New starts a server on 127.0.0.1 and panics if it cannot listen (tests).
// Close it when done.
func New(opts Options) *Server {
	s, err := Start(opts)
	if err != nil {
		panic(err)
	}
	return s
}

// Start starts a server on opts.Addr (default: a free 127.0.0.1 port).
// Close it when done.
func Start(opts Options) (*Server, error) {
	if opts.Burst < 1 {
		opts.Burst = 1
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:     opts,
		records:  make(map[string]Record, len(opts.Records)),
		behavior: map[string]scripted{},
		used:     map[string]int{},
	}
	for ip, r := range opts.Records {
		s.records[ip] = r
	}
	if opts.Rate > 0 {
		s.lim = rate.NewLimiter(rate.Limit(opts.Rate), opts.Burst)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// httptest listens on 127.0.0.1 already; being explicit keeps the fake
	// off other interfaces whatever httptest's default becomes.
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("greynoise fake: listen: %w", err)
	}
	s.srv.Listener = l
	s.srv.Start()
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server and waits for its handlers. It is safe to call
// more than once.
func (s *Server) Close() { s.srv.Close() }

// SetRecord adds or replaces what the server knows about ip.
func (s *Server) SetRecord(ip string, r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[ip] = r
}

// scripted is a behaviour for the next n requests, or all when n is 0.
type scripted struct {
	b Behavior
	n int
}

// SetBehavior makes every lookup of ip answer with b.
func (s *Server) SetBehavior(ip string, b Behavior) { s.SetBehaviorFor(ip, b, 0) }

// SetBehaviorFor makes the next n requests about ip answer with b, and
// later ones normally; n = 0 means every request.
func (s *Server) SetBehaviorFor(ip string, b Behavior, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behavior[ip] = scripted{b, n}
}

// SetDefault makes every lookup without a behaviour of its own answer
// with b.
func (s *Server) SetDefault(b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = b
}

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Violations returns the requests refused for rate or quota so far.
func (s *Server) Violations() Violations {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.violations
}

// Used returns the lookups counted against today's quota.
func (s *Server) Used() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[s.day(s.opts.Now())]
}

// MaxInWindow returns the most requests that arrived within any half-open
// window [t, t+d).
func (s *Server) MaxInWindow(d time.Duration) int {
	reqs := s.Requests()
	best, j := 0, 0
	for i := range reqs {
		for reqs[i].At.Sub(reqs[j].At) >= d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func (s *Server) day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// Bodies of the documented answers (protocols.md §2).
const (
	bodyBadRequest  = `{"message":"Request is not a valid routable IPv4 address"}`
	bodyUnauthorize = `{"message":"Unauthorized"}`
	bodyRateLimited = `{"message":"You've hit the rate limit for this endpoint."}`
	bodyServerError = `{"message":"Encountered error while performing request"}`
	bodyMalformed   = `{"ip":"1.2.3.4","noise":tru`
	bodyNotObserved = "IP not observed scanning the internet or contained in RIOT data set."
)

func (s *Server) quotaBody() string {
	b, _ := json.Marshal(map[string]string{
		"plan":       "unauthenticated",
		"rate-limit": fmt.Sprintf("%d-lookups/day", s.opts.DailyQuota),
		"plan_url":   "https://greynoise.io/pricing",
		"message":    fmt.Sprintf("You have hit your daily rate limit of %d requests per day. Please create a free account or upgrade your plan at https://greynoise.io/pricing.\n", s.opts.DailyQuota),
	})
	return string(b)
}

// answer is what serve decided to send.
type answer struct {
	status     int
	body       string
	retryAfter bool
	slow       bool
}

func (s *Server) serve(w http.ResponseWriter, req *http.Request) {
	at := s.opts.Now()
	key := req.Header.Get("key")
	var ips []string
	community := false
	switch {
	case req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, "/v3/community/"):
		community = true
		ips = []string{strings.TrimPrefix(req.URL.Path, "/v3/community/")}
	case req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, "/v3/ip/"):
		ips = []string{strings.TrimPrefix(req.URL.Path, "/v3/ip/")}
	case req.Method == http.MethodPost && req.URL.Path == "/v3/ip":
		var body struct {
			IPs []string `json:"ips"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil || len(body.IPs) == 0 {
			s.finish(w, req, Request{At: at, Method: req.Method, Path: req.URL.Path, Key: key}, answer{status: http.StatusBadRequest, body: `{"message":"Invalid parameter"}`})
			return
		}
		ips = body.IPs
	default:
		s.finish(w, req, Request{At: at, Method: req.Method, Path: req.URL.Path, Key: key}, answer{status: http.StatusNotFound, body: `{"message":"Not found"}`})
		return
	}
	rec := Request{At: at, Method: req.Method, Path: req.URL.Path, Key: key, IPs: ips}
	s.finish(w, req, rec, s.decide(at, key, community, ips))
}

// decide picks the answer under the lock, updating counters and quota.
func (s *Server) decide(at time.Time, key string, community bool, ips []string) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Key != "" && key != s.opts.Key && (key != "" || !community) {
		return answer{status: http.StatusUnauthorized, body: bodyUnauthorize}
	}
	// The bucket reads the clock under the lock: handlers that took their
	// arrival times in one order may get here in another.
	if s.lim != nil && !s.lim.AllowN(s.opts.Now(), 1) {
		s.violations.Rate++
		return answer{status: http.StatusTooManyRequests, body: bodyRateLimited, retryAfter: true}
	}
	b := s.def
	for _, ip := range ips {
		v, ok := s.behavior[ip]
		if !ok {
			continue
		}
		if v.n == 1 {
			delete(s.behavior, ip)
		} else if v.n > 1 {
			s.behavior[ip] = scripted{v.b, v.n - 1}
		}
		b = v.b
		break
	}
	switch b {
	case BadRequest:
		return answer{status: http.StatusBadRequest, body: bodyBadRequest}
	case ServerError:
		return answer{status: http.StatusInternalServerError, body: bodyServerError}
	case RateLimited:
		return answer{status: http.StatusTooManyRequests, body: bodyRateLimited, retryAfter: true}
	case RateLimitedNoRetryAfter:
		return answer{status: http.StatusTooManyRequests, body: bodyRateLimited}
	case QuotaSpent:
		return answer{status: http.StatusTooManyRequests, body: s.quotaBody()}
	}
	day := s.day(at)
	if q := s.opts.DailyQuota; q > 0 && s.used[day]+len(ips) > q {
		s.violations.Quota += s.used[day] + len(ips) - q
		return answer{status: http.StatusTooManyRequests, body: s.quotaBody()}
	}
	s.used[day] += len(ips)
	if b == Malformed {
		return answer{status: http.StatusOK, body: bodyMalformed}
	}
	a := s.lookup(community, ips)
	a.slow = b == Slow
	return a
}

// lookup builds the answer from the table; s.mu is held.
func (s *Server) lookup(community bool, ips []string) answer {
	if community {
		ip := ips[0]
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
			return answer{status: http.StatusBadRequest, body: bodyBadRequest}
		}
		r, ok := s.record(ip)
		if !ok {
			return jsonAnswer(http.StatusNotFound, map[string]any{"ip": ip, "noise": false, "riot": false, "message": bodyNotObserved})
		}
		link := "https://viz.greynoise.io/ip/" + ip
		if r.RIOT {
			link = "https://viz.greynoise.io/riot/" + ip
		}
		return jsonAnswer(http.StatusOK, map[string]any{
			"ip": ip, "noise": r.Noise, "riot": r.RIOT, "classification": r.Classification,
			"name": r.Name, "link": link, "last_seen": r.LastSeen, "message": "Success",
		})
	}
	if len(ips) == 1 {
		return jsonAnswer(http.StatusOK, s.v3(ips[0]))
	}
	data := make([]any, 0, len(ips))
	notFound := []string{}
	for _, ip := range ips {
		if _, ok := s.record(ip); !ok {
			notFound = append(notFound, ip)
			continue
		}
		data = append(data, s.v3(ip))
	}
	return jsonAnswer(http.StatusOK, map[string]any{
		"data":             data,
		"request_metadata": map[string]any{"restricted_fields": []string{}, "message": "ok", "ips_not_found": notFound},
	})
}

// record returns what the server knows about ip: a SetRecord/Records
// entry, else the Classify answer; s.mu is held.
func (s *Server) record(ip string) (Record, bool) {
	if r, ok := s.records[ip]; ok {
		return r, true
	}
	if s.opts.Classify != nil {
		return s.opts.Classify(ip)
	}
	return Record{}, false
}

// v3 is the full-context v3 shape of ip, trimmed to the documented fields
// a client reads; s.mu is held.
func (s *Server) v3(ip string) map[string]any {
	r, ok := s.record(ip)
	bsi := map[string]any{"found": ok && r.RIOT}
	isi := map[string]any{"found": ok && r.Noise, "seen": ok && r.Noise}
	if ok && r.RIOT {
		bsi["name"], bsi["category"], bsi["trust_level"] = r.Name, "hosting", "1"
		bsi["last_updated"] = r.LastSeen + "T12:30:45Z"
	}
	if ok && r.Noise {
		isi["classification"], isi["actor"], isi["last_seen"] = r.Classification, r.Name, r.LastSeen
		isi["first_seen"], isi["tags"] = r.LastSeen, []any{}
	}
	return map[string]any{"ip": ip, "business_service_intelligence": bsi, "internet_scanner_intelligence": isi,
		"request_metadata": map[string]any{"restricted_fields": []string{}}}
}

func jsonAnswer(status int, v any) answer {
	b, _ := json.Marshal(v)
	return answer{status: status, body: string(b)}
}

// finish records the request and writes the answer.
func (s *Server) finish(w http.ResponseWriter, req *http.Request, rec Request, a answer) {
	rec.Status = a.status
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
	if a.slow {
		t := time.NewTimer(s.opts.SlowDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if a.retryAfter {
		w.Header().Set("Retry-After", strconv.Itoa(int((s.opts.RetryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}
