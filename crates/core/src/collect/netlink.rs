//! One synchronous netlink dump: send a request, read every part of the multi-part answer.
//!
//! Shared by the socket (`NETLINK_SOCK_DIAG`) and interface (`NETLINK_ROUTE`) collectors. The
//! receive buffer is 64 KiB: the kernel sizes dump datagrams after the largest buffer it has seen
//! (at most 32 KiB), so fewer, fuller datagrams arrive; `MSG_TRUNC` reveals any datagram that still
//! did not fit, which is an error rather than silently lost sockets.

use netlink_packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};
use rustix::net::sockopt::Timeout;
use std::io;
use std::time::Duration;

/// Size of the receive buffer.
const RECV_BUFFER: usize = 64 * 1024;

/// How long to wait for the next part of an answer before giving up: a kernel that never ends
/// a dump must not hang the collector.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// Sequence number of our (only) request on a fresh socket.
const SEQUENCE: u32 = 1;

/// Why a dump failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The netlink socket could not be opened (the protocol may be missing from the kernel).
    #[error("cannot open the netlink socket: {0}")]
    Open(#[source] io::Error),
    /// Sending the request or reading the answer failed.
    #[error("netlink I/O failed: {0}")]
    Io(#[source] io::Error),
    /// The kernel answered the request with an error (`NLMSG_ERROR`, or an error code in
    /// `NLMSG_DONE` for a dump that failed part way).
    #[error("the kernel refused the dump: {0}")]
    Kernel(#[source] io::Error),
    /// A datagram was longer than the receive buffer.
    #[error("a netlink datagram of {0} bytes did not fit the receive buffer")]
    Truncated(usize),
    /// A datagram did not hold well-formed netlink messages.
    #[error("malformed netlink datagram: {0}")]
    Malformed(String),
}

impl DumpError {
    /// The errno behind the failure, when there is one: it tells "this kernel has no such diag
    /// module" (`ENOENT`, `EPROTONOSUPPORT`, `EOPNOTSUPP`) from real failures.
    pub fn errno(&self) -> Option<i32> {
        match self {
            DumpError::Open(e) | DumpError::Io(e) | DumpError::Kernel(e) => e.raw_os_error(),
            DumpError::Truncated(_) | DumpError::Malformed(_) => None,
        }
    }
}

/// What a dump delivered besides the messages themselves.
#[derive(Debug, Default)]
pub struct DumpSummary {
    /// Messages the decoder rejected (skipped, not fatal), with the first reason.
    pub undecodable: usize,
    /// The first decoder error, for the snapshot's limits.
    pub first_decode_error: Option<String>,
    /// Whether the kernel flagged the dump as inconsistent (`NLM_F_DUMP_INTR`: the table changed
    /// while it was being read).
    pub interrupted: bool,
}

/// Sends `request` as a dump request on a new socket of `protocol` and calls `each` with every
/// message of the answer, until `NLMSG_DONE`.
pub fn dump<M, F>(protocol: isize, request: M, mut each: F) -> Result<DumpSummary, DumpError>
where
    M: NetlinkSerializable + NetlinkDeserializable,
    F: FnMut(M),
{
    let mut socket = Socket::new(protocol).map_err(DumpError::Open)?;
    socket.bind_auto().map_err(DumpError::Open)?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(DumpError::Open)?;
    rustix::net::sockopt::set_socket_timeout(&socket, Timeout::Recv, Some(RECV_TIMEOUT))
        .map_err(|e| DumpError::Open(e.into()))?;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = SEQUENCE;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
    message.finalize();
    let mut out = vec![0u8; message.buffer_len()];
    message.serialize(&mut out);
    socket.send(&out, 0).map_err(DumpError::Io)?;

    let mut summary = DumpSummary::default();
    let mut buffer: Vec<u8> = Vec::with_capacity(RECV_BUFFER);
    loop {
        buffer.clear();
        let len = socket.recv(&mut buffer, libc::MSG_TRUNC).map_err(DumpError::Io)?;
        if len > buffer.len() {
            return Err(DumpError::Truncated(len));
        }
        if walk_datagram(&buffer, &mut summary, &mut each)? {
            return Ok(summary);
        }
    }
}

/// Parses every message of one datagram. Returns whether the dump is complete.
pub(super) fn walk_datagram<M, F>(datagram: &[u8], summary: &mut DumpSummary, each: &mut F) -> Result<bool, DumpError>
where
    M: NetlinkDeserializable,
    F: FnMut(M),
{
    const NLMSG_ALIGNTO: usize = 4;
    let mut offset = 0;
    while offset < datagram.len() {
        let rest = &datagram[offset..];
        let frame =
            NetlinkBuffer::new_checked(rest).map_err(|e| DumpError::Malformed(format!("at byte {offset}: {e}")))?;
        let length = frame.length() as usize;
        if length == 0 {
            return Err(DumpError::Malformed(format!("zero-length message at byte {offset}")));
        }
        let bytes = &rest[..length.min(rest.len())];
        offset += (length + NLMSG_ALIGNTO - 1) & !(NLMSG_ALIGNTO - 1);
        if frame.sequence_number() != SEQUENCE {
            continue;
        }
        if frame.flags() & netlink_packet_core::NLM_F_DUMP_INTR != 0 {
            summary.interrupted = true;
        }
        match NetlinkMessage::<M>::deserialize(bytes) {
            Ok(message) => match message.payload {
                NetlinkPayload::InnerMessage(inner) => each(inner),
                NetlinkPayload::Done(done) if done.code != 0 => {
                    return Err(DumpError::Kernel(io::Error::from_raw_os_error(-done.code)));
                }
                NetlinkPayload::Done(_) => return Ok(true),
                NetlinkPayload::Error(error) if error.code.is_some() => {
                    return Err(DumpError::Kernel(error.to_io()));
                }
                // Acknowledgements, no-ops and overrun notices carry no sockets or links.
                _ => {}
            },
            Err(e) => {
                summary.undecodable += 1;
                if summary.first_decode_error.is_none() {
                    summary.first_decode_error = Some(e.to_string());
                }
            }
        }
    }
    Ok(false)
}
