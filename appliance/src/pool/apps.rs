//! The applications the [`Driver`](super::driver::Driver) runs on top of the session cores:
//!
//! - [`ServiceApp`]: a PE's services (a [`ServiceHost`]: Echo, Discard, Daytime, CharGen,
//!   PingPong, CalcApp) on a [`Server`]; with an adaptive policy it registers the host's
//!   load (or a fixed `--load`).
//! - [`ClientApp`]: pool user sessions on a [`Client`], each running a PingPong, CalcApp
//!   or Echo client; counts failovers and the longest gap between two replies of a
//!   session, and knows when its bounded run is over.
//!
//! Both publish their counters into a shared snapshot ([`ServerReport`], [`ClientReport`])
//! that the tools print periodically and `rsp demo` sums up, and tell what happens as one
//! line per event through a [`Say`] callback.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rserpool::Timestamp;
use rserpool::pe;
use rserpool::services::ServiceOutput;
use rserpool::services::client::{
    CalcAppClient, CalcAppClientConfig, CalcAppClientStats, EchoClient, EchoStats, PingPongClient,
    PingPongConfig, PingPongStats,
};
use rserpool::services::server::{ServiceHost, ServiceStats};
use rserpool::session::{Client, Server, SessionId, client, server};
use rserpool::wire::PoolHandle;

use super::driver::Application;

/// Where the applications tell what happens, one line per call.
pub type Say = Arc<dyn Fn(&str) + Send + Sync>;

/// A PE's state for the statistics printer.
#[derive(Debug, Clone, Default)]
pub struct ServerReport {
    /// The service counters.
    pub service: ServiceStats,
    /// Registered with a home registrar.
    pub registered: bool,
    /// The PE identifier.
    pub identifier: u32,
    /// Sessions now.
    pub sessions: usize,
    /// Home registrar changes seen.
    pub home_changes: u64,
    /// The load registered (adaptive policies).
    pub load: Option<u32>,
}

/// The PE side: a [`ServiceHost`] on a [`Server`].
///
/// Stopping: when `shutdown` is set (and the worker woken), the PE deregisters (RFC 5352
/// §3.2) and the run ends with the DEREGISTRATION_RESPONSE, or after
/// [`DEREGISTRATION_WAIT`] without one.
pub struct ServiceApp {
    host: ServiceHost,
    /// A fixed load (`--load`), else the host's load when `adaptive`.
    fixed_load: Option<u32>,
    adaptive: bool,
    last_load: Option<u32>,
    report: Arc<Mutex<ServerReport>>,
    say: Say,
    shutdown: Arc<AtomicBool>,
    /// Deregistering since: the run ends at the answer or [`DEREGISTRATION_WAIT`] later.
    leaving: Option<Timestamp>,
    done: bool,
}

/// How long a stopping PE waits for its DEREGISTRATION_RESPONSE.
pub const DEREGISTRATION_WAIT: Duration = Duration::from_secs(2);

impl ServiceApp {
    /// Services of `host`; `adaptive`: the policy carries a load.
    pub fn new(
        host: ServiceHost,
        adaptive: bool,
        fixed_load: Option<u32>,
        report: Arc<Mutex<ServerReport>>,
        say: Say,
    ) -> Self {
        ServiceApp {
            host,
            fixed_load,
            adaptive,
            last_load: None,
            report,
            say,
            shutdown: Arc::default(),
            leaving: None,
            done: false,
        }
    }

    /// Uses `flag` as the shutdown flag: set it, then wake the worker, to deregister and
    /// end the run.
    pub fn with_shutdown(mut self, flag: Arc<AtomicBool>) -> Self {
        self.shutdown = flag;
        self
    }

    fn after(&mut self, core: &mut Server, now: Timestamp) {
        self.host.drive(now, core);
        if self.adaptive {
            let load = self.fixed_load.unwrap_or_else(|| self.host.load());
            if self.last_load != Some(load) {
                self.last_load = Some(load);
                core.set_load(now, load);
            }
        }
        let mut r = self.report.lock().unwrap_or_else(PoisonError::into_inner);
        r.service = self.host.stats().clone();
        r.registered = core.pool_element().is_registered();
        r.identifier = core.pool_element().identifier().0;
        r.sessions = core.sessions();
        r.load = self.last_load;
    }
}

impl Application<Server> for ServiceApp {
    fn start(&mut self, core: &mut Server, now: Timestamp) {
        self.after(core, now);
    }

