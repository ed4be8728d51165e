//! The PE side of RSPLIB's services: a [`ServiceHost`] runs one state machine per session
//! of a [`session::Server`](crate::session::Server).
//!
//! # Call contract
//!
//! 1. [`ServiceHost::new`] with a [`ServiceConfig`] (which service, its parameters).
//! 2. Feed every [`server::Event`](crate::session::server::Event) of the session core to
//!    [`ServiceHost::handle_event`] (events that are not about sessions are ignored) and
//!    call [`ServiceHost::handle_timeout`] at [`ServiceHost::poll_timeout`].
//! 3. Drain [`ServiceHost::poll_output`] and apply each output to its session with
//!    [`ServiceOutput::apply_to_server`], or let [`ServiceHost::drive`] do both.
//!
//! # Services
//!
//! - Echo (RFC 862): every message goes back unchanged, with its PPID.
//! - Discard (RFC 863): messages are counted and dropped.
//! - Daytime (RFC 867): one line with the date and time (RSPLIB's layout, in UTC), then the
//!   session is closed.
//!   The wall clock is `now` plus [`ServiceConfig::unix_epoch_offset`] (the driver's epoch
//!   in Unix time): the host never reads a clock.
//! - CharGen (RFC 864): the rotating 72-character lines, [`ServiceConfig::chargen_lines`]
//!   lines per message every [`ServiceConfig::chargen_interval`]; input is discarded.
//! - PingPong (PPID 33): each Ping is answered with a Pong carrying the session's reply
//!   number (starting at 1), followed by an ASAP_COOKIE with the next reply number; a
//!   COOKIE_ECHO continues the sequence on this PE.
//! - CalcApp (PPID 34): a processor-sharing capacity model shared by all sessions. The PE
//!   computes [`ServiceConfig::calcapp_capacity`] calculations per second split evenly
//!   over the running jobs; at most [`ServiceConfig::calcapp_max_jobs`] jobs run, further
//!   requests are rejected. Running jobs send a cookie (job id, size, completed) every
//!   [`ServiceConfig::calcapp_cookie_interval`]; a COOKIE_ECHO resumes the job from its
//!   cookie (answered with Accept, or Reject when full); the PU's keep-alives for the
//!   running job are answered; the PE sends its own keep-alives and drops a job whose PU
//!   does not answer within [`ServiceConfig::calcapp_keep_alive_timeout`] (both as
//!   RSPLIB); a finished job sends Complete and a last cookie marking it finished (so an
//!   echo of it resumes nothing).

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use super::wire::{
    CalcAppCookie, CalcAppMessage, CalcAppType, PPID_CALCAPP, PPID_PINGPONG, PingPongCookie,
    PingPongMessage,
};
use super::{PPID_PLAIN, ServiceOutput};
use crate::Timestamp;
use crate::session::server::Event;
use crate::session::{Server, SessionId};

/// Which service a [`ServiceHost`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceKind {
    /// RFC 862 Echo.
    Echo,
    /// RFC 863 Discard.
    Discard,
    /// RFC 867 Daytime.
    Daytime,
    /// RFC 864 Character Generator.
    CharGen,
    /// RSPLIB PingPong.
    PingPong,
    /// RSPLIB CalcApp.
    CalcApp,
}

/// Everything a [`ServiceHost`] can be told; [`ServiceConfig::new`] gives the defaults
/// documented on the fields.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The service.
    pub kind: ServiceKind,
    /// Most sessions tracked (default 4096); more are closed at once.
    pub max_sessions: usize,
    /// Daytime: the Unix time of the driver's epoch (`Timestamp::ZERO`). Default: zero.
    pub unix_epoch_offset: Duration,
    /// CharGen: lines per message (default 10).
    pub chargen_lines: usize,
    /// CharGen: pause between messages (default 10 ms).
    pub chargen_interval: Duration,
    /// CalcApp: calculations per second of this PE, shared by its jobs (default 1e6).
    pub calcapp_capacity: f64,
    /// CalcApp: most jobs at once (default 4).
    pub calcapp_max_jobs: usize,
    /// CalcApp: cookie interval of a running job (default 1 s).
    pub calcapp_cookie_interval: Duration,
    /// CalcApp: keep-alive interval towards the PU of a running job (default 5 s, like
    /// RSPLIB).
    pub calcapp_keep_alive_interval: Duration,
    /// CalcApp: a keep-alive not acknowledged within this time drops the job (default 5 s,
    /// like RSPLIB): its PU is gone or has failed over.
    pub calcapp_keep_alive_timeout: Duration,
    /// Most outputs waiting for [`ServiceHost::poll_output`] (default 4096); more are
    /// dropped and counted.
    pub max_queue: usize,
}

