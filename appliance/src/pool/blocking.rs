//! Blocking, socket-like RSerPool API (RSPLIB's `rsp_socket`/`rsp_connect`/`rsp_send`/
//! `rsp_recv` style) on top of the sans-IO session cores: Enhanced Mode sessions, and the
//! Basic Mode calls of a pool user ([`PoolUser::resolve`], [`PoolUser::report_failure`];
//! a pool element registers on start and deregisters on [`PoolElement::stop`]).
//!
//! A [`PoolUser`] or [`PoolElement`] starts one runtime worker that runs the session core
//! ([`rserpool::session::Client`] / [`Server`]) under the in-worker driver; the application's
//! threads talk to it through a shared queue and wait on a condition variable:
//!
//! - requests (connect, send, cookie, failover, close) are queued, the worker is woken and
//!   answers each one; the calling thread blocks until the answer (bounded);
//! - what the core reports for a session (data, cookie echoes, failovers, its end) is kept
//!   per session in a bounded queue ([`MAX_NOTIFICATIONS`]; beyond it the oldest entry is
//!   dropped and counted) until [`Session::recv_timeout`] or [`Session::try_recv`] takes it.
//!
//! Every call has a non-blocking form or a timeout; nothing waits forever.
//!
//! Pool user, the classic echo client adapted (failover is automatic: the core resolves the
//! pool again, connects to another PE and echoes the last cookie before any data):
//!
//! ```text
//! let pu = PoolUser::start(runtime_config, links, driver_config, ClientConfig::default(), seed)?;
//! let session = pu.connect(PoolHandle::from("EchoPool"), Duration::from_secs(5))?;
//! session.send(0, b"hello")?;
//! match session.recv_timeout(Duration::from_secs(5))? {
//!     Notification::Data { bytes, .. } => println!("{}", String::from_utf8_lossy(&bytes)),
//!     Notification::FailoverComplete { pe } => println!("now served by {pe}"),
//!     other => println!("{other:?}"),
//! }
//! ```
//!
//! Pool element, the classic echo server adapted (a cookie lets a PU's next PE continue):
//!
//! ```text
//! let pe = PoolElement::start(runtime_config, links, driver_config, server_config, seed)?;
//! pe.wait_registered(Duration::from_secs(5))?;
//! let session = pe.accept_timeout(Duration::from_secs(60))?;
//! while let Ok(n) = session.recv_timeout(Duration::from_secs(60)) {
//!     match n {
//!         Notification::Data { ppid, bytes } => { session.send(ppid, &bytes)?; session.send_cookie(b"state")?; }
//!         Notification::CookieEcho { cookie } => restore(&cookie),
//!         Notification::Closed => break,
//!         _ => {}
//!     }
//! }
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dataplane::runtime::{LinkSpec, RuntimeConfig, WorkerRemote};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rserpool::Timestamp;
use rserpool::pe;
use rserpool::pu::Resolve;
use rserpool::session::{Client, ClientConfig, Server, ServerConfig, SessionId, client, server};
use rserpool::wire::{PeIdentifier, PoolElement as WirePoolElement, PoolHandle};

use super::driver::{Application, DriverConfig};
use super::{Running, start};
use crate::exit::Failure;

