//! The PU side of RSPLIB's services: one object per session of a
//! [`session::Client`](crate::session::Client).
//!
//! # Call contract
//!
//! Create the object for a session (`new(session, config, now)`), feed it every
//! [`client::Event`](crate::session::client::Event) of the session core (events of other
//! sessions are ignored, so a driver may hand all events to all objects), call
//! `handle_timeout` at `poll_timeout`, and apply the [`ServiceOutput`] each call fills with
//! [`ServiceOutput::apply_to_client`].
//!
//! - [`PingPongClient`]: a Ping every interval while connected; checks that the PEs' reply
//!   numbers are consecutive across failovers (the cookie carries the next reply number),
//!   counting gaps and duplicates in RFC 1982 serial order.
//! - [`CalcAppClient`]: one job at a time, a new one [`CalcAppClientConfig::job_interval`]
//!   after the previous one completed; keep-alives while a job runs; a Reject or a
//!   keep-alive timeout asks for a failover. After a failover the job continues on the
//!   new PE from the cookie the session echoed, or is requested again when no cookie of it
//!   arrived after its Accept (an earlier cookie is the previous job's last one). Every job is counted completed exactly once; repeated completions are
//!   counted as duplicates, jobs of a session that failed as lost.
//! - [`EchoClient`]: the terminal; lines go out and must come back unchanged, in order.

use core::time::Duration;
use std::collections::VecDeque;

use super::wire::{CalcAppMessage, CalcAppType, PPID_CALCAPP, PPID_PINGPONG, PingPongMessage};
use super::{PPID_PLAIN, ServiceOutput, serial_lt};
use crate::Timestamp;
use crate::session::SessionId;
use crate::session::client::Event;

/// Whether a session event is about `session` and what it means for a service.
enum Seen<'a> {
    Up,
    Down,
    Gone,
    Data(u32, &'a [u8]),
    Cookie,
    Other,
}

fn classify(session: SessionId, e: &Event) -> Seen<'_> {
    match e {
        Event::Connected { session: s, .. } | Event::FailoverComplete { session: s, .. }
            if *s == session =>
        {
            Seen::Up
        }
        Event::FailoverNecessary { session: s, .. } if *s == session => Seen::Down,
        Event::Failed { session: s, .. } | Event::Closed { session: s } if *s == session => {
            Seen::Gone
        }
        Event::Data {
            session: s,
            ppid,
            bytes,
        } if *s == session => Seen::Data(*ppid, bytes),
        Event::CookieReceived { session: s } if *s == session => Seen::Cookie,
        _ => Seen::Other,
    }
}

// ---------------------------------------------------------------------------------------
// PingPong
// ---------------------------------------------------------------------------------------

/// [`PingPongClient`] settings.
#[derive(Debug, Clone)]
pub struct PingPongConfig {
    /// Time between Pings (default 1 s).
    pub interval: Duration,
    /// Payload bytes per Ping (default 16).
    pub payload_len: usize,
    /// Stop after this many Pings (default: never).
    pub max_pings: Option<u64>,
}

impl Default for PingPongConfig {
    fn default() -> Self {
        PingPongConfig {
            interval: Duration::from_secs(1),
            payload_len: 16,
            max_pings: None,
        }
    }
}

/// [`PingPongClient`] counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PingPongStats {
    /// Pings sent.
    pub pings_sent: u64,
    /// Pongs received.
    pub pongs_received: u64,
    /// Pongs whose reply number followed the previous one.
    pub consecutive: u64,
    /// Reply numbers skipped.
    pub gaps: u64,
    /// Pongs with a reply number seen before (serial order).
    pub duplicates: u64,
    /// Pongs whose message number was not a Ping of ours, or that did not decode.
    pub malformed: u64,
}

/// A PingPong session (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct PingPongClient {
    session: SessionId,
    config: PingPongConfig,
    connected: bool,
    next_message_no: u64,
    expected_reply: Option<u64>,
    next_ping: Option<Timestamp>,
    stats: PingPongStats,
}

impl PingPongClient {
    /// A client for `session` (Pings start once it is connected).
    pub fn new(session: SessionId, config: PingPongConfig, _now: Timestamp) -> Self {
        PingPongClient {
            session,
            config,
            connected: false,
            next_message_no: 1,
            expected_reply: None,
            next_ping: None,
            stats: PingPongStats::default(),
        }
    }

