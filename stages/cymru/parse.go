package cymru

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Answer is what Cymru says about the route of one address.
type Answer struct {
	// ASNs are the origin ASNs, in the order Cymru wrote them. A prefix
	// announced by several ASes lists them all; the first one is the
	// address's ASN, as Cymru lists the primary origin first.
	ASNs      []int64
	Prefix    netip.Prefix // the matching BGP prefix
	Country   string       // upper case ISO code; "" when unknown
	Registry  string       // lower case RIR name; "" when unknown
	Allocated string       // YYYY-MM-DD; "" when Cymru has no date
	ASName    string       // AS description; "" when unknown
}

// bulkAnswer is a parsed bulk whois response.
type bulkAnswer struct {
	found    map[netip.Addr]Answer     // routed addresses
	notFound map[netip.Addr]bool       // NA rows
	lineErrs map[netip.Addr]*LineError // Error lines naming a sent address
	garbage  int                       // lines that were none of the above
}

// Layout of a bulk request: "begin" is line 1, "verbose" line 2, so the
// first address is line 3. Error lines refer to these numbers.
const firstAddrLine = 3

// maxAnswerLine bounds one answer line: the longest real row is well under
// 300 bytes, so more means a broken or hostile server.
const maxAnswerLine = 4096

// bulkRequest returns the bytes of one bulk query for addrs.
func bulkRequest(addrs []netip.Addr) []byte {
	b := make([]byte, 0, 16+len(addrs)*16)
	b = append(b, "begin\nverbose\n"...)
	for _, a := range addrs {
		b = a.AppendTo(b)
		b = append(b, '\n')
	}
	return append(b, "end\n"...)
}

// parseBulk reads a bulk whois answer to addrs until EOF. Rows are matched
// to the sent addresses by the parsed IP column, never by position or
// spelling, so reordered rows and respelled IPv6 are handled; duplicate
// rows keep the longest prefix. It returns what it parsed together with
// ErrTruncated when the answer ends inside a line or before the banner
// that starts every answer (a server closing at once), or the read error.
func parseBulk(r io.Reader, addrs []netip.Addr) (bulkAnswer, error) {
	sent := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		sent[a] = true
	}
	ans := bulkAnswer{found: map[netip.Addr]Answer{}, notFound: map[netip.Addr]bool{}, lineErrs: map[netip.Addr]*LineError{}}
	br := bufio.NewReaderSize(r, maxAnswerLine)
	banner := false
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return ans, fmt.Errorf("line longer than %d bytes: %w", maxAnswerLine, ErrMalformed)
		case errors.Is(err, io.EOF):
			if len(line) > 0 || !banner {
				return ans, ErrTruncated
			}
			return ans, nil
		case err != nil:
			// A reset or a deadline in the middle of the answer.
			return ans, fmt.Errorf("%w: %w", ErrTruncated, err)
		}
		text := strings.TrimSpace(string(line))
		banner = banner || strings.HasPrefix(text, "Bulk mode")
		ans.add(text, addrs, sent)
	}
}

// add classifies one answer line.
func (ans *bulkAnswer) add(line string, addrs []netip.Addr, sent map[netip.Addr]bool) {
	switch {
	case line == "" || strings.HasPrefix(line, "Bulk mode"):
		return
	case strings.HasPrefix(line, "Error:"):
		if n, ok := errorLine(line); ok && n-firstAddrLine >= 0 && n-firstAddrLine < len(addrs) {
			ans.lineErrs[addrs[n-firstAddrLine]] = &LineError{Line: n, Message: line}
			return
		}
		ans.garbage++
		return
	}
	f := splitFields(line)
	if len(f) < 7 {
		ans.garbage++
		return
	}
	if f[0] == "AS" { // the column header
		return
	}
	a, err := netip.ParseAddr(f[1])
	if err != nil || !sent[a.Unmap()] {
		ans.garbage++
		return
	}
	a = a.Unmap()
	if f[0] == "NA" {
		ans.notFound[a] = true
		return
	}
	got, err := parseRoute(f[0], f[2], f[3], f[4], f[5])
	if err != nil {
		ans.garbage++
		return
	}
	got.ASName = naToEmpty(strings.Join(f[6:], "|"))
	if prev, dup := ans.found[a]; dup && prev.Prefix.Bits() >= got.Prefix.Bits() {
		return
	}
	ans.found[a] = got
}

// errorLine reads N from "Error: no ASN or IP match on line N."
func errorLine(line string) (int, bool) {
	i := strings.LastIndex(line, "line ")
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimRight(line[i+len("line "):], ". "))
	return n, err == nil
}

// splitFields splits a "|"-separated line and trims every field.
func splitFields(line string) []string {
	f := strings.Split(line, "|")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f
}

func naToEmpty(s string) string {
	s = strings.TrimSpace(s)
	if s == "NA" {
		return ""
	}
	return s
}

// parseRoute builds an Answer from the fields shared by bulk rows and
// origin TXT records.
func parseRoute(asns, prefix, cc, registry, allocated string) (Answer, error) {
	var a Answer
	for f := range strings.FieldsSeq(asns) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n <= 0 || n > 1<<32-1 {
			return Answer{}, fmt.Errorf("asn %q: %w", f, ErrMalformed)
		}
		a.ASNs = append(a.ASNs, n)
	}
	if len(a.ASNs) == 0 {
		return Answer{}, fmt.Errorf("no asn: %w", ErrMalformed)
	}
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return Answer{}, fmt.Errorf("prefix %q: %w", prefix, ErrMalformed)
	}
	a.Prefix = p.Masked()
	a.Country = strings.ToUpper(naToEmpty(cc))
	a.Registry = strings.ToLower(naToEmpty(registry))
	if a.Registry == "other" {
		a.Registry = ""
	}
	a.Allocated = naToEmpty(allocated)
	return a, nil
}

// parseOrigin reads the TXT records of an origin or origin6 answer:
// "ASN[ ASN…] | prefix | CC | registry | allocated", one record per
// matching prefix. The longest prefix wins.
func parseOrigin(txts []string) (Answer, error) {
	var best Answer
	found := false
	for _, t := range txts {
		f := splitFields(t)
		if len(f) < 5 {
			return Answer{}, fmt.Errorf("origin record %q: %w", t, ErrMalformed)
		}
		a, err := parseRoute(f[0], f[1], f[2], f[3], f[4])
		if err != nil {
			return Answer{}, fmt.Errorf("origin record: %w", err)
		}
		if !found || a.Prefix.Bits() > best.Prefix.Bits() {
			best, found = a, true
		}
	}
	if !found {
		return Answer{}, ErrNotFound
	}
	return best, nil
}

// parseASName reads an AS<n>.asn.cymru.com answer: "ASN | CC | registry |
// allocated | AS description". The description may itself contain "|".
func parseASName(txts []string) (string, error) {
	if len(txts) == 0 {
		return "", ErrNotFound
	}
	f := splitFields(txts[0])
	if len(f) < 5 {
		return "", fmt.Errorf("as record %q: %w", txts[0], ErrMalformed)
	}
	return naToEmpty(strings.Join(f[4:], "|")), nil
}
