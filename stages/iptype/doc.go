// Package iptype provides the iptype stage: it classifies every valid
// address as bogon, tor, vpn, cloud, hosting, residential or unknown, with
// the provider where known (aws, gcp, azure, digitalocean, …), the evidence
// it came from and a confidence, and stores it as
// enrichment.ip_classification with upstream's keys (ip_type, provider,
// confidence, source, classified_at). The inventory sink derives the
// ip_types column from it and the snapshots sink snapshot_ip_type.
//
// Evidence, all local; the stage never downloads anything:
//
//   - tor_exits: the TOR bulk exit list, one address per line;
//   - aws_ranges, gcp_ranges, azure_ranges: the providers' published range
//     files in their native formats (ip-ranges.json, cloud.json, Service
//     Tags JSON);
//   - cidr_lists: any number of CIDR lists, each with a label (the
//     provider) and the type its prefixes have;
//   - anonymous_ip_db, isp_db: MaxMind GeoIP2 Anonymous-IP and ISP
//     databases, when present;
//   - without any of those, the AS organisation name already in the record
//     (record ASN, else the maxmind or cymru answer), matched against cloud,
//     hosting and residential-ISP keywords as upstream's heuristic did.
//
// Precedence: when several pieces of evidence match, the type ranked first
// wins: bogon > vpn > tor > cloud > hosting > residential > unknown (after
// upstream's VPN > TOR > PROXY > DATACENTER > RESIDENTIAL; public proxies
// count as vpn). Between two matches of the same type the higher confidence
// wins: range files 0.95, the Anonymous-IP database 0.9, ISP names 0.7, AS
// names 0.6 (cloud and hosting) or 0.5 (residential).
//
// Invariants the stage keeps:
//
//   - Rejected and unvalidated records pass untouched. Bogons (marked by
//     validate) are classified bogon with confidence 1 and source
//     "validate", without consulting any evidence.
//   - An address with no evidence at all is "unknown" when some provider
//     answered for it; when nothing answered it is skipped (reason "no
//     evidence"), so a run that learned nothing leaves the address stale.
//   - Missing or malformed files never fail a run: each is warned about once
//     per file version and its evidence is left out; malformed entries inside
//     a file are counted, warned about and skipped. A replacement that does
//     not parse keeps the loaded version.
//   - Files are checked for replacement (inode, modification time, size) at
//     batch boundaries, at most every reload_check, and parsed once per
//     version into sorted, merged address ranges searched by binary search;
//     a lookup never scans a list.
//   - Process is safe for concurrent use; batches use the evidence loaded
//     when they started.
package iptype
