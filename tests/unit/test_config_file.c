/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration file loader (src/config/loader.c): the example files in
 * config/, value parsing, and "<path>:<line>: <key>: ..." for every error. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "driver.h" /* drivers/: warp__driver_find */
#include "warp/loop.h"
#include "warp/warp.h"

/* src/config/loader.c: create an engine from a loaded file, mapping errors
 * to lines (lets the test give the loop driver its net). */
int warp__config_file_engine_create(const warp_config_file_t *f, warp_engine_t **out);

/* ---- where the sources are ------------------------------------------------ */

/* The source tree is __FILE__ minus this suffix. Meson compiles with paths
 * relative to the build directory (e.g. "../tests/unit/test_config_file.c"),
 * so a relative SRC_DIR is resolved against the build directory, which is
 * the parent of the directory holding this executable. */
#define THIS_FILE_SUFFIX "tests/unit/test_config_file.c"
#define SRC_DIR_LEN (sizeof(__FILE__) - sizeof(THIS_FILE_SUFFIX))

/* Format a candidate directory into dir; 1 if it holds the examples. */
__attribute__((format(printf, 3, 4))) static int try_dir(char *dir, size_t cap,
							 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(dir, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	char p[PATH_MAX + 32];
	struct stat sb;
	if (snprintf(p, sizeof(p), "%s/loopback-udp-a.ini", dir) >= (int)sizeof(p))
		return 0;
	return stat(p, &sb) == 0;
}

/* Fills dir with the config/ directory of the source tree. */
static void config_dir(char *dir, size_t cap)
{
	const char *env = getenv("WARP_SOURCE_DIR");
	if (env && *env && try_dir(dir, cap, "%s/config", env))
		return;
	const int src_len = (int)SRC_DIR_LEN; /* SRC_DIR is __FILE__[0 .. src_len) */
	if (__FILE__[0] == '/') {
		if (try_dir(dir, cap, "%.*sconfig", src_len, __FILE__))
			return;
	} else {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			for (int up = 0; up < 2; up++) { /* <build>/tests/test_x -> <build> */
				char *slash = strrchr(exe, '/');
				if (slash)
					*slash = '\0';
			}
			if (try_dir(dir, cap, "%s/%.*sconfig", exe, src_len, __FILE__))
				return;
		}
		/* relative to the working directory */
		if (try_dir(dir, cap, "%.*sconfig", src_len, __FILE__))
			return;
	}
	if (try_dir(dir, cap, "../config") || try_dir(dir, cap, "config"))
		return;
	cr_assert_fail("cannot find the config/ directory of the source tree (__FILE__ is %s; "
		       "set WARP_SOURCE_DIR)",
		       __FILE__);
}

/* ---- a temporary directory per test ------------------------------------- */

static char tmpdir[64];
static char tpath[128]; /* the file the last write_ini() wrote */
static warp_config_file_t *f;

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/warp-cfg-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	f = malloc(sizeof(*f)); /* large: never on the stack */
	cr_assert_not_null(f);
}

static void teardown(void)
{
	DIR *d = opendir(tmpdir);
	if (d) {
		struct dirent *de;
		char p[256];
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			if (snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name) < (int)sizeof(p))
				unlink(p);
		}
		closedir(d);
	}
	rmdir(tmpdir);
	free(f);
}

TestSuite(config_file, .init = setup, .fini = teardown);

static const char *write_ini(const char *text)
{
	snprintf(tpath, sizeof(tpath), "%s/test.ini", tmpdir);
	FILE *fp = fopen(tpath, "w");
	cr_assert_not_null(fp);
	cr_assert_eq(fputs(text, fp) >= 0, 1);
	cr_assert_eq(fclose(fp), 0);
	return tpath;
}

static int load(const char *text)
{
	warp__err_clear();
	return warp_config_load(write_ini(text), f);
}

static void expect_loaded(const char *text)
{
	int rc = load(text);
	cr_assert_eq(rc, 0, "load failed with %d: %s", rc, warp_errdetail());
}

/* load() fails with WARP_ECONFIG and a detail "<path>:<line>: ..." that
 * names `key`. line 0: the detail is "<path>: ..." (no line). */
static void expect_error(const char *text, unsigned line, const char *key)
{
	int rc = load(text);
	const char *d = warp_errdetail();
	cr_assert_eq(rc, WARP_ECONFIG, "rc %d (%s), want WARP_ECONFIG; detail \"%s\"", rc,
		     warp_strerror(rc), d);
	char want[256];
	if (line)
		snprintf(want, sizeof(want), "%s:%u: ", tpath, line);
	else
		snprintf(want, sizeof(want), "%s: ", tpath);
	cr_assert_eq(strncmp(d, want, strlen(want)), 0, "detail \"%s\" does not start with \"%s\"",
		     d, want);
	cr_assert_not_null(strstr(d, key), "detail \"%s\" does not name \"%s\"", d, key);
}

#define MIN_ENGINE "[engine]\nnode_id = a\n[transport]\ndriver = loop\nlisten = a:1\n"
#define UDP_ENGINE "[engine]\nnode_id = a\n[transport]\ndriver = uring-udp\nlisten = 127.0.0.1:7000\n"

/* Without TLS built in, warp_config_validate() refuses tls.cert_file (last,
 * after every other check): a file that sets it loads only with TLS. */
#ifdef WARP_HAVE_TLS
#define TLS_BUILT 1
#else
#define TLS_BUILT 0
#endif
#define NO_TLS_DETAIL "tls.cert_file: set, but this libwarp was built without TLS"

/* The result of loading a file that sets tls_cert_file (at cert_line of
 * path): 0 with TLS built in, else the "built without TLS" error at that
 * line. The file's keys were read either way. */
static void expect_cert_loaded(int rc, const char *path, unsigned cert_line)
{
	const char *d = warp_errdetail();
	if (TLS_BUILT) {
		cr_assert_eq(rc, 0, "load failed with %d: %s", rc, d);
		return;
	}
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s:%u: tls_cert_file: " NO_TLS_DETAIL, path, cert_line);
	cr_assert_eq(rc, WARP_ECONFIG, "rc %d: %s", rc, d);
	cr_assert_eq(strncmp(d, want, strlen(want)), 0, "detail \"%s\", want \"%s...\"", d, want);
}

/* ---- the example files ---------------------------------------------------- */

Test(config_file, every_example_file_loads_and_validates)
{
	char dir[PATH_MAX];
	config_dir(dir, sizeof(dir));
	static const char *const expected[] = {
		"loopback-udp-a.ini", "loopback-udp-b.ini", "loopback-tcp-a.ini",
		"loopback-tcp-b.ini", "cluster-n1.ini",	    "cluster-n2.ini",
		"cluster-n3.ini",     "memif-a.ini",	    "memif-b.ini",
		"afxdp.ini",	      "nic-physical.ini", "secure-a.ini",
		"secure-b.ini",
	};
	unsigned seen = 0, n = 0;
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "cannot open %s", dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".ini") != 0)
			continue;
		char p[PATH_MAX + 256];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		warp__err_clear();
		int rc = warp_config_load(p, f);
		if (!TLS_BUILT && f->cfg.tls.cert_file[0] && rc == WARP_ECONFIG &&
		    strstr(warp_errdetail(), NO_TLS_DETAIL)) {
			/* read and checked up to the certificate, which needs TLS */
			cr_expect_geq(f->cfg.n_peers, 1, "%s", de->d_name);
			rc = -1;
		} else {
			cr_expect_eq(rc, 0, "%s: %s", de->d_name, warp_errdetail());
		}
		if (rc == 0) {
			cr_expect_eq(warp_config_validate(&f->cfg), 0, "%s: %s", de->d_name,
				     warp_errdetail());
			cr_expect_geq(f->cfg.n_transports, 1, "%s", de->d_name);
			cr_expect_geq(f->cfg.n_peers, 1, "%s", de->d_name);
			cr_expect_eq(f->cfg.peers, f->peers);
			for (uint32_t i = 0; i < f->cfg.n_transports; i++)
				if (!strcmp(f->cfg.transports[i].driver, "dpdk"))
					cr_expect_eq(f->cfg.transports[i].driver_arg, &f->dpdk[i],
						     "%s", de->d_name);
		}
		for (size_t i = 0; i < WARP__ARRAY_LEN(expected); i++)
			if (!strcmp(expected[i], de->d_name))
				seen |= 1u << i;
		n++;
	}
	closedir(d);
	cr_assert_eq(seen, (1u << WARP__ARRAY_LEN(expected)) - 1,
		     "config/ lacks some of the example files (mask %#x)", seen);
	cr_assert_geq(n, WARP__ARRAY_LEN(expected));
}

Test(config_file, cluster_example_prefers_udp_then_fails_over_to_tcp)
{
	char dir[PATH_MAX], p[PATH_MAX + 32];
	config_dir(dir, sizeof(dir));
	snprintf(p, sizeof(p), "%s/cluster-n2.ini", dir);
	cr_assert_eq(warp_config_load(p, f), 0, "%s", warp_errdetail());
	cr_assert_str_eq(f->cfg.node_id, "n2");
	cr_assert_eq(f->cfg.n_transports, 2);
	cr_assert_str_eq(f->cfg.transports[0].driver, "uring-udp");
	cr_assert_str_eq(f->cfg.transports[1].driver, "uring-tcp");
	cr_assert_eq(f->cfg.n_peers, 2);
	cr_assert_str_eq(f->peers[0].node, "n1");
	cr_assert_str_eq(f->peers[1].node, "n3");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(f->peers[i].n_transports, 2);
		cr_assert_str_eq(f->peers[i].transports[0].driver, "uring-udp");
		cr_assert_str_eq(f->peers[i].transports[1].driver, "uring-tcp");
	}
	cr_assert_str_eq(f->peers[1].transports[0].addr, "127.0.0.1:7022");
	cr_assert_str_eq(f->path, p);
}

/* Loads config/<name> into f. */
static void load_example(const char *name)
{
	char dir[PATH_MAX], p[PATH_MAX + 64];
	config_dir(dir, sizeof(dir));
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	warp__err_clear();
	cr_assert_eq(warp_config_load(p, f), 0, "%s: %s", name, warp_errdetail());
}

Test(config_file, memif_examples_are_a_server_client_pair)
{
	char sock[2][WARP_DPDK_ARG_MAX], listen[2][WARP_ADDR_STR_MAX], peer[2][WARP_ADDR_STR_MAX];
	char lcores[2][64];
	static const char *const names[2] = { "memif-a.ini", "memif-b.ini" };
	for (int i = 0; i < 2; i++) {
		load_example(names[i]);
		cr_assert_eq(f->cfg.n_transports, 1);
		cr_assert_str_eq(f->cfg.transports[0].driver, "dpdk");
		const warp_dpdk_config_t *d = &f->dpdk[0];
		cr_assert_eq(f->cfg.transports[0].driver_arg, d);
		cr_assert(d->in_memory, "%s", names[i]);
		cr_assert(!d->no_huge, "%s", names[i]);
		cr_assert_eq(d->n_vdevs, 1);
		cr_assert_not_null(strstr(d->vdevs[0], i == 0 ? "role=server" : "role=client"));
		const char *s = strstr(d->vdevs[0], "socket=");
		cr_assert_not_null(s);
		snprintf(sock[i], sizeof(sock[i]), "%s", s);
		cr_assert_str_eq(d->port, "net_memif0");
		cr_assert_eq(d->n_neigh, 0, "%s: ARP, no static neighbours", names[i]);
		snprintf(lcores[i], sizeof(lcores[i]), "%s", d->lcores);
		snprintf(listen[i], sizeof(listen[i]), "%s", f->cfg.transports[0].listen);
		cr_assert_eq(f->cfg.n_peers, 1);
		cr_assert_str_eq(f->peers[0].transports[0].driver, "dpdk");
		snprintf(peer[i], sizeof(peer[i]), "%s", f->peers[0].transports[0].addr);
	}
	cr_assert_str_eq(sock[0], "socket=/run/warp-memif.sock");
	cr_assert_str_eq(sock[0], sock[1]);
	cr_assert_str_eq(lcores[0], "0");
	cr_assert_str_eq(lcores[1], "1");
	cr_assert_str_eq(listen[0], "10.10.0.1:7000");
	cr_assert_str_eq(listen[1], "10.10.0.2:7000");
	cr_assert_str_eq(peer[0], listen[1]);
	cr_assert_str_eq(peer[1], listen[0]);
}

