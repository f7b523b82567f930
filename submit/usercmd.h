/*
 * usercmd - `postern users ...`: the SASL users in the sasldb
 *
 *	postern users add|passwd|delete LOGIN [-c FILE]
 *	postern users list [-c FILE]
 *
 * add and passwd read the password from the terminal without echo,
 * asked twice (they must match), or else one line of standard input; at
 * most USERCMD_PASSWORD_MAX - 2 bytes, not empty; the buffers holding it
 * are wiped. The store is submit/auth.h's (auth_user_set and friends).
 * Run as root with `user` set, add and passwd hand the sasldb to that
 * user so the daemon can still read it.
 *
 * Results go to stdout ("added LOGIN", "changed password of LOGIN",
 * "deleted LOGIN", one login a line for list), errors to stderr as
 * "postern: ...". Password problems (too long, empty, not matching) are
 * fatal (log_fatalx, exit 1). Nothing here is used by the daemon.
 */
#ifndef POSTERN_USERCMD_H
#define POSTERN_USERCMD_H

#define USERCMD_PASSWORD_MAX	1024	/* bytes read, line end included */

/*
 * users_main - run `postern users` with argv[0..argc) the words after
 * "users". Returns the exit status (0 done, 1 error), or -1 when the
 * words are not a users command (the caller prints its usage; exit 2).
 */
int	users_main(int argc, char **argv);

#endif
