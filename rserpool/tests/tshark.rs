//! Cross-check with Wireshark: every ASAP, ENRP and service message, wrapped in SCTP DATA
//! chunks (B and E set, the protocol's PPID and port) and written with our pcap writer,
//! must decode in `tshark` without malformed or error-level packets, under the message
//! name we expect. The Component Status Protocol goes over UDP to port 2960.
//!
//! Needs tshark; run by `.ci/rserpool-tshark.sh` (`cargo test -p rserpool --test tshark --
//! --ignored`). Fails, not skips, without tshark.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;

use rserpool::Timestamp;
use rserpool::services::wire::{
    CSP_PORT, CalcAppMessage, CalcAppType, ComponentAssociation, ComponentStatusReport,
    FractalAlgorithm, FractalMessage, FractalParameter, PPID_CALCAPP, PPID_FGP, PPID_PINGPONG,
    PPID_SCRIPTING, PingPongMessage, ScriptingMessage, component_group,
};
use rserpool::wire::{
    AsapMessage, CauseCode, EnrpBody, EnrpMessage, ErrorCause, OperationError, PORT_ASAP,
    PORT_ENRP, PPID_ASAP, PPID_ENRP, PeIdentifier, PolicyInfo, PolicyType, PoolElement, PoolHandle,
    RegistrarId, ServerInformation, TransportParameter, TransportProtocol, TransportUse,
    UpdateAction,
};
use sctp_stack::pcap::PcapWriter;
use sctp_stack::serial::{Ssn, Tsn};
use sctp_stack::wire::{CommonHeader, Data, PacketBuilder, Ppid};

/// One record: what tshark must report for it.
struct Expect {
    protocol: &'static str,
    info: String,
}

fn v4(a: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, a))
}

fn pe(id: u32, policy: PolicyInfo, with_asap: bool) -> PoolElement {
    PoolElement {
        identifier: PeIdentifier(id),
        home_registrar: RegistrarId(0x1111_2222),
        registration_life: 90_000,
        user_transport: TransportParameter::sctp(
            7,
            TransportUse::DATA_PLUS_CONTROL,
            vec![
                v4(10),
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 10)),
            ],
        ),
        policy,
        asap_transport: with_asap
            .then(|| TransportParameter::sctp(40_000, TransportUse::DATA_ONLY, vec![v4(10)])),
    }
}

fn all_policies() -> Vec<PolicyInfo> {
    rserpool::policy::BuiltinPolicy::TYPES
        .iter()
        .map(|t| PolicyInfo {
            weight: 5,
            load: 0x4000_0000,
            load_degradation: 0x0100_0000,
            dpf: 0x0001_0000,
            distance: 50,
            ..PolicyInfo::new(*t)
        })
        .collect()
}

