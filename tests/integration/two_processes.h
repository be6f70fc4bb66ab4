/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The two-process integration test shared by every real driver
 * (test_uring.c, test_dpdk.c): a sender and a receiver process, 100,000
 * messages of random sizes (1 % up to 1 MiB) on three streams, each checked
 * byte for byte, counted and in order.
 */
#ifndef WARP_TESTS_TWO_PROCESSES_H
#define WARP_TESTS_TWO_PROCESSES_H

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers.h"

#define N_MSGS 100000
#define WINDOW_MSGS 1000
#define WINDOW_BYTES (2u << 20)

/* Shared between the two processes (MAP_SHARED before fork). */
struct shared {
	_Atomic uint64_t delivered, delivered_bytes;
	_Atomic uint64_t bad, out_of_order;
	_Atomic int receiver_ready, done;
	char recv_addr[160], send_addr[160];
};

static size_t msg_len(uint64_t i)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull;
	x ^= x >> 31;
	if (x % 100 == 0)
		return (size_t)((x >> 8) % (1u << 20) + 1); /* 1 %: up to 1 MiB */
	return (size_t)((x >> 8) % 2000);
}

struct rx_state {
	struct shared *sh;
	uint64_t next[4];
};

static void on_recv(void *user, const warp_msg_t *m)
{
	struct rx_state *st = user;
	if (m->status)
		return;
	if (!th_check(m->data, m->len, th_seed(m->stream_id, m->msg_id, m->len)))
		atomic_fetch_add(&st->sh->bad, 1);
	if (m->msg_id != st->next[m->stream_id & 3])
		atomic_fetch_add(&st->sh->out_of_order, 1);
	st->next[m->stream_id & 3] = m->msg_id + 1;
	atomic_fetch_add(&st->sh->delivered_bytes, m->len);
	atomic_fetch_add(&st->sh->delivered, 1); /* last: the sender reads it */
}

/* Makes the engine of one half ("tx" or "rx"); runs in that half's process. */
typedef warp_engine_t *(*tp_engine_fn)(const char *drv, const char *name);


/* The receiving process: exits 0 after N_MSGS deliveries (or on done). */
static void receiver(const char *drv, tp_engine_fn make, struct shared *sh)
{
	warp_engine_t *e = make(drv, "rx");
	if (!e)
		_exit(10);
	warp_engine_local_addr(e, 0, sh->recv_addr, sizeof(sh->recv_addr));
	atomic_store(&sh->receiver_ready, 1);
	while (atomic_load(&sh->receiver_ready) != 2)
		usleep(100);
	char id[256];
	snprintf(id, sizeof(id), "tx@%s", sh->send_addr);
	if (warp_peer_add(e, id, NULL))
		_exit(11);
	struct rx_state st = { .sh = sh };
	warp_engine_set_recv(e, on_recv, &st);
	while (!atomic_load(&sh->done))
		warp_engine_poll(e);
	warp_engine_destroy(e);
	_exit(0);
}

/* Two processes, 100,000 messages of random sizes up to 1 MiB on three
 * streams from tx to rx, each checked byte for byte and in order. */