    /// The session.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The counters.
    pub fn stats(&self) -> &PingPongStats {
        &self.stats
    }

    /// The reply number the next Pong should carry.
    pub fn expected_reply(&self) -> Option<u64> {
        self.expected_reply
    }

    /// When [`PingPongClient::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.next_ping.filter(|_| self.connected)
    }

    /// Feeds one event of the session core.
    pub fn handle_event(&mut self, now: Timestamp, event: &Event, out: &mut ServiceOutput) {
        match classify(self.session, event) {
            Seen::Up => {
                self.connected = true;
                self.next_ping = Some(now);
                self.handle_timeout(now, out);
            }
            Seen::Down | Seen::Gone => {
                self.connected = false;
                self.next_ping = None;
            }
            Seen::Data(ppid, bytes) => self.on_pong(ppid, bytes),
            Seen::Cookie | Seen::Other => {}
        }
    }

    /// Sends the Ping that is due.
    pub fn handle_timeout(&mut self, now: Timestamp, out: &mut ServiceOutput) {
        if !self.connected || self.next_ping.is_none_or(|t| t > now) {
            return;
        }
        if self
            .config
            .max_pings
            .is_some_and(|m| self.stats.pings_sent >= m)
        {
            self.next_ping = None;
            return;
        }
        let ping = PingPongMessage::Ping {
            message_no: self.next_message_no,
            data: vec![b'P'; self.config.payload_len],
        };
        let mut b = vec![0; ping.encoded_len()];
        if let Ok(n) = ping.encode(&mut b) {
            b.truncate(n);
            out.send(PPID_PINGPONG, b);
            self.stats.pings_sent += 1;
            self.next_message_no = self.next_message_no.wrapping_add(1);
        }
        self.next_ping =
            Some(now.saturating_add(self.config.interval.max(Duration::from_micros(1))));
    }

    fn on_pong(&mut self, ppid: u32, bytes: &[u8]) {
        let Ok(PingPongMessage::Pong {
            message_no,
            reply_no,
            ..
        }) = PingPongMessage::decode(bytes)
        else {
            self.stats.malformed += 1;
            return;
        };
        if ppid != PPID_PINGPONG || !serial_lt(message_no, self.next_message_no) {
            self.stats.malformed += 1;
            return;
        }
        self.stats.pongs_received += 1;
        match self.expected_reply {
            None => self.expected_reply = Some(reply_no.wrapping_add(1)),
            Some(e) if e == reply_no => {
                self.stats.consecutive += 1;
                self.expected_reply = Some(e.wrapping_add(1));
            }
            Some(e) if serial_lt(reply_no, e) => self.stats.duplicates += 1,
            Some(e) => {
                self.stats.gaps += reply_no.wrapping_sub(e);
                self.expected_reply = Some(reply_no.wrapping_add(1));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// CalcApp
// ---------------------------------------------------------------------------------------

/// [`CalcAppClient`] settings.
#[derive(Debug, Clone)]
pub struct CalcAppClientConfig {
    /// Pause between the completion of a job and the next request (default 1 s).
    pub job_interval: Duration,
    /// Calculations per job (default 5e6).
    pub job_size: u64,
    /// Keep-alive interval while a job runs (default 1 s).
    pub keep_alive_interval: Duration,
    /// How long a keep-alive may go unanswered before a failover (default 2 s).
    pub keep_alive_timeout: Duration,
    /// Stop after this many jobs (default: never).
    pub max_jobs: Option<u64>,
}

impl Default for CalcAppClientConfig {
    fn default() -> Self {
        CalcAppClientConfig {
            job_interval: Duration::from_secs(1),
            job_size: 5_000_000,
            keep_alive_interval: Duration::from_secs(1),
            keep_alive_timeout: Duration::from_secs(2),
            max_jobs: None,
        }
    }
}

/// [`CalcAppClient`] counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CalcAppClientStats {
    /// Jobs started.
    pub jobs_started: u64,
    /// Jobs completed (each once).
    pub jobs_completed: u64,
    /// Completions of jobs already completed (or never started).
    pub duplicate_completions: u64,
    /// Jobs lost with a session that failed.
    pub lost: u64,
    /// Requests sent again after a failover without a cookie of the job.
    pub requests_resent: u64,
    /// Rejects received.
    pub rejects: u64,
    /// Keep-alives not answered in time.
    pub keep_alive_timeouts: u64,
    /// Failovers this client asked for.
    pub failovers_requested: u64,
    /// Messages that did not decode.
    pub malformed: u64,
    /// Well-formed messages about another job.
    pub unexpected: u64,
}

#[derive(Debug, Clone)]
struct ClientJob {
    id: u32,
    /// A PE accepted the job. Cookies before that belong to the previous job (the PE's
    /// last cookie of a finished job follows its Complete).
    accepted: bool,
    /// A cookie of this job arrived (a failover continues it on the next PE).
    cookie: bool,
}

/// A CalcApp session (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct CalcAppClient {
    session: SessionId,
    config: CalcAppClientConfig,
    connected: bool,
    job: Option<ClientJob>,
    last_job_id: u32,
    next_job: Option<Timestamp>,
    next_keep_alive: Option<Timestamp>,
    keep_alive_deadline: Option<Timestamp>,
    stats: CalcAppClientStats,
}

impl CalcAppClient {
    /// A client for `session`; the first job starts once it is connected.
    pub fn new(session: SessionId, config: CalcAppClientConfig, now: Timestamp) -> Self {
        CalcAppClient {
            session,
            config,
            connected: false,
            job: None,
            last_job_id: 0,
            next_job: Some(now),
            next_keep_alive: None,
            keep_alive_deadline: None,
            stats: CalcAppClientStats::default(),
        }
    }

    /// The session.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The counters.
    pub fn stats(&self) -> &CalcAppClientStats {
        &self.stats
    }

    /// Whether a job is running.
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Whether `max_jobs` jobs have completed (or the session is gone).
    pub fn finished(&self) -> bool {
        self.job.is_none() && self.next_job.is_none()
    }

    /// When [`CalcAppClient::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if !self.connected {
            return None;
        }
        [
            self.next_job,
            self.next_keep_alive,
            self.keep_alive_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Feeds one event of the session core.
    pub fn handle_event(&mut self, now: Timestamp, event: &Event, out: &mut ServiceOutput) {
        match classify(self.session, event) {
            Seen::Up => {
                let failover = matches!(event, Event::FailoverComplete { .. });
                self.connected = true;
                if let Some(j) = &self.job
                    && failover
                    && !j.cookie
                {
                    // The new PE has no state of this job: ask again.
                    let id = j.id;
                    self.stats.requests_resent += 1;
                    self.request(id, out);
                }
                if self.job.is_some() {
                    self.arm_keep_alive(now);
                }
                self.handle_timeout(now, out);
            }
            Seen::Down => {
                self.connected = false;
                self.next_keep_alive = None;
                self.keep_alive_deadline = None;
            }
            Seen::Gone => {
                self.connected = false;
                if self.job.take().is_some() {
                    self.stats.lost += 1;
                }
                self.next_job = None;
                self.next_keep_alive = None;
                self.keep_alive_deadline = None;
            }
            Seen::Cookie => {
                if let Some(j) = &mut self.job
                    && j.accepted
                {
                    j.cookie = true;
                }
            }
            Seen::Data(ppid, bytes) => self.on_message(now, ppid, bytes, out),
            Seen::Other => {}
        }
    }

    /// Starts the next job, sends keep-alives and notices keep-alive timeouts.
    pub fn handle_timeout(&mut self, now: Timestamp, out: &mut ServiceOutput) {
        if !self.connected {
            return;
        }
        if self.keep_alive_deadline.is_some_and(|t| t <= now) {
            // The PE is hung (or gone without the association noticing): fail over.
            self.stats.keep_alive_timeouts += 1;
            self.ask_failover(out);
            return;
        }
        if self.job.is_none() && self.next_job.is_some_and(|t| t <= now) {
            if self
                .config
                .max_jobs
                .is_some_and(|m| self.stats.jobs_started >= m)
            {
                self.next_job = None;
                return;
            }
            self.next_job = None;
            self.last_job_id = self.last_job_id.wrapping_add(1).max(1);
            let id = self.last_job_id;
            self.job = Some(ClientJob {
                id,
                accepted: false,
                cookie: false,
            });
            self.stats.jobs_started += 1;
            self.request(id, out);
            self.arm_keep_alive(now);
        }
        if let Some(j) = &self.job
            && self.next_keep_alive.is_some_and(|t| t <= now)
        {
            let ka = CalcAppMessage {
                kind: CalcAppType::KeepAlive,
                job_id: j.id,
                job_size: self.config.job_size,
                completed: 0,
            };
            out.send(PPID_CALCAPP, encode(&ka));
            self.next_keep_alive = None;
            self.keep_alive_deadline = Some(now.saturating_add(self.config.keep_alive_timeout));
        }
    }

    fn request(&mut self, id: u32, out: &mut ServiceOutput) {
        let m = CalcAppMessage {
            kind: CalcAppType::Request,
            job_id: id,
            job_size: self.config.job_size,
            completed: 0,
        };
        out.send(PPID_CALCAPP, encode(&m));
    }

    fn arm_keep_alive(&mut self, now: Timestamp) {
        self.next_keep_alive = Some(now.saturating_add(self.config.keep_alive_interval));
        self.keep_alive_deadline = None;
    }

    fn ask_failover(&mut self, out: &mut ServiceOutput) {
        self.stats.failovers_requested += 1;
        out.failover = true;
        self.connected = false;
        self.next_keep_alive = None;
        self.keep_alive_deadline = None;
    }

    fn on_message(&mut self, now: Timestamp, ppid: u32, bytes: &[u8], out: &mut ServiceOutput) {
        let m = match CalcAppMessage::decode(bytes) {
            Ok(m) if ppid == PPID_CALCAPP => m,
            _ => {
                self.stats.malformed += 1;
                return;
            }
        };
        let current = self.job.as_ref().map(|j| j.id);
        match m.kind {
            CalcAppType::Complete if current == Some(m.job_id) => {
                self.stats.jobs_completed += 1;
                // The session's cookie is of this job: never echo it again.
                out.clear_cookie = true;
                self.job = None;
                self.next_keep_alive = None;
                self.keep_alive_deadline = None;
                self.next_job = Some(now.saturating_add(self.config.job_interval));
                self.handle_timeout(now, out);
            }
            CalcAppType::Complete => self.stats.duplicate_completions += 1,
            CalcAppType::Accept if current == Some(m.job_id) => {
                if let Some(j) = &mut self.job {
                    j.accepted = true;
                }
            }
            CalcAppType::Reject if current == Some(m.job_id) => {
                self.stats.rejects += 1;
                // The PE is full: another PE gets the job.
                self.ask_failover(out);
            }
            CalcAppType::KeepAlive if current == Some(m.job_id) => {
                // The PE checks that we are still there (RSPLIB's PE drops the job
                // otherwise).
                let ack = CalcAppMessage {
                    kind: CalcAppType::KeepAliveAck,
                    ..m
                };
                out.send(PPID_CALCAPP, encode(&ack));
            }
            CalcAppType::Accept | CalcAppType::Reject | CalcAppType::KeepAlive => {
                // About a job this client no longer runs (e.g. resumed from a stale
                // cookie by a PE): ignored.
                self.stats.unexpected += 1;
            }
            CalcAppType::KeepAliveAck => {
                self.keep_alive_deadline = None;
                if self.job.is_some() {
                    self.arm_keep_alive(now);
                }
            }
            _ => self.stats.malformed += 1,
        }
    }
}

fn encode(m: &CalcAppMessage) -> Vec<u8> {
    let mut b = vec![0; m.encoded_len()];
    let n = m.encode(&mut b).unwrap_or(0);
    b.truncate(n);
    b
}

// ---------------------------------------------------------------------------------------
// Echo (terminal)
// ---------------------------------------------------------------------------------------

/// [`EchoClient`] counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EchoStats {
    /// Lines sent.
    pub lines_sent: u64,
    /// Lines that came back unchanged, in order.
    pub echoed: u64,
    /// Messages that did not match the oldest outstanding line.
    pub mismatched: u64,
    /// Lines outstanding when the session failed over (their echo will not come).
    pub lost: u64,
    /// Lines refused (not connected, or too many outstanding).
    pub refused: u64,
}

