//! Payload signatures: one function per protocol family, each reading the current
//! packet (all of it), the flow's ports and the other direction's stored head.
//!
//! A signature answers [`Verdict::Strong`] when the bytes alone settle the question
//! (magic numbers, self-consistent length fields, well-formed first lines) and
//! [`Verdict::Weak`] when the shape fits but could be chance; a weak answer is
//! confirmed by a second weak answer for the same protocol or by the other direction.
//! Message layouts come from the protocols' specifications (RFCs and vendor docs);
//! every access is bounds-checked, nothing panics on any input.

use godb::l7;

const TCP: u8 = 6;
const UDP: u8 = 17;

/// The outcome of matching one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No signature matched.
    None,
    /// The shape fits protocol `id`, but needs confirmation; taken as the answer if
    /// nothing better turns up once both directions have been seen.
    Weak(u16),
    /// Protocol `id` is possible, but the shape is common: counts only when a second
    /// packet confirms it (the same protocol matched again).
    Candidate(u16),
    /// Protocol `id`, settled.
    Strong(u16),
}

use Verdict::{Candidate, Strong, Weak};

/// What a signature may look at.
pub(crate) struct Ctx<'a> {
    pub proto: u8,
    pub client_port: u16,
    pub server_port: u16,
    /// The whole transport payload of the current packet.
    pub payload: &'a [u8],
    /// The stored head of this direction's first payload, if this is not it.
    pub own_first: Option<&'a [u8]>,
    /// The stored head of the other direction's first payload, if seen.
    pub other: Option<&'a [u8]>,
}

impl Ctx<'_> {
    fn port(&self, p: u16) -> bool {
        self.client_port == p || self.server_port == p
    }
    fn port_in(&self, ps: &[u16]) -> bool {
        ps.iter().any(|&p| self.port(p))
    }
}

fn be16(p: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]))
}

fn be32(p: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *p.get(i)?,
        *p.get(i + 1)?,
        *p.get(i + 2)?,
        *p.get(i + 3)?,
    ]))
}

fn le32(p: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *p.get(i)?,
        *p.get(i + 1)?,
        *p.get(i + 2)?,
        *p.get(i + 3)?,
    ]))
}

fn starts_ci(p: &[u8], s: &[u8]) -> bool {
    p.len() >= s.len() && p[..s.len()].eq_ignore_ascii_case(s)
}

/// The first line of a text payload (up to CR or LF), or the whole prefix scanned if
/// no line end occurs in the first 512 bytes.
fn first_line(p: &[u8]) -> &[u8] {
    let p = &p[..p.len().min(256)];
    let end = p.iter().position(|&b| b == b'\r' || b == b'\n');
    &p[..end.unwrap_or(p.len())]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Matches one packet against all signatures, most specific first.
pub(crate) fn classify(c: &Ctx<'_>) -> Verdict {
    let p = c.payload;
    if p.is_empty() {
        return Verdict::None;
    }
    let checks: &[fn(&Ctx<'_>) -> Verdict] = match c.proto {
        TCP => &[tcp_binary, text, tcp_framed],
        UDP => &[udp_binary, text],
        _ => &[],
    };
    for check in checks {
        let v = check(c);
        if v != Verdict::None {
            return v;
        }
    }
    Verdict::None
}

// ---------------------------------------------------------------------------------
// Text protocols (TCP and UDP): HTTP family, mail, FTP, IRC, XMPP, Redis, memcached.

const HTTP_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PROPFIND ",
    b"MKCOL ",
    b"SUBSCRIBE ",
    b"NOTIFY ",
    b"M-SEARCH ",
];

const RTSP_METHODS: &[&[u8]] = &[
    b"DESCRIBE ",
    b"SETUP ",
    b"PLAY ",
    b"PAUSE ",
    b"TEARDOWN ",
    b"ANNOUNCE ",
    b"RECORD ",
    b"GET_PARAMETER ",
    b"SET_PARAMETER ",
    b"REDIRECT ",
];

const SIP_METHODS: &[&[u8]] = &[
    b"INVITE ",
    b"REGISTER ",
    b"ACK ",
    b"BYE ",
    b"CANCEL ",
    b"OPTIONS ",
    b"SUBSCRIBE ",
    b"NOTIFY ",
    b"MESSAGE ",
    b"INFO ",
    b"PRACK ",
    b"UPDATE ",
    b"REFER ",
    b"PUBLISH ",
];

fn text(c: &Ctx<'_>) -> Verdict {
    let p = c.payload;
    // Every text signature starts with a letter, a digit or one of a few marks; binary
    // payloads leave here without a scan for the line end.
    let texty = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'<' | b'*' | b'+' | b':' | b'-');
    let second_ok = match p.get(1) {
        Some(b) => b.is_ascii_graphic() || *b == b' ',
        None => true,
    };
    if !p.first().is_some_and(|&b| texty(b)) || !second_ok {
        return Verdict::None;
    }
    let line = first_line(p);
    let udp = c.proto == UDP;

    // Status lines.
    if line.starts_with(b"HTTP/1.") || line.starts_with(b"HTTP/2") {
        return Strong(if udp { l7::SSDP } else { l7::HTTP });
    }
    if line.starts_with(b"RTSP/1.") {
        return Strong(l7::RTSP);
    }
    if line.starts_with(b"SIP/2.0 ") {
        return Strong(l7::SIP);
    }
    // Request lines: METHOD SP target SP VERSION.
    if line.ends_with(b" SIP/2.0") && SIP_METHODS.iter().any(|m| line.starts_with(m)) {
        return Strong(l7::SIP);
    }
    if contains(line, b" RTSP/1.")
        && (RTSP_METHODS.iter().any(|m| line.starts_with(m)) || line.starts_with(b"OPTIONS "))
    {
        return Strong(l7::RTSP);
    }
    if HTTP_METHODS.iter().any(|m| line.starts_with(m)) {
        if udp {
            let star = line.starts_with(b"M-SEARCH * ") || line.starts_with(b"NOTIFY * ");
            if star && (line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0")) {
                return Strong(l7::SSDP);
            }
        } else if contains(line, b" HTTP/1.") || line.len() == p.len().min(256) {
            // A full request line, or one cut by the end of the packet.
            return Strong(l7::HTTP);
        }
    }
    if !udp && RTSP_METHODS.iter().any(|m| line.starts_with(m)) && contains(line, b"rtsp://") {
        return Strong(l7::RTSP);
    }
    if !udp && line.starts_with(b"OPTIONS rtsp://") {
        return Strong(l7::RTSP);
    }
    if udp {
        return text_udp(c);
    }
    text_tcp(c, line)
}

