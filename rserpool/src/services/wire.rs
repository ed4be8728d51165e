//! Message formats of RSPLIB's services (all big-endian, each with the 4-byte header
//! `type u8, flags u8, length u16`, length including the header).
//!
//! | service | SCTP PPID | messages |
//! |---|---|---|
//! | PingPong | 33 | [`PingPongMessage`], cookie [`PingPongCookie`] |
//! | Fractal Generator | 32 | [`FractalMessage`], cookie [`FractalCookie`] |
//! | CalcApp | 34 | [`CalcAppMessage`], cookie [`CalcAppCookie`] |
//! | Scripting | 35 | [`ScriptingMessage`] |
//! | Component Status (UDP 2960) | - | [`ComponentStatusReport`] |
//!
//! Cookies travel inside ASAP_COOKIE / ASAP_COOKIE_ECHO (opaque to ASAP); each starts with
//! RSPLIB's 8-byte identifier so a PE recognises its own format.

use core::fmt;

use crate::wire::{EncodeError, Writer, count_with, encode_with};

/// PPID of the Fractal Generator Protocol.
pub const PPID_FGP: u32 = 32;
/// PPID of the PingPong Protocol.
pub const PPID_PINGPONG: u32 = 33;
/// PPID of CalcApp.
pub const PPID_CALCAPP: u32 = 34;
/// PPID of the Scripting Service Protocol.
pub const PPID_SCRIPTING: u32 = 35;
/// UDP port of the Component Status Protocol.
pub const CSP_PORT: u16 = 2960;
/// Component Status Protocol version (RSPLIB 3: 0x0200).
pub const CSP_VERSION: u32 = 0x0200;

/// Why a service message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceDecodeError {
    /// Shorter than the header or the fixed fields of the type.
    Truncated,
    /// The length field is below the type's minimum or beyond the buffer.
    BadLength,
    /// A type this protocol does not define.
    UnknownType(u8),
    /// A field with a value the protocol does not allow.
    InvalidValue,
}

impl fmt::Display for ServiceDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceDecodeError::Truncated => write!(f, "truncated"),
            ServiceDecodeError::BadLength => write!(f, "bad length field"),
            ServiceDecodeError::UnknownType(t) => write!(f, "unknown message type {t:#04x}"),
            ServiceDecodeError::InvalidValue => write!(f, "invalid field value"),
        }
    }
}

impl std::error::Error for ServiceDecodeError {}

macro_rules! impl_encode {
    ($t:ty) => {
        impl $t {
            /// Bytes [`encode`](Self::encode) writes.
            pub fn encoded_len(&self) -> usize {
                count_with(|w| self.emit(w))
            }

            /// Writes the message into `buf`; returns the bytes written.
            pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
                encode_with(buf, |w| self.emit(w))
            }
        }
    };
}

