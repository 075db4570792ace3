package cli_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// familyConfig is the options of the custom stage: the enrichment key it
// writes.
type familyConfig struct {
	Key string `koanf:"key"`
}

func (c *familyConfig) Validate() error {
	if c.Key == "" {
		return fmt.Errorf("key must not be empty")
	}
	return nil
}

// familyStage is a user-defined stage: it records each address's family
// under enrichment.<key>.
type familyStage struct{ key string }

func (s *familyStage) Process(_ context.Context, b pipeline.Batch) (pipeline.Batch, error) {
	for _, r := range b {
		if !r.Eligible() {
			continue // rejected records and bogons are left alone
		}
		family := "ipv6"
		if r.Addr.Is4() {
			family = "ipv4"
		}
		r.Set(s.key, map[string]string{"family": family})
	}
	return b, nil
}

// Asks tells the cache that the stage asks no provider (pipeline.Asker).
func (s *familyStage) Asks() []string { return nil }

// familySpec registers the stage under the type name "family".
var familySpec = pipeline.StageSpec("family", "Tag each address with its IP family", "key: family\n",
	func() *familyConfig { return &familyConfig{Key: "family"} },
	func(_ pipeline.Env, c *familyConfig) (pipeline.Stage, error) { return &familyStage{key: c.Key}, nil })

// Example_customStage composes a custom stage with the built-ins and runs
// it through the same command line as the cowrie-enrich binary: a custom
// main.go does exactly this with os.Args and signal handling.
func Example_customStage() {
	dir, _ := os.MkdirTemp("", "custom-stage")
	defer os.RemoveAll(dir)

	reg := cli.DefaultRegistry()
	if err := reg.Add(familySpec); err != nil {
		fmt.Println(err)
		return
	}

	ips := filepath.Join(dir, "ips.txt")
	os.WriteFile(ips, []byte("81.2.69.160\n2a02:c7f::1\n10.1.2.3\nnot-an-ip\n"), 0o644)
	config := filepath.Join(dir, "tag.yaml")
	os.WriteFile(config, []byte(`version: 1
name: tag-families
source: {type: ip_list, with: {path: `+ips+`}}
stages:
  - type: validate
  - type: family
    with: {key: family}
sink: {type: inventory}
`), 0o644)

	db := "sqlite://" + filepath.Join(dir, "inventory.db")
	code := cli.Main(context.Background(), reg, []string{"run", config, "--db", db, "--status-dir", dir}, io.Discard, io.Discard)
	fmt.Println("exit code:", code)

	s, _ := store.Open(context.Background(), db)
	defer s.Close()
	s.Query(context.Background(), `SELECT ip_address, coalesce(json_extract(enrichment, '$.family.family'), '-'), is_bogon
FROM ip_inventory ORDER BY ip_address`, nil, func(scan func(...any) error) error {
		var ip, family string
		var bogon bool
		scan(&ip, &family, &bogon)
		fmt.Println(ip, family, "bogon:", bogon)
		return nil
	})
	// Output:
	// exit code: 0
	// 10.1.2.3 - bogon: true
	// 2a02:c7f::1 ipv6 bogon: false
	// 81.2.69.160 ipv4 bogon: false
}
