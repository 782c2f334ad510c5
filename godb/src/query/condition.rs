//! Conditions (`-c`): goQuery's filter grammar, parsed into a tree and evaluated column
//! by column over a block.
//!
//! Grammar (lowest precedence first; `&` binds tighter than `|`):
//!
//! ```text
//! disjunction := conjunction ( ("|" | "||" | "or") conjunction )*
//! conjunction := negation ( ("&" | "&&" | "and") negation )*
//! negation    := ("!" | "not") negation | primary
//! primary     := ("(" | "[" | "{") disjunction (")" | "]" | "}") | condition
//! condition   := attribute operator value
//! operator    := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" and the words
//!                eq equals ne neq lt l less le leq gt g greater ge geq (also "-eq" ...)
//! ```
//!
//! Attributes: `sip`/`src`, `dip`/`dst`, `host` (either side), `snet`, `dnet`, `net`
//! (either side; CIDR, IPv4 or IPv6), `dport`/`port`, `proto`/`protocol`/`ipproto`
//! (name or number), `l7` (name from [`crate::l7`] or id; `dns` is the payload
//! detection only, `dns?` the port guess only) and `dir`/`direction` (`in`,
//! `out`, `uni`, `bi` and their long forms). Addresses, networks, layer-7 protocols and
//! directions only compare with `=` and `!=`. Where an address is expected a hostname
//! is accepted and resolved to all its addresses.
//!
//! Evaluation is vectorised: each leaf fills a boolean per row of the block from one
//! column, and the inner nodes combine those masks; nothing is allocated per row.

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

use super::attr::{proto_name, proto_number};
use super::error::{ConditionError, ConditionErrorKind as K};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }

    fn word(word: &str) -> Option<Cmp> {
        let w = word.to_ascii_lowercase();
        let w = w.strip_prefix('-').unwrap_or(&w);
        Some(match w {
            "eq" | "equals" => Cmp::Eq,
            "ne" | "neq" => Cmp::Ne,
            "lt" | "l" | "less" => Cmp::Lt,
            "le" | "leq" => Cmp::Le,
            "gt" | "g" | "greater" => Cmp::Gt,
            "ge" | "geq" => Cmp::Ge,
            _ => return None,
        })
    }
}

/// Which address of a flow a leaf looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The source (client) address.
    Src,
    /// The destination (server) address.
    Dst,
}

/// A network in CIDR notation, host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length (0-32 for IPv4, 0-128 for IPv6).
    pub prefix: u8,
}

impl Cidr {
    /// Parses `addr/len` or a bare address (a host network).
    pub fn parse(text: &str) -> Option<Cidr> {
        let (a, p) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|v| *v <= max)?
            }
            Some(_) => return None,
            None => max,
        };
        let addr = match addr {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & mask32(prefix)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask128(prefix)).into()),
        };
        Some(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask32(self.prefix) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask128(self.prefix) == u128::from(n),
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    }
}

/// Traffic direction filters (`dir = ...`), judged on the packet counters of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirFilter {
    /// Only received packets (nothing sent by the source).
    In,
    /// Only sent packets (nothing received by the source).
    Out,
    /// Packets in exactly one direction.
    Uni,
    /// Packets in both directions.
    Bi,
}

impl DirFilter {
    fn parse(text: &str) -> Option<DirFilter> {
        Some(match text.to_ascii_lowercase().as_str() {
            "in" | "inbound" => DirFilter::In,
            "out" | "outbound" => DirFilter::Out,
            "uni" | "unidirectional" => DirFilter::Uni,
            "bi" | "bidirectional" => DirFilter::Bi,
            _ => return None,
        })
    }

    #[inline]
    fn test(self, pkts_rcvd: u64, pkts_sent: u64) -> bool {
        match self {
            DirFilter::In => pkts_sent == 0 && pkts_rcvd > 0,
            DirFilter::Out => pkts_rcvd == 0 && pkts_sent > 0,
            DirFilter::Uni => (pkts_rcvd == 0) != (pkts_sent == 0),
            DirFilter::Bi => pkts_rcvd > 0 && pkts_sent > 0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DirFilter::In => "in",
            DirFilter::Out => "out",
            DirFilter::Uni => "uni",
            DirFilter::Bi => "bi",
        }
    }
}

