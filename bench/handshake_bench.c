/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handshake-bench: secure-session handshakes per second on one core.
 *
 * Two engines over the in-process loop driver, both polled by this one
 * thread, so the figure is the CPU cost of a handshake on both ends
 * together (HELLO exchange, mutual TLS 1.3 with P-256 certificates,
 * exporter, packet keys), with no network time in it. Each round the
 * responder asks for a new session (warp_peer_reopen) and the loop runs
 * until both sides are up again. "full": tls.resumption = 0, every
 * handshake exchanges and verifies certificates; "resumed": the initiator
 * resumes with the ticket of the session before.
 *
 *   handshake-bench DIR [SECONDS]   (DIR from tools/mkcerts DIR a b)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "warp/loop.h"
#include "warp/warp.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "handshake-bench: %s: %s: %s\n", what, warp_strerror(rc), warp_errdetail());
	exit(1);
}

static warp_engine_t *engine(warp_loop_net_t *net, const char *dir, const char *name,
			     int resumption)
{
	warp_config_t c;
	warp_config_init(&c);
	snprintf(c.node_id, sizeof(c.node_id), "%s", name);
	c.encryption = WARP_ENCRYPTION_REQUIRED;
	c.tls.resumption = (uint32_t)resumption;
	if (snprintf(c.tls.cert_file, sizeof(c.tls.cert_file), "%s/%s.pem", dir, name) >=
		    (int)sizeof(c.tls.cert_file) ||
	    snprintf(c.tls.key_file, sizeof(c.tls.key_file), "%s/%s.key", dir, name) >=
		    (int)sizeof(c.tls.key_file) ||
	    snprintf(c.tls.ca_file, sizeof(c.tls.ca_file), "%s/ca.pem", dir) >=
		    (int)sizeof(c.tls.ca_file)) {
		fprintf(stderr, "handshake-bench: directory name too long\n");
		exit(2);
	}
	char key[32];
	snprintf(key, sizeof(key), "%s:1", name);
	int rc = warp_config_add_transport(&c, "loop", key, net);
	if (rc)
		die("config", rc);
	warp_engine_t *e;
	if ((rc = warp_engine_create(&c, &e)))
		die("engine", rc);
	return e;
}

static uint32_t handshakes(warp_peer_t *p)
{
	warp_session_info_t si;
	warp_peer_session(p, &si);
	if (si.state == WARP_SESSION_FAILED) {
		fprintf(stderr, "handshake-bench: %s\n", si.error_detail);
		exit(1);
	}
	return si.state == WARP_SESSION_UP ? si.handshakes : 0;
}

/* Handshakes per second, and the share that resumed. */
static double run(const char *dir, int resumption, double seconds, double *resumed_share)
{
	warp_loop_net_t *net;
	if (warp_loop_net_create(1, 0, &net))
		die("loop net", WARP_ENOMEM);
	warp_engine_t *a = engine(net, dir, "a", resumption);
	warp_engine_t *b = engine(net, dir, "b", resumption);
	warp_peer_t *ab, *ba;
	int rc;
	if ((rc = warp_peer_add(a, "b@b:1", &ab)) || (rc = warp_peer_add(b, "a@a:1", &ba)))
		die("peer", rc);
	uint32_t want = 1;
	uint64_t t0 = 0, n = 0, resumed = 0;
	for (;;) {
		warp_engine_poll(a);
		warp_engine_poll(b);
		if (handshakes(ab) < want || handshakes(ba) < want)
			continue;
		/* both up on session `want` */
		uint64_t now = mono_ns();
		if (want == 1) {
			t0 = now; /* the first one warms up */
		} else {
			n++;
			warp_session_info_t si;
			warp_peer_session(ab, &si);
			resumed += (uint64_t)si.resumed;
			if ((double)(now - t0) / 1e9 >= seconds)
				break;
		}
		want++;
		if ((rc = warp_peer_reopen(b, ba)))
			die("reopen", rc);
	}
	double rate = (double)n / ((double)(mono_ns() - t0) / 1e9);
	*resumed_share = n ? (double)resumed / (double)n : 0;
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	warp_loop_net_destroy(net);
	return rate;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || argv[1][0] == '-') {
		fprintf(stderr, "usage: handshake-bench DIR [SECONDS]   (DIR: tools/mkcerts DIR a b)\n");
		return 2;
	}
	double secs = argc == 3 ? atof(argv[2]) : 2.0;
	if (secs <= 0) {
		fprintf(stderr, "handshake-bench: bad SECONDS '%s'\n", argv[2]);
		return 2;
	}
	double share_full, share_res;
	double full = run(argv[1], 0, secs, &share_full);
	double res = run(argv[1], 1, secs, &share_res);
	printf("handshake-bench: both ends on one core, loop driver, mutual TLS 1.3 (P-256)\n");
	printf("%-10s %14s %10s\n", "", "handshakes/s", "resumed");
	printf("%-10s %14.0f %9.0f%%\n", "full", full, share_full * 100);
	printf("%-10s %14.0f %9.0f%%\n", "resumed", res, share_res * 100);
	return share_res > 0.99 && share_full < 0.01 ? 0 : 1;
}