/// Notifications kept per session; beyond this the oldest is dropped (and counted).
pub const MAX_NOTIFICATIONS: usize = 4096;
/// Sessions waiting for `accept`; beyond this new sessions are closed at once.
pub const MAX_ACCEPT_BACKLOG: usize = 256;
/// Longest wait for the worker's answer to a request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a session reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// A user message.
    Data {
        /// Its PPID.
        ppid: u32,
        /// The message.
        bytes: Vec<u8>,
    },
    /// PE side: the PU failed over to this PE and hands back its previous PE's last cookie
    /// (it comes before any data of the session).
    CookieEcho {
        /// The cookie.
        cookie: Vec<u8>,
    },
    /// PU side: the session lost its PE; sends fail until [`Notification::FailoverComplete`].
    FailoverNecessary {
        /// The PE lost.
        pe: PeIdentifier,
    },
    /// PU side: the session runs on a new PE; the last cookie went out first.
    FailoverComplete {
        /// The new PE.
        pe: PeIdentifier,
    },
    /// PU side: no PE could be reached within the configured attempts; the session is over.
    Failed,
    /// The session ended (closed, or, on the PE side, the PU's association went away).
    Closed,
}

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// Nothing arrived in time.
    Timeout,
    /// The session (or the whole socket) is gone.
    Closed,
    /// PU side: the session has no PE right now (failover under way).
    NotConnected,
    /// The core refused the request (the text says why).
    Refused(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Timeout => f.write_str("timed out"),
            ApiError::Closed => f.write_str("closed"),
            ApiError::NotConnected => f.write_str("not connected (failover under way)"),
            ApiError::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// What the worker answers to a request.
#[derive(Debug)]
enum Answer {
    Done,
    Session(SessionId),
    PoolElement(Box<WirePoolElement>),
}

/// A request from an application thread to the worker.
#[derive(Debug)]
enum Request {
    Connect(PoolHandle),
    Resolve(PoolHandle),
    ReportFailure(PoolHandle, PeIdentifier),
    Send {
        session: SessionId,
        ppid: u32,
        bytes: Vec<u8>,
    },
    Cookie {
        session: SessionId,
        cookie: Vec<u8>,
    },
    Failover(SessionId),
    Close(SessionId),
    Deregister,
}

/// One session's state as the application threads see it.
#[derive(Debug, Default)]
struct SessionState {
    notifications: VecDeque<Notification>,
    /// PU: the PE serving the session once connected.
    pe: Option<PeIdentifier>,
    /// Over: nothing more will arrive.
    ended: bool,
}

#[derive(Debug, Default)]
struct State {
    requests: VecDeque<(u64, Request)>,
    answers: HashMap<u64, Result<Answer, ApiError>>,
    next_ticket: u64,
    sessions: HashMap<SessionId, SessionState>,
    accept: VecDeque<SessionId>,
    registered: bool,
    registration_failed: Option<String>,
    deregistered: bool,
    /// The worker has stopped.
    stopped: bool,
    /// Notifications dropped because a session's queue was full.
    dropped: u64,
}

impl State {
    fn notify(&mut self, session: SessionId, n: Notification) {
        let s = self.sessions.entry(session).or_default();
        if matches!(n, Notification::Closed | Notification::Failed) {
            s.ended = true;
        }
        if s.notifications.len() >= MAX_NOTIFICATIONS {
            s.notifications.pop_front();
            self.dropped += 1;
        }
        s.notifications.push_back(n);
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `done` gives a value or `timeout` passes.
    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(v) = done(&mut st) {
                return Some(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The application side shared by [`PoolUser`], [`PoolElement`] and their sessions.
#[derive(Clone)]
struct Handle {
    shared: Arc<Shared>,
    remote: WorkerRemote,
}

impl Handle {
    /// Queues `req`, wakes the worker and waits for its answer.
    fn request(&self, req: Request) -> Result<Answer, ApiError> {
        let ticket = {
            let mut st = self.shared.lock();
            if st.stopped {
                return Err(ApiError::Closed);
            }
            let t = st.next_ticket;
            st.next_ticket += 1;
            st.requests.push_back((t, req));
            t
        };
        self.remote.notify();
        self.shared
            .wait_for(REQUEST_TIMEOUT, |st| {
                st.answers
                    .remove(&ticket)
                    .or_else(|| st.stopped.then_some(Err(ApiError::Closed)))
            })
            .unwrap_or(Err(ApiError::Timeout))
    }
}

/// The worker side: answers requests, turns core events into notifications.
struct Bridge {
    shared: Arc<Shared>,
    /// Basic Mode resolutions waiting for the registrar (ticket, pool); bounded by the PU
    /// core's own limit on pending resolutions.
    resolving: Vec<(u64, PoolHandle)>,
}

impl Bridge {
    fn new(shared: Arc<Shared>) -> Self {
        Bridge {
            shared,
            resolving: Vec::new(),
        }
    }

    /// Resolves `pool` for request `ticket`: answered now, or kept until the registrar
    /// answers.
    fn resolve(&mut self, core: &mut Client, now: Timestamp, ticket: u64, pool: PoolHandle) {
        match core.resolve(now, &pool) {
            Ok(Resolve::Selected(pe)) => {
                self.answer(ticket, Ok(Answer::PoolElement(Box::new(pe))));
            }
            Ok(_) => self.resolving.push((ticket, pool)),
            Err(e) => self.answer(ticket, Err(refused(e))),
        }
    }

    fn answer(&self, ticket: u64, result: Result<Answer, ApiError>) {
        self.shared.lock().answers.insert(ticket, result);
    }

    fn take_requests(&self) -> Vec<(u64, Request)> {
        self.shared.lock().requests.drain(..).collect()
    }

    fn done(&self) {
        self.shared.changed.notify_all();
    }
}

fn refused(e: impl std::fmt::Debug) -> ApiError {
    ApiError::Refused(format!("{e:?}"))
}

impl Application<Client> for Bridge {
    fn event(&mut self, core: &mut Client, now: Timestamp, event: client::Event) {
        let mut resolution = None;
        {
            let mut st = self.shared.lock();
            match event {
                client::Event::Connected { session, pe } => {
                    st.sessions.entry(session).or_default().pe = Some(pe);
                }
                client::Event::Data {
                    session,
                    ppid,
                    bytes,
                } => st.notify(session, Notification::Data { ppid, bytes }),
                client::Event::FailoverNecessary { session, pe } => {
                    st.sessions.entry(session).or_default().pe = None;
                    st.notify(session, Notification::FailoverNecessary { pe });
                }
                client::Event::FailoverComplete { session, pe } => {
                    st.sessions.entry(session).or_default().pe = Some(pe);
                    st.notify(session, Notification::FailoverComplete { pe });
                }
                client::Event::Failed { session, .. } => st.notify(session, Notification::Failed),
                client::Event::Closed { session } => st.notify(session, Notification::Closed),
                client::Event::Resolution {
                    pool_handle,
                    resolved,
                } => resolution = Some((pool_handle, resolved)),
                // Cookies are kept by the core for the failover; business cards are not
                // surfaced by this API.
                _ => {}
            }
        }
        if let Some((pool, resolved)) = resolution {
            let (waiting, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.resolving)
                .into_iter()
                .partition(|(_, p)| *p == pool);
            self.resolving = rest;
            for (ticket, pool) in waiting {
                if resolved {
                    self.resolve(core, now, ticket, pool);
                } else {
                    self.answer(
                        ticket,
                        Err(ApiError::Refused(format!(
                            "pool {pool} could not be resolved"
                        ))),
                    );
                }
            }
        }
        self.done();
    }

    fn poll(&mut self, core: &mut Client, now: Timestamp) {
        let requests = self.take_requests();
        if requests.is_empty() {
            return;
        }
        for (ticket, req) in requests {
            let result = match req {
                Request::Connect(pool) => core.connect(now, pool).map_err(refused).map(|s| {
                    self.shared.lock().sessions.entry(s).or_default();
                    Answer::Session(s)
                }),
                Request::Resolve(pool) => {
                    self.resolve(core, now, ticket, pool);
                    continue;
                }
                Request::ReportFailure(pool, pe) => {
                    core.report_failure(now, &pool, pe);
                    Ok(Answer::Done)
                }
                Request::Send {
                    session,
                    ppid,
                    bytes,
                } => core
                    .send(now, session, ppid, &bytes)
                    .map(|()| Answer::Done)
                    .map_err(|e| match e {
                        rserpool::session::SendError::NotConnected => ApiError::NotConnected,
                        other => refused(other),
                    }),
                Request::Cookie { .. } => Err(ApiError::Refused(
                    "a pool user does not send cookies".to_owned(),
                )),
                Request::Failover(session) => {
                    core.failover(now, session);
                    Ok(Answer::Done)
                }
                Request::Close(session) => {
                    core.close(now, session);
                    Ok(Answer::Done)
                }
                Request::Deregister => Err(ApiError::Refused(
                    "a pool user is not registered".to_owned(),
                )),
            };
            self.answer(ticket, result);
        }
        self.done();
    }

    fn has_pending_input(&self) -> bool {
        !self.shared.lock().requests.is_empty()
    }

    fn stop(&mut self, _core: &mut Client, _now: Timestamp) {
        self.shared.lock().stopped = true;
        self.done();
    }
}

impl Application<Server> for Bridge {
    fn event(&mut self, core: &mut Server, now: Timestamp, event: server::Event) {
        let mut refuse = None;
        {
            let mut st = self.shared.lock();
            match event {
                server::Event::Pe(pe::Event::Registered { .. }) => st.registered = true,
                server::Event::Pe(pe::Event::Deregistered { .. }) => st.deregistered = true,
                server::Event::Pe(pe::Event::RegistrationFailed { cause }) => {
                    st.registration_failed = Some(format!("{cause:?}"));
                }
                server::Event::SessionAdded { session, .. } => {
                    if st.accept.len() >= MAX_ACCEPT_BACKLOG {
                        refuse = Some(session);
                    } else {
                        st.sessions.entry(session).or_default();
                        st.accept.push_back(session);
                    }
                }
                server::Event::SessionRemoved { session } => {
                    st.notify(session, Notification::Closed)
                }
                server::Event::Data {
                    session,
                    ppid,
                    bytes,
                } => st.notify(session, Notification::Data { ppid, bytes }),
                server::Event::CookieEcho { session, cookie } => {
                    st.notify(session, Notification::CookieEcho { cookie })
                }
                _ => {}
            }
        }
        if let Some(session) = refuse {
            core.close(now, session);
        }
        self.done();
    }

    fn poll(&mut self, core: &mut Server, now: Timestamp) {
        let requests = self.take_requests();
        if requests.is_empty() {
            return;
        }
        for (ticket, req) in requests {
            let result = match req {
                Request::Connect(_)
                | Request::Failover(_)
                | Request::Resolve(_)
                | Request::ReportFailure(..) => Err(ApiError::Refused(
                    "a pool element accepts sessions; it does not use pools".to_owned(),
                )),
                Request::Send {
                    session,
                    ppid,
                    bytes,
                } => core
                    .send(now, session, ppid, &bytes)
                    .map(|()| Answer::Done)
                    .map_err(refused),
                Request::Cookie { session, cookie } => core
                    .send_cookie(now, session, &cookie)
                    .map(|()| Answer::Done)
                    .map_err(refused),
                Request::Close(session) => {
                    core.close(now, session);
                    Ok(Answer::Done)
                }
                Request::Deregister => {
                    core.deregister(now);
                    Ok(Answer::Done)
                }
            };
            self.answer(ticket, result);
        }
        self.done();
    }

    fn has_pending_input(&self) -> bool {
        !self.shared.lock().requests.is_empty()
    }

    fn stop(&mut self, _core: &mut Server, _now: Timestamp) {
        self.shared.lock().stopped = true;
        self.done();
    }
}

/// One session (PU or PE side).
pub struct Session {
    id: SessionId,
    handle: Handle,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id).finish()
    }
}

impl Session {
    /// The session's identifier.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Sends one message; [`ApiError::NotConnected`] on a PU session during a failover.
    pub fn send(&self, ppid: u32, bytes: &[u8]) -> Result<(), ApiError> {
        self.handle
            .request(Request::Send {
                session: self.id,
                ppid,
                bytes: bytes.to_vec(),
            })
            .map(|_| ())
    }

    /// PE side: sends a cookie (a state snapshot the PU echoes to its next PE).
    pub fn send_cookie(&self, cookie: &[u8]) -> Result<(), ApiError> {
        self.handle
            .request(Request::Cookie {
                session: self.id,
                cookie: cookie.to_vec(),
            })
            .map(|_| ())
    }

    /// PU side: fail over now (application-driven failover, e.g. the PE stopped answering).
    pub fn failover(&self) -> Result<(), ApiError> {
        self.handle.request(Request::Failover(self.id)).map(|_| ())
    }

    /// The next notification, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Notification, ApiError> {
        let id = self.id;
        self.handle
            .shared
            .wait_for(timeout, |st| {
                let s = st.sessions.get_mut(&id)?;
                match s.notifications.pop_front() {
                    Some(n) => Some(Ok(n)),
                    None if s.ended || st.stopped => Some(Err(ApiError::Closed)),
                    None => None,
                }
            })
            .unwrap_or(Err(ApiError::Timeout))
    }

    /// The next notification if one is there (non-blocking).
    pub fn try_recv(&self) -> Option<Notification> {
        let mut st = self.handle.shared.lock();
        st.sessions.get_mut(&self.id)?.notifications.pop_front()
    }

    /// PU side: the PE serving the session, if connected.
    pub fn pe(&self) -> Option<PeIdentifier> {
        self.handle.shared.lock().sessions.get(&self.id)?.pe
    }

    /// Ends the session.
    pub fn close(self) -> Result<(), ApiError> {
        let r = self.handle.request(Request::Close(self.id)).map(|_| ());
        self.handle.shared.lock().sessions.remove(&self.id);
        r
    }
}

/// A pool user: opens sessions to pools.
pub struct PoolUser {
    handle: Handle,
    running: Running,
}

impl std::fmt::Debug for PoolUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.handle.shared.lock();
        f.debug_struct("PoolUser")
            .field("sessions", &st.sessions.len())
            .field("stopped", &st.stopped)
            .finish_non_exhaustive()
    }
}

