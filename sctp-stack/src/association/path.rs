//! Per-path state: the RTO estimator (RFC 9260 §6.3.1), congestion control (§7.2), the error
//! counter (§8.2) and heartbeat bookkeeping (§8.3).
//!
//! An association holds its paths in a collection from the start; with a single-homed peer
//! it has one. Multi-homing (RFC 9260 §6.4) adds paths and switches between them without
//! changing this type.

use core::time::Duration;
use std::net::IpAddr;

use crate::config::AssociationConfig;
use crate::serial::Tsn;
use crate::time::{Timestamp, duration_micros};

/// Most paths one association tracks; further peer addresses are ignored.
pub(crate) const MAX_PATHS: usize = 8;

/// Bytes of the IPv4 header (without options).
pub(crate) const IPV4_HEADER: usize = 20;
/// Bytes of the IPv6 header.
pub(crate) const IPV6_HEADER: usize = 40;
/// Bytes of the UDP header (RFC 6951 encapsulation).
pub(crate) const UDP_HEADER: usize = 8;

/// The reachability state of a path (RFC 9260 §8.2, RFC 7829).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathState {
    /// An address the peer listed but that has not been confirmed by a heartbeat (§5.4).
    Unconfirmed,
    /// Reachable.
    Active,
    /// Potentially failed (RFC 7829): errors seen, not yet Path.Max.Retrans.
    PotentiallyFailed,
    /// More than Path.Max.Retrans consecutive errors.
    Inactive,
}

/// The retransmission timeout estimator of RFC 9260 §6.3.1.
#[derive(Debug, Clone)]
pub(crate) struct Rto {
    srtt_us: u64,
    rttvar_us: u64,
    rto_us: u64,
    measured: bool,
}

impl Rto {
    /// C1: before any measurement the RTO is RTO.Initial.
    pub(crate) fn new(config: &AssociationConfig) -> Rto {
        Rto {
            srtt_us: 0,
            rttvar_us: 0,
            rto_us: duration_micros(config.rto_initial),
            measured: false,
        }
    }

    /// The current RTO.
    pub(crate) fn rto(&self) -> Duration {
        Duration::from_micros(self.rto_us)
    }

    /// The smoothed round-trip time, once measured.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.measured.then(|| Duration::from_micros(self.srtt_us))
    }

    /// Takes one RTT measurement `r` into account (C2, C3, C6, C7).
    pub(crate) fn measure(&mut self, r: Duration, config: &AssociationConfig) {
        let r = duration_micros(r);
        let g = duration_micros(config.clock_granularity);
        if !self.measured {
            // RFC 9260 §6.3.1 (C2): SRTT <- R, RTTVAR <- R/2.
            self.srtt_us = r;
            self.rttvar_us = r / 2;
            self.measured = true;
        } else {
            // RFC 9260 §6.3.1 (C3): RTTVAR first (with the old SRTT), then SRTT.
            let alpha = u64::from(config.rto_alpha_permille);
            let beta = u64::from(config.rto_beta_permille);
            let delta = self.srtt_us.abs_diff(r);
            self.rttvar_us = (self
                .rttvar_us
                .saturating_mul(1000 - beta)
                .saturating_add(delta.saturating_mul(beta)))
                / 1000;
            self.srtt_us = (self
                .srtt_us
                .saturating_mul(1000 - alpha)
                .saturating_add(r.saturating_mul(alpha)))
                / 1000;
        }
        // RTO <- SRTT + max(G, 4 * RTTVAR).
        let rto = self
            .srtt_us
            .saturating_add(g.max(self.rttvar_us.saturating_mul(4)));
        self.rto_us = clamp_rto(rto, config);
    }

    /// E2/RFC 9260 §6.3.3: doubles the RTO after a timeout, saturating at RTO.Max.
    pub(crate) fn back_off(&mut self, config: &AssociationConfig) {
        self.rto_us = self
            .rto_us
            .saturating_mul(2)
            .min(duration_micros(config.rto_max));
    }
}

/// C6 and C7: clamps an RTO to RTO.Min and RTO.Max.
fn clamp_rto(rto_us: u64, config: &AssociationConfig) -> u64 {
    rto_us.clamp(
        duration_micros(config.rto_min),
        duration_micros(config.rto_max),
    )
}

