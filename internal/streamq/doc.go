// Package streamq holds what the redis_stream sink (producer) and source
// (workers) share: the entry format of a record on a Redis stream, the
// consumer group's creation and the Redis client options.
//
// Invariants:
//
//   - An entry carries the address exactly as the source found it and its
//     session statistics (first_seen, last_seen, sessions), so a worker
//     writes the same inventory row a single process would.
//   - Times travel as RFC 3339 with nanoseconds in UTC; a zero time (a
//     source that does not know) travels as an empty string.
//   - The group is created at id 0 by whichever side comes first, so no
//     entry added before the first worker started is skipped.
package streamq