    fn event(&mut self, core: &mut Server, now: Timestamp, event: server::Event) {
        match &event {
            server::Event::Pe(pe::Event::Registered { registrar, update }) if !update => {
                (self.say)(&format!(
                    "registered as PE {:#010x}{}",
                    core.pool_element().identifier().0,
                    registrar.map_or(String::new(), |r| format!(" with registrar {r}"))
                ));
            }
            server::Event::Pe(pe::Event::HomeChanged { registrar }) => {
                self.report
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .home_changes += 1;
                (self.say)(&format!(
                    "PE {:#010x}: new home registrar{}",
                    core.pool_element().identifier().0,
                    registrar.map_or(String::new(), |r| format!(" {r}"))
                ));
            }
            server::Event::Pe(pe::Event::Deregistered { confirmed, .. }) => {
                (self.say)(&format!(
                    "deregistered{}",
                    if *confirmed { "" } else { " (not confirmed)" }
                ));
                self.done = true;
            }
            server::Event::Pe(pe::Event::RegistrationFailed { cause }) => {
                (self.say)(&format!("registration failed ({cause:?}); trying again"));
            }
            server::Event::CookieEcho { session, .. } => {
                (self.say)(&format!(
                    "PE {:#010x}: session {session} resumed from a cookie (failover)",
                    core.pool_element().identifier().0
                ));
            }
            _ => {}
        }
        self.host.handle_event(now, &event);
        self.after(core, now);
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        let leave = self.leaving.map(|t| t.saturating_add(DEREGISTRATION_WAIT));
        [self.host.poll_timeout(), leave]
            .into_iter()
            .flatten()
            .min()
    }

    fn timeout(&mut self, core: &mut Server, now: Timestamp) {
        if self
            .leaving
            .is_some_and(|t| now.saturating_duration_since(t) >= DEREGISTRATION_WAIT)
        {
            self.done = true;
        }
        self.host.handle_timeout(now);
        self.after(core, now);
    }

    fn poll(&mut self, core: &mut Server, now: Timestamp) {
        if self.leaving.is_none() && self.shutdown.load(Ordering::SeqCst) {
            self.leaving = Some(now);
            core.deregister(now);
        }
    }

    fn finished(&self) -> bool {
        self.done
    }
}

/// What a pool user session runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientKind {
    /// PingPong with these settings.
    PingPong(PingPongConfig),
    /// CalcApp with these settings.
    CalcApp(CalcAppClientConfig),
    /// Echo (the terminal): lines from the input queue.
    Echo,
}

enum Service {
    PingPong(PingPongClient),
    CalcApp(CalcAppClient),
    Echo(EchoClient),
}

/// One session of a [`ClientApp`].
struct Session {
    id: SessionId,
    service: Service,
    up: bool,
    failed: bool,
    /// When the last reply (pong, job progress, echo) arrived.
    last_reply: Option<Timestamp>,
    /// When the session lost its PE, while failing over.
    down_since: Option<Timestamp>,
    /// Failed over and no reply since: the next one is worth telling.
    resumed: bool,
}

/// A pool user's counters, summed over its sessions.
#[derive(Debug, Clone, Default)]
pub struct ClientReport {
    /// Sessions opened.
    pub sessions: usize,
    /// Sessions given up (no PE after the attempts).
    pub failed: u64,
    /// Failovers started.
    pub failovers: u64,
    /// Failovers completed (with the cookie echoed first).
    pub failovers_completed: u64,
    /// The longest time between two replies of one session.
    pub longest_gap: Duration,
    /// The longest failover (PE lost to new PE connected).
    pub longest_failover: Duration,
    /// PingPong counters.
    pub pingpong: PingPongStats,
    /// CalcApp counters.
    pub calcapp: CalcAppClientStats,
    /// CalcApp jobs running now.
    pub jobs_running: u64,
    /// Echo counters.
    pub echo: EchoStats,
    /// Every session has done its bounded work (or failed).
    pub finished: bool,
}

impl ClientReport {
    /// Whether nothing was lost: no session failed, PingPong reply numbers consecutive
    /// (no gap, no duplicate), every CalcApp job completed exactly once (or still running)
    /// and no echo lost or garbled.
    pub fn nothing_lost(&self) -> bool {
        self.failed == 0
            && self.pingpong.gaps == 0
            && self.pingpong.duplicates == 0
            && self.calcapp.duplicate_completions == 0
            && self.calcapp.lost == 0
            && self.calcapp.jobs_completed + self.jobs_running == self.calcapp.jobs_started
            && self.echo.mismatched == 0
    }

