package validate

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

func newStage(t testing.TB, allow ...string) *Stage {
	t.Helper()
	st, err := New(pipeline.Env{ID: "validate"}, &Config{Allow: allow})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return st.(*Stage)
}

func TestProcess(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		want   string // canonical form; empty when rejected
		bogon  string // bogon category; empty for routable addresses
		reason string // rejection reason; empty when accepted
	}{
		{name: "public ipv4", input: "8.8.8.8", want: "8.8.8.8"},
		{name: "public ipv6", input: "2606:4700::1111", want: "2606:4700::1111"},
		{name: "upper-case ipv6", input: "2606:4700:0:0:0:0:0:1111", want: "2606:4700::1111"},
		{name: "upper-case hex", input: "2A03:2880:F12F:83:FACE:B00C:0:25DE", want: "2a03:2880:f12f:83:face:b00c:0:25de"},
		{name: "mapped ipv4", input: "::ffff:8.8.4.4", want: "8.8.4.4"},
		{name: "mapped ipv4 hex", input: "::FFFF:0808:0404", want: "8.8.4.4"},
		{name: "mapped private", input: "::ffff:10.1.2.3", want: "10.1.2.3", bogon: CategoryPrivate},
		{name: "whitespace", input: " \t1.1.1.1\r\n", want: "1.1.1.1"},
		{name: "unspecified v4", input: "0.0.0.0", want: "0.0.0.0", bogon: CategoryUnspecified},
		{name: "this network", input: "0.1.2.3", want: "0.1.2.3", bogon: CategoryReserved},
		{name: "loopback v4", input: "127.0.0.53", want: "127.0.0.53", bogon: CategoryLoopback},
		{name: "rfc1918 10", input: "10.0.0.1", want: "10.0.0.1", bogon: CategoryPrivate},
		{name: "rfc1918 172", input: "172.31.255.255", want: "172.31.255.255", bogon: CategoryPrivate},
		{name: "just outside 172.16/12", input: "172.32.0.1", want: "172.32.0.1"},
		{name: "rfc1918 192", input: "192.168.1.1", want: "192.168.1.1", bogon: CategoryPrivate},
		{name: "cgnat", input: "100.64.0.1", want: "100.64.0.1", bogon: CategoryShared},
		{name: "link-local v4", input: "169.254.169.254", want: "169.254.169.254", bogon: CategoryLinkLocal},
		{name: "documentation v4", input: "198.51.100.7", want: "198.51.100.7", bogon: CategoryDocumentation},
		{name: "benchmarking", input: "198.19.0.1", want: "198.19.0.1", bogon: CategoryBenchmarking},
		{name: "multicast v4", input: "239.255.255.250", want: "239.255.255.250", bogon: CategoryMulticast},
		{name: "class e", input: "250.1.1.1", want: "250.1.1.1", bogon: CategoryReserved},
		{name: "broadcast", input: "255.255.255.255", want: "255.255.255.255", bogon: CategoryReserved},
		{name: "ietf protocol v4", input: "192.0.0.8", want: "192.0.0.8", bogon: CategoryReserved},
		{name: "pcp anycast v4 routable", input: "192.0.0.9", want: "192.0.0.9"},
		{name: "unspecified v6", input: "::", want: "::", bogon: CategoryUnspecified},
		{name: "loopback v6", input: "::1", want: "::1", bogon: CategoryLoopback},
		{name: "ula", input: "fd12:3456::1", want: "fd12:3456::1", bogon: CategoryPrivate},
		{name: "link-local v6", input: "FE80::1", want: "fe80::1", bogon: CategoryLinkLocal},
		{name: "documentation v6", input: "2001:db8::dead:beef", want: "2001:db8::dead:beef", bogon: CategoryDocumentation},
		{name: "multicast v6", input: "ff02::1", want: "ff02::1", bogon: CategoryMulticast},
		{name: "discard v6", input: "100::1", want: "100::1", bogon: CategoryReserved},
		{name: "ietf protocol v6", input: "2001:10::1", want: "2001:10::1", bogon: CategoryReserved},
		{name: "benchmarking v6", input: "2001:2::1", want: "2001:2::1", bogon: CategoryBenchmarking},
		{name: "teredo routable", input: "2001:0:4136:e378::1", want: "2001:0:4136:e378::1"},
		{name: "6to4 routable", input: "2002:c000:204::1", want: "2002:c000:204::1"},
		{name: "nat64 routable", input: "64:ff9b::808:808", want: "64:ff9b::808:808"},
		{name: "ipv4-compatible deprecated", input: "::8.8.8.8", want: "::808:808", bogon: CategoryReserved},
		{name: "unallocated v6", input: "4000::1", want: "4000::1", bogon: CategoryReserved},
		{name: "empty", input: "", reason: ReasonEmpty},
		{name: "blank", input: " \t\n", reason: ReasonEmpty},
		{name: "word", input: "not-an-ip", reason: ReasonNotAnIP},
		{name: "octet too large", input: "999.1.1.1", reason: ReasonNotAnIP},
		{name: "three octets", input: "1.2.3", reason: ReasonNotAnIP},
		{name: "five octets", input: "1.2.3.4.5", reason: ReasonNotAnIP},
		{name: "leading zero", input: "010.1.1.1", reason: ReasonIPv4Octet},
		{name: "cidr v4", input: "1.2.3.0/24", reason: ReasonPrefix},
		{name: "cidr v6", input: "2001:db8::/32", reason: ReasonPrefix},
		{name: "zone", input: "fe80::1%eth0", reason: ReasonZone},
		{name: "nul inside", input: "1.2.3.4\x00", reason: ReasonControl},
		{name: "newline inside", input: "1.2.3.4\n5.6.7.8", reason: ReasonControl},
		{name: "sql fragment", input: "1.1.1.1'; DROP TABLE ip_inventory;--", reason: ReasonNotAnIP},
		{name: "huge", input: strings.Repeat("1", 1<<16), reason: ReasonTooLong},
		{name: "just over limit", input: strings.Repeat(" ", 94) + "1.2.3.4", reason: ReasonTooLong},
		{name: "fullwidth digits", input: "１.２.３.４", reason: ReasonNonASCII},
		{name: "arabic-indic digits", input: "١.٢.٣.٤", reason: ReasonNonASCII},
		{name: "port", input: "1.2.3.4:22", reason: ReasonNotAnIP},
		{name: "bracketed v6", input: "[::1]", reason: ReasonNotAnIP},
		{name: "hex ipv4", input: "0x7f.0.0.1", reason: ReasonNotAnIP},
	}
	st := newStage(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := pipeline.NewRecord(tt.input)
			b, err := st.Process(t.Context(), pipeline.Batch{r})
			if err != nil || len(b) != 1 || b[0] != r {
				t.Fatalf("Process = %v, %v; want the same one-record batch", b, err)
			}
			if tt.reason != "" {
				var me *MalformedError
				if !errors.As(r.Err, &me) || me.Reason != tt.reason || !errors.Is(r.Err, ErrMalformed) {
					t.Fatalf("Err = %v; want reason %q", r.Err, tt.reason)
				}
				if r.ErrStage != "validate" || r.Addr.IsValid() || r.Validation != nil {
					t.Fatalf("rejected record: stage %q, addr %v, validation %v", r.ErrStage, r.Addr, r.Validation)
				}
				return
			}
			if r.Err != nil {
				t.Fatalf("Err = %v; want accepted", r.Err)
			}
			if got := r.IP(); got != tt.want {
				t.Errorf("IP() = %q; want %q", got, tt.want)
			}
			if r.Validation == nil {
				t.Fatal("Validation not set")
			}
			if r.Validation.IsBogon != (tt.bogon != "") || r.Validation.Reason != tt.bogon {
				t.Errorf("Validation = %+v; want bogon %q", *r.Validation, tt.bogon)
			}
			if r.Eligible() == (tt.bogon != "") {
				t.Errorf("Eligible() = %v for bogon %q", r.Eligible(), tt.bogon)
			}
		})
	}
}

