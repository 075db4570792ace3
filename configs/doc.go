// Package configs holds the named pipeline configs shipped in the binary
// (refresh-ips, demo, …). `cowrie-enrich run <name>` finds them here; any
// argument with a '/' or ending in .yaml is read from disk instead.
package configs
