// Command cowrie-enrich keeps a Cowrie honeypot's IP and ASN inventory
// enriched. All logic lives in package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the run drains; a second one kills at once
	// (committed work is safe either way).
	context.AfterFunc(ctx, stop)
	code := cli.Main(ctx, cli.DefaultRegistry(), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