func TestProcessBatchKeepsEveryRecord(t *testing.T) {
	in := pipeline.Batch{pipeline.NewRecord("1.1.1.1"), pipeline.NewRecord("garbage"), pipeline.NewRecord("10.0.0.1")}
	already := pipeline.NewRecord("9.9.9.9")
	already.Reject("source", errors.New("refused"))
	in = append(in, already)

	out, err := newStage(t).Process(t.Context(), in)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d records; want %d", len(out), len(in))
	}
	if !out[0].Eligible() || !out[1].Rejected() || !out[2].IsBogon() {
		t.Errorf("unexpected classification: %+v", out)
	}
	if already.ErrStage != "source" || already.Addr.IsValid() {
		t.Errorf("record rejected upstream was touched: stage %q, addr %v", already.ErrStage, already.Addr)
	}
}

func TestAllow(t *testing.T) {
	st := newStage(t, "192.0.2.0/24", " 2001:db8::/32 ")
	for _, ip := range []string{"192.0.2.10", "2001:db8::1"} {
		r := pipeline.NewRecord(ip)
		if _, err := st.Process(t.Context(), pipeline.Batch{r}); err != nil {
			t.Fatal(err)
		}
		if !r.Eligible() {
			t.Errorf("%s: not eligible despite allow: %+v", ip, r.Validation)
		}
	}
	r := pipeline.NewRecord("198.51.100.1")
	if _, err := st.Process(context.Background(), pipeline.Batch{r}); err != nil {
		t.Fatal(err)
	}
	if !r.IsBogon() {
		t.Errorf("198.51.100.1 outside allow list should stay a bogon")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		allow       []string
		errContains string
	}{
		{name: "default"},
		{name: "v4 and v6", allow: []string{"192.0.2.0/24", "2001:db8::/32"}},
		{name: "not a prefix", allow: []string{"192.0.2.0/24", "192.0.2.1"}, errContains: "allow[1]"},
		{name: "garbage", allow: []string{"nope"}, errContains: "allow[0]"},
		{name: "mapped", allow: []string{"::ffff:192.0.2.0/120"}, errContains: "IPv4-mapped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Allow = tt.allow
			err := cfg.Validate()
			if tt.errContains == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("Validate = %v; want error containing %q", err, tt.errContains)
			}
		})
	}
}