impl ServiceConfig {
    /// A configuration for `kind` with the defaults documented on the fields.
    pub fn new(kind: ServiceKind) -> Self {
        ServiceConfig {
            kind,
            max_sessions: 4096,
            unix_epoch_offset: Duration::ZERO,
            chargen_lines: 10,
            chargen_interval: Duration::from_millis(10),
            calcapp_capacity: 1e6,
            calcapp_max_jobs: 4,
            calcapp_cookie_interval: Duration::from_secs(1),
            calcapp_keep_alive_interval: Duration::from_secs(5),
            calcapp_keep_alive_timeout: Duration::from_secs(5),
            max_queue: 4096,
        }
    }
}

/// Counters (monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceStats {
    /// Sessions served.
    pub sessions: u64,
    /// Sessions closed at once because `max_sessions` were tracked.
    pub sessions_refused: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Cookies sent.
    pub cookies_sent: u64,
    /// Messages that did not decode, or of a type the service does not take.
    pub malformed: u64,
    /// Cookie echoes accepted.
    pub cookie_echoes: u64,
    /// Cookie echoes that did not parse (garbage, another service's cookie).
    pub bad_cookies: u64,
    /// CalcApp jobs accepted (new, resumed from a cookie).
    pub jobs_accepted: u64,
    /// CalcApp jobs resumed from a cookie.
    pub jobs_resumed: u64,
    /// CalcApp requests rejected (capacity).
    pub jobs_rejected: u64,
    /// CalcApp jobs completed.
    pub jobs_completed: u64,
    /// CalcApp keep-alives answered.
    pub keep_alives: u64,
    /// CalcApp jobs dropped because the PU did not answer a keep-alive.
    pub keep_alive_timeouts: u64,
    /// Outputs dropped because `max_queue` were waiting.
    pub overflow: u64,
}

/// A CalcApp job running in the shared capacity model.
#[derive(Debug, Clone)]
struct Job {
    id: u32,
    size: u64,
    /// Calculations done (fractional, as the model advances continuously).
    completed: f64,
    next_cookie: Timestamp,
    /// When the next CalcApp keep-alive goes to the PU (`None` while one is outstanding).
    next_keep_alive: Option<Timestamp>,
    /// When an outstanding keep-alive times out.
    keep_alive_deadline: Option<Timestamp>,
}

impl Job {
    fn new(id: u32, size: u64, completed: f64, now: Timestamp, config: &ServiceConfig) -> Self {
        Job {
            id,
            size,
            completed,
            next_cookie: now.saturating_add(cookie_interval(config)),
            next_keep_alive: Some(now.saturating_add(keep_alive_interval(config))),
            keep_alive_deadline: None,
        }
    }

    fn next_timer(&self) -> Timestamp {
        [
            Some(self.next_cookie),
            self.next_keep_alive,
            self.keep_alive_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Timestamp::MAX)
    }
}

/// One session's state machine.
#[derive(Debug, Clone)]
enum SessionState {
    Echo,
    Discard,
    Daytime,
    CharGen { next: Timestamp, line: usize },
    PingPong { reply_no: u64 },
    CalcApp { job: Option<Job> },
}

/// Runs one service for every session of a server (see the [module docs](self)).
#[derive(Debug)]
pub struct ServiceHost {
    config: ServiceConfig,
    sessions: BTreeMap<SessionId, SessionState>,
    /// CalcApp: when the model was last advanced.
    advanced: Timestamp,
    outputs: VecDeque<(SessionId, ServiceOutput)>,
    stats: ServiceStats,
}

impl ServiceHost {
    /// A host for `config.kind` starting at `now`.
    pub fn new(config: ServiceConfig, now: Timestamp) -> Self {
        ServiceHost {
            config,
            sessions: BTreeMap::new(),
            advanced: now,
            outputs: VecDeque::new(),
            stats: ServiceStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &ServiceStats {
        &self.stats
    }

    /// Sessions tracked.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// CalcApp jobs running.
    pub fn running_jobs(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| matches!(s, SessionState::CalcApp { job: Some(_) }))
            .count()
    }

    /// The load to register (RFC 5356 §5 adaptive policies): running CalcApp jobs as a
    /// fraction of the maximum, scaled to `u32::MAX`; 0 for the other services.
    pub fn load(&self) -> u32 {
        let max = self.config.calcapp_max_jobs.max(1) as u64;
        let running = (self.running_jobs() as u64).min(max);
        u32::try_from(running * u64::from(u32::MAX) / max).unwrap_or(u32::MAX)
    }

    /// The next output for a session, if any.
    pub fn poll_output(&mut self) -> Option<(SessionId, ServiceOutput)> {
        self.outputs.pop_front()
    }

    /// When [`ServiceHost::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let rate = self.job_rate();
        self.sessions
            .values()
            .filter_map(|s| match s {
                SessionState::CharGen { next, .. } => Some(*next),
                SessionState::CalcApp { job: Some(j) } => {
                    let remaining = (j.size as f64 - j.completed).max(0.0);
                    let micros = (remaining / rate * 1e6).ceil();
                    let done = if micros.is_finite() && micros < 1e15 {
                        self.advanced
                            .saturating_add(Duration::from_micros(micros as u64 + 1))
                    } else {
                        Timestamp::MAX
                    };
                    Some(done.min(j.next_timer()))
                }
                _ => None,
            })
            .min()
    }

