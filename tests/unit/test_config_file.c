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

/* ---- the example files ---------------------------------------------------- */

Test(config_file, every_example_file_loads_and_validates)
{
	char dir[PATH_MAX];
	config_dir(dir, sizeof(dir));
	static const char *const expected[] = { "loopback-udp-a.ini", "loopback-udp-b.ini",
						"loopback-tcp-a.ini", "loopback-tcp-b.ini",
						"cluster-n1.ini",     "cluster-n2.ini",
						"cluster-n3.ini" };
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
		cr_expect_eq(rc, 0, "%s: %s", de->d_name, warp_errdetail());
		if (rc == 0) {
			cr_expect_eq(warp_config_validate(&f->cfg), 0, "%s: %s", de->d_name,
				     warp_errdetail());
			cr_expect_geq(f->cfg.n_transports, 1, "%s", de->d_name);
			cr_expect_geq(f->cfg.n_peers, 1, "%s", de->d_name);
			cr_expect_eq(f->cfg.peers, f->peers);
		}
		for (size_t i = 0; i < WARP__ARRAY_LEN(expected); i++)
			if (!strcmp(expected[i], de->d_name))
				seen |= 1u << i;
		n++;
	}
	closedir(d);
	cr_assert_eq(seen, (1u << WARP__ARRAY_LEN(expected)) - 1,
		     "config/ lacks some of the seven example files (mask %#x)", seen);
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
		      "reuseport = no\nuring_setup = sqpoll\n");
	cr_assert_eq(f->cfg.transports[0].sock_buf_bytes, 8u << 20);
	cr_assert_eq(f->cfg.transports[0].flags,
		     WARP_TRANSPORT_REUSEPORT | WARP_TRANSPORT_URING_COOP);
	cr_assert_eq(f->cfg.transports[1].sock_buf_bytes, 0);
	cr_assert_eq(f->cfg.transports[1].flags, WARP_TRANSPORT_URING_SQPOLL);
	expect_error(MIN_ENGINE "uring_setup = fast\n", 6, "uring_setup");
	expect_error(MIN_ENGINE "reuseport = maybe\n", 6, "reuseport");
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
	/* the header says "about 163 KiB: allocate it on the heap" */
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
