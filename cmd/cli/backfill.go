package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cowrie-enrich/cowrie-enrich/sinks/snapshots"
	"github.com/cowrie-enrich/cowrie-enrich/sources/sessions"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// backfillConfig is the built-in config the backfill command runs.
const backfillConfig = "backfill-sessions"

func (a *app) backfillCmd() *cobra.Command {
	var (
		req          runRequest
		since, until string
		batchSize    int
		resume       bool
	)
	cmd := &cobra.Command{
		Use:   "backfill [--since T] [--until T]",
		Short: "Fill the snapshot columns of historical sessions (resumable)",
		Long: `Run the built-in backfill-sessions pipeline: the addresses of sessions lacking
snapshots that are not in ip_inventory yet are enriched first, then the
sessions whose first_event_at lies in [--since, --until) get snapshot_asn,
snapshot_country, snapshot_ip_type and enrichment_at from the inventory, in
chunks of --batch-size sessions. A snapshot already written is never
overwritten. T is RFC 3339 or YYYY-MM-DD (UTC). After a crash or Ctrl-C,
--resume continues after the last committed chunk. --dry-run counts what
would change and changes nothing.`,
		Example: `  cowrie-enrich backfill --db postgres://cowrie@localhost/cowrie
  cowrie-enrich backfill --since 2024-01-01 --until 2025-01-01 --resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := parseWindow(since, until)
			if err != nil {
				return err
			}
			if batchSize < 1 || batchSize > snapshots.MaxChunkSize {
				return usagef("--batch-size must be between 1 and %d", snapshots.MaxChunkSize)
			}
			if req.dryRun {
				return a.backfillDryRun(cmd, req, w)
			}
			req.target = backfillConfig
			req.sets = append(req.sets,
				"source.with.since="+strconv.Quote(since), "source.with.until="+strconv.Quote(until),
				"source.with.chunk_size="+strconv.Itoa(batchSize), "source.with.resume="+strconv.FormatBool(resume))
			req.dryRun = false
			_, err = a.execute(cmd.Context(), req)
			return err
		},
	}
	a.runFlags(cmd, &req)
	cmd.Flags().StringVar(&since, "since", "", "first session start to include (RFC 3339 or YYYY-MM-DD; default: all time)")
	cmd.Flags().StringVar(&until, "until", "", "session start to stop before, exclusive (RFC 3339 or YYYY-MM-DD; default: no limit)")
	cmd.Flags().IntVar(&batchSize, "batch-size", snapshots.DefaultChunkSize, "sessions per chunk (one UPDATE and one checkpoint per chunk)")
	cmd.Flags().BoolVar(&resume, "resume", false, "continue after the checkpoint of an interrupted backfill of the same window")
	cmd.Flags().BoolVar(&req.dryRun, "dry-run", false, "count the sessions that would change; change nothing")
	return cmd
}

func parseWindow(since, until string) (snapshots.Window, error) {
	var w snapshots.Window
	var err error
	if w.Since, err = sessions.ParseTime(since); err != nil {
		return w, usagef("--since: %w", err)
	}
	if w.Until, err = sessions.ParseTime(until); err != nil {
		return w, usagef("--until: %w", err)
	}
	if !w.Since.IsZero() && !w.Until.IsZero() && !w.Since.Before(w.Until) {
		return w, usagef("--since must be before --until")
	}
	return w, nil
}

// backfillDryRun reports what a backfill would change. It reads only: no
// migration, no run record, no checkpoint.
func (a *app) backfillDryRun(cmd *cobra.Command, req runRequest, w snapshots.Window) error {
	f, err := a.load(backfillConfig, nil)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	db, err := store.Open(ctx, a.databaseURL(req.db, f))
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := snapshots.Count(ctx, db, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "dry run on %s, window %s: %d sessions lack a snapshot; %d would get one from the inventory now, %d would wait for their address to be enriched first. Nothing was changed.\n",
		db.String(), describeWindow(w), p.Sessions, p.Ready, p.Sessions-p.Ready)
	return nil
}

func describeWindow(w snapshots.Window) string {
	b := func(s string, zero bool) string {
		if zero {
			return "*"
		}
		return s
	}
	return strings.Join([]string{"[", b(w.Since.Format("2006-01-02T15:04:05Z07:00"), w.Since.IsZero()), ", ",
		b(w.Until.Format("2006-01-02T15:04:05Z07:00"), w.Until.IsZero()), ")"}, "")
}