    /// Feeds one event of the session core.
    pub fn handle_event(&mut self, now: Timestamp, event: &Event) {
        match event {
            Event::SessionAdded { session, .. } => self.on_added(now, *session),
            Event::SessionRemoved { session } => {
                self.advance(now);
                self.sessions.remove(session);
            }
            Event::Data {
                session,
                ppid,
                bytes,
            } => self.on_data(now, *session, *ppid, bytes),
            Event::CookieEcho { session, cookie } => self.on_cookie_echo(now, *session, cookie),
            _ => {}
        }
    }

    /// Fires the timers due at `now` (spurious calls do nothing).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
        let lines = self.config.chargen_lines;
        let interval = self.config.chargen_interval;
        let cookie_interval = self.cookie_interval();
        let ka_timeout = self.config.calcapp_keep_alive_timeout;
        let mut outs = Vec::new();
        for (id, s) in self.sessions.iter_mut() {
            match s {
                SessionState::CharGen { next, line } if *next <= now => {
                    let mut out = ServiceOutput::new();
                    out.send(PPID_PLAIN, chargen(line, lines));
                    *next = now.saturating_add(interval.max(Duration::from_micros(1)));
                    outs.push((*id, out));
                }
                SessionState::CalcApp { job: slot } => {
                    let Some(j) = slot else {
                        continue;
                    };
                    if j.keep_alive_deadline.is_some_and(|t| t <= now) {
                        // The PU is gone (or failed over without the association
                        // noticing): the capacity goes to other jobs.
                        *slot = None;
                        // (The model was advanced to `now` above: the remaining jobs
                        // share the capacity from here on.)
                        self.stats.keep_alive_timeouts += 1;
                        continue;
                    }
                    let mut out = ServiceOutput::new();
                    if j.next_cookie <= now {
                        out.cookies.push(job_cookie(j).to_vec());
                        j.next_cookie = now.saturating_add(cookie_interval);
                    }
                    if j.next_keep_alive.is_some_and(|t| t <= now) {
                        let ka = CalcAppMessage {
                            kind: CalcAppType::KeepAlive,
                            job_id: j.id,
                            job_size: j.size,
                            completed: (j.completed as u64).min(j.size),
                        };
                        out.send(PPID_CALCAPP, encode_calcapp(&ka));
                        j.next_keep_alive = None;
                        j.keep_alive_deadline = Some(now.saturating_add(ka_timeout));
                    }
                    outs.push((*id, out));
                }
                _ => {}
            }
        }
        for (id, out) in outs {
            self.emit(id, out);
        }
    }

    /// Applies every pending output to `server`, then feeds nothing back: call it after
    /// [`ServiceHost::handle_event`] / [`ServiceHost::handle_timeout`].
    pub fn drive(&mut self, now: Timestamp, server: &mut Server) {
        while let Some((session, mut out)) = self.poll_output() {
            out.apply_to_server(now, server, session);
        }
    }

    // ---- internals ----

    fn emit(&mut self, session: SessionId, out: ServiceOutput) {
        if out.is_empty() {
            return;
        }
        if self.outputs.len() >= self.config.max_queue {
            self.stats.overflow += 1;
            return;
        }
        self.stats.messages_sent += out.messages.len() as u64;
        self.stats.cookies_sent += out.cookies.len() as u64;
        self.outputs.push_back((session, out));
    }

    fn on_added(&mut self, now: Timestamp, session: SessionId) {
        if self.sessions.len() >= self.config.max_sessions {
            self.stats.sessions_refused += 1;
            let out = ServiceOutput {
                close: true,
                ..ServiceOutput::default()
            };
            self.emit(session, out);
            return;
        }
        self.stats.sessions += 1;
        let state = match self.config.kind {
            ServiceKind::Echo => SessionState::Echo,
            ServiceKind::Discard => SessionState::Discard,
            ServiceKind::Daytime => SessionState::Daytime,
            ServiceKind::CharGen => SessionState::CharGen { next: now, line: 0 },
            ServiceKind::PingPong => SessionState::PingPong { reply_no: 1 },
            ServiceKind::CalcApp => SessionState::CalcApp { job: None },
        };
        self.sessions.insert(session, state);
        if self.config.kind == ServiceKind::Daytime {
            // RFC 867: the time as one line, then close.
            let mut out = ServiceOutput::new();
            let unix = self.config.unix_epoch_offset + now.since_epoch();
            out.send(PPID_PLAIN, daytime(unix).into_bytes());
            out.close = true;
            self.emit(session, out);
        }
    }

    fn on_data(&mut self, now: Timestamp, session: SessionId, ppid: u32, bytes: &[u8]) {
        self.stats.messages_received += 1;
        let Some(state) = self.sessions.get_mut(&session) else {
            return;
        };
        let mut out = ServiceOutput::new();
        match state {
            SessionState::Echo => out.send(ppid, bytes.to_vec()),
            SessionState::Discard | SessionState::Daytime | SessionState::CharGen { .. } => {}
            SessionState::PingPong { reply_no } => match PingPongMessage::decode(bytes) {
                Ok(PingPongMessage::Ping { message_no, data }) if ppid == PPID_PINGPONG => {
                    let pong = PingPongMessage::Pong {
                        message_no,
                        reply_no: *reply_no,
                        data,
                    };
                    *reply_no = reply_no.wrapping_add(1);
                    if let Some(b) = encode_pingpong(&pong) {
                        out.send(PPID_PINGPONG, b);
                    }
                    // The next reply number, so a new PE continues after COOKIE_ECHO.
                    out.cookies.push(
                        PingPongCookie {
                            reply_no: *reply_no,
                        }
                        .to_bytes()
                        .to_vec(),
                    );
                }
                _ => self.stats.malformed += 1,
            },
            SessionState::CalcApp { .. } => {
                let msg = match CalcAppMessage::decode(bytes) {
                    Ok(m) if ppid == PPID_CALCAPP => m,
                    _ => {
                        self.stats.malformed += 1;
                        return;
                    }
                };
                self.on_calcapp(now, session, msg, &mut out);
            }
        }
        self.emit(session, out);
    }

    fn on_calcapp(
        &mut self,
        now: Timestamp,
        session: SessionId,
        msg: CalcAppMessage,
        out: &mut ServiceOutput,
    ) {
        self.advance(now);
        let running = self.running_jobs();
        let Some(SessionState::CalcApp { job }) = self.sessions.get_mut(&session) else {
            return;
        };
        let reply = |kind, j: &Job| CalcAppMessage {
            kind,
            job_id: j.id,
            job_size: j.size,
            completed: j.completed as u64,
        };
        match msg.kind {
            CalcAppType::Request => {
                if let Some(j) = job {
                    // Only one job per session: a repeated request is accepted again,
                    // another one rejected.
                    let kind = if j.id == msg.job_id {
                        CalcAppType::Accept
                    } else {
                        CalcAppType::Reject
                    };
                    out.send(PPID_CALCAPP, encode_calcapp(&reply(kind, j)));
                    return;
                }
                let new = Job::new(msg.job_id, msg.job_size, 0.0, now, &self.config);
                if running >= self.config.calcapp_max_jobs {
                    self.stats.jobs_rejected += 1;
                    out.send(
                        PPID_CALCAPP,
                        encode_calcapp(&reply(CalcAppType::Reject, &new)),
                    );
                    return;
                }
                self.stats.jobs_accepted += 1;
                out.send(
                    PPID_CALCAPP,
                    encode_calcapp(&reply(CalcAppType::Accept, &new)),
                );
                *job = Some(new);
            }
            CalcAppType::KeepAlive if job.as_ref().is_some_and(|j| j.id == msg.job_id) => {
                // Answered for the running job only (as RSPLIB does): a PU asking about a
                // job this PE does not run notices by the missing answer and fails over.
                self.stats.keep_alives += 1;
                let ack = CalcAppMessage {
                    kind: CalcAppType::KeepAliveAck,
                    ..msg
                };
                out.send(PPID_CALCAPP, encode_calcapp(&ack));
            }
            CalcAppType::KeepAliveAck => {
                if let Some(j) = job.as_mut().filter(|j| j.id == msg.job_id) {
                    j.keep_alive_deadline = None;
                    j.next_keep_alive = Some(now.saturating_add(keep_alive_interval(&self.config)));
                } else {
                    self.stats.malformed += 1;
                }
            }
            CalcAppType::Abort => {
                if job.as_ref().is_some_and(|j| j.id == msg.job_id) {
                    *job = None;
                }
            }
            _ => self.stats.malformed += 1,
        }
    }

    fn on_cookie_echo(&mut self, now: Timestamp, session: SessionId, cookie: &[u8]) {
        self.advance(now);
        let running = self.running_jobs();
        let Some(state) = self.sessions.get_mut(&session) else {
            return;
        };
        let mut out = ServiceOutput::new();
        match state {
            SessionState::PingPong { reply_no } => match PingPongCookie::from_bytes(cookie) {
                Ok(c) => {
                    self.stats.cookie_echoes += 1;
                    *reply_no = c.reply_no;
                }
                Err(_) => self.stats.bad_cookies += 1,
            },
            SessionState::CalcApp { job } => match CalcAppCookie::from_bytes(cookie) {
                Ok(c) if c.completed <= c.job_size && job.is_none() => {
                    self.stats.cookie_echoes += 1;
                    if c.completed == c.job_size {
                        // The job finished on the old PE; nothing to resume.
                        return;
                    }
                    let resumed =
                        Job::new(c.job_id, c.job_size, c.completed as f64, now, &self.config);
                    if running >= self.config.calcapp_max_jobs {
                        self.stats.jobs_rejected += 1;
                        let reject = CalcAppMessage {
                            kind: CalcAppType::Reject,
                            job_id: c.job_id,
                            job_size: c.job_size,
                            completed: c.completed,
                        };
                        out.send(PPID_CALCAPP, encode_calcapp(&reject));
                    } else {
                        // Accepted again, as RSPLIB's PE does after a cookie echo.
                        self.stats.jobs_accepted += 1;
                        self.stats.jobs_resumed += 1;
                        let accept = CalcAppMessage {
                            kind: CalcAppType::Accept,
                            job_id: c.job_id,
                            job_size: c.job_size,
                            completed: c.completed,
                        };
                        out.send(PPID_CALCAPP, encode_calcapp(&accept));
                        *job = Some(resumed);
                    }
                }
                _ => self.stats.bad_cookies += 1,
            },
            _ => self.stats.bad_cookies += 1,
        }
        self.emit(session, out);
    }

    /// The cookie interval, at least a millisecond (a zero interval must not make a timer
    /// that is always due).
    fn cookie_interval(&self) -> Duration {
        cookie_interval(&self.config)
    }

    /// Calculations per second each running job gets.
    fn job_rate(&self) -> f64 {
        let n = self.running_jobs().max(1) as f64;
        (self.config.calcapp_capacity / n).max(f64::MIN_POSITIVE)
    }

    /// Advances every running job to `now` and completes the finished ones.
    fn advance(&mut self, now: Timestamp) {
        if now <= self.advanced {
            return;
        }
        let rate = self.job_rate();
        let dt = (now - self.advanced).as_secs_f64();
        self.advanced = now;
        let mut finished = Vec::new();
        for (id, s) in self.sessions.iter_mut() {
            if let SessionState::CalcApp { job: slot } = s
                && let Some(j) = slot
            {
                j.completed += rate * dt;
                // One microsecond of work is within rounding of the deadline.
                if j.completed + rate * 1e-6 >= j.size as f64 {
                    j.completed = j.size as f64;
                    finished.push((*id, j.clone()));
                    *slot = None;
                }
            }
        }
        for (id, j) in finished {
            self.stats.jobs_completed += 1;
            let mut out = ServiceOutput::new();
            let done = CalcAppMessage {
                kind: CalcAppType::Complete,
                job_id: j.id,
                job_size: j.size,
                completed: j.size,
            };
            out.send(PPID_CALCAPP, encode_calcapp(&done));
            out.cookies.push(job_cookie(&j).to_vec());
            self.emit(id, out);
        }
    }
}

