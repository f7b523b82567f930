/*
 * privsep - the daemon gives up root: bind, load, drop, verify
 *
 * privsep_drop() runs once at startup, after everything that needs root
 * (listening sockets bound, TLS and DKIM keys and the relay's CA file
 * read, the queue directories made) and before the queue committer
 * thread and the event loop start. With `user` set and the process
 * root, it gives the queue directories (state_dir, tmp/, queue/,
 * corrupt/), in relay.mode "directory" the relay's folder and its
 * tmp/, new/ and cur/, and the DKIM folders state_dir/keys/ and
 * keys/DOMAIN/ of each hosted domain when they exist (the daemon
 * rewrites the rotation state there) to that user, then calls
 * setgroups, setresgid and
 * setresuid (OpenSMTPD's order) and checks with getresuid/getresgid
 * that all three ids of each took. Started as another user it keeps its
 * uid and says so; without `user` it does nothing (startup refuses to
 * run as root without one).
 *
 * Every failure is fatal (log_fatal/log_fatalx, exit 1): the loop never
 * runs as root, nor with privileges half dropped.
 */
#ifndef POSTERN_PRIVSEP_H
#define POSTERN_PRIVSEP_H

struct config;

/* privsep_drop - become cfg->user for good, and check it took */
void	privsep_drop(const struct config *cfg);

#endif
