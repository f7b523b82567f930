#!/bin/sh
# dev-run.sh - the development instance: `make run` calls this after
# building. Prepares ./var (contrib/dev-setup.sh), says how to send a first
# message, then runs ./postern serve -c config/dev.conf in the foreground
# (logs on stderr; stop with Ctrl-C).
set -eu
cd "$(dirname "$0")/.."

contrib/dev-setup.sh

cat <<'TEXT'

Postern development instance (config/dev.conf, state in ./var)
  127.0.0.1:5587  submission, STARTTLS, AUTH
  127.0.0.1:5465  submission, implicit TLS, AUTH
  127.0.0.1:5525  trusted: no AUTH, sender app@example.test only
  login admin@example.test (may send as *@example.test);
  its password is in var/dev-password (mode 0600)

Send a first message, from this directory in another terminal:

  swaks --server 127.0.0.1:5587 --tls --tls-verify --tls-ca-path var/tls/cert.pem \
        --auth PLAIN --auth-user admin@example.test \
        --auth-password "$(cat var/dev-password)" \
        --from admin@example.test --to someone@example.com

  swaks --server 127.0.0.1:5465 --tlsc --tls-verify --tls-ca-path var/tls/cert.pem \
        --auth LOGIN --auth-user admin@example.test \
        --auth-password "$(cat var/dev-password)" \
        --from admin@example.test --to someone@example.com

  (swaks takes the password only as an argument, which other local users
  can see in ps: fine for this development instance, not for production.)

Nothing leaves this machine: relay.mode is "directory", so every message
arrives, once per recipient, as a file in var/mail/new/. It is DKIM-signed
for example.test (selectors dev-rsa and dev-ed, keys in
var/keys/example.test/); check the signatures against those key files (no
DNS needed):

  ls var/mail/new/
  ./postern keys verify --local -c config/dev.conf < var/mail/new/FILE

Mail that could not be delivered yet waits in the queue:

  ./postern queue list -c config/dev.conf
  ./postern queue show ID -c config/dev.conf

Starting ./postern serve -c config/dev.conf (Ctrl-C stops it)...

TEXT

exec ./postern serve -c config/dev.conf
