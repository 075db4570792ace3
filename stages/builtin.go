package stages

import (
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/stages/cache"
	"github.com/cowrie-enrich/cowrie-enrich/stages/cymru"
	"github.com/cowrie-enrich/cowrie-enrich/stages/dedupe"
	"github.com/cowrie-enrich/cowrie-enrich/stages/greynoise"
	"github.com/cowrie-enrich/cowrie-enrich/stages/iptype"
	"github.com/cowrie-enrich/cowrie-enrich/stages/maxmind"
	"github.com/cowrie-enrich/cowrie-enrich/stages/validate"
)

// Builtin returns the specs of every built-in stage.
func Builtin() []pipeline.Spec {
	return []pipeline.Spec{validate.Spec, dedupe.Spec, cache.Spec, maxmind.Spec, cymru.Spec, greynoise.Spec, iptype.Spec}
}
