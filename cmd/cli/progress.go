package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// startProgress shows a run's progress until the returned stop is called:
// a bar redrawn on stderr when it is a terminal (or --progress always), a
// log line every 10 seconds otherwise, nothing with --progress never.
func (a *app) startProgress(mode string, log *slog.Logger, p *pipeline.Progress) (stop func(), err error) {
	bar := false
	switch mode {
	case "", "auto":
		bar = isTerminal(a.stderr)
	case "always":
		bar = true
	case "never":
		return func() {}, nil
	default:
		return nil, usagef("--progress must be auto, always or never, got %q", mode)
	}
	every, show := 10*time.Second, func() { log.Info("progress", progressArgs(p)...) }
	if bar {
		every = 250 * time.Millisecond
		show = func() { fmt.Fprint(a.stderr, "\r"+progressBar(p, time.Now())+"\x1b[K") }
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if bar {
					show()
					fmt.Fprintln(a.stderr)
				}
				return
			case <-t.C:
				show()
			}
		}
	}()
	return func() { close(done); <-finished }, nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	if l, ok := w.(*lockedWriter); ok {
		w = l.w
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// rate returns committed records per second and the time left, if known.
func rate(p *pipeline.Progress, now time.Time) (n, total int64, perSecond float64, eta time.Duration) {
	n, total = p.Committed(), p.Total()
	if s := now.Sub(p.Started).Seconds(); s > 0 {
		perSecond = float64(n) / s
	}
	eta = -1
	if total >= 0 && perSecond > 0 {
		eta = (time.Duration(float64(max(total-n, 0))/perSecond) * time.Second).Round(time.Second)
	}
	return n, total, perSecond, eta
}

func progressArgs(p *pipeline.Progress) []any {
	n, total, perSecond, eta := rate(p, time.Now())
	args := []any{"committed", n, "ips_per_second", strconv.FormatFloat(perSecond, 'f', 1, 64)}
	if total >= 0 {
		args = append(args, "total", total)
	}
	if eta >= 0 {
		args = append(args, "eta", eta)
	}
	for _, k := range counterNames(p) {
		v, _ := p.Value(k)
		args = append(args, k, v)
	}
	return args
}

// progressBar renders one line: bar, done/total, rate, ETA and the run's
// non-zero counters (provider hits, cache hits, rate-limit waits, …).
func progressBar(p *pipeline.Progress, now time.Time) string {
	const width = 24
	n, total, perSecond, eta := rate(p, now)
	var b strings.Builder
	if total > 0 {
		filled := int(float64(width) * float64(min(n, total)) / float64(total))
		fmt.Fprintf(&b, "[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), n, total)
	} else {
		fmt.Fprintf(&b, "%d", n)
	}
	fmt.Fprintf(&b, " IPs  %.0f/s", perSecond)
	if eta >= 0 {
		fmt.Fprintf(&b, "  ETA %s", eta)
	}
	for _, k := range counterNames(p) {
		if v, _ := p.Value(k); v != 0 {
			fmt.Fprintf(&b, "  %s %d", k, v)
		}
	}
	return b.String()
}

func counterNames(p *pipeline.Progress) []string {
	vals := p.Values()
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
