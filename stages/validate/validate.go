package validate

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// Spec registers the validate stage.
var Spec = pipeline.StageSpec("validate",
	"Canonicalise addresses, reject garbage, mark bogons so no provider sees them.",
	"allow: []\n", DefaultConfig, New)

// maxRawLen bounds the raw input looked at. The longest address text form
// is 45 bytes; the rest is room for surrounding whitespace.
const maxRawLen = 100

// Config holds the stage's options.
type Config struct {
	// Allow lists CIDR prefixes treated as routable despite the bogon
	// table. Tests and demo data use the documentation ranges as public
	// addresses; production configs leave it empty.
	Allow []string `koanf:"allow"`
}

// DefaultConfig returns the defaults: no exceptions to the bogon table.
func DefaultConfig() *Config { return &Config{} }

// Validate checks that every allow entry is an IPv4 or IPv6 prefix.
func (c *Config) Validate() error {
	_, err := c.prefixes()
	return err
}

func (c *Config) prefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(c.Allow))
	for i, s := range c.Allow {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("allow[%d]: %w", i, err)
		}
		// Addresses are unmapped before they are compared, so a mapped
		// prefix would silently never match.
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("allow[%d]: %s is IPv4-mapped; write the IPv4 prefix", i, p)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Stage canonicalises and classifies records. It holds no mutable state, so
// concurrent calls to Process are safe.
type Stage struct {
	allow []netip.Prefix
	log   *slog.Logger
}

var (
	_ pipeline.Stage = (*Stage)(nil)
	_ pipeline.Asker = (*Stage)(nil)
)

// Asks returns nil: the stage asks no provider.
func (s *Stage) Asks() []string { return nil }

// New builds the stage from validated options.
func New(env pipeline.Env, cfg *Config) (pipeline.Stage, error) {
	allow, err := cfg.prefixes()
	if err != nil {
		return nil, fmt.Errorf("stage %q: %w", env.ID, err)
	}
	return &Stage{allow: allow, log: env.WithDefaults().Logger}, nil
}

// Process validates every record of b in place and returns b. Records
// already rejected upstream are left as they are.
func (s *Stage) Process(ctx context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	var rejected, bogons int
	for _, r := range b {
		if r.Rejected() {
			continue
		}
		a, err := Parse(r.Raw)
		if err != nil {
			r.Addr = netip.Addr{}
			r.Reject("validate", err)
			rejected++
			continue
		}
		r.Addr = a
		r.Validation = s.classify(a)
		if r.Validation.IsBogon {
			bogons++
		}
	}
	s.log.DebugContext(ctx, "validated batch", "batch_size", len(b), "rejected", rejected, "bogons", bogons)
	return b, nil
}

func (s *Stage) classify(a netip.Addr) *pipeline.Validation {
	for _, p := range s.allow {
		if p.Contains(a) {
			return &pipeline.Validation{}
		}
	}
	if cat, ok := Bogon(a); ok {
		return &pipeline.Validation{IsBogon: true, Reason: cat}
	}
	return &pipeline.Validation{}
}

// Parse returns the canonical address of raw: surrounding whitespace
// trimmed, IPv4-mapped IPv6 unmapped. Zones, prefixes and anything else that
// is not exactly one address are rejected with a *MalformedError.
func Parse(raw string) (netip.Addr, error) {
	if len(raw) > maxRawLen {
		return netip.Addr{}, &MalformedError{Reason: ReasonTooLong}
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return netip.Addr{}, &MalformedError{Reason: ReasonEmpty}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return netip.Addr{}, &MalformedError{Reason: ReasonControl}
		case c >= 0x80:
			// Look-alike digits ("１.２.３.４") and other Unicode.
			return netip.Addr{}, &MalformedError{Reason: ReasonNonASCII}
		}
	}
	switch {
	case strings.IndexByte(s, '%') >= 0:
		return netip.Addr{}, &MalformedError{Reason: ReasonZone}
	case strings.IndexByte(s, '/') >= 0:
		return netip.Addr{}, &MalformedError{Reason: ReasonPrefix}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		if leadingZeroOctet(s) {
			return netip.Addr{}, &MalformedError{Reason: ReasonIPv4Octet}
		}
		return netip.Addr{}, &MalformedError{Reason: ReasonNotAnIP}
	}
	return a.Unmap(), nil
}

// leadingZeroOctet reports whether s looks like dotted IPv4 with an octet
// such as "010", which some parsers read as octal and netip refuses; naming
// it tells an operator why an address-looking value was rejected.
func leadingZeroOctet(s string) bool {
	if strings.Trim(s, "0123456789.") != "" {
		return false
	}
	for f := range strings.SplitSeq(s, ".") {
		if len(f) > 1 && f[0] == '0' {
			return true
		}
	}
	return false
}