fn asap_messages() -> Vec<AsapMessage> {
    let ph = PoolHandle::from("PingPongPool");
    let id = PeIdentifier(0x0102_0304);
    let op_err = OperationError {
        causes: vec![
            ErrorCause::with_info(CauseCode::UNRECOGNIZED_PARAMETER, &[0x40, 0x77, 0, 4]),
            ErrorCause::new(CauseCode::LACK_OF_RESOURCES),
        ],
    };
    let mut v = Vec::new();
    for (i, policy) in all_policies().into_iter().enumerate() {
        v.push(AsapMessage::Registration {
            pool_handle: ph.clone(),
            pool_element: pe(100 + i as u32, policy, false),
        });
    }
    v.extend([
        AsapMessage::Deregistration {
            pool_handle: ph.clone(),
            identifier: id,
        },
        AsapMessage::RegistrationResponse {
            reject: false,
            pool_handle: ph.clone(),
            identifier: id,
            error: None,
        },
        AsapMessage::RegistrationResponse {
            reject: true,
            pool_handle: ph.clone(),
            identifier: id,
            // RFC 5354 §3.12: this cause carries the offending policy parameter.
            error: Some(OperationError::new(ErrorCause::with_info(
                CauseCode::INCONSISTENT_POOLING_POLICY,
                &encoded(PolicyInfo::random().encoded_len(), |b| {
                    PolicyInfo::random().encode(b)
                }),
            ))),
        },
        AsapMessage::DeregistrationResponse {
            pool_handle: ph.clone(),
            identifier: id,
            error: None,
        },
        AsapMessage::HandleResolution {
            pool_handle: ph.clone(),
            items: Some(3),
        },
        AsapMessage::HandleResolutionResponse {
            pool_handle: ph.clone(),
            policy: Some(PolicyInfo::least_used(7)),
            pool_elements: (1..=3)
                .map(|i| pe(i, PolicyInfo::least_used(i * 1000), false))
                .collect(),
            error: None,
        },
        AsapMessage::HandleResolutionResponse {
            pool_handle: PoolHandle::from("NoSuchPool"),
            policy: None,
            pool_elements: vec![],
            error: Some(OperationError::new(ErrorCause::new(
                CauseCode::UNKNOWN_POOL_HANDLE,
            ))),
        },
        AsapMessage::EndpointKeepAlive {
            home: true,
            server_id: RegistrarId(0x1111_2222),
            pool_handle: ph.clone(),
            identifier: Some(id),
        },
        AsapMessage::EndpointKeepAliveAck {
            pool_handle: ph.clone(),
            identifier: id,
        },
        AsapMessage::EndpointUnreachable {
            pool_handle: ph.clone(),
            identifier: id,
        },
        AsapMessage::ServerAnnounce {
            server_id: RegistrarId(0x1111_2222),
            transports: vec![TransportParameter::sctp(
                PORT_ASAP,
                TransportUse::DATA_ONLY,
                vec![v4(1)],
            )],
        },
        AsapMessage::Cookie {
            cookie: b"<PP-TD1>\0\0\0\0\0\0\0\x07".to_vec(),
        },
        AsapMessage::CookieEcho {
            cookie: b"<PP-TD1>\0\0\0\0\0\0\0\x07".to_vec(),
        },
        AsapMessage::BusinessCard {
            pool_handle: ph.clone(),
            policy: PolicyInfo::round_robin(),
            pool_elements: vec![pe(9, PolicyInfo::round_robin(), false)],
        },
        AsapMessage::Error { error: op_err },
    ]);
    v
}

fn enrp_messages() -> Vec<EnrpMessage> {
    let si = |id| ServerInformation {
        server_id: RegistrarId(id),
        transport: TransportParameter::sctp(PORT_ENRP, TransportUse::DATA_ONLY, vec![v4(1)]),
    };
    let ph = PoolHandle::from("EchoPool");
    let bodies = vec![
        EnrpBody::Presence {
            reply_required: true,
            checksum: 0x1234,
            server_information: si(1),
        },
        EnrpBody::HandleTableRequest {
            own_children_only: true,
        },
        EnrpBody::HandleTableResponse {
            reject: false,
            more_to_send: true,
            pools: vec![
                (ph.clone(), vec![pe(1, PolicyInfo::random(), true)]),
                (
                    PoolHandle::from("DaytimePool"),
                    vec![pe(2, PolicyInfo::priority(3), true)],
                ),
            ],
        },
        EnrpBody::HandleUpdate {
            takeover_suggested: false,
            action: UpdateAction::ADD_PE,
            pool_handle: ph.clone(),
            pool_element: pe(1, PolicyInfo::weighted_random(4), true),
        },
        EnrpBody::HandleUpdate {
            takeover_suggested: false,
            action: UpdateAction::DEL_PE,
            pool_handle: ph,
            pool_element: pe(1, PolicyInfo::weighted_random(4), true),
        },
        EnrpBody::ListRequest,
        EnrpBody::ListResponse {
            reject: false,
            servers: vec![si(1), si(2)],
        },
        EnrpBody::InitTakeover {
            target: RegistrarId(3),
        },
        EnrpBody::InitTakeoverAck {
            target: RegistrarId(3),
        },
        EnrpBody::TakeoverServer {
            target: RegistrarId(3),
        },
        EnrpBody::Error {
            error: OperationError::new(ErrorCause::new(CauseCode::REJECTED_SECURITY)),
        },
    ];
    bodies
        .into_iter()
        .map(|body| EnrpMessage {
            sender: RegistrarId(1),
            receiver: RegistrarId(2),
            body,
        })
        .collect()
}

