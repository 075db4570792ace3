package cymru

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ask sends raw to the whois fake and returns its answer lines.
func ask(t *testing.T, addr, raw string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func TestWhoisAnswersAndEtiquette(t *testing.T) {
	w := NewWhois(t, WhoisOptions{NoHeader: true})
	got := ask(t, w.Addr(), "begin\r\nverbose\r\n68.22.187.5\r\n10.0.0.1\r\nbogus\r\nend\r\n")
	if len(got) != 4 || !strings.HasPrefix(got[0], "Bulk mode; whois.cymru.com [") ||
		!strings.HasPrefix(got[1], "23028   | 68.22.187.5") || !strings.HasPrefix(got[2], "NA      | 10.0.0.1") ||
		got[3] != "Error: no ASN or IP match on line 5." {
		t.Errorf("answer %q", got)
	}
	if v := w.Stats().Violations; len(v) != 0 {
		t.Errorf("violations after one bulk query: %v", v)
	}
	ask(t, w.Addr(), "begin\n8.8.8.8\nend\n")
	ask(t, w.Addr(), "begin\n8.8.4.4\nend\n")
	ask(t, w.Addr(), "8.8.8.8\n")
	ask(t, w.Addr(), "begin\n"+strings.Repeat("8.8.8.8\n", MaxBulkIPs+1)+"end\n")
	want := []string{"several connections with one address each", "query outside bulk mode (no begin/end)", "query with 1001 addresses (more than 1000)"}
	if v := w.Stats().Violations; !slices.Equal(v, want) {
		t.Errorf("violations %q, want %q", v, want)
	}
	if s := w.Stats(); s.Connections != 5 || s.PeakConcurrent != 1 {
		t.Errorf("connections %d, peak %d; want 5 and 1", s.Connections, s.PeakConcurrent)
	}
}

func TestDNSShortNames(t *testing.T) {
	d := NewDNS(t, DNSOptions{})
	c := &dns.Client{Timeout: 5 * time.Second}
	for _, tt := range []struct{ name, want string }{
		{"187.22.68.origin.asn.cymru.com.", "23028 | 68.22.187.0/24 | US | arin | 2002-03-15"},
		{"0.6.8.4.1.0.0.2.origin6.asn.cymru.com.", "15169 | 2001:4860::/32 | US | arin | 2005-03-14"},
		{"AS60729.asn.cymru.com.", "60729 | DE | ripencc |  | ZWIEBELFREUNDE, DE"},
	} {
		m := new(dns.Msg).SetQuestion(tt.name, dns.TypeTXT)
		in, _, err := c.ExchangeContext(context.Background(), m, d.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Answer) != 1 || strings.Join(in.Answer[0].(*dns.TXT).Txt, "") != tt.want {
			t.Errorf("%s: %v, want %q", tt.name, in.Answer, tt.want)
		}
	}
	m := new(dns.Msg).SetQuestion("1.2.0.192.origin.asn.cymru.com.", dns.TypeTXT)
	if in, _, err := c.ExchangeContext(context.Background(), m, d.Addr()); err != nil || in.Rcode != dns.RcodeNameError {
		t.Errorf("unrouted: %v %v, want NXDOMAIN", in, err)
	}
}

func TestTableLongestMatch(t *testing.T) {
	tb := Sample()
	r, ok := tb.Lookup(netip.MustParseAddr("104.16.1.1"))
	if !ok || r.Prefix.String() != "104.16.0.0/13" {
		t.Errorf("Lookup = %v, %v; want the /13 inside the /12", r, ok)
	}
	if m := tb.Matches(netip.MustParseAddr("104.24.0.1")); len(m) != 1 || m[0].Prefix.Bits() != 12 {
		t.Errorf("Matches outside the /13 = %v, want only the /12", m)
	}
}
