package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks"
	"github.com/cowrie-enrich/cowrie-enrich/sources"
	"github.com/cowrie-enrich/cowrie-enrich/stages"
)

// Exit codes (DESIGN.md §4).
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// DefaultRegistry returns a registry holding every built-in component. A
// custom build adds its own specs to it before calling Main.
func DefaultRegistry() *pipeline.Registry {
	var specs []pipeline.Spec
	specs = append(specs, sources.Builtin()...)
	specs = append(specs, stages.Builtin()...)
	specs = append(specs, sinks.Builtin()...)
	return pipeline.NewRegistry(specs...)
}

// usageError marks errors that exit with ExitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// app is what every command shares.
type app struct {
	reg    *pipeline.Registry
	stdout io.Writer
	stderr io.Writer
	getenv func(string) (string, bool)
}

// Main runs the cowrie-enrich command line with args (without the program
// name) and returns the process exit code. Cancelling ctx (the first
// SIGINT or SIGTERM) stops a run after a clean drain.
func Main(ctx context.Context, reg *pipeline.Registry, args []string, stdout, stderr io.Writer) int {
	// The logger and the progress bar both write to stderr from their own
	// goroutines; one lock keeps their lines whole.
	stderr = &lockedWriter{w: stderr}
	a := &app{reg: reg, stdout: stdout, stderr: stderr, getenv: lookupEnv}
	root := a.root()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "cowrie-enrich:", err)
	if ctx.Err() != nil {
		// Interrupted, possibly before a run started (while opening or
		// migrating the database): nothing was left half-written.
		return ExitInterrupted
	}
	var ee exitError
	var ue usageError
	var ce *pipeline.ConfigError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue), errors.As(err, &ce):
		return ExitUsage
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"),
		strings.HasPrefix(err.Error(), "unknown shorthand flag"), strings.Contains(err.Error(), "arg(s)"),
		strings.HasPrefix(err.Error(), "invalid argument"), strings.HasPrefix(err.Error(), "flag needs an argument"):
		// cobra's own usage errors
		return ExitUsage
	}
	return ExitFailed
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// lookupEnv resolves environment variables, letting the upstream
// COWRIEPROC_DB_URL stand in for an unset COWRIE_ENRICH_DB so scripts
// written for cowrieprocessor keep working.
func lookupEnv(name string) (string, bool) {
	v, ok := os.LookupEnv(name)
	if name == envDB && (!ok || v == "") {
		return os.LookupEnv(envUpstreamDB)
	}
	return v, ok
}

const (
	envDB         = "COWRIE_ENRICH_DB"
	envUpstreamDB = "COWRIEPROC_DB_URL"
)

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "cowrie-enrich",
		Short: "Keep a Cowrie honeypot's IP and ASN inventory enriched",
		Long: `cowrie-enrich enriches the IP and ASN inventory of a Cowrie honeypot database
(PostgreSQL or SQLite) with declarative YAML pipelines.

Start with "cowrie-enrich demo", then "cowrie-enrich refresh --ips 0 --db URL".`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(a.runCmd(), a.refreshCmd(), a.demoCmd(), a.validateCmd(), a.stagesCmd(), a.graphCmd(), a.simulateCmd(), a.migrateCmd(), a.statusCmd(), a.backfillCmd(), a.benchCmd())
	return root
}

// newLogger returns the run's logger: text on stderr, Info by default (start,
// stop, summary and periodic progress), Debug with --verbose.
func (a *app) newLogger(verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
}