Test(config_file, afxdp_and_nic_examples)
{
	load_example("afxdp.ini");
	cr_assert_eq(f->cfg.n_transports, 2);
	cr_assert_str_eq(f->cfg.transports[0].driver, "dpdk");
	cr_assert_str_eq(f->cfg.transports[1].driver, "uring-udp");
	cr_assert_eq(f->cfg.transports[1].driver_arg, NULL);
	cr_assert_eq(f->dpdk[0].n_vdevs, 1);
	cr_assert_eq(strncmp(f->dpdk[0].vdevs[0], "net_af_xdp0,iface=", 18), 0);
	cr_assert_eq(f->dpdk[0].n_neigh, 0);
	cr_assert_eq(f->peers[0].n_transports, 2, "dpdk, then uring-udp for failover");

	load_example("nic-physical.ini");
	const warp_dpdk_config_t *d = &f->dpdk[0];
	cr_assert_eq(d->n_pci_allow, 1);
	cr_assert_eq(d->n_vdevs, 0);
	cr_assert_eq(d->queues, 2);
	cr_assert_eq(d->queue, 0);
	cr_assert_neq(d->gateway[0], '\0');
	cr_assert_neq(d->prefix_len, 0);
	cr_assert_neq(d->lcores[0], '\0');
	cr_assert_eq(d->n_neigh, 1, "the gateway, static: engine 1 gets no ARP replies");
	cr_assert_str_eq(d->neigh[0].ip, d->gateway);
}

/* ---- values --------------------------------------------------------------- */

Test(config_file, every_engine_key_is_parsed_with_its_unit)
{
	expect_loaded("[engine]\n"
		      "node_id = node-1.x_y\n"
		      "mtu = 9000\n"
		      "max_payload_bytes = 16M\n"
		      "pkt_pool = 8192\n"
		      "tx_arena_bytes = 1G\n"
		      "rx_arena_bytes = 65536K\n"
		      "max_tx_msgs = 1000\n"
		      "max_peers = 100\n"
		      "max_streams = 7\n"
		      "max_reassembly = 9\n"
		      "reassembly_timeout = 1500ms\n"
		      "rx_burst = 16\n"
		      "tx_burst = 64\n"
		      "submit_budget = 77\n"
		      "max_channels = 3\n"
		      "channel_ring_bytes = 64M\n"
		      "timer_tick = 250us\n"
		      "timer_slots = 1024\n"
		      "heartbeat_interval = 100ms\n"
		      "connect_timeout = 3s\n"
		      "retry_initial_backoff = 20ms\n"
		      "retry_max_backoff = 4s\n"
		      "idle = yield\n"
		      "idle_spins = 5\n"
		      "idle_yields = 6\n"
		      "idle_min_sleep = 700ns\n"
		      "idle_max_sleep = 2s\n"
		      "cpu = 3\n"
		      "[transport]\ndriver = loop\nlisten = a:1\n");
	const warp_config_t *c = &f->cfg;
	cr_assert_str_eq(c->node_id, "node-1.x_y");
	cr_assert_eq(c->mtu, 9000);
	cr_assert_eq(c->max_payload_bytes, 16ull << 20);
	cr_assert_eq(c->pkt_pool, 8192);
	cr_assert_eq(c->tx_arena_bytes, 1ull << 30);
	cr_assert_eq(c->rx_arena_bytes, 65536ull << 10);
	cr_assert_eq(c->max_tx_msgs, 1000);
	cr_assert_eq(c->max_peers, 100);
	cr_assert_eq(c->max_streams, 7);
	cr_assert_eq(c->max_reassembly, 9);
	cr_assert_eq(c->reassembly_timeout_ns, 1500000000ull);
	cr_assert_eq(c->rx_burst, 16);
	cr_assert_eq(c->tx_burst, 64);
	cr_assert_eq(c->submit_budget, 77);
	cr_assert_eq(c->max_channels, 3);
	cr_assert_eq(c->channel_ring_bytes, (size_t)64 << 20);
	cr_assert_eq(c->timer_tick_ns, 250000ull);
	cr_assert_eq(c->timer_slots, 1024);
	cr_assert_eq(c->heartbeat_interval_ns, 100000000ull);
	cr_assert_eq(c->connect_timeout_ns, 3000000000ull);
	cr_assert_eq(c->retry_initial_backoff_ns, 20000000ull);
	cr_assert_eq(c->retry_max_backoff_ns, 4000000000ull);
	cr_assert_eq(c->idle.kind, WARP_IDLE_YIELD);
	cr_assert_eq(c->idle.spins, 5);
	cr_assert_eq(c->idle.yields, 6);
	cr_assert_eq(c->idle.min_sleep_ns, 700ull);
	cr_assert_eq(c->idle.max_sleep_ns, 2000000000ull);
	cr_assert_eq(c->cpu, 3);
	cr_assert_eq(c->n_peers, 0);
}

Test(config_file, unset_keys_keep_the_documented_defaults)
{
	expect_loaded(MIN_ENGINE);
	warp_config_t d;
	warp_config_init(&d);
	const warp_config_t *c = &f->cfg;
	cr_assert_str_eq(c->node_id, "a");
	cr_assert_eq(c->mtu, d.mtu);
	cr_assert_eq(c->max_payload_bytes, d.max_payload_bytes);
	cr_assert_eq(c->tx_arena_bytes, d.tx_arena_bytes);
	cr_assert_eq(c->reassembly_timeout_ns, d.reassembly_timeout_ns);
	cr_assert_eq(c->timer_tick_ns, d.timer_tick_ns);
	cr_assert_eq(c->idle.kind, WARP_IDLE_BACKOFF);
	cr_assert_eq(c->idle.max_sleep_ns, d.idle.max_sleep_ns);
	cr_assert_eq(c->cpu, -1);
	cr_assert_eq(c->clock, NULL);
	cr_assert_eq(c->transports[0].driver_arg, NULL);
	for (size_t i = 0; i < sizeof(c->reserved); i++)
		cr_assert_eq(c->reserved[i], 0);
	/* secure sessions */
	cr_assert_eq(c->encryption, WARP_ENCRYPTION_OPTIONAL);
	cr_assert_eq(c->encryption, d.encryption);
	cr_assert_str_eq(c->tls.cert_file, "");
	cr_assert_str_eq(c->tls.key_file, "");
	cr_assert_str_eq(c->tls.ca_file, "");
	cr_assert_eq(c->tls.verify_peer, 1);
	cr_assert_str_eq(c->tls.ciphers, "aes-128-gcm:chacha20-poly1305");
	cr_assert_eq(c->key_update_packets, 4194304ull);
	cr_assert_eq(c->key_update_packets, WARP_DEFAULT_KEY_UPDATE_PACKETS);
	cr_assert_eq(c->max_handshakes, 16);
	cr_assert_eq(c->max_handshakes, WARP_DEFAULT_MAX_HANDSHAKES);
	cr_assert_eq(c->n_caps, 0);
}

Test(config_file, sizes_take_bytes_or_k_m_g_powers_of_1024)
{
	static const struct {
		const char *v;
		uint64_t want;
	} cases[] = { { "4096", 4096 },	 { "4K", 4096 },	 { "3M", 3ull << 20 },
		      { "2G", 2ull << 30 },	 { "8 M", 8ull << 20 }, { "0", 0 } };
	for (size_t i = 0; i < WARP__ARRAY_LEN(cases); i++) {
		char t[256];
		snprintf(t, sizeof(t),
			 "[engine]\nnode_id = a\nchannel_ring_bytes = 0\ntx_arena_bytes = 64M\n"
			 "rx_arena_bytes = %s\nmax_payload_bytes = 1\n"
			 "[transport]\ndriver = loop\nlisten = a:1\n",
			 cases[i].v);
		int rc = load(t);
		if (cases[i].want < 4096) { /* validate rejects it: but parsed */
			cr_assert_eq(rc, WARP_ECONFIG);
			cr_assert_eq(f->cfg.rx_arena_bytes, cases[i].want, "%s", cases[i].v);
			continue;
		}
		cr_assert_eq(rc, 0, "%s: %s", cases[i].v, warp_errdetail());
		cr_assert_eq(f->cfg.rx_arena_bytes, cases[i].want, "%s", cases[i].v);
	}
}

Test(config_file, durations_take_ns_us_ms_s)
{
	static const struct {
		const char *v;
		uint64_t want;
	} cases[] = { { "1500ns", 1500 },	     { "3us", 3000 },	  { "7ms", 7000000 },
		      { "2s", 2000000000ull },   { "0", 0 },	  { "0ms", 0 },
		      { "10 ms", 10000000 } };
	for (size_t i = 0; i < WARP__ARRAY_LEN(cases); i++) {
		char t[256];
		snprintf(t, sizeof(t),
			 "[engine]\nnode_id = a\nheartbeat_interval = %s\n"
			 "[transport]\ndriver = loop\nlisten = a:1\n",
			 cases[i].v);
		int rc = load(t);
		cr_assert_eq(rc, 0, "%s: %s", cases[i].v, warp_errdetail());
		cr_assert_eq(f->cfg.heartbeat_interval_ns, cases[i].want, "%s", cases[i].v);
	}
}

Test(config_file, idle_kinds_spin_yield_backoff)
{
	static const struct {
		const char *v;
		warp_idle_kind_t k;
	} cases[] = { { "spin", WARP_IDLE_SPIN },
		      { "yield", WARP_IDLE_YIELD },
		      { "backoff", WARP_IDLE_BACKOFF } };
	for (size_t i = 0; i < WARP__ARRAY_LEN(cases); i++) {
		char t[256];
		snprintf(t, sizeof(t),
			 "[engine]\nnode_id = a\nidle = %s\n[transport]\ndriver = loop\nlisten = a:1\n",
			 cases[i].v);
		cr_assert_eq(load(t), 0, "%s: %s", cases[i].v, warp_errdetail());
		cr_assert_eq(f->cfg.idle.kind, cases[i].k, "%s", cases[i].v);
	}
}

