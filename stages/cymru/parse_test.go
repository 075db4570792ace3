package cymru

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestBulkRequest(t *testing.T) {
	got := string(bulkRequest(addrs("68.22.187.5", "2001:4860:4860::8888")))
	want := "begin\nverbose\n68.22.187.5\n2001:4860:4860::8888\nend\n"
	if got != want {
		t.Errorf("request = %q, want %q", got, want)
	}
}

func TestOriginName(t *testing.T) {
	tests := []struct {
		name, addr, want string
	}{
		{"ipv4 reversed octets", "216.90.108.31", "31.108.90.216.origin.asn.cymru.com."},
		{"ipv6 reversed nibbles", "2001:4860:b002::68", "8.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.b.0.6.8.4.1.0.0.2.origin6.asn.cymru.com."},
		{"mapped ipv4 unmapped", "::ffff:8.8.4.4", "4.4.8.8.origin.asn.cymru.com."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := originName(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("originName(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
	if got := asName(23028); got != "AS23028.asn.cymru.com." {
		t.Errorf("asName = %q", got)
	}
}

// summary renders a parsed answer compactly for comparison.
func summary(a bulkAnswer) string {
	var b strings.Builder
	for _, ip := range addrs("68.22.187.5", "8.8.8.8", "10.0.0.1", "2001:4860:4860::8888", "104.16.1.1") {
		switch {
		case a.found[ip].Prefix.IsValid():
			x := a.found[ip]
			fmt.Fprintf(&b, "%s=%v,%s,%s,%s,%s,%q;", ip, x.ASNs, x.Prefix, x.Country, x.Registry, x.Allocated, x.ASName)
		case a.notFound[ip]:
			fmt.Fprintf(&b, "%s=NA;", ip)
		case a.lineErrs[ip] != nil:
			fmt.Fprintf(&b, "%s=err%d;", ip, a.lineErrs[ip].Line)
		}
	}
	fmt.Fprintf(&b, "garbage=%d", a.garbage)
	return b.String()
}

func TestParseBulk(t *testing.T) {
	sent := addrs("68.22.187.5", "8.8.8.8", "10.0.0.1", "2001:4860:4860::8888", "104.16.1.1")
	const banner = "Bulk mode; whois.cymru.com [2026-01-02 03:04:05 +0000]\n"
	const header = "AS      | IP               | BGP Prefix          | CC | Registry | Allocated  | AS Name\n"
	const cymru = "23028   | 68.22.187.5      | 68.22.187.0/24      | us | ARIN     | 2002-03-15 | TEAM-CYMRU - Team Cymru Inc., US\n"
	const google = "15169   | 8.8.8.8          | 8.8.8.0/24          | US | arin     | 1992-12-01 | GOOGLE - Google LLC, US\n"
	const na = "NA      | 10.0.0.1         | NA                  |    | other    |            | NA\n"
	const v6 = "15169   | 2001:4860:4860::8888 | 2001:4860::/32 | US | arin | 2005-03-14 | GOOGLE - Google LLC, US\n"
	const wantCymru = "68.22.187.5=[23028],68.22.187.0/24,US,arin,2002-03-15,\"TEAM-CYMRU - Team Cymru Inc., US\";"
	const wantGoogle = "8.8.8.8=[15169],8.8.8.0/24,US,arin,1992-12-01,\"GOOGLE - Google LLC, US\";"
	const wantV6 = "2001:4860:4860::8888=[15169],2001:4860::/32,US,arin,2005-03-14,\"GOOGLE - Google LLC, US\";"
	tests := []struct {
		name        string
		answer      string
		want        string
		errContains string
	}{
		{name: "banner header rows", answer: banner + header + cymru + google, want: wantCymru + wantGoogle + "garbage=0"},
		{name: "old banner without timestamp", answer: "Bulk mode; one IP per line. [2005-08-02 18:54:55 GMT]\n" + cymru, want: wantCymru + "garbage=0"},
		{name: "crlf line endings", answer: strings.ReplaceAll(banner+header+cymru+google, "\n", "\r\n"), want: wantCymru + wantGoogle + "garbage=0"},
		{name: "no banner", answer: cymru, want: wantCymru + "garbage=0", errContains: "truncated"},
		{name: "NA row", answer: banner + na, want: "10.0.0.1=NA;garbage=0"},
		{name: "error line maps to the address", answer: banner + "Error: no ASN or IP match on line 4.\n", want: "8.8.8.8=err4;garbage=0"},
		{name: "error line out of range is garbage", answer: banner + "Error: no ASN or IP match on line 99.\n", want: "garbage=1"},
		{name: "garbage lines", answer: banner + "%%% rate limited %%%\n| | |\n" + cymru, want: wantCymru + "garbage=2"},
		{name: "row for an address not sent", answer: banner + strings.Replace(cymru, "68.22.187.5 ", "68.22.187.9 ", 1), want: "garbage=1"},
		{name: "bad asn", answer: banner + strings.Replace(cymru, "23028", "AS230", 1), want: "garbage=1"},
		{name: "bad prefix", answer: banner + strings.Replace(cymru, "68.22.187.0/24", "68.22.187.0/99", 1), want: "garbage=1"},
		{name: "duplicates keep the longest prefix", answer: banner + "13335 | 104.16.1.1 | 104.16.0.0/12 | US | arin | 2014-03-28 | CF\n" +
			"13335 209242 | 104.16.1.1 | 104.16.0.0/13 | US | arin | 2014-03-28 | CF\n" + "13335 | 104.16.1.1 | 104.16.0.0/12 | US | arin | 2014-03-28 | CF\n",
			want: "104.16.1.1=[13335 209242],104.16.0.0/13,US,arin,2014-03-28,\"CF\";garbage=0"},
		{name: "out of order", answer: banner + v6 + google + cymru, want: wantCymru + wantGoogle + wantV6 + "garbage=0"},
		{name: "ipv6 respelled", answer: banner + strings.Replace(v6, "2001:4860:4860::8888", "2001:4860:4860:0000:0000:0000:0000:8888", 1), want: wantV6 + "garbage=0"},
		{name: "asn field not a number", answer: banner + "68.22.187.0 | 68.22.187.5 | 68.22.187.0/24 | US | arin |  | NA\n", want: "garbage=1"},
		{name: "empty date", answer: banner + "23028 | 68.22.187.5 | 68.22.187.0/24 | US | arin |  | NA\n", want: "68.22.187.5=[23028],68.22.187.0/24,US,arin,,\"\";garbage=0"},
		{name: "as name with a bar", answer: banner + "23028 | 68.22.187.5 | 68.22.187.0/24 | US | arin | 2002-03-15 | A | B\n", want: "68.22.187.5=[23028],68.22.187.0/24,US,arin,2002-03-15,\"A|B\";garbage=0"},
		{name: "banner only", answer: banner, want: "garbage=0"},
		{name: "nothing at all", answer: "", want: "garbage=0", errContains: "truncated"},
		{name: "truncated inside a line", answer: banner + cymru + google[:20], want: wantCymru + "garbage=0", errContains: "truncated"},
		{name: "line too long", answer: banner + strings.Repeat("x", 5000) + "\n", want: "garbage=0", errContains: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBulk(strings.NewReader(tt.answer), sent)
			switch {
			case tt.errContains == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.errContains != "" && (err == nil || !strings.Contains(err.Error(), tt.errContains)):
				t.Fatalf("err = %v, want one containing %q", err, tt.errContains)
			}
			if s := summary(got); s != tt.want {
				t.Errorf("parsed\n %s\nwant\n %s", s, tt.want)
			}
		})
	}
}

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		name        string
		txts        []string
		want        string
		errContains string
	}{
		{name: "one record", txts: []string{"23028 | 216.90.108.0/24 | US | arin | 1998-09-25"}, want: "[23028] 216.90.108.0/24 US arin 1998-09-25"},
		{name: "longest prefix wins", txts: []string{"13335 | 104.16.0.0/12 | US | arin | 2014-03-28", "13335 209242 | 104.16.0.0/13 | US | arin | 2014-03-28"}, want: "[13335 209242] 104.16.0.0/13 US arin 2014-03-28"},
		{name: "empty date", txts: []string{"60729 | 185.220.100.0/22 | DE | ripencc | "}, want: "[60729] 185.220.100.0/22 DE ripencc "},
		{name: "no records", txts: nil, errContains: "not found"},
		{name: "too few fields", txts: []string{"23028 | 216.90.108.0/24"}, errContains: "malformed"},
		{name: "bad asn", txts: []string{"x | 216.90.108.0/24 | US | arin | 1998-09-25"}, errContains: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseOrigin(tt.txts)
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Fatalf("err = %v, want %q", err, tt.errContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%v %s %s %s %s", a.ASNs, a.Prefix, a.Country, a.Registry, a.Allocated); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseASName(t *testing.T) {
	name, err := parseASName([]string{"15169 | US | arin | 2000-03-30 | GOOGLE - Google LLC, US"})
	if err != nil || name != "GOOGLE - Google LLC, US" {
		t.Errorf("parseASName = %q, %v", name, err)
	}
	if _, err := parseASName(nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("no records: err = %v, want ErrNotFound", err)
	}
	if _, err := parseASName([]string{"15169 | US"}); !errors.Is(err, ErrMalformed) {
		t.Errorf("short record: err = %v, want ErrMalformed", err)
	}
}
