package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cowrie-enrich/cowrie-enrich/configs"
	"github.com/cowrie-enrich/cowrie-enrich/migrations"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/jsonl"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/status"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// runRequest is one pipeline run as the command line asked for it.
type runRequest struct {
	target    string // config name or file
	sets      []string
	db        string
	dryRun    bool
	statusDir string
	verbose   bool
	progress  string // auto, always or never
	metrics   string // address of the metrics and live status server; "" = none

	// Set by commands that measure a run (bench), never by flags.
	observer pipeline.Observer // sees every batch, besides the metrics server
	storeOpt store.Options
}

func (a *app) runCmd() *cobra.Command {
	var req runRequest
	cmd := &cobra.Command{
		Use:   "run <name|file.yaml>",
		Short: "Run a pipeline config (a built-in name or a YAML file)",
		Long: "Run a pipeline config. Built-in configs: " + strings.Join(configs.Names(), ", ") + `.
Anything with a '/' or ending in .yaml is read from disk.`,
		Example: `  cowrie-enrich run refresh-ips --db postgres://cowrie@localhost/cowrie
  cowrie-enrich run my.yaml --set stages.dedupe.with.capacity=100000 --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.target = args[0]
			_, err := a.execute(cmd.Context(), req)
			return err
		},
	}
	a.runFlags(cmd, &req)
	cmd.Flags().BoolVar(&req.dryRun, "dry-run", false, "write what would be stored as JSON lines on stdout; change nothing")
	return cmd
}

// runFlags adds the flags shared by run, refresh and demo.
func (a *app) runFlags(cmd *cobra.Command, req *runRequest) {
	cmd.Flags().StringVar(&req.db, "db", "", "database URL: postgres://…, sqlite://file.db (default: the config's database, $COWRIE_ENRICH_DB, $COWRIEPROC_DB_URL, then "+store.DefaultURL+")")
	cmd.Flags().StringVar(&req.statusDir, "status-dir", "", "directory for status snapshots (default: /mnt/dshield/data/logs/status if it exists, else ~/.cache/cowrie-enrich/status)")
	cmd.Flags().BoolVarP(&req.verbose, "verbose", "v", false, "log each batch (debug level)")
	cmd.Flags().StringArrayVar(&req.sets, "set", nil, "override one config key, path=value (stages are addressed by id), repeatable")
	cmd.Flags().StringVar(&req.progress, "progress", "auto", "progress display: auto (a bar on a terminal, log lines otherwise), always (the bar), never")
	cmd.Flags().StringVar(&req.metrics, "metrics-addr", "", "serve Prometheus /metrics and a live status page on this address, e.g. 127.0.0.1:9464")
}

func (a *app) refreshCmd() *cobra.Command {
	var (
		req                           runRequest
		ips, commitInterval, sessions int
		files                         int
		cacheDir                      string
	)
	cmd := &cobra.Command{
		Use:   "refresh --ips N",
		Short: "Enrich stale IPs (cowrieprocessor's `cowrie-enrich refresh --ips N`)",
		Long: `Run the built-in refresh-ips pipeline with the flags of cowrieprocessor's
refresh command: --ips 0 enriches every stale IP, --ips N the N most recently
active ones. Session and file enrichment are not part of cowrie-enrich, so
--sessions and --files accept only 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("ips") || ips < 0 {
				return usagef("refresh needs --ips N: 0 enriches every stale IP, N the N most recently active")
			}
			if sessions != 0 || files != 0 {
				return usagef("--sessions and --files only accept 0: session and file enrichment (DShield, URLHaus, SPUR, VirusTotal) are not part of cowrie-enrich")
			}
			req.target = "refresh-ips"
			req.sets = append(req.sets, "source.with.limit="+strconv.Itoa(ips))
			if cmd.Flags().Changed("commit-interval") {
				if commitInterval < 1 {
					return usagef("--commit-interval must be at least 1")
				}
				req.sets = append(req.sets, "sink.with.batch_size="+strconv.Itoa(commitInterval))
			}
			if cacheDir != "" {
				has, err := a.hasStage(req.target, "cache")
				if err != nil {
					return err
				}
				if !has {
					return usagef("--cache-dir: the %s config has no cache stage", req.target)
				}
				req.sets = append(req.sets, "stages.cache.with.file_dir="+cacheDir)
			}
			_, err := a.execute(cmd.Context(), req)
			return err
		},
	}
	a.runFlags(cmd, &req)
	cmd.Flags().IntVar(&ips, "ips", -1, "IPs to enrich: 0 = all stale IPs, N = the N most recently active")
	cmd.Flags().IntVar(&commitInterval, "commit-interval", 100, "IPs per database commit (the inventory sink's batch_size; default: the config's 500)")
	cmd.Flags().IntVar(&sessions, "sessions", 0, "accepted for compatibility; must be 0")
	cmd.Flags().IntVar(&files, "files", 0, "accepted for compatibility; must be 0")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "directory of the file cache tier (cowrieprocessor's layout is reused)")
	return cmd
}

