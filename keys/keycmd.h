/*
 * keycmd - `postern keys ...`: DKIM keys and DNS records for admins
 *
 *	postern keys generate DOMAIN [-a ALGORITHM] [-s SELECTOR] [-b BITS]
 *	postern keys dns     [DOMAIN] [--plain] [--check]
 *	postern keys sign    DOMAIN [-s SELECTOR] [-k KEYFILE [-a ALGORITHM]]
 *			     [--time UNIX] [--headers LIST] < MESSAGE
 *	postern keys verify  [--local] < MESSAGE
 *	postern keys rotate  DOMAIN [-a ALGORITHM [-s SELECTOR]] [-b BITS]
 *	postern keys status  [DOMAIN]
 *	postern keys remove  DOMAIN SELECTOR
 * each with [-c FILE] (default CONFIG_DEFAULT_PATH), options in any order.
 *
 * generate writes new private keys with keyfile_generate() (0600, never
 * over an existing file) at the configuration's default place,
 * STATE_DIR/keys/DOMAIN/SELECTOR.key, making missing directories 0700
 * (and, when run as root with `user` set, giving the new files and
 * directories to that user), then prints the DNS records and the `dkim`
 * setting that enables them. Without -a it makes the pair every domain
 * signs with: rsa-sha256 (selector rYYYYMM) and ed25519-sha256
 * (eYYYYMM), YYYYMM the current UTC month so that selectors sort by date;
 * -s names a single key and so needs -a.
 *
 * dns prints, per hosted domain, each configured selector's DKIM key
 * record (from its key file), an SPF suggestion and a DMARC suggestion.
 * Zone-file form (the default), a comment line ";" before each record:
 *	NAME. IN TXT "VALUE"
 *	NAME. IN TXT ( "PART" "PART" ... )	VALUE over 255 bytes, split
 *						into strings of <= 255 bytes
 * --plain: exactly one line per record and nothing else,
 *	NAME TXT VALUE
 * with NAME without its final dot and VALUE whole and unquoted (what
 * registrars' web forms want). A domain without keys, or a key file that
 * does not load, is reported on stderr (naming the file) and makes the
 * exit status 1; the other records are still printed. --check (compare
 * with what DNS serves) needs the relay's resolver and says so (exit 2).
 *
 * sign and verify share the daemon's signer and verifier (keys/dkim.h).
 * sign streams: the message is converted to CRLF line ends and hashed as
 * it is read, and spooled to an unlinked temporary file (TMPDIR or /tmp)
 * so that it can follow the signatures; only the header section is held
 * in memory (at most the configuration's limits.header_size).
 * --headers LIST (names separated by ':') replaces both of the domain's
 * header lists: exactly those fields are signed, and a name given twice
 * is oversigned; without it the domain's sign_headers/oversign_headers
 * are used (dkim_default_headers for one not set). sign -k KEYFILE
 * signs for any valid DOMAIN, hosted or not (then with
 * dkim_default_headers); without -k DOMAIN must be hosted.
 * verify --local gives libopendkim a temporary key file (0600, removed
 * afterwards) holding the record of every configured key that loads;
 * without --local libopendkim looks keys up in DNS itself, blocking,
 * which is fine for a command-line tool.
 *
 * Every command sees a domain's selectors as keyring_selectors() merges
 * them (the rotation state file and the configuration; keys/keyring.h):
 * dns prints every one with its state in the comment (pending ones must
 * be published, retiring ones stay until removed); sign without -s uses
 * the active ones, with -s any; verify --local knows them all.
 *
 * rotate makes new keys like generate (for each algorithm that has an
 * active selector, or -a's), names them rYYYYMM/eYYYYMM (rYYYYMMDD when
 * the month's is taken), records them as pending in the state file
 * (under keystate_lock, owned by `user` when run as root) and prints
 * their records. The daemon does the rest (keys/rotate.h). status lists
 * every selector with its state and since when. remove forgets a
 * retiring selector that the configuration no longer lists and deletes
 * its private key. A state change that would leave a domain unable to
 * sign (keyring_check) is refused and nothing is written.
 *
 * A domain may have no keys yet (generate is how it gets them), so only
 * the commands that need keys complain about that. Results go to stdout, errors to stderr as "postern: ..."
 * naming the file or domain. Exit status: 0 done, 1 error (or, for
 * verify, a signature that did not pass, or none), 2 usage.
 * Nothing here is used by the daemon; the functions may exit().
 */
#ifndef POSTERN_KEYCMD_H
#define POSTERN_KEYCMD_H

#define KEYCMD_TXT_STRING_MAX	255	/* bytes per DNS character-string */

/*
 * keys_main - run `postern keys` with argv[0..argc) the words after
 * "keys". Returns the exit status.
 */
int	keys_main(int argc, char **argv);

#endif