    /// Adds another report's counters.
    pub fn add(&mut self, o: &ClientReport) {
        self.sessions += o.sessions;
        self.failed += o.failed;
        self.failovers += o.failovers;
        self.failovers_completed += o.failovers_completed;
        self.longest_gap = self.longest_gap.max(o.longest_gap);
        self.longest_failover = self.longest_failover.max(o.longest_failover);
        let (p, q) = (&mut self.pingpong, &o.pingpong);
        p.pings_sent += q.pings_sent;
        p.pongs_received += q.pongs_received;
        p.consecutive += q.consecutive;
        p.gaps += q.gaps;
        p.duplicates += q.duplicates;
        p.malformed += q.malformed;
        let (c, d) = (&mut self.calcapp, &o.calcapp);
        c.jobs_started += d.jobs_started;
        c.jobs_completed += d.jobs_completed;
        c.duplicate_completions += d.duplicate_completions;
        c.lost += d.lost;
        c.requests_resent += d.requests_resent;
        c.rejects += d.rejects;
        c.keep_alive_timeouts += d.keep_alive_timeouts;
        c.failovers_requested += d.failovers_requested;
        c.malformed += d.malformed;
        self.jobs_running += o.jobs_running;
        let (e, f) = (&mut self.echo, &o.echo);
        e.lines_sent += f.lines_sent;
        e.echoed += f.echoed;
        e.mismatched += f.mismatched;
        e.lost += f.lost;
        e.refused += f.refused;
        self.finished &= o.finished;
    }
}

/// Lines for an Echo session and its replies, shared with the terminal's threads.
#[derive(Debug, Default)]
pub struct EchoIo {
    /// Lines to send (bounded by the reader thread).
    pub input: VecDeque<Vec<u8>>,
    /// Standard input ended.
    pub input_done: bool,
    /// Replies to print.
    pub output: VecDeque<Vec<u8>>,
}

/// The most lines waiting either way in [`EchoIo`].
pub const MAX_ECHO_QUEUE: usize = 1024;

/// The PU side: sessions of one pool on a [`Client`].
pub struct ClientApp {
    pool: PoolHandle,
    kind: ClientKind,
    count: usize,
    sessions: Vec<Session>,
    report: Arc<Mutex<ClientReport>>,
    say: Say,
    /// Prefix of what it says ("pu: "), may be empty.
    name: String,
    /// Echo: lines in, replies out.
    echo_io: Option<Arc<Mutex<EchoIo>>>,
    /// PingPong: how long to wait for the last pongs once every ping went out.
    linger: Duration,
    /// When every ping went out.
    all_sent: Option<Timestamp>,
    done: bool,
}

impl ClientApp {
    /// `count` sessions to `pool` running `kind`; `name` (if not empty) prefixes what it
    /// says.
    pub fn new(
        pool: PoolHandle,
        kind: ClientKind,
        count: usize,
        report: Arc<Mutex<ClientReport>>,
        say: Say,
        name: String,
    ) -> Self {
        ClientApp {
            pool,
            kind,
            count,
            sessions: Vec::new(),
            report,
            say,
            name: if name.is_empty() {
                name
            } else {
                format!("{name}: ")
            },
            echo_io: None,
            linger: Duration::from_secs(2),
            all_sent: None,
            done: false,
        }
    }

    /// Echo: the queues shared with the terminal's threads.
    pub fn with_echo_io(mut self, io: Arc<Mutex<EchoIo>>) -> Self {
        self.echo_io = Some(io);
        self
    }

    fn apply(
        &mut self,
        core: &mut Client,
        now: Timestamp,
        session: SessionId,
        mut out: ServiceOutput,
    ) {
        if !out.is_empty() {
            out.apply_to_client(now, core, session);
        }
    }

    /// Echo: moves waiting input lines to the session and replies to the output queue.
    fn pump_echo(&mut self, core: &mut Client, now: Timestamp) {
        let Some(io) = self.echo_io.clone() else {
            return;
        };
        let mut outs = Vec::new();
        {
            let mut io = io.lock().unwrap_or_else(PoisonError::into_inner);
            for s in &mut self.sessions {
                let Service::Echo(e) = &mut s.service else {
                    continue;
                };
                while let Some(r) = e.poll_received() {
                    if io.output.len() < MAX_ECHO_QUEUE {
                        io.output.push_back(r);
                    }
                }
                while e.is_connected() {
                    let Some(line) = io.input.pop_front() else {
                        break;
                    };
                    let mut out = ServiceOutput::new();
                    if !e.send_line(&line, &mut out) {
                        io.input.push_front(line);
                        break;
                    }
                    outs.push((s.id, out));
                }
            }
        }
        for (id, out) in outs {
            self.apply(core, now, id, out);
        }
    }

