/* The checksum benchmark's second baseline: DPDK's rte_raw_cksum compiled the way a DPDK application gets it by
 * default (pkg-config --cflags libdpdk, -O2; GCC 12 does not vectorise its loop there). shim.c is built at -O3,
 * where GCC vectorises the same loop about 5x faster; `greway bench checksum` reports both. */
#include <rte_config.h>
#include <rte_ip.h>

uint16_t shim_raw_cksum_o2(const void *buf, size_t len) { return rte_raw_cksum(buf, len); }