/// A test of one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaf {
    /// The address equals one of `addrs` (several when a hostname resolved to several).
    Addr {
        /// Which address.
        side: Side,
        /// The candidates.
        addrs: Vec<IpAddr>,
        /// The hostname, when the value was one (for display).
        host: Option<String>,
    },
    /// The address lies in `net`.
    Net {
        /// Which address.
        side: Side,
        /// The network.
        net: Cidr,
    },
    /// Compares the destination port.
    Dport(Cmp, u16),
    /// Compares the IP protocol number.
    Proto(Cmp, u8),
    /// Equals a layer-7 protocol id.
    L7(u16),
    /// The direction filter.
    Dir(DirFilter),
}

/// A node of the condition tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// All children hold.
    And(Vec<Node>),
    /// At least one child holds.
    Or(Vec<Node>),
    /// The child does not hold.
    Not(Box<Node>),
    /// A column test.
    Leaf(Leaf),
}

/// Which columns a condition reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeededColumns {
    /// Source addresses.
    pub sip: bool,
    /// Destination addresses.
    pub dip: bool,
    /// Destination ports.
    pub dport: bool,
    /// IP protocols.
    pub proto: bool,
    /// Layer-7 ids.
    pub l7: bool,
    /// Packet counters (direction filters).
    pub packets: bool,
}

/// A parsed, validated condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    root: Node,
}

type Resolver<'r> = &'r dyn Fn(&str) -> Option<Vec<IpAddr>>;

/// How long a hostname in a condition may take to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Resolves `host` with the system resolver, giving up after [`RESOLVE_TIMEOUT`].
pub fn resolve_host(host: &str) -> Option<Vec<IpAddr>> {
    let (tx, rx) = mpsc::channel();
    let name = format!("{host}:0");
    std::thread::spawn(move || {
        let result = name
            .to_socket_addrs()
            .ok()
            .map(|it| it.map(|sa| sa.ip()).collect::<Vec<_>>());
        let _ = tx.send(result);
    });
    let mut addrs = rx.recv_timeout(RESOLVE_TIMEOUT).ok().flatten()?;
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        None
    } else {
        Some(addrs)
    }
}

impl Condition {
    /// Parses `text`, resolving hostnames with the system resolver.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        Condition::parse_with(text, &resolve_host)
    }

    /// Parses `text`, resolving hostnames with `resolver`.
    pub fn parse_with(
        text: &str,
        resolver: &dyn Fn(&str) -> Option<Vec<IpAddr>>,
    ) -> Result<Condition, ConditionError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err(ConditionError {
                position: 0,
                kind: K::Empty,
            });
        }
        let mut p = Parser {
            tokens: &tokens,
            i: 0,
            end: text.len(),
            resolver,
        };
        let root = p.disjunction()?;
        if let Some(t) = p.peek() {
            let kind = match t.kind {
                Tok::Close(c) => K::UnexpectedClose(c),
                _ => K::Trailing(t.text.to_string()),
            };
            return Err(ConditionError {
                position: t.pos,
                kind,
            });
        }
        Ok(Condition { root })
    }

    /// The tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The columns the condition reads.
    pub fn columns(&self) -> NeededColumns {
        let mut n = NeededColumns::default();
        needed(&self.root, &mut n);
        n
    }

    /// Evaluates the condition over all rows of `cols`, writing one boolean per row.
    pub(crate) fn eval(&self, cols: &Cols<'_>, out: &mut Vec<bool>, pool: &mut Vec<Vec<bool>>) {
        out.clear();
        out.resize(cols.rows, false);
        eval_node(&self.root, cols, out, pool);
    }

    /// Tests one row given as a model row (slow path, for tests and small callers).
    pub fn matches(&self, row: &crate::FlowRow) -> bool {
        let (sip4, sip6, dip4, dip6, v4) = match (row.key.sip, row.key.dip) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                (vec![s.octets()], vec![], vec![d.octets()], vec![], 1)
            }
            (s, d) => (vec![], vec![v6_bytes(s)], vec![], vec![v6_bytes(d)], 0),
        };
        let c = &row.counters;
        let cols = Cols {
            rows: 1,
            rows_v4: v4,
            sip4: &sip4,
            sip6: &sip6,
            dip4: &dip4,
            dip6: &dip6,
            dport: &[row.key.dport],
            proto: &[row.key.proto],
            l7: &[row.key.l7],
            pkts_rcvd: &[c.pkts_rcvd],
            pkts_sent: &[c.pkts_sent],
        };
        let mut out = Vec::new();
        self.eval(&cols, &mut out, &mut Vec::new());
        out.first().copied().unwrap_or(false)
    }
}