Test(config_file, transports_and_peers_keep_file_order_and_lines)
{
	expect_loaded("[engine]\n"			   /* 1 */
		      "node_id = a\n"			   /* 2 */
		      "\n"				   /* 3 */
		      "[transport]\n"			   /* 4 */
		      "driver = uring-udp\n"		   /* 5 */
		      "listen = 127.0.0.1:7000\n"	   /* 6 */
		      "[transport]\n"			   /* 7 */
		      "driver = uring-tcp\n"		   /* 8 */
		      "listen = [::1]:7100\n"		   /* 9 */
		      "[peer b]\n"			   /* 10 */
		      "transport = uring-udp 127.0.0.1:7001\n" /* 11 */
		      "transport = uring-tcp [::1]:7101\n" /* 12 */
		      "[peer c]\n"			   /* 13 */
		      "transport = uring-tcp 10.0.0.3:7101\n"); /* 14 */
	const warp_config_t *c = &f->cfg;
	cr_assert_eq(c->n_transports, 2);
	cr_assert_str_eq(c->transports[0].driver, "uring-udp");
	cr_assert_str_eq(c->transports[0].listen, "127.0.0.1:7000");
	cr_assert_str_eq(c->transports[1].driver, "uring-tcp");
	cr_assert_str_eq(c->transports[1].listen, "[::1]:7100");
	cr_assert_eq(f->transport_line[0], 4);
	cr_assert_eq(f->transport_line[1], 7);
	cr_assert_eq(c->n_peers, 2);
	cr_assert_eq(c->peers, f->peers);
	cr_assert_str_eq(f->peers[0].node, "b");
	cr_assert_eq(f->peers[0].n_transports, 2);
	cr_assert_str_eq(f->peers[0].transports[0].driver, "uring-udp");
	cr_assert_str_eq(f->peers[0].transports[0].addr, "127.0.0.1:7001");
	cr_assert_str_eq(f->peers[0].transports[1].driver, "uring-tcp");
	cr_assert_str_eq(f->peers[0].transports[1].addr, "[::1]:7101");
	cr_assert_str_eq(f->peers[1].node, "c");
	cr_assert_eq(f->peers[1].n_transports, 1);
	cr_assert_eq(f->peer_line[0], 10);
	cr_assert_eq(f->peer_line[1], 13);
}

Test(config_file, transport_socket_options)
{
	expect_loaded("[engine]\nnode_id = a\n"
		      "[transport]\ndriver = uring-udp\nlisten = 127.0.0.1:7000\n"
		      "sock_buf_bytes = 8M\nreuseport = yes\nuring_setup = coop\n"
		      "[transport]\ndriver = uring-tcp\nlisten = 127.0.0.1:7100\n"
		      "reuseport = no\nuring_setup = sqpoll\n"
		      "[transport]\ndriver = uring-udp\nlisten = 127.0.0.1:7200\nudp_gso = no\n"
		      "udp_gro = no\n"
		      "[transport]\ndriver = uring-udp\nlisten = 127.0.0.1:7300\n"
		      "udp_gso = yes\nudp_gro = yes\n");
	cr_assert_eq(f->cfg.transports[0].sock_buf_bytes, 8u << 20);
	cr_assert_eq(f->cfg.transports[0].flags,
		     WARP_TRANSPORT_REUSEPORT | WARP_TRANSPORT_URING_COOP);
	cr_assert_eq(f->cfg.transports[1].sock_buf_bytes, 0);
	cr_assert_eq(f->cfg.transports[1].flags, WARP_TRANSPORT_URING_SQPOLL);
	cr_assert_eq(f->cfg.transports[2].flags,
		     WARP_TRANSPORT_NO_UDP_GSO | WARP_TRANSPORT_NO_UDP_GRO);
	cr_assert_eq(f->cfg.transports[3].flags, 0, "yes is the default");
	expect_error(MIN_ENGINE "uring_setup = fast\n", 6, "uring_setup");
	expect_error(MIN_ENGINE "reuseport = maybe\n", 6, "reuseport");
	expect_error(UDP_ENGINE "udp_gso = sometimes\n", 6, "udp_gso");
	cr_assert_not_null(strstr(warp_errdetail(), "yes or no"), "%s", warp_errdetail());
	expect_error(UDP_ENGINE "udp_gro = often\n", 6, "udp_gro");
	cr_assert_not_null(strstr(warp_errdetail(), "yes or no"), "%s", warp_errdetail());
}

/* udp_gso and udp_gro are uring-udp's: on another driver they would do
 * nothing, so they are refused, naming the key and both drivers, whichever
 * comes first */
Test(config_file, udp_offload_key_under_another_driver_names_the_key_and_the_driver)
{
	expect_error("[engine]\nnode_id = a\n[transport]\ndriver = uring-tcp\n"
		     "listen = 127.0.0.1:7000\nudp_gso = no\n",
		     6, "udp_gso");
	cr_assert_not_null(strstr(warp_errdetail(), "driver uring-udp"), "%s", warp_errdetail());
	cr_assert_not_null(strstr(warp_errdetail(), "'uring-tcp'"), "%s", warp_errdetail());
	expect_error("[engine]\nnode_id = a\n[transport]\nlisten = 127.0.0.1:7000\n"
		     "udp_gro = yes\nudp_gso = yes\ndriver = dpdk\n",
		     5, "udp_gro");
	cr_assert_not_null(strstr(warp_errdetail(), "'dpdk' (set on line 7)"), "%s",
			   warp_errdetail());
	expect_error(MIN_ENGINE "udp_gro = yes\n", 6, "udp_gro");
	cr_assert_not_null(strstr(warp_errdetail(), "'loop'"), "%s", warp_errdetail());
	/* a uring-udp section before another one does not count */
	expect_loaded("[engine]\nnode_id = a\n[transport]\ndriver = uring-udp\n"
		      "listen = 127.0.0.1:7000\nudp_gso = no\n[transport]\ndriver = uring-tcp\n"
		      "listen = 127.0.0.1:7100\n");
	cr_assert_eq(f->cfg.transports[0].flags, WARP_TRANSPORT_NO_UDP_GSO);
	cr_assert_eq(f->cfg.transports[1].flags, 0);
}

Test(config_file, comments_blanks_indentation_crlf_and_bom)
{
	expect_loaded("\xef\xbb\xbf; a comment\r\n"
		      "# another comment\r\n"
		      "\r\n"
		      "  [engine]   ; trailing comment\r\n"
		      "\tnode_id = a   # hash comment\r\n"
		      "    mtu = 1400 ; indented keys are not continuations\r\n"
		      "[transport]\r\n"
		      "driver=loop\r\n"
		      "listen   =   a:1\r\n");
	cr_assert_str_eq(f->cfg.node_id, "a");
	cr_assert_eq(f->cfg.mtu, 1400);
	cr_assert_str_eq(f->cfg.transports[0].listen, "a:1");
	cr_assert_eq(f->transport_line[0], 7);
}

/* A blank first line (and a blank line longer than any before it): the
 * comment scan used to start one byte past the line's end, reading what
 * getline's buffer held there (ASan: heap-buffer-overflow). */
Test(config_file, a_blank_first_line_and_long_blank_lines)
{
	expect_loaded("\n"
		      "[engine]\n"
		      "node_id = a\n"
		      "                                                                    "
		      "                                                                    \n"
		      "[transport]\n"
		      "driver = loop\n"
		      "listen = a:1\n");
	cr_assert_str_eq(f->cfg.node_id, "a");
	cr_assert_eq(f->transport_line[0], 5);
}

Test(config_file, long_peer_ids_are_not_truncated)
{
	char id[WARP_NODE_MAX];
	memset(id, 'p', WARP_NODE_MAX - 1);
	id[WARP_NODE_MAX - 1] = '\0';
	char t[512];
	snprintf(t, sizeof(t), MIN_ENGINE "[peer %s]\ntransport = loop b:1\n", id);
	expect_loaded(t);
	cr_assert_str_eq(f->peers[0].node, id);
}

/* ---- errors --------------------------------------------------------------- */

Test(config_file, missing_file_names_the_path)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/does-not-exist.ini", tmpdir);
	warp__err_clear();
	cr_assert_eq(warp_config_load(p, f), WARP_ECONFIG);
	const char *d = warp_errdetail();
	cr_assert_not_null(strstr(d, p), "%s", d);
	cr_assert_not_null(strstr(d, "cannot open"), "%s", d);
	cr_assert_not_null(strstr(d, "No such file"), "%s", d);
	warp_engine_t *e = NULL;
	cr_assert_eq(warp_engine_create_from_file(p, &e), WARP_ECONFIG);
	cr_assert_null(e);
	cr_assert_not_null(strstr(warp_errdetail(), p));
}

Test(config_file, a_directory_is_not_a_file)
{
	warp__err_clear();
	cr_assert_eq(warp_config_load(tmpdir, f), WARP_ECONFIG);
	cr_assert_not_null(strstr(warp_errdetail(), tmpdir), "%s", warp_errdetail());
}

Test(config_file, syntax_errors_give_their_line)
{
	expect_error("[engine]\nnode_id = a\nmtu 1472\n", 3, "mtu 1472");
	expect_error("[engine]\nnode_id = a\n\n[transport\n", 4, "[transport");
	expect_error("[engine] extra\n", 1, "[engine] extra");
	expect_error("[engine]\n= 5\n", 2, "no key");
	char t[600];
	memset(t, 'x', sizeof(t));
	memcpy(t, "[engine]\nnode_id = ", 19);
	strcpy(t + 500, "\n");
	expect_error(t, 2, "longer than");
}

Test(config_file, unknown_section)
{
	expect_error(MIN_ENGINE "\n[peers]\ntransport = loop b:1\n", 7, "[peers]");
	expect_error("[engine]\nnode_id = a\n[Engine]\n", 3, "[Engine]");
}

Test(config_file, unknown_key_names_the_section)
{
	expect_error("[engine]\nnode_id = a\nmtux = 1\n", 3, "mtux");
	cr_assert_not_null(strstr(warp_errdetail(), "[engine]"));
	expect_error(MIN_ENGINE "address = x\n", 6, "address");
	cr_assert_not_null(strstr(warp_errdetail(), "[transport]"));
	expect_error(MIN_ENGINE "[peer b]\ntransport = loop b:1\nport = 7\n", 8, "port");
	cr_assert_not_null(strstr(warp_errdetail(), "[peer b]"));
	expect_error("mtu = 1472\n[engine]\n", 1, "mtu");
}

Test(config_file, bad_values)
{
	expect_error("[engine]\nnode_id = a\nmtu = big\n", 3, "mtu");
	cr_assert_not_null(strstr(warp_errdetail(), "not a number"));
	expect_error("[engine]\nnode_id = a\nmtu = 12x\n", 3, "mtu");
	expect_error("[engine]\nnode_id = a\nmtu = -5\n", 3, "mtu");
	expect_error("[engine]\nnode_id = a\nmtu = 4294967296\n", 3, "mtu");
	cr_assert_not_null(strstr(warp_errdetail(), "out of range"));
	expect_error("[engine]\nnode_id = a\npkt_pool = 99999999999999999999999\n", 3, "pkt_pool");
	cr_assert_not_null(strstr(warp_errdetail(), "out of range"));
	expect_error("[engine]\nnode_id = a\nmax_payload_bytes = 8MB\n", 3, "max_payload_bytes");
	cr_assert_not_null(strstr(warp_errdetail(), "size suffix"));
	expect_error("[engine]\nnode_id = a\nmax_payload_bytes = 8m\n", 3, "max_payload_bytes");
	expect_error("[engine]\nnode_id = a\ntx_arena_bytes = 17179869184G\n", 3, "tx_arena_bytes");
	cr_assert_not_null(strstr(warp_errdetail(), "out of range"));
	expect_error("[engine]\nnode_id = a\nheartbeat_interval = 100\n", 3, "heartbeat_interval");
	cr_assert_not_null(strstr(warp_errdetail(), "unit"));
	expect_error("[engine]\nnode_id = a\ntimer_tick = 5min\n", 3, "timer_tick");
	expect_error("[engine]\nnode_id = a\nidle_max_sleep = 1.5ms\n", 3, "idle_max_sleep");
	expect_error("[engine]\nnode_id = a\nidle = sleep\n", 3, "idle");
	cr_assert_not_null(strstr(warp_errdetail(), "spin, yield or backoff"));
	expect_error("[engine]\nnode_id = a\ncpu = -2\n", 3, "cpu");
	expect_error("[engine]\nnode_id = a\nmtu =\n", 3, "mtu");
	expect_error(MIN_ENGINE "driver = loop\n", 6, "driver");
	cr_assert_not_null(strstr(warp_errdetail(), "set twice"));
	expect_error("[engine]\nnode_id = a\n[transport]\ndriver = a-very-long-driver-name\n", 4,
		     "driver");
}