/// One destination transport address of the peer, with everything kept per path.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    /// The peer's address.
    pub(crate) remote: IpAddr,
    /// The local address packets to this path leave from, if known.
    pub(crate) local: Option<IpAddr>,
    /// The peer's UDP port for RFC 6951 encapsulation (0: raw IP). Updated from every
    /// received packet of the path (RFC 6951 §5.4).
    pub(crate) encaps_port: u16,
    pub(crate) state: PathState,
    pub(crate) rto: Rto,
    /// Congestion window (§7.2), bytes.
    pub(crate) cwnd: u32,
    /// Slow-start threshold (§7.2), bytes.
    pub(crate) ssthresh: u32,
    /// partial_bytes_acked (§7.2.2).
    pub(crate) partial_bytes_acked: u32,
    /// Bytes of DATA outstanding on this path (sent, not acknowledged, not marked for
    /// retransmission).
    pub(crate) flight_size: u32,
    /// Consecutive errors (T3 or heartbeat timeouts) since the last acknowledgement (§8.2).
    pub(crate) error_count: u32,
    /// The IP-level path MTU.
    pub(crate) pmtu: u16,
    /// The TSN whose acknowledgement gives the next RTT measurement and its send time
    /// (one measurement per round trip, Karn's rule: never a retransmitted TSN; §6.3.1 C4/C5).
    pub(crate) rtt_probe: Option<(Tsn, Timestamp)>,
    /// When DATA was last sent on the path (for the idle cwnd decay of §7.2.1 and the idle
    /// test of heartbeats, §8.3).
    pub(crate) last_data_sent: Option<Timestamp>,
    /// Something usable for an RTT measurement went to the path during the current heartbeat
    /// period, so it is not idle (§8.3).
    pub(crate) sent_in_hb_period: bool,
    /// The nonce of the heartbeat in flight, if one is unacknowledged.
    pub(crate) hb_outstanding: Option<u64>,
    /// The peer deleted the address with an ASCONF (RFC 5061 §5.2): the path stays in the
    /// table (its index is referenced by chunks in flight) but is never used again.
    pub(crate) removed: bool,
}

impl Path {
    pub(crate) fn new(
        remote: IpAddr,
        local: Option<IpAddr>,
        encaps_port: u16,
        state: PathState,
        config: &AssociationConfig,
    ) -> Path {
        let mut path = Path {
            remote,
            local,
            encaps_port,
            state,
            rto: Rto::new(config),
            cwnd: 0,
            ssthresh: u32::MAX,
            partial_bytes_acked: 0,
            flight_size: 0,
            error_count: 0,
            pmtu: config.pmtu,
            rtt_probe: None,
            last_data_sent: None,
            sent_in_hb_period: false,
            hb_outstanding: None,
            removed: false,
        };
        path.cwnd = path.initial_cwnd();
        path
    }

    /// The largest SCTP packet (common header and chunks) for this path.
    pub(crate) fn max_packet(&self) -> usize {
        let ip = match self.remote {
            IpAddr::V4(_) => IPV4_HEADER,
            IpAddr::V6(_) => IPV6_HEADER,
        };
        let udp = if self.encaps_port != 0 { UDP_HEADER } else { 0 };
        usize::from(self.pmtu).saturating_sub(ip + udp)
    }

    /// The "MTU" of the congestion control formulas: the SCTP packet size of the path.
    pub(crate) fn mtu(&self) -> u32 {
        u32::try_from(self.max_packet()).unwrap_or(u32::MAX)
    }

    /// RFC 9260 §7.2.1: initial cwnd = min(4*MTU, max(2*MTU, 4404)).
    pub(crate) fn initial_cwnd(&self) -> u32 {
        let mtu = self.mtu();
        (4 * mtu).min((2 * mtu).max(4404))
    }

    /// Sets ssthresh from the peer's a_rwnd at the start of the association (§7.2.1).
    pub(crate) fn init_congestion(&mut self, peer_rwnd: u32) {
        self.cwnd = self.initial_cwnd();
        self.ssthresh = peer_rwnd;
        self.partial_bytes_acked = 0;
    }

