package inventory

import (
	"fmt"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// maxBatchSize bounds batch_size: a batch is one transaction and one set of
// statement parameters, so it must stay well below what either database
// handles comfortably in one go.
const maxBatchSize = 100000

const sampleYAML = `batch_size: 500
flush_interval: 1s
fill_session_ip: true
`

// Spec registers the sink under the name "inventory".
var Spec = pipeline.SinkSpec("inventory",
	"Upsert enriched IPs into ip_inventory and asn_inventory, one transaction per batch; refused rows become dead letters.",
	sampleYAML, DefaultConfig, newSink)

// Config holds the sink's options.
type Config struct {
	// BatchSize is the number of records written per transaction.
	BatchSize int `koanf:"batch_size"`
	// FlushInterval is how long a partial batch may wait before it is
	// written anyway.
	FlushInterval time.Duration `koanf:"flush_interval"`
	// FillSessionIP fills session_summaries.source_ip, where it is NULL, for
	// the sessions of the addresses written (upstream leaves it NULL until
	// the address is in ip_inventory).
	FillSessionIP bool `koanf:"fill_session_ip"`
	// FillSnapshots fills the empty snapshot columns of the sessions of the
	// addresses written, in the same transaction, so that a crash cannot
	// leave an enriched address with sessions lacking snapshots (a rerun
	// would not pick the address up again).
	FillSnapshots bool `koanf:"fill_snapshots"`
}

// DefaultConfig returns the default options.
func DefaultConfig() *Config {
	return &Config{BatchSize: 500, FlushInterval: time.Second, FillSessionIP: true, FillSnapshots: true}
}

// Validate checks the options without touching the database.
func (c *Config) Validate() error {
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		return fmt.Errorf("batch_size must be between 1 and %d, got %d", maxBatchSize, c.BatchSize)
	}
	if c.FlushInterval <= 0 {
		return fmt.Errorf("flush_interval must be positive, got %s", c.FlushInterval)
	}
	return nil
}
