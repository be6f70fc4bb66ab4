/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "common.h"
#include "warp/warp.h"

/* ---- helpers ------------------------------------------------------------- */

/* The smallest valid configuration: defaults, node "a", one loop transport. */
static void minimal_config(warp_config_t *c)
{
	cr_assert_eq(warp_config_init(c), 0);
	strcpy(c->node_id, "a");
	cr_assert_eq(warp_config_add_transport(c, "loop", "x", NULL), 0);
	cr_assert_eq(warp_config_validate(c), 0, "minimal config rejected: %s", warp_errdetail());
}

/* validate() must fail with WARP_ECONFIG and a detail naming `key`. */
static void expect_rejected(const warp_config_t *c, const char *key, const char *what)
{
	warp__err_clear();
	int rc = warp_config_validate(c);
	cr_assert_eq(rc, WARP_ECONFIG, "%s: validate returned %d (%s), want WARP_ECONFIG", what,
		     rc, warp_strerror(rc));
	const char *d = warp_errdetail();
	cr_assert_not_null(strstr(d, key), "%s: detail \"%s\" does not name \"%s\"", what, d, key);
}

static void expect_accepted(const warp_config_t *c, const char *what)
{
	int rc = warp_config_validate(c);
	cr_assert_eq(rc, 0, "%s: rejected with %d: %s", what, rc, warp_errdetail());
}

/* add_transport() must fail with WARP_EINVAL and a detail naming `key`. */
static void expect_add_rejected(warp_config_t *c, const char *driver, const char *listen,
				const char *key)
{
	uint32_t n = c->n_transports;
	warp__err_clear();
	int rc = warp_config_add_transport(c, driver, listen, NULL);
	cr_assert_eq(rc, WARP_EINVAL, "add_transport returned %d, want WARP_EINVAL", rc);
	const char *d = warp_errdetail();
	cr_assert_not_null(strstr(d, key), "detail \"%s\" does not name \"%s\"", d, key);
	cr_assert_eq(c->n_transports, n, "a rejected transport must not be added");
}

static void fill_chars(char *dst, char ch, size_t n)
{
	memset(dst, ch, n);
	dst[n] = '\0';
}

/* ---- init --------------------------------------------------------------- */

Test(config, init_fills_the_documented_defaults)
{
	warp_config_t c;
	memset(&c, 0xab, sizeof(c)); /* init must overwrite everything */
	cr_assert_eq(warp_config_init(&c), 0);
	cr_assert_eq(c.node_id[0], '\0');
	cr_assert_eq(c.n_transports, 0);
	cr_assert_eq(c.mtu, WARP_DEFAULT_MTU);
	cr_assert_eq(c.max_payload_bytes, WARP_DEFAULT_MAX_PAYLOAD_BYTES);
	cr_assert_eq(c.pkt_pool, WARP_DEFAULT_PKT_POOL);
	cr_assert_eq(c.tx_arena_bytes, WARP_DEFAULT_TX_ARENA_BYTES);
	cr_assert_eq(c.rx_arena_bytes, WARP_DEFAULT_RX_ARENA_BYTES);
	cr_assert_eq(c.max_tx_msgs, WARP_DEFAULT_MAX_TX_MSGS);
	cr_assert_eq(c.max_peers, WARP_DEFAULT_MAX_PEERS);
	cr_assert_eq(c.max_streams, WARP_DEFAULT_MAX_STREAMS);
	cr_assert_eq(c.max_reassembly, WARP_DEFAULT_MAX_REASSEMBLY);
	cr_assert_eq(c.reassembly_timeout_ns, WARP_DEFAULT_REASSEMBLY_TIMEOUT_NS);
	cr_assert_eq(c.rx_burst, WARP_DEFAULT_BURST);
	cr_assert_eq(c.tx_burst, WARP_DEFAULT_BURST);
	cr_assert_eq(c.submit_budget, WARP_DEFAULT_SUBMIT_BUDGET);
	cr_assert_eq(c.max_channels, WARP_DEFAULT_MAX_CHANNELS);
	cr_assert_eq(c.channel_ring_bytes, 0, "0 = automatic");
	cr_assert_eq(c.timer_tick_ns, WARP_DEFAULT_TIMER_TICK_NS);
	cr_assert_eq(c.timer_slots, WARP_DEFAULT_TIMER_SLOTS);
	cr_assert_eq(c.heartbeat_interval_ns, WARP_DEFAULT_HEARTBEAT_INTERVAL_NS);
	cr_assert_eq(c.idle.kind, WARP_IDLE_BACKOFF);
	cr_assert_eq(c.idle.spins, WARP_DEFAULT_IDLE_SPINS);
	cr_assert_eq(c.idle.yields, WARP_DEFAULT_IDLE_YIELDS);
	cr_assert_eq(c.idle.min_sleep_ns, WARP_DEFAULT_IDLE_MIN_SLEEP_NS);
	cr_assert_eq(c.idle.max_sleep_ns, WARP_DEFAULT_IDLE_MAX_SLEEP_NS);
	cr_assert_eq(c.cpu, -1);
	cr_assert_null(c.clock);
	cr_assert_null(c.clock_arg);
	cr_assert_null(c.peers);
	cr_assert_eq(c.n_peers, 0);
	for (size_t i = 0; i < sizeof(c.reserved); i++)
		cr_assert_eq(c.reserved[i], 0, "reserved[%zu]", i);
}