Test(config_file, a_key_set_twice_or_a_second_engine_section)
{
	expect_error("[engine]\nnode_id = a\nmtu = 1400\nmtu = 1500\n", 4, "mtu");
	cr_assert_not_null(strstr(warp_errdetail(), "line 3"));
	expect_error(MIN_ENGINE "[engine]\nmtu = 1400\n", 6, "[engine]");
}

Test(config_file, duplicate_peer_section)
{
	expect_error(MIN_ENGINE "[peer b]\ntransport = loop b:1\n"
				"[peer c]\ntransport = loop c:1\n"
				"[peer b]\ntransport = loop b:2\n",
		     10, "[peer b]");
	cr_assert_not_null(strstr(warp_errdetail(), "line 6"), "%s", warp_errdetail());
}

Test(config_file, too_many_transports)
{
	expect_error("[engine]\nnode_id = a\n"
		     "[transport]\ndriver = d1\n"	 /* 3 */
		     "[transport]\ndriver = d2\n"	 /* 5 */
		     "[transport]\ndriver = d3\n"	 /* 7 */
		     "[transport]\ndriver = d4\n"	 /* 9 */
		     "[transport]\ndriver = d5\n", /* 11 */
		     11, "[transport]");
	cr_assert_not_null(strstr(warp_errdetail(), "at most 4"));
	expect_error(MIN_ENGINE "[peer b]\ntransport = loop b:1\ntransport = loop b:2\n"
				"transport = loop b:3\ntransport = loop b:4\ntransport = loop b:5\n",
		     11, "transport");
}

Test(config_file, too_many_peers)
{
	size_t cap = 64 + (WARP_CONFIG_FILE_MAX_PEERS + 1) * 48;
	char *t = malloc(cap);
	cr_assert_not_null(t);
	size_t n = (size_t)snprintf(t, cap, "[engine]\nnode_id = a\nmax_peers = 1000\n"
				     "[transport]\ndriver = loop\nlisten = a:1\n");
	for (int i = 0; i <= WARP_CONFIG_FILE_MAX_PEERS; i++)
		n += (size_t)snprintf(t + n, cap - n, "[peer p%d]\ntransport = loop p%d:1\n", i, i);
	/* six header lines, two per peer: peer #256 (0-based) starts at line 7 + 512 */
	expect_error(t, 7 + 2 * WARP_CONFIG_FILE_MAX_PEERS, "[peer p256]");
	cr_assert_not_null(strstr(warp_errdetail(), "too many peers"));
	free(t);
}

Test(config_file, peer_without_transport_is_missing_its_address)
{
	expect_error(MIN_ENGINE "[peer b]\n\n[peer c]\ntransport = loop c:1\n", 6, "[peer b]");
	cr_assert_not_null(strstr(warp_errdetail(), "missing peer address"));
	expect_error(MIN_ENGINE "[peer b]\n", 6, "missing peer address");
	expect_error(MIN_ENGINE "[peer b]\ntransport = loop\n", 7, "missing peer address");
	expect_error(MIN_ENGINE "[peer b]\ntransport =\n", 7, "missing peer address");
	expect_error(MIN_ENGINE "[peer b]\ntransport = loop b:1 extra\n", 7, "transport");
	expect_error(MIN_ENGINE "[peer]\ntransport = loop b:1\n", 6, "[peer]");
	expect_error(MIN_ENGINE "[peer b c]\ntransport = loop b:1\n", 6, "[peer b c]");
}

Test(config_file, transport_without_driver)
{
	expect_error("[engine]\nnode_id = a\n[transport]\nlisten = a:1\n[peer b]\n", 3, "driver");
}

Test(config_file, peer_transport_needs_a_transport_section)
{
	expect_error(MIN_ENGINE "[peer b]\ntransport = loop b:1\ntransport = uring-udp 1.2.3.4:7\n",
		     8, "uring-udp");
}

Test(config_file, empty_node_id)
{
	expect_error("[engine]\nnode_id =\n[transport]\ndriver = loop\n", 2, "node_id");
	cr_assert_not_null(strstr(warp_errdetail(), "empty node id"));
	expect_error("[engine]\n[transport]\ndriver = loop\n", 0, "node_id");
}

Test(config_file, validation_errors_point_at_the_line_of_the_key)
{
	expect_error(MIN_ENGINE "[engine]\n", 6, "[engine]"); /* (not validate: twice) */
	expect_error("[engine]\nnode_id = a\nmtu = 100\n[transport]\ndriver = loop\n", 3, "mtu");
	cr_assert_not_null(strstr(warp_errdetail(), "256"), "%s", warp_errdetail());
	expect_error("[transport]\ndriver = loop\n[engine]\nnode_id = a b\n", 4, "node_id");
	expect_error("[engine]\nnode_id = a\ntimer_slots = 1000\n[transport]\ndriver = loop\n", 3,
		     "timer_slots");
	expect_error("[engine]\nnode_id = a\n\nreassembly_timeout = 1us\n[transport]\ndriver = loop\n",
		     4, "reassembly_timeout");
	expect_error("[engine]\nnode_id = a\nrx_burst = 0\n[transport]\ndriver = loop\n", 3,
		     "rx_burst");
	/* tx_arena (default 32M) is too small for max_payload_bytes: the line
	 * that made it so */
	expect_error("[engine]\nnode_id = a\nmax_payload_bytes = 64M\n[transport]\ndriver = loop\n",
		     3, "tx_arena_bytes");
	expect_error("[engine]\nnode_id = a\nmax_payload_bytes = 1M\ntx_arena_bytes = 512K\n"
		     "[transport]\ndriver = loop\n",
		     4, "tx_arena_bytes");
	/* a TX arena as large as the largest message has no room for its
	 * fragment map: the line that made it so (create used to refuse it,
	 * with no line) */
	expect_error("[engine]\nnode_id = a\nmax_payload_bytes = 32M\nrx_window_bytes = 32M\n"
		     "[transport]\ndriver = loop\n",
		     3, "give at least 67108864");
	/* limits that a key's default breaks once another key moved: the line
	 * of the key that moved (they had no line) */
	expect_error("[engine]\nnode_id = a\nmax_payload_bytes = 20M\n[transport]\ndriver = loop\n",
		     3, "rx_window_bytes");
	expect_error("[engine]\nnode_id = a\nrto_min = 50ms\n[transport]\ndriver = loop\n", 3,
		     "rto_initial");
	expect_error("[engine]\nnode_id = a\nrto_max = 10ms\n[transport]\ndriver = loop\n", 3,
		     "rto_initial");
	expect_error("[engine]\nnode_id = a\nbreaker_half_open_max_calls = 1\n"
		     "[transport]\ndriver = loop\n",
		     3, "breaker_success_threshold");
	expect_error("[engine]\nnode_id = a\nretry_initial_backoff = 20s\n[transport]\ndriver = loop\n",
		     3, "retry_max_backoff");
	expect_error("[engine]\nnode_id = a\nidle_min_sleep = 1ms\nidle_max_sleep = 1us\n"
		     "[transport]\ndriver = loop\n",
		     4, "idle_max_sleep");
	expect_error("[engine]\nnode_id = a\nchannel_ring_bytes = 1000\n[transport]\ndriver = loop\n",
		     3, "channel_ring_bytes");
	expect_error("[engine]\nnode_id = a\nretry_initial_backoff = 2s\n\nretry_max_backoff = 1s\n"
		     "[transport]\ndriver = loop\n",
		     5, "retry_max_backoff");
	/* max_peers = 1: the second [peer] is the one too many */
	expect_error("[engine]\nnode_id = a\nmax_peers = 1\n[transport]\ndriver = loop\n"
		     "[peer b]\ntransport = loop b:1\n[peer c]\ntransport = loop c:1\n",
		     8, "max_peers");
	/* keys the file never set: the path only */
	expect_error("[engine]\nnode_id = a\n", 0, "transports");
	expect_error("[transport]\ndriver = loop\n", 0, "node_id: required");
}

/* ---- the dpdk driver's [transport] keys ----------------------------------- */

/* A dpdk [transport] on lines 3..5: its keys start on line 6. */
#define DPDK_ENGINE "[engine]\nnode_id = a\n[transport]\ndriver = dpdk\nlisten = 10.0.0.1:7000\n"

Test(config_file, dpdk_config_init_defaults)
{
	warp_dpdk_config_t c;
	memset(&c, 0xa5, sizeof(c));
	warp_dpdk_config_init(&c);
	cr_assert(c.in_memory);
	cr_assert(c.udp_checksum);
	/* everything else 0 = automatic */
	warp_dpdk_config_t z;
	memset(&z, 0, sizeof(z));
	z.in_memory = true;
	z.udp_checksum = true;
	cr_assert_eq(memcmp(&c, &z, sizeof(c)), 0);
	warp_dpdk_config_init(NULL); /* no crash */
}

