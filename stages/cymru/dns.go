package cymru

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// This file is the only one that knows miekg/dns: moving to another DNS
// library (codeberg.org/miekg/dns) means rewriting it alone.

// txtResolver looks up the TXT records of a name. It returns ErrNotFound
// for NXDOMAIN, a *RcodeError for other error codes, and the joined
// character-strings of each TXT record otherwise.
type txtResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// resolvConf is where the system resolver is configured.
const resolvConf = "/etc/resolv.conf"

// miekgResolver asks one DNS server over UDP, retrying truncated answers
// over TCP. Its server is read from resolv.conf on first use when not
// configured, so New touches no file and no network.
type miekgResolver struct {
	udp, tcp *dns.Client

	once      sync.Once
	server    string
	serverErr error
}

func newResolver(server string) *miekgResolver {
	r := &miekgResolver{udp: &dns.Client{Net: "udp"}, tcp: &dns.Client{Net: "tcp"}}
	if server != "" {
		r.once.Do(func() { r.server = server })
	}
	return r
}

// addr returns the server to ask.
func (r *miekgResolver) addr() (string, error) {
	r.once.Do(func() {
		cc, err := dns.ClientConfigFromFile(resolvConf)
		switch {
		case err != nil:
			r.serverErr = fmt.Errorf("read %s: %w", resolvConf, err)
		case len(cc.Servers) == 0:
			r.serverErr = fmt.Errorf("%s lists no nameserver", resolvConf)
		default:
			r.server = net.JoinHostPort(cc.Servers[0], cc.Port)
		}
	})
	return r.server, r.serverErr
}

// LookupTXT asks for the TXT records of name. ctx bounds the query.
func (r *miekgResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	server, err := r.addr()
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	m.RecursionDesired = true
	in, _, err := r.udp.ExchangeContext(ctx, m, server)
	if err == nil && in.Truncated {
		in, _, err = r.tcp.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("dns %s: %w", name, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, ErrNotFound
	default:
		return nil, &RcodeError{Name: name, Rcode: rcodeName(in.Rcode)}
	}
	if in.Truncated {
		return nil, &RcodeError{Name: name, Rcode: "truncated over tcp"}
	}
	var out []string
	for _, rr := range in.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}

func rcodeName(c int) string {
	if s, ok := dns.RcodeToString[c]; ok {
		return s
	}
	return "rcode " + strconv.Itoa(c)
}