impl PoolUser {
    /// Starts the worker with `client` as the session core.
    pub fn start(
        config: RuntimeConfig,
        links: LinkSpec,
        driver: DriverConfig,
        client: ClientConfig,
        seed: [u8; 32],
    ) -> Result<Self, Failure> {
        let shared: Arc<Shared> = Arc::default();
        let s = Arc::clone(&shared);
        let running = start(config, links, driver, None, move |now| {
            let core = Client::new(client, Box::new(ChaCha8Rng::from_seed(seed)), now);
            (core, Bridge::new(s))
        })?;
        Ok(PoolUser {
            handle: Handle {
                shared,
                remote: running.remote.clone(),
            },
            running,
        })
    }

    /// Opens a session to `pool` and waits (at most `timeout`) until a PE serves it.
    pub fn connect(&self, pool: PoolHandle, timeout: Duration) -> Result<Session, ApiError> {
        let Answer::Session(id) = self.handle.request(Request::Connect(pool))? else {
            return Err(ApiError::Refused("no session".to_owned()));
        };
        let session = Session {
            id,
            handle: self.handle.clone(),
        };
        let up = self.handle.shared.wait_for(timeout, |st| {
            let s = st.sessions.get(&id)?;
            if s.pe.is_some() {
                Some(Ok(()))
            } else if s.ended || st.stopped {
                Some(Err(ApiError::Closed))
            } else {
                None
            }
        });
        match up {
            Some(Ok(())) => Ok(session),
            Some(Err(e)) => Err(e),
            None => {
                let _ = session.close();
                Err(ApiError::Timeout)
            }
        }
    }

