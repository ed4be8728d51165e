//! Open codepoint newtypes: every value is representable, known values have names.

use core::fmt;

/// Declares an open codepoint newtype with named constants and a `Debug` that prints the
/// name of a known value and the hex value of an unknown one.
macro_rules! codepoint {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $val:expr => $label:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($val); )*

            /// The raw value.
            #[inline]
            pub const fn get(self) -> $int {
                self.0
            }

            /// The registry name of a known value (`None` for an unknown one).
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($label), )*
                    _ => None,
                }
            }

            /// Whether the value is one of the named constants.
            pub const fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, concat!(stringify!($name), "({:#x})"), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        impl From<$int> for $name {
            fn from(v: $int) -> Self {
                $name(v)
            }
        }

        impl From<$name> for $int {
            fn from(v: $name) -> $int {
                v.0
            }
        }
    };
}

/// What a receiver does with a chunk or parameter type it does not implement, encoded in
/// the two highest bits of the type (RFC 9260 §3.2 for chunks, §3.2.1 for parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnknownAction {
    /// `00`: stop processing; discard the packet (chunk) or the rest of the chunk's
    /// parameters (parameter).
    Stop,
    /// `01`: as [`UnknownAction::Stop`], and report it (Unrecognized Chunk Type in an ERROR;
    /// Unrecognized Parameter in the INIT ACK or an ERROR).
    StopAndReport,
    /// `10`: skip it and continue processing.
    Skip,
    /// `11`: skip it, continue, and report it.
    SkipAndReport,
}

impl UnknownAction {
    const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0b00 => UnknownAction::Stop,
            0b01 => UnknownAction::StopAndReport,
            0b10 => UnknownAction::Skip,
            _ => UnknownAction::SkipAndReport,
        }
    }

    /// Whether processing continues after the unknown item.
    pub const fn skips(self) -> bool {
        matches!(self, UnknownAction::Skip | UnknownAction::SkipAndReport)
    }

    /// Whether the unknown item is reported to the peer.
    pub const fn reports(self) -> bool {
        matches!(
            self,
            UnknownAction::StopAndReport | UnknownAction::SkipAndReport
        )
    }
}

codepoint! {
    /// Chunk Type (RFC 9260 §3.2; IANA "Chunk Types").
    ChunkType(u8) {
        /// Payload Data (RFC 9260 §3.3.1).
        DATA = 0 => "DATA",
        /// Initiation (RFC 9260 §3.3.2).
        INIT = 1 => "INIT",
        /// Initiation Acknowledgement (RFC 9260 §3.3.3).
        INIT_ACK = 2 => "INIT_ACK",
        /// Selective Acknowledgement (RFC 9260 §3.3.4).
        SACK = 3 => "SACK",
        /// Heartbeat Request (RFC 9260 §3.3.5).
        HEARTBEAT = 4 => "HEARTBEAT",
        /// Heartbeat Acknowledgement (RFC 9260 §3.3.6).
        HEARTBEAT_ACK = 5 => "HEARTBEAT_ACK",
        /// Abort (RFC 9260 §3.3.7).
        ABORT = 6 => "ABORT",
        /// Shutdown (RFC 9260 §3.3.8).
        SHUTDOWN = 7 => "SHUTDOWN",
        /// Shutdown Acknowledgement (RFC 9260 §3.3.9).
        SHUTDOWN_ACK = 8 => "SHUTDOWN_ACK",
        /// Operation Error (RFC 9260 §3.3.10).
        ERROR = 9 => "ERROR",
        /// State Cookie (RFC 9260 §3.3.11).
        COOKIE_ECHO = 10 => "COOKIE_ECHO",
        /// Cookie Acknowledgement (RFC 9260 §3.3.12).
        COOKIE_ACK = 11 => "COOKIE_ACK",
        /// Explicit Congestion Notification Echo (RFC 9260 Appendix A).
        ECNE = 12 => "ECNE",
        /// Congestion Window Reduced (RFC 9260 Appendix A).
        CWR = 13 => "CWR",
        /// Shutdown Complete (RFC 9260 §3.3.13).
        SHUTDOWN_COMPLETE = 14 => "SHUTDOWN_COMPLETE",
        /// Authentication Chunk (RFC 4895 §4.2).
        AUTH = 15 => "AUTH",
        /// Payload Data supporting interleaving (RFC 8260 §2.1).
        I_DATA = 0x40 => "I_DATA",
        /// Address Configuration Acknowledgement (RFC 5061 §3.1.2).
        ASCONF_ACK = 0x80 => "ASCONF_ACK",
        /// Re-configuration Chunk (RFC 6525 §3.1).
        RE_CONFIG = 0x82 => "RE_CONFIG",
        /// Padding Chunk (RFC 4820 §3).
        PAD = 0x84 => "PAD",
        /// Forward Cumulative TSN (RFC 3758 §3.2).
        FORWARD_TSN = 0xC0 => "FORWARD_TSN",
        /// Address Configuration Change (RFC 5061 §3.1.1).
        ASCONF = 0xC1 => "ASCONF",
        /// Forward Cumulative TSN supporting interleaving (RFC 8260 §2.3.1).
        I_FORWARD_TSN = 0xC2 => "I_FORWARD_TSN",
    }
}