fn keep_alive_interval(config: &ServiceConfig) -> Duration {
    config
        .calcapp_keep_alive_interval
        .max(Duration::from_millis(1))
}

fn cookie_interval(config: &ServiceConfig) -> Duration {
    config.calcapp_cookie_interval.max(Duration::from_millis(1))
}

fn job_cookie(j: &Job) -> [u8; 20] {
    CalcAppCookie {
        job_id: j.id,
        job_size: j.size,
        completed: (j.completed as u64).min(j.size),
    }
    .to_bytes()
}

fn encode_calcapp(m: &CalcAppMessage) -> Vec<u8> {
    let mut b = vec![0; m.encoded_len()];
    let n = m.encode(&mut b).unwrap_or(0);
    b.truncate(n);
    b
}

fn encode_pingpong(m: &PingPongMessage) -> Option<Vec<u8>> {
    let mut b = vec![0; m.encoded_len()];
    let n = m.encode(&mut b).ok()?;
    b.truncate(n);
    Some(b)
}

/// RFC 864: `count` lines of 72 characters from the 95 printable ASCII characters, each
/// starting one character later than the previous one.
fn chargen(line: &mut usize, count: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(count * 74);
    for _ in 0..count {
        for i in 0..72 {
            b.push(b' ' + ((*line + i) % 95) as u8);
        }
        b.extend_from_slice(b"\r\n");
        *line = (*line + 1) % 95;
    }
    b
}