    /// Basic Mode: one PE of `pool`, chosen by the pool's policy (from the cache, else by a
    /// handle resolution at a registrar; the wait is bounded by the PU core's request
    /// timeouts).
    pub fn resolve(&self, pool: PoolHandle) -> Result<WirePoolElement, ApiError> {
        match self.handle.request(Request::Resolve(pool))? {
            Answer::PoolElement(pe) => Ok(*pe),
            _ => Err(ApiError::Refused("no pool element".to_owned())),
        }
    }

    /// Basic Mode: PE `pe` of `pool` could not be used (ENDPOINT_UNREACHABLE to the
    /// registrar, RFC 5352 §3.5).
    pub fn report_failure(&self, pool: PoolHandle, pe: PeIdentifier) -> Result<(), ApiError> {
        self.handle
            .request(Request::ReportFailure(pool, pe))
            .map(|_| ())
    }

    /// Stops the worker (sessions end with it).
    pub fn stop(self) -> Result<(), Failure> {
        self.running.remote.stop_runtime();
        self.running.join()
    }
}

/// A pool element: registers in its pool and accepts sessions.
pub struct PoolElement {
    handle: Handle,
    running: Running,
}

impl std::fmt::Debug for PoolElement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.handle.shared.lock();
        f.debug_struct("PoolElement")
            .field("registered", &st.registered)
            .field("sessions", &st.sessions.len())
            .field("waiting_accept", &st.accept.len())
            .finish_non_exhaustive()
    }
}

