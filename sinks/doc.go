// Package sinks lists the built-in sinks; each lives in its own package
// below this one (inventory, status, jsonl).
package sinks
