package sinks

import (
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/inventory"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/jsonl"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/redisstream"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/snapshots"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/status"
)

// Builtin returns the specs of every built-in sink, main and side.
func Builtin() []pipeline.Spec {
	return []pipeline.Spec{inventory.Spec, jsonl.Spec, snapshots.Spec, status.Spec, redisstream.Spec}
}