Test(config_file, dpdk_transport_every_key_is_parsed)
{
	expect_loaded("[engine]\nnode_id = a\n"
		      "[transport]\n"
		      "driver = dpdk\n"
		      "listen = 10.0.0.1:7000\n"
		      "eal = external\n"
		      "lcores = 1-2\n"
		      "in_memory = no\n"
		      "no_huge = yes\n"
		      "no_pci = yes\n"
		      "file_prefix = warp-a\n"
		      "vdev = net_memif0,role=server,socket=/tmp/x.sock\n"
		      "vdev = net_ring0\n"
		      "pci_allow = 0000:03:00.0\n"
		      "pci_allow = 0000:03:00.1\n"
		      "eal_args = --log-level=lib.eal:debug -n 4\n"
		      "port = net_memif0\n"
		      "queues = 4\n"
		      "queue = 3\n"
		      "rx_desc = 512\n"
		      "tx_desc = 2048\n"
		      "mbufs = 16384\n"
		      "subnet = 24\n"
		      "gateway = 10.0.0.254\n"
		      "neighbor = 10.0.0.2 02:00:00:00:00:02\n"
		      "neighbor = 10.0.0.3   02:AB:cd:00:00:03\n"
		      "udp_checksum = no\n"
		      "link_check = 250ms\n"
		      "arp_retry = 50ms\n"
		      "arp_reachable = 5s\n"
		      "[transport]\n"
		      "driver = uring-udp\n"
		      "listen = 127.0.0.1:7000\n"
		      "[peer b]\n"
		      "transport = dpdk 10.0.0.2:7000\n"
		      "transport = uring-udp 127.0.0.1:7001\n");
	const warp_dpdk_config_t *d = &f->dpdk[0];
	cr_assert_str_eq(f->cfg.transports[0].driver, "dpdk");
	cr_assert_str_eq(f->cfg.transports[0].listen, "10.0.0.1:7000");
	cr_assert_eq(f->cfg.transports[0].driver_arg, d);
	cr_assert(d->eal_external);
	cr_assert_str_eq(d->lcores, "1-2");
	cr_assert(!d->in_memory);
	cr_assert(d->no_huge);
	cr_assert(d->no_pci);
	cr_assert_str_eq(d->file_prefix, "warp-a");
	cr_assert_eq(d->n_vdevs, 2);
	cr_assert_str_eq(d->vdevs[0], "net_memif0,role=server,socket=/tmp/x.sock");
	cr_assert_str_eq(d->vdevs[1], "net_ring0");
	cr_assert_eq(d->n_pci_allow, 2);
	cr_assert_str_eq(d->pci_allow[0], "0000:03:00.0");
	cr_assert_str_eq(d->pci_allow[1], "0000:03:00.1");
	cr_assert_str_eq(d->eal_extra, "--log-level=lib.eal:debug -n 4");
	cr_assert_str_eq(d->port, "net_memif0");
	cr_assert_eq(d->queues, 4);
	cr_assert_eq(d->queue, 3);
	cr_assert_eq(d->rx_desc, 512);
	cr_assert_eq(d->tx_desc, 2048);
	cr_assert_eq(d->mbufs, 16384);
	cr_assert_eq(d->prefix_len, 24);
	cr_assert_str_eq(d->gateway, "10.0.0.254");
	cr_assert_eq(d->n_neigh, 2);
	cr_assert_str_eq(d->neigh[0].ip, "10.0.0.2");
	cr_assert_str_eq(d->neigh[0].mac, "02:00:00:00:00:02");
	cr_assert_str_eq(d->neigh[1].ip, "10.0.0.3");
	cr_assert_str_eq(d->neigh[1].mac, "02:AB:cd:00:00:03");
	cr_assert(!d->udp_checksum);
	cr_assert_eq(d->link_check_ns, 250000000ull);
	cr_assert_eq(d->arp_retry_ns, 50000000ull);
	cr_assert_eq(d->arp_reachable_ns, 5000000000ull);
	for (size_t j = 0; j < WARP__ARRAY_LEN(d->reserved); j++)
		cr_assert_eq(d->reserved[j], 0);
	/* the uring-udp transport: no driver_arg, its dpdk slot all zero */
	cr_assert_eq(f->cfg.transports[1].driver_arg, NULL);
	warp_dpdk_config_t z;
	memset(&z, 0, sizeof(z));
	cr_assert_eq(memcmp(&f->dpdk[1], &z, sizeof(z)), 0);
}

Test(config_file, dpdk_transport_without_keys_gets_the_defaults)
{
	expect_loaded(DPDK_ENGINE);
	warp_dpdk_config_t def;
	warp_dpdk_config_init(&def);
	cr_assert_eq(memcmp(&f->dpdk[0], &def, sizeof(def)), 0);
	cr_assert_eq(f->cfg.transports[0].driver_arg, &f->dpdk[0]);
}

Test(config_file, dpdk_driver_arg_points_into_the_file_struct)
{
	/* the dpdk transport second: driver_arg is dpdk[1], same index */
	expect_loaded("[engine]\nnode_id = a\n"
		      "[transport]\ndriver = uring-udp\nlisten = 127.0.0.1:7000\n"
		      "[transport]\nport = net_ring0\ndriver = dpdk\nlisten = 10.0.0.1:7000\n");
	cr_assert_eq(f->cfg.transports[0].driver_arg, NULL);
	cr_assert_eq(f->cfg.transports[1].driver_arg, &f->dpdk[1]);
	cr_assert_str_eq(f->dpdk[1].port, "net_ring0");
	const char *lo = (const char *)f, *hi = lo + sizeof(*f);
	const char *p = f->cfg.transports[1].driver_arg;
	cr_assert(p >= lo && p + sizeof(warp_dpdk_config_t) <= hi);
	cr_assert_eq(f->cfg.peers, f->peers);
}

Test(config_file, dpdk_keys_may_come_before_the_driver)
{
	expect_loaded("[engine]\nnode_id = a\n[transport]\n"
		      "vdev = net_ring0\nqueue = 1\nqueues = 2\nsubnet = 16\n"
		      "gateway = 10.0.255.254\n"
		      "driver = dpdk\nlisten = 10.0.0.1:7000\n");
	const warp_dpdk_config_t *d = &f->dpdk[0];
	cr_assert_eq(d->n_vdevs, 1);
	cr_assert_eq(d->queue, 1);
	cr_assert_eq(d->queues, 2);
	cr_assert_eq(d->prefix_len, 16);
	cr_assert(d->in_memory); /* defaults under the keys */
	cr_assert(d->udp_checksum);
	cr_assert_eq(f->cfg.transports[0].driver_arg, d);
}

Test(config_file, dpdk_bad_values_name_the_key_at_its_line)
{
	static const struct {
		const char *line; /* the key = value on line 6 */
		const char *key;  /* named in the detail */
		const char *what; /* and this */
	} cases[] = {
		{ "eal = internal", "eal", "external" },
		{ "eal =", "eal", "empty value" },
		{ "lcores = 1 2", "lcores", "CPU list" },
		{ "lcores = all", "lcores", "CPU list" },
		{ "in_memory = maybe", "in_memory", "yes or no" },
		{ "no_huge = 2", "no_huge", "yes or no" },
		{ "no_pci = y", "no_pci", "yes or no" },
		{ "udp_checksum = hw", "udp_checksum", "yes or no" },
		{ "file_prefix = a/b", "file_prefix", "'/'" },
		{ "file_prefix = a b", "file_prefix", "blanks" },
		{ "vdev = net_ring0 net_ring1", "vdev", "blanks" },
		{ "pci_allow = 0000:03:00.0 0000:03:00.1", "pci_allow", "blanks" },
		{ "port = net memif", "port", "blanks" },
		{ "queues = 0", "queues", "1..64" },
		{ "queues = 65", "queues", "1..64" },
		{ "queues = two", "queues", "not a number" },
		{ "queue = 64", "queue", "0..63" },
		{ "queue = -1", "queue", "not a number" },
		{ "rx_desc = 0", "rx_desc", "1..65535" },
		{ "tx_desc = 65536", "tx_desc", "1..65535" },
		{ "mbufs = 4294967296", "mbufs", "out of range" },
		{ "mbufs = 8K", "mbufs", "not a number" },
		{ "subnet = 33", "subnet", "0..32" },
		{ "subnet = 255.255.255.0", "subnet", "not a number" },
		{ "subnet = /24", "subnet", "not a number" },
		{ "gateway = 10.0.0", "gateway", "not an IPv4 address" },
		{ "gateway = 10.0.0.256", "gateway", "not an IPv4 address" },
		{ "gateway = fe80::1", "gateway", "not an IPv4 address" },
		{ "gateway = router.lan", "gateway", "not an IPv4 address" },
		{ "neighbor = 10.0.0.2", "neighbor", "expected '<IPv4 address> <MAC address>'" },
		{ "neighbor = 10.0.0.2 02:00:00:00:00:02 x", "neighbor", "expected" },
		{ "neighbor = 10.0.0.x 02:00:00:00:00:02", "neighbor", "not an IPv4 address" },
		{ "neighbor = 10.0.0.2 02:00:00:00:00", "neighbor", "not a MAC address" },
		{ "neighbor = 10.0.0.2 02-00-00-00-00-02", "neighbor", "not a MAC address" },
		{ "neighbor = 10.0.0.2 02:00:00:00:00:0g", "neighbor", "not a MAC address" },
		{ "neighbor = 10.0.0.2 2:0:0:0:0:2", "neighbor", "not a MAC address" },
		{ "link_check = 100", "link_check", "unit" },
		{ "arp_retry = 1min", "arp_retry", "duration unit" },
	};
	for (size_t i = 0; i < WARP__ARRAY_LEN(cases); i++) {
		char t[512];
		snprintf(t, sizeof(t), DPDK_ENGINE "%s\n", cases[i].line);
		expect_error(t, 6, cases[i].key);
		cr_assert_not_null(strstr(warp_errdetail(), cases[i].what), "'%s': %s",
				   cases[i].line, warp_errdetail());
	}
}

Test(config_file, dpdk_strings_longer_than_their_field)
{
	static const struct {
		const char *key;
		size_t max; /* characters, NUL excluded */
		char fill;
	} cases[] = {
		{ "lcores", 63, '1' },
		{ "file_prefix", 63, 'p' },
		{ "port", 63, 'n' },
		{ "pci_allow", 31, '0' },
	};
	for (size_t i = 0; i < WARP__ARRAY_LEN(cases); i++) {
		char v[128], t[512], lim[16];
		memset(v, cases[i].fill, cases[i].max);
		v[cases[i].max] = '\0';
		snprintf(t, sizeof(t), DPDK_ENGINE "%s = %s\n", cases[i].key, v);
		expect_loaded(t); /* exactly the limit fits */
		memset(v, cases[i].fill, cases[i].max + 1);
		v[cases[i].max + 1] = '\0';
		snprintf(t, sizeof(t), DPDK_ENGINE "%s = %s\n", cases[i].key, v);
		expect_error(t, 6, cases[i].key);
		snprintf(lim, sizeof(lim), "%zu characters", cases[i].max);
		cr_assert_not_null(strstr(warp_errdetail(), lim), "%s", warp_errdetail());
	}
	cr_assert_str_eq(f->dpdk[0].pci_allow[0], "", "nothing stored on error");
}

Test(config_file, dpdk_repeatable_keys_and_their_limits)
{
	char t[2048];
	size_t n = (size_t)snprintf(t, sizeof(t), DPDK_ENGINE);
	for (int i = 0; i <= WARP_DPDK_MAX_VDEVS; i++)
		n += (size_t)snprintf(t + n, sizeof(t) - n, "vdev = net_ring%d\n", i);
	expect_error(t, 6 + WARP_DPDK_MAX_VDEVS, "vdev");
	cr_assert_not_null(strstr(warp_errdetail(), "too many"), "%s", warp_errdetail());
	cr_assert_eq(f->dpdk[0].n_vdevs, WARP_DPDK_MAX_VDEVS);

	n = (size_t)snprintf(t, sizeof(t), DPDK_ENGINE);
	for (int i = 0; i <= WARP_DPDK_MAX_ALLOW; i++)
		n += (size_t)snprintf(t + n, sizeof(t) - n, "pci_allow = 0000:0%d:00.0\n", i);
	expect_error(t, 6 + WARP_DPDK_MAX_ALLOW, "pci_allow");
	cr_assert_not_null(strstr(warp_errdetail(), "too many"), "%s", warp_errdetail());

	n = (size_t)snprintf(t, sizeof(t), DPDK_ENGINE);
	for (int i = 0; i < WARP_DPDK_MAX_NEIGH; i++)
		n += (size_t)snprintf(t + n, sizeof(t) - n,
				      "neighbor = 10.0.1.%d 02:00:00:00:01:%02x\n", i, i);
	expect_loaded(t); /* the maximum fits */
	cr_assert_eq(f->dpdk[0].n_neigh, WARP_DPDK_MAX_NEIGH);
	cr_assert_str_eq(f->dpdk[0].neigh[WARP_DPDK_MAX_NEIGH - 1].ip, "10.0.1.15");
	snprintf(t + n, sizeof(t) - n, "neighbor = 10.0.2.1 02:00:00:00:02:01\n");
	expect_error(t, 6 + WARP_DPDK_MAX_NEIGH, "neighbor");
	cr_assert_not_null(strstr(warp_errdetail(), "too many"), "%s", warp_errdetail());

	/* the same neighbour twice is a mistake, not an update */
	expect_error(DPDK_ENGINE "neighbor = 10.0.0.2 02:00:00:00:00:02\n"
				 "neighbor = 10.0.0.2 02:00:00:00:00:03\n",
		     7, "neighbor");
	cr_assert_not_null(strstr(warp_errdetail(), "twice"), "%s", warp_errdetail());
}

