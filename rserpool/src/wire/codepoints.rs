//! Open codepoint newtypes (STYLE.md §6): named constants, hex `Debug` for unknown values.

use core::fmt;

macro_rules! codepoint {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty) { $( $(#[$cmeta:meta])* $cname:ident = $val:expr, $text:expr; )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $cname: $name = $name($val); )*

            /// The registered name, or `None` for a value this crate does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($text), )*
                    _ => None,
                }
            }

            /// Whether this crate knows the value.
            pub fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
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
    };
}

codepoint! {
    /// ASAP message types (RFC 5352 §2.2, IANA "ASAP Message Types").
    AsapMessageType(u8) {
        /// ASAP_REGISTRATION (RFC 5352 §2.2.1).
        REGISTRATION = 0x01, "REGISTRATION";
        /// ASAP_DEREGISTRATION (RFC 5352 §2.2.2).
        DEREGISTRATION = 0x02, "DEREGISTRATION";
        /// ASAP_REGISTRATION_RESPONSE (RFC 5352 §2.2.3).
        REGISTRATION_RESPONSE = 0x03, "REGISTRATION_RESPONSE";
        /// ASAP_DEREGISTRATION_RESPONSE (RFC 5352 §2.2.4).
        DEREGISTRATION_RESPONSE = 0x04, "DEREGISTRATION_RESPONSE";
        /// ASAP_HANDLE_RESOLUTION (RFC 5352 §2.2.5).
        HANDLE_RESOLUTION = 0x05, "HANDLE_RESOLUTION";
        /// ASAP_HANDLE_RESOLUTION_RESPONSE (RFC 5352 §2.2.6).
        HANDLE_RESOLUTION_RESPONSE = 0x06, "HANDLE_RESOLUTION_RESPONSE";
        /// ASAP_ENDPOINT_KEEP_ALIVE (RFC 5352 §2.2.7).
        ENDPOINT_KEEP_ALIVE = 0x07, "ENDPOINT_KEEP_ALIVE";
        /// ASAP_ENDPOINT_KEEP_ALIVE_ACK (RFC 5352 §2.2.8).
        ENDPOINT_KEEP_ALIVE_ACK = 0x08, "ENDPOINT_KEEP_ALIVE_ACK";
        /// ASAP_ENDPOINT_UNREACHABLE (RFC 5352 §2.2.9).
        ENDPOINT_UNREACHABLE = 0x09, "ENDPOINT_UNREACHABLE";
        /// ASAP_SERVER_ANNOUNCE (RFC 5352 §2.2.10).
        SERVER_ANNOUNCE = 0x0a, "SERVER_ANNOUNCE";
        /// ASAP_COOKIE (RFC 5352 §2.2.11).
        COOKIE = 0x0b, "COOKIE";
        /// ASAP_COOKIE_ECHO (RFC 5352 §2.2.12).
        COOKIE_ECHO = 0x0c, "COOKIE_ECHO";
        /// ASAP_BUSINESS_CARD (RFC 5352 §2.2.13).
        BUSINESS_CARD = 0x0d, "BUSINESS_CARD";
        /// ASAP_ERROR (RFC 5352 §2.2.14).
        ERROR = 0x0e, "ERROR";
    }
}

codepoint! {
    /// ENRP message types (RFC 5353 §2, IANA "ENRP Message Types").
    EnrpMessageType(u8) {
        /// ENRP_PRESENCE (RFC 5353 §2.1).
        PRESENCE = 0x01, "PRESENCE";
        /// ENRP_HANDLE_TABLE_REQUEST (RFC 5353 §2.2).
        HANDLE_TABLE_REQUEST = 0x02, "HANDLE_TABLE_REQUEST";
        /// ENRP_HANDLE_TABLE_RESPONSE (RFC 5353 §2.3).
        HANDLE_TABLE_RESPONSE = 0x03, "HANDLE_TABLE_RESPONSE";
        /// ENRP_HANDLE_UPDATE (RFC 5353 §2.4).
        HANDLE_UPDATE = 0x04, "HANDLE_UPDATE";
        /// ENRP_LIST_REQUEST (RFC 5353 §2.5).
        LIST_REQUEST = 0x05, "LIST_REQUEST";
        /// ENRP_LIST_RESPONSE (RFC 5353 §2.6).
        LIST_RESPONSE = 0x06, "LIST_RESPONSE";
        /// ENRP_INIT_TAKEOVER (RFC 5353 §2.7).
        INIT_TAKEOVER = 0x07, "INIT_TAKEOVER";
        /// ENRP_INIT_TAKEOVER_ACK (RFC 5353 §2.8).
        INIT_TAKEOVER_ACK = 0x08, "INIT_TAKEOVER_ACK";
        /// ENRP_TAKEOVER_SERVER (RFC 5353 §2.9).
        TAKEOVER_SERVER = 0x09, "TAKEOVER_SERVER";
        /// ENRP_ERROR (RFC 5353 §2.10).
        ERROR = 0x0a, "ERROR";
    }
}

