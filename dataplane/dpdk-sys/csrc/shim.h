/* Wrappers for DPDK's static inline functions and macros, compiled into the crate with the
 * full `pkg-config --cflags libdpdk` (which includes -include rte_config.h). */
#ifndef RSDPDK_SHIM_H
#define RSDPDK_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_bus_vdev.h>

uint16_t rsdpdk_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t rsdpdk_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *rsdpdk_pktmbuf_alloc(struct rte_mempool *mp);
int rsdpdk_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n);
void rsdpdk_pktmbuf_free(struct rte_mbuf *m);
void rsdpdk_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n);
char *rsdpdk_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
void *rsdpdk_pktmbuf_mtod(struct rte_mbuf *m);
uint32_t rsdpdk_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t rsdpdk_pktmbuf_data_len(const struct rte_mbuf *m);
uint16_t rsdpdk_pktmbuf_tailroom(const struct rte_mbuf *m);
int rsdpdk_pktmbuf_is_contiguous(const struct rte_mbuf *m);
const void *rsdpdk_pktmbuf_read(const struct rte_mbuf *m, uint32_t off, uint32_t len, void *buf);
uint64_t rsdpdk_mbuf_ol_flags(const struct rte_mbuf *m);
void rsdpdk_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t ol_flags, uint16_t l2_len, uint16_t l3_len);
int rsdpdk_errno(void);
unsigned int rsdpdk_lcore_id(void);
unsigned int rsdpdk_socket_id(void);
uint64_t rsdpdk_constant(unsigned int which);

#endif