Test(config_file, dpdk_other_keys_may_not_be_set_twice)
{
	expect_error(DPDK_ENGINE "port = a\nport = b\n", 7, "port");
	cr_assert_not_null(strstr(warp_errdetail(), "set twice"));
	cr_assert_not_null(strstr(warp_errdetail(), "line 6"));
	expect_error(DPDK_ENGINE "queues = 2\nsubnet = 24\nqueues = 2\n", 8, "queues");
	expect_error(DPDK_ENGINE "eal_args = -n 4\neal_args = -n 2\n", 7, "eal_args");
}

Test(config_file, dpdk_queue_must_be_below_queues)
{
	expect_error(DPDK_ENGINE "queues = 2\nqueue = 2\n", 7, "queue");
	cr_assert_not_null(strstr(warp_errdetail(), "not below queues (2)"), "%s",
			   warp_errdetail());
	/* queue first: still reported at the queue line, after the section */
	expect_error(DPDK_ENGINE "queue = 5\nqueues = 4\n\n"
				 "[peer b]\ntransport = dpdk 10.0.0.2:7000\n",
		     6, "queue");
	/* at the end of the file too */
	expect_error(DPDK_ENGINE "queue = 4\nqueues = 4\n", 6, "queue");
	/* no queues: one queue pair, only queue 0 */
	expect_error(DPDK_ENGINE "queue = 1\n", 6, "queue");
	cr_assert_not_null(strstr(warp_errdetail(), "queues is not set"), "%s", warp_errdetail());
	expect_loaded(DPDK_ENGINE "queue = 0\n");
	expect_loaded(DPDK_ENGINE "queue = 3\nqueues = 4\n");
	cr_assert_eq(f->dpdk[0].queue, 3);
}

Test(config_file, dpdk_gateway_needs_a_subnet)
{
	expect_error(DPDK_ENGINE "gateway = 10.0.0.254\n", 6, "gateway");
	cr_assert_not_null(strstr(warp_errdetail(), "subnet"), "%s", warp_errdetail());
	expect_error(DPDK_ENGINE "gateway = 10.0.0.254\nsubnet = 0\n", 6, "gateway");
	expect_loaded(DPDK_ENGINE "gateway = 10.0.0.254\nsubnet = 24\n");
	expect_loaded(DPDK_ENGINE "subnet = 24\n"); /* a subnet without a gateway: fine */
}

Test(config_file, dpdk_key_under_another_driver_names_the_key_and_the_driver)
{
	/* driver first: the error is at the dpdk key */
	expect_error("[engine]\nnode_id = a\n[transport]\ndriver = uring-udp\n"
		     "listen = 127.0.0.1:7000\nvdev = net_ring0\n",
		     6, "vdev");
	cr_assert_not_null(strstr(warp_errdetail(), "uring-udp"), "%s", warp_errdetail());
	cr_assert_not_null(strstr(warp_errdetail(), "dpdk"), "%s", warp_errdetail());
	/* driver last: still at the (first) dpdk key, naming the driver */
	expect_error("[engine]\nnode_id = a\n[transport]\nlisten = 127.0.0.1:7000\n"
		     "subnet = 24\nqueues = 2\ndriver = uring-udp\n",
		     5, "subnet");
	cr_assert_not_null(strstr(warp_errdetail(), "uring-udp"), "%s", warp_errdetail());
	cr_assert_not_null(strstr(warp_errdetail(), "line 7"), "%s", warp_errdetail());
	/* a dpdk section before it does not count */
	expect_error(DPDK_ENGINE "port = net_ring0\n[transport]\ndriver = loop\nport = x\n", 9,
		     "port");
	cr_assert_not_null(strstr(warp_errdetail(), "'loop'"), "%s", warp_errdetail());
	/* the socket keys stay allowed everywhere (drivers ignore what is not theirs) */
	expect_loaded(DPDK_ENGINE "sock_buf_bytes = 1M\n");
}

/* ---- engines from files --------------------------------------------------- */

#define SMALL_POOLS                                                                    \
	"max_payload_bytes = 64K\ntx_arena_bytes = 1M\nrx_arena_bytes = 1M\npkt_pool = 256\n" \
	"max_tx_msgs = 64\nmax_peers = 4\nmax_streams = 4\nmax_reassembly = 8\n"

/* load + set the loop net + create (the file cannot name the net) */
static int engine_from_loop_file(const char *text, warp_loop_net_t *net, warp_engine_t **e)
{
	int rc = load(text);
	cr_assert_eq(rc, 0, "load: %s", warp_errdetail());
	for (uint32_t i = 0; i < f->cfg.n_transports; i++)
		if (!strcmp(f->cfg.transports[i].driver, "loop"))
			f->cfg.transports[i].driver_arg = net;
	warp__err_clear();
	return warp__config_file_engine_create(f, e);
}

static void expect_detail_at(const char *d, unsigned line, const char *what)
{
	char want[256];
	snprintf(want, sizeof(want), "%s:%u: ", tpath, line);
	cr_assert_eq(strncmp(d, want, strlen(want)), 0, "detail \"%s\" does not start with \"%s\"",
		     d, want);
	cr_assert_not_null(strstr(d, what), "detail \"%s\" does not name \"%s\"", d, what);
}

Test(config_file, engine_from_file_runs_a_loaded_config)
{
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
	warp_engine_t *e = NULL;
	int rc = engine_from_loop_file("[engine]\nnode_id = a\n" SMALL_POOLS
				       "[transport]\ndriver = loop\nlisten = a:1\n"
				       "[peer b]\ntransport = loop b:1\n",
				       net, &e);
	cr_assert_eq(rc, 0, "%s", warp_errdetail());
	cr_assert_str_eq(warp_engine_node_id(e), "a");
	warp_peer_t *b = NULL;
	cr_assert_eq(warp_peer_find(e, "b", &b), 0, "%s", warp_errdetail());
	cr_assert_not_null(b);
	warp_engine_destroy(e);
	warp_loop_net_destroy(net);
}

Test(config_file, engine_error_on_a_duplicate_driver_names_the_second_transport)
{
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
	warp_engine_t *e = NULL;
	int rc = engine_from_loop_file("[engine]\n"	     /* 1 */
				       "node_id = a\n" SMALL_POOLS /* 2..10 */
				       "[transport]\n"	     /* 11 */
				       "driver = loop\n"	     /* 12 */
				       "listen = a:1\n"	     /* 13 */
				       "\n"		     /* 14 */
				       "[transport]\n"	     /* 15 */
				       "driver = loop\n"	     /* 16 */
				       "listen = a:2\n",	     /* 17 */
				       net, &e);
	cr_assert_eq(rc, WARP_ECONFIG, "rc %d: %s", rc, warp_errdetail());
	cr_assert_null(e);
	expect_detail_at(warp_errdetail(), 15, "driver: 'loop' is listed twice");
	warp_loop_net_destroy(net);
}

Test(config_file, engine_error_on_a_peer_names_the_peer_section)
{
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
	warp_engine_t *e = NULL;
	int rc = engine_from_loop_file("[engine]\nnode_id = a\n" SMALL_POOLS /* 1..10 */
				       "[transport]\ndriver = loop\nlisten = a:1\n" /* 11..13 */
				       "[peer b]\ntransport = loop b:1\n"	     /* 14..15 */
				       "[peer a]\ntransport = loop a:9\n",	     /* 16..17 */
				       net, &e);
	cr_assert_eq(rc, WARP_EINVALID_NODE, "rc %d: %s", rc, warp_errdetail());
	expect_detail_at(warp_errdetail(), 16, "own id");
	warp_loop_net_destroy(net);
}

Test(config_file, engine_from_file_maps_a_driver_open_error_to_its_transport)
{
	/* Through the public function the loop driver has no net: its open
	 * fails, and the detail points at that [transport]. */
	write_ini("[engine]\nnode_id = a\n" SMALL_POOLS "\n[transport]\ndriver = loop\nlisten = a:1\n");
	warp_engine_t *e = NULL;
	warp__err_clear();
	int rc = warp_engine_create_from_file(tpath, &e);
	cr_assert_eq(rc, WARP_EDRIVER, "rc %d: %s", rc, warp_errdetail());
	cr_assert_null(e);
	expect_detail_at(warp_errdetail(), 12, "loop");
}

Test(config_file, engine_from_file_duplicate_uring_udp_names_the_second_transport)
{
	if (!warp__driver_find("uring-udp"))
		cr_skip("uring-udp is not built in (%s)", warp__driver_names());
	write_ini("[engine]\nnode_id = a\n" SMALL_POOLS		  /* 1..10 */
		  "[transport]\ndriver = uring-udp\nlisten = 127.0.0.1:0\n" /* 11..13 */
		  "[transport]\ndriver = uring-udp\nlisten = 127.0.0.1:0\n"); /* 14..16 */
	warp_engine_t *e = NULL;
	warp__err_clear();
	int rc = warp_engine_create_from_file(tpath, &e);
	const char *d = warp_errdetail();
	if (rc == WARP_EDRIVER && strstr(d, ":11: "))
		cr_skip("uring-udp cannot open here: %s", d);
	cr_assert_eq(rc, WARP_ECONFIG, "rc %d: %s", rc, d);
	expect_detail_at(d, 14, "driver: 'uring-udp' is listed twice");
}

Test(config_file, config_file_struct_is_documented_size)
{
	/* the header says "about 173 KiB: allocate it on the heap" */
	cr_assert_lt(sizeof(warp_config_file_t), 200u << 10);
	cr_assert_gt(sizeof(warp_config_file_t), 120u << 10);
}

Test(config_file, congestion_controller_is_read_and_checked)
{
	char dir[] = "/tmp/warp-cc-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/cc.ini", dir);
	FILE *fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fputs("[engine]\nnode_id = a\ncongestion = none\n[transport]\ndriver = loop\nlisten = a:1\n", fp);
	fclose(fp);
	warp_config_file_t *cf = calloc(1, sizeof(*cf));
	cr_assert_eq(warp_config_load(path, cf), 0, "%s", warp_errdetail());
	cr_assert_str_eq(cf->cfg.congestion, "none");
	fp = fopen(path, "w");
	fputs("[engine]\nnode_id = a\ncongestion = cubic\n[transport]\ndriver = loop\nlisten = a:1\n", fp);
	fclose(fp);
	cr_assert_eq(warp_config_load(path, cf), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), ":3: congestion: 'cubic' is not aimd or none"), "%s",
		  warp_errdetail());
	free(cf);
	unlink(path);
	rmdir(dir);
}

/* ---- secure sessions ------------------------------------------------------- */

#define LOOP_TRANSPORT "[transport]\ndriver = loop\nlisten = a:1\n"

