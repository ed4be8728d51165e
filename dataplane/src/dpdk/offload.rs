//! SCTP CRC32c offload decisions, kept free of DPDK calls so that they can be tested with
//! made-up capability sets (no virtual PMD offers SCTP checksum offload).
//!
//! # Call contract
//!
//! - [`Offloads::from_capabilities`] takes a port's `tx_offload_capa` / `rx_offload_capa`
//!   (from `rte_eth_dev_info_get`) and says which offloads to enable in
//!   `rte_eth_conf` ([`Offloads::tx_conf`], [`Offloads::rx_conf`]). Offloads must be
//!   enabled at configure time: a PMD may ignore mbuf flags for one that was not.
//! - [`Offloads::tx_action`] decides, per packet, how its CRC32c gets onto the wire:
//!   the NIC computes it (mbuf flags and header lengths per DPDK's rules for L4 checksum
//!   offload: `RTE_MBUF_F_TX_SCTP_CKSUM`, `RTE_MBUF_F_TX_IPV4`/`IPV6`, `l2_len`, `l3_len`;
//!   the checksum field is zeroed first, which some NICs require), the link computes it in
//!   software (the stack left it zero under `EndpointConfig::tx_checksum_offload` and the
//!   port cannot), or the stack's value goes out as it is.
//! - [`Offloads::rx_verdict`] maps a received mbuf's `ol_flags` to the stack's
//!   [`RxChecksum`]: `RTE_MBUF_F_RX_L4_CKSUM_GOOD` is `Verified`, `..._BAD` is `Bad` (the
//!   link drops the packet, RFC 9260 §6.8), `..._UNKNOWN` is `Unverified` (checked in
//!   software); `..._NONE` (the field is not valid but the data's integrity was checked,
//!   as some paravirtual devices report) is `Verified`. Without the receive offload enabled
//!   every packet is `Unverified`, whatever the flags say.

use dpdk_sys as sys;
use sctp_stack::RxChecksum;

/// The SCTP checksum offloads a port offers and the link uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offloads {
    /// The NIC computes the SCTP CRC32c of transmitted packets
    /// (`RTE_ETH_TX_OFFLOAD_SCTP_CKSUM`).
    pub tx_sctp: bool,
    /// The NIC verifies the SCTP CRC32c of received packets and reports it in the mbuf's
    /// L4 checksum flags (`RTE_ETH_RX_OFFLOAD_SCTP_CKSUM`).
    pub rx_sctp: bool,
}

/// How the CRC32c of one transmitted packet gets onto the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxAction {
    /// The NIC computes it: OR `ol_flags` into the mbuf, set `l2_len`/`l3_len`, and zero the
    /// checksum field.
    Hardware {
        /// Transmit flags for the mbuf.
        ol_flags: u64,
        /// Ethernet header length.
        l2_len: u16,
        /// IP header length.
        l3_len: u16,
    },
    /// The field is zero (left to the link) and the NIC cannot: compute it in software.
    Software,
    /// The stack's checksum is in place: send as is.
    AsIs,
}

impl Offloads {
    /// The offloads to use given a port's capabilities.
    pub fn from_capabilities(tx_offload_capa: u64, rx_offload_capa: u64) -> Self {
        Offloads {
            tx_sctp: tx_offload_capa & sys::RTE_ETH_TX_OFFLOAD_SCTP_CKSUM != 0,
            rx_sctp: rx_offload_capa & sys::RTE_ETH_RX_OFFLOAD_SCTP_CKSUM != 0,
        }
    }

    /// Bits to OR into `rte_eth_conf.txmode.offloads`.
    pub fn tx_conf(&self) -> u64 {
        if self.tx_sctp {
            sys::RTE_ETH_TX_OFFLOAD_SCTP_CKSUM
        } else {
            0
        }
    }

    /// Bits to OR into `rte_eth_conf.rxmode.offloads`.
    pub fn rx_conf(&self) -> u64 {
        if self.rx_sctp {
            sys::RTE_ETH_RX_OFFLOAD_SCTP_CKSUM
        } else {
            0
        }
    }

    /// The action for an SCTP packet to `ipv4` (else IPv6) behind an `l2_len`-byte Ethernet
    /// header and an `l3_len`-byte IP header, whose checksum field currently holds
    /// `stored` (zero when the stack left it to the link).
    pub fn tx_action(&self, ipv4: bool, l2_len: u16, l3_len: u16, stored: [u8; 4]) -> TxAction {
        if self.tx_sctp {
            let ip = if ipv4 {
                sys::RTE_MBUF_F_TX_IPV4
            } else {
                sys::RTE_MBUF_F_TX_IPV6
            };
            TxAction::Hardware {
                ol_flags: ip | sys::RTE_MBUF_F_TX_SCTP_CKSUM,
                l2_len,
                l3_len,
            }
        } else if stored == [0; 4] {
            // A genuine CRC32c of zero is recomputed to the same value: harmless.
            TxAction::Software
        } else {
            TxAction::AsIs
        }
    }

