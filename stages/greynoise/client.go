package greynoise

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// maxBody bounds an answer read into memory: a multi lookup of
// maxPerRequest addresses in full context stays well below it.
const maxBody = 64 << 20

// client sends one request to GreyNoise. It knows the wire format and
// nothing about limits or retries.
type client struct {
	http    *http.Client
	base    string
	key     secret
	timeout time.Duration
}

// response is an answer with a status the caller interprets.
type response struct {
	status     int
	body       []byte
	retryAfter time.Duration
}

// do sends one request. A transport error or timeout is returned as is,
// with the URL left out (it names the address, never the key, but the
// message is clearer without it).
func (c *client) do(ctx context.Context, method, path string, body []byte) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return response{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "cowrie-enrich")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("key", c.key.reveal())
	}
	res, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return response{}, fmt.Errorf("no answer within %s", c.timeout)
		}
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return response{}, fmt.Errorf("read answer: %w", err)
	}
	return response{status: res.StatusCode, body: b, retryAfter: parseRetryAfter(res.Header.Get("Retry-After"), time.Now())}, nil
}

// parseRetryAfter reads delay-seconds or an HTTP date; zero when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// quotaSpent reports whether a 429 body says the plan's quota is spent
// rather than the request rate too high. The Community API's documented
// body names the plan and its "N-lookups/day" limit and says "daily rate
// limit"; the v3 rate-limit body says only "rate limit for this endpoint".
func quotaSpent(body []byte) bool {
	var b struct {
		Plan      string `json:"plan"`
		RateLimit string `json:"rate-limit"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(body, &b) != nil {
		return false
	}
	msg := strings.ToLower(b.Message)
	return b.Plan != "" || b.RateLimit != "" || strings.Contains(msg, "daily") || strings.Contains(msg, "per day") || strings.Contains(msg, "quota")
}

// unknown is the answer for an address GreyNoise has not seen (upstream
// stores a 404 this way).
func unknown(now time.Time) *pipeline.GreyNoiseResult {
	return &pipeline.GreyNoiseResult{Classification: "unknown", CachedAt: pipeline.At(now)}
}

// lastSeen turns GreyNoise's YYYY-MM-DD (or a timestamp) into upstream's
// midnight UTC form; an unreadable or empty value is left empty.
func lastSeen(s string) string {
	if len(s) < len(time.DateOnly) {
		return ""
	}
	d, err := time.Parse(time.DateOnly, s[:len(time.DateOnly)])
	if err != nil {
		return ""
	}
	return d.Format("2006-01-02T15:04:05+00:00")
}

// communityAnswer is GET /v3/community/{ip}'s 200 body.
type communityAnswer struct {
	Noise          bool   `json:"noise"`
	RIOT           bool   `json:"riot"`
	Classification string `json:"classification"`
	Name           string `json:"name"`
	LastSeen       string `json:"last_seen"`
}

func decodeCommunity(body []byte, now time.Time) (*pipeline.GreyNoiseResult, error) {
	var a communityAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedAnswer, err)
	}
	cls := a.Classification
	if cls == "" {
		cls = "unknown"
	}
	return &pipeline.GreyNoiseResult{Noise: a.Noise, RIOT: a.RIOT, Classification: cls, Name: a.Name,
		LastSeen: lastSeen(a.LastSeen), CachedAt: pipeline.At(now)}, nil
}

// v3Answer is one address of the paid v3 lookups, trimmed to the fields
// the stage keeps.
type v3Answer struct {
	IP       string `json:"ip"`
	Business struct {
		Found       bool   `json:"found"`
		Name        string `json:"name"`
		LastUpdated string `json:"last_updated"`
	} `json:"business_service_intelligence"`
	Scanner struct {
		Found          bool   `json:"found"`
		Classification string `json:"classification"`
		Actor          string `json:"actor"`
		LastSeen       string `json:"last_seen"`
	} `json:"internet_scanner_intelligence"`
}

// result maps a v3 answer onto upstream's community-shaped keys: noise is
// "found by the scanner sensors", riot is "a known business service".
func (a *v3Answer) result(now time.Time) *pipeline.GreyNoiseResult {
	if !a.Business.Found && !a.Scanner.Found {
		return unknown(now)
	}
	r := &pipeline.GreyNoiseResult{Noise: a.Scanner.Found, RIOT: a.Business.Found, CachedAt: pipeline.At(now)}
	switch {
	case a.Scanner.Found && a.Scanner.Classification != "":
		r.Classification = a.Scanner.Classification
	case a.Business.Found:
		// The Community API classifies RIOT addresses as benign.
		r.Classification = "benign"
	default:
		r.Classification = "unknown"
	}
	r.Name = a.Scanner.Actor
	if a.Business.Found && a.Business.Name != "" {
		r.Name = a.Business.Name
	}
	r.LastSeen = lastSeen(a.Scanner.LastSeen)
	if r.LastSeen == "" {
		r.LastSeen = lastSeen(a.Business.LastUpdated)
	}
	return r
}

func decodeV3(body []byte, now time.Time) (*pipeline.GreyNoiseResult, error) {
	var a v3Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedAnswer, err)
	}
	return a.result(now), nil
}

// decodeMulti reads POST /v3/ip's answer into results by address. An
// address missing from data (listed in ips_not_found, or left out) has not
// been seen, as the official SDK reads it.
func decodeMulti(body []byte, now time.Time) (map[string]*pipeline.GreyNoiseResult, error) {
	var m struct {
		Data *[]v3Answer `json:"data"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedAnswer, err)
	}
	if m.Data == nil {
		return nil, fmt.Errorf("%w: no data list", ErrMalformedAnswer)
	}
	out := make(map[string]*pipeline.GreyNoiseResult, len(*m.Data))
	for i := range *m.Data {
		a := &(*m.Data)[i]
		ip := a.IP
		if addr, err := netip.ParseAddr(ip); err == nil {
			ip = addr.Unmap().String()
		}
		out[ip] = a.result(now)
	}
	return out, nil
}
