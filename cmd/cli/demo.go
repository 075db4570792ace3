package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
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
			geoDir, err := os.MkdirTemp("", "cowrie-enrich-demo-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(geoDir)
			svc, err := simulate.Start(geoDir, simulate.Options{CymruLatency: 50 * time.Millisecond})
			if err != nil {
				return err
			}
			defer svc.Close()
			fmt.Fprintf(a.stdout, "demo: simulated providers on loopback: Team Cymru whois %s and DNS %s, GreyNoise %s, GeoLite2-shaped files in %s\n",
				svc.WhoisAddr, svc.DNSAddr, svc.GreyNoiseURL, geoDir)
			req.target = "demo"
			req.sets = append(req.sets, svc.Sets()...)
			if _, err := a.execute(cmd.Context(), req); err != nil {
				return err
			}
			return a.demoReport(cmd.Context(), req.db, t.DSN, svc)
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

// demoReport prints what the run left in the inventory and what the
// simulated providers were asked.
func (a *app) demoReport(ctx context.Context, url, path string, svc *simulate.Services) error {
	db, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	var ips, bogons, scanners, filled, snapshots, sessions int64
	if err := db.QueryRow(ctx, `SELECT count(*), coalesce(sum(is_bogon), 0), coalesce(sum(is_scanner), 0) FROM ip_inventory`, nil, &ips, &bogons, &scanners); err != nil {
		return err
	}
	if err := db.QueryRow(ctx, `SELECT count(*), count(source_ip), count(enrichment_at) FROM session_summaries`, nil, &sessions, &filled, &snapshots); err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "\nInventory: %d addresses (%d bogons, %d known scanners). Of %d sessions, %d now name their address and %d carry a snapshot of it.\n",
		ips, bogons, scanners, sessions, filled, snapshots)
	tables := []struct {
		header string
		query  string
	}{
		{"TOP COUNTRIES\tADDRESSES\tSESSIONS", `SELECT geo_country, count(*), sum(session_count) FROM ip_inventory WHERE NOT is_bogon
GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT 5`},
		{"TOP ASNS\tORGANISATION\tADDRESSES\tSESSIONS", `SELECT 'AS' || asn_number, coalesce(organization_name, '?'), unique_ip_count, total_session_count
FROM asn_inventory ORDER BY total_session_count DESC, asn_number LIMIT 5`},
		{"TOP ATTACKERS\tCOUNTRY\tASN\tSESSIONS\tGREYNOISE", `SELECT ip_address, geo_country, coalesce('AS' || current_asn, '-'), session_count,
coalesce(json_extract(enrichment, '$.greynoise.classification'), '-') FROM ip_inventory WHERE NOT is_bogon
ORDER BY session_count DESC, ip_address LIMIT 5`},
		{"GREYNOISE CLASSIFICATION\tADDRESSES", `SELECT json_extract(enrichment, '$.greynoise.classification'), count(*) FROM ip_inventory
WHERE json_extract(enrichment, '$.greynoise') IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1`},
		{"ANSWERED BY\tADDRESSES", `SELECT 'maxmind', count(*) FROM ip_inventory WHERE json_extract(enrichment, '$.maxmind') IS NOT NULL
UNION ALL SELECT 'cymru', count(*) FROM ip_inventory WHERE json_extract(enrichment, '$.cymru') IS NOT NULL
UNION ALL SELECT 'greynoise', count(*) FROM ip_inventory WHERE json_extract(enrichment, '$.greynoise') IS NOT NULL`},
		{"BOGONS (stored, never sent to a provider)\tADDRESSES", `SELECT json_extract(enrichment, '$.validation.reason'), count(*) FROM ip_inventory
WHERE is_bogon GROUP BY 1 ORDER BY 2 DESC, 1`},
		{"ERRORS (dead letters)\tINPUTS", `SELECT reason, count(*) FROM cowrie_enrich_dead_letters GROUP BY 1 ORDER BY 2 DESC, 1`},
	}
	for _, t := range tables {
		fmt.Fprintln(w, "\n"+t.header)
		if err := printRows(ctx, db, w, t.query, strings.Count(t.header, "\t")+1); err != nil {
			return err
		}
	}
	ws := svc.Whois.Stats()
	fmt.Fprintf(w, "\nThe providers were simulated on loopback: %d bulk whois connection(s) to \"Team Cymru\", %d request(s) to \"GreyNoise\", GeoLite2-shaped files built for this run.\n",
		ws.Connections, len(svc.GreyNoise.Requests()))
	fmt.Fprintf(w, "Explore the result: sqlite3 %s 'SELECT ip_address, enrichment FROM ip_inventory LIMIT 3'\n", path)
	return w.Flush()
}

// printRows writes every row of q, which has n (at most 5) columns, as
// tab-separated text.
func printRows(ctx context.Context, db *store.DB, w io.Writer, q string, n int) error {
	return db.Query(ctx, q, nil, func(scan func(...any) error) error {
		var cols [5]sql.NullString
		ptrs := []any{&cols[0], &cols[1], &cols[2], &cols[3], &cols[4]}
		if err := scan(ptrs[:n]...); err != nil {
			return err
		}
		vals := make([]string, n)
		for i := range vals {
			vals[i] = cols[i].String
			if !cols[i].Valid {
				vals[i] = "-"
			}
		}
		fmt.Fprintln(w, strings.Join(vals, "\t"))
		return nil
	})
}