    fn publish(&mut self, now: Timestamp) {
        let mut r = ClientReport {
            sessions: self.sessions.len(),
            finished: true,
            ..ClientReport::default()
        };
        let old = self
            .report
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        r.failovers = old.failovers;
        r.failovers_completed = old.failovers_completed;
        r.longest_gap = old.longest_gap;
        r.longest_failover = old.longest_failover;
        let mut all_sent = true;
        let mut echo_pending = false;
        for s in &self.sessions {
            r.failed += u64::from(s.failed);
            match &s.service {
                Service::PingPong(p) => {
                    let st = p.stats();
                    r.add(&ClientReport {
                        pingpong: st.clone(),
                        finished: true,
                        ..ClientReport::default()
                    });
                    let max = match &self.kind {
                        ClientKind::PingPong(c) => c.max_pings,
                        _ => None,
                    };
                    if !s.failed && max.is_none_or(|m| st.pings_sent < m) {
                        all_sent = false;
                    }
                    if !s.failed && st.pongs_received < st.pings_sent {
                        echo_pending = true;
                    }
                }
                Service::CalcApp(c) => {
                    r.add(&ClientReport {
                        calcapp: c.stats().clone(),
                        jobs_running: u64::from(c.busy()),
                        finished: true,
                        ..ClientReport::default()
                    });
                    if !s.failed && !c.finished() {
                        all_sent = false;
                    }
                }
                Service::Echo(e) => {
                    r.add(&ClientReport {
                        echo: e.stats().clone(),
                        finished: true,
                        ..ClientReport::default()
                    });
                }
            }
        }
        // PingPong: once every ping went out, the last pongs get `linger` to arrive.
        if all_sent && self.all_sent.is_none() {
            self.all_sent = Some(now);
        }
        let lingered = self
            .all_sent
            .is_some_and(|t| !echo_pending || now.saturating_duration_since(t) >= self.linger);
        r.finished = match &self.kind {
            ClientKind::Echo => {
                self.echo_io.as_ref().is_some_and(|io| {
                    let io = io.lock().unwrap_or_else(PoisonError::into_inner);
                    io.input_done && io.input.is_empty()
                }) && self.sessions.iter().all(|s| match &s.service {
                    Service::Echo(e) => {
                        s.failed
                            || e.stats().echoed + e.stats().lost + e.stats().mismatched
                                >= e.stats().lines_sent
                    }
                    _ => true,
                })
            }
            _ => all_sent && lingered,
        };
        self.done = r.finished;
        *self.report.lock().unwrap_or_else(PoisonError::into_inner) = r;
    }

    fn note_reply(&mut self, idx: usize, now: Timestamp) {
        let s = &mut self.sessions[idx];
        if let Some(prev) = s.last_reply {
            let gap = now.saturating_duration_since(prev);
            let mut r = self.report.lock().unwrap_or_else(PoisonError::into_inner);
            if gap > r.longest_gap {
                r.longest_gap = gap;
            }
        }
        s.last_reply = Some(now);
    }
}

impl Application<Client> for ClientApp {
    fn start(&mut self, core: &mut Client, now: Timestamp) {
        for _ in 0..self.count {
            match core.connect(now, self.pool.clone()) {
                Ok(id) => {
                    let service = match &self.kind {
                        ClientKind::PingPong(c) => {
                            Service::PingPong(PingPongClient::new(id, c.clone(), now))
                        }
                        ClientKind::CalcApp(c) => {
                            Service::CalcApp(CalcAppClient::new(id, c.clone(), now))
                        }
                        ClientKind::Echo => Service::Echo(EchoClient::new(id, MAX_ECHO_QUEUE)),
                    };
                    self.sessions.push(Session {
                        id,
                        service,
                        up: false,
                        failed: false,
                        last_reply: None,
                        down_since: None,
                        resumed: false,
                    });
                }
                Err(e) => (self.say)(&format!("{}cannot open a session: {e}", self.name)),
            }
        }
        self.publish(now);
    }