func TestSpecialsSorted(t *testing.T) {
	for i, s := range specials {
		if s.prefix != s.prefix.Masked() {
			t.Errorf("%s is not masked", s.prefix)
		}
		if i == 0 {
			continue
		}
		p, q := specials[i-1].prefix, s.prefix
		if c := p.Addr().Compare(q.Addr()); c > 0 || c == 0 && p.Bits() >= q.Bits() {
			t.Errorf("specials out of order or duplicated: %s before %s", p, q)
		}
	}
}

// TestSpecialFirstOctets checks the shortcut Bogon takes for IPv4: an
// address whose first octet is not marked is outside every IPv4 entry of
// the table, and a marked octet is one some entry covers.
func TestSpecialFirstOctets(t *testing.T) {
	for o := range 256 {
		block := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(o)}), 8)
		covered := false
		for _, s := range specials {
			if s.prefix.Addr().Is4() && s.prefix.Overlaps(block) {
				covered = true
			}
		}
		if covered != specialFirstOctets[o] {
			t.Errorf("first octet %d: marked %v, covered by the table %v", o, specialFirstOctets[o], covered)
		}
	}
	for _, tt := range []struct {
		ip       string
		category string
	}{{"9.255.255.255", ""}, {"10.0.0.0", CategoryPrivate}, {"11.0.0.1", ""}, {"224.0.0.1", CategoryMulticast}, {"255.255.255.254", CategoryReserved}} {
		if got, _ := Bogon(netip.MustParseAddr(tt.ip)); got != tt.category {
			t.Errorf("Bogon(%s) = %q, want %q", tt.ip, got, tt.category)
		}
	}
}

func TestErrorDoesNotEchoInput(t *testing.T) {
	secret := "1.1.1.1'; SELECT password FROM users;--"
	_, err := Parse(secret)
	if err == nil || strings.Contains(err.Error(), "SELECT") {
		t.Fatalf("Parse error %v echoes its input", err)
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		"1.2.3.4", " 8.8.8.8\n", "::ffff:1.2.3.4", "::FFFF:10.0.0.1", "2001:DB8::1", "fe80::1%eth0",
		"1.2.3.0/24", "999.1.1.1", "1.2.3", "010.1.1.1", "", "\x00", "１.２.３.４",
		"1.1.1.1' OR '1'='1", "::", "255.255.255.255", "64:ff9b::1.2.3.4", strings.Repeat("a", 101),
	} {
		f.Add(s)
	}
	st := newStage(f)
	f.Fuzz(func(t *testing.T, raw string) {
		r := pipeline.NewRecord(raw)
		out, err := st.Process(t.Context(), pipeline.Batch{r})
		if err != nil || len(out) != 1 {
			t.Fatalf("Process = %d records, %v", len(out), err)
		}
		if r.Rejected() {
			if !errors.Is(r.Err, ErrMalformed) || r.Addr.IsValid() || r.Validation != nil {
				t.Fatalf("rejected %q: err %v, addr %v, validation %v", raw, r.Err, r.Addr, r.Validation)
			}
			if len(r.Err.Error()) > 64 {
				t.Fatalf("error message too long: %q", r.Err)
			}
			return
		}
		a := r.Addr
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() || r.Validation == nil {
			t.Fatalf("accepted %q as %v (validation %v)", raw, a, r.Validation)
		}
		back, err := netip.ParseAddr(a.String())
		if err != nil || back != a {
			t.Fatalf("%q: canonical %q does not round-trip: %v, %v", raw, a, back, err)
		}
		if again, err := Parse(a.String()); err != nil || again != a {
			t.Fatalf("%q: Parse(canonical) = %v, %v", raw, again, err)
		}
	})
}

func TestConformance(t *testing.T) {
	pipelinetest.Conformance(t, Spec, pipelinetest.Env("validate"))
}
