// Package crashtest kills the real cowrie-enrich binary at chosen moments
// and compares what it leaves behind with an uninterrupted run, to prove
// DESIGN.md §6 "nothing is lost": a SIGKILL at any point followed by a
// rerun gives the same tables as one clean run.
//
// Kill points are timing-based (no hook in production code): the provider
// fakes are slowed (Cymru latency, small windows and batches) so a run lasts
// about a second and a kill after a random delay lands in start-up, the
// source, a stage or a sink commit. The phase a kill hit is read from the
// last debug line the process wrote (its source=, stage= or sink=
// attribute), so a test can report where its kills landed.
//
// Tables are compared row by row with every timestamp column and every
// cached_at and _meta key of the JSON documents left out: those record when
// something happened, not what was learnt.
package crashtest