Test(config_file, secure_engine_keys_are_parsed)
{
	int rc = load("[engine]\n"				  /* 1 */
		      "node_id = a\n"				  /* 2 */
		      "encryption = required\n"			  /* 3 */
		      "tls_cert_file = /etc/warp/a.pem\n"	  /* 4 */
		      "tls_key_file = /etc/warp/a.key\n"	  /* 5 */
		      "tls_ca_file = /etc/warp/ca.pem\n"	  /* 6 */
		      "tls_verify_peer = no\n"			  /* 7 */
		      "tls_ciphers = chacha20-poly1305:aes-128-gcm\n" /* 8 */
		      "key_update_packets = 1000000\n"		  /* 9 */
		      "max_handshakes = 4\n"			  /* 10 */
		      "cap = app.rpc 1..3\n"			  /* 11 */
		      "cap = trace-v_2   2..2   required\n"	  /* 12 */
		      "tls_resumption = no\n"			  /* 13 */
		      LOOP_TRANSPORT);
	expect_cert_loaded(rc, tpath, 4);
	const warp_config_t *c = &f->cfg;
	cr_assert_eq(c->encryption, WARP_ENCRYPTION_REQUIRED);
	cr_assert_str_eq(c->tls.cert_file, "/etc/warp/a.pem");
	cr_assert_str_eq(c->tls.key_file, "/etc/warp/a.key");
	cr_assert_str_eq(c->tls.ca_file, "/etc/warp/ca.pem");
	cr_assert_eq(c->tls.verify_peer, 0);
	cr_assert_str_eq(c->tls.ciphers, "chacha20-poly1305:aes-128-gcm");
	cr_assert_eq(c->tls.resumption, 0);
	cr_assert_eq(c->key_update_packets, 1000000ull);
	cr_assert_eq(c->max_handshakes, 4);
	cr_assert_eq(c->n_caps, 2);
	cr_assert_str_eq(c->caps[0].name, "app.rpc");
	cr_assert_eq(c->caps[0].min, 1);
	cr_assert_eq(c->caps[0].max, 3);
	cr_assert_eq(c->caps[0].required, 0);
	cr_assert_str_eq(c->caps[1].name, "trace-v_2");
	cr_assert_eq(c->caps[1].min, 2);
	cr_assert_eq(c->caps[1].max, 2);
	cr_assert_eq(c->caps[1].required, 1);
}

Test(config_file, encryption_off_optional_and_required_without_tls)
{
	static const struct {
		const char *v;
		uint32_t want;
	} cases[] = { { "off", WARP_ENCRYPTION_OFF }, { "optional", WARP_ENCRYPTION_OPTIONAL } };
	for (size_t i = 0; i < WARP__ARRAY_LEN(cases); i++) {
		char t[256];
		snprintf(t, sizeof(t), "[engine]\nnode_id = a\nencryption = %s\n" LOOP_TRANSPORT,
			 cases[i].v);
		cr_assert_eq(load(t), 0, "%s: %s", cases[i].v, warp_errdetail());
		cr_assert_eq(f->cfg.encryption, cases[i].want, "%s", cases[i].v);
	}
	/* required needs this node's certificate: validate's error, at the line of
	 * encryption */
	expect_error("[engine]\nnode_id = a\n\nencryption = required\n" LOOP_TRANSPORT, 4,
		     "encryption: required, but tls.cert_file is not set");
	cr_assert_eq(f->cfg.encryption, WARP_ENCRYPTION_REQUIRED);
}

Test(config_file, tls_verify_peer_takes_every_bool_spelling)
{
	static const struct {
		const char *v;
		uint32_t want;
	} cases[] = { { "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 },
		      { "1", 1 },   { "0", 0 },  { "on", 1 },   { "off", 0 } };
	for (size_t i = 0; i < WARP__ARRAY_LEN(cases); i++) {
		char t[256];
		snprintf(t, sizeof(t), "[engine]\nnode_id = a\ntls_verify_peer = %s\n" LOOP_TRANSPORT,
			 cases[i].v);
		cr_assert_eq(load(t), 0, "%s: %s", cases[i].v, warp_errdetail());
		cr_assert_eq(f->cfg.tls.verify_peer, cases[i].want, "%s", cases[i].v);
	}
}

Test(config_file, tls_relative_paths_are_taken_from_the_config_files_directory)
{
	int rc = load("[engine]\nnode_id = a\n"
		      "tls_cert_file = certs/a.pem\n" /* 3 */
		      "tls_key_file = ./a.key\n"
		      "tls_ca_file = /abs/ca.pem\n" LOOP_TRANSPORT);
	expect_cert_loaded(rc, tpath, 3); /* the files do not exist: loading opens none */
	char want[256];
	snprintf(want, sizeof(want), "%s/certs/a.pem", tmpdir);
	cr_assert_str_eq(f->cfg.tls.cert_file, want);
	snprintf(want, sizeof(want), "%s/./a.key", tmpdir);
	cr_assert_str_eq(f->cfg.tls.key_file, want);
	cr_assert_str_eq(f->cfg.tls.ca_file, "/abs/ca.pem", "absolute: unchanged");

	/* a config path without a directory: relative to the working directory,
	 * which is the config's */
	char cwd[PATH_MAX];
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(tmpdir), 0);
	warp__err_clear();
	rc = warp_config_load("test.ini", f);
	cr_assert_eq(chdir(cwd), 0);
	expect_cert_loaded(rc, "test.ini", 3);
	cr_assert_str_eq(f->cfg.tls.cert_file, "certs/a.pem");
	cr_assert_str_eq(f->cfg.tls.key_file, "./a.key");
}

