#!/bin/sh
# install-deps.sh - install the Debian 12 packages Postern's build and tests
# need. With --if-missing, do nothing when they are all installed already
# (the Makefile calls it that way before every build).
set -eu

# systemd: systemd-analyze and systemctl, which tests/e2e/test_install.py
# runs offline on the installed unit (containers often lack the package).
# python3-prometheus-client: its text-format parser reads /metrics in
# tests/e2e/test_metrics.py.
# adduser, iproute2 (ip), util-linux (unshare, runuser): the INSTALL
# walk-through, tests/e2e/walkthrough.py (usually there already).
# mandoc: `mandoc -T lint` checks the man pages (tests/e2e/test_man.py).
# testssl.sh: grades the inbound TLS policy of both submission listeners
# (tests/e2e/test_tls_policy.py).
# dns-root-data: the root trust anchor the daemon validates DNSSEC from
# by default (dnssec_trust_anchor, /usr/share/dns/root.key): needed at
# run time too. nsd and ldnsutils (ldns-keygen, ldns-signzone): the
# DNSSEC-signed test zone (tests/unit/dnssec/, tests/e2e/dnssec.py); the
# tests run their own nsd on loopback. Debian's nsd package also enables
# a system nsd.service (port 53, no zones) where systemd runs; the tests
# never use it (`systemctl disable --now nsd` if it is unwanted).
PACKAGES="
build-essential pkg-config
libevent-dev libssl-dev libsasl2-dev libconfig-dev libopendkim-dev
libunbound-dev libjansson-dev
libsasl2-modules libsasl2-modules-db sasl2-bin
libcmocka-dev
openssl ca-certificates
swaks msmtp gsasl python3 python3-pytest python3-aiosmtpd python3-dkim
libmail-dkim-perl dnsmasq-base python3-dnspython
python3-prometheus-client
systemd
adduser iproute2 util-linux
mandoc
testssl.sh
dns-root-data nsd ldnsutils
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	[ "${1:-}" = "--if-missing" ] || echo "install-deps: all packages present"
	exit 0
fi

echo "install-deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-deps: run as root: apt-get install$missing" >&2
		exit 1
	fi
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-remove: a package that would need another removed fails instead.
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends --no-remove $missing