/// A checked big-endian reader over one message (length field already validated).
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], ServiceDecodeError> {
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or(ServiceDecodeError::Truncated)?;
        self.pos += n;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, ServiceDecodeError> {
        let s = self.bytes(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, ServiceDecodeError> {
        let s = self.bytes(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, ServiceDecodeError> {
        let s = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    fn f64(&mut self) -> Result<f64, ServiceDecodeError> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = self.b.get(self.pos..).unwrap_or(&[]);
        self.pos = self.b.len();
        s
    }
}

/// Checks the common header; returns (type, flags, reader over the message after the header).
fn header(buf: &[u8], min_len: usize) -> Result<(u8, u8, Reader<'_>), ServiceDecodeError> {
    let h = buf.get(..4).ok_or(ServiceDecodeError::Truncated)?;
    let len = u16::from_be_bytes([h[2], h[3]]) as usize;
    if len < min_len.max(4) || len > buf.len() {
        return Err(ServiceDecodeError::BadLength);
    }
    let msg = buf.get(..len).ok_or(ServiceDecodeError::Truncated)?;
    Ok((h[0], h[1], Reader { b: msg, pos: 4 }))
}

fn begin(w: &mut Writer<'_>, ty: u8, flags: u8) -> usize {
    w.begin_message(ty, flags)
}

fn fixed_string(w: &mut Writer<'_>, s: &[u8], size: usize) {
    if s.len() > size {
        w.fail(EncodeError::TooLong);
        return;
    }
    w.bytes(s);
    w.zeros(size - s.len());
}

fn trim_nul(s: &[u8]) -> Vec<u8> {
    let end = s.iter().position(|b| *b == 0).unwrap_or(s.len());
    s[..end].to_vec()
}

fn f64_be(w: &mut Writer<'_>, v: f64) {
    w.bytes(&v.to_bits().to_be_bytes());
}

// ---------------------------------------------------------------------------------------
// PingPong
// ---------------------------------------------------------------------------------------

/// PingPong messages (RSPLIB `pingpongpackets.h`).
///
/// ```text
/// Ping: | 0x01 | flags | length | message no (u64) | data ... |
/// Pong: | 0x02 | flags | length | message no (u64) | reply no (u64) | data ... |
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PingPongMessage {
    /// From the PU.
    Ping {
        /// Sequence number of the ping.
        message_no: u64,
        /// Payload.
        data: Vec<u8>,
    },
    /// From the PE; `reply_no` continues across failovers through the cookie.
    Pong {
        /// The ping's number.
        message_no: u64,
        /// The PE's reply counter.
        reply_no: u64,
        /// Payload.
        data: Vec<u8>,
    },
}

impl PingPongMessage {
    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            PingPongMessage::Ping { message_no, data } => {
                let m = begin(w, 0x01, 0);
                w.bytes(&message_no.to_be_bytes());
                w.bytes(data);
                w.end_message(m);
            }
            PingPongMessage::Pong {
                message_no,
                reply_no,
                data,
            } => {
                let m = begin(w, 0x02, 0);
                w.bytes(&message_no.to_be_bytes());
                w.bytes(&reply_no.to_be_bytes());
                w.bytes(data);
                w.end_message(m);
            }
        }
    }

    /// Decodes one message.
    pub fn decode(buf: &[u8]) -> Result<Self, ServiceDecodeError> {
        let (ty, _, mut r) = header(buf, 12)?;
        match ty {
            0x01 => Ok(PingPongMessage::Ping {
                message_no: r.u64()?,
                data: r.rest().to_vec(),
            }),
            0x02 => Ok(PingPongMessage::Pong {
                message_no: r.u64()?,
                reply_no: r.u64()?,
                data: r.rest().to_vec(),
            }),
            t => Err(ServiceDecodeError::UnknownType(t)),
        }
    }
}

impl_encode!(PingPongMessage);

/// The PingPong PE's cookie: `"<PP-TD1>"` + reply number (u64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingPongCookie {
    /// The next reply number.
    pub reply_no: u64,
}

impl PingPongCookie {
    /// RSPLIB's cookie identifier.
    pub const ID: &'static [u8; 8] = b"<PP-TD1>";

    /// The 16-byte cookie.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(Self::ID);
        b[8..].copy_from_slice(&self.reply_no.to_be_bytes());
        b
    }

    /// Parses a cookie.
    pub fn from_bytes(b: &[u8]) -> Result<Self, ServiceDecodeError> {
        let mut r = Reader { b, pos: 0 };
        if r.bytes(8)? != Self::ID {
            return Err(ServiceDecodeError::InvalidValue);
        }
        Ok(PingPongCookie { reply_no: r.u64()? })
    }
}

// ---------------------------------------------------------------------------------------
// CalcApp
// ---------------------------------------------------------------------------------------

/// CalcApp message types (RSPLIB `calcapppackets.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CalcAppType {
    /// PU -> PE: a job.
    Request = 1,
    /// PE accepts.
    Accept = 2,
    /// PE rejects (the PU fails over).
    Reject = 3,
    /// PU aborts.
    Abort = 4,
    /// PE finished the job.
    Complete = 5,
    /// Keep-alive.
    KeepAlive = 6,
    /// Keep-alive acknowledgement.
    KeepAliveAck = 7,
}

impl CalcAppType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => CalcAppType::Request,
            2 => CalcAppType::Accept,
            3 => CalcAppType::Reject,
            4 => CalcAppType::Abort,
            5 => CalcAppType::Complete,
            6 => CalcAppType::KeepAlive,
            7 => CalcAppType::KeepAliveAck,
            _ => return None,
        })
    }
}

/// A CalcApp message: `| type | flags | length | job id u32 | job size u64 | completed u64 |`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalcAppMessage {
    /// The type.
    pub kind: CalcAppType,
    /// The job.
    pub job_id: u32,
    /// Total job size (calculations).
    pub job_size: u64,
    /// Calculations completed so far.
    pub completed: u64,
}

