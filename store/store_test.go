package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

func TestPostgresSessionSettingsIntegration(t *testing.T) {
	url := testdb.PostgresURL(t)
	sep := map[bool]string{true: "&", false: "?"}[strings.Contains(url, "?")]
	for _, tt := range []struct {
		name, url, want, wantTemp string
		wantConns                 int32
	}{
		{"jit off, larger temp buffers and pool by default", url, "off", "64MB", 8},
		{"the URL's own settings win", url + sep + "jit=on&temp_buffers=16MB&pool_max_conns=3", "on", "16MB", 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(context.Background(), tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var jit, tz, temp string
			err = db.QueryRow(context.Background(), "SELECT current_setting('jit'), current_setting('TimeZone'), current_setting('temp_buffers')",
				nil, &jit, &tz, &temp)
			if err != nil {
				t.Fatal(err)
			}
			if jit != tt.want || tz != "UTC" || temp != tt.wantTemp {
				t.Fatalf("jit = %s, TimeZone = %s, temp_buffers = %s; want jit %s, UTC and %s", jit, tz, temp, tt.want, tt.wantTemp)
			}
			if got := db.Pool.Config().MaxConns; got < tt.wantConns || (strings.Contains(tt.url, "pool_max_conns") && got != tt.wantConns) {
				t.Errorf("pool of %d connections, want %d", got, tt.wantConns)
			}
		})
	}
}