impl ChunkType {
    /// What to do with this type when it is not implemented (RFC 9260 §3.2).
    pub const fn unknown_action(self) -> UnknownAction {
        UnknownAction::from_bits(self.0 >> 6)
    }
}

codepoint! {
    /// Chunk Parameter Type (RFC 9260 §3.2.1; IANA "Chunk Parameter Types").
    ParamType(u16) {
        /// Heartbeat Info (RFC 9260 §3.3.5).
        HEARTBEAT_INFO = 1 => "HEARTBEAT_INFO",
        /// IPv4 Address (RFC 9260 §3.3.2.1).
        IPV4_ADDRESS = 5 => "IPV4_ADDRESS",
        /// IPv6 Address (RFC 9260 §3.3.2.1).
        IPV6_ADDRESS = 6 => "IPV6_ADDRESS",
        /// State Cookie (RFC 9260 §3.3.3.1).
        STATE_COOKIE = 7 => "STATE_COOKIE",
        /// Unrecognized Parameter (RFC 9260 §3.3.3.1).
        UNRECOGNIZED_PARAMETER = 8 => "UNRECOGNIZED_PARAMETER",
        /// Cookie Preservative (RFC 9260 §3.3.2.1).
        COOKIE_PRESERVATIVE = 9 => "COOKIE_PRESERVATIVE",
        /// Host Name Address (RFC 9260 §3.3.2.1; deprecated, never sent).
        HOST_NAME_ADDRESS = 11 => "HOST_NAME_ADDRESS",
        /// Supported Address Types (RFC 9260 §3.3.2.1).
        SUPPORTED_ADDRESS_TYPES = 12 => "SUPPORTED_ADDRESS_TYPES",
        /// Outgoing SSN Reset Request (RFC 6525 §4.1).
        OUTGOING_SSN_RESET_REQUEST = 13 => "OUTGOING_SSN_RESET_REQUEST",
        /// Incoming SSN Reset Request (RFC 6525 §4.2).
        INCOMING_SSN_RESET_REQUEST = 14 => "INCOMING_SSN_RESET_REQUEST",
        /// SSN/TSN Reset Request (RFC 6525 §4.3).
        SSN_TSN_RESET_REQUEST = 15 => "SSN_TSN_RESET_REQUEST",
        /// Re-configuration Response (RFC 6525 §4.4).
        RECONFIG_RESPONSE = 16 => "RECONFIG_RESPONSE",
        /// Add Outgoing Streams Request (RFC 6525 §4.5).
        ADD_OUTGOING_STREAMS_REQUEST = 17 => "ADD_OUTGOING_STREAMS_REQUEST",
        /// Add Incoming Streams Request (RFC 6525 §4.6).
        ADD_INCOMING_STREAMS_REQUEST = 18 => "ADD_INCOMING_STREAMS_REQUEST",
        /// ECN Capable (RFC 9260 Appendix A).
        ECN_CAPABLE = 0x8000 => "ECN_CAPABLE",
        /// Zero Checksum Acceptable (RFC 9653 §4).
        ZERO_CHECKSUM_ACCEPTABLE = 0x8001 => "ZERO_CHECKSUM_ACCEPTABLE",
        /// Random (RFC 4895 §3.1).
        RANDOM = 0x8002 => "RANDOM",
        /// Chunk List (RFC 4895 §3.2).
        CHUNK_LIST = 0x8003 => "CHUNK_LIST",
        /// Requested HMAC Algorithm (RFC 4895 §3.3).
        REQUESTED_HMAC_ALGORITHM = 0x8004 => "REQUESTED_HMAC_ALGORITHM",
        /// Padding (RFC 4820 §4).
        PADDING = 0x8005 => "PADDING",
        /// Supported Extensions (RFC 5061 §4.2.7).
        SUPPORTED_EXTENSIONS = 0x8008 => "SUPPORTED_EXTENSIONS",
        /// Forward-TSN-Supported (RFC 3758 §3.1).
        FORWARD_TSN_SUPPORTED = 0xC000 => "FORWARD_TSN_SUPPORTED",
        /// Add IP Address (RFC 5061 §4.2.1).
        ADD_IP_ADDRESS = 0xC001 => "ADD_IP_ADDRESS",
        /// Delete IP Address (RFC 5061 §4.2.2).
        DELETE_IP_ADDRESS = 0xC002 => "DELETE_IP_ADDRESS",
        /// Error Cause Indication (RFC 5061 §4.2.3).
        ERROR_CAUSE_INDICATION = 0xC003 => "ERROR_CAUSE_INDICATION",
        /// Set Primary Address (RFC 5061 §4.2.4).
        SET_PRIMARY_ADDRESS = 0xC004 => "SET_PRIMARY_ADDRESS",
        /// Success Indication (RFC 5061 §4.2.5).
        SUCCESS_INDICATION = 0xC005 => "SUCCESS_INDICATION",
        /// Adaptation Layer Indication (RFC 5061 §4.2.6).
        ADAPTATION_LAYER_INDICATION = 0xC006 => "ADAPTATION_LAYER_INDICATION",
    }
}