    /// The stack's view of a received packet's checksum from the mbuf's `ol_flags`.
    pub fn rx_verdict(&self, ol_flags: u64) -> RxChecksum {
        if !self.rx_sctp {
            return RxChecksum::Unverified;
        }
        match ol_flags & sys::RTE_MBUF_F_RX_L4_CKSUM_MASK {
            sys::RTE_MBUF_F_RX_L4_CKSUM_GOOD | sys::RTE_MBUF_F_RX_L4_CKSUM_NONE => {
                RxChecksum::Verified
            }
            sys::RTE_MBUF_F_RX_L4_CKSUM_BAD => RxChecksum::Bad,
            _ => RxChecksum::Unverified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Offloads = Offloads {
        tx_sctp: false,
        rx_sctp: false,
    };

    #[test]
    fn capabilities_select_the_sctp_offloads_only() {
        assert_eq!(Offloads::from_capabilities(0, 0), NONE);
        // IPv4 header checksum and fast free alone are not SCTP offload.
        let other = sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
        assert_eq!(
            Offloads::from_capabilities(other, sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM),
            NONE
        );
        let both = Offloads::from_capabilities(
            other | sys::RTE_ETH_TX_OFFLOAD_SCTP_CKSUM,
            sys::RTE_ETH_RX_OFFLOAD_SCTP_CKSUM,
        );
        assert!(both.tx_sctp && both.rx_sctp);
        assert_eq!(both.tx_conf(), sys::RTE_ETH_TX_OFFLOAD_SCTP_CKSUM);
        assert_eq!(both.rx_conf(), sys::RTE_ETH_RX_OFFLOAD_SCTP_CKSUM);
        assert_eq!((NONE.tx_conf(), NONE.rx_conf()), (0, 0));
        let rx_only = Offloads::from_capabilities(other, sys::RTE_ETH_RX_OFFLOAD_SCTP_CKSUM);
        assert!(!rx_only.tx_sctp && rx_only.rx_sctp);
    }

    #[test]
    fn transmit_uses_the_nic_when_offered_else_fills_only_zero_fields() {
        let hw = Offloads {
            tx_sctp: true,
            rx_sctp: false,
        };
        assert_eq!(
            hw.tx_action(true, 14, 20, [0; 4]),
            TxAction::Hardware {
                ol_flags: sys::RTE_MBUF_F_TX_IPV4 | sys::RTE_MBUF_F_TX_SCTP_CKSUM,
                l2_len: 14,
                l3_len: 20
            }
        );
        // The NIC also overwrites a checksum the stack computed; IPv6 sets the IPv6 flag.
        assert_eq!(
            hw.tx_action(false, 14, 40, [1, 2, 3, 4]),
            TxAction::Hardware {
                ol_flags: sys::RTE_MBUF_F_TX_IPV6 | sys::RTE_MBUF_F_TX_SCTP_CKSUM,
                l2_len: 14,
                l3_len: 40
            }
        );
        assert_eq!(NONE.tx_action(true, 14, 20, [0; 4]), TxAction::Software);
        assert_eq!(NONE.tx_action(false, 14, 40, [0; 4]), TxAction::Software);
        assert_eq!(NONE.tx_action(true, 14, 20, [0, 0, 0, 1]), TxAction::AsIs);
    }

    #[test]
    fn receive_flags_map_to_the_stacks_verdict_only_with_the_offload_enabled() {
        let rx = Offloads {
            tx_sctp: false,
            rx_sctp: true,
        };
        // Other flag bits (IP checksum good, RSS hash) do not disturb the L4 status.
        let noise = (1u64 << 7) | (1u64 << 1);
        for (flags, want) in [
            (sys::RTE_MBUF_F_RX_L4_CKSUM_GOOD, RxChecksum::Verified),
            (sys::RTE_MBUF_F_RX_L4_CKSUM_BAD, RxChecksum::Bad),
            (sys::RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN, RxChecksum::Unverified),
            (sys::RTE_MBUF_F_RX_L4_CKSUM_NONE, RxChecksum::Verified),
        ] {
            assert_eq!(rx.rx_verdict(flags), want, "flags {flags:#x}");
            assert_eq!(
                rx.rx_verdict(flags | noise),
                want,
                "flags {flags:#x} + noise"
            );
            // Without the receive offload the flags are not trusted.
            assert_eq!(NONE.rx_verdict(flags), RxChecksum::Unverified);
        }
    }
}
