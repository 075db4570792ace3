// Package validate provides the validate stage: it turns each record's raw
// address into its canonical form and classifies bogons, so that garbage and
// special-purpose addresses never reach a provider.
//
// Invariants the stage keeps:
//
//   - An accepted record has a valid Addr without a zone, IPv4-mapped IPv6
//     unmapped to IPv4, whose String() parses back to the same Addr.
//   - A rejected record has Err (wrapping ErrMalformed, with a short, stable
//     reason) and no Addr; the raw input is never echoed in the error.
//   - Every accepted record gets a Validation: bogons carry their category
//     in Reason, and Record.Eligible keeps them away from providers.
//   - One bad record never fails its batch: Process returns the batch it was
//     given, with every record still in it.
package validate