    /// RFC 9260 §7.2.1: a path idle for an RTO has its cwnd decay to max(cwnd/2, 4*MTU)
    /// per RTO; applied lazily when data is sent again.
    pub(crate) fn decay_idle_cwnd(&mut self, now: Timestamp) {
        if self.flight_size != 0 {
            return;
        }
        let Some(last) = self.last_data_sent else {
            return;
        };
        let rto = self.rto.rto();
        if rto.is_zero() {
            return;
        }
        let idle = now.saturating_duration_since(last);
        let periods = (idle.as_micros() / rto.as_micros().max(1)).min(32);
        let floor = 4 * self.mtu();
        for _ in 0..periods {
            if self.cwnd <= floor {
                break;
            }
            self.cwnd = (self.cwnd / 2).max(floor);
        }
    }

    /// Congestion window growth for `acked` bytes newly acknowledged by a SACK
    /// (§7.2.1 slow start, §7.2.2 congestion avoidance).
    ///
    /// `flight_before` is the flight size before the SACK was processed, `cum_advanced`
    /// whether the SACK advanced the cumulative ack point, `in_fast_recovery` whether the
    /// association is in fast recovery (§7.2.4).
    pub(crate) fn on_bytes_acked(
        &mut self,
        acked: u32,
        flight_before: u32,
        cum_advanced: bool,
        in_fast_recovery: bool,
        config: &AssociationConfig,
    ) {
        if acked == 0 {
            return;
        }
        let mtu = self.mtu();
        // "Fully utilized": before the SACK there was no room for another full packet.
        let fully_utilized = flight_before.saturating_add(mtu) > self.cwnd;
        if self.cwnd <= self.ssthresh {
            // RFC 9260 §7.2.1: slow start only if cwnd is fully utilized, the SACK advances
            // the cumulative TSN ack point and the sender is not in fast recovery; grow by at
            // most min(acked, L * MTU).
            if fully_utilized && cum_advanced && !in_fast_recovery {
                let limit = config.slow_start_abc_limit.saturating_mul(mtu);
                self.cwnd = self.cwnd.saturating_add(acked.min(limit));
            }
        } else {
            // RFC 9260 §7.2.2: congestion avoidance.
            self.partial_bytes_acked = self.partial_bytes_acked.saturating_add(acked);
            if self.partial_bytes_acked >= self.cwnd
                && flight_before >= self.cwnd
                && cum_advanced
                && !in_fast_recovery
            {
                self.partial_bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mtu);
            }
        }
    }

    /// Called when everything outstanding on the path has been acknowledged (§7.2.2).
    pub(crate) fn on_all_acked(&mut self) {
        self.partial_bytes_acked = 0;
    }

    /// RFC 9260 §7.2.3: loss detected by the T3-rtx timer.
    pub(crate) fn on_t3_expired(&mut self) {
        let mtu = self.mtu();
        self.ssthresh = (self.cwnd / 2).max(4 * mtu);
        self.cwnd = mtu;
        self.partial_bytes_acked = 0;
    }

    /// RFC 9260 §7.2.3/§7.2.4: loss detected by fast retransmit, on entering fast recovery.
    pub(crate) fn on_fast_retransmit(&mut self) {
        let mtu = self.mtu();
        self.ssthresh = (self.cwnd / 2).max(4 * mtu);
        self.cwnd = self.ssthresh;
        self.partial_bytes_acked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn cfg() -> AssociationConfig {
        AssociationConfig::default()
    }

    fn path() -> Path {
        Path::new(
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            None,
            0,
            PathState::Active,
            &cfg(),
        )
    }

    #[test]
    fn rto_starts_at_rto_initial() {
        assert_eq!(Rto::new(&cfg()).rto(), Duration::from_secs(1));
    }

    #[test]
    fn first_rtt_measurement_sets_srtt_and_half_rttvar() {
        let c = AssociationConfig {
            rto_min: Duration::from_millis(10),
            ..cfg()
        };
        let mut rto = Rto::new(&c);
        rto.measure(Duration::from_millis(100), &c);
        assert_eq!(rto.srtt(), Some(Duration::from_millis(100)));
        // RTO = 100 + 4 * 50 = 300 ms.
        assert_eq!(rto.rto(), Duration::from_millis(300));
        // C3 with R' = 100: RTTVAR = 3/4 * 50 + 1/4 * 0 = 37.5; SRTT = 100; RTO = 250 ms.
        rto.measure(Duration::from_millis(100), &c);
        assert_eq!(rto.rto(), Duration::from_micros(250_000));
    }

    #[test]
    fn rto_is_clamped_to_rto_min_and_rto_max() {
        let c = cfg();
        let mut rto = Rto::new(&c);
        rto.measure(Duration::from_millis(1), &c);
        assert_eq!(rto.rto(), Duration::from_secs(1));
        rto.measure(Duration::from_secs(1000), &c);
        assert_eq!(rto.rto(), Duration::from_secs(60));
    }

    #[test]
    fn backoff_doubles_and_saturates_at_rto_max() {
        let c = cfg();
        let mut rto = Rto::new(&c);
        rto.back_off(&c);
        assert_eq!(rto.rto(), Duration::from_secs(2));
        for _ in 0..100 {
            rto.back_off(&c);
        }
        assert_eq!(rto.rto(), Duration::from_secs(60));
    }

    #[test]
    fn initial_cwnd_follows_section_7_2_1() {
        let p = path();
        // pmtu 1280 over IPv4 raw: SCTP packet 1260 -> min(5040, max(2520, 4404)) = 4404.
        assert_eq!(p.mtu(), 1260);
        assert_eq!(p.initial_cwnd(), 4404);
    }

    #[test]
    fn slow_start_grows_by_at_most_one_mtu_per_sack() {
        let mut p = path();
        p.init_congestion(100_000);
        let before = p.cwnd;
        p.on_bytes_acked(3000, before, true, false, &cfg());
        assert_eq!(p.cwnd, before + p.mtu());
    }

    #[test]
    fn slow_start_does_not_grow_an_underused_window() {
        let mut p = path();
        p.init_congestion(100_000);
        let before = p.cwnd;
        p.on_bytes_acked(1000, 1000, true, false, &cfg());
        assert_eq!(p.cwnd, before);
    }

    #[test]
    fn congestion_avoidance_adds_one_mtu_per_cwnd_of_acked_bytes() {
        let mut p = path();
        p.init_congestion(100_000);
        p.cwnd = 10_000;
        p.ssthresh = 5_000;
        p.on_bytes_acked(6_000, 10_000, true, false, &cfg());
        assert_eq!(p.cwnd, 10_000);
        p.on_bytes_acked(6_000, 10_000, true, false, &cfg());
        assert_eq!(p.cwnd, 10_000 + p.mtu());
        assert_eq!(p.partial_bytes_acked, 2_000);
    }

    #[test]
    fn t3_timeout_collapses_cwnd_to_one_mtu() {
        let mut p = path();
        p.cwnd = 40_000;
        p.on_t3_expired();
        assert_eq!(p.cwnd, p.mtu());
        assert_eq!(p.ssthresh, 20_000);
    }

    #[test]
    fn fast_retransmit_halves_cwnd_with_a_floor_of_four_mtus() {
        let mut p = path();
        p.cwnd = 6_000;
        p.on_fast_retransmit();
        assert_eq!(p.ssthresh, 4 * p.mtu());
        assert_eq!(p.cwnd, 4 * p.mtu());
    }

    #[test]
    fn an_idle_path_halves_its_cwnd_per_rto() {
        let mut p = path();
        p.cwnd = 80_000;
        p.last_data_sent = Some(Timestamp::ZERO);
        p.decay_idle_cwnd(Timestamp::from_millis(2500));
        assert_eq!(p.cwnd, 20_000);
    }

    #[test]
    fn udp_encapsulation_and_ipv6_shrink_the_packet() {
        let mut p = path();
        p.encaps_port = 9899;
        assert_eq!(p.max_packet(), 1280 - 20 - 8);
        p.remote = "fd00::1".parse().unwrap();
        assert_eq!(p.max_packet(), 1280 - 40 - 8);
    }
}
