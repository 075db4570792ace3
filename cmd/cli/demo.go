package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	"github.com/cowrie-enrich/cowrie-enrich/migrations"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

const demoURL = "sqlite://cowrie-enrich-demo.db"

// demoMarker is a table that marks a database as the demo's own, so demo
// only ever deletes a file it created.
const demoMarker = "cowrie_enrich_demo"

func (a *app) demoCmd() *cobra.Command {
	var (
		req      runRequest
		sessions int
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the enrichment pipeline on a synthetic honeypot database (offline)",
		Long: `Create a SQLite database of synthetic Cowrie sessions (IPv4 and IPv6
attackers, repeat offenders, bogons and garbage), run the demo pipeline on it
and print what landed in the inventory. Nothing leaves this machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.db == "" {
				req.db = demoURL
			}
			if sessions < 1 {
				return usagef("--sessions must be at least 1")
			}
			t, err := store.Parse(req.db)
			if err != nil {
				return usageError{err}
			}
			if t.Dialect != store.SQLite {
				return usagef("demo writes synthetic sessions, so it only runs on a SQLite file (--db sqlite://demo.db)")
			}
			if err := a.seedDemo(cmd.Context(), req.db, t.DSN, sessions); err != nil {
				return err
			}
			req.target = "demo"
			if _, err := a.execute(cmd.Context(), req); err != nil {
				return err
			}
			return a.demoReport(cmd.Context(), req.db, t.DSN)
		},
	}
	a.runFlags(cmd, &req)
	cmd.Flags().IntVar(&sessions, "sessions", 3000, "synthetic sessions to generate")
	return cmd
}

// seedDemo recreates the demo database with fresh synthetic sessions.
func (a *app) seedDemo(ctx context.Context, url, path string, n int) error {
	if _, err := os.Stat(path); err == nil {
		if err := removeDemo(ctx, url, path); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	db, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := migrations.Apply(ctx, db); err != nil {
		return err
	}
	if err := db.Exec(ctx, "CREATE TABLE "+demoMarker+" (created_at TEXT NOT NULL)"); err != nil {
		return fmt.Errorf("mark demo database: %w", err)
	}
	if err := db.Exec(ctx, "INSERT INTO "+demoMarker+" (created_at) VALUES (?)", time.Now()); err != nil {
		return fmt.Errorf("mark demo database: %w", err)
	}
	if err := demodata.Insert(ctx, db, demodata.Generate(1, n, time.Now())); err != nil {
		return fmt.Errorf("seed demo sessions: %w", err)
	}
	fmt.Fprintf(a.stdout, "demo: wrote %d synthetic sessions to %s\n", n, path)
	return nil
}

// removeDemo deletes a previous demo database, and refuses any other file.
func removeDemo(ctx context.Context, url, path string) error {
	db, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	var n int
	err = db.QueryRow(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", []any{demoMarker}, &n)
	db.Close()
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	if n == 0 {
		return usagef("%s exists and was not created by demo; pass --db sqlite://another.db", path)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// demoReport prints what the run left in the inventory.
func (a *app) demoReport(ctx context.Context, url, path string) error {
	db, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	var ips, bogons, filled, sessions int64
	if err := db.QueryRow(ctx, `SELECT count(*), coalesce(sum(is_bogon), 0) FROM ip_inventory`, nil, &ips, &bogons); err != nil {
		return err
	}
	if err := db.QueryRow(ctx, `SELECT count(*), count(source_ip) FROM session_summaries`, nil, &sessions, &filled); err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "\nInventory: %d addresses (%d bogons); %d of %d sessions now name their address.\n\n", ips, bogons, filled, sessions)
	fmt.Fprintln(w, "TOP ATTACKERS\tSESSIONS\tFIRST SEEN\tLAST SEEN")
	err = db.Query(ctx, `SELECT ip_address, session_count, first_seen, last_seen FROM ip_inventory WHERE NOT is_bogon
ORDER BY session_count DESC, ip_address LIMIT 5`, nil, func(scan func(...any) error) error {
		var ip, first, last string
		var n int64
		if err := scan(&ip, &n, &first, &last); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", ip, n, first[:19], last[:19])
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nBOGONS (stored, never sent to a provider)\tADDRESSES")
	err = db.Query(ctx, `SELECT json_extract(enrichment, '$.validation.reason'), count(*) FROM ip_inventory WHERE is_bogon GROUP BY 1 ORDER BY 2 DESC, 1`, nil,
		func(scan func(...any) error) error {
			var reason string
			var n int64
			if err := scan(&reason, &n); err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\t%d\n", reason, n)
			return nil
		})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nREJECTED INPUT (dead letters)\tREASON")
	err = db.Query(ctx, `SELECT ip_raw, reason FROM cowrie_enrich_dead_letters ORDER BY ip_raw`, nil, func(scan func(...any) error) error {
		var raw, reason string
		if err := scan(&raw, &reason); err != nil {
			return err
		}
		fmt.Fprintf(w, "%q\t%s\n", raw, reason)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nThis pipeline validates addresses and derives session statistics; it asks no provider.")
	fmt.Fprintf(w, "Explore it: sqlite3 %s 'SELECT ip_address, enrichment FROM ip_inventory LIMIT 3'\n", path)
	return w.Flush()
}
