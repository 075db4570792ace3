// Command cowrie-enrich keeps a Cowrie honeypot's IP and ASN inventory
// enriched. All logic lives in package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
)

// defaultMemoryLimit is the Go runtime's soft memory limit when
// GOMEMLIMIT is not set. A refresh keeps about 170 MiB live at the default
// batch size (5,000 rows, two batches prepared ahead); left to GOGC alone
// the collector let the heap grow to twice that, 270-290 MiB of RSS on a
// 10-million-session refresh. Under the limit it collects more often once
// the heap nears it instead (RSS about the limit plus 12 MiB); a
// configuration that keeps more live (a larger batch_size) needs a larger
// GOMEMLIMIT, or the collector spends up to half the CPU.
const defaultMemoryLimit = 240 << 20

func main() {
	limitMemory(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the run drains; a second one kills at once
	// (committed work is safe either way).
	context.AfterFunc(ctx, stop)
	code := cli.Main(ctx, cli.DefaultRegistry(), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// limitMemory sets defaultMemoryLimit unless GOMEMLIMIT sets one.
func limitMemory(getenv func(string) string) {
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}
