#!/bin/sh
# dev-setup.sh - prepare ./var for the development instance (config/dev.conf)
#
# Run from anywhere; works on the repository this script lives in. Creates,
# only when missing:
#   var/                 state_dir of config/dev.conf (mode 0700)
#   var/tls/cert.pem     self-signed certificate for relay.example.test,
#   var/tls/key.pem      also valid for localhost, 127.0.0.1 and ::1 (key 0600)
#   var/dev-password     a random password for admin@example.test (0600)
#   var/sasldb2          with the SASL user admin@example.test, created
#                        through `./postern users add` (password on stdin)
#   var/keys/example.test/dev-rsa.key   the DKIM keys config/dev.conf signs
#   var/keys/example.test/dev-ed.key    with (rsa-sha256, ed25519-sha256;
#                        0600), made by `./postern keys generate` when this
#                        build has it, else by `openssl genpkey`
# Safe to run again: existing files are kept; if var/dev-password had to be
# made anew for an existing user, that user's password is set to it.
set -eu
cd "$(dirname "$0")/.."

CONF=config/dev.conf
LOGIN=admin@example.test
DOMAIN=example.test
KEYDIR=var/keys/$DOMAIN

[ -x ./postern ] || { echo "dev-setup: ./postern is missing: run make" >&2; exit 1; }
[ -f "$CONF" ] || { echo "dev-setup: $CONF is missing" >&2; exit 1; }

umask 077
mkdir -p var/tls
chmod 700 var

if [ ! -s var/tls/cert.pem ] || [ ! -s var/tls/key.pem ]; then
	echo "dev-setup: creating a self-signed certificate in var/tls/"
	openssl req -x509 -newkey rsa:2048 -nodes -days 825 \
	    -subj "/CN=relay.example.test" \
	    -addext "subjectAltName=DNS:relay.example.test,DNS:localhost,IP:127.0.0.1,IP:::1" \
	    -keyout var/tls/key.pem -out var/tls/cert.pem 2>/dev/null
	chmod 600 var/tls/key.pem
	chmod 644 var/tls/cert.pem
fi

# DKIM keys: every hosted domain signs, so the daemon refuses to start
# without them. $1 selector, $2 algorithm.
have_keys_generate=no
if ./postern keys 2>&1 | grep -q 'keys generate'; then
	have_keys_generate=yes
fi
dkim_key() {
	key=$KEYDIR/$1.key
	[ -s "$key" ] && return 0
	echo "dev-setup: creating DKIM key $key ($2)"
	mkdir -p "$KEYDIR"
	chmod 700 var/keys "$KEYDIR"
	if [ "$have_keys_generate" = yes ]; then
		./postern keys generate "$DOMAIN" -s "$1" -a "$2" -c "$CONF" \
		    > /dev/null
	else
		rm -f "$key"
		case $2 in
		rsa-sha256)
			openssl genpkey -algorithm RSA \
			    -pkeyopt rsa_keygen_bits:2048 -out "$key" 2>/dev/null ;;
		ed25519-sha256)
			openssl genpkey -algorithm ed25519 -out "$key" 2>/dev/null ;;
		esac
	fi
	[ -s "$key" ] || { echo "dev-setup: $key was not created" >&2; exit 1; }
	chmod 600 "$key"
}
dkim_key dev-rsa rsa-sha256
dkim_key dev-ed ed25519-sha256

new_password=no
if [ ! -s var/dev-password ]; then
	# 24 characters from [A-Za-z0-9]
	pw=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | cut -c1-24)
	[ ${#pw} -eq 24 ] || { echo "dev-setup: cannot make a password" >&2; exit 1; }
	printf '%s\n' "$pw" > var/dev-password
	chmod 600 var/dev-password
	new_password=yes
fi

if ./postern users list -c "$CONF" 2>/dev/null | grep -qx "$LOGIN"; then
	if [ "$new_password" = yes ]; then
		echo "dev-setup: setting the password of $LOGIN from var/dev-password"
		./postern users passwd "$LOGIN" -c "$CONF" < var/dev-password
	fi
else
	echo "dev-setup: creating SASL user $LOGIN in var/sasldb2"
	./postern users add "$LOGIN" -c "$CONF" < var/dev-password
fi