fn v6_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn needed(node: &Node, n: &mut NeededColumns) {
    match node {
        Node::And(c) | Node::Or(c) => c.iter().for_each(|c| needed(c, n)),
        Node::Not(c) => needed(c, n),
        Node::Leaf(Leaf::Addr { side, .. }) | Node::Leaf(Leaf::Net { side, .. }) => match side {
            Side::Src => n.sip = true,
            Side::Dst => n.dip = true,
        },
        Node::Leaf(Leaf::Dport(..)) => n.dport = true,
        Node::Leaf(Leaf::Proto(..)) => n.proto = true,
        Node::Leaf(Leaf::L7(..)) => n.l7 = true,
        Node::Leaf(Leaf::Dir(..)) => n.packets = true,
    }
}

/// The columns of one block as slices, IPv4 rows first (`0..rows_v4`), then IPv6 rows.
/// Columns the condition does not read may be empty.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cols<'a> {
    pub rows: usize,
    pub rows_v4: usize,
    pub sip4: &'a [[u8; 4]],
    pub sip6: &'a [[u8; 16]],
    pub dip4: &'a [[u8; 4]],
    pub dip6: &'a [[u8; 16]],
    pub dport: &'a [u16],
    pub proto: &'a [u8],
    pub l7: &'a [u16],
    pub pkts_rcvd: &'a [u64],
    pub pkts_sent: &'a [u64],
}

fn eval_node(node: &Node, cols: &Cols<'_>, out: &mut [bool], pool: &mut Vec<Vec<bool>>) {
    match node {
        Node::Leaf(leaf) => eval_leaf(leaf, cols, out),
        Node::Not(child) => {
            eval_node(child, cols, out, pool);
            out.iter_mut().for_each(|b| *b = !*b);
        }
        Node::And(children) | Node::Or(children) => {
            let is_and = matches!(node, Node::And(_));
            let Some((first, rest)) = children.split_first() else {
                out.fill(is_and);
                return;
            };
            eval_node(first, cols, out, pool);
            let mut scratch = pool.pop().unwrap_or_default();
            for child in rest {
                // Short-circuit: nothing left to decide.
                if is_and && !out.contains(&true) || !is_and && !out.contains(&false) {
                    break;
                }
                scratch.clear();
                scratch.resize(out.len(), false);
                eval_node(child, cols, &mut scratch, pool);
                if is_and {
                    out.iter_mut().zip(&scratch).for_each(|(o, s)| *o &= *s);
                } else {
                    out.iter_mut().zip(&scratch).for_each(|(o, s)| *o |= *s);
                }
            }
            pool.push(scratch);
        }
    }
}

