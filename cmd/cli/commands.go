package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cowrie-enrich/cowrie-enrich/migrations"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/status"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

func (a *app) validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate <name|file.yaml>...",
		Short: "Check pipeline configs strictly, without touching the network or a database",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, target := range args {
				plan, err := a.plan(target, nil)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(a.stdout, "ok %s (%s)\n", target, describe(plan))
			}
			if len(errs) > 0 {
				return usageError{errors.Join(errs...)}
			}
			return nil
		},
	}
}

// describe renders a plan as "source → stage → … → sink (+ side sinks)".
func describe(p *pipeline.Plan) string {
	parts := []string{p.Source.ID}
	for _, s := range p.Stages {
		parts = append(parts, s.ID)
	}
	parts = append(parts, p.Sink.ID)
	s := strings.Join(parts, " → ")
	for _, side := range p.SideSinks {
		s += " + " + side.ID
	}
	return s
}

func (a *app) stagesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stages",
		Short: "List every registered source, stage and sink",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KIND\tTYPE\tSUMMARY")
			for _, s := range a.reg.Specs() {
				fmt.Fprintf(w, "%s\t%s\t%s\n", s.Kind, s.Name, s.Summary)
			}
			return w.Flush()
		},
	}
}

func (a *app) migrateCmd() *cobra.Command {
	var dbURL string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the schema (also done before every run)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dbURL == "" {
				dbURL = store.DefaultURL
				if v, ok := a.getenv(envDB); ok && v != "" {
					dbURL = v
				}
			}
			db, err := store.Open(cmd.Context(), dbURL)
			if err != nil {
				return err
			}
			defer db.Close()
			applied, err := migrations.Apply(cmd.Context(), db)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintf(a.stdout, "%s: schema is current (version %d)\n", db, migrations.Latest())
				return nil
			}
			fmt.Fprintf(a.stdout, "%s: applied %s (now version %d)\n", db, strings.Join(applied, ", "), migrations.Latest())
			return nil
		},
	}
	cmd.Flags().StringVar(&dbURL, "db", "", "database URL (default: $COWRIE_ENRICH_DB, $COWRIEPROC_DB_URL, then "+store.DefaultURL+")")
	return cmd
}

func (a *app) statusCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the latest status snapshot of every pipeline phase",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			d := status.DefaultDir(dir)
			agg, err := status.Read(d)
			if err != nil {
				return fmt.Errorf("read status in %s: %w", d, err)
			}
			if len(agg.PhaseNames()) == 0 {
				fmt.Fprintf(a.stdout, "no status in %s yet: run a pipeline first, or pass --status-dir\n", d)
				return nil
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PHASE\tSTATE\tPROCESSED\tTOTAL\tERRORS\tIPS/S\tUPDATED\tRUN")
			for _, name := range agg.PhaseNames() {
				s := agg.Phases[name]
				m := s.Metrics
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%.1f\t%s\t%s\n", s.Phase, m.State, m.IPsProcessed, m.IPsTotal, m.IPErrors, m.IPsPerSecond, s.LastUpdated, s.IngestID)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "status-dir", "", "directory of status snapshots")
	return cmd
}
