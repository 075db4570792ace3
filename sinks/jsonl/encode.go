package jsonl

import (
	"strconv"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/jsonw"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/inventory"
)

// appendRecord appends the line of r, with meta as its provenance, and a
// newline to b, byte for byte as encoding/json writes newLine's line
// struct but straight from the record, without reflection or the
// intermediate map: on a list of a million addresses the generic encoder
// cost more than reading, validating and looking the addresses up
// together. TestEncoderMatchesEncodingJSON holds the two together.
//
// ok is false when the line must be written by encoding/json instead (a
// value that does not encode, such as a NaN coordinate, or a year past
// 9999), which then reports the same error as before; b is then returned
// unchanged.
func appendRecord(b []byte, r *pipeline.Record, meta *pipeline.Meta) (_ []byte, ok bool) {
	start := len(b)
	b = append(b, `{"ip":`...)
	if r.Addr.IsValid() && r.Addr.Zone() == "" {
		b = append(b, '"')
		b = r.Addr.AppendTo(b) // digits, dots and colons: nothing to escape
		b = append(b, '"')
	} else {
		b = jsonw.AppendString(b, r.IP())
	}
	b = append(b, `,"raw":`...)
	b = jsonw.AppendString(b, r.Raw)
	if r.Sessions > 0 {
		b = append(b, `,"first_seen":`...)
		if b, ok = appendTime(b, r.FirstSeen); !ok {
			return b[:start], false
		}
		b = append(b, `,"last_seen":`...)
		if b, ok = appendTime(b, r.LastSeen); !ok {
			return b[:start], false
		}
		b = append(b, `,"session_count":`...)
		b = strconv.AppendInt(b, r.Sessions, 10)
	} else {
		b = append(b, `,"first_seen":null,"last_seen":null,"session_count":0`...)
	}
	b = append(b, `,"asn":`...)
	b = appendASN(b, r.ASN)
	if r.Rejected() {
		b = append(b, `,"enrichment":null,"rejected":{"stage":`...)
		b = jsonw.AppendString(b, r.ErrStage)
		b = append(b, `,"reason":`...)
		b = jsonw.AppendString(b, r.Err.Error())
		return append(b, '}', '}', '\n'), true
	}
	b = append(b, `,"enrichment":`...)
	b, err := inventory.AppendDocument(b, r, meta)
	if err != nil {
		return b[:start], false
	}
	return append(b, '}', '\n'), true
}

func appendTime(b []byte, t time.Time) ([]byte, bool) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false // time.Time.MarshalJSON refuses it
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

func appendASN(b []byte, a *pipeline.ASN) []byte {
	if a == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"number":`...)
	b = strconv.AppendInt(b, a.Number, 10)
	for _, f := range [...]struct{ key, v string }{{`,"org":`, a.Org}, {`,"country":`, a.Country}, {`,"registry":`, a.Registry}} {
		if f.v != "" {
			b = append(b, f.key...)
			b = jsonw.AppendString(b, f.v)
		}
	}
	return append(b, '}')
}
