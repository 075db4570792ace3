// Package maxmind provides the maxmind stage: it looks every eligible
// record up in local MaxMind GeoLite2/GeoIP2 databases (City or Country,
// and ASN) and stores enrichment.maxmind, setting the record's ASN from it.
//
// Invariants the stage keeps:
//
//   - Only eligible records (valid, not bogon, not rejected) are looked up;
//     the others pass untouched.
//   - A missing or unreadable database is not an error: the stage warns once,
//     naming the file and how to get it, and uses the other database; with
//     neither, every eligible record is skipped with a stable reason.
//   - A miss in both databases is a clean "not found" (Set with nil); the
//     network of a miss is never reported, since the library's prefix for
//     a miss is only the empty subtree the search stopped in.
//   - MaxMind's ASN wins: the record's ASN is set from every answer that
//     has one.
//   - An answer taken from a cache is kept only when it came from a
//     database build at least as new as the loaded one; otherwise, and for
//     cached "not found" answers, the address is looked up again (local
//     lookups are cheap).
//   - Databases replaced on disk (geoipupdate renames a new file over the
//     old one) are picked up without a restart: at batch boundaries, at most
//     every reload_check, the files are compared (inode, modification time,
//     size) with the loaded ones and a changed file is opened and swapped in
//     atomically. A reader is closed only once no batch uses it any more. A
//     replacement that does not open is warned about once and the old reader
//     stays.
//   - Lookups are safe from several goroutines at once, and the stage takes
//     up to concurrency batches at a time.
//   - Each opened file keeps the records it decoded (at most 32768, by
//     their offset in the file), so networks sharing a record (every
//     network of a city, of an AS) cost one decoding between them, and an
//     address inside the network of the batch's previous address costs no
//     tree search; answers are the same as searching and decoding every
//     time.
package maxmind