    fn event(&mut self, core: &mut Client, now: Timestamp, event: client::Event) {
        let session = match &event {
            client::Event::Connected { session, .. }
            | client::Event::Data { session, .. }
            | client::Event::CookieReceived { session }
            | client::Event::BusinessCard { session, .. }
            | client::Event::FailoverNecessary { session, .. }
            | client::Event::FailoverComplete { session, .. }
            | client::Event::Failed { session, .. }
            | client::Event::Closed { session } => *session,
            _ => return,
        };
        let Some(idx) = self.sessions.iter().position(|s| s.id == session) else {
            return;
        };
        let name = self.name.clone();
        match &event {
            client::Event::Connected { pe, .. } => {
                self.sessions[idx].up = true;
                (self.say)(&format!(
                    "{name}session {session}: {} resolved, connected to PE {:#010x}",
                    self.pool, pe.0
                ));
            }
            client::Event::FailoverNecessary { pe, .. } => {
                self.sessions[idx].up = false;
                self.sessions[idx].down_since = Some(now);
                self.report
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .failovers += 1;
                (self.say)(&format!(
                    "{name}session {session} lost PE {:#010x}: failing over",
                    pe.0
                ));
            }
            client::Event::FailoverComplete { pe, .. } => {
                let s = &mut self.sessions[idx];
                s.up = true;
                s.resumed = true;
                let took = s
                    .down_since
                    .take()
                    .map(|t| now.saturating_duration_since(t))
                    .unwrap_or_default();
                {
                    let mut r = self.report.lock().unwrap_or_else(PoisonError::into_inner);
                    r.failovers_completed += 1;
                    r.longest_failover = r.longest_failover.max(took);
                }
                (self.say)(&format!(
                    "{name}session {session} failed over to PE {:#010x}, {} ms after noticing (cookie echoed first)",
                    pe.0,
                    took.as_millis()
                ));
            }
            client::Event::Failed { reason, .. } => {
                self.sessions[idx].failed = true;
                (self.say)(&format!("{name}session {session} failed: {reason:?}"));
            }
            _ => {}
        }
        let mut out = ServiceOutput::new();
        let resumed = self.sessions[idx].resumed;
        let replied = match &mut self.sessions[idx].service {
            Service::PingPong(p) => {
                let before = p.stats().pongs_received;
                p.handle_event(now, &event, &mut out);
                p.stats().pongs_received > before
            }
            Service::CalcApp(c) => {
                let before = c.stats().jobs_completed;
                c.handle_event(now, &event, &mut out);
                let done = c.stats().jobs_completed > before;
                // Progress every 10 jobs, and the first job after a failover.
                let n = c.stats().jobs_completed;
                if done && (resumed || n % 10 == 0) {
                    (self.say)(&format!(
                        "{name}session {session}: {n} job(s) completed{}",
                        if resumed {
                            " (the first after the failover)"
                        } else {
                            ""
                        }
                    ));
                }
                done
            }
            Service::Echo(e) => {
                let before = e.stats().echoed;
                e.handle_event(now, &event, &mut out);
                e.stats().echoed > before
            }
        };
        if replied {
            if resumed && !matches!(self.sessions[idx].service, Service::CalcApp(_)) {
                (self.say)(&format!("{name}session {session}: service resumed"));
            }
            self.sessions[idx].resumed = false;
            self.note_reply(idx, now);
        }
        self.apply(core, now, session, out);
        self.pump_echo(core, now);
        self.publish(now);
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        let linger = self.all_sent.map(|t| t.saturating_add(self.linger));
        self.sessions
            .iter()
            .filter_map(|s| match &s.service {
                Service::PingPong(p) => p.poll_timeout(),
                Service::CalcApp(c) => c.poll_timeout(),
                Service::Echo(_) => None,
            })
            .chain(linger.filter(|_| !self.done))
            .min()
    }

    fn timeout(&mut self, core: &mut Client, now: Timestamp) {
        let mut outs = Vec::new();
        for s in &mut self.sessions {
            let mut out = ServiceOutput::new();
            match &mut s.service {
                Service::PingPong(p) => p.handle_timeout(now, &mut out),
                Service::CalcApp(c) => c.handle_timeout(now, &mut out),
                Service::Echo(_) => {}
            }
            outs.push((s.id, out));
        }
        for (id, out) in outs {
            self.apply(core, now, id, out);
        }
        self.publish(now);
    }

    fn poll(&mut self, core: &mut Client, now: Timestamp) {
        if self.echo_io.is_some() {
            self.pump_echo(core, now);
            self.publish(now);
        }
    }

    fn finished(&self) -> bool {
        self.done
    }
}
