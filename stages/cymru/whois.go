package cymru

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// bulkClient sends bulk whois queries: one TCP connection per query, never
// more than its semaphore allows at once, each bounded by a total deadline.
type bulkClient struct {
	addr    string
	timeout time.Duration
	dialer  net.Dialer
	sem     chan struct{}
	shared  *semaphore // nil: no limit across processes
}

func newBulkClient(addr string, timeout time.Duration, concurrency int) *bulkClient {
	return &bulkClient{addr: addr, timeout: timeout, sem: make(chan struct{}, concurrency)}
}

// lookup asks about addrs over one connection and parses the answer. A
// partial answer is returned along with the error that cut it short.
func (c *bulkClient) lookup(ctx context.Context, addrs []netip.Addr) (bulkAnswer, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return bulkAnswer{}, ctx.Err()
	}
	defer func() { <-c.sem }()
	if c.shared != nil {
		release, err := c.shared.acquire(ctx)
		if err != nil {
			return bulkAnswer{}, err
		}
		defer release()
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return bulkAnswer{}, fmt.Errorf("dial whois %s: %w", c.addr, err)
	}
	defer conn.Close()
	// The deadline covers the whole exchange; cancelling ctx (shutdown)
	// unblocks a pending read or write at once.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := conn.Write(bulkRequest(addrs)); err != nil {
		return bulkAnswer{}, fmt.Errorf("send whois query: %w", err)
	}
	ans, err := parseBulk(conn, addrs)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		return ans, fmt.Errorf("whois answer: %w", err)
	}
	return ans, nil
}