fn text_udp(c: &Ctx<'_>) -> Verdict {
    let p = c.payload;
    if syslog_pri(p) {
        return if c.port(514) {
            Strong(l7::SYSLOG)
        } else {
            Weak(l7::SYSLOG)
        };
    }
    Verdict::None
}

/// Syslog: a message starting with `<PRI>`, PRI at most 191 (RFC 3164 / 5424); over
/// TCP possibly after an octet count (RFC 6587).
fn syslog_pri(p: &[u8]) -> bool {
    let count = p.iter().take_while(|b| b.is_ascii_digit()).count();
    let p = if count > 0 && count <= 5 && p.get(count) == Some(&b' ') {
        &p[count + 1..]
    } else {
        p
    };
    let Some(rest) = p.strip_prefix(b"<") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) || rest.get(digits) != Some(&b'>') {
        return false;
    }
    let pri: u32 = rest[..digits]
        .iter()
        .fold(0, |a, &d| a * 10 + u32::from(d - b'0'));
    pri <= 191
}

fn memcached_text(p: &[u8]) -> bool {
    const CMDS: &[&[u8]] = &[
        b"get ",
        b"gets ",
        b"set ",
        b"add ",
        b"replace ",
        b"append ",
        b"prepend ",
        b"cas ",
        b"delete ",
        b"incr ",
        b"decr ",
        b"touch ",
        b"stats",
        b"version",
        b"VALUE ",
        b"STORED\r\n",
        b"END\r\n",
        b"flush_all",
    ];
    CMDS.iter().any(|m| p.starts_with(m)) && first_line(p).len() < p.len()
}

fn text_tcp(c: &Ctx<'_>, line: &[u8]) -> Verdict {
    let p = c.payload;
    if p.starts_with(b"SSH-") && (p.starts_with(b"SSH-2.") || p.starts_with(b"SSH-1.")) {
        return Strong(l7::SSH);
    }
    if p.starts_with(b"RFB 00") {
        return Strong(l7::VNC);
    }
    // Server greetings.
    if line == b"+OK" || line == b"+PONG" {
        // A bare Redis status reply (POP3 greets with text after "+OK").
        return if c.port(6379) {
            Strong(l7::REDIS)
        } else {
            Weak(l7::REDIS)
        };
    }
    if line.starts_with(b"+OK ") {
        return Strong(l7::POP3);
    }
    if line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH") {
        return Strong(l7::IMAP);
    }
    if line.starts_with(b"220") && matches!(line.get(3), Some(b' ') | Some(b'-')) {
        if contains_ci(line, b"SMTP") || contains_ci(line, b"mail") {
            return Strong(l7::SMTP);
        }
        if contains_ci(line, b"FTP") {
            return Strong(l7::FTP);
        }
        if c.port_in(&[21, 2121]) {
            return Strong(l7::FTP);
        }
        if c.port_in(&[25, 587, 2525]) {
            return Strong(l7::SMTP);
        }
        return Verdict::None;
    }
    // Client commands.
    if starts_ci(p, b"EHLO ") || starts_ci(p, b"HELO ") {
        return Strong(l7::SMTP);
    }
    let after_220 = c.other.is_some_and(|o| o.starts_with(b"220"));
    if after_220 {
        const FTP_CMDS: &[&[u8]] = &[
            b"USER ", b"AUTH ", b"SYST", b"FEAT", b"OPTS ", b"PASS ", b"PORT ", b"PASV",
        ];
        if FTP_CMDS.iter().any(|m| starts_ci(p, m)) {
            return Strong(l7::FTP);
        }
    }
    if c.other.is_some_and(|o| o.starts_with(b"+OK"))
        && (starts_ci(p, b"USER ") || starts_ci(p, b"CAPA"))
    {
        return Strong(l7::POP3);
    }
    // IMAP client: "<tag> CAPABILITY|LOGIN|STARTTLS|AUTHENTICATE".
    if let Some(sp) = line.iter().position(|&b| b == b' ') {
        let cmd = &line[sp + 1..];
        if sp > 0
            && sp <= 10
            && line[..sp]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'.')
            && (starts_ci(cmd, b"CAPABILITY")
                || starts_ci(cmd, b"LOGIN ")
                || starts_ci(cmd, b"AUTHENTICATE ")
                || starts_ci(cmd, b"STARTTLS"))
            && c.port(143)
        {
            return Strong(l7::IMAP);
        }
    }
    // Syslog over TCP (514 is also rsh's port: a `<PRI>` message settles it).
    if syslog_pri(p) {
        return if c.port_in(&[514, 601, 6514]) {
            Strong(l7::SYSLOG)
        } else {
            Weak(l7::SYSLOG)
        };
    }
    // Gnutella handshakes (0.4 and 0.6) and push requests.
    if p.starts_with(b"GNUTELLA CONNECT/")
        || p.starts_with(b"GNUTELLA/0.")
        || p.starts_with(b"GNUTELLA OK")
        || (p.starts_with(b"GIV ") && contains(line, b":"))
    {
        return Strong(l7::GNUTELLA);
    }
    // IRC.
    if p.starts_with(b"NICK ")
        || p.starts_with(b"CAP LS")
        || (p.starts_with(b"USER ") && contains(line, b" :"))
    {
        return Strong(l7::IRC);
    }
    if p.starts_with(b":") && (contains(line, b" NOTICE ") || contains(line, b" 001 ")) {
        return Strong(l7::IRC);
    }
    // XMPP.
    if p.starts_with(b"<stream:stream")
        || (p.starts_with(b"<?xml") && contains(&p[..p.len().min(256)], b"<stream:stream"))
    {
        return Strong(l7::XMPP);
    }
    if p.starts_with(b"<?xml") && c.port_in(&[5222, 5223, 5269]) {
        return Strong(l7::XMPP);
    }
    // XMPP stanzas seen from the middle of a stream.
    const STANZAS: &[&[u8]] = &[
        b"<iq ",
        b"<message ",
        b"<presence",
        b"<stream:features",
        b"<starttls ",
        b"<proceed ",
        b"<auth ",
        b"<success ",
        b"<challenge ",
    ];
    if STANZAS.iter().any(|t| p.starts_with(t)) && p.ends_with(b">") {
        return if c.port_in(&[5222, 5223, 5269]) {
            Strong(l7::XMPP)
        } else {
            Weak(l7::XMPP)
        };
    }
    // Redis (RESP arrays of bulk strings).
    if p.first() == Some(&b'*') {
        let digits = p[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if (1..=4).contains(&digits) && p.get(1 + digits..4 + digits) == Some(b"\r\n$".as_slice()) {
            return Strong(l7::REDIS);
        }
    }
    // Memcached text protocol.
    if memcached_text(p) {
        return if c.port(11211) {
            Strong(l7::MEMCACHED)
        } else {
            Weak(l7::MEMCACHED)
        };
    }
    // Zabbix.
    if p.starts_with(b"ZBXD") && matches!(p.get(4), Some(1) | Some(3)) {
        return Strong(l7::ZABBIX);
    }
    // AMQP protocol header.
    if p.starts_with(b"AMQP") && p.len() == 8 {
        return Strong(l7::AMQP);
    }
    Verdict::None
}

