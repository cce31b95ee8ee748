//! Protocol and service names as nft and iptables print them.

/// The IP protocol number of a name (`tcp` → 6).
pub fn protocol(name: &str) -> Option<u32> {
    Some(match name.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" | "icmp6" => 58,
        "dccp" => 33,
        "sctp" => 132,
        "udplite" => 136,
        _ => return None,
    })
}

/// The port of a well-known service name (the few that appear in stock rulesets).
pub fn service(name: &str) -> Option<u32> {
    Some(match name {
        "ssh" => 22,
        "domain" => 53,
        "bootps" => 67,
        "bootpc" => 68,
        "http" => 80,
        "ntp" => 123,
        "https" => 443,
        "mdns" => 5353,
        "dhcpv6-client" => 546,
        "dhcpv6-server" => 547,
        "ssdp" => 1900,
        _ => return None,
    })
}