codepoint! {
    /// Parameter types (RFC 5354 §2-3, IANA "RSerPool Parameter Types"), including the two
    /// action bits in the top of the 16-bit value.
    ParameterType(u16) {
        /// IPv4 Address (RFC 5354 §3.1).
        IPV4_ADDRESS = 0x0001, "IPv4 Address";
        /// IPv6 Address (RFC 5354 §3.2).
        IPV6_ADDRESS = 0x0002, "IPv6 Address";
        /// DCCP Transport (RFC 5354 §3.3).
        DCCP_TRANSPORT = 0x0003, "DCCP Transport";
        /// SCTP Transport (RFC 5354 §3.4).
        SCTP_TRANSPORT = 0x0004, "SCTP Transport";
        /// TCP Transport (RFC 5354 §3.5).
        TCP_TRANSPORT = 0x0005, "TCP Transport";
        /// UDP Transport (RFC 5354 §3.6).
        UDP_TRANSPORT = 0x0006, "UDP Transport";
        /// UDP-Lite Transport (RFC 5354 §3.7).
        UDP_LITE_TRANSPORT = 0x0007, "UDP-Lite Transport";
        /// Pool Member Selection Policy (RFC 5354 §3.8).
        POOL_MEMBER_SELECTION_POLICY = 0x0008, "Pool Member Selection Policy";
        /// Pool Handle (RFC 5354 §3.9).
        POOL_HANDLE = 0x0009, "Pool Handle";
        /// Pool Element (RFC 5354 §3.10).
        POOL_ELEMENT = 0x000a, "Pool Element";
        /// Server Information (RFC 5354 §3.11).
        SERVER_INFORMATION = 0x000b, "Server Information";
        /// Operation Error (RFC 5354 §3.12).
        OPERATION_ERROR = 0x000c, "Operation Error";
        /// Cookie (RFC 5354 §3.13).
        COOKIE = 0x000d, "Cookie";
        /// PE Identifier (RFC 5354 §3.14).
        PE_IDENTIFIER = 0x000e, "PE Identifier";
        /// PE Checksum (RFC 5354 §3.15).
        PE_CHECKSUM = 0x000f, "PE Checksum";
        /// RSPLIB's Handle Resolution Option (draft-dreibholz-rserpool-asap-hropt): the number
        /// of PEs wanted, type 0x3f with action "skip" so other implementations ignore it.
        HANDLE_RESOLUTION_OPTION = 0x803f, "Handle Resolution Option";
    }
}

/// What a receiver does with a parameter type it does not recognize (RFC 5354 §2, the two
/// highest-order bits of the type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnrecognizedAction {
    /// `00`: stop processing the message, discard it, report nothing.
    Stop,
    /// `01`: stop processing, discard, and report in an Operation Error.
    StopAndReport,
    /// `10`: skip the parameter and continue.
    Skip,
    /// `11`: skip, continue, and report in an Operation Error.
    SkipAndReport,
}

impl ParameterType {
    /// The mask of the action bits.
    pub const ACTION_MASK: u16 = 0xc000;

    /// The action for this type when it is not recognized.
    pub fn action(self) -> UnrecognizedAction {
        match self.0 >> 14 {
            0 => UnrecognizedAction::Stop,
            1 => UnrecognizedAction::StopAndReport,
            2 => UnrecognizedAction::Skip,
            _ => UnrecognizedAction::SkipAndReport,
        }
    }
}

