package iptype

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config holds the stage's options. Every file is optional; with none set
// only the AS-name heuristic runs.
type Config struct {
	// TorExits is the TOR bulk exit list (one address per line).
	TorExits string `koanf:"tor_exits"`
	// AWSRanges is AWS's ip-ranges.json.
	AWSRanges string `koanf:"aws_ranges"`
	// GCPRanges is Google Cloud's cloud.json.
	GCPRanges string `koanf:"gcp_ranges"`
	// AzureRanges is an Azure Service Tags JSON file (ServiceTags_Public).
	AzureRanges string `koanf:"azure_ranges"`
	// CIDRLists are further lists of addresses or prefixes, one a line.
	CIDRLists []CIDRList `koanf:"cidr_lists"`
	// AnonymousIPDB is a MaxMind GeoIP2 Anonymous-IP database.
	AnonymousIPDB string `koanf:"anonymous_ip_db"`
	// ISPDB is a MaxMind GeoIP2 ISP database.
	ISPDB string `koanf:"isp_db"`
	// ReloadCheck is how often, at most, the files are checked for a
	// replacement; 0 checks before every batch.
	ReloadCheck time.Duration `koanf:"reload_check"`
}

// CIDRList is one generic list: its prefixes have Type and belong to the
// provider Label.
type CIDRList struct {
	Path  string `koanf:"path"`
	Label string `koanf:"label"`
	// Type is one of tor, vpn, cloud, hosting or residential [hosting].
	Type string `koanf:"type"`
}

// DefaultConfig returns the defaults: no files (the AS-name heuristic
// only), checked for replacement once a minute.
func DefaultConfig() *Config {
	return &Config{ReloadCheck: time.Minute}
}

// listTypes are the types a cidr_lists entry may give its prefixes.
var listTypes = []string{TypeTor, TypeVPN, TypeCloud, TypeHosting, TypeResidential}

// Validate checks the options without touching the files: a missing file
// is not a config error, the stage goes on without it.
func (c *Config) Validate() error {
	if c.ReloadCheck < 0 {
		return fmt.Errorf("reload_check %s: %w", c.ReloadCheck, ErrReloadCheck)
	}
	for i, l := range c.CIDRLists {
		switch {
		case strings.TrimSpace(l.Path) == "":
			return fmt.Errorf("cidr_lists[%d]: path is empty: %w", i, ErrCIDRList)
		case strings.TrimSpace(l.Label) == "":
			return fmt.Errorf("cidr_lists[%d]: label is empty: %w", i, ErrCIDRList)
		case l.Type != "" && !slices.Contains(listTypes, l.Type):
			return fmt.Errorf("cidr_lists[%d]: type %q, want one of %s: %w", i, l.Type, strings.Join(listTypes, ", "), ErrCIDRList)
		}
	}
	return nil
}