// ---------------------------------------------------------------------------------
// Binary TCP protocols.

fn tls_record(p: &[u8]) -> Option<Verdict> {
    let (&ct, &major, &minor) = (p.first()?, p.get(1)?, p.get(2)?);
    if !(0x14..=0x18).contains(&ct) || major != 3 || minor > 4 {
        return None;
    }
    let len = be16(p, 3)?;
    if len == 0 || len > 18_432 {
        return None;
    }
    if ct == 0x16 {
        let hs = *p.get(5)?;
        // ClientHello, ServerHello, certificate, server key exchange, ...
        if matches!(hs, 1 | 2) {
            // The handshake length is 4 less than the record length when whole.
            let hlen = u32::from(*p.get(6)?) << 16 | u32::from(be16(p, 7)?);
            if hlen + 4 <= u32::from(len) || hlen > u32::from(len) {
                return Some(Strong(l7::TLS));
            }
        }
        return Some(Weak(l7::TLS));
    }
    Some(Weak(l7::TLS))
}

fn tcp_binary(c: &Ctx<'_>) -> Verdict {
    let p = c.payload;
    // AMQP 0-9-1 frames (method, header, body, heartbeat) end in 0xCE.
    if p.len() >= 8 && (1..=8).contains(&p[0]) {
        let size = be32(p, 3).map_or(usize::MAX, |n| n as usize);
        if size < 1 << 24 && p.get(7 + size) == Some(&0xce) {
            return if c.port(5672) {
                Strong(l7::AMQP)
            } else {
                Weak(l7::AMQP)
            };
        }
    }
    // BitTorrent handshake.
    if p.first() == Some(&19) && p.get(1..20) == Some(b"BitTorrent protocol".as_slice()) {
        return Strong(l7::BITTORRENT);
    }
    if let Some(v) = tls_record(p) {
        return v;
    }
    // SSLv2-compatible ClientHello: 2-byte header with the top bit, type 1, version 3.x.
    if p.len() > 5 && p[0] & 0x80 != 0 && p[2] == 1 && p[3] == 3 && p[4] <= 3 {
        let len = usize::from(be16(p, 0).unwrap_or(0) & 0x7fff);
        if len + 2 == p.len() {
            return Strong(l7::TLS);
        }
    }
    // TPKT (RFC 1006) + X.224 connection request/confirm: RDP (not port 102, S7).
    if p.len() >= 11 && p[0] == 3 && p[1] == 0 && usize::from(be16(p, 2).unwrap_or(0)) == p.len() {
        let x224 = p[5] & 0xf0;
        if (x224 == 0xe0 || x224 == 0xd0) && usize::from(p[4]) + 5 <= p.len() && !c.port(102) {
            return Strong(l7::RDP);
        }
        if c.port(3389) {
            return Strong(l7::RDP);
        }
    }
    // SMB over direct TCP or NetBIOS session.
    if p.len() >= 8 && p[0] == 0 && matches!(&p[5..8], b"SMB") && matches!(p[4], 0xfd..=0xff) {
        return Strong(l7::SMB);
    }
    // NetBIOS session request / response (port 139).
    if p.len() >= 4 && matches!(p[0], 0x81 | 0x82 | 0x83 | 0x85) && p[1] & 0xfe == 0 && c.port(139)
    {
        let len = usize::from(be16(p, 2).unwrap_or(0));
        if len + 4 == p.len() {
            return Strong(l7::NETBIOS);
        }
    }
    // MySQL server greeting: 3-byte length, sequence 0, protocol 10, "x.y.z".
    if p.len() > 8 && p[3] == 0 && p[4] == 10 && p[5].is_ascii_digit() && p[6] == b'.' {
        let len = usize::from(p[0]) | usize::from(p[1]) << 8 | usize::from(p[2]) << 16;
        if len + 4 == p.len() || len + 4 < p.len() {
            return Strong(l7::MYSQL);
        }
    }
    // PostgreSQL startup (protocol 3.0) and SSL / GSS encryption requests.
    if let (Some(len), Some(code)) = (be32(p, 0), be32(p, 4)) {
        if len as usize == p.len() {
            if code == 0x0003_0000 && len > 8 {
                return Strong(l7::POSTGRESQL);
            }
            if len == 8 && (code == 0x04d2_162f || code == 0x04d2_1630) {
                return Strong(l7::POSTGRESQL);
            }
        }
    }
    // MongoDB wire header: length, request id, response to, opcode (little-endian).
    if let (Some(len), Some(op)) = (le32(p, 0), le32(p, 12)) {
        if matches!(op, 1 | 2001..=2007 | 2010..=2013) && len as usize == p.len() && len >= 21 {
            return if c.port(27017) {
                Strong(l7::MONGODB)
            } else {
                Weak(l7::MONGODB)
            };
        }
    }
    // MQTT CONNECT: fixed header 0x10, remaining length, protocol name.
    if p.first() == Some(&0x10) {
        let mut i = 1;
        while i < 5 && p.get(i).is_some_and(|b| b & 0x80 != 0) {
            i += 1;
        }
        let rest = p.get(i + 1..).unwrap_or(&[]);
        if rest.starts_with(b"\x00\x04MQTT") || rest.starts_with(b"\x00\x06MQIsdp") {
            return Strong(l7::MQTT);
        }
    }
    // MQTT keep-alive: PINGREQ (c0 00) answered by PINGRESP (d0 00).
    if p == [0xc0, 0] || p == [0xd0, 0] {
        let answer: &[u8] = if p[0] == 0xc0 { &[0xd0, 0] } else { &[0xc0, 0] };
        return if c.other == Some(answer) || c.port_in(&[1883, 8883]) {
            Strong(l7::MQTT)
        } else {
            Candidate(l7::MQTT)
        };
    }
    // BGP: 16-byte all-ones marker, length, type 1..5.
    if p.len() >= 19 && p[..16].iter().all(|&b| b == 0xff) && (1..=5).contains(&p[18]) {
        return Strong(l7::BGP);
    }
    // DCE/RPC connection-oriented: version 5.0, PDU type, data representation.
    if p.len() >= 16 && p[0] == 5 && p[1] <= 1 && p[2] <= 20 && p[4] & 0xee == 0x00 {
        let frag = usize::from(u16::from_le_bytes([p[8], p[9]]));
        if frag == p.len() || (frag > p.len() && matches!(p[2], 0 | 2)) {
            return Strong(l7::DCERPC);
        }
    }
    // DNP3 link layer: start bytes 0x05 0x64.
    if p.len() >= 10 && p[0] == 0x05 && p[1] == 0x64 && p[2] >= 5 {
        return Strong(l7::DNP3);
    }
    // IEC 60870-5-104 APCI: start 0x68, APDU length.
    if p.len() >= 6 && p[0] == 0x68 && usize::from(p[1]) + 2 <= p.len() && p[1] >= 4 && c.port(2404)
    {
        return Strong(l7::IEC104);
    }
    // Modbus/TCP MBAP header: protocol id 0, length, unit, function code.
    if p.len() >= 8 && be16(p, 2) == Some(0) {
        let len = usize::from(be16(p, 4).unwrap_or(0));
        let func = p[7] & 0x7f;
        if len + 6 == p.len() && (1..=0x2b).contains(&func) && len >= 2 {
            return if c.port(502) {
                Strong(l7::MODBUS)
            } else {
                Weak(l7::MODBUS)
            };
        }
    }
    // MS SQL TDS: pre-login (0x12) / login7 (0x10) / response (0x04), length.
    if p.len() >= 8
        && matches!(p[0], 0x01..=0x04 | 0x06 | 0x07 | 0x0e | 0x10..=0x12)
        && p[1] & !0x1b == 0
        && be16(p, 2).map(usize::from) == Some(p.len())
        && p[6] <= 1
        && (p[0] == 0x12 || c.port(1433))
    {
        return Strong(l7::TDS);
    }
    // Telnet option negotiation: IAC WILL/WONT/DO/DONT opt ...
    if p.len() >= 3 && p[0] == 0xff && (0xfb..=0xfe).contains(&p[1]) {
        let all_iac = p.chunks(3).take(4).all(|ch| {
            ch.len() == 3 && ch[0] == 0xff && (0xfa..=0xfe).contains(&ch[1])
                || ch.first() == Some(&0xff) && ch.get(1) == Some(&0xf0)
        });
        if all_iac || c.port(23) {
            return Strong(l7::TELNET);
        }
        return Weak(l7::TELNET);
    }
    // SOCKS 5 greeting: 05 n methods..., reply 05 method.
    if p.len() >= 3
        && p[0] == 5
        && usize::from(p[1]) + 2 == p.len()
        && p[1] >= 1
        && p[2..].iter().all(|&m| m <= 9 || m == 0x80 || m == 0xff)
    {
        return if c.port(1080) {
            Strong(l7::SOCKS)
        } else {
            Weak(l7::SOCKS)
        };
    }
    if p.len() == 2
        && p[0] == 5
        && matches!(p[1], 0 | 1 | 2 | 0xff)
        && c.other.is_some_and(|o| o.first() == Some(&5))
    {
        return Strong(l7::SOCKS);
    }
    // SOCKS 4/4a request: 04 cmd port ip userid 00.
    if p.len() >= 9
        && p[0] == 4
        && matches!(p[1], 1 | 2)
        && p.last() == Some(&0)
        && p[8..p.len() - 1]
            .iter()
            .all(|&b| b == 0 || b.is_ascii_graphic())
    {
        return if c.port(1080) {
            Strong(l7::SOCKS)
        } else {
            Weak(l7::SOCKS)
        };
    }
    // RTSP-interleaved binary data does not identify itself; handled by the text pass.
    Verdict::None
}

