package geolite

import "net/netip"

// Sample returns a small fixed data set: IPv4 and IPv6 networks in a few
// countries, some with geography and an ASN, some with geography only
// (city-level or country-level), some with an ASN only. The prefixes look
// routable, so the validate stage does not classify them as bogons; they
// are test data and never contacted. Addresses outside every prefix (for
// example 8.8.8.8 or 2001:4860::1) miss in both databases.
//
// Each call returns a fresh slice the caller may change.
func Sample() []Network {
	p := netip.MustParsePrefix
	return []Network{
		// City and ASN.
		{Prefix: p("81.2.69.0/24"), Continent: "EU", CountryISO: "GB", CountryName: "United Kingdom", City: "London",
			Latitude: 51.5142, Longitude: -0.0931, AccuracyRadius: 10, ASN: 20712, ASNOrg: "Andrews & Arnold Ltd"},
		{Prefix: p("89.160.20.112/28"), Continent: "EU", CountryISO: "SE", CountryName: "Sweden", City: "Linköping",
			Latitude: 58.4167, Longitude: 15.6167, AccuracyRadius: 76, ASN: 29518, ASNOrg: "Bredband2 AB"},
		{Prefix: p("216.160.83.56/29"), Continent: "NA", CountryISO: "US", CountryName: "United States", City: "Milton",
			Latitude: 47.2513, Longitude: -122.3149, AccuracyRadius: 22, ASN: 209, ASNOrg: "CenturyLink Communications, LLC"},
		{Prefix: p("2a02:c7f::/32"), Continent: "EU", CountryISO: "GB", CountryName: "United Kingdom", City: "London",
			Latitude: 51.5085, Longitude: -0.1257, AccuracyRadius: 100, ASN: 5607, ASNOrg: "Sky UK Limited"},
		{Prefix: p("2001:218::/32"), Continent: "AS", CountryISO: "JP", CountryName: "Japan", City: "Tokyo",
			Latitude: 35.6895, Longitude: 139.6917, AccuracyRadius: 50, ASN: 2914, ASNOrg: "NTT America, Inc."},

		// City only, no ASN.
		{Prefix: p("2.125.160.216/29"), Continent: "EU", CountryISO: "GB", CountryName: "United Kingdom", City: "Boxford",
			Latitude: 51.75, Longitude: -1.25, AccuracyRadius: 100},
		{Prefix: p("175.16.199.0/24"), Continent: "AS", CountryISO: "CN", CountryName: "China", City: "Changchun",
			Latitude: 43.88, Longitude: 125.3228, AccuracyRadius: 100},
		// Country level only: coordinates of the country, no city.
		{Prefix: p("67.43.156.0/24"), Continent: "AS", CountryISO: "BT", CountryName: "Bhutan",
			Latitude: 27.5, Longitude: 90.5, AccuracyRadius: 534},
		{Prefix: p("2a02:d300::/29"), Continent: "EU", CountryISO: "UA", CountryName: "Ukraine",
			Latitude: 49, Longitude: 32, AccuracyRadius: 100},

		// ASN only, no geography.
		{Prefix: p("1.128.0.0/11"), ASN: 1221, ASNOrg: "Telstra Pty Ltd"},
		{Prefix: p("2400:cb00::/32"), ASN: 13335, ASNOrg: "Cloudflare, Inc."},
		// An ASN without an organisation, as MaxMind's own data has some.
		{Prefix: p("12.81.92.0/22"), ASN: 7018},
	}
}