codepoint! {
    /// Pool member selection policy types (RFC 5356 §4-5, IANA, and RSPLIB's private
    /// range 0xb000xxxx).
    PolicyType(u32) {
        /// Round Robin (RFC 5356 §4.1).
        ROUND_ROBIN = 0x0000_0001, "RoundRobin";
        /// Weighted Round Robin (RFC 5356 §4.2).
        WEIGHTED_ROUND_ROBIN = 0x0000_0002, "WeightedRoundRobin";
        /// Random (RFC 5356 §4.3).
        RANDOM = 0x0000_0003, "Random";
        /// Weighted Random (RFC 5356 §4.4).
        WEIGHTED_RANDOM = 0x0000_0004, "WeightedRandom";
        /// Priority (RFC 5356 §4.5).
        PRIORITY = 0x0000_0005, "Priority";
        /// Least Used (RFC 5356 §5.1).
        LEAST_USED = 0x4000_0001, "LeastUsed";
        /// Least Used with Degradation (RFC 5356 §5.2).
        LEAST_USED_DEGRADATION = 0x4000_0002, "LeastUsedDegradation";
        /// Priority Least Used (RFC 5356 §5.3).
        PRIORITY_LEAST_USED = 0x4000_0003, "PriorityLeastUsed";
        /// Randomized Least Used (RFC 5356 §5.4).
        RANDOMIZED_LEAST_USED = 0x4000_0004, "RandomizedLeastUsed";
        /// RSPLIB: Randomized Priority Least Used.
        RANDOMIZED_PRIORITY_LEAST_USED = 0xb000_1001, "RandomizedPriorityLeastUsed";
        /// RSPLIB: Randomized Least Used with Degradation.
        RANDOMIZED_LEAST_USED_DEGRADATION = 0xb000_1002, "RandomizedLeastUsedDegradation";
        /// RSPLIB: Priority Least Used with Degradation.
        PRIORITY_LEAST_USED_DEGRADATION = 0xb000_1003, "PriorityLeastUsedDegradation";
        /// RSPLIB: Randomized Priority Least Used with Degradation.
        RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION = 0xb000_1004, "RandomizedPriorityLeastUsedDegradation";
        /// RSPLIB: Weighted Random with Distance Penalty Factor.
        WEIGHTED_RANDOM_DPF = 0xb000_2001, "WeightedRandomDPF";
        /// RSPLIB: Least Used with Distance Penalty Factor.
        LEAST_USED_DPF = 0xb000_2002, "LeastUsedDPF";
        /// RSPLIB: Least Used with Degradation and Distance Penalty Factor.
        LEAST_USED_DEGRADATION_DPF = 0xb000_2003, "LeastUsedDegradationDPF";
        /// RSPLIB: Priority Least Used with Distance Penalty Factor.
        PRIORITY_LEAST_USED_DPF = 0xb000_2004, "PriorityLeastUsedDPF";
        /// RSPLIB: Priority Least Used with Degradation and Distance Penalty Factor.
        PRIORITY_LEAST_USED_DEGRADATION_DPF = 0xb000_2005, "PriorityLeastUsedDegradationDPF";
    }
}

codepoint! {
    /// Operation Error cause codes (RFC 5354 §3.12, IANA "RSerPool Error Causes").
    CauseCode(u16) {
        /// Unrecognized Parameter; info: the parameter TLV.
        UNRECOGNIZED_PARAMETER = 0x1, "Unrecognized Parameter";
        /// Unrecognized Message; info: the message.
        UNRECOGNIZED_MESSAGE = 0x2, "Unrecognized Message";
        /// Invalid Values; info: the offending parameter TLV.
        INVALID_VALUES = 0x3, "Invalid Values";
        /// Non-unique PE Identifier.
        NON_UNIQUE_PE_IDENTIFIER = 0x4, "Non-unique PE Identifier";
        /// Inconsistent Pooling Policy; info: the policy parameter.
        INCONSISTENT_POOLING_POLICY = 0x5, "Inconsistent Pooling Policy";
        /// Lack of Resources.
        LACK_OF_RESOURCES = 0x6, "Lack of Resources";
        /// Inconsistent Transport Type; info: the transport parameter.
        INCONSISTENT_TRANSPORT_TYPE = 0x7, "Inconsistent Transport Type";
        /// Inconsistent Data/Control Configuration.
        INCONSISTENT_DATA_CONTROL_CONFIGURATION = 0x8, "Inconsistent Data/Control Configuration";
        /// Unknown Pool Handle.
        UNKNOWN_POOL_HANDLE = 0x9, "Unknown Pool Handle";
        /// Rejection due to Security Considerations.
        REJECTED_SECURITY = 0xa, "Rejection due to Security Considerations";
    }
}

codepoint! {
    /// The transport-use field of SCTP and TCP transport parameters (RFC 5354 §3.4).
    TransportUse(u16) {
        /// Data only.
        DATA_ONLY = 0x0000, "DataOnly";
        /// Data plus control (the PE accepts ASAP control traffic such as cookies).
        DATA_PLUS_CONTROL = 0x0001, "DataPlusControl";
    }
}

codepoint! {
    /// The update action of ENRP_HANDLE_UPDATE (RFC 5353 §2.4).
    UpdateAction(u16) {
        /// Add (or update) a PE.
        ADD_PE = 0x0000, "ADD_PE";
        /// Delete a PE.
        DEL_PE = 0x0001, "DEL_PE";
    }
}

/// A PE identifier (RFC 5351 §3.6; 32 bits, chosen by the PE at random).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeIdentifier(pub u32);

impl fmt::Debug for PeIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PE:{:08x}", self.0)
    }
}

impl fmt::Display for PeIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A registrar (ENRP server) identifier (RFC 5353 §3.1; 32 bits, 0 = none).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RegistrarId(pub u32);

impl RegistrarId {
    /// "No registrar" (e.g. the home registrar field of a PE's own registration).
    pub const UNDEFINED: RegistrarId = RegistrarId(0);
}

impl fmt::Debug for RegistrarId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PR:{:08x}", self.0)
    }
}

impl fmt::Display for RegistrarId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