impl CalcAppMessage {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = begin(w, self.kind as u8, 0);
        w.u32(self.job_id);
        w.bytes(&self.job_size.to_be_bytes());
        w.bytes(&self.completed.to_be_bytes());
        w.end_message(m);
    }

    /// Decodes one message.
    pub fn decode(buf: &[u8]) -> Result<Self, ServiceDecodeError> {
        let (ty, _, mut r) = header(buf, 24)?;
        let kind = CalcAppType::from_u8(ty).ok_or(ServiceDecodeError::UnknownType(ty))?;
        Ok(CalcAppMessage {
            kind,
            job_id: r.u32()?,
            job_size: r.u64()?,
            completed: r.u64()?,
        })
    }
}

impl_encode!(CalcAppMessage);

/// CalcApp's cookie: job id u32, job size u64, completed u64 (20 bytes, no identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalcAppCookie {
    /// The job.
    pub job_id: u32,
    /// Total size.
    pub job_size: u64,
    /// Completed so far.
    pub completed: u64,
}

impl CalcAppCookie {
    /// The 20-byte cookie.
    pub fn to_bytes(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&self.job_id.to_be_bytes());
        b[4..12].copy_from_slice(&self.job_size.to_be_bytes());
        b[12..].copy_from_slice(&self.completed.to_be_bytes());
        b
    }

    /// Parses a cookie.
    pub fn from_bytes(b: &[u8]) -> Result<Self, ServiceDecodeError> {
        let mut r = Reader { b, pos: 0 };
        Ok(CalcAppCookie {
            job_id: r.u32()?,
            job_size: r.u64()?,
            completed: r.u64()?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Fractal Generator
// ---------------------------------------------------------------------------------------

/// The fractal algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FractalAlgorithm(pub u32);

impl FractalAlgorithm {
    /// z -> z² + c.
    pub const MANDELBROT: FractalAlgorithm = FractalAlgorithm(1);
    /// z -> z^n + c.
    pub const MANDELBROT_N: FractalAlgorithm = FractalAlgorithm(2);
}

/// FGP Parameter message body (also embedded in the cookie).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FractalParameter {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Iteration limit.
    pub max_iterations: u32,
    /// Algorithm.
    pub algorithm: FractalAlgorithm,
    /// Upper-left corner (real part).
    pub c1_real: f64,
    /// Upper-left corner (imaginary part).
    pub c1_imag: f64,
    /// Lower-right corner (real part).
    pub c2_real: f64,
    /// Lower-right corner (imaginary part).
    pub c2_imag: f64,
    /// Exponent for MandelbrotN.
    pub n: f64,
}

impl FractalParameter {
    fn emit_body(&self, w: &mut Writer<'_>) {
        w.u32(self.width);
        w.u32(self.height);
        w.u32(self.max_iterations);
        w.u32(self.algorithm.0);
        // RSPLIB's network_double_t: IEEE 754 binary64, big-endian.
        for v in [
            self.c1_real,
            self.c1_imag,
            self.c2_real,
            self.c2_imag,
            self.n,
        ] {
            f64_be(w, v);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, ServiceDecodeError> {
        Ok(FractalParameter {
            width: r.u32()?,
            height: r.u32()?,
            max_iterations: r.u32()?,
            algorithm: FractalAlgorithm(r.u32()?),
            c1_real: r.f64()?,
            c1_imag: r.f64()?,
            c2_real: r.f64()?,
            c2_imag: r.f64()?,
            n: r.f64()?,
        })
    }
}

/// Most points in one FGP Data message.
pub const FGP_MAX_POINTS: usize = 324;

/// Fractal Generator Protocol messages (RSPLIB `fractalgeneratorpackets.h`).
///
/// ```text
/// Parameter: | 0x01 | flags | length=60 | width | height | max iterations | algorithm |
///            | c1 re (f64) | c1 im | c2 re | c2 im | n |
/// Data:      | 0x02 | flags | length | start x | start y | points | u32 value x points |
/// ```
/// A Data message with start x = start y = 0xffffffff ends the image.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FractalMessage {
    /// PU -> PE: what to compute.
    Parameter(FractalParameter),
    /// PE -> PU: computed points from (start x, start y) onwards, row by row.
    Data {
        /// Column of the first point.
        start_x: u32,
        /// Row of the first point.
        start_y: u32,
        /// Iteration counts (at most [`FGP_MAX_POINTS`]).
        points: Vec<u32>,
    },
}

impl FractalMessage {
    /// The end-of-image marker.
    pub fn done() -> Self {
        FractalMessage::Data {
            start_x: u32::MAX,
            start_y: u32::MAX,
            points: Vec::new(),
        }
    }

    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            FractalMessage::Parameter(p) => {
                let m = begin(w, 0x01, 0);
                p.emit_body(w);
                w.end_message(m);
            }
            FractalMessage::Data {
                start_x,
                start_y,
                points,
            } => {
                if points.len() > FGP_MAX_POINTS {
                    w.fail(EncodeError::TooLong);
                }
                let m = begin(w, 0x02, 0);
                w.u32(*start_x);
                w.u32(*start_y);
                w.u32(points.len() as u32);
                for p in points {
                    w.u32(*p);
                }
                w.end_message(m);
            }
        }
    }

    /// Decodes one message.
    pub fn decode(buf: &[u8]) -> Result<Self, ServiceDecodeError> {
        let (ty, _, mut r) = header(buf, 4)?;
        match ty {
            0x01 => Ok(FractalMessage::Parameter(FractalParameter::read(&mut r)?)),
            0x02 => {
                let start_x = r.u32()?;
                let start_y = r.u32()?;
                let n = r.u32()? as usize;
                if n > FGP_MAX_POINTS {
                    return Err(ServiceDecodeError::InvalidValue);
                }
                let mut points = Vec::with_capacity(n);
                for _ in 0..n {
                    points.push(r.u32()?);
                }
                Ok(FractalMessage::Data {
                    start_x,
                    start_y,
                    points,
                })
            }
            t => Err(ServiceDecodeError::UnknownType(t)),
        }
    }
}

impl_encode!(FractalMessage);

/// The Fractal Generator PE's cookie: `"<FG-TD1>"`, the parameter message (60 bytes,
/// header included) and the current position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FractalCookie {
    /// The job.
    pub parameter: FractalParameter,
    /// Next column.
    pub current_x: u32,
    /// Next row.
    pub current_y: u32,
}

