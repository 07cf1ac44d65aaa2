/* The packet-capture server dpdk-dumpcap and dpdk-pdump talk to, for DPDK 22.11.
 *
 * DPDK 22.11's own server (lib/pdump/rte_pdump.c) has a use-after-free: on a capture's end it removes its rx/tx
 * callbacks and answers at once, and dpdk-dumpcap then frees the ring and mempool the callbacks copy into
 * (app/dumpcap/main.c: rte_pdump_disable, rte_ring_free, rte_mempool_free). A worker still inside the callback
 * at that moment writes into freed memory: greway died with a segmentation fault in about 1 of 100 captures on a
 * loaded machine (scripts/dumpcap.sh). Later DPDK releases count the callback's users and wait for them on
 * disable. This file is DPDK 22.11's server with that wait: the same multi-process request and answer (the
 * layouts below are 22.11's), the same copies (pcapng or plain, BPF filter, snap length) and the same shared
 * statistics, plus a count of the workers inside each callback that the server waits to fall to zero before it
 * answers a disable. Written by hand because it cannot be had otherwise: the library's server and its callback
 * state are static, so greway starts the library (rte_pdump_init: its statistics memzone) and then takes over
 * its request name. Built against DPDK 23 or later, greway keeps the library's own server. */
/* rte_pcapng_copy is still experimental in 22.11. */
#define ALLOW_EXPERIMENTAL_API
#include "shim.h"
#include <errno.h>
#include <string.h>
#include <rte_bpf.h>
#include <rte_memzone.h>
#include <rte_pause.h>
#include <rte_pcapng.h>
#include <rte_ring.h>
#include <rte_string_fns.h>

#if RTE_VERSION < RTE_VERSION_NUM(23, 0, 0, 0)

#define PDUMP_MP "mp_pdump"

/* lib/pdump/rte_pdump.c of DPDK 22.11: the request dpdk-dumpcap sends and the answer it waits for. */
enum { DISABLE = 1, ENABLE = 2 };
enum { V1 = 1, V2 = 2 }; /* V2: pcapng copies, BPF filter and snap length */

struct pdump_request {
	uint16_t ver;
	uint16_t op;
	uint32_t flags;
	char device[RTE_DEV_NAME_MAX_LEN];
	uint16_t queue;
	struct rte_ring *ring;
	struct rte_mempool *mp;
	const struct rte_bpf_prm *prm;
	uint32_t snaplen;
};

struct pdump_response {
	uint16_t ver;
	uint16_t res_op;
	int32_t err_value;
};

/* One capture of one queue in one direction. `active` and `inside` make the disable safe: a worker counts itself
 * in `inside` and then reads `active`; the server clears `active` and then waits for `inside` to be zero (both
 * sequentially consistent), so either the worker sees the capture off and copies nothing, or the server sees
 * it inside and waits until it is out. Only then does dpdk-dumpcap get its answer and free the ring and mempool. */
struct capture {
	struct rte_ring *ring;
	struct rte_mempool *mp;
	const struct rte_eth_rxtx_callback *cb;
	const struct rte_bpf *filter;
	uint16_t ver;
	uint32_t snaplen;
	uint32_t active;
	uint32_t inside;
};

static struct capture rx_captures[RTE_MAX_ETHPORTS][RTE_MAX_QUEUES_PER_PORT];
static struct capture tx_captures[RTE_MAX_ETHPORTS][RTE_MAX_QUEUES_PER_PORT];

/* The library's shared statistics (memzone "rte_pdump_stats", laid out as in 22.11), which dpdk-dumpcap reads. */
static struct {
	struct rte_pdump_stats rx[RTE_MAX_ETHPORTS][RTE_MAX_QUEUES_PER_PORT];
	struct rte_pdump_stats tx[RTE_MAX_ETHPORTS][RTE_MAX_QUEUES_PER_PORT];
	const struct rte_memzone *mz;
} *capture_stats;

