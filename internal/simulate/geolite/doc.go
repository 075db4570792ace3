// Package geolite builds small databases shaped like MaxMind's GeoLite2
// City, Country and ASN files, with github.com/maxmind/mmdbwriter, for
// tests, the demo and benchmarks. Nothing here downloads or ships MaxMind's
// own data: the networks are made up (Sample), and the files are written at
// run time, so the repository holds no .mmdb binaries.
//
// Invariants:
//
//   - The record layout and value types are those of MaxMind's own files
//     (country.iso_code, city.names.en, location.accuracy_radius as Uint16,
//     autonomous_system_number as Uint32, …), so readers that work here work
//     on real GeoLite2 downloads.
//   - The metadata build epoch is the one the caller gives (whole seconds),
//     so tests can tell an older build from a newer one.
//   - Reserved networks are accepted (IncludeReservedNetworks), so callers
//     may use documentation ranges as well.
//   - WriteFiles replaces existing files by writing a temporary file and
//     renaming it over the old one, the way geoipupdate does.
package geolite