impl PoolElement {
    /// Starts the worker with `server` as the session core; `driver.listen_port` must be the
    /// PE's user port (the user transport of `server.pe`).
    pub fn start(
        config: RuntimeConfig,
        links: LinkSpec,
        driver: DriverConfig,
        server: ServerConfig,
        seed: [u8; 32],
    ) -> Result<Self, Failure> {
        if driver.listen_port != Some(server.pe.user_transport.port) {
            return Err(Failure::usage(
                "a pool element listens on the port of its user transport",
            ));
        }
        let shared: Arc<Shared> = Arc::default();
        let s = Arc::clone(&shared);
        let running = start(config, links, driver, None, move |now| {
            let core = Server::new(server, Box::new(ChaCha8Rng::from_seed(seed)), now);
            (core, Bridge::new(s))
        })?;
        Ok(PoolElement {
            handle: Handle {
                shared,
                remote: running.remote.clone(),
            },
            running,
        })
    }

    /// Waits (at most `timeout`) until the home registrar accepted the registration.
    pub fn wait_registered(&self, timeout: Duration) -> Result<(), ApiError> {
        self.handle
            .shared
            .wait_for(timeout, |st| {
                if st.registered {
                    Some(Ok(()))
                } else if let Some(why) = &st.registration_failed {
                    Some(Err(ApiError::Refused(why.clone())))
                } else if st.stopped {
                    Some(Err(ApiError::Closed))
                } else {
                    None
                }
            })
            .unwrap_or(Err(ApiError::Timeout))
    }

    /// The next new session, waiting at most `timeout`.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Session, ApiError> {
        let id = self
            .handle
            .shared
            .wait_for(timeout, |st| {
                st.accept
                    .pop_front()
                    .map(Ok)
                    .or_else(|| st.stopped.then_some(Err(ApiError::Closed)))
            })
            .unwrap_or(Err(ApiError::Timeout))?;
        Ok(Session {
            id,
            handle: self.handle.clone(),
        })
    }

    /// Deregisters (RFC 5352 §3.2; waits at most 2 s for the registrar's answer) and tells
    /// the worker to stop; sessions end (their PUs fail over). [`PoolElement::stop`] also
    /// waits for the worker.
    pub fn shutdown(&self) {
        if self.handle.request(Request::Deregister).is_ok() {
            let _ = self
                .handle
                .shared
                .wait_for(Duration::from_secs(2), |st| st.deregistered.then_some(()));
        }
        self.running.remote.stop_runtime();
    }

    /// [`PoolElement::shutdown`], then waits for the worker to end.
    pub fn stop(self) -> Result<(), Failure> {
        self.shutdown();
        self.running.join()
    }
}