/* The copies of a burst into the capture's ring, as 22.11's pdump_copy. */
static void capture_copy(uint16_t port, uint16_t queue, enum rte_pcapng_direction direction,
			 struct rte_mbuf **pkts, uint16_t n, const struct capture *c,
			 struct rte_pdump_stats *stats)
{
	struct rte_mbuf *dup[n];
	uint64_t rcs[n];
	uint16_t d = 0;

	if (c->filter)
		rte_bpf_exec_burst(c->filter, (void **)pkts, rcs, n);
	uint64_t ts = rte_get_tsc_cycles();
	for (uint16_t i = 0; i < n; i++) {
		/* A filter's zero: not this packet (the socket filter convention). */
		if (c->filter && rcs[i] == 0) {
			__atomic_fetch_add(&stats->filtered, 1, __ATOMIC_RELAXED);
			continue;
		}
		struct rte_mbuf *p = c->ver == V2
			? rte_pcapng_copy(port, queue, pkts[i], c->mp, c->snaplen, ts, direction)
			: rte_pktmbuf_copy(pkts[i], c->mp, 0, c->snaplen);
		if (p == NULL)
			__atomic_fetch_add(&stats->nombuf, 1, __ATOMIC_RELAXED);
		else
			dup[d++] = p;
	}
	__atomic_fetch_add(&stats->accepted, d, __ATOMIC_RELAXED);
	unsigned int queued = rte_ring_enqueue_burst(c->ring, (void **)dup, d, NULL);
	if (queued < d) {
		__atomic_fetch_add(&stats->ringfull, d - queued, __ATOMIC_RELAXED);
		rte_pktmbuf_free_bulk(&dup[queued], d - queued);
	}
}

/* A worker's way through a capture: counted inside, then copying only while the capture is on. */
static void capture_enter(uint16_t port, uint16_t queue, enum rte_pcapng_direction direction,
			  struct rte_mbuf **pkts, uint16_t n, struct capture *c,
			  struct rte_pdump_stats *stats)
{
	/* An empty burst (most polls) touches neither ring nor mempool: no count, no locked add. */
	if (n == 0)
		return;
	__atomic_fetch_add(&c->inside, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&c->active, __ATOMIC_SEQ_CST))
		capture_copy(port, queue, direction, pkts, n, c, stats);
	__atomic_fetch_sub(&c->inside, 1, __ATOMIC_RELEASE);
}

static uint16_t capture_rx(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n,
			   uint16_t max_pkts __rte_unused, void *arg)
{
	capture_enter(port, queue, RTE_PCAPNG_DIRECTION_IN, pkts, n, arg, &capture_stats->rx[port][queue]);
	return n;
}

static uint16_t capture_tx(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n, void *arg)
{
	capture_enter(port, queue, RTE_PCAPNG_DIRECTION_OUT, pkts, n, arg, &capture_stats->tx[port][queue]);
	return n;
}

/* Start (ENABLE) or end (DISABLE) the captures of queues [first, end) of `port` in one direction. */
static int capture_set(int rx, const struct pdump_request *req, uint16_t port, uint16_t first, uint16_t end,
		       const struct rte_bpf *filter)
{
	for (uint16_t q = first; q < end; q++) {
		struct capture *c = rx ? &rx_captures[port][q] : &tx_captures[port][q];
		if (req->op == ENABLE) {
			if (c->cb)
				return -EEXIST;
			c->ver = req->ver;
			c->ring = req->ring;
			c->mp = req->mp;
			c->snaplen = req->snaplen;
			c->filter = filter;
			__atomic_store_n(&c->active, 1, __ATOMIC_SEQ_CST);
			c->cb = rx ? rte_eth_add_first_rx_callback(port, q, capture_rx, c)
				   : rte_eth_add_tx_callback(port, q, capture_tx, c);
			if (c->cb == NULL) {
				__atomic_store_n(&c->active, 0, __ATOMIC_SEQ_CST);
				return -rte_errno;
			}
		} else {
			if (c->cb == NULL)
				return -EINVAL;
			__atomic_store_n(&c->active, 0, __ATOMIC_SEQ_CST);
			int ret = rx ? rte_eth_remove_rx_callback(port, q, c->cb)
				     : rte_eth_remove_tx_callback(port, q, c->cb);
			/* (The callback itself stays allocated, as ethdev wants: a worker may still be on its way in.) */
			while (__atomic_load_n(&c->inside, __ATOMIC_SEQ_CST) != 0)
				rte_pause();
			if (ret < 0)
				return ret;
			c->cb = NULL;
		}
	}
	return 0;
}