static void two_processes_with(const char *drv, tp_engine_fn make)
{
	struct shared *sh = th_shared(sizeof(*sh));
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		th_child_dies_with_parent(parent);
		receiver(drv, make, sh);
	}
	warp_engine_t *e = make(drv, "tx");
	cr_assert_not_null(e, "%s", warp_errdetail());
	warp_engine_local_addr(e, 0, sh->send_addr, sizeof(sh->send_addr));
	int status;
	while (!atomic_load(&sh->receiver_ready)) {
		cr_assert_neq(waitpid(pid, &status, WNOHANG), pid,
			      "%s: the receiver exited (status 0x%x) before it was ready", drv,
			      status);
		usleep(100);
	}
	char id[256];
	snprintf(id, sizeof(id), "rx@%s", sh->recv_addr);
	warp_peer_t *p;
	cr_assert_eq(warp_peer_add(e, id, &p), 0, "%s", warp_errdetail());
	atomic_store(&sh->receiver_ready, 2);
	warp_stream_t *s[3];
	for (int k = 0; k < 3; k++)
		cr_assert_eq(warp_stream_open(e, p, (uint16_t)(k + 1), (uint8_t)(16 + 60 * k), &s[k]),
			     0);
	static uint8_t buf[1u << 20];
	uint64_t sent_bytes = 0;
	uint64_t seen = 0, t_seen = warp_engine_now(e);
	for (uint64_t i = 0; i < N_MSGS; i++) {
		size_t len = msg_len(i);
		warp_stream_t *st = s[i % 3];
		/* test-level flow control (v1 has none): keep the receiver's
		 * socket from overflowing, so every message must arrive */
		while (i - atomic_load(&sh->delivered) >= WINDOW_MSGS ||
		       sent_bytes - atomic_load(&sh->delivered_bytes) + len > WINDOW_BYTES) {
			warp_engine_poll(e);
			uint64_t d = atomic_load(&sh->delivered);
			if (d != seen) {
				seen = d;
				t_seen = warp_engine_now(e);
			} else if (warp_engine_now(e) - t_seen > 20000000000ull) {
				warp_stats_t sx;
				warp_engine_stats(e, &sx);
				atomic_store(&sh->done, 1);
				cr_assert_fail("%s: no delivery for 20 s at message %llu of %d "
					       "(delivered %llu; tx packets %llu, rx packets %llu, "
					       "drv tx errors %llu, link downs %llu, rto %llu)",
					       drv, (unsigned long long)i, N_MSGS, (unsigned long long)d,
					       (unsigned long long)sx.tx_packets,
					       (unsigned long long)sx.rx_packets,
					       (unsigned long long)sx.drv_tx_errors,
					       (unsigned long long)sx.drv_link_down,
					       (unsigned long long)sx.rto_fired);
			}
		}
		th_fill(buf, len, th_seed(warp_stream_id(st), st->next_msg_id, len));
		int rc;
		while ((rc = warp_send(e, st, buf, len, NULL)) == WARP_EAGAIN)
			warp_engine_poll(e);
		cr_assert_eq(rc, 0, "%s", warp_strerror(rc));
		sent_bytes += len;
		warp_engine_poll(e);
	}
	uint64_t t0 = warp_engine_now(e);
	while (atomic_load(&sh->delivered) < N_MSGS && warp_engine_now(e) - t0 < 20000000000ull)
		warp_engine_poll(e);
	atomic_store(&sh->done, 1);
	waitpid(pid, &status, 0);
	warp_stats_t stx;
	warp_engine_stats(e, &stx);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "receiver exit %d", status);
	cr_assert_eq(atomic_load(&sh->delivered), N_MSGS,
		     "%s: delivered %llu of %d (tx errors %llu, timed out %llu, acked %llu, "
		     "retransmits %llu, lost packets %llu, rto %llu)",
		     drv, (unsigned long long)atomic_load(&sh->delivered), N_MSGS,
		     (unsigned long long)stx.drv_tx_errors, (unsigned long long)stx.msgs_timed_out,
		     (unsigned long long)stx.msgs_acked, (unsigned long long)stx.retransmits,
		     (unsigned long long)stx.pkts_lost, (unsigned long long)stx.rto_fired);
	cr_assert_eq(atomic_load(&sh->delivered_bytes), sent_bytes);
	cr_assert_eq(atomic_load(&sh->bad), 0, "payloads differ");
	cr_assert_eq(atomic_load(&sh->out_of_order), 0);
	cr_assert_eq(stx.msgs_sent, N_MSGS);
	warp_engine_destroy(e);
	munmap(sh, sizeof(*sh));
}

#endif
