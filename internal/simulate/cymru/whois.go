package cymru

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Etiquette limits the whois fake checks (reference/protocols.md §1.3).
const (
	// MaxBulkIPs is the most addresses a well-behaved client sends in one
	// query; Cymru publishes no cap, so this is our own policy.
	MaxBulkIPs = 1000
	// idleTimeout bounds how long the fake waits for a client's next line.
	idleTimeout = 10 * time.Second
	// maxLine bounds one request line.
	maxLine = 4096
)

// WhoisOptions shape the fake's behaviour. The zero value is a
// well-behaved server answering from Sample.
type WhoisOptions struct {
	// Table answers lookups; nil means Sample().
	Table *Table
	// Latency is added before each answer is written.
	Latency time.Duration
	// DropAfter, when positive, makes the server write that many rows, then
	// half of the next one, and reset the connection.
	DropAfter int
	// CloseImmediately makes the server close each connection as soon as
	// the request is read, without a byte of answer.
	CloseImmediately bool
	// Empty writes the banner and nothing else, as if no address had
	// been sent.
	Empty bool
	// ErrorLines answers every address with an "Error: no ASN or IP match
	// on line N." line instead of a row.
	ErrorLines bool
	// Garbage lines are written after the banner, among the rows.
	Garbage []string
	// Duplicate writes every row twice.
	Duplicate bool
	// Reverse writes the rows in the reverse of the request order.
	Reverse bool
	// RespellIPv6 echoes IPv6 addresses fully expanded
	// (2001:4860:0000:…) instead of the canonical form the client sent.
	RespellIPv6 bool
	// OmitNames leaves the AS Name column empty, so clients must look
	// names up elsewhere.
	OmitNames bool
	// NoHeader leaves out the column header line.
	NoHeader bool
	// Now stamps the banner; nil means time.Now.
	Now func() time.Time
	// Addr is the loopback host:port to listen on; empty picks a free port.
	Addr string
}

// Query is one request the whois fake received.
type Query struct {
	Raw     string   // the request bytes as received
	Options []string // option words (verbose, noheader, …), lower case
	IPs     []string // address lines, as sent
	Bulk    bool     // began with "begin" and ended with "end"
}

// WhoisStats is what the whois fake saw.
type WhoisStats struct {
	Connections    int
	PeakConcurrent int
	Queries        []Query
	// Violations lists breaches of Cymru's etiquette: more than MaxBulkIPs
	// addresses in a query, a query outside bulk mode, or several
	// connections carrying one address each.
	Violations []string
}

// Whois is a running bulk whois fake.
type Whois struct {
	opts WhoisOptions
	ln   net.Listener
	done chan struct{}
	wg   sync.WaitGroup

	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	open        int
	stats       WhoisStats
	singleConns int
	closeOnce   sync.Once
}

// StartWhois starts a whois fake on opts.Addr (default: a free 127.0.0.1
// port).
// The caller owns it and must Close it (t.Cleanup(srv.Close) in tests).
func StartWhois(opts WhoisOptions) (*Whois, error) {
	if opts.Table == nil {
		opts.Table = Sample()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("whois fake: listen: %w", err)
	}
	w := &Whois{opts: opts, ln: ln, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	w.wg.Add(1)
	go w.serve()
	return w, nil
}

// Addr returns the host:port the fake listens on.
func (w *Whois) Addr() string { return w.ln.Addr().String() }

// Stats returns a copy of what the fake saw so far.
func (w *Whois) Stats() WhoisStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.Queries = slices.Clone(s.Queries)
	s.Violations = slices.Clone(s.Violations)
	return s
}

// Close stops the fake, closes open connections and waits for its
// goroutines. It is safe to call more than once.
func (w *Whois) Close() error {
	w.closeOnce.Do(func() {
		close(w.done)
		_ = w.ln.Close()
		w.mu.Lock()
		for c := range w.conns {
			_ = c.Close()
		}
		w.mu.Unlock()
	})
	w.wg.Wait()
	return nil
}