/* 22.11's set_pdump_rxtx_cbs: the request checked, its filter loaded, the port and queues found. */
static int capture_request(const struct pdump_request *req)
{
	uint16_t port, nb_rx = 0, nb_tx = 0;
	const struct rte_bpf *filter = NULL;
	int ret;

	if (req->ver != V1 && req->ver != V2)
		return -EINVAL;
	if (req->op == ENABLE && req->prm) {
		if (req->prm->prog_arg.type != RTE_BPF_ARG_PTR_MBUF)
			return -EINVAL;
		/* (Never destroyed, as in 22.11: both directions of a capture share it.) */
		filter = rte_bpf_load(req->prm);
		if (filter == NULL)
			return -rte_errno;
	}
	if (rte_eth_dev_get_port_by_name(req->device, &port) < 0)
		return -EINVAL;
	if (req->queue == RTE_PDUMP_ALL_QUEUES) {
		struct rte_eth_dev_info info;
		ret = rte_eth_dev_info_get(port, &info);
		if (ret != 0)
			return ret;
		nb_rx = info.nb_rx_queues;
		nb_tx = info.nb_tx_queues;
		if ((nb_rx == 0 && (req->flags & RTE_PDUMP_FLAG_RX)) ||
		    (nb_tx == 0 && (req->flags & RTE_PDUMP_FLAG_TX)))
			return -EINVAL;
	}
	uint16_t first = req->queue == RTE_PDUMP_ALL_QUEUES ? 0 : req->queue;
	if (req->queue != RTE_PDUMP_ALL_QUEUES && req->queue >= RTE_MAX_QUEUES_PER_PORT)
		return -EINVAL;
	if (req->flags & RTE_PDUMP_FLAG_RX) {
		uint16_t end = req->queue == RTE_PDUMP_ALL_QUEUES ? nb_rx : req->queue + 1;
		ret = capture_set(1, req, port, first, end, filter);
		if (ret < 0)
			return ret;
	}
	if (req->flags & RTE_PDUMP_FLAG_TX) {
		uint16_t end = req->queue == RTE_PDUMP_ALL_QUEUES ? nb_tx : req->queue + 1;
		ret = capture_set(0, req, port, first, end, filter);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The request handler (22.11's pdump_server), on EAL's multi-process thread. */
static int capture_server(const struct rte_mp_msg *msg, const void *peer)
{
	struct rte_mp_msg reply;
	struct pdump_response *resp = (struct pdump_response *)reply.param;

	memset(&reply, 0, sizeof(reply));
	if (msg->len_param != sizeof(struct pdump_request)) {
		resp->err_value = -EINVAL;
	} else {
		const struct pdump_request *req = (const struct pdump_request *)msg->param;
		resp->ver = req->ver;
		resp->res_op = req->op;
		resp->err_value = capture_request(req);
	}
	rte_strscpy(reply.name, PDUMP_MP, RTE_MP_MAX_NAME_LEN);
	reply.len_param = sizeof(*resp);
	reply.num_fds = 0;
	return rte_mp_reply(&reply, peer) < 0 ? -1 : 0;
}

int shim_capture_init(void)
{
	if (rte_pdump_init() < 0)
		return -1;
	const struct rte_memzone *mz = rte_memzone_lookup("rte_pdump_stats");
	if (mz == NULL || mz->len < sizeof(*capture_stats)) {
		rte_errno = ENOENT;
		return -1;
	}
	capture_stats = mz->addr;
	rte_mp_action_unregister(PDUMP_MP);
	if (rte_mp_action_register(PDUMP_MP, capture_server) < 0)
		return -1;
	return 1;
}

#else

int shim_capture_init(void)
{
	return rte_pdump_init() < 0 ? -1 : 0;
}

#endif