fn encoded(
    len: usize,
    f: impl FnOnce(&mut [u8]) -> Result<usize, rserpool::wire::EncodeError>,
) -> Vec<u8> {
    let mut b = vec![0; len];
    let n = f(&mut b).expect("encode");
    b.truncate(n);
    b
}

struct Capture {
    pcap: PcapWriter<Vec<u8>>,
    expect: Vec<Expect>,
    tsn: u32,
    t: u64,
}

impl Capture {
    fn sctp(
        &mut self,
        ports: (u16, u16),
        ppid: u32,
        payload: &[u8],
        protocol: &'static str,
        info: String,
    ) {
        let mut buf = vec![0u8; 65_535];
        let mut b = PacketBuilder::new(
            &mut buf,
            65_535,
            CommonHeader {
                source_port: ports.0,
                destination_port: ports.1,
                verification_tag: 0x0bad_cafe,
            },
        )
        .expect("builder");
        b.push(&Data {
            tsn: Tsn(self.tsn),
            stream_id: 0,
            ssn: Ssn(self.tsn as u16),
            ppid: Ppid(ppid),
            immediate_sack: false,
            unordered: false,
            beginning: true,
            ending: true,
            payload,
        })
        .expect("DATA fits");
        let len = b.finish();
        self.tsn += 1;
        self.t += 1000;
        self.pcap
            .write_sctp(Timestamp::from_micros(self.t), v4(1), v4(2), &buf[..len])
            .expect("pcap");
        self.expect.push(Expect { protocol, info });
    }
}

fn build_capture() -> Capture {
    let mut c = Capture {
        pcap: PcapWriter::new(Vec::new()).expect("pcap"),
        expect: Vec::new(),
        tsn: 1,
        t: 0,
    };
    for m in asap_messages() {
        let b = encoded(m.encoded_len(), |b| m.encode(b));
        let name = asap_name(&m);
        c.sctp((40_000, PORT_ASAP), PPID_ASAP, &b, "ASAP", name);
    }
    for m in enrp_messages() {
        let b = encoded(m.encoded_len(), |b| m.encode(b));
        let name = enrp_name(&m);
        c.sctp((PORT_ENRP, PORT_ENRP), PPID_ENRP, &b, "ENRP", name);
    }
    for m in [
        PingPongMessage::Ping {
            message_no: 1,
            data: b"ping".to_vec(),
        },
        PingPongMessage::Pong {
            message_no: 1,
            reply_no: 1,
            data: b"pong".to_vec(),
        },
    ] {
        let b = encoded(m.encoded_len(), |b| m.encode(b));
        let name = match m {
            PingPongMessage::Ping { .. } => "Ping",
            _ => "Pong",
        };
        c.sctp(
            (40_001, 7),
            PPID_PINGPONG,
            &b,
            "PingPongProtocol",
            name.into(),
        );
    }
    let param = FractalParameter {
        width: 320,
        height: 200,
        max_iterations: 255,
        algorithm: FractalAlgorithm::MANDELBROT,
        c1_real: -2.0,
        c1_imag: 1.0,
        c2_real: 1.0,
        c2_imag: -1.0,
        n: 2.0,
    };
    for m in [
        FractalMessage::Parameter(param),
        FractalMessage::Data {
            start_x: 0,
            start_y: 0,
            points: (0..100).collect(),
        },
        FractalMessage::done(),
    ] {
        let b = encoded(m.encoded_len(), |b| m.encode(b));
        let name = match m {
            FractalMessage::Parameter(_) => "Parameter",
            _ => "Data",
        };
        c.sctp(
            (40_002, 8),
            PPID_FGP,
            &b,
            "FractalGeneratorProtocol",
            name.into(),
        );
    }
    for kind in [
        CalcAppType::Request,
        CalcAppType::Accept,
        CalcAppType::Reject,
        CalcAppType::Abort,
        CalcAppType::Complete,
        CalcAppType::KeepAlive,
        CalcAppType::KeepAliveAck,
    ] {
        let m = CalcAppMessage {
            kind,
            job_id: 1,
            job_size: 1_000_000,
            completed: 5000,
        };
        let b = encoded(m.encoded_len(), |b| m.encode(b));
        c.sctp(
            (40_003, 9),
            PPID_CALCAPP,
            &b,
            "CalcAppProtocol",
            calcapp_name(kind).into(),
        );
    }
    for m in [
        ScriptingMessage::NotReady {
            reason: 1,
            info: b"fully loaded".to_vec(),
        },
        ScriptingMessage::Ready {
            info: b"ready".to_vec(),
        },
        ScriptingMessage::Upload(b"#!/bin/sh\necho hi\n".to_vec()),
        ScriptingMessage::Download(b"hi\n".to_vec()),
        ScriptingMessage::KeepAlive,
        ScriptingMessage::KeepAliveAck { status: 0 },
        ScriptingMessage::Status { status: 0 },
        ScriptingMessage::Environment {
            upload_needed: true,
            hash: [0xab; 20],
        },
    ] {
        let b = encoded(m.encoded_len(), |b| m.encode(b));
        let name = scripting_name(&m);
        c.sctp((40_004, 10), PPID_SCRIPTING, &b, "SSP", name.into());
    }
    let report = ComponentStatusReport {
        final_report: false,
        sender_id: component_group::compound(component_group::POOL_ELEMENT, 0x42),
        sender_timestamp: 1_700_000_000_000_000,
        report_interval: 5_000_000,
        location: b"rack 1".to_vec(),
        status: b"3 sessions".to_vec(),
        workload: ComponentStatusReport::workload_from_fraction(0.25),
        associations: vec![ComponentAssociation {
            receiver_id: component_group::compound(component_group::POOL_USER, 7),
            duration: 1000,
            flags: 0,
            protocol_id: 132,
            ppid: PPID_PINGPONG,
        }],
    };
    let b = encoded(report.encoded_len(), |b| report.encode(b));
    c.t += 1000;
    c.pcap
        .write_sctp_over_udp(
            Timestamp::from_micros(c.t),
            SocketAddr::new(v4(1), 40_005),
            SocketAddr::new(v4(2), CSP_PORT),
            &b,
        )
        .expect("pcap");
    // tshark 4.0 leaves the UDP summary in the Info column; the fields are checked below.
    c.expect.push(Expect {
        protocol: "ComponentStatusProtocol",
        info: format!("{CSP_PORT}"),
    });
    c
}