/// RFC 867 leaves the format open; this is the layout of RSPLIB's daytime PE
/// (`Tuesday, 29-February-2000 12:34:56.000000` and a newline), in UTC rather than local
/// time (a sans-IO core knows no time zone).
fn daytime(unix: Duration) -> String {
    const WEEKDAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let unix_secs = unix.as_secs();
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days % 7) as usize];
    let month = MONTHS[(m as usize).saturating_sub(1) % 12];
    format!(
        "{weekday}, {d:02}-{month}-{y:04} {:02}:{:02}:{:02}.{:06}\n",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        unix.subsec_micros()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), by 400-year eras.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::AssocRef;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn host(kind: ServiceKind, tune: impl FnOnce(&mut ServiceConfig)) -> ServiceHost {
        let mut c = ServiceConfig::new(kind);
        tune(&mut c);
        ServiceHost::new(c, t(0))
    }

    fn add(h: &mut ServiceHost, now: Timestamp, s: u64) {
        h.handle_event(
            now,
            &Event::SessionAdded {
                session: SessionId(s),
                assoc: AssocRef(s),
            },
        );
    }

    fn data(h: &mut ServiceHost, now: Timestamp, s: u64, ppid: u32, bytes: Vec<u8>) {
        h.handle_event(
            now,
            &Event::Data {
                session: SessionId(s),
                ppid,
                bytes,
            },
        );
    }

    fn outputs(h: &mut ServiceHost) -> Vec<(SessionId, ServiceOutput)> {
        std::iter::from_fn(|| h.poll_output()).collect()
    }

    fn calc(kind: CalcAppType, job_id: u32, job_size: u64) -> Vec<u8> {
        encode_calcapp(&CalcAppMessage {
            kind,
            job_id,
            job_size,
            completed: 0,
        })
    }

    fn calc_of(out: &ServiceOutput) -> Vec<CalcAppMessage> {
        out.messages
            .iter()
            .map(|m| CalcAppMessage::decode(&m.bytes).expect("valid"))
            .collect()
    }

    #[test]
    fn echo_returns_each_message_with_its_ppid_and_discard_returns_nothing() {
        let mut h = host(ServiceKind::Echo, |_| {});
        add(&mut h, t(1), 1);
        data(&mut h, t(1), 1, 77, b"abc".to_vec());
        let out = outputs(&mut h);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.messages[0].ppid, 77);
        assert_eq!(out[0].1.messages[0].bytes, b"abc");

        let mut h = host(ServiceKind::Discard, |_| {});
        add(&mut h, t(1), 1);
        data(&mut h, t(1), 1, 0, b"abc".to_vec());
        assert!(outputs(&mut h).is_empty());
        assert_eq!(h.stats().messages_received, 1);
    }

    #[test]
    fn daytime_sends_the_time_from_the_epoch_offset_and_closes() {
        let mut h = host(ServiceKind::Daytime, |c| {
            c.unix_epoch_offset = Duration::from_secs(951_827_600);
        });
        add(&mut h, Timestamp::from_secs(96), 1);
        let out = outputs(&mut h);
        assert_eq!(
            out[0].1.messages[0].bytes,
            b"Tuesday, 29-February-2000 12:34:56.000000\n"
        );
        assert!(out[0].1.close);
    }

    #[test]
    fn chargen_sends_lines_on_its_timer_until_the_session_goes() {
        let mut h = host(ServiceKind::CharGen, |c| {
            c.chargen_lines = 2;
            c.chargen_interval = Duration::from_millis(10);
        });
        add(&mut h, t(100), 1);
        assert_eq!(h.poll_timeout(), Some(t(100)));
        h.handle_timeout(t(100));
        assert_eq!(h.poll_timeout(), Some(t(110)));
        h.handle_timeout(t(105)); // early: nothing
        h.handle_timeout(t(110));
        let out = outputs(&mut h);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].1.messages[0].bytes[0], b' ' + 2);
        h.handle_event(
            t(111),
            &Event::SessionRemoved {
                session: SessionId(1),
            },
        );
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn pingpong_answers_with_reply_numbers_and_a_cookie_that_continues_them() {
        let mut h = host(ServiceKind::PingPong, |_| {});
        add(&mut h, t(1), 1);
        for n in 1..=3u64 {
            let ping = PingPongMessage::Ping {
                message_no: n + 10,
                data: vec![1, 2],
            };
            data(
                &mut h,
                t(1),
                1,
                PPID_PINGPONG,
                encode_pingpong(&ping).expect("fits"),
            );
        }
        let out = outputs(&mut h);
        assert_eq!(out.len(), 3);
        for (i, (_, o)) in out.iter().enumerate() {
            let i = i as u64;
            assert_eq!(
                PingPongMessage::decode(&o.messages[0].bytes),
                Ok(PingPongMessage::Pong {
                    message_no: i + 11,
                    reply_no: i + 1,
                    data: vec![1, 2]
                })
            );
            assert_eq!(
                PingPongCookie::from_bytes(&o.cookies[0]),
                Ok(PingPongCookie { reply_no: i + 2 })
            );
        }
        // Another PE takes the session over with the last cookie.
        let mut other = host(ServiceKind::PingPong, |_| {});
        add(&mut other, t(2), 5);
        other.handle_event(
            t(2),
            &Event::CookieEcho {
                session: SessionId(5),
                cookie: out[2].1.cookies[0].clone(),
            },
        );
        let ping = PingPongMessage::Ping {
            message_no: 14,
            data: Vec::new(),
        };
        data(
            &mut other,
            t(2),
            5,
            PPID_PINGPONG,
            encode_pingpong(&ping).expect("fits"),
        );
        let out = outputs(&mut other);
        assert!(matches!(
            PingPongMessage::decode(&out[0].1.messages[0].bytes),
            Ok(PingPongMessage::Pong { reply_no: 4, .. })
        ));
    }

    #[test]
    fn calcapp_shares_capacity_between_jobs_and_rejects_beyond_max_jobs() {
        let mut h = host(ServiceKind::CalcApp, |c| {
            c.calcapp_capacity = 1000.0;
            c.calcapp_max_jobs = 2;
            c.calcapp_cookie_interval = Duration::from_secs(100);
        });
        for s in 1..=3 {
            add(&mut h, t(0), s);
            data(
                &mut h,
                t(0),
                s,
                PPID_CALCAPP,
                calc(CalcAppType::Request, s as u32, 1000),
            );
        }
        let kinds: Vec<CalcAppType> = outputs(&mut h)
            .iter()
            .map(|(_, o)| calc_of(o)[0].kind)
            .collect();
        assert_eq!(
            kinds,
            [
                CalcAppType::Accept,
                CalcAppType::Accept,
                CalcAppType::Reject
            ]
        );
        assert_eq!(h.running_jobs(), 2);
        assert_eq!(h.load(), u32::MAX);
        // Two jobs share 1000/s: 1000 calculations each take 2 s.
        let due = h.poll_timeout().expect("completion");
        assert!(due > t(1999) && due <= t(2001), "{due:?}");
        h.handle_timeout(t(1000));
        assert!(outputs(&mut h).is_empty());
        h.handle_timeout(due);
        let out = outputs(&mut h);
        assert_eq!(out.len(), 2);
        for (_, o) in &out {
            let m = calc_of(o);
            assert_eq!((m[0].kind, m[0].completed), (CalcAppType::Complete, 1000));
            let c = CalcAppCookie::from_bytes(&o.cookies[0]).expect("cookie");
            assert_eq!(c.completed, c.job_size);
        }
        assert_eq!(h.running_jobs(), 0);
        assert_eq!(h.stats().jobs_completed, 2);
    }

    #[test]
    fn calcapp_answers_keep_alives_of_the_running_job_only() {
        let mut h = host(ServiceKind::CalcApp, |c| c.calcapp_capacity = 1.0);
        add(&mut h, t(0), 1);
        data(
            &mut h,
            t(0),
            1,
            PPID_CALCAPP,
            calc(CalcAppType::KeepAlive, 3, 10),
        );
        assert!(outputs(&mut h).is_empty());
        data(
            &mut h,
            t(0),
            1,
            PPID_CALCAPP,
            calc(CalcAppType::Request, 3, 10),
        );
        data(
            &mut h,
            t(1),
            1,
            PPID_CALCAPP,
            calc(CalcAppType::KeepAlive, 3, 10),
        );
        let out = outputs(&mut h);
        let kinds: Vec<(CalcAppType, u32)> = out
            .iter()
            .flat_map(|(_, o)| calc_of(o))
            .map(|m| (m.kind, m.job_id))
            .collect();
        assert_eq!(
            kinds,
            [(CalcAppType::Accept, 3), (CalcAppType::KeepAliveAck, 3)]
        );
        assert_eq!(h.stats().keep_alives, 1);
    }

    #[test]
    fn calcapp_drops_a_job_whose_pu_stops_answering_keep_alives() {
        let mut h = host(ServiceKind::CalcApp, |c| {
            c.calcapp_capacity = 1.0; // never finishes here
            c.calcapp_cookie_interval = Duration::from_secs(100);
            c.calcapp_keep_alive_interval = Duration::from_secs(5);
            c.calcapp_keep_alive_timeout = Duration::from_secs(2);
        });
        for s in 1..=2 {
            add(&mut h, t(0), s);
            data(
                &mut h,
                t(0),
                s,
                PPID_CALCAPP,
                calc(CalcAppType::Request, 1, 1000),
            );
        }
        outputs(&mut h);
        assert_eq!(h.poll_timeout(), Some(t(5000)));
        h.handle_timeout(t(5000));
        let out = outputs(&mut h);
        assert_eq!(out.len(), 2);
        for (_, o) in &out {
            assert_eq!(calc_of(o)[0].kind, CalcAppType::KeepAlive);
        }
        // Session 1 answers, session 2 does not.
        data(
            &mut h,
            t(5100),
            1,
            PPID_CALCAPP,
            calc(CalcAppType::KeepAliveAck, 1, 1000),
        );
        assert_eq!(h.poll_timeout(), Some(t(7000)));
        h.handle_timeout(t(7000));
        assert_eq!(h.running_jobs(), 1);
        assert_eq!(h.stats().keep_alive_timeouts, 1);
        // Session 1's next keep-alive is an interval after its answer.
        assert_eq!(h.poll_timeout(), Some(t(10_100)));
    }

    #[test]
    fn calcapp_resumes_a_job_from_its_cookie_and_ignores_finished_or_bad_cookies() {
        let mut h = host(ServiceKind::CalcApp, |c| c.calcapp_capacity = 100.0);
        add(&mut h, t(0), 1);
        let cookie = CalcAppCookie {
            job_id: 9,
            job_size: 1000,
            completed: 900,
        };
        h.handle_event(
            t(0),
            &Event::CookieEcho {
                session: SessionId(1),
                cookie: cookie.to_bytes().to_vec(),
            },
        );
        assert_eq!(h.running_jobs(), 1);
        // Accepted again, as RSPLIB's PE does.
        let out = outputs(&mut h);
        assert_eq!(calc_of(&out[0].1)[0].kind, CalcAppType::Accept);
        assert_eq!(calc_of(&out[0].1)[0].completed, 900);
        // 100 calculations left at 100/s.
        let due = h.poll_timeout().expect("due");
        assert!(due <= t(1001), "{due:?}");
        h.handle_timeout(due);
        let out = outputs(&mut h);
        assert_eq!(calc_of(&out[0].1)[0].kind, CalcAppType::Complete);
        assert_eq!(calc_of(&out[0].1)[0].job_id, 9);

        add(&mut h, t(2000), 2);
        let done = CalcAppCookie {
            completed: 1000,
            ..cookie
        };
        h.handle_event(
            t(2000),
            &Event::CookieEcho {
                session: SessionId(2),
                cookie: done.to_bytes().to_vec(),
            },
        );
        add(&mut h, t(2000), 3);
        h.handle_event(
            t(2000),
            &Event::CookieEcho {
                session: SessionId(3),
                cookie: b"<PP-TD1>xxxxxxxx".to_vec(),
            },
        );
        // Finished: nothing to resume. PingPong's cookie: too short for CalcApp.
        assert_eq!(h.running_jobs(), 0);
        assert_eq!(h.stats().bad_cookies, 1);
        assert_eq!(h.stats().jobs_resumed, 1);
        add(&mut h, t(2000), 4);
        let impossible = CalcAppCookie {
            completed: 2000,
            ..cookie
        };
        h.handle_event(
            t(2000),
            &Event::CookieEcho {
                session: SessionId(4),
                cookie: impossible.to_bytes().to_vec(),
            },
        );
        assert_eq!(h.stats().bad_cookies, 2);
        assert_eq!(h.running_jobs(), 0);
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn zero_intervals_do_not_make_timers_that_are_always_due() {
        let mut h = host(ServiceKind::CalcApp, |c| {
            c.calcapp_cookie_interval = Duration::ZERO;
        });
        add(&mut h, t(0), 1);
        data(
            &mut h,
            t(0),
            1,
            PPID_CALCAPP,
            calc(CalcAppType::Request, 1, 1 << 40),
        );
        let mut h2 = host(ServiceKind::CharGen, |c| {
            c.chargen_interval = Duration::ZERO
        });
        add(&mut h2, t(0), 1);
        for now in [t(0), t(1), t(5)] {
            for h in [&mut h, &mut h2] {
                h.handle_timeout(now);
                assert!(h.poll_timeout().is_some_and(|d| d > now));
            }
        }
    }

    #[test]
    fn daytime_formats_known_dates() {
        let at = Duration::from_secs;
        assert_eq!(
            daytime(Duration::ZERO),
            "Thursday, 01-January-1970 00:00:00.000000\n"
        );
        // A leap day of a century leap year.
        assert_eq!(
            daytime(at(951_827_696) + Duration::from_micros(42)),
            "Tuesday, 29-February-2000 12:34:56.000042\n"
        );
        assert_eq!(
            daytime(at(1_798_761_600)),
            "Friday, 01-January-2027 00:00:00.000000\n"
        );
    }

    #[test]
    fn chargen_lines_rotate_by_one_character() {
        let mut line = 0;
        let b = chargen(&mut line, 2);
        assert_eq!(b.len(), 2 * 74);
        assert_eq!(&b[..3], b" !\"");
        assert_eq!(&b[72..74], b"\r\n");
        assert_eq!(&b[74..76], b"!\"");
        assert_eq!(line, 2);
    }
}