impl FractalCookie {
    /// RSPLIB's cookie identifier.
    pub const ID: &'static [u8; 8] = b"<FG-TD1>";

    /// The 76-byte cookie.
    pub fn to_bytes(&self) -> Vec<u8> {
        let msg = FractalMessage::Parameter(self.parameter);
        let mut b = Vec::with_capacity(76);
        b.extend_from_slice(Self::ID);
        let mut p = vec![0u8; msg.encoded_len()];
        if msg.encode(&mut p).is_ok() {
            b.extend_from_slice(&p);
        }
        b.extend_from_slice(&self.current_x.to_be_bytes());
        b.extend_from_slice(&self.current_y.to_be_bytes());
        b
    }

    /// Parses a cookie.
    pub fn from_bytes(b: &[u8]) -> Result<Self, ServiceDecodeError> {
        let mut r = Reader { b, pos: 0 };
        if r.bytes(8)? != Self::ID {
            return Err(ServiceDecodeError::InvalidValue);
        }
        let FractalMessage::Parameter(parameter) = FractalMessage::decode(r.bytes(60)?)? else {
            return Err(ServiceDecodeError::InvalidValue);
        };
        Ok(FractalCookie {
            parameter,
            current_x: r.u32()?,
            current_y: r.u32()?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Scripting Service
// ---------------------------------------------------------------------------------------

/// Size of the info text of Ready/NotReady.
pub const SCRIPTING_INFO_SIZE: usize = 64;
/// Most bytes in one Upload/Download message.
pub const SCRIPTING_MAX_DATA: usize = 16384;
/// Flag of Environment: the PE needs the environment archive uploaded.
pub const SCRIPTING_UPLOAD_NEEDED: u8 = 0x01;

/// Scripting Service Protocol messages (RSPLIB `scriptingpackets.h`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptingMessage {
    /// 0x00: PE cannot take the job (`reason`: 1 fully loaded, 2 out of resources).
    NotReady {
        /// Reason code.
        reason: u32,
        /// Info text (at most 64 bytes, NUL-padded on the wire).
        info: Vec<u8>,
    },
    /// 0x01: PE ready.
    Ready {
        /// Info text.
        info: Vec<u8>,
    },
    /// 0x02: PU -> PE script/data chunk (empty = end of file).
    Upload(Vec<u8>),
    /// 0x03: PE -> PU result chunk (empty = end of file).
    Download(Vec<u8>),
    /// 0x04.
    KeepAlive,
    /// 0x05.
    KeepAliveAck {
        /// Job status.
        status: u32,
    },
    /// 0x06: job finished with exit status.
    Status {
        /// Exit status.
        status: u32,
    },
    /// 0x07: the SHA-1 of the environment archive the job needs.
    Environment {
        /// Flag U: the PE needs the environment uploaded.
        upload_needed: bool,
        /// SHA-1 hash.
        hash: [u8; 20],
    },
}

impl ScriptingMessage {
    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            ScriptingMessage::NotReady { reason, info } => {
                let m = begin(w, 0x00, 0);
                w.u32(*reason);
                fixed_string(w, info, SCRIPTING_INFO_SIZE);
                w.end_message(m);
            }
            ScriptingMessage::Ready { info } => {
                let m = begin(w, 0x01, 0);
                fixed_string(w, info, SCRIPTING_INFO_SIZE);
                w.end_message(m);
            }
            ScriptingMessage::Upload(d) | ScriptingMessage::Download(d) => {
                if d.len() > SCRIPTING_MAX_DATA {
                    w.fail(EncodeError::TooLong);
                }
                let ty = if matches!(self, ScriptingMessage::Upload(_)) {
                    0x02
                } else {
                    0x03
                };
                let m = begin(w, ty, 0);
                w.bytes(d);
                w.end_message(m);
            }
            ScriptingMessage::KeepAlive => {
                let m = begin(w, 0x04, 0);
                w.end_message(m);
            }
            ScriptingMessage::KeepAliveAck { status } | ScriptingMessage::Status { status } => {
                let ty = if matches!(self, ScriptingMessage::Status { .. }) {
                    0x06
                } else {
                    0x05
                };
                let m = begin(w, ty, 0);
                w.u32(*status);
                w.end_message(m);
            }
            ScriptingMessage::Environment {
                upload_needed,
                hash,
            } => {
                let flags = if *upload_needed {
                    SCRIPTING_UPLOAD_NEEDED
                } else {
                    0
                };
                let m = begin(w, 0x07, flags);
                w.bytes(hash);
                w.end_message(m);
            }
        }
    }

    /// Decodes one message.
    pub fn decode(buf: &[u8]) -> Result<Self, ServiceDecodeError> {
        let (ty, flags, mut r) = header(buf, 4)?;
        Ok(match ty {
            0x00 => ScriptingMessage::NotReady {
                reason: r.u32()?,
                info: trim_nul(r.bytes(SCRIPTING_INFO_SIZE)?),
            },
            0x01 => ScriptingMessage::Ready {
                info: trim_nul(r.bytes(SCRIPTING_INFO_SIZE)?),
            },
            0x02 | 0x03 => {
                let d = r.rest();
                if d.len() > SCRIPTING_MAX_DATA {
                    return Err(ServiceDecodeError::InvalidValue);
                }
                if ty == 0x02 {
                    ScriptingMessage::Upload(d.to_vec())
                } else {
                    ScriptingMessage::Download(d.to_vec())
                }
            }
            0x04 => ScriptingMessage::KeepAlive,
            0x05 => ScriptingMessage::KeepAliveAck { status: r.u32()? },
            0x06 => ScriptingMessage::Status { status: r.u32()? },
            0x07 => {
                let mut hash = [0u8; 20];
                hash.copy_from_slice(r.bytes(20)?);
                ScriptingMessage::Environment {
                    upload_needed: flags & SCRIPTING_UPLOAD_NEEDED != 0,
                    hash,
                }
            }
            t => return Err(ServiceDecodeError::UnknownType(t)),
        })
    }
}

impl_encode!(ScriptingMessage);

// ---------------------------------------------------------------------------------------
// Component Status Protocol
// ---------------------------------------------------------------------------------------

/// Size of the location and status texts of a report.
pub const CSP_TEXT_SIZE: usize = 128;
/// Flag F of a report: the component shuts down.
pub const CSP_FINAL: u8 = 0x01;

/// Component identifier groups (upper 8 bits of a 64-bit component id).
pub mod component_group {
    /// A registrar.
    pub const REGISTRAR: u64 = 0x0001;
    /// A pool element.
    pub const POOL_ELEMENT: u64 = 0x0002;
    /// A pool user.
    pub const POOL_USER: u64 = 0x0003;