/// The terminal over an Echo session (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct EchoClient {
    session: SessionId,
    connected: bool,
    outstanding: VecDeque<Vec<u8>>,
    max_outstanding: usize,
    received: VecDeque<Vec<u8>>,
    stats: EchoStats,
}

impl EchoClient {
    /// A terminal for `session` with at most `max_outstanding` lines awaiting their echo.
    pub fn new(session: SessionId, max_outstanding: usize) -> Self {
        EchoClient {
            session,
            connected: false,
            outstanding: VecDeque::new(),
            max_outstanding: max_outstanding.max(1),
            received: VecDeque::new(),
            stats: EchoStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &EchoStats {
        &self.stats
    }

    /// Whether the session is connected.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Sends one line (PPID 0); `false` if refused (counted).
    pub fn send_line(&mut self, line: &[u8], out: &mut ServiceOutput) -> bool {
        if !self.connected || self.outstanding.len() >= self.max_outstanding {
            self.stats.refused += 1;
            return false;
        }
        self.outstanding.push_back(line.to_vec());
        out.send(PPID_PLAIN, line.to_vec());
        self.stats.lines_sent += 1;
        true
    }

    /// The next message received (for the terminal to print).
    pub fn poll_received(&mut self) -> Option<Vec<u8>> {
        self.received.pop_front()
    }

    /// Feeds one event of the session core.
    pub fn handle_event(&mut self, _now: Timestamp, event: &Event, _out: &mut ServiceOutput) {
        match classify(self.session, event) {
            Seen::Up => self.connected = true,
            Seen::Down | Seen::Gone => {
                self.connected = false;
                self.stats.lost += self.outstanding.len() as u64;
                self.outstanding.clear();
            }
            Seen::Data(_, bytes) => {
                if self.outstanding.front().is_some_and(|l| l == bytes) {
                    self.outstanding.pop_front();
                    self.stats.echoed += 1;
                } else {
                    self.stats.mismatched += 1;
                }
                if self.received.len() < self.max_outstanding {
                    self.received.push_back(bytes.to_vec());
                }
            }
            Seen::Cookie | Seen::Other => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PeIdentifier;

    const S: SessionId = SessionId(1);

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn up(first: bool) -> Event {
        let pe = PeIdentifier(1);
        if first {
            Event::Connected { session: S, pe }
        } else {
            Event::FailoverComplete { session: S, pe }
        }
    }

    fn pong(message_no: u64, reply_no: u64) -> Event {
        let m = PingPongMessage::Pong {
            message_no,
            reply_no,
            data: Vec::new(),
        };
        let mut bytes = vec![0; m.encoded_len()];
        m.encode(&mut bytes).expect("fits");
        Event::Data {
            session: S,
            ppid: PPID_PINGPONG,
            bytes,
        }
    }

    fn calc(kind: CalcAppType, job_id: u32) -> Event {
        Event::Data {
            session: S,
            ppid: PPID_CALCAPP,
            bytes: encode(&CalcAppMessage {
                kind,
                job_id,
                job_size: 10,
                completed: 10,
            }),
        }
    }

    fn calc_sent(out: &ServiceOutput) -> Vec<(CalcAppType, u32)> {
        out.messages
            .iter()
            .map(|m| {
                let c = CalcAppMessage::decode(&m.bytes).expect("valid");
                (c.kind, c.job_id)
            })
            .collect()
    }

    #[test]
    fn pingpong_pings_on_its_interval_only_while_connected() {
        let config = PingPongConfig {
            interval: Duration::from_millis(100),
            ..PingPongConfig::default()
        };
        let mut c = PingPongClient::new(S, config, t(0));
        let mut out = ServiceOutput::new();
        assert_eq!(c.poll_timeout(), None);
        c.handle_event(t(0), &up(true), &mut out);
        assert_eq!(out.messages.len(), 1);
        assert_eq!(c.poll_timeout(), Some(t(100)));
        c.handle_timeout(t(50), &mut out);
        assert_eq!(out.messages.len(), 1);
        c.handle_timeout(t(100), &mut out);
        assert_eq!(out.messages.len(), 2);
        c.handle_event(
            t(150),
            &Event::FailoverNecessary {
                session: S,
                pe: PeIdentifier(1),
            },
            &mut out,
        );
        assert_eq!(c.poll_timeout(), None);
        // Events of other sessions change nothing.
        c.handle_event(
            t(160),
            &Event::Connected {
                session: SessionId(2),
                pe: PeIdentifier(2),
            },
            &mut out,
        );
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn pingpong_counts_consecutive_replies_gaps_and_duplicates() {
        let mut c = PingPongClient::new(S, PingPongConfig::default(), t(0));
        let mut out = ServiceOutput::new();
        c.handle_event(t(0), &up(true), &mut out);
        for _ in 0..5 {
            c.next_ping = Some(t(0));
            c.handle_timeout(t(0), &mut out);
        }
        for (m, r) in [(1, 7), (2, 8), (3, 8), (4, 11), (5, 12)] {
            c.handle_event(t(1), &pong(m, r), &mut out);
        }
        // A Pong for a Ping never sent.
        c.handle_event(t(1), &pong(99, 13), &mut out);
        let st = c.stats();
        assert_eq!(st.pongs_received, 5);
        assert_eq!(st.consecutive, 2); // 8 after 7, 12 after 11
        assert_eq!(st.duplicates, 1); // 8 again
        assert_eq!(st.gaps, 2); // 9 and 10 skipped
        assert_eq!(st.malformed, 1);
        assert_eq!(c.expected_reply(), Some(13));
    }

    #[test]
    fn calcapp_counts_each_job_once_and_duplicates_apart() {
        let config = CalcAppClientConfig {
            job_interval: Duration::from_millis(100),
            max_jobs: Some(2),
            ..CalcAppClientConfig::default()
        };
        let mut c = CalcAppClient::new(S, config, t(0));
        let mut out = ServiceOutput::new();
        c.handle_event(t(0), &up(true), &mut out);
        assert_eq!(calc_sent(&out), [(CalcAppType::Request, 1)]);
        c.handle_event(t(10), &calc(CalcAppType::Accept, 1), &mut out);
        c.handle_event(t(20), &calc(CalcAppType::Complete, 1), &mut out);
        c.handle_event(t(21), &calc(CalcAppType::Complete, 1), &mut out);
        assert_eq!(c.stats().jobs_completed, 1);
        assert_eq!(c.stats().duplicate_completions, 1);
        assert_eq!(c.poll_timeout(), Some(t(120)));
        let mut out = ServiceOutput::new();
        c.handle_timeout(t(120), &mut out);
        assert_eq!(calc_sent(&out), [(CalcAppType::Request, 2)]);
        c.handle_event(t(130), &calc(CalcAppType::Complete, 2), &mut out);
        c.handle_timeout(t(300), &mut out);
        assert_eq!(c.stats().jobs_started, 2);
        assert!(c.finished());
    }

    #[test]
    fn calcapp_fails_over_on_reject_and_re_requests_a_job_without_a_cookie() {
        let mut c = CalcAppClient::new(S, CalcAppClientConfig::default(), t(0));
        let mut out = ServiceOutput::new();
        c.handle_event(t(0), &up(true), &mut out);
        let mut out = ServiceOutput::new();
        c.handle_event(t(5), &calc(CalcAppType::Reject, 1), &mut out);
        assert!(out.failover);
        assert_eq!(c.stats().rejects, 1);
        let mut out = ServiceOutput::new();
        c.handle_event(t(50), &up(false), &mut out);
        assert_eq!(calc_sent(&out), [(CalcAppType::Request, 1)]);
        assert_eq!(c.stats().requests_resent, 1);
        // With a cookie of the accepted job, the session's COOKIE_ECHO carries it: no new
        // request.
        c.handle_event(t(55), &calc(CalcAppType::Accept, 1), &mut out);
        c.handle_event(t(60), &Event::CookieReceived { session: S }, &mut out);
        let mut out = ServiceOutput::new();
        c.handle_event(t(70), &up(false), &mut out);
        assert!(calc_sent(&out).is_empty());
        assert_eq!(c.stats().jobs_started, 1);
    }

    #[test]
    fn calcapp_does_not_take_the_last_cookie_of_the_previous_job_for_the_next_one() {
        let config = CalcAppClientConfig {
            job_interval: Duration::ZERO,
            ..CalcAppClientConfig::default()
        };
        let mut c = CalcAppClient::new(S, config, t(0));
        let mut out = ServiceOutput::new();
        c.handle_event(t(0), &up(true), &mut out);
        c.handle_event(t(1), &calc(CalcAppType::Accept, 1), &mut out);
        let mut out = ServiceOutput::new();
        c.handle_event(t(9), &calc(CalcAppType::Complete, 1), &mut out);
        // The next job starts at once; the PE's final cookie of job 1 comes after.
        assert_eq!(calc_sent(&out), [(CalcAppType::Request, 2)]);
        c.handle_event(t(9), &Event::CookieReceived { session: S }, &mut out);
        c.handle_event(
            t(10),
            &Event::FailoverNecessary {
                session: S,
                pe: PeIdentifier(1),
            },
            &mut out,
        );
        let mut out = ServiceOutput::new();
        c.handle_event(t(20), &up(false), &mut out);
        assert_eq!(calc_sent(&out), [(CalcAppType::Request, 2)]);
    }

    #[test]
    fn calcapp_answers_the_pes_keep_alives_and_forgets_the_cookie_of_a_finished_job() {
        let mut c = CalcAppClient::new(S, CalcAppClientConfig::default(), t(0));
        let mut out = ServiceOutput::new();
        c.handle_event(t(0), &up(true), &mut out);
        c.handle_event(t(1), &calc(CalcAppType::Accept, 1), &mut out);
        let mut out = ServiceOutput::new();
        c.handle_event(t(2), &calc(CalcAppType::KeepAlive, 1), &mut out);
        assert_eq!(calc_sent(&out), [(CalcAppType::KeepAliveAck, 1)]);
        // Not for a job we do not run.
        let mut out = ServiceOutput::new();
        c.handle_event(t(3), &calc(CalcAppType::KeepAlive, 7), &mut out);
        assert!(out.messages.is_empty());
        assert_eq!(c.stats().unexpected, 1);
        c.handle_event(t(4), &calc(CalcAppType::Complete, 1), &mut out);
        assert!(out.clear_cookie);
    }

    #[test]
    fn calcapp_keep_alive_timeout_asks_for_failover() {
        let config = CalcAppClientConfig {
            keep_alive_interval: Duration::from_millis(100),
            keep_alive_timeout: Duration::from_millis(50),
            ..CalcAppClientConfig::default()
        };
        let mut c = CalcAppClient::new(S, config, t(0));
        let mut out = ServiceOutput::new();
        c.handle_event(t(0), &up(true), &mut out);
        let mut out = ServiceOutput::new();
        c.handle_timeout(t(100), &mut out);
        assert_eq!(calc_sent(&out), [(CalcAppType::KeepAlive, 1)]);
        // Answered: the next one comes an interval later.
        c.handle_event(t(120), &calc(CalcAppType::KeepAliveAck, 1), &mut out);
        assert_eq!(c.poll_timeout(), Some(t(220)));
        let mut out = ServiceOutput::new();
        c.handle_timeout(t(220), &mut out);
        assert_eq!(c.poll_timeout(), Some(t(270)));
        c.handle_timeout(t(270), &mut out);
        assert!(out.failover);
        assert_eq!(c.stats().keep_alive_timeouts, 1);
        // A session that fails for good loses the job.
        c.handle_event(
            t(300),
            &Event::Failed {
                session: S,
                reason: crate::session::client::FailReason::AttemptsExhausted,
            },
            &mut out,
        );
        assert_eq!(c.stats().lost, 1);
    }

    #[test]
    fn echo_client_matches_echoes_in_order_and_counts_lines_lost_in_a_failover() {
        let mut e = EchoClient::new(S, 2);
        let mut out = ServiceOutput::new();
        assert!(!e.send_line(b"early", &mut out));
        e.handle_event(t(0), &up(true), &mut out);
        assert!(e.send_line(b"one", &mut out));
        assert!(e.send_line(b"two", &mut out));
        assert!(!e.send_line(b"three", &mut out)); // two outstanding at most
        let echo = |b: &[u8]| Event::Data {
            session: S,
            ppid: 0,
            bytes: b.to_vec(),
        };
        e.handle_event(t(1), &echo(b"one"), &mut out);
        e.handle_event(t(1), &echo(b"zzz"), &mut out);
        assert_eq!(e.poll_received(), Some(b"one".to_vec()));
        e.handle_event(
            t(2),
            &Event::FailoverNecessary {
                session: S,
                pe: PeIdentifier(1),
            },
            &mut out,
        );
        let st = e.stats();
        assert_eq!(
            (st.lines_sent, st.echoed, st.mismatched, st.lost, st.refused),
            (2, 1, 1, 1, 2)
        );
    }
}
