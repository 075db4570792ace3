// Package sources lists the built-in sources; each lives in its own
// package below this one (staleips, iplist).
package sources