Test(config, init_null_is_einval)
{
	cr_assert_eq(warp_config_init(NULL), WARP_EINVAL);
}

/* ---- validate ----------------------------------------------------------- */

Test(config, minimal_valid_config_passes)
{
	warp_config_t c;
	minimal_config(&c);
	cr_assert_eq(c.n_transports, 1);
	cr_assert_str_eq(c.transports[0].driver, "loop");
	cr_assert_str_eq(c.transports[0].listen, "x");
}

Test(config, validate_null_is_econfig)
{
	cr_assert_eq(warp_config_validate(NULL), WARP_ECONFIG);
}

Test(config, empty_node_id_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.node_id[0] = '\0';
	expect_rejected(&c, "node_id", "empty node_id");
}

Test(config, node_id_with_a_space_or_at_sign_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	strcpy(c.node_id, "a b");
	expect_rejected(&c, "node_id", "node_id 'a b'");
	strcpy(c.node_id, "a@b");
	expect_rejected(&c, "node_id", "node_id 'a@b'");
	strcpy(c.node_id, "Node-1.x_y");
	expect_accepted(&c, "node_id of every allowed character class");
}

Test(config, node_id_of_64_chars_is_rejected_63_accepted)
{
	warp_config_t c;
	minimal_config(&c);
	memset(c.node_id, 'n', sizeof(c.node_id)); /* 64 chars, no terminator fits */
	expect_rejected(&c, "node_id", "64-char node_id");
	fill_chars(c.node_id, 'n', WARP_NODE_MAX - 1);
	expect_accepted(&c, "63-char node_id");
}

Test(config, no_transports_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.n_transports = 0;
	expect_rejected(&c, "transports", "no transports");
}

Test(config, mtu_outside_256_to_9000_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.mtu = 255;
	expect_rejected(&c, "mtu", "mtu 255");
	c.mtu = 9001;
	expect_rejected(&c, "mtu", "mtu 9001");
	c.mtu = 256;
	expect_accepted(&c, "mtu 256");
	c.mtu = 9000;
	expect_accepted(&c, "mtu 9000");
}

Test(config, max_payload_zero_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.max_payload_bytes = 0;
	expect_rejected(&c, "max_payload", "max_payload_bytes 0");
}

Test(config, tx_arena_smaller_than_max_payload_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.tx_arena_bytes = c.max_payload_bytes - 1;
	expect_rejected(&c, "tx_arena_bytes", "tx_arena one byte short of max_payload");
	/* as large as the message leaves no room for its fragment map: such a
	 * message would never find a block (it was accepted) */
	c.tx_arena_bytes = c.max_payload_bytes;
	expect_rejected(&c, "give at least", "tx_arena == max_payload");
	c.tx_arena_bytes = 2 * c.max_payload_bytes;
	expect_accepted(&c, "tx_arena == 2 max_payload");
}

Test(config, timer_slots_not_a_power_of_two_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.timer_slots = 4095;
	expect_rejected(&c, "timer_slots", "timer_slots 4095");
	c.timer_slots = 48;
	expect_rejected(&c, "timer_slots", "timer_slots 48");
	c.timer_slots = 0;
	expect_rejected(&c, "timer_slots", "timer_slots 0");
	c.timer_slots = 1024;
	expect_accepted(&c, "timer_slots 1024");
}

Test(config, channel_ring_bytes_too_small_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.max_payload_bytes = 1u << 20;
	c.channel_ring_bytes = 2u << 20; /* power of two, but not 2 * (max_payload + 64) */
	expect_rejected(&c, "channel_ring_bytes", "ring of exactly twice max_payload");
	c.channel_ring_bytes = 4096;
	expect_rejected(&c, "channel_ring_bytes", "4 KiB ring");
	c.channel_ring_bytes = 4u << 20;
	expect_accepted(&c, "4 MiB ring for 1 MiB messages");
	c.channel_ring_bytes = 0;
	expect_accepted(&c, "automatic ring");
}

