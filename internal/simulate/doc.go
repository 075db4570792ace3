// Package simulate runs a small simulated internet for the demo, tests and
// benchmarks: a fixed set of networks (Networks) and, on loopback, the
// providers that describe them — Team Cymru's bulk whois and DNS, the
// GreyNoise API, and a GeoLite2 City/ASN pair written to disk — all
// speaking the real wire formats (subpackages cymru, greynoise, geolite).
// Nothing here contacts the internet, and every organisation is invented.
package simulate
