#!/bin/sh
# make-zone.sh - build the DNSSEC test zones and their trust anchor.
#
#   tests/unit/dnssec/make-zone.sh OUTDIR [TLSA-HEX]
#
# Writes into OUTDIR (created if missing):
#   dane.test.zone     the signed zone dane.test., as NSD serves it
#   plain.test.zone    the unsigned zone plain.test. (insecure: no anchor)
#   trust-anchor       the DS record of dane.test.'s key, the file
#                      Postern's dnssec_trust_anchor names
#   nsd.zones          the zone: clauses of an nsd.conf for the two
#
# The key (one ECDSA P-256 key with the SEP flag, signing everything) is
# made fresh each run; its files are removed once the zone is signed.
# The signatures are valid from 2026-01-01 to 2046-01-01, so committed
# output does not expire in CI. TLSA-HEX (64 hex digits: the SHA-256 of a
# certificate's public key, TLSA 3 1 1) is the TLSA record of
# mx.dane.test and mx.plain.test; tests that deliver over DANE pass the
# hash of their receiving server's certificate. Without it, a fixed value.
#
# bogus.dane.test. (and _25._tcp.bogus.dane.test.) is signed, then its
# records are changed in the signed file, so their signatures no longer
# verify: a validating resolver calls them bogus, NSD serves them anyway.
#
# The unit test's copy, tests/unit/dnssec/, was made with
#   tests/unit/dnssec/make-zone.sh tests/unit/dnssec
# Run it again (and commit the result) to change the zones.
#
# Needs ldns-keygen and ldns-signzone (Debian package ldnsutils).
set -eu

out=${1:?usage: make-zone.sh OUTDIR [TLSA-HEX]}
tlsa=${2:-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}
case $tlsa in
*[!0-9a-fA-F]*) echo "make-zone.sh: TLSA-HEX: hex digits only" >&2; exit 1;;
esac
[ ${#tlsa} -eq 64 ] || { echo "make-zone.sh: TLSA-HEX: 64 digits" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/dane.test" <<ZONE
\$ORIGIN dane.test.
\$TTL 3600
@		SOA	ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 300
@		NS	ns.dane.test.
@		MX	10 mx.dane.test.
@		TXT	"v=spf1 -all"
ns		A	127.0.0.1
mx		A	127.0.0.1
mx		AAAA	::1
_25._tcp.mx	TLSA	3 1 1 $tlsa
bogus		MX	10 mx.dane.test.
bogus		A	127.0.0.66
bogus		TXT	"signed"
_25._tcp.bogus	TLSA	3 1 1 $tlsa
ZONE

cat > "$out/plain.test.zone" <<ZONE
\$ORIGIN plain.test.
\$TTL 3600
@		SOA	ns.plain.test. hostmaster.plain.test. 1 3600 600 86400 300
@		NS	ns.plain.test.
@		MX	10 mx.plain.test.
@		TXT	"v=spf1 -all"
ns		A	127.0.0.1
mx		A	127.0.0.1
_25._tcp.mx	TLSA	3 1 1 $tlsa
ZONE

cd "$work"
key=$(ldns-keygen -a ECDSAP256SHA256 -k dane.test)
ldns-signzone -i 20260101000000 -e 20460101000000 -f dane.test.signed \
    dane.test "$key"
# Break bogus.dane.test.'s records after signing (fields are tab-separated:
# owner, TTL, class, type, rdata...).
awk 'BEGIN { FS = OFS = "\t" }
$1 ~ /^(_25\._tcp\.)?bogus\.dane\.test\.$/ {
	if ($4 == "A") $5 = "127.0.0.99"
	else if ($4 == "MX") $5 = "20 mx.dane.test."
	else if ($4 == "TXT") $5 = "\"forged\""
	else if ($4 == "TLSA") $5 = "3 1 1 " substr("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", 1, 64)
}
{ print }' dane.test.signed > "$out/dane.test.zone"
cmp -s dane.test.signed "$out/dane.test.zone" &&
    { echo "make-zone.sh: bogus records not changed" >&2; exit 1; }
cp "$key.ds" "$out/trust-anchor"

cat > "$out/nsd.zones" <<CONF
zone:
	name: "dane.test"
	zonefile: "dane.test.zone"
zone:
	name: "plain.test"
	zonefile: "plain.test.zone"
CONF