/// TCP protocols framed with a 2-byte length: DNS, OpenVPN, Kerberos (4-byte), and
/// ONC RPC with its 4-byte record mark.
fn tcp_framed(c: &Ctx<'_>) -> Verdict {
    let p = c.payload;
    if p.first().is_some_and(|b| b & 0x80 != 0) && nfs_rpc_call(p.get(4..).unwrap_or(&[])) {
        return Strong(l7::NFS);
    }
    let Some(len) = be16(p, 0).map(usize::from) else {
        return Verdict::None;
    };
    // DNS over TCP.
    if len >= 12 && (len + 2 == p.len() || (len + 2 > p.len() && p.len() >= 14)) {
        if let Some(v) = dns_like(&p[2..], c, true) {
            return v;
        }
    }
    // OpenVPN over TCP: length, opcode/key id.
    if len + 2 == p.len() && len >= 14 {
        if let Some(v) = openvpn(&p[2..], c) {
            return v;
        }
    }
    // Kerberos over TCP: 4-byte length, then an application-tagged message.
    if let Some(klen) = be32(p, 0) {
        if klen as usize + 4 >= p.len()
            && klen as usize + 4 <= p.len() + 65_536
            && kerberos(&p[4..])
        {
            return Strong(l7::KERBEROS);
        }
    }
    // LDAP over TCP (BER message).
    if let Some(v) = ber_message(p, c) {
        return v;
    }
    // STUN over TCP (RFC 5389 framing, same header).
    if let Some(v) = stun(p, c) {
        return v;
    }
    Verdict::None
}

// ---------------------------------------------------------------------------------
// Shared decoders.