// hasStage reports whether the named config has a stage with id.
func (a *app) hasStage(target, id string) (bool, error) {
	f, err := a.load(target, nil)
	if err != nil {
		return false, err
	}
	for _, s := range f.Stages {
		if s.Key() == id {
			return true, nil
		}
	}
	return false, nil
}

// readConfig returns a config's bytes and the path to name in messages.
func readConfig(target string) ([]byte, string, error) {
	if strings.ContainsRune(target, '/') || strings.HasSuffix(target, ".yaml") || strings.HasSuffix(target, ".yml") {
		b, err := os.ReadFile(target)
		if err != nil {
			return nil, target, usagef("read config: %w", err)
		}
		return b, target, nil
	}
	b, ok := configs.Lookup(target)
	if !ok {
		return nil, target, usagef("no built-in config named %q (built in: %s); pass a path to use your own file", target, strings.Join(configs.Names(), ", "))
	}
	return b, "configs/" + target + ".yaml", nil
}

func (a *app) load(target string, sets []string) (*pipeline.File, error) {
	data, path, err := readConfig(target)
	if err != nil {
		return nil, err
	}
	return pipeline.Load(path, data, pipeline.LoadOptions{Sets: sets, Getenv: a.getenv})
}

func (a *app) plan(target string, sets []string) (*pipeline.Plan, error) {
	f, err := a.load(target, sets)
	if err != nil {
		return nil, err
	}
	return pipeline.Resolve(a.reg, f)
}

// databaseURL picks the database: --db, the config's database:, the
// environment, then the embedded default.
func (a *app) databaseURL(flag string, f *pipeline.File) string {
	for _, u := range []string{flag, f.Database} {
		if strings.TrimSpace(u) != "" {
			return u
		}
	}
	if v, ok := a.getenv(envDB); ok && v != "" {
		return v
	}
	return store.DefaultURL
}

