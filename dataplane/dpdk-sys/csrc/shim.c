/* See shim.h. Every function is a thin, non-inline call of the DPDK inline or macro of the
 * same name, so Rust can link against it. */
#include "shim.h"

uint16_t rsdpdk_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n) {
    return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t rsdpdk_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n) {
    return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *rsdpdk_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

int rsdpdk_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n) {
    return rte_pktmbuf_alloc_bulk(mp, mbufs, n);
}

void rsdpdk_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

void rsdpdk_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n) {
    rte_pktmbuf_free_bulk(mbufs, n);
}

char *rsdpdk_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }

void *rsdpdk_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }

uint32_t rsdpdk_pktmbuf_pkt_len(const struct rte_mbuf *m) { return rte_pktmbuf_pkt_len(m); }

uint16_t rsdpdk_pktmbuf_data_len(const struct rte_mbuf *m) { return rte_pktmbuf_data_len(m); }

uint16_t rsdpdk_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }

int rsdpdk_pktmbuf_is_contiguous(const struct rte_mbuf *m) { return rte_pktmbuf_is_contiguous(m); }

const void *rsdpdk_pktmbuf_read(const struct rte_mbuf *m, uint32_t off, uint32_t len, void *buf) {
    return rte_pktmbuf_read(m, off, len, buf);
}

uint64_t rsdpdk_mbuf_ol_flags(const struct rte_mbuf *m) { return m->ol_flags; }

void rsdpdk_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t ol_flags, uint16_t l2_len, uint16_t l3_len) {
    m->ol_flags |= ol_flags;
    m->l2_len = l2_len;
    m->l3_len = l3_len;
}

int rsdpdk_errno(void) { return rte_errno; }

unsigned int rsdpdk_lcore_id(void) { return rte_lcore_id(); }

unsigned int rsdpdk_socket_id(void) { return rte_socket_id(); }

/* The values of the macros the crate re-declares by hand, so a test can compare them. */
uint64_t rsdpdk_constant(unsigned int which) {
    switch (which) {
    case 0: return RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    case 1: return RTE_ETH_TX_OFFLOAD_SCTP_CKSUM;
    case 2: return RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    case 3: return RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
    case 4: return RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    case 5: return RTE_ETH_RX_OFFLOAD_SCATTER;
    case 6: return RTE_MBUF_F_TX_IPV4;
    case 7: return RTE_MBUF_F_TX_IPV6;
    case 8: return RTE_MBUF_F_TX_IP_CKSUM;
    case 9: return RTE_MBUF_F_TX_SCTP_CKSUM;
    case 10: return RTE_ETH_RSS_IP;
    case 11: return RTE_ETH_RSS_NONFRAG_IPV4_SCTP;
    case 12: return RTE_ETH_RSS_NONFRAG_IPV6_SCTP;
    case 13: return RTE_MBUF_DEFAULT_BUF_SIZE;
    case 14: return RTE_MAX_ETHPORTS;
    case 15: return RTE_MBUF_F_RX_IP_CKSUM_MASK;
    case 16: return RTE_MBUF_F_RX_IP_CKSUM_BAD;
    case 17: return RTE_ETH_LINK_UP;
    case 18: return RTE_PKTMBUF_HEADROOM;
    case 19: return RTE_ETH_RX_OFFLOAD_SCTP_CKSUM;
    case 20: return RTE_MBUF_F_RX_L4_CKSUM_MASK;
    case 21: return RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN;
    case 22: return RTE_MBUF_F_RX_L4_CKSUM_BAD;
    case 23: return RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    case 24: return RTE_MBUF_F_RX_L4_CKSUM_NONE;
    default: return UINT64_MAX;
    }
}
