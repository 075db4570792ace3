package sources

import (
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sources/iplist"
	"github.com/cowrie-enrich/cowrie-enrich/sources/redisstream"
	"github.com/cowrie-enrich/cowrie-enrich/sources/sessions"
	"github.com/cowrie-enrich/cowrie-enrich/sources/staleips"
)

// Builtin returns the specs of every built-in source.
func Builtin() []pipeline.Spec {
	return []pipeline.Spec{staleips.Spec, iplist.Spec, sessions.Spec, redisstream.Spec}
}
