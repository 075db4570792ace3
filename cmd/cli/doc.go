// Package cli is the cowrie-enrich command line as a library: Main parses
// arguments and runs commands against a component Registry, so a custom
// build registers its own stages next to DefaultRegistry's and calls Main
// from a main.go of a few lines. Tests call Main directly.
//
// Exit codes: 0 done, 1 run failed, 2 usage or config error, 130
// interrupted after a clean drain.
package cli
