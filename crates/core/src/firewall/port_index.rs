//! Which paths of an answer carry a destination port, found without scanning every path.
//!
//! A query over every port answers many services at once (`questions::Inbound`), but a host
//! with 100,000 sockets then reads that answer 100,000 times, and a kube-proxy ruleset splits it
//! into thousands of paths: scanning them all per service made the audit spend most of its time
//! there. The index cuts the port axis at every bound of every path's ports; each piece lists the
//! paths that carry it, so a port finds its paths by one binary search.

use super::verdict::Leaf;

/// The most (piece, path) entries an index holds; a ruleset that would need more (thousands of
/// paths each spread over thousands of port ranges) is answered by scanning instead.
const MAX_ENTRIES: usize = 4_000_000;

/// The ports a path's packets were sent to: before a rewrite when one applied.
fn sent_ports(l: &Leaf) -> &[(u128, u128)] {
    match &l.rewrite {
        Some(rw) => rw.original_dport.ranges(),
        None => l.packets.dport.ranges(),
    }
}

/// The paths of one answer by destination port (as sent).
#[derive(Debug)]
pub struct PortIndex {
    /// The first port of each piece, ascending; the first is 0.
    starts: Vec<u32>,
    /// The paths (indexes into the answer's leaves, ascending) carrying each piece's ports;
    /// `None` when the index would have been too large: every path is then a candidate.
    paths: Option<Vec<Vec<u32>>>,
    /// Every path, for the unindexed case.
    all: Vec<u32>,
}

impl PortIndex {
    /// Indexes `leaves` by the ports they carry.
    pub fn new(leaves: &[Leaf]) -> PortIndex {
        let port = |v: u128| u32::try_from(v.min(65_536)).unwrap_or(65_536);
        let mut starts: Vec<u32> = vec![0];
        for l in leaves {
            for &(a, b) in sent_ports(l) {
                starts.push(port(a));
                starts.push(port(b.saturating_add(1)));
            }
        }
        starts.retain(|&s| s <= 65_535);
        starts.sort_unstable();
        starts.dedup();
        let all: Vec<u32> = (0..leaves.len()).filter_map(|i| u32::try_from(i).ok()).collect();
        let mut paths: Vec<Vec<u32>> = vec![Vec::new(); starts.len()];
        let mut entries = 0usize;
        for (i, l) in all.iter().zip(leaves) {
            for &(a, b) in sent_ports(l) {
                let (a, b) = (port(a), port(b));
                let first = starts.partition_point(|&s| s < a);
                for piece in paths
                    .iter_mut()
                    .skip(first)
                    .take(starts[first..].partition_point(|&s| s <= b))
                {
                    piece.push(*i);
                    entries += 1;
                }
                if entries > MAX_ENTRIES {
                    return PortIndex {
                        starts,
                        paths: None,
                        all,
                    };
                }
            }
        }
        PortIndex {
            starts,
            paths: Some(paths),
            all,
        }
    }

    /// The paths that may carry `port` (every path that does, in the answer's order; the
    /// caller still checks the protocol).
    pub fn candidates(&self, port: u16) -> &[u32] {
        let Some(paths) = &self.paths else {
            return &self.all;
        };
        let piece = self.starts.partition_point(|&s| s <= u32::from(port)).saturating_sub(1);
        paths.get(piece).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::eval::Packets;
    use crate::firewall::ranges::RangeSet;
    use crate::firewall::verdict::Outcome;

    fn leaf(ports: &[(u128, u128)]) -> Leaf {
        let mut packets = Packets::arriving(false, "eth0", RangeSet::range(0, 10), RangeSet::range(0, 10));
        packets.dport = RangeSet::from_ranges(ports.to_vec());
        Leaf {
            outcome: Outcome::Delivered,
            packets,
            evidence: Vec::new(),
            assumed: Vec::new(),
            rewrite: None,
        }
    }

    /// The index finds exactly what a scan finds, for every port.
    #[test]
    fn every_port_finds_the_paths_a_scan_finds() {
        let leaves = vec![
            leaf(&[(80, 80)]),
            leaf(&[(0, 79), (81, 30000), (30002, 65535)]),
            leaf(&[(30001, 30001)]),
            leaf(&[(0, 65535)]),
            leaf(&[]),
        ];
        let index = PortIndex::new(&leaves);
        for port in 0..=65535u16 {
            let scanned: Vec<u32> = (0..leaves.len() as u32)
                .filter(|&i| leaves[i as usize].packets.dport.contains(port.into()))
                .collect();
            assert_eq!(index.candidates(port), scanned.as_slice(), "port {port}");
        }
    }
}
