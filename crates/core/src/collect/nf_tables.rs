//! Whether a namespace has any packet-filter table at all, asked of the kernel directly: one
//! `NFT_MSG_GETTABLE` dump over `NETLINK_NETFILTER` for nf_tables (iptables-nft's tables are
//! nf_tables tables too), and `/proc/thread-self/net/ip{,6}_tables_names` for the legacy
//! x_tables, the very list `iptables-legacy-save` walks. A namespace without tables — most
//! containers' — then needs no `nft` or `iptables-save` run: their listings would be empty.

use super::netlink::{self, DumpError};
use netlink_packet_core::{NetlinkDeserializable, NetlinkHeader, NetlinkSerializable};

/// `NETLINK_NETFILTER`.
const NETLINK_NETFILTER: isize = 12;
/// `NFNL_SUBSYS_NFTABLES << 8`.
const NFTABLES: u16 = 10 << 8;
/// `NFT_MSG_NEWTABLE`: one table of the answer.
const NFT_MSG_NEWTABLE: u16 = 0;
/// `NFT_MSG_GETTABLE`: the request.
const NFT_MSG_GETTABLE: u16 = 1;

/// The request, and each message of the answer.
#[derive(Debug)]
enum TableMessage {
    /// `NFT_MSG_GETTABLE` for every family.
    Get,
    /// A table.
    Table,
    /// Any other message.
    Other,
}

impl NetlinkSerializable for TableMessage {
    fn message_type(&self) -> u16 {
        NFTABLES | NFT_MSG_GETTABLE
    }

    fn buffer_len(&self) -> usize {
        4
    }

    /// `struct nfgenmsg`: family `NFPROTO_UNSPEC` (every family), version `NFNETLINK_V0`,
    /// resource id 0.
    fn serialize(&self, buffer: &mut [u8]) {
        buffer.fill(0);
    }
}

impl NetlinkDeserializable for TableMessage {
    type Error = std::convert::Infallible;

    fn deserialize(header: &NetlinkHeader, _payload: &[u8]) -> Result<Self, Self::Error> {
        Ok(if header.message_type == NFTABLES | NFT_MSG_NEWTABLE {
            TableMessage::Table
        } else {
            TableMessage::Other
        })
    }
}

/// How many nf_tables tables the calling thread's namespace has (needs `CAP_NET_ADMIN` there).
pub fn table_count() -> Result<usize, DumpError> {
    let mut tables = 0;
    netlink::dump(NETLINK_NETFILTER, TableMessage::Get, |message| {
        if matches!(message, TableMessage::Table) {
            tables += 1;
        }
    })?;
    Ok(tables)
}

/// Whether the namespace has no legacy x_tables table of `family` (`ip` or `ip6`): its table
/// list is empty, or the module is not loaded at all. `false` when the list cannot be read.
pub fn no_legacy_tables(family: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/thread-self/net/{family}_tables_names")) {
        Ok(names) => names.trim().is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh namespace has no table; one `nft add table` makes one (root only).
    #[test]
    fn tables_are_counted_in_the_namespace_of_the_thread() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 || std::process::Command::new("nft").arg("--version").output().is_err() {
            eprintln!("SKIPPED tables_are_counted_in_the_namespace_of_the_thread: needs root and nft");
            return;
        }
        let counted = std::thread::spawn(|| {
            // SAFETY: CLONE_NEWNET moves only this thread, which shares nothing namespace-bound
            // with the others and ends right after.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }.expect("unshare");
            let empty = (
                table_count().expect("dump"),
                no_legacy_tables("ip"),
                no_legacy_tables("ip6"),
            );
            let added = std::process::Command::new("nft")
                .args(["add", "table", "inet", "lw_count"])
                .status()
                .expect("nft");
            assert!(added.success());
            (empty, table_count().expect("dump"))
        })
        .join()
        .expect("thread");
        assert_eq!(counted, ((0, true, true), 1));
    }
}