Test(config, channel_ring_bytes_not_a_power_of_two_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.max_payload_bytes = 1u << 20;
	c.channel_ring_bytes = (4u << 20) + 4096; /* big enough, not a power of two */
	expect_rejected(&c, "channel_ring_bytes", "ring 4 MiB + 4 KiB");
	c.channel_ring_bytes = 3u << 20;
	expect_rejected(&c, "channel_ring_bytes", "ring 3 MiB");
}

Test(config, idle_backoff_with_zero_min_sleep_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.idle.kind = WARP_IDLE_BACKOFF;
	c.idle.min_sleep_ns = 0;
	expect_rejected(&c, "idle", "backoff, min_sleep 0");
	c.idle.kind = WARP_IDLE_SPIN;
	expect_accepted(&c, "spin ignores the sleep bounds");
}

Test(config, peers_count_without_peers_array_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.n_peers = 1;
	c.peers = NULL;
	expect_rejected(&c, "peers", "n_peers 1, peers NULL");
}

Test(config, any_reserved_byte_set_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.reserved[0] = 1;
	expect_rejected(&c, "reserved", "reserved[0]");
	c.reserved[0] = 0;
	c.reserved[sizeof(c.reserved) - 1] = 0x80;
	expect_rejected(&c, "reserved", "last reserved byte");
}

Test(config, rx_burst_outside_1_to_256_is_rejected)
{
	warp_config_t c;
	minimal_config(&c);
	c.rx_burst = 0;
	expect_rejected(&c, "rx_burst", "rx_burst 0");
	c.rx_burst = 257;
	expect_rejected(&c, "rx_burst", "rx_burst 257");
	c.rx_burst = 1;
	expect_accepted(&c, "rx_burst 1");
	c.rx_burst = 256;
	expect_accepted(&c, "rx_burst 256");
}

/* ---- add_transport ------------------------------------------------------ */

Test(config, add_transport_copies_the_arguments)
{
	warp_config_t c;
	int arg;
	cr_assert_eq(warp_config_init(&c), 0);
	cr_assert_eq(warp_config_add_transport(&c, "loop", "127.0.0.1:7000", &arg), 0);
	cr_assert_eq(c.n_transports, 1);
	cr_assert_str_eq(c.transports[0].driver, "loop");
	cr_assert_str_eq(c.transports[0].listen, "127.0.0.1:7000");
	cr_assert_eq(c.transports[0].driver_arg, &arg);
}

Test(config, add_transport_beyond_the_maximum_is_einval)
{
	warp_config_t c;
	cr_assert_eq(warp_config_init(&c), 0);
	for (int i = 0; i < WARP_MAX_TRANSPORTS; i++)
		cr_assert_eq(warp_config_add_transport(&c, "loop", "x", NULL), 0, "transport %d", i);
	cr_assert_eq(c.n_transports, WARP_MAX_TRANSPORTS);
	expect_add_rejected(&c, "loop", "x", "transports");
}

Test(config, add_transport_with_too_long_driver_name_is_einval)
{
	warp_config_t c;
	char name[WARP_DRIVER_NAME_MAX + 1];
	cr_assert_eq(warp_config_init(&c), 0);
	fill_chars(name, 'd', WARP_DRIVER_NAME_MAX);
	expect_add_rejected(&c, name, "x", "driver");
	fill_chars(name, 'd', WARP_DRIVER_NAME_MAX - 1);
	cr_assert_eq(warp_config_add_transport(&c, name, "x", NULL), 0, "15-char driver fits");
	cr_assert_str_eq(c.transports[0].driver, name);
}

Test(config, add_transport_with_too_long_listen_string_is_einval)
{
	warp_config_t c;
	char listen[WARP_ADDR_STR_MAX + 1];
	cr_assert_eq(warp_config_init(&c), 0);
	fill_chars(listen, 'l', WARP_ADDR_STR_MAX);
	expect_add_rejected(&c, "loop", listen, "listen");
	fill_chars(listen, 'l', WARP_ADDR_STR_MAX - 1);
	cr_assert_eq(warp_config_add_transport(&c, "loop", listen, NULL), 0, "127-char listen fits");
	cr_assert_str_eq(c.transports[0].listen, listen);
}

Test(config, add_transport_null_arguments_are_einval)
{
	warp_config_t c;
	cr_assert_eq(warp_config_init(&c), 0);
	cr_assert_eq(warp_config_add_transport(NULL, "loop", "x", NULL), WARP_EINVAL);
	expect_add_rejected(&c, NULL, "x", "driver");
	expect_add_rejected(&c, "loop", NULL, "listen");
}