fn asap_name(m: &AsapMessage) -> String {
    let n = match m {
        AsapMessage::Registration { .. } => "Registration",
        AsapMessage::Deregistration { .. } => "Deregistration",
        AsapMessage::RegistrationResponse { .. } => "Registration Response",
        AsapMessage::DeregistrationResponse { .. } => "Deregistration Response",
        AsapMessage::HandleResolution { .. } => "Handle Resolution",
        AsapMessage::HandleResolutionResponse { .. } => "Handle Resolution Response",
        AsapMessage::EndpointKeepAlive { .. } => "Endpoint Keep-Alive",
        AsapMessage::EndpointKeepAliveAck { .. } => "Endpoint Keep-Alive Acknowledgement",
        AsapMessage::EndpointUnreachable { .. } => "Endpoint Unreachable",
        AsapMessage::ServerAnnounce { .. } => "Server Announce",
        AsapMessage::Cookie { .. } => "Cookie",
        AsapMessage::CookieEcho { .. } => "Cookie Echo",
        AsapMessage::BusinessCard { .. } => "Business Card",
        AsapMessage::Error { .. } => "Error",
        _ => "?",
    };
    format!("ASAP {n}")
}

fn enrp_name(m: &EnrpMessage) -> String {
    let n = match m.body {
        EnrpBody::Presence { .. } => "Presence",
        EnrpBody::HandleTableRequest { .. } => "Handle Table Request",
        EnrpBody::HandleTableResponse { .. } => "Handle Table Response",
        EnrpBody::HandleUpdate { .. } => "Handle Update",
        EnrpBody::ListRequest => "List Request",
        EnrpBody::ListResponse { .. } => "List Response",
        EnrpBody::InitTakeover { .. } => "Init Takeover",
        EnrpBody::InitTakeoverAck { .. } => "Init Takeover Ack",
        EnrpBody::TakeoverServer { .. } => "Takeover Server",
        EnrpBody::Error { .. } => "Error",
        _ => "?",
    };
    format!("ENRP {n}")
}