/// A DNS-format message (DNS, mDNS, LLMNR, NetBIOS name service): `None` if the header
/// or the first question does not parse.
fn dns_like(p: &[u8], c: &Ctx<'_>, tcp: bool) -> Option<Verdict> {
    if p.len() < 12 {
        return None;
    }
    let flags = be16(p, 2)?;
    let qr = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    let rcode = flags & 0xf;
    let qd = be16(p, 4)?;
    let an = be16(p, 6)?;
    let ns = be16(p, 8)?;
    let ar = be16(p, 10)?;
    if !matches!(opcode, 0 | 1 | 2 | 4 | 5) || rcode > 10 {
        return None;
    }
    if qd > 4 || an > 200 || ns > 64 || ar > 64 {
        return None;
    }
    // Queries ask one question, except updates, inverse queries and mDNS/NetBIOS
    // announcements.
    if !qr && (qd == 0 && !(opcode == 5 || opcode == 1 || c.port(5353) || c.port(137))) {
        return None;
    }
    if qd == 0 && an == 0 && ns == 0 && ar == 0 {
        // An empty answer (an error) only counts as the reply to a DNS query seen in
        // the other direction with the same id.
        let same_id = c
            .other
            .is_some_and(|o| o.get(..2) == p.get(..2) && o.len() >= 12);
        return (qr && rcode != 0 && same_id).then_some(Strong(l7::DNS));
    }
    // The first name (question, or answer when there is no question) must parse.
    let nb_port = c.port(137);
    let family_port = c.port_in(&[53, 5353, 5355, 137]);
    // On the NetBIOS name service port the first label is NetBIOS-encoded; a plain DNS
    // name there is DNS (or DNSCrypt).
    let nb_end = if nb_port { dns_name(p, 12, true) } else { None };
    let Some(end) = nb_end.or_else(|| dns_name(p, 12, false)) else {
        // A sane header on a DNS-family port but a name that does not parse
        // (malformed, or compressed oddly): weak, a second packet must agree.
        if family_port && !tcp && qd <= 1 {
            return Some(Weak(if c.port(5353) {
                l7::MDNS
            } else if c.port(5355) {
                l7::LLMNR
            } else if nb_port {
                l7::NETBIOS
            } else {
                l7::DNS
            }));
        }
        return None;
    };
    if qd > 0 && be16(p, end) == Some(16) && dnscrypt_name(p, c) {
        return Some(Strong(l7::DNSCRYPT));
    }
    let id = if tcp {
        l7::DNS
    } else if c.port(5353) {
        l7::MDNS
    } else if c.port(5355) {
        l7::LLMNR
    } else if nb_port {
        l7::NETBIOS
    } else {
        l7::DNS
    };
    if tcp && !c.port(53) && !c.port(5353) {
        return Some(Weak(id));
    }
    Some(Strong(id))
}

/// DNSCrypt certificate query: `2.dnscrypt-cert.<provider>`, or any `2.<provider>`
/// TXT query away from port 53 (resolvers on 443 and 5353 use their own names).
fn dnscrypt_name(p: &[u8], c: &Ctx<'_>) -> bool {
    if p.get(12..14) != Some(b"\x012".as_slice()) {
        return false;
    }
    let second = p.get(15..p.len().min(15 + 14)).unwrap_or(&[]);
    starts_ci(second, b"dnscrypt-cert") || !c.port(53)
}

/// The offset after a DNS name starting at `i` (labels ending in a zero byte or a
/// compression pointer) if it parses and is followed by type and class.
fn dns_name(p: &[u8], mut i: usize, netbios: bool) -> Option<usize> {
    let mut labels = 0;
    loop {
        let &len = p.get(i)?;
        if len == 0 {
            i += 1;
            break;
        }
        if len & 0xc0 == 0xc0 {
            i += 2;
            break;
        }
        if len > 63 {
            return None;
        }
        let label = p.get(i + 1..i + 1 + usize::from(len))?;
        let ok = if netbios && labels == 0 {
            label
                .iter()
                .all(|&b| (b'A'..=b'P').contains(&b) || b == b'*')
        } else {
            label
                .iter()
                .all(|&b| b.is_ascii_graphic() || b == b' ' || b >= 0x80)
        };
        if !ok {
            return None;
        }
        labels += 1;
        i += 1 + usize::from(len);
        if labels > 40 {
            return None;
        }
    }
    (i + 4 <= p.len()).then_some(i)
}

fn kerberos(p: &[u8]) -> bool {
    // AS-REQ 0x6a, AS-REP 0x6b, TGS-REQ 0x6c, TGS-REP 0x6d, KRB-ERROR 0x7e.
    if p.len() < 12 || !matches!(p[0], 0x6a..=0x6d | 0x7e) {
        return false;
    }
    let skip = match p[1] {
        0x81 => 3,
        0x82 => 4,
        0x83 => 5,
        l if l < 0x80 => 2,
        _ => return false,
    };
    if p.get(skip) != Some(&0x30) {
        return false;
    }
    // pvno [0] or [1] INTEGER 5 within the next few bytes.
    let w = &p[skip..p.len().min(skip + 12)];
    contains(w, &[0x02, 0x01, 0x05])
}

/// LDAP / CLDAP or SNMP, both BER `SEQUENCE { INTEGER, ... }`.
fn ber_message(p: &[u8], c: &Ctx<'_>) -> Option<Verdict> {
    if p.first() != Some(&0x30) {
        return None;
    }
    let (len, hdr) = ber_len(p, 1)?;
    if len + hdr > p.len() + 65_536 || len < 5 {
        return None;
    }
    if p.get(hdr) != Some(&0x02) {
        return None;
    }
    let ilen = usize::from(*p.get(hdr + 1)?);
    if !(1..=4).contains(&ilen) {
        return None;
    }
    let next = hdr + 2 + ilen;
    let tag = *p.get(next)?;
    if ilen == 1 && c.proto == UDP {
        let ver = *p.get(hdr + 2)?;
        if (tag == 0x04 && ver <= 1) || (tag == 0x30 && ver == 3) {
            return Some(Strong(l7::SNMP));
        }
    }
    // LDAP protocol ops: application tags 0..25 (constructed 0x60.., primitive 0x42/0x4a/0x50).
    let op = tag & 0x1f;
    if (tag & 0xe0 == 0x60 || matches!(tag, 0x42 | 0x4a | 0x50)) && op <= 25 {
        let ldap_port = c.port_in(&[389, 3268]);
        return Some(if ldap_port || c.proto == TCP {
            Strong(l7::LDAP)
        } else {
            Weak(l7::LDAP)
        });
    }
    None
}