    /// The component id of `object` in `group` (RSPLIB `CID_COMPOUND`).
    pub fn compound(group: u64, object: u64) -> u64 {
        ((group & 0xffff) << 56) | (object & 0x00ff_ffff_ffff_ffff)
    }
}

/// One association of a component in a status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentAssociation {
    /// The peer component's id.
    pub receiver_id: u64,
    /// Association lifetime in microseconds (`u64::MAX` = unknown).
    pub duration: u64,
    /// Flags.
    pub flags: u16,
    /// Transport protocol number (132 = SCTP).
    pub protocol_id: u16,
    /// SCTP PPID.
    pub ppid: u32,
}

/// A Component Status Protocol report (RSPLIB `componentstatuspackets.h`, UDP port 2960).
///
/// ```text
/// | 0x01 | flags | length | version u32 = 0x0200 | sender id u64 | sender time u64 (us) |
/// | report interval u32 (us) | location [128] | status [128] | workload u16 |
/// | associations u16 | association x n (24 bytes each) |
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStatusReport {
    /// Flag F: final report.
    pub final_report: bool,
    /// The reporting component ([`component_group::compound`]).
    pub sender_id: u64,
    /// Sender's wall clock, microseconds since 1970 (supplied by the driver).
    pub sender_timestamp: u64,
    /// Report interval in microseconds.
    pub report_interval: u32,
    /// Location text (at most 128 bytes).
    pub location: Vec<u8>,
    /// Status text (at most 128 bytes).
    pub status: Vec<u8>,
    /// Workload: `0xffff` unknown, else fraction × 0xfffe ([`Self::workload_from_fraction`]).
    pub workload: u16,
    /// Associations.
    pub associations: Vec<ComponentAssociation>,
}

