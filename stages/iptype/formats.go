package iptype

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// parsed is what a parser found in one file: the prefixes it could use and
// how many entries it could not.
type parsed struct {
	prefixes []netip.Prefix
	bad      int
}

// add parses one entry, an address or a prefix, counting it when it is
// not one.
func (p *parsed) add(s string) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		if pr, err := netip.ParsePrefix(s); err == nil && pr.Addr().Zone() == "" {
			p.prefixes = append(p.prefixes, pr)
			return
		}
	} else if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
		return
	}
	p.bad++
}

// done returns p, or ErrNoPrefixes when nothing usable was found.
func (p *parsed) done() (parsed, error) {
	if len(p.prefixes) == 0 {
		return *p, fmt.Errorf("%d bad entries: %w", p.bad, ErrNoPrefixes)
	}
	return *p, nil
}

// parseLines reads one address or prefix per line, as the TOR bulk exit
// list and generic CIDR lists are written. Blank lines and '#' comments,
// whole-line or trailing, are ignored.
func parseLines(r io.Reader) (parsed, error) {
	var p parsed
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if strings.TrimSpace(line) == "" {
			continue
		}
		p.add(line)
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("read: %w", err)
	}
	return p.done()
}

// parseAWS reads AWS's ip-ranges.json: prefixes[].ip_prefix and
// ipv6_prefixes[].ipv6_prefix.
func parseAWS(r io.Reader) (parsed, error) {
	var doc struct {
		Prefixes []struct {
			IPPrefix string `json:"ip_prefix"`
		} `json:"prefixes"`
		IPv6Prefixes []struct {
			IPv6Prefix string `json:"ipv6_prefix"`
		} `json:"ipv6_prefixes"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return parsed{}, fmt.Errorf("decode ip-ranges.json: %w", err)
	}
	var p parsed
	for _, e := range doc.Prefixes {
		p.add(e.IPPrefix)
	}
	for _, e := range doc.IPv6Prefixes {
		p.add(e.IPv6Prefix)
	}
	return p.done()
}

// parseGCP reads Google's cloud.json: prefixes[] with ipv4Prefix or
// ipv6Prefix.
func parseGCP(r io.Reader) (parsed, error) {
	var doc struct {
		Prefixes []struct {
			IPv4Prefix string `json:"ipv4Prefix"`
			IPv6Prefix string `json:"ipv6Prefix"`
		} `json:"prefixes"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return parsed{}, fmt.Errorf("decode cloud.json: %w", err)
	}
	var p parsed
	for _, e := range doc.Prefixes {
		p.add(e.IPv4Prefix + e.IPv6Prefix)
	}
	return p.done()
}

// parseAzure reads an Azure Service Tags file:
// values[].properties.addressPrefixes[]. Every tag counts; the overlap of
// regional tags with their parents merges when the ranges are built.
func parseAzure(r io.Reader) (parsed, error) {
	var doc struct {
		Values []struct {
			Properties struct {
				AddressPrefixes []string `json:"addressPrefixes"`
			} `json:"properties"`
		} `json:"values"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return parsed{}, fmt.Errorf("decode service tags: %w", err)
	}
	var p parsed
	for _, v := range doc.Values {
		for _, s := range v.Properties.AddressPrefixes {
			p.add(s)
		}
	}
	return p.done()
}
