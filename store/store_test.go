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
	for _, tt := range []struct {
		name, url, want string
	}{
		{"jit off by default", url, "off"},
		{"the URL's own jit wins", url + map[bool]string{true: "&", false: "?"}[strings.Contains(url, "?")] + "jit=on", "on"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(context.Background(), tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var jit, tz string
			if err := db.QueryRow(context.Background(), "SELECT current_setting('jit'), current_setting('TimeZone')", nil, &jit, &tz); err != nil {
				t.Fatal(err)
			}
			if jit != tt.want || tz != "UTC" {
				t.Fatalf("jit = %s, TimeZone = %s; want jit %s and UTC", jit, tz, tt.want)
			}
		})
	}
}