Test(config_file, tls_path_too_long_once_resolved_names_the_key)
{
	/* a line holds 198 characters, so only a long config path can make a
	 * relative name too long for its 255 */
	char sub[320], path[400];
	char name[201];
	memset(name, 'd', 200);
	name[200] = '\0';
	snprintf(sub, sizeof(sub), "%s/%s", tmpdir, name);
	cr_assert_eq(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/t.ini", sub);
	cr_assert_lt(strlen(path), 256);
	FILE *fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fputs("[engine]\nnode_id = a\n"
	      "tls_ca_file = certs/ca.pem\n"				  /* 3: fits */
	      "tls_cert_file = certs/a-certificate-with-a-long-name.pem\n" /* 4 */
	      LOOP_TRANSPORT,
	      fp);
	fclose(fp);
	warp__err_clear();
	int rc = warp_config_load(path, f);
	char want[600];
	snprintf(want, sizeof(want), "%s:4: tls_cert_file: 'certs/a-certificate", path);
	const char *d = warp_errdetail();
	unlink(path);
	rmdir(sub);
	cr_assert_eq(rc, WARP_ECONFIG, "rc %d: %s", rc, d);
	cr_assert_eq(strncmp(d, want, strlen(want)), 0, "detail \"%s\", want \"%s...\"", d, want);
	cr_assert_not_null(strstr(d, "longer than 255 characters"), "%s", d);
	cr_assert_eq(strncmp(f->cfg.tls.ca_file, sub, strlen(sub)), 0, "%s", f->cfg.tls.ca_file);
}

Test(config_file, secure_bad_values_name_the_key_at_its_line)
{
#define E3(kv) "[engine]\nnode_id = a\n" kv "\n" LOOP_TRANSPORT
	expect_error(E3("encryption = maybe"), 3,
		     "encryption: 'maybe' is not off, optional or required");
	expect_error(E3("encryption = Required"), 3, "is not off, optional or required");
	expect_error(E3("encryption ="), 3, "encryption: empty value");
	expect_error(E3("tls_verify_peer = perhaps"), 3,
		     "tls_verify_peer: 'perhaps' is not yes or no");
	expect_error(E3("tls_cert_file ="), 3, "tls_cert_file: empty value");
	expect_error(E3("tls_ciphers = aes-128-gcm:chacha20-poly1305:aes-128-gcm:"
			"chacha20-poly1305:aes-128-gcm"),
		     3, "tls_ciphers");
	cr_assert_not_null(strstr(warp_errdetail(), "longer than 63 characters"));
	expect_error(E3("key_update_packets = 4M"), 3, "key_update_packets: '4M' is not a number");
	expect_error(E3("key_update_packets = 99999999999999999999"), 3, "key_update_packets");
	cr_assert_not_null(strstr(warp_errdetail(), "out of range"));
	expect_error(E3("max_handshakes = many"), 3, "max_handshakes: 'many' is not a number");
	expect_error(E3("max_handshakes = 4294967296"), 3, "max_handshakes");
	cr_assert_not_null(strstr(warp_errdetail(), "out of range"));
	expect_error("[engine]\nnode_id = a\nencryption = off\ntls_ciphers = x\n"
		     "encryption = required\n" LOOP_TRANSPORT,
		     5, "encryption: set twice in [engine] (first on line 3)");
#undef E3
}

Test(config_file, cap_syntax_errors)
{
	static const struct {
		const char *v;
		const char *what;
	} cases[] = {
		{ "app", "cap: 'app' is not '<name> <min>..<max> [required]'" },
		{ "app 1-2", "is not '<name> <min>..<max> [required]'" },
		{ "app 1 .. 2", "is not '<name> <min>..<max> [required]'" },
		{ "app 1..2 optional", "is not '<name> <min>..<max> [required]'" },
		{ "app 1..2 required x", "is not '<name> <min>..<max> [required]'" },
		{ "app 1..2..3", "cap: 'app 1..2..3': version '2..3' is not a number" },
		{ "app a..2", "version 'a' is not a number" },
		{ "app ..2", "version '' is not a number" },
		{ "app 1..", "version '' is not a number" },
		{ "app 1..+2", "version '+2' is not a number" },
		{ "app 0..2", "cap: 'app 0..2': version 0 is out of range (1..65535)" },
		{ "app 1..65536", "version 65536 is out of range (1..65535)" },
		{ "app 1..99999999999999999999999", "is out of range (1..65535)" },
		{ "a-name-of-thirty-two-characters. 1..2",
		  "cap: name 'a-name-of-thirty-two-characters.' is longer than 31 characters" },
	};
	for (size_t i = 0; i < WARP__ARRAY_LEN(cases); i++) {
		char t[256];
		snprintf(t, sizeof(t), "[engine]\nnode_id = a\ncap = x 1..1\ncap = %s\n" LOOP_TRANSPORT,
			 cases[i].v);
		expect_error(t, 4, cases[i].what);
	}
	/* 65535 and 31 characters are fine */
	expect_loaded("[engine]\nnode_id = a\ncap = a-name-of-thirty-one-characters 65535..65535\n"
		      LOOP_TRANSPORT);
	cr_assert_eq(f->cfg.caps[0].min, 65535);
}

Test(config_file, cap_is_repeated_up_to_max_caps)
{
	char t[1024];
	size_t n = (size_t)snprintf(t, sizeof(t), "[engine]\nnode_id = a\n");
	for (int i = 0; i < WARP_MAX_CAPS; i++) /* lines 3..10 */
		n += (size_t)snprintf(t + n, sizeof(t) - n, "cap = c%d %d..%d%s\n", i, i + 1, i + 2,
				      i % 2 ? " required" : "");
	snprintf(t + n, sizeof(t) - n, LOOP_TRANSPORT);
	expect_loaded(t);
	cr_assert_eq(f->cfg.n_caps, WARP_MAX_CAPS);
	for (int i = 0; i < WARP_MAX_CAPS; i++) {
		char name[8];
		snprintf(name, sizeof(name), "c%d", i);
		cr_assert_str_eq(f->cfg.caps[i].name, name);
		cr_assert_eq(f->cfg.caps[i].min, i + 1);
		cr_assert_eq(f->cfg.caps[i].max, i + 2);
		cr_assert_eq(f->cfg.caps[i].required, (uint32_t)(i % 2));
	}
	/* one more: an error at its line */
	snprintf(t + n, sizeof(t) - n, "cap = more 1..1\n" LOOP_TRANSPORT);
	expect_error(t, 3 + WARP_MAX_CAPS, "cap: at most 8");
}

Test(config_file, validation_errors_of_secure_keys_point_at_their_line)
{
	expect_error("[engine]\nnode_id = a\n\ntls_ciphers = aes-256-gcm\n" LOOP_TRANSPORT, 4,
		     "tls_ciphers: tls.ciphers: 'aes-256-gcm' is not");
	expect_error("[engine]\nnode_id = a\ntls_ciphers = aes-128-gcm:aes-128-gcm\n" LOOP_TRANSPORT,
		     3, "tls.ciphers");
	expect_error("[engine]\nnode_id = a\nkey_update_packets = 8\n" LOOP_TRANSPORT, 3,
		     "key_update_packets: 8 is outside 16..2^40");
	expect_error("[engine]\nnode_id = a\nmax_handshakes = 0\n" LOOP_TRANSPORT, 3,
		     "max_handshakes: 0 is outside 1..65536");
	/* caps: validate names the entry; the error is at that entry's line */
	expect_error("[engine]\nnode_id = a\ncap = ok 1..1\ncap = Bad 1..1\n" LOOP_TRANSPORT, 4,
		     "cap: caps[1].name: 'Bad' is not");
	expect_error("[engine]\nnode_id = a\ncap = a 1..2\nmtu = 1400\ncap = b 1..1\ncap = a 2..3\n"
		     LOOP_TRANSPORT,
		     6, "caps[2].name: 'a' listed twice");
	expect_error("[engine]\nnode_id = a\ncap = warp 1..1\n" LOOP_TRANSPORT, 3,
		     "caps[0].name: 'warp' is built in");
	expect_error("[engine]\nnode_id = a\ncap = a 1..1\ncap = x 3..2 required\n" LOOP_TRANSPORT,
		     4, "caps[1] 'x': versions 3..2");
	/* the certificate's companions: reported at the tls_cert_file line that
	 * needs them (without TLS: the certificate itself is refused there) */
	expect_error("[engine]\nnode_id = a\nmtu = 1400\ntls_cert_file = a.pem\n" LOOP_TRANSPORT, 4,
		     TLS_BUILT ? "tls_cert_file: tls.key_file: required with tls.cert_file"
			       : NO_TLS_DETAIL);
	expect_error("[engine]\nnode_id = a\ntls_cert_file = a.pem\ntls_key_file = a.key\n"
		     LOOP_TRANSPORT,
		     3, TLS_BUILT ? "tls_cert_file: tls.ca_file: required" : NO_TLS_DETAIL);
	int rc = load("[engine]\nnode_id = a\ntls_cert_file = a.pem\ntls_key_file = a.key\n"
		      "tls_verify_peer = no\n" LOOP_TRANSPORT);
	expect_cert_loaded(rc, tpath, 3);
}

Test(config_file, peer_encryption)
{
	expect_loaded(MIN_ENGINE "[peer b]\ntransport = loop b:1\nencryption = off\n"
				 "[peer c]\nencryption = optional\ntransport = loop c:1\n"
				 "[peer d]\ntransport = loop d:1\n");
	cr_assert_eq(f->cfg.n_peers, 3);
	cr_assert_eq(f->peers[0].encryption, WARP_ENCRYPTION_OFF);
	cr_assert_eq(f->peers[0].n_transports, 1);
	cr_assert_eq(f->peers[1].encryption, WARP_ENCRYPTION_OPTIONAL);
	cr_assert_eq(f->peers[1].n_transports, 1);
	cr_assert_eq(f->peers[2].encryption, WARP_ENCRYPTION_DEFAULT, "unset: the engine's");

	expect_error(MIN_ENGINE "[peer b]\ntransport = loop b:1\nencryption = yes\n", 8,
		     "encryption: 'yes' is not off, optional or required");
	cr_assert_not_null(strstr(warp_errdetail(), ":8: encryption:"), "%s", warp_errdetail());
	expect_error(MIN_ENGINE "[peer b]\nencryption = off\ntransport = loop b:1\nencryption = off\n",
		     9, "encryption: set twice in [peer b] (first on line 7)");
	/* a peer that requires encryption needs this node's certificate: at the
	 * line of that peer's encryption */
	expect_error("[engine]\nnode_id = a\nencryption = optional\n" LOOP_TRANSPORT
		     "[peer b]\ntransport = loop b:1\n"	/* 7..8 */
		     "[peer c]\ntransport = loop c:1\n"	/* 9..10 */
		     "encryption = required\n",		/* 11 */
		     11, "encryption: required, but tls.cert_file is not set");
	/* the engine's required wins over a peer's */
	expect_error("[engine]\nnode_id = a\nencryption = required\n" LOOP_TRANSPORT
		     "[peer b]\ntransport = loop b:1\nencryption = required\n",
		     3, "encryption: required");
}

/* Loads config/<name>, which names certificates. */
static void load_secure_example(const char *name)
{
	char dir[PATH_MAX], p[PATH_MAX + 64];
	config_dir(dir, sizeof(dir));
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	warp__err_clear();
	int rc = warp_config_load(p, f);
	if (!TLS_BUILT) {
		cr_assert_eq(rc, WARP_ECONFIG, "%s: rc %d: %s", name, rc, warp_errdetail());
		cr_assert_not_null(strstr(warp_errdetail(), NO_TLS_DETAIL), "%s: %s", name,
				   warp_errdetail());
	} else {
		cr_assert_eq(rc, 0, "%s: %s", name, warp_errdetail());
	}
}

Test(config_file, secure_examples_are_a_pair_with_certs_next_to_them)
{
	char dir[PATH_MAX];
	config_dir(dir, sizeof(dir));
	static const char *const names[2] = { "secure-a.ini", "secure-b.ini" };
	static const char *const node[2] = { "a", "b" };
	char listen[2][WARP_ADDR_STR_MAX], peer[2][WARP_ADDR_STR_MAX];
	for (int i = 0; i < 2; i++) {
		load_secure_example(names[i]);
		const warp_config_t *c = &f->cfg;
		cr_assert_str_eq(c->node_id, node[i]);
		cr_assert_eq(c->encryption, WARP_ENCRYPTION_REQUIRED, "%s", names[i]);
		char want[PATH_MAX + 32];
		snprintf(want, sizeof(want), "%s/certs/%s.pem", dir, node[i]);
		cr_assert_str_eq(c->tls.cert_file, want);
		snprintf(want, sizeof(want), "%s/certs/%s.key", dir, node[i]);
		cr_assert_str_eq(c->tls.key_file, want);
		snprintf(want, sizeof(want), "%s/certs/ca.pem", dir);
		cr_assert_str_eq(c->tls.ca_file, want);
		cr_assert_eq(c->tls.verify_peer, 1);
		cr_assert_eq(c->n_transports, 1);
		cr_assert_str_eq(c->transports[0].driver, "uring-udp");
		snprintf(listen[i], sizeof(listen[i]), "%s", c->transports[0].listen);
		cr_assert_eq(c->n_peers, 1);
		cr_assert_str_eq(f->peers[0].node, node[1 - i]);
		cr_assert_str_eq(f->peers[0].transports[0].driver, "uring-udp");
		snprintf(peer[i], sizeof(peer[i]), "%s", f->peers[0].transports[0].addr);
	}
	cr_assert_eq(strncmp(listen[0], "127.0.0.1:", 10), 0, "%s", listen[0]);
	cr_assert_str_eq(peer[0], listen[1]);
	cr_assert_str_eq(peer[1], listen[0]);
}

/* A socket of this type bound (and for TCP listening) on 127.0.0.1: its
 * port is in use until closed. */
static int hold_port(int type, unsigned *port)
{
	int fd = socket(AF_INET, type, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sl), 0);
	if (type == SOCK_STREAM)
		cr_assert_eq(listen(fd, 1), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void listen_errors_name_the_listen_line(const char *drv, int type)
{
	if (!warp__driver_find(drv))
		cr_skip("%s is not built in (%s)", drv, warp__driver_names());
	unsigned port;
	int fd = hold_port(type, &port);
	char ini[1024];
	snprintf(ini, sizeof(ini),
		 "[engine]\nnode_id = a\n" SMALL_POOLS /* 1..10 */
		 "[transport]\n"		       /* 11 */
		 "driver = %s\n"		       /* 12 */
		 "listen = 127.0.0.1:%u\n",	       /* 13 */
		 drv, port);
	write_ini(ini);
	warp_engine_t *e = NULL;
	warp__err_clear();
	int rc = warp_engine_create_from_file(tpath, &e);
	cr_assert_eq(rc, WARP_EDRIVER, "rc %d: %s", rc, warp_errdetail());
	cr_assert_null(e);
	expect_detail_at(warp_errdetail(), 13, "port in use");
	expect_detail_at(warp_errdetail(), 13, "listen '127.0.0.1:");
	close(fd);

	snprintf(ini, sizeof(ini),
		 "[engine]\nnode_id = a\n" SMALL_POOLS
		 "[transport]\n"
		 "driver = %s\n"
		 "\n"				     /* 13 */
		 "listen = no-such-host.invalid:7000\n", /* 14 */
		 drv);
	write_ini(ini);
	warp__err_clear();
	rc = warp_engine_create_from_file(tpath, &e);
	cr_assert_neq(rc, 0);
	cr_assert_null(e);
	expect_detail_at(warp_errdetail(), 14, "not resolvable");
	expect_detail_at(warp_errdetail(), 14, "listen");
}

Test(config_file, uring_udp_listen_errors_name_the_listen_line)
{
	listen_errors_name_the_listen_line("uring-udp", SOCK_DGRAM);
}

Test(config_file, uring_tcp_listen_errors_name_the_listen_line)
{
	listen_errors_name_the_listen_line("uring-tcp", SOCK_STREAM);
}

Test(config_file, unresolvable_peer_address_names_its_transport_line)
{
	if (!warp__driver_find("uring-udp") || !warp__driver_find("uring-tcp"))
		cr_skip("uring-udp or uring-tcp is not built in (%s)", warp__driver_names());
	write_ini("[engine]\nnode_id = a\n" SMALL_POOLS		  /* 1..10 */
		  "[transport]\ndriver = uring-udp\nlisten = 127.0.0.1:0\n" /* 11..13 */
		  "[transport]\ndriver = uring-tcp\nlisten = 127.0.0.1:0\n" /* 14..16 */
		  "[peer b]\n"						  /* 17 */
		  "transport = uring-udp 127.0.0.1:7001\n"		  /* 18 */
		  "transport = uring-tcp no-such-host.invalid:7001\n");	  /* 19 */
	warp_engine_t *e = NULL;
	warp__err_clear();
	int rc = warp_engine_create_from_file(tpath, &e);
	cr_assert_eq(rc, WARP_EINVALID_NODE, "rc %d: %s", rc, warp_errdetail());
	cr_assert_null(e);
	const char *d = warp_errdetail();
	expect_detail_at(d, 19, "transport: peer 'b' (uring-tcp): ");
	expect_detail_at(d, 19, "host 'no-such-host.invalid' not resolvable");
}