// execute runs one pipeline and reports it. It returns the summary for
// callers that print more (demo).
func (a *app) execute(ctx context.Context, req runRequest) (pipeline.Summary, error) {
	plan, err := a.plan(req.target, req.sets)
	if err != nil {
		return pipeline.Summary{}, err
	}
	name := plan.File.Name
	log := a.newLogger(req.verbose)
	jsonOut := a.writeJSONToStdout(plan)
	db, err := a.openStore(ctx, req, plan.File, log)
	if err != nil {
		return pipeline.Summary{}, err
	}
	if db != nil {
		defer db.Close()
	}
	recorded := db != nil && !req.dryRun

	now := time.Now()
	env := pipeline.Env{
		RunID:     newRunID(now),
		Logger:    log,
		Store:     db,
		HTTP:      &http.Client{Timeout: time.Minute},
		Now:       time.Now,
		Progress:  pipeline.NewProgress(now),
		StatusDir: req.statusDir,
	}
	p, err := pipeline.Build(ctx, plan, env)
	if err != nil {
		return pipeline.Summary{}, err
	}
	defer p.Close()
	if req.dryRun {
		denv := env
		denv.ID, denv.Pipeline, denv.Logger = "dry-run", name, log.With("sink", "dry-run")
		s, err := jsonl.New(denv, &jsonl.Config{Stdout: a.stdout})
		if err != nil {
			return pipeline.Summary{}, err
		}
		p.ReplaceSink("dry-run", s)
	}

	opts := pipeline.RunOptions{Observer: req.observer}
	var mon *monitor
	if req.metrics != "" {
		mon = newMonitor(plan, env.RunID, env.Progress)
		stopServer, err := mon.serve(ctx, req.metrics, log)
		if err != nil {
			return pipeline.Summary{}, usageError{err}
		}
		defer stopServer()
		opts.Observer = observers{mon, opts.Observer}
	}

	stop, err := a.startProgress(req.progress, log, env.Progress)
	if err != nil {
		return pipeline.Summary{}, err
	}
	log.Info("run started", "pipeline", name, "run_id", env.RunID, "db", storeName(db), "dry_run", req.dryRun)
	if recorded {
		if err := db.StartRun(ctx, env.RunID, name, now); err != nil {
			return pipeline.Summary{}, fmt.Errorf("record run start: %w", err)
		}
	}
	sum, runErr := p.Run(ctx, opts)
	stop()
	if mon != nil {
		mon.finish(sum.State)
	}
	if recorded {
		errText := ""
		if runErr != nil && !errors.Is(runErr, pipeline.ErrInterrupted) {
			errText = runErr.Error()
		}
		if err := db.FinishRun(context.WithoutCancel(ctx), env.RunID, string(sum.State), sum.Committed, sum.Rejected, errText, time.Now()); err != nil {
			log.Warn("could not record the end of the run", "err", err)
		}
	}
	log.Info("run finished", "pipeline", name, "run_id", env.RunID, "state", sum.State,
		"committed", sum.Committed, "dead_letters", sum.Rejected, "duplicates", sum.Dropped, "elapsed", sum.Elapsed.Round(time.Millisecond))

	out := a.stdout
	if req.dryRun || jsonOut {
		out = a.stderr // stdout carries the JSON lines
	}
	statusFiles := ""
	if hasStatusSink(plan) {
		statusFiles = "; status files in " + status.DefaultDir(req.statusDir)
	}
	fmt.Fprintf(out, "%s %s: %d IPs committed (%d dead letters, %d duplicates) in %s%s\n",
		name, sum.State, sum.Committed, sum.Rejected, sum.Dropped, sum.Elapsed.Round(time.Millisecond), statusFiles)

	var pe *pipeline.PanicError
	if errors.As(runErr, &pe) {
		log.Debug("panic stack", "stack", string(pe.Stack))
	}
	switch sum.State {
	case pipeline.RunInterrupted:
		return sum, exitError{ExitInterrupted, errors.New("interrupted; everything taken from the source was committed, rerun to continue")}
	case pipeline.RunFailed:
		return sum, exitError{ExitFailed, runErr}
	}
	return sum, nil
}

// observers hands each batch event to every observer set.
type observers []pipeline.Observer

func (o observers) Observe(e pipeline.BatchEvent) {
	for _, x := range o {
		if x != nil {
			x.Observe(e)
		}
	}
}

// noStore is the database: value of a pipeline that stores nothing (a list
// enriched into JSON lines): the run opens no database, so it needs none
// and leaves none behind. --db still gives such a run a database.
const noStore = "none"

// openStore opens and, unless this is a dry run, migrates the run's
// database; it returns nil when the config asks for none.
func (a *app) openStore(ctx context.Context, req runRequest, f *pipeline.File, log *slog.Logger) (*store.DB, error) {
	url := a.databaseURL(req.db, f)
	if strings.TrimSpace(url) == noStore {
		return nil, nil
	}
	db, err := store.OpenWith(ctx, url, req.storeOpt)
	if err != nil {
		return nil, err
	}
	if req.dryRun {
		return db, nil
	}
	applied, err := migrations.Apply(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("schema migrated", "db", db.String(), "steps", strings.Join(applied, ", "))
	}
	return db, nil
}

// storeName names the run's database in logs.
func storeName(db *store.DB) string {
	if db == nil {
		return noStore
	}
	return db.String()
}

// writeJSONToStdout points every jsonl sink of plan that writes to standard
// output at the command's stdout, and reports whether there is one: its
// lines then own stdout, and the run's summary goes to stderr.
func (a *app) writeJSONToStdout(plan *pipeline.Plan) bool {
	found := false
	for _, part := range append([]pipeline.Part{plan.Sink}, plan.SideSinks...) {
		if c, ok := part.Config.(*jsonl.Config); ok && (c.Path == "" || c.Path == "-") {
			c.Stdout, found = a.stdout, true
		}
	}
	return found
}

// hasStatusSink reports whether plan writes status files.
func hasStatusSink(plan *pipeline.Plan) bool {
	for _, part := range plan.SideSinks {
		if _, ok := part.Config.(*status.Config); ok {
			return true
		}
	}
	return false
}

// newRunID returns a sortable, unique run id: UTC time plus 4 random bytes.
func newRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
