/* SPDX-License-Identifier: Apache-2.0 */
/*
 * warp-bench, the README's main command, run as a user runs it: its table,
 * its JSON, its one-way mode, and its refusals of bad options. meson test
 * passes the binary's path in WARP_BENCH. Latencies are only checked for
 * being present and ordered (p50 <= p90 <= ... <= max), never against a
 * threshold.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char out[16384], err[16384];

static void slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	unlink(path);
}

/* Run warp-bench with args (a shell word list); its stdout and stderr land
 * in out and err. Returns its exit status (-1 when it did not exit). */
static int bench(const char *args)
{
	const char *exe = getenv("WARP_BENCH");
	if (!exe)
		cr_skip_test("WARP_BENCH is not set (meson test sets it to the built warp-bench)");
	char o[] = "/tmp/warp-bench-out-XXXXXX", e[] = "/tmp/warp-bench-err-XXXXXX";
	int fo = mkstemp(o), fe = mkstemp(e);
	cr_assert(fo >= 0 && fe >= 0);
	close(fo);
	close(fe);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' %s >%s 2>%s", exe, args, o, e);
	int st = system(cmd);
	slurp(o, out, sizeof(out));
	slurp(e, err, sizeof(err));
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The number after "key": in a JSON object (the first one of that name). */
static double num(const char *json, const char *key)
{
	char k[64];
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *p = strstr(json, k);
	cr_assert_not_null(p, "no %s in %s", k, json);
	char *end;
	double v = strtod(p + strlen(k), &end);
	cr_assert_neq(end, p + strlen(k), "%s is not a number in %s", k, json);
	return v;
}

static void has(const char *text, const char *what)
{
	cr_assert_not_null(strstr(text, what), "'%s' not in:\n%s", what, text);
}

static void rtt_ordered(const char *json)
{
	const char *rtt = strstr(json, "\"rtt_ns\":");
	cr_assert_not_null(rtt, "%s", json);
	const char *q[] = { "p50", "p90", "p99", "p99.9", "p99.99", "max" };
	double prev = 0;
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		double v = num(rtt, q[i]);
		cr_assert_gt(v, 0, "%s", q[i]);
		cr_assert_geq(v, prev, "%s below the quantile before it: %s", q[i], rtt);
		prev = v;
	}
}

Test(warp_bench, loop_ping_pong_json_has_every_quantile_and_the_settings)
{
	int rc = bench("--driver loop --one-thread --count 2000 --warmup 200 --json");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
	has(out, "\"mode\":\"ping-pong\"");
	has(out, "\"driver\":\"loop\"");
	cr_assert_eq(num(out, "count"), 2000);
	cr_assert_eq(num(out, "warmup"), 200);
	cr_assert_eq(num(out, "size"), 64);
	cr_assert_eq(num(out, "lost"), 0);
	cr_assert_gt(num(out, "round_trips_per_s"), 0);
	cr_assert_gt(num(out, "clock_overhead_ns"), 0, "the measurement overhead is stated");
	rtt_ordered(out);
}

Test(warp_bench, loop_one_way_reports_messages_and_gbits_per_second)
{
	int rc = bench("--driver loop --throughput --count 20000 --size 256 --json");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
	has(out, "\"mode\":\"throughput\"");
	cr_assert_eq(num(out, "count"), 20000);
	cr_assert_eq(num(out, "size"), 256);
	cr_assert_gt(num(out, "msgs_per_s"), 0);
	cr_assert_gt(num(out, "gbit_per_s"), 0);
	cr_assert_eq(num(out, "lost"), 0);
}

/* The README's main command, shortened: two processes over uring-udp on
 * loopback (the server forked and pinned), the table. */
Test(warp_bench, default_driver_prints_the_table, .timeout = 120)
{
	int rc = bench("--count 3000 --warmup 500");
	cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
	has(out, "ping-pong over uring-udp, 64-byte messages");
	has(out, "round trips 3000 (after 500 warm-up)");
	has(out, "lost 0");
	has(out, "RTT (ns)");
	const char *cols[] = { "p50", "p90", "p99", "p99.9", "p99.99", "max" };
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		has(out, cols[i]);
	has(out, "settings: two processes");
	has(out, "clock: ");
	has(out, "ns per reading");
}

Test(warp_bench, uring_tcp_and_dpdk_ping_pong_json, .timeout = 120)
{
	int rc = bench("--driver uring-tcp --count 2000 --warmup 500 --json");
	cr_assert_eq(rc, 0, "uring-tcp exit %d: %s", rc, err);
	has(out, "\"driver\":\"uring-tcp\"");
	cr_assert_eq(num(out, "count"), 2000);
	cr_assert_eq(num(out, "lost"), 0);
	rtt_ordered(out);

	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long free_pages = 0;
	char line[128];
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %lu", &free_pages) == 1)
			break;
	if (f)
		fclose(f);
	if (free_pages < 64)
		cr_skip_test("dpdk half needs free hugepages (echo 1024 > "
			     "/proc/sys/vm/nr_hugepages as root; .ci/run does)");
	rc = bench("--driver dpdk --count 2000 --warmup 2000 --json");
	cr_assert_eq(rc, 0, "dpdk exit %d: %s", rc, err);
	has(out, "\"driver\":\"dpdk\"");
	cr_assert_eq(num(out, "count"), 2000);
	cr_assert_eq(num(out, "lost"), 0);
	rtt_ordered(out);
}

Test(warp_bench, bad_options_are_named_and_refused)
{
	static const struct {
		const char *args, *says;
	} bad[] = {
		{ "--size 12x", "bad value '12x' for --size" },
		{ "--count 0", "bad value '0' for --count" },
		{ "--duration -1", "bad value '-1' for --duration" },
		{ "--inflight 0", "bad value '0' for --inflight" },
		{ "--guarantee sometimes", "bad value 'sometimes' for --guarantee" },
		{ "--cpus 1", "bad value '1' for --cpus" },
		{ "--role neither", "bad value 'neither' for --role" },
		{ "--uring-setup fast", "bad value 'fast' for --uring-setup" },
		{ "--loss 1.5", "bad value '1.5' for --loss" },
		{ "--cipher rot13", "bad value 'rot13' for --cipher" },
		{ "--driver uring-udp --one-thread", "--one-thread is for the loop driver" },
		{ "--driver loop --role server", "the loop driver runs both halves in one process" },
		{ "--no-such-option", "unrecognized option '--no-such-option'" },
		{ "--count 10 stray", "unexpected argument 'stray'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = bench(bad[i].args);
		cr_assert_eq(rc, 2, "%s: exit %d (stderr: %s)", bad[i].args, rc, err);
		cr_assert_not_null(strstr(err, bad[i].says), "%s: '%s' not in: %s", bad[i].args,
				   bad[i].says, err);
	}
	/* a size above max_payload_bytes names the limit */
	int rc = bench("--driver loop --size 99999999999");
	cr_assert_neq(rc, 0);
	has(err, "max_payload_bytes");
	/* a driver that is not built in is refused by the engine of each
	 * half; the first refusal (the server's) is the one printed */
	rc = bench("--driver nosuch --count 10");
	cr_assert_neq(rc, 0);
	const char *first = strstr(err, "'nosuch' is not built in");
	cr_assert_not_null(first, "%s", err);
	cr_assert_null(strstr(first + 1, "'nosuch' is not built in"), "said twice: %s", err);
}
