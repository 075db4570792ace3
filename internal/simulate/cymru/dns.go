package cymru

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// The zones the DNS fake serves.
const (
	ZoneOrigin  = "origin.asn.cymru.com."
	ZoneOrigin6 = "origin6.asn.cymru.com."
	ZoneASN     = "asn.cymru.com."
)

// ttl is the fake's answer TTL; Cymru's data changes every four hours.
const ttl = 14400

// DNSOptions shape the DNS fake's behaviour. The zero value is a
// well-behaved server answering from Sample.
type DNSOptions struct {
	// Table answers lookups; nil means Sample().
	Table *Table
	// ServFail answers every query with SERVFAIL.
	ServFail bool
	// Silent never answers, so clients time out.
	Silent bool
	// Truncate sets the TC bit with no answers over UDP; TCP answers in
	// full, as a real server does.
	Truncate bool
	// Addr is the loopback host:port to listen on (UDP and TCP); empty
	// picks a free port.
	Addr string
}

// DNS is a running DNS fake for Cymru's zones, on UDP and TCP at the same
// port.
type DNS struct {
	opts     DNSOptions
	udp, tcp *dns.Server
	addr     string

	mu        sync.Mutex
	names     []string
	closeOnce sync.Once
	closeErr  error
}

// StartDNS starts the DNS fake on opts.Addr (default: a free 127.0.0.1
// port). The caller owns it and must Close it.
func StartDNS(opts DNSOptions) (*DNS, error) {
	if opts.Table == nil {
		opts.Table = Sample()
	}
	d := &DNS{opts: opts}
	pc, ln, err := listenPair(opts.Addr)
	if err != nil {
		return nil, err
	}
	d.addr = pc.LocalAddr().String()
	mux := dns.NewServeMux()
	mux.HandleFunc(".", d.serve)
	d.udp = &dns.Server{PacketConn: pc, Handler: mux}
	d.tcp = &dns.Server{Listener: ln, Handler: mux}
	started := make(chan struct{}, 2)
	d.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	d.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	errs := make(chan error, 2)
	go func() { errs <- d.udp.ActivateAndServe() }()
	go func() { errs <- d.tcp.ActivateAndServe() }()
	for range 2 {
		select {
		case <-started:
		case err := <-errs:
			_ = d.Close()
			return nil, fmt.Errorf("dns fake: serve: %w", err)
		}
	}
	return d, nil
}

// listenPair opens UDP and TCP on the same loopback port, so a client that
// retries a truncated answer over TCP reaches the same fake. The UDP port
// is chosen first; if its TCP twin is taken, it tries again.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	if addr != "" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns fake: listen udp: %w", err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			_ = pc.Close()
			return nil, nil, fmt.Errorf("dns fake: listen tcp: %w", err)
		}
		return pc, ln, nil
	}
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("dns fake: listen udp: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		lastErr = err
		_ = pc.Close()
	}
	return nil, nil, fmt.Errorf("dns fake: listen tcp: %w", lastErr)
}

// Addr returns the host:port the fake listens on (UDP and TCP).
func (d *DNS) Addr() string { return d.addr }

// Names returns the query names received so far, in order, lower case and
// fully qualified.
func (d *DNS) Names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.names)
}

// Close shuts both servers down and waits for them. It is safe to call more
// than once.
func (d *DNS) Close() error {
	d.closeOnce.Do(func() {
		for _, s := range []*dns.Server{d.udp, d.tcp} {
			if s == nil {
				continue
			}
			if err := s.Shutdown(); err != nil && d.closeErr == nil {
				d.closeErr = fmt.Errorf("dns fake: shutdown: %w", err)
			}
		}
	})
	return d.closeErr
}

func (d *DNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		_ = w.WriteMsg(new(dns.Msg).SetRcode(req, dns.RcodeFormatError))
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	d.mu.Lock()
	d.names = append(d.names, name)
	d.mu.Unlock()
	if d.opts.Silent {
		return
	}
	m := new(dns.Msg).SetReply(req)
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	switch {
	case d.opts.ServFail:
		m.Rcode = dns.RcodeServerFailure
	case d.opts.Truncate && udp:
		m.Truncated = true
	case q.Qtype != dns.TypeTXT:
		// NOERROR without answers, as for any name without that type.
	default:
		txts, ok := d.answer(name)
		if !ok {
			m.Rcode = dns.RcodeNameError
			break
		}
		for _, t := range txts {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
				Txt: splitTXT(t),
			})
		}
	}
	_ = w.WriteMsg(m)
}

// answer returns the TXT strings for name, or false for NXDOMAIN.
func (d *DNS) answer(name string) ([]string, bool) {
	switch {
	case strings.HasSuffix(name, "."+ZoneOrigin6):
		return d.origin(parseNibbles(strings.TrimSuffix(name, "."+ZoneOrigin6)))
	case strings.HasSuffix(name, "."+ZoneOrigin):
		return d.origin(parseOctets(strings.TrimSuffix(name, "."+ZoneOrigin)))
	case strings.HasSuffix(name, "."+ZoneASN) && strings.HasPrefix(name, "as"):
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "as"), "."+ZoneASN), 10, 32)
		if err != nil {
			return nil, false
		}
		r, ok := d.opts.Table.AS(uint32(n))
		if !ok {
			return nil, false
		}
		return []string{fmt.Sprintf("%d | %s | %s | %s | %s", n, r.Country, r.Registry, r.Allocated, r.ASName)}, true
	}
	return nil, false
}

func (d *DNS) origin(a netip.Addr, ok bool) ([]string, bool) {
	if !ok {
		return nil, false
	}
	routes := d.opts.Table.Matches(a)
	if len(routes) == 0 {
		return nil, false
	}
	out := make([]string, len(routes))
	// Least specific first, so a client that takes the first record
	// instead of the longest prefix gets it wrong.
	for i, r := range slices.Backward(routes) {
		out[len(routes)-1-i] = fmt.Sprintf("%s | %s | %s | %s | %s", r.originField(), r.Prefix, r.Country, r.Registry, r.Allocated)
	}
	return out, true
}

// parseOctets reads reversed IPv4 octets; fewer than four name a prefix,
// whose missing octets are zero, as Cymru allows.
func parseOctets(s string) (netip.Addr, bool) {
	labels := strings.Split(s, ".")
	if len(labels) == 0 || len(labels) > 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, l := range labels {
		n, err := strconv.ParseUint(l, 10, 8)
		if err != nil {
			return netip.Addr{}, false
		}
		b[len(labels)-1-i] = byte(n)
	}
	return netip.AddrFrom4(b), true
}

// parseNibbles reads reversed IPv6 nibbles; fewer than 32 name a prefix.
func parseNibbles(s string) (netip.Addr, bool) {
	labels := strings.Split(s, ".")
	if len(labels) == 0 || len(labels) > 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i, l := range labels {
		n, err := strconv.ParseUint(l, 16, 4)
		if err != nil || len(l) != 1 {
			return netip.Addr{}, false
		}
		pos := len(labels) - 1 - i // nibble index from the left
		if pos%2 == 0 {
			b[pos/2] |= byte(n) << 4
		} else {
			b[pos/2] |= byte(n)
		}
	}
	return netip.AddrFrom16(b), true
}

// splitTXT splits s into character-strings of at most 255 bytes.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
