/*
 * dns_server - the unit tests' way to run a real DNS server (dnsmasq,
 * NSD) on 127.0.0.1: a free port, waiting until the child holds it, and
 * stopping it by its PID; and to wait for asynchronous answers on a
 * libevent loop.
 *
 * Header-only: static functions for each test binary that includes it
 * (cmocka's assertions fail the test on a socket error). Nothing here
 * sleeps a fixed time: server_wait polls every 10 ms, for 5 s at most.
 */
#ifndef POSTERN_TEST_DNS_SERVER_H
#define POSTERN_TEST_DNS_SERVER_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

/* free_udp_port - a port nothing listens on now (UDP and TCP) */
static int
free_udp_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* port_taken - 1 if something is bound to 127.0.0.1:port over UDP */
static int
port_taken(int port)
{
	struct sockaddr_in sin;
	int fd, rc;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	rc = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	return rc == -1 && errno == EADDRINUSE;
}

/*
 * server_wait - 0 once the child *pid (named what in messages) holds
 * port; -1 if it exited (then *pid is -1) or never bound it.
 */
static int
server_wait(pid_t *pid, int port, const char *what)
{
	int i, status;

	for (i = 0; i < 500; i++) {
		if (port_taken(port))
			return 0;
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			*pid = -1;
			fprintf(stderr, "# %s exited at startup\n", what);
			return -1;
		}
		usleep(10000);
	}
	fprintf(stderr, "# %s never bound port %d\n", what, port);
	return -1;
}

/* server_stop - SIGTERM the child *pid, if any, and reap it */
static void
server_stop(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
		*pid = -1;
	}
}

/* server_need - skip the test when the group setup started no server */
static void
server_need(pid_t pid, const char *what)
{
	if (pid <= 0) {
		fprintf(stderr, "# SKIP: no %s\n", what);
		skip();
	}
}

/* loop_timeout - the answers never came: stop the loop */
static void
loop_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

/* loop_for - dispatch b until the callbacks stop it or secs pass */
static void
loop_for(struct event_base *b, int secs)
{
	struct timeval tv = { secs, 0 };
	struct event *timer;

	assert_non_null(timer = evtimer_new(b, loop_timeout, b));
	evtimer_add(timer, &tv);
	event_base_dispatch(b);
	event_free(timer);
}

#endif /* POSTERN_TEST_DNS_SERVER_H */