fn eval_leaf(leaf: &Leaf, c: &Cols<'_>, out: &mut [bool]) {
    let split = c.rows_v4.min(out.len());
    let (out4, out6) = out.split_at_mut(split);
    match leaf {
        Leaf::Addr { side, addrs, .. } => {
            let (c4, c6) = match side {
                Side::Src => (c.sip4, c.sip6),
                Side::Dst => (c.dip4, c.dip6),
            };
            out4.fill(false);
            out6.fill(false);
            for a in addrs {
                match a {
                    IpAddr::V4(v4) => {
                        let want = v4.octets();
                        out4.iter_mut()
                            .zip(c4)
                            .for_each(|(o, ip)| *o |= *ip == want);
                    }
                    IpAddr::V6(v6) => {
                        let want = v6.octets();
                        out6.iter_mut()
                            .zip(c6)
                            .for_each(|(o, ip)| *o |= *ip == want);
                    }
                }
            }
        }
        Leaf::Net { side, net } => {
            let (c4, c6) = match side {
                Side::Src => (c.sip4, c.sip6),
                Side::Dst => (c.dip4, c.dip6),
            };
            match net.addr {
                IpAddr::V4(n) => {
                    let (m, n) = (mask32(net.prefix), u32::from(n));
                    out4.iter_mut()
                        .zip(c4)
                        .for_each(|(o, ip)| *o = u32::from_be_bytes(*ip) & m == n);
                    out6.fill(false);
                }
                IpAddr::V6(n) => {
                    let (m, n) = (mask128(net.prefix), u128::from(n));
                    out6.iter_mut()
                        .zip(c6)
                        .for_each(|(o, ip)| *o = u128::from_be_bytes(*ip) & m == n);
                    out4.fill(false);
                }
            }
        }
        Leaf::Dport(op, v) => cmp_fill(out, c.dport, *op, *v),
        Leaf::Proto(op, v) => cmp_fill(out, c.proto, *op, *v),
        Leaf::L7(v) => cmp_fill(out, c.l7, Cmp::Eq, *v),
        Leaf::Dir(d) => out
            .iter_mut()
            .zip(c.pkts_rcvd.iter().zip(c.pkts_sent))
            .for_each(|(o, (r, s))| *o = d.test(*r, *s)),
    }
}

fn cmp_fill<T: Ord + Copy>(out: &mut [bool], col: &[T], op: Cmp, v: T) {
    // One loop per operator so each compiles to a tight comparison loop.
    let it = out.iter_mut().zip(col);
    match op {
        Cmp::Eq => it.for_each(|(o, x)| *o = *x == v),
        Cmp::Ne => it.for_each(|(o, x)| *o = *x != v),
        Cmp::Lt => it.for_each(|(o, x)| *o = *x < v),
        Cmp::Le => it.for_each(|(o, x)| *o = *x <= v),
        Cmp::Gt => it.for_each(|(o, x)| *o = *x > v),
        Cmp::Ge => it.for_each(|(o, x)| *o = *x >= v),
    }
}

// ---------------------------------------------------------------------------------
// Tokenizer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Word,
    Op(Cmp),
    And,
    Or,
    Not,
    Open(char),
    Close(char),
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Tok,
    pos: usize,
    text: &'a str,
}

fn is_delim(b: u8) -> bool {
    b.is_ascii_whitespace() || b"()[]{}&|!=<>".contains(&b)
}

fn tokenize(text: &str) -> Result<Vec<Token<'_>>, ConditionError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        let two = |c: u8| bytes.get(i + 1) == Some(&c);
        let kind = match b {
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'(' | b'[' | b'{' => {
                i += 1;
                Tok::Open(b as char)
            }
            b')' | b']' | b'}' => {
                i += 1;
                Tok::Close(b as char)
            }
            b'&' => {
                i += if two(b'&') { 2 } else { 1 };
                Tok::And
            }
            b'|' => {
                i += if two(b'|') { 2 } else { 1 };
                Tok::Or
            }
            b'!' => {
                if two(b'=') {
                    i += 2;
                    Tok::Op(Cmp::Ne)
                } else {
                    i += 1;
                    Tok::Not
                }
            }
            b'=' => {
                i += 1;
                while i < bytes.len() && bytes[i] == b'=' && i - start < 3 {
                    i += 1;
                }
                Tok::Op(Cmp::Eq)
            }
            b'<' | b'>' => {
                let eq = two(b'=');
                i += if eq { 2 } else { 1 };
                Tok::Op(match (b, eq) {
                    (b'<', false) => Cmp::Lt,
                    (b'<', true) => Cmp::Le,
                    (_, false) => Cmp::Gt,
                    (_, true) => Cmp::Ge,
                })
            }
            _ => {
                while i < bytes.len() && !is_delim(bytes[i]) {
                    i += 1;
                }
                Tok::Word
            }
        };
        let Some(tok_text) = text.get(start..i) else {
            // Cannot happen: token boundaries are ASCII delimiters; kept as an error
            // instead of a panic.
            return Err(ConditionError {
                position: start,
                kind: K::UnexpectedChar(b as char),
            });
        };
        out.push(Token {
            kind,
            pos: start,
            text: tok_text,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Parser

struct Parser<'t, 'a, 'r> {
    tokens: &'t [Token<'a>],
    i: usize,
    end: usize,
    resolver: Resolver<'r>,
}