impl ParamType {
    /// What to do with this type when it is not implemented (RFC 9260 §3.2.1).
    pub const fn unknown_action(self) -> UnknownAction {
        UnknownAction::from_bits((self.0 >> 14) as u8)
    }
}

codepoint! {
    /// Error Cause Code (RFC 9260 §3.3.10; IANA "Error Cause Codes").
    ///
    /// RFC 6525 and RFC 8260 define no error causes.
    CauseCode(u16) {
        /// Invalid Stream Identifier (RFC 9260 §3.3.10.1).
        INVALID_STREAM_IDENTIFIER = 1 => "INVALID_STREAM_IDENTIFIER",
        /// Missing Mandatory Parameter (RFC 9260 §3.3.10.2).
        MISSING_MANDATORY_PARAMETER = 2 => "MISSING_MANDATORY_PARAMETER",
        /// Stale Cookie (RFC 9260 §3.3.10.3).
        STALE_COOKIE = 3 => "STALE_COOKIE",
        /// Out of Resource (RFC 9260 §3.3.10.4).
        OUT_OF_RESOURCE = 4 => "OUT_OF_RESOURCE",
        /// Unresolvable Address (RFC 9260 §3.3.10.5).
        UNRESOLVABLE_ADDRESS = 5 => "UNRESOLVABLE_ADDRESS",
        /// Unrecognized Chunk Type (RFC 9260 §3.3.10.6).
        UNRECOGNIZED_CHUNK_TYPE = 6 => "UNRECOGNIZED_CHUNK_TYPE",
        /// Invalid Mandatory Parameter (RFC 9260 §3.3.10.7).
        INVALID_MANDATORY_PARAMETER = 7 => "INVALID_MANDATORY_PARAMETER",
        /// Unrecognized Parameters (RFC 9260 §3.3.10.8).
        UNRECOGNIZED_PARAMETERS = 8 => "UNRECOGNIZED_PARAMETERS",
        /// No User Data (RFC 9260 §3.3.10.9).
        NO_USER_DATA = 9 => "NO_USER_DATA",
        /// Cookie Received While Shutting Down (RFC 9260 §3.3.10.10).
        COOKIE_RECEIVED_WHILE_SHUTTING_DOWN = 10 => "COOKIE_RECEIVED_WHILE_SHUTTING_DOWN",
        /// Restart of an Association with New Addresses (RFC 9260 §3.3.10.11).
        RESTART_WITH_NEW_ADDRESSES = 11 => "RESTART_WITH_NEW_ADDRESSES",
        /// User-Initiated Abort (RFC 9260 §3.3.10.12).
        USER_INITIATED_ABORT = 12 => "USER_INITIATED_ABORT",
        /// Protocol Violation (RFC 9260 §3.3.10.13).
        PROTOCOL_VIOLATION = 13 => "PROTOCOL_VIOLATION",
        /// Request to Delete Last Remaining IP Address (RFC 5061 §5.1).
        DELETE_LAST_REMAINING_ADDRESS = 0xA0 => "DELETE_LAST_REMAINING_ADDRESS",
        /// Operation Refused Due to Resource Shortage (RFC 5061 §5.1).
        RESOURCE_SHORTAGE = 0xA1 => "RESOURCE_SHORTAGE",
        /// Request to Delete Source IP Address (RFC 5061 §5.1).
        DELETE_SOURCE_ADDRESS = 0xA2 => "DELETE_SOURCE_ADDRESS",
        /// Association Aborted due to Illegal ASCONF-ACK (RFC 5061 §5.1).
        ILLEGAL_ASCONF_ACK = 0xA3 => "ILLEGAL_ASCONF_ACK",
        /// Request Refused - No Authorization (RFC 5061 §5.1).
        NO_AUTHORIZATION = 0xA4 => "NO_AUTHORIZATION",
        /// Unsupported HMAC Identifier (RFC 4895 §4.1).
        UNSUPPORTED_HMAC_IDENTIFIER = 0x105 => "UNSUPPORTED_HMAC_IDENTIFIER",
    }
}