impl ComponentStatusReport {
    /// Encodes a workload fraction (negative = unknown).
    pub fn workload_from_fraction(f: f64) -> u16 {
        if f < 0.0 || f.is_nan() {
            0xffff
        } else {
            (f.min(1.0) * f64::from(0xfffeu16)).round() as u16
        }
    }

    /// The workload as a fraction, `None` when unknown.
    pub fn workload_fraction(&self) -> Option<f64> {
        (self.workload != 0xffff).then(|| f64::from(self.workload) / f64::from(0xfffeu16))
    }

    fn emit(&self, w: &mut Writer<'_>) {
        let flags = if self.final_report { CSP_FINAL } else { 0 };
        let m = begin(w, 0x01, flags);
        w.u32(CSP_VERSION);
        w.bytes(&self.sender_id.to_be_bytes());
        w.bytes(&self.sender_timestamp.to_be_bytes());
        w.u32(self.report_interval);
        fixed_string(w, &self.location, CSP_TEXT_SIZE);
        fixed_string(w, &self.status, CSP_TEXT_SIZE);
        w.u16(self.workload);
        match u16::try_from(self.associations.len()) {
            Ok(n) => w.u16(n),
            Err(_) => w.fail(EncodeError::TooLong),
        }
        for a in &self.associations {
            w.bytes(&a.receiver_id.to_be_bytes());
            w.bytes(&a.duration.to_be_bytes());
            w.u16(a.flags);
            w.u16(a.protocol_id);
            w.u32(a.ppid);
        }
        w.end_message(m);
    }

    /// Decodes a report (other CSP types and versions are rejected).
    pub fn decode(buf: &[u8]) -> Result<Self, ServiceDecodeError> {
        let (ty, flags, mut r) = header(buf, 288)?;
        if ty != 0x01 {
            return Err(ServiceDecodeError::UnknownType(ty));
        }
        if r.u32()? != CSP_VERSION {
            return Err(ServiceDecodeError::InvalidValue);
        }
        let sender_id = r.u64()?;
        let sender_timestamp = r.u64()?;
        let report_interval = r.u32()?;
        let location = trim_nul(r.bytes(CSP_TEXT_SIZE)?);
        let status = trim_nul(r.bytes(CSP_TEXT_SIZE)?);
        let workload = r.u16()?;
        let n = r.u16()? as usize;
        let mut associations = Vec::with_capacity(n.min(r.b.len() / 24));
        for _ in 0..n {
            associations.push(ComponentAssociation {
                receiver_id: r.u64()?,
                duration: r.u64()?,
                flags: r.u16()?,
                protocol_id: r.u16()?,
                ppid: r.u32()?,
            });
        }
        Ok(ComponentStatusReport {
            final_report: flags & CSP_FINAL != 0,
            sender_id,
            sender_timestamp,
            report_interval,
            location,
            status,
            workload,
            associations,
        })
    }
}

impl_encode!(ComponentStatusReport);

#[cfg(test)]
mod tests;