fn calcapp_name(k: CalcAppType) -> &'static str {
    match k {
        CalcAppType::Request => "CalcApp Request",
        CalcAppType::Accept => "CalcApp Accept",
        CalcAppType::Reject => "CalcApp Reject",
        CalcAppType::Abort => "CalcApp Abort",
        CalcAppType::Complete => "CalcApp Complete",
        CalcAppType::KeepAlive => "CalcApp Keep-Alive",
        CalcAppType::KeepAliveAck => "CalcApp Keep-Alive Ack",
        _ => "?",
    }
}

fn scripting_name(m: &ScriptingMessage) -> &'static str {
    match m {
        ScriptingMessage::NotReady { .. } => "Not Ready",
        ScriptingMessage::Ready { .. } => "Ready",
        ScriptingMessage::Upload(_) => "Upload",
        ScriptingMessage::Download(_) => "Download",
        ScriptingMessage::KeepAlive => "Keep-Alive",
        ScriptingMessage::KeepAliveAck { .. } => "Keep-Alive Ack",
        ScriptingMessage::Status { .. } => "Status",
        ScriptingMessage::Environment { .. } => "Environment",
        _ => "?",
    }
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark must be installed (apt-get install tshark); this test does not skip");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs tshark; run by .ci/rserpool-tshark.sh"]
fn tshark_decodes_every_message_cleanly_with_our_names() {
    let c = build_capture();
    let dir = std::env::temp_dir().join(format!("rserpool-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("rserpool.pcap");
    std::fs::write(&path, c.pcap.into_inner()).expect("write pcap");
    let file = path.to_str().expect("utf-8 path");
    if let Ok(keep) = std::env::var("RSERPOOL_TSHARK_PCAP") {
        let _ = std::fs::copy(&path, keep);
    }

    // Zero malformed or error-level packets (and every SCTP checksum verifies).
    let bad = tshark(&[
        "-r",
        file,
        "-o",
        "sctp.checksum:CRC-32C",
        "-Y",
        "_ws.malformed || _ws.expert.severity >= \"Error\" || sctp.checksum.status == \"Bad\"",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.col.Info",
    ]);
    assert!(
        bad.trim().is_empty(),
        "malformed or error-level packets:\n{bad}"
    );

    // Every frame is decoded as the protocol and message we sent.
    let lines = tshark(&[
        "-r",
        file,
        "-o",
        "sctp.checksum:CRC-32C",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "frame.number",
        "-e",
        "_ws.col.Protocol",
        "-e",
        "_ws.col.Info",
    ]);
    let rows: Vec<&str> = lines.lines().collect();
    assert_eq!(
        rows.len(),
        c.expect.len(),
        "one frame per message:\n{lines}"
    );
    let mut failures = Vec::new();
    for (row, exp) in rows.iter().zip(&c.expect) {
        let cols: Vec<&str> = row.splitn(3, '|').collect();
        let (proto, info) = (
            cols.get(1).copied().unwrap_or(""),
            cols.get(2).copied().unwrap_or(""),
        );
        if proto != exp.protocol || !info.contains(&exp.info) {
            failures.push(format!(
                "frame {}: got {proto:?} {info:?}, want {:?} containing {:?}",
                cols.first().copied().unwrap_or("?"),
                exp.protocol,
                exp.info
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The CSP report's fields as Wireshark reads them.
    let csp = tshark(&[
        "-r",
        file,
        "-Y",
        "componentstatusprotocol",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "componentstatusprotocol.message_version",
        "-e",
        "componentstatusprotocol.componentstatusreport_location",
        "-e",
        "componentstatusprotocol.componentstatusreport_status",
        "-e",
        "componentstatusprotocol.componentstatusreport_associations",
        "-e",
        "componentstatusprotocol.componentassociation_ppid",
    ]);
    assert_eq!(csp.trim(), "0x00000200|rack 1|3 sessions|1|33");

    // Sanity: the capture really covers every message type.
    assert_eq!(
        c.expect.iter().filter(|e| e.protocol == "ASAP").count(),
        18 + 15
    );
    assert_eq!(c.expect.iter().filter(|e| e.protocol == "ENRP").count(), 11);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = (PolicyType::ROUND_ROBIN, TransportProtocol::Sctp);
}