impl<'a> Parser<'_, 'a, '_> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.i).copied()
    }

    fn is_word(t: &Token<'_>, w: &str) -> bool {
        t.kind == Tok::Word && t.text.eq_ignore_ascii_case(w)
    }

    fn at_connective(&self, and: bool) -> bool {
        match self.peek() {
            Some(t) if and => t.kind == Tok::And || Self::is_word(&t, "and"),
            Some(t) => t.kind == Tok::Or || Self::is_word(&t, "or"),
            None => false,
        }
    }

    fn disjunction(&mut self) -> Result<Node, ConditionError> {
        let mut nodes = vec![self.conjunction()?];
        while self.at_connective(false) {
            self.i += 1;
            nodes.push(self.conjunction()?);
        }
        Ok(flatten(nodes, false))
    }

    fn conjunction(&mut self) -> Result<Node, ConditionError> {
        let mut nodes = vec![self.negation()?];
        while self.at_connective(true) {
            self.i += 1;
            nodes.push(self.negation()?);
        }
        Ok(flatten(nodes, true))
    }

    fn negation(&mut self) -> Result<Node, ConditionError> {
        match self.peek() {
            Some(t) if t.kind == Tok::Not || Self::is_word(&t, "not") => {
                self.i += 1;
                Ok(negate(self.negation()?))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Node, ConditionError> {
        let Some(t) = self.peek() else {
            return Err(self.err_end(K::ExpectedCondition("end of input".into())));
        };
        match t.kind {
            Tok::Open(open) => {
                self.i += 1;
                let inner = self.disjunction()?;
                let close = match open {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                match self.peek() {
                    Some(c) if c.kind == Tok::Close(close) => {
                        self.i += 1;
                        Ok(inner)
                    }
                    Some(c) if matches!(c.kind, Tok::Close(_)) => Err(ConditionError {
                        position: c.pos,
                        kind: K::UnexpectedClose(c.text.chars().next().unwrap_or(close)),
                    }),
                    Some(c) => Err(ConditionError {
                        position: c.pos,
                        kind: K::Trailing(c.text.to_string()),
                    }),
                    None => Err(ConditionError {
                        position: t.pos,
                        kind: K::Unclosed,
                    }),
                }
            }
            Tok::Close(c) => Err(ConditionError {
                position: t.pos,
                kind: K::UnexpectedClose(c),
            }),
            Tok::Word => self.condition(),
            _ => Err(ConditionError {
                position: t.pos,
                kind: K::ExpectedCondition(t.text.to_string()),
            }),
        }
    }

    fn err_end(&self, kind: K) -> ConditionError {
        ConditionError {
            position: self.end,
            kind,
        }
    }

    fn condition(&mut self) -> Result<Node, ConditionError> {
        let Some(attr) = self.peek() else {
            return Err(self.err_end(K::ExpectedCondition("end of input".into())));
        };
        self.i += 1;
        let name = attr.text.to_ascii_lowercase();
        const KNOWN: &[&str] = &[
            "sip",
            "src",
            "dip",
            "dst",
            "host",
            "snet",
            "dnet",
            "net",
            "dport",
            "port",
            "proto",
            "protocol",
            "ipproto",
            "l7",
            "dir",
            "direction",
        ];
        if !KNOWN.contains(&name.as_str()) {
            return Err(ConditionError {
                position: attr.pos,
                kind: K::UnknownAttribute(attr.text.to_string()),
            });
        }
        let op_tok = match self.peek() {
            Some(t) => t,
            None => return Err(self.err_end(K::ExpectedOperator("end of input".into()))),
        };
        let op = match op_tok.kind {
            Tok::Op(op) => op,
            Tok::Word => Cmp::word(op_tok.text).ok_or_else(|| ConditionError {
                position: op_tok.pos,
                kind: K::ExpectedOperator(op_tok.text.to_string()),
            })?,
            _ => {
                return Err(ConditionError {
                    position: op_tok.pos,
                    kind: K::ExpectedOperator(op_tok.text.to_string()),
                })
            }
        };
        self.i += 1;
        let value = match self.peek() {
            Some(t) if t.kind == Tok::Word => t,
            Some(t) => {
                return Err(ConditionError {
                    position: t.pos,
                    kind: K::ExpectedValue,
                })
            }
            None => return Err(self.err_end(K::ExpectedValue)),
        };
        self.i += 1;
        self.leaf(&name, op, op_tok, value)
    }

    fn leaf(
        &self,
        attr: &str,
        op: Cmp,
        op_tok: Token<'_>,
        value: Token<'_>,
    ) -> Result<Node, ConditionError> {
        let eq_only = |what: &str| -> Result<bool, ConditionError> {
            match op {
                Cmp::Eq => Ok(false),
                Cmp::Ne => Ok(true),
                _ => Err(ConditionError {
                    position: op_tok.pos,
                    kind: K::OperatorNotAllowed {
                        op: op_tok.text.to_string(),
                        attribute: what.to_string(),
                    },
                }),
            }
        };
        let invalid = |expected: &'static str| ConditionError {
            position: value.pos,
            kind: K::InvalidValue {
                attribute: attr.to_string(),
                value: value.text.to_string(),
                expected,
            },
        };
        let v = value.text;
        let node = match attr {
            "sip" | "src" | "dip" | "dst" | "host" => {
                let neg = eq_only(attr)?;
                let make = |side| self.addr_leaf(side, value);
                let node = match attr {
                    "sip" | "src" => make(Side::Src)?,
                    "dip" | "dst" => make(Side::Dst)?,
                    _ => Node::Or(vec![make(Side::Src)?, make(Side::Dst)?]),
                };
                return Ok(if neg { negate(node) } else { node });
            }
            "snet" | "dnet" | "net" => {
                let neg = eq_only(attr)?;
                let net = Cidr::parse(v)
                    .ok_or_else(|| invalid("a network like 10.0.0.0/8 or 2001:db8::/32"))?;
                let leaf = |side| Node::Leaf(Leaf::Net { side, net });
                let node = match attr {
                    "snet" => leaf(Side::Src),
                    "dnet" => leaf(Side::Dst),
                    _ => Node::Or(vec![leaf(Side::Src), leaf(Side::Dst)]),
                };
                return Ok(if neg { negate(node) } else { node });
            }
            "dport" | "port" => {
                let p = v
                    .parse::<u16>()
                    .map_err(|_| invalid("a port number from 0 to 65535"))?;
                Leaf::Dport(op, p)
            }
            "proto" | "protocol" | "ipproto" => {
                let p = proto_number(v).ok_or_else(|| {
                    invalid("a protocol name (tcp, udp, icmp, ...) or number 0-255")
                })?;
                Leaf::Proto(op, p)
            }
            "l7" => {
                let neg = eq_only(attr)?;
                let id = crate::l7::id(v)
                    .or_else(|| v.parse::<u16>().ok())
                    .ok_or_else(|| invalid("a layer-7 protocol name"))?;
                let node = Node::Leaf(Leaf::L7(id));
                return Ok(if neg { negate(node) } else { node });
            }
            _ => {
                // dir / direction
                let neg = eq_only(attr)?;
                let d = DirFilter::parse(v).ok_or_else(|| invalid("one of in, out, uni, bi"))?;
                let node = Node::Leaf(Leaf::Dir(d));
                return Ok(if neg { negate(node) } else { node });
            }
        };
        Ok(Node::Leaf(node))
    }

    fn addr_leaf(&self, side: Side, value: Token<'_>) -> Result<Node, ConditionError> {
        let v = value.text;
        if let Ok(ip) = v.parse::<IpAddr>() {
            return Ok(Node::Leaf(Leaf::Addr {
                side,
                addrs: vec![ip],
                host: None,
            }));
        }
        if v.contains('/') {
            if let Some(net) = Cidr::parse(v) {
                return Ok(Node::Leaf(Leaf::Net { side, net }));
            }
        }
        let looks_like_host = v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !looks_like_host {
            return Err(ConditionError {
                position: value.pos,
                kind: K::InvalidValue {
                    attribute: match side {
                        Side::Src => "sip".into(),
                        Side::Dst => "dip".into(),
                    },
                    value: v.to_string(),
                    expected: "an IP address or hostname",
                },
            });
        }
        let addrs = (self.resolver)(v).ok_or_else(|| ConditionError {
            position: value.pos,
            kind: K::Unresolvable(v.to_string()),
        })?;
        Ok(Node::Leaf(Leaf::Addr {
            side,
            addrs,
            host: Some(v.to_string()),
        }))
    }
}

fn flatten(mut nodes: Vec<Node>, and: bool) -> Node {
    if nodes.len() == 1 {
        return nodes.remove(0);
    }
    let mut flat = Vec::with_capacity(nodes.len());
    for n in nodes {
        match n {
            Node::And(c) if and => flat.extend(c),
            Node::Or(c) if !and => flat.extend(c),
            other => flat.push(other),
        }
    }
    if and {
        Node::And(flat)
    } else {
        Node::Or(flat)
    }
}

fn negate(node: Node) -> Node {
    match node {
        Node::Not(inner) => *inner,
        other => Node::Not(Box::new(other)),
    }
}

// ---------------------------------------------------------------------------------
// Display: a canonical form, fully parenthesised where precedence matters.

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root)
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Leaf(l) => write!(f, "{l}"),
            Node::Not(c) => match **c {
                Node::Leaf(_) => write!(f, "!{c}"),
                _ => write!(f, "!({c})"),
            },
            Node::And(c) | Node::Or(c) => {
                let (sep, and) = match self {
                    Node::And(_) => (" & ", true),
                    _ => (" | ", false),
                };
                for (i, child) in c.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    if and && matches!(child, Node::Or(_)) {
                        write!(f, "({child})")?;
                    } else {
                        write!(f, "{child}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |s: &Side| match s {
            Side::Src => "sip",
            Side::Dst => "dip",
        };
        match self {
            Leaf::Addr {
                side: s,
                addrs,
                host,
            } => match (host, addrs.as_slice()) {
                (Some(h), _) => write!(f, "{} = {h}", side(s)),
                (None, [one]) => write!(f, "{} = {one}", side(s)),
                (None, many) => {
                    let list: Vec<String> = many.iter().map(|a| a.to_string()).collect();
                    write!(f, "{} = {{{}}}", side(s), list.join(","))
                }
            },
            Leaf::Net { side: s, net } => {
                let n = if *s == Side::Src { "snet" } else { "dnet" };
                write!(f, "{n} = {}/{}", net.addr, net.prefix)
            }
            Leaf::Dport(op, v) => write!(f, "dport {} {v}", op.symbol()),
            Leaf::Proto(op, v) => match proto_name(*v) {
                Some(name) => write!(f, "proto {} {}", op.symbol(), name.to_ascii_lowercase()),
                None => write!(f, "proto {} {v}", op.symbol()),
            },
            Leaf::L7(id) => match crate::l7::name(*id) {
                Some(name) => write!(f, "l7 = {name}"),
                None => write!(f, "l7 = {id}"),
            },
            Leaf::Dir(d) => write!(f, "dir = {}", d.name()),
        }
    }
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;
