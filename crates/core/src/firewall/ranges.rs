//! Sets of integers as sorted, disjoint, inclusive ranges: the domain of one packet field
//! (addresses as `u128`, ports, protocols, uids) that the evaluator narrows rule by rule.

use std::net::IpAddr;
use std::sync::Arc;

/// A set of `u128` values stored as sorted, disjoint, non-adjacent inclusive ranges. Shared
/// (cloning is a reference count), since the evaluator copies packet sets at every split.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct RangeSet(Arc<[(u128, u128)]>);

impl RangeSet {
    /// The empty set.
    pub fn empty() -> RangeSet {
        RangeSet(Arc::from([]))
    }

    /// `lo..=hi` (empty when `lo > hi`).
    pub fn range(lo: u128, hi: u128) -> RangeSet {
        if lo > hi {
            RangeSet::empty()
        } else {
            RangeSet(Arc::from([(lo, hi)]))
        }
    }

    /// One value.
    pub fn single(v: u128) -> RangeSet {
        RangeSet(Arc::from([(v, v)]))
    }

    /// Builds a set from ranges in any order, overlapping or not.
    pub fn from_ranges(mut ranges: Vec<(u128, u128)>) -> RangeSet {
        ranges.retain(|(a, b)| a <= b);
        ranges.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        RangeSet(out.into())
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.0
    }

    /// Whether the set has no value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The smallest value, if any.
    pub fn first(&self) -> Option<u128> {
        self.0.first().map(|r| r.0)
    }

    /// Whether the set holds exactly one value.
    pub fn single_value(&self) -> Option<u128> {
        match &*self.0 {
            [(a, b)] if a == b => Some(*a),
            _ => None,
        }
    }

    /// Whether `v` is in the set.
    pub fn contains(&self, v: u128) -> bool {
        // Sorted and disjoint: the first range not ending before `v` is the only candidate.
        let i = self.0.partition_point(|&(_, b)| b < v);
        self.0.get(i).is_some_and(|&(a, _)| a <= v)
    }

    /// Whether the sets share a value (no allocation).
    pub fn intersects(&self, other: &RangeSet) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.0.len() && j < other.0.len() {
            let (a1, b1) = self.0[i];
            let (a2, b2) = other.0[j];
            if a1.max(a2) <= b1.min(b2) {
                return true;
            }
            if b1 < b2 {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }

    /// Whether every value of `self` is in `other` (no allocation).
    pub fn is_subset(&self, other: &RangeSet) -> bool {
        let mut j = 0;
        for &(a, b) in self.0.iter() {
            while j < other.0.len() && other.0[j].1 < a {
                j += 1;
            }
            match other.0.get(j) {
                Some(&(c, d)) if c <= a && b <= d => {}
                _ => return false,
            }
        }
        true
    }

    /// Values in both sets.
    pub fn intersect(&self, other: &RangeSet) -> RangeSet {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.0.len() && j < other.0.len() {
            let (a1, b1) = self.0[i];
            let (a2, b2) = other.0[j];
            let (lo, hi) = (a1.max(a2), b1.min(b2));
            if lo <= hi {
                out.push((lo, hi));
            }
            if b1 < b2 {
                i += 1;
            } else {
                j += 1;
            }
        }
        RangeSet(out.into())
    }

    /// Values of `self` not in `other`.
    pub fn subtract(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        for &(a, b) in self.0.iter() {
            let mut lo = a;
            let mut done = false;
            for &(c, d) in other.0.iter() {
                if d < lo || c > b {
                    continue;
                }
                if c > lo {
                    out.push((lo, c - 1));
                }
                if d >= b {
                    done = true;
                    break;
                }
                lo = d + 1;
            }
            if !done {
                out.push((lo, b));
            }
        }
        RangeSet(out.into())
    }

    /// Values in either set.
    pub fn union(&self, other: &RangeSet) -> RangeSet {
        RangeSet::from_ranges(self.0.iter().chain(other.0.iter()).copied().collect())
    }
}

/// An address as the evaluator's integer: IPv4 in the low 32 bits, IPv6 as is.
pub fn addr_value(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The inclusive range of a prefix `ip/len` (a too-long length is clamped to a host prefix).
pub fn prefix_range(ip: IpAddr, len: u8) -> (u128, u128) {
    let bits: u32 = if ip.is_ipv4() { 32 } else { 128 };
    let len = u32::from(len).min(bits);
    let v = addr_value(ip);
    let host_bits = bits - len;
    let mask: u128 = if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (v & !mask, v | mask)
}

/// The address for an integer of the given family.
pub fn value_addr(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(v.into())
    } else {
        IpAddr::V4((v as u32).into())
    }
}

/// Every address of a family: `0.0.0.0/0` or `::/0`.
pub fn all_addrs(v6: bool) -> RangeSet {
    RangeSet::range(0, if v6 { u128::MAX } else { u32::MAX as u128 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtract_and_intersect_partition_the_set() {
        let a = RangeSet::from_ranges(vec![(0, 100), (200, 300)]);
        let b = RangeSet::from_ranges(vec![(50, 250)]);
        assert_eq!(a.intersect(&b).ranges(), &[(50, 100), (200, 250)]);
        assert_eq!(a.subtract(&b).ranges(), &[(0, 49), (251, 300)]);
        assert_eq!(a.intersect(&b).union(&a.subtract(&b)), a);
        assert!(a.intersects(&b) && !a.is_subset(&b) && a.intersect(&b).is_subset(&b));
        assert!(!RangeSet::range(101, 199).intersects(&a) && RangeSet::range(210, 220).is_subset(&a));
        assert!(RangeSet::range(5, 5).subtract(&RangeSet::range(0, 10)).is_empty());
        assert_eq!(
            RangeSet::range(0, u128::MAX)
                .subtract(&RangeSet::single(u128::MAX))
                .ranges(),
            &[(0, u128::MAX - 1)]
        );
    }

    #[test]
    fn prefixes_cover_their_block() {
        let (lo, hi) = prefix_range("127.1.2.3".parse().unwrap(), 8);
        assert_eq!(
            (value_addr(lo, false).to_string(), value_addr(hi, false).to_string()),
            ("127.0.0.0".into(), "127.255.255.255".into())
        );
        assert_eq!(prefix_range("::".parse().unwrap(), 0), (0, u128::MAX));
    }
}