func (w *Whois) serve() {
	defer w.wg.Done()
	for {
		c, err := w.ln.Accept()
		if err != nil {
			return // closed
		}
		w.mu.Lock()
		select {
		case <-w.done:
			w.mu.Unlock()
			_ = c.Close()
			return
		default:
		}
		w.conns[c] = struct{}{}
		w.open++
		w.stats.Connections++
		w.stats.PeakConcurrent = max(w.stats.PeakConcurrent, w.open)
		w.mu.Unlock()
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.handle(c)
			// Count the connection closed before closing it: a client
			// sees EOF only after that, so it cannot open its next
			// connection while this one still counts.
			w.mu.Lock()
			delete(w.conns, c)
			w.open--
			w.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// handle reads one request up to "end" (or EOF) and answers it.
func (w *Whois) handle(c net.Conn) {
	q, ok := readQuery(c)
	w.record(q)
	if !ok || w.opts.CloseImmediately {
		return
	}
	if w.opts.Latency > 0 {
		t := time.NewTimer(w.opts.Latency)
		select {
		case <-t.C:
		case <-w.done:
			t.Stop()
			return
		}
	}
	bw := bufio.NewWriter(c)
	defer bw.Flush()
	fmt.Fprintf(bw, "Bulk mode; whois.cymru.com [%s]\n", w.opts.Now().UTC().Format("2006-01-02 15:04:05 -0700"))
	if !w.opts.NoHeader && slices.Contains(q.Options, "verbose") {
		fmt.Fprintf(bw, "%-7s | %-16s | %-19s | CC | Registry | Allocated  | AS Name\n", "AS", "IP", "BGP Prefix")
	}
	for _, g := range w.opts.Garbage {
		fmt.Fprintf(bw, "%s\n", g)
	}
	if w.opts.Empty {
		return
	}
	rows := w.rows(q)
	if w.opts.Reverse {
		slices.Reverse(rows)
	}
	for i, row := range rows {
		if w.opts.DropAfter > 0 && i == w.opts.DropAfter {
			_, _ = bw.WriteString(row[:len(row)/2])
			_ = bw.Flush()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // reset rather than a clean close
			}
			return
		}
		_, _ = bw.WriteString(row + "\n")
		if w.opts.Duplicate {
			_, _ = bw.WriteString(row + "\n")
		}
	}
}

// readQuery reads a bulk request up to "end" (or EOF), or the single line
// of a query outside bulk mode. ok is false when the client went away or
// sent nothing usable.
func readQuery(c net.Conn) (q Query, ok bool) {
	var raw strings.Builder
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	first := true
	for {
		_ = c.SetReadDeadline(time.Now().Add(idleTimeout))
		if !sc.Scan() {
			q.Raw = raw.String()
			return q, len(q.IPs) > 0
		}
		raw.WriteString(sc.Text() + "\n")
		line := strings.TrimSpace(sc.Text())
		word := strings.ToLower(line)
		switch {
		case first && word == "begin":
			q.Bulk = true
		case first:
			// Single-query mode: one line, answered at once.
			q.Raw, q.IPs = raw.String(), []string{line}
			return q, true
		case word == "end":
			q.Raw = raw.String()
			return q, true
		case optionWords[word]:
			q.Options = append(q.Options, word)
		default:
			q.IPs = append(q.IPs, line)
		}
		first = false
	}
}

// optionWords are the bulk-mode option words of the server's help table.
var optionWords = map[string]bool{
	"prefix": true, "noprefix": true, "countrycode": true, "nocountrycode": true,
	"asname": true, "noasname": true, "registry": true, "noregistry": true,
	"allocdate": true, "noallocdate": true, "truncate": true, "notruncate": true,
	"verbose": true, "header": true, "noheader": true, "asnumber": true, "noasnumber": true,
}

// record stores q and checks it against the etiquette.
func (w *Whois) record(q Query) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.Queries = append(w.stats.Queries, q)
	switch n := len(q.IPs); {
	case n > MaxBulkIPs:
		w.stats.Violations = append(w.stats.Violations, fmt.Sprintf("query with %d addresses (more than %d)", n, MaxBulkIPs))
	case n == 1:
		w.singleConns++
		if w.singleConns == 2 {
			w.stats.Violations = append(w.stats.Violations, "several connections with one address each")
		}
	}
	if !q.Bulk && len(q.IPs) > 0 {
		w.stats.Violations = append(w.stats.Violations, "query outside bulk mode (no begin/end)")
	}
}

// rows answers every address line of q, in request order. Line numbers
// in Error lines count every line sent, "begin" being line 1.
func (w *Whois) rows(q Query) []string {
	out := make([]string, 0, len(q.IPs))
	lineNo := 1 + len(q.Options)
	if q.Bulk {
		lineNo++ // begin
	}
	for _, s := range q.IPs {
		a, err := netip.ParseAddr(s)
		if err != nil || w.opts.ErrorLines {
			out = append(out, fmt.Sprintf("Error: no ASN or IP match on line %d.", lineNo))
			lineNo++
			continue
		}
		lineNo++
		ip := s
		if w.opts.RespellIPv6 && a.Is6() && !a.Is4In6() {
			ip = a.StringExpanded()
		}
		r, ok := w.opts.Table.Lookup(a)
		if !ok {
			out = append(out, fmt.Sprintf("%-7s | %-16s | %-19s | %-2s | %-8s | %-10s | %s", "NA", ip, "NA", "", "other", "", "NA"))
			continue
		}
		name := r.ASName
		if w.opts.OmitNames {
			name = ""
		}
		out = append(out, fmt.Sprintf("%-7s | %-16s | %-19s | %-2s | %-8s | %-10s | %s", r.originField(), ip, r.Prefix, r.Country, r.Registry, r.Allocated, name))
	}
	return out
}