codepoint! {
    /// Payload Protocol Identifier of DATA/I-DATA (RFC 9260 §3.3.1; IANA "SCTP Payload
    /// Protocol Identifiers"). Opaque to SCTP; the names cover what this project carries.
    Ppid(u32) {
        /// Unspecified.
        UNSPECIFIED = 0 => "UNSPECIFIED",
        /// ASAP (RFC 5352).
        ASAP = 11 => "ASAP",
        /// ENRP (RFC 5353).
        ENRP = 12 => "ENRP",
        /// WebRTC DCEP (RFC 8832).
        WEBRTC_DCEP = 50 => "WEBRTC_DCEP",
        /// WebRTC String (RFC 8831).
        WEBRTC_STRING = 51 => "WEBRTC_STRING",
        /// WebRTC Binary (RFC 8831).
        WEBRTC_BINARY = 53 => "WEBRTC_BINARY",
        /// WebRTC String Empty (RFC 8831).
        WEBRTC_STRING_EMPTY = 56 => "WEBRTC_STRING_EMPTY",
        /// WebRTC Binary Empty (RFC 8831).
        WEBRTC_BINARY_EMPTY = 57 => "WEBRTC_BINARY_EMPTY",
    }
}

codepoint! {
    /// HMAC Identifier of AUTH (RFC 4895 §3.3; IANA "HMAC Identifiers").
    HmacId(u16) {
        /// HMAC-SHA-1 (mandatory to implement).
        SHA1 = 1 => "SHA1",
        /// HMAC-SHA-256.
        SHA256 = 3 => "SHA256",
    }
}

