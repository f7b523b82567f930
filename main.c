/*
 * postern - outbound submission relay: command-line entry point
 *
 * main() only parses the command line and dispatches to the module that
 * runs each command; every piece of logic lives in a module that links
 * into the test binaries.
 *
 *	postern serve        [-c FILE] [-d]		daemon/daemon.h
 *	postern check-config [-c FILE]			daemon/daemon.h
 *	postern users add|passwd|delete LOGIN [-c FILE]	submit/usercmd.h
 *	postern users list   [-c FILE]
 *	postern limits show [--json] [-c FILE]		submit/limitscmd.h
 *	postern limits unlock IP|LOGIN [-c FILE]
 *	postern queue list|show|flush|hold|release|delete ...	queue/queuecmd.h
 *	postern keys ...				keys/keycmd.h
 *	postern sendmail [options] [recipient ...]	submit/sendmail.h
 *	sendmail [options] [recipient ...]	(the binary under that name)
 *	mailq [-c FILE]			(under that name: postern queue list)
 *	newaliases			(under that name: says there is nothing
 *					to do, exit 0)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "config/cmdline.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "keys/keycmd.h"
#include "queue/queuecmd.h"
#include "submit/limitscmd.h"
#include "submit/sendmail.h"
#include "submit/usercmd.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: postern serve        [-c FILE] [-d]\n"
	    "       postern check-config [-c FILE]\n"
	    "       postern users add|passwd|delete LOGIN [-c FILE]\n"
	    "       postern users list   [-c FILE]\n"
	    "       postern limits show [--json] [-c FILE]\n"
	    "       postern limits unlock IP|LOGIN [-c FILE]\n"
	    "       postern queue list [--json] [--sender ADDR] "
	    "[--recipient ADDR|@DOMAIN]\n"
	    "                          [--held|--deferred] [-c FILE]\n"
	    "       postern queue show ID [--json|--message] [-c FILE]\n"
	    "       postern queue flush [ID...] [-c FILE]\n"
	    "       postern queue hold|release ID... [-c FILE]\n"
	    "       postern queue delete [--bounce] ID... [-c FILE]\n"
	    "       postern keys generate|dns|sign|verify ... (postern keys)\n"
	    "       postern sendmail [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] "
	    "[--] [recipient ...]\n"
	    "                                   (also as `sendmail`: a message "
	    "on stdin to the daemon)\n"
	    "       mailq [-c FILE]             (the binary as `mailq`: "
	    "postern queue list)\n"
	    "       newaliases                  (the binary as `newaliases`: "
	    "nothing to do)\n"

	    "Passwords are read from the terminal, or from standard input "
	    "when it is not one.\n");
	exit(2);
}

/* cmd_serve - run the daemon in the foreground */
static int
cmd_serve(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_PATH, *words[1];
	struct daemon *d;
	int debug = 0;

	if (cmdline_args(argc, argv, &path, &debug, words, 0) != 0)
		usage();
	d = daemon_start(path, debug);
	daemon_run(d);
	daemon_free(d);
	return 0;
}

/* cmd_check_config - validate and say so */
static int
cmd_check_config(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_PATH, *words[1];

	if (cmdline_args(argc, argv, &path, NULL, words, 0) != 0)
		usage();
	daemon_check(path);
	printf("%s: configuration OK\n", path);
	return 0;
}

/* cmd_mailq - `mailq [-c FILE]`: what `postern queue list` prints */
static int
cmd_mailq(int argc, char **argv)
{
	char **words = xcalloc((size_t)argc + 1, sizeof(*words));
	int i, rc;

	words[0] = "list";
	for (i = 1; i < argc; i++)
		words[i] = argv[i];
	if ((rc = queue_main(argc, words)) == -1) {
		fprintf(stderr, "usage: mailq [-c FILE]     (postern queue "
		    "list: one line per queued message)\n");
		rc = 2;
	}
	free(words);
	return rc;
}

/* usage_if - a command's exit status, or the usage for its -1 */
static int
usage_if(int rc)
{
	if (rc == -1)
		usage();
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cmd, *base;

	/* /usr/sbin/sendmail -> postern: the sendmail(1) interface */
	if (argc > 0 && argv[0] != NULL) {
		base = strrchr(argv[0], '/');
		base = base ? base + 1 : argv[0];
		if (strcmp(base, "sendmail") == 0)
			return sendmail_main(argc, argv);
		if (strcmp(base, "mailq") == 0)
			return cmd_mailq(argc, argv);
		if (strcmp(base, "newaliases") == 0)
			return sendmail_newaliases();
	}
	if (argc < 2)
		usage();
	cmd = argv[1];
	if (strcmp(cmd, "sendmail") == 0)
		return sendmail_main(argc - 1, argv + 1);
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 2, argv + 2);
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(argc - 2, argv + 2);
	if (strcmp(cmd, "users") == 0)
		return usage_if(users_main(argc - 2, argv + 2));
	if (strcmp(cmd, "limits") == 0)
		return usage_if(limits_main(argc - 2, argv + 2));
	if (strcmp(cmd, "queue") == 0)
		return usage_if(queue_main(argc - 2, argv + 2));
	if (strcmp(cmd, "keys") == 0)
		return keys_main(argc - 2, argv + 2);

	usage();
}