/// A BER length at `i`: (length, offset of the content).
fn ber_len(p: &[u8], i: usize) -> Option<(usize, usize)> {
    let b = *p.get(i)?;
    if b < 0x80 {
        return Some((usize::from(b), i + 1));
    }
    let n = usize::from(b & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for k in 0..n {
        len = len << 8 | usize::from(*p.get(i + 1 + k)?);
    }
    Some((len, i + 1 + n))
}

fn stun(p: &[u8], c: &Ctx<'_>) -> Option<Verdict> {
    if p.len() < 20 || p[0] & 0xc0 != 0 {
        return None;
    }
    let len = usize::from(be16(p, 2)?);
    if len % 4 != 0 || len + 20 > p.len() {
        return None;
    }
    let class_method = be16(p, 0)?;
    let method = class_method & 0x3eef;
    // STUN is never final at once (see `STUN_WINDOW`): a weak answer.
    if be32(p, 4) == Some(0x2112_a442) {
        if method <= 0x00c || len + 20 == p.len() {
            return Some(Weak(l7::STUN));
        }
        return None;
    }
    // RFC 3489 STUN: binding (0x0001/0x0101/0x0111), shared secret (0x0002/0x0102/0x0112).
    if matches!(
        class_method,
        0x0001 | 0x0101 | 0x0111 | 0x0002 | 0x0102 | 0x0112
    ) && len + 20 == p.len()
    {
        if c.port_in(&[3478, 3479, 19302]) || (len == 0 && c.proto == UDP) {
            return Some(Weak(l7::STUN));
        }
        return Some(Candidate(l7::STUN));
    }
    None
}

fn openvpn(p: &[u8], c: &Ctx<'_>) -> Option<Verdict> {
    let op = *p.first()? >> 3;
    let key = *p.first()? & 7;
    if key != 0 {
        return None;
    }
    // A control or ack packet carrying the session id of this direction's hard reset.
    if matches!(op, 4 | 5) && p.len() >= 9 {
        let skip = if c.proto == TCP { 2 } else { 0 };
        let first = c.own_first.and_then(|o| o.get(skip..));
        if let Some(first) = first {
            if first.len() >= 9
                && matches!(first[0] >> 3, 1 | 7 | 10)
                && first[0] & 7 == 0
                && first[1..9] == p[1..9]
            {
                return Some(Strong(l7::OPENVPN));
            }
        }
        return None;
    }
    match op {
        // Client hard resets (v1, v2, v3).
        1 | 7 | 10 if p.len() >= 14 => {
            // A server never answers with a client reset (ONC RPC replies, which
            // echo the call's first bytes, would otherwise confirm themselves).
            let other_first = c
                .other
                .and_then(|o| if c.proto == TCP { o.get(2) } else { o.first() });
            if other_first.is_some_and(|b| matches!(b >> 3, 1 | 7 | 10)) {
                return None;
            }
            Some(if c.port(1194) {
                Weak(l7::OPENVPN)
            } else {
                Candidate(l7::OPENVPN)
            })
        }
        // Server hard reset answering a client hard reset.
        2 | 8 if p.len() >= 14 => {
            let other_reset = c.other.and_then(|o| {
                // On TCP the other head starts with the 2-byte length.
                let b = if c.proto == TCP { o.get(2) } else { o.first() };
                b.map(|b| matches!(b >> 3, 1 | 7 | 10))
            });
            (other_reset == Some(true)).then_some(Strong(l7::OPENVPN))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// Binary UDP protocols.

fn udp_binary(c: &Ctx<'_>) -> Verdict {
    let p = c.payload;
    // Memcached over UDP: 8-byte frame header (request id, sequence, count, reserved).
    if p.len() > 8
        && be16(p, 6) == Some(0)
        && be16(p, 4).is_some_and(|n| n >= 1)
        && memcached_text(&p[8..])
    {
        return Strong(l7::MEMCACHED);
    }
    // NFS / ONC RPC.
    if nfs_rpc_call(p) {
        return Strong(l7::NFS);
    }
    // Port-anchored protocols first (payload still checked).
    if c.port_in(&[67, 68])
        && p.len() >= 240
        && matches!(p[0], 1 | 2)
        && p[1] == 1
        && p[2] == 6
        && be32(p, 236) == Some(0x6382_5363)
    {
        return Strong(l7::DHCP);
    }
    if c.port_in(&[546, 547]) && dhcpv6(p) {
        return Strong(l7::DHCPV6);
    }
    if c.port(123) && ntp(p) {
        return Strong(l7::NTP);
    }
    if c.port(138) && p.len() >= 14 && (0x10..=0x16).contains(&p[0]) {
        return Strong(l7::NETBIOS);
    }
    if c.port_in(&[500, 4500]) {
        // IKE, possibly after the 4-byte non-ESP marker on 4500.
        let ike = if p.len() >= 4 && p[..4] == [0, 0, 0, 0] {
            &p[4..]
        } else {
            p
        };
        if ike.len() >= 28
            && matches!(ike[17], 0x10 | 0x20)
            && be32(ike, 24).map(|l| l as usize) == Some(ike.len())
        {
            return Strong(l7::IKE);
        }
        if p == [0xff] {
            return Strong(l7::IKE); // NAT-T keepalive
        }
    }
    if c.port_in(&[1812, 1813, 1645, 1646, 3799])
        && p.len() >= 20
        && matches!(p[0], 1..=5 | 11..=13 | 40..=45)
        && be16(p, 2).map(usize::from) == Some(p.len())
        && radius_attributes(&p[20..])
        && !slp_v1(p)
    {
        return Strong(l7::RADIUS);
    }
    if c.port(69) && p.len() >= 4 && p[0] == 0 && (1..=6).contains(&p[1]) {
        if matches!(p[1], 1 | 2) {
            let ok = p[2..].contains(&0)
                && (contains_ci(p, b"octet")
                    || contains_ci(p, b"netascii")
                    || contains_ci(p, b"mail"));
            if ok {
                return Strong(l7::TFTP);
            }
        } else {
            return Weak(l7::TFTP);
        }
    }
    // TFTP transfers move to ephemeral ports: an option acknowledgement, or a data
    // block answered by an acknowledgement of the same block.
    if p.len() >= 4 && p[0] == 0 {
        if p[1] == 6 && p.last() == Some(&0) {
            let opt = &p[2..];
            if starts_ci(opt, b"blksize\0")
                || starts_ci(opt, b"tsize\0")
                || starts_ci(opt, b"timeout\0")
            {
                return Strong(l7::TFTP);
            }
        }
        let block_pair = |a: &[u8], b: &[u8]| {
            a.len() >= 4
                && a[..2] == [0, 3]
                && b.len() == 4
                && b[..2] == [0, 4]
                && a[2..4] == b[2..4]
        };
        if let Some(o) = c.other {
            if block_pair(p, o) || block_pair(o, p) {
                return Strong(l7::TFTP);
            }
        }
    }
    if c.port(5351) && natpmp(p) {
        return Strong(l7::NATPMP);
    }
    // RDP over UDP (MS-RDPEUDP): the SYN and SYN+ACK datagrams are padded to 1232
    // bytes and carry the SYN flag.
    if c.port(3389) && p.len() == 1232 && be16(p, 6).is_some_and(|f| f & 1 != 0) {
        return Strong(l7::RDP);
    }
    // SLP v2: version 2, function 1..11, 3-byte length equal to the datagram.
    if p.len() >= 16 && p[0] == 2 && (1..=11).contains(&p[1]) {
        let len = usize::from(p[2]) << 16 | usize::from(be16(p, 3).unwrap_or(0));
        if len == p.len() {
            return Strong(l7::SLP);
        }
    }
    // SLP v1 (port 427 only).
    if c.port(427) && slp_v1(p) {
        return Strong(l7::SLP);
    }
    // BACnet/IP BVLC: type 0x81, function, length.
    if p.len() >= 4 && p[0] == 0x81 && p[1] <= 0x0c && be16(p, 2).map(usize::from) == Some(p.len())
    {
        return Strong(l7::BACNET);
    }
    // DNS family (with the question name parsed).
    if let Some(v) = dns_like(p, c, false) {
        return v;
    }
    // QUIC long header with a known version; Google QUIC public header.
    if let Some(v) = quic(p) {
        return v;
    }
    // DTLS record: content type, version 1.0/1.2/1.3 (0xfeff, 0xfefd, 0xfefc).
    if p.len() >= 13 && (20..=25).contains(&p[0]) {
        let ver = be16(p, 1).unwrap_or(0);
        let rec_end = usize::from(be16(p, 11).unwrap_or(0)) + 13;
        if matches!(ver, 0xfeff | 0xfefd | 0xfefc) && rec_end <= p.len() {
            return Strong(l7::DTLS);
        }
        // OpenSSL's pre-RFC DTLS ("DTLS1_BAD_VER", 0x0100), epoch 0 or 1.
        if ver == 0x0100 && rec_end == p.len() && p[3] == 0 && p[4] <= 1 {
            return Strong(l7::DTLS);
        }
    }
    // WireGuard: type, three zero bytes, fixed sizes.
    if p.len() >= 32 && (1..=4).contains(&p[0]) && p[1..4] == [0, 0, 0] {
        let fixed = matches!((p[0], p.len()), (1, 148) | (2, 92) | (3, 64));
        if fixed {
            return Strong(l7::WIREGUARD);
        }
        if p[0] == 4 && p.len() % 16 == 0 {
            return Weak(l7::WIREGUARD);
        }
    }
    // STUN / TURN.
    if let Some(v) = stun(p, c) {
        return v;
    }
    // Kerberos over UDP.
    if kerberos(p) {
        return Strong(l7::KERBEROS);
    }
    // SNMP or CLDAP.
    if let Some(v) = ber_message(p, c) {
        return v;
    }
    // Gnutella2 UDP ("GND", flags, sequence, part number, part count) and Gnutella
    // descriptors (16-byte GUID, type, TTL, hops, little-endian payload length).
    if p.len() >= 8 && p.starts_with(b"GND") && p[6] >= 1 && (p[7] == 0 || p[6] <= p[7]) {
        return Strong(l7::GNUTELLA);
    }
    if p.len() >= 23
        && matches!(
            p[16],
            0x00..=0x02 | 0x30..=0x32 | 0x40 | 0x41 | 0x44 | 0x80 | 0x81
        )
        && p[17] <= 16
        && p[18] <= 16
        && le32(p, 19).map(|n| n as usize + 23) == Some(p.len())
    {
        return Strong(l7::GNUTELLA);
    }
    // BitTorrent DHT (bencoded dictionaries) and uTP.
    if p.starts_with(b"d1:")
        && matches!(
            p.get(3),
            Some(b'a' | b'r' | b'e' | b'q' | b't' | b'y' | b'v')
        )
    {
        return Strong(l7::BITTORRENT);
    }
    if p.starts_with(b"d2:ip") || p.starts_with(b"d1:ad2:id20:") {
        return Strong(l7::BITTORRENT);
    }
    if p.len() >= 20 && matches!(p[0], 0x01 | 0x11 | 0x21 | 0x31 | 0x41) && p[1] <= 2 {
        // uTP: a SYN (0x41) of 20 bytes, or a state reply to it.
        let syn = p[0] == 0x41 && p.len() == 20 + if p[1] == 0 { 0 } else { 8 };
        if syn {
            return Weak(l7::BITTORRENT);
        }
        if p[0] == 0x21 && c.other.is_some_and(|o| o.first() == Some(&0x41)) {
            return Strong(l7::BITTORRENT);
        }
    }
    // CoAP: version 1, token length <= 8, code class 0/2/4/5.
    if p.len() >= 4
        && p[0] >> 6 == 1
        && p[0] & 0x0f <= 8
        && matches!(p[1] >> 5, 0 | 2 | 4 | 5)
        && c.port_in(&[5683, 5684])
    {
        return Strong(l7::COAP);
    }
    // DNP3 over UDP.
    if p.len() >= 10 && p[0] == 0x05 && p[1] == 0x64 && usize::from(p[2]) >= 5 {
        return Strong(l7::DNP3);
    }
    // DCE/RPC connectionless (version 4).
    // Header: 80 bytes; data representation at 4; fragment length at 74.
    if p.len() >= 80 && p[0] == 4 && p[1] <= 10 && p[4] & 0xee == 0 && p[5] <= 3 {
        let frag = if p[4] & 0x10 != 0 {
            u16::from_le_bytes([p[74], p[75]])
        } else {
            u16::from_be_bytes([p[74], p[75]])
        };
        if usize::from(frag) + 80 == p.len() {
            return Strong(l7::DCERPC);
        }
    }
    // OpenVPN over UDP.
    if let Some(v) = openvpn(p, c) {
        return v;
    }
    // RTCP (payload types 200..=207) and RTP (version 2).
    rtp(c)
}

/// SLP v1 header: version 1, function, length, flags, dialect 0, a two-letter
/// language code and a character encoding (US-ASCII 3, UTF-8 106, UCS-2 1000, ...).
fn slp_v1(p: &[u8]) -> bool {
    p.len() >= 12
        && p[0] == 1
        && (1..=10).contains(&p[1])
        && be16(p, 2).map(usize::from) == Some(p.len())
        && p[5] == 0
        && p[6..8].iter().all(u8::is_ascii_alphabetic)
        && matches!(be16(p, 8), Some(3 | 4 | 106 | 1000 | 1001 | 1015))
}

/// ONC RPC call to NFS or one of its helpers: xid, message type 0, RPC version 2,
/// program number (portmapper 100000, nfs 100003, mount 100005, nlockmgr 100021,
/// status 100024).
fn nfs_rpc_call(p: &[u8]) -> bool {
    be32(p, 4) == Some(0)
        && be32(p, 8) == Some(2)
        && matches!(
            be32(p, 12),
            Some(100_000 | 100_003 | 100_005 | 100_021 | 100_024)
        )
        && p.len() >= 40
}

/// The first RADIUS attributes (type, length >= 2, value) must fit the message
/// (only the first four are checked: real captures carry malformed tails).
fn radius_attributes(mut a: &[u8]) -> bool {
    for _ in 0..4 {
        if a.is_empty() {
            return true;
        }
        let len = usize::from(*a.get(1).unwrap_or(&0));
        if a[0] == 0 || len < 2 || len > a.len() {
            return false;
        }
        a = &a[len..];
    }
    true
}

/// DHCPv6: message type, then options (code, length) that end with the datagram;
/// relay messages carry hop count and two addresses first.
fn dhcpv6(p: &[u8]) -> bool {
    let start = match p.first() {
        Some(1..=11) => 4,
        Some(12 | 13) => 34,
        _ => return false,
    };
    let mut i = start;
    let mut options = 0;
    while i < p.len() {
        let Some(len) = be16(p, i + 2) else {
            return false;
        };
        i += 4 + usize::from(len);
        options += 1;
    }
    i == p.len() && options > 0
}

/// NTP: version 1..4; client/server modes have a 48-byte header (plus an optional
/// key id and digest) and a sane stratum; control (6) and private (7) modes are short.
fn ntp(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else {
        return false;
    };
    let (ver, mode) = ((b0 >> 3) & 7, b0 & 7);
    if !(1..=4).contains(&ver) {
        return false;
    }
    match mode {
        1..=5 => matches!(p.len(), 48 | 52 | 60 | 68 | 72) && p[1] <= 16,
        6 => {
            let count = usize::from(be16(p, 10).unwrap_or(u16::MAX));
            p.len() >= 12 && 12 + count <= p.len() && p.len() <= 12 + count + 3 + 24
        }
        7 => ver >= 2 && p.len() >= 8 && p.len() <= 512 && matches!(p.get(2), Some(0 | 2 | 3)),
        _ => false,
    }
}

/// NAT-PMP (version 0) requests and responses have fixed sizes; PCP (version 2)
/// messages are 24..=1100 bytes in 4-byte units.
fn natpmp(p: &[u8]) -> bool {
    match (p.first(), p.get(1), p.len()) {
        (Some(0), Some(0), 2) => true,
        (Some(0), Some(1 | 2), 12) => true,
        (Some(0), Some(128), 12) => true,
        (Some(0), Some(129 | 130), 16) => true,
        (Some(2), Some(op), n) => {
            op & 0x7f <= 2 && p.get(2) == Some(&0) && (24..=1100).contains(&n) && n % 4 == 0
        }
        _ => false,
    }
}

fn quic(p: &[u8]) -> Option<Verdict> {
    if p.len() >= 1200 || p.len() >= 20 {
        let first = p[0];
        if first & 0xc0 == 0xc0 {
            let ver = be32(p, 1)?;
            let known = ver == 1
                || ver == 0x6b33_43cf
                || ver & 0xffff_ff00 == 0xff00_0000
                || ver & 0xffff_fff0 == 0xfaceb000
                || ver & 0xffff_0000 == 0x5130_0000 // gQUIC Q0xx in long-header form
                || ver & 0x0f0f_0f0f == 0x0a0a_0a0a; // greased
            let gquic = ver & 0xffff_0000 == 0x5130_0000;
            let dcid = usize::from(*p.get(5)?);
            if known && (gquic || dcid <= 20) {
                return Some(Strong(l7::QUIC));
            }
        }
        // Google QUIC public header: flags, 8-byte CID, "Q0xx" version.
        if first & 0x80 == 0 && first & 0x09 == 0x09 && p.get(9..11) == Some(b"Q0".as_slice()) {
            return Some(Strong(l7::QUIC));
        }
    }
    None
}

fn rtp(c: &Ctx<'_>) -> Verdict {
    let p = c.payload;
    if p.len() < 8 || p[0] >> 6 != 2 {
        return Verdict::None;
    }
    let pt = p[1];
    if pt == 200 || pt == 201 {
        // A compound RTCP packet starts with a sender or receiver report whose length
        // fits its report count; the next packet of the compound must be RTCP too.
        let words = usize::from(be16(p, 2).unwrap_or(0));
        let rc = usize::from(p[0] & 0x1f);
        let min = if pt == 200 { 6 } else { 1 } + 6 * rc;
        let end = (words + 1) * 4;
        if words < min || end > p.len() {
            return Verdict::None;
        }
        if end == p.len() {
            return Weak(l7::RTCP);
        }
        let next_ok = p.get(end).is_some_and(|b| b >> 6 == 2)
            && p.get(end + 1).is_some_and(|t| (200..=207).contains(t));
        return if next_ok {
            Strong(l7::RTCP)
        } else {
            Verdict::None
        };
    }
    if p.len() < 12 {
        return Verdict::None;
    }
    let pt = pt & 0x7f;
    let known_pt = matches!(pt, 0 | 3..=5 | 8..=18 | 25 | 26 | 31..=34 | 96..=127);
    if !known_pt {
        return Verdict::None;
    }
    // Confirmed when this direction's first packet carried the same SSRC and payload
    // type, with a sequence number a little behind and a timestamp not ahead.
    if let Some(first) = c.own_first {
        if first.len() >= 12
            && first[0] >> 6 == 2
            && first[8..12] == p[8..12]
            && first[1] & 0x7f == pt
        {
            let seq = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
            let ts = |b: &[u8]| u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let dseq = seq(p).wrapping_sub(seq(first));
            let dts = ts(p).wrapping_sub(ts(first));
            if (1..=16).contains(&dseq) && dts < 0x8000_0000 {
                return Strong(l7::RTP);
            }
        }
        return Verdict::None;
    }
    Candidate(l7::RTP)
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