codepoint! {
    /// Error Detection Method Identifier of Zero Checksum Acceptable (RFC 9653 §4, §8).
    Edmid(u32) {
        /// SCTP over DTLS (RFC 9653 §5).
        DTLS = 1 => "DTLS",
    }
}

codepoint! {
    /// Result of a Re-configuration Response (RFC 6525 §4.4).
    ReconfigResult(u32) {
        /// Success - Nothing to do.
        SUCCESS_NOTHING_TO_DO = 0 => "SUCCESS_NOTHING_TO_DO",
        /// Success - Performed.
        SUCCESS_PERFORMED = 1 => "SUCCESS_PERFORMED",
        /// Denied.
        DENIED = 2 => "DENIED",
        /// Error - Wrong SSN.
        ERROR_WRONG_SSN = 3 => "ERROR_WRONG_SSN",
        /// Error - Request already in progress.
        ERROR_REQUEST_IN_PROGRESS = 4 => "ERROR_REQUEST_IN_PROGRESS",
        /// Error - Bad Sequence Number.
        ERROR_BAD_SEQUENCE_NUMBER = 5 => "ERROR_BAD_SEQUENCE_NUMBER",
        /// In progress.
        IN_PROGRESS = 6 => "IN_PROGRESS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_chunk_types_follow_their_two_high_bits() {
        assert_eq!(ChunkType(0x3f).unknown_action(), UnknownAction::Stop);
        assert_eq!(
            ChunkType(0x7f).unknown_action(),
            UnknownAction::StopAndReport
        );
        assert_eq!(ChunkType(0xbf).unknown_action(), UnknownAction::Skip);
        assert_eq!(
            ChunkType(0xff).unknown_action(),
            UnknownAction::SkipAndReport
        );
        assert!(ChunkType::FORWARD_TSN.unknown_action().skips());
        assert!(ChunkType::FORWARD_TSN.unknown_action().reports());
        assert!(!ChunkType::I_DATA.unknown_action().skips());
        assert!(ChunkType::I_DATA.unknown_action().reports());
    }

    #[test]
    fn unknown_parameter_types_follow_their_two_high_bits() {
        assert_eq!(ParamType(0x0123).unknown_action(), UnknownAction::Stop);
        assert_eq!(
            ParamType(0x4123).unknown_action(),
            UnknownAction::StopAndReport
        );
        assert_eq!(ParamType::ECN_CAPABLE.unknown_action(), UnknownAction::Skip);
        assert_eq!(
            ParamType::FORWARD_TSN_SUPPORTED.unknown_action(),
            UnknownAction::SkipAndReport
        );
    }

    #[test]
    fn debug_names_known_values_and_prints_unknown_ones_in_hex() {
        assert_eq!(format!("{:?}", ChunkType::SACK), "SACK");
        assert_eq!(format!("{:?}", ChunkType(0x3e)), "ChunkType(0x3e)");
        assert_eq!(format!("{:?}", ParamType(0xfffe)), "ParamType(0xfffe)");
        assert_eq!(
            format!("{:?}", CauseCode::UNSUPPORTED_HMAC_IDENTIFIER),
            "UNSUPPORTED_HMAC_IDENTIFIER"
        );
        assert_eq!(format!("{:?}", HmacId(2)), "HmacId(0x2)");
        assert_eq!(format!("{:?}", Ppid(0x1234)), "Ppid(0x1234)");
    }
}
