/* What bindgen cannot see: thread-locals, macros and the static-inline calls greway uses once per burst (or in
 * tests that check the Rust mbuf helpers against DPDK's own). Everything here is a thin pass-through. */
#ifndef GREWAY_SHIM_H
#define GREWAY_SHIM_H
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_telemetry.h>
#include <rte_pdump.h>
#include <rte_dev.h>
#include <rte_version.h>

int shim_rte_errno(void);
unsigned shim_lcore_id(void);
uint16_t shim_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t shim_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
int shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **pkts, unsigned n);
struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *mp);
void shim_pktmbuf_free(struct rte_mbuf *m);
/* Reference versions for tests of the Rust helpers. */
char *shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
char *shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
int shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t shim_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t shim_pktmbuf_tailroom(const struct rte_mbuf *m);
void *shim_pktmbuf_mtod(struct rte_mbuf *m);
int shim_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail);
uint16_t shim_raw_cksum(const void *buf, size_t len);
uint16_t shim_raw_cksum_o2(const void *buf, size_t len);
uint64_t shim_rdtsc(void);
/* capture.c: the packet-capture server (1: greway's, for DPDK 22.11; 0: DPDK's own; -1: failed, rte_errno). */
int shim_capture_init(void);
#endif
