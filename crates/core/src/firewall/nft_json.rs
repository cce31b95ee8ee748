//! Tolerant reader of `nft -j list ruleset`: object by object, expression by expression.
//!
//! Nothing here fails the whole read. An object without the fields a table, chain, set or rule
//! needs is recorded in [`Ruleset::not_understood`]; inside a rule, a match the model cannot
//! express becomes [`Cond::Opaque`] and a statement becomes [`Item::Opaque`], so the evaluator
//! answers "unknown" for the paths through it, never "blocked".

use super::model::ct;
use super::model::{
    BaseChain, Chain, ChainKind, Cond, Dir, Family, Hook, Item, Nat, NotUnderstood, Origin, Rule, Ruleset, Table,
    Verdict,
};
use super::names;
use super::ranges::{addr_value, prefix_range, RangeSet};
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// Reads every table of `json` for which `keep(family, table)` is true into `out`.
pub fn read(json: &Value, keep: &dyn Fn(&Family, &str) -> bool, out: &mut Ruleset) {
    let Some(objects) = json.get("nftables").and_then(Value::as_array) else {
        out.not_understood
            .push(raw("nft", json, "no \"nftables\" array at the top"));
        return;
    };
    let mut sets: HashMap<(String, String, String), Vec<Value>> = HashMap::new();
    let first = out.tables.len();
    for obj in objects {
        if let Some(t) = obj.get("table") {
            match (
                t.get("family").and_then(Value::as_str),
                t.get("name").and_then(Value::as_str),
            ) {
                (Some(f), Some(n)) if keep(&family(f), n) => out.tables.push(Table {
                    family: family(f),
                    name: n.to_string(),
                    origin: Origin::Nftables,
                    chains: Vec::new(),
                }),
                (Some(_), Some(_)) => {}
                _ => out
                    .not_understood
                    .push(raw("nft table", t, "table without family or name")),
            }
        } else if let Some(s) = obj.get("set").or_else(|| obj.get("map")) {
            if let (Some(f), Some(t), Some(n)) = (str_of(s, "family"), str_of(s, "table"), str_of(s, "name")) {
                let elems = s.get("elem").and_then(Value::as_array).cloned().unwrap_or_default();
                sets.insert((f.into(), t.into(), n.into()), elems);
            }
        }
    }
    if out.tables.len() == first {
        // Every table came from another source (or there is none): no chain or rule to read.
        return;
    }
    for obj in objects {
        if let Some(c) = obj.get("chain") {
            let Some(table) = find_table(&mut out.tables[first..], c) else {
                continue;
            };
            match str_of(c, "name") {
                Some(name) => {
                    let base = base_chain(c);
                    let off_path = base.is_none() || matches!(table.family, Family::Other(_));
                    if off_path {
                        if let Some(hook) = str_of(c, "hook") {
                            // ingress/egress (and arp/bridge/netdev hooks) run outside the IP
                            // paths evaluated here: a drop there is not credited.
                            out.not_understood.push(NotUnderstood {
                                place: format!("{} {}", table.label(), name),
                                what: format!("base chain on hook {hook} is not evaluated"),
                            });
                            out.off_path_chains
                                .push(format!("{} {} (hook {hook})", table.label(), name));
                        }
                    }
                    table.chains.push(Chain {
                        name: name.to_string(),
                        base,
                        rules: Vec::new(),
                    });
                }
                None => out.not_understood.push(raw("nft chain", c, "chain without a name")),
            }
        }
    }
    for obj in objects {
        let Some(r) = obj.get("rule") else { continue };
        let (Some(f), Some(t)) = (str_of(r, "family"), str_of(r, "table")) else {
            out.not_understood
                .push(raw("nft rule", r, "rule without family or table"));
            continue;
        };
        let ctx = Ctx {
            family: f,
            table: t,
            sets: &sets,
        };
        let Some(table) = find_table(&mut out.tables[first..], r) else {
            continue;
        };
        let label = table.label();
        let Some(chain) = str_of(r, "chain").and_then(|n| table.chains.iter_mut().find(|c| c.name == n)) else {
            out.not_understood.push(raw(&label, r, "rule of an unknown chain"));
            continue;
        };
        let place = format!("{label} {}", chain.name);
        let exprs = r
            .get("expr")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut items = Vec::with_capacity(exprs.len());
        let mut text = Vec::with_capacity(exprs.len());
        for e in exprs {
            if let Some(proto) = icmp_header_match(e) {
                // `icmpv6 type …` needs ICMPv6; which type the sender picks is up to it.
                items.push(Item::Cond(Cond::Proto {
                    set: RangeSet::single(proto),
                    negate: false,
                }));
                items.push(Item::Cond(Cond::Chance(render(e))));
            } else {
                let item = expr_item(&ctx, e);
                if let Some(Item::Opaque(what) | Item::Cond(Cond::Opaque(what))) = &item {
                    out.not_understood.push(NotUnderstood {
                        place: place.clone(),
                        what: what.clone(),
                    });
                }
                items.extend(item);
            }
            let shown = render(e);
            if !shown.is_empty() {
                text.push(shown);
            }
        }
        if let Some(comment) = str_of(r, "comment") {
            text.push(format!("comment \"{comment}\""));
        }
        chain.rules.push(Rule {
            items,
            text: text.join(" "),
        });
    }
}

/// The names of the chains nft's JSON lists for one table.
pub fn chain_names(json: &Value, family: &str, table: &str) -> Vec<String> {
    json.get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("chain"))
        .filter(|c| str_of(c, "family") == Some(family) && str_of(c, "table") == Some(table))
        .filter_map(|c| str_of(c, "name").map(str::to_string))
        .collect()
}

fn find_table<'a>(tables: &'a mut [Table], obj: &Value) -> Option<&'a mut Table> {
    let f = family(str_of(obj, "family")?);
    let name = str_of(obj, "table")?;
    tables.iter_mut().find(|t| t.family == f && t.name == name)
}

fn family(name: &str) -> Family {
    match name {
        "ip" => Family::Ip,
        "ip6" => Family::Ip6,
        "inet" => Family::Inet,
        other => Family::Other(other.to_string()),
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn raw(place: &str, v: &Value, why: &str) -> NotUnderstood {
    NotUnderstood {
        place: place.to_string(),
        what: format!("{why}: {}", short(v)),
    }
}

/// Compact JSON of a value, cut to a readable length.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

fn base_chain(c: &Value) -> Option<BaseChain> {
    let hook = match str_of(c, "hook")? {
        "prerouting" => Hook::Prerouting,
        "input" => Hook::Input,
        "forward" => Hook::Forward,
        "output" => Hook::Output,
        "postrouting" => Hook::Postrouting,
        _ => return None,
    };
    let priority = c
        .get("prio")
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or(0);
    let kind = match str_of(c, "type") {
        Some("nat") => ChainKind::Nat,
        Some("route") => ChainKind::Route,
        _ => ChainKind::Filter,
    };
    Some(BaseChain {
        hook,
        priority,
        kind,
        policy_accept: str_of(c, "policy") != Some("drop"),
    })
}

struct Ctx<'a> {
    family: &'a str,
    table: &'a str,
    sets: &'a HashMap<(String, String, String), Vec<Value>>,
}

impl Ctx<'_> {
    /// The elements a right-hand side stands for: a set literal, a named set, or one value.
    fn elements(&self, right: &Value) -> Option<Vec<Value>> {
        if let Some(name) = right.as_str().and_then(|s| s.strip_prefix('@')) {
            let elems = self.sets.get(&(self.family.into(), self.table.into(), name.into()))?;
            return Some(
                elems
                    .iter()
                    .map(|e| e.get("elem").and_then(|x| x.get("val")).unwrap_or(e).clone())
                    .collect(),
            );
        }
        match right.get("set").and_then(Value::as_array) {
            Some(items) => Some(items.clone()),
            None => Some(vec![right.clone()]),
        }
    }
}

fn expr_item(ctx: &Ctx, e: &Value) -> Option<Item> {
    let Some((key, body)) = e.as_object().and_then(|o| o.iter().next()) else {
        return Some(Item::Opaque(short(e)));
    };
    let verdict = |v| Some(Item::Verdict(v));
    let target = || str_of(body, "target").map(str::to_string);
    match key.as_str() {
        "match" => Some(Item::Cond(match_cond(ctx, body).unwrap_or_else(|| {
            if body.get("left").is_some_and(sender_controlled) {
                Cond::Chance(render(e))
            } else {
                Cond::Opaque(short(e))
            }
        }))),
        "accept" => verdict(Verdict::Accept),
        "drop" | "reject" => verdict(Verdict::Drop),
        "return" => verdict(Verdict::Return),
        "continue" => verdict(Verdict::Continue),
        "jump" => Some(target().map_or_else(|| Item::Opaque(short(e)), |t| Item::Verdict(Verdict::Jump(t)))),
        "goto" => Some(target().map_or_else(|| Item::Opaque(short(e)), |t| Item::Verdict(Verdict::Goto(t)))),
        "counter" | "log" | "comment" | "set" | "ct helper" | "ct timeout" | "ct expectation" => None,
        // Rates, quotas and connection counts (`ct count over N`, what `harden --limit-connections`
        // installs): whether a packet matches depends on how much the sender sent or holds open,
        // its own choice — both ways are possible, nothing is unknown.
        "limit" | "quota" | "meter" | "ct count" => Some(Item::Cond(Cond::Chance(render(e)))),
        "notrack" => Some(Item::NoTrack),
        "dnat" => Some(dnat(body).map_or_else(|| Item::Opaque(short(e)), Item::Nat)),
        "redirect" => match body.get("port") {
            None => Some(Item::Nat(Nat::Redirect { port: None })),
            Some(p) => Some(p.as_u64().and_then(|p| u16::try_from(p).ok()).map_or_else(
                || Item::Opaque(short(e)),
                |p| Item::Nat(Nat::Redirect { port: Some(p) }),
            )),
        },
        "snat" | "masquerade" => Some(Item::Nat(Nat::Source)),
        "mangle" => Some(set_mark(body).unwrap_or_else(|| Item::Opaque(short(e)))),
        "vmap" => Some(vmap(ctx, body).unwrap_or_else(|| Item::Opaque(short(e)))),
        "xt" if str_of(body, "type") == Some("match") => Some(Item::Cond(Cond::Opaque(short(e)))),
        _ => Some(Item::Opaque(short(e))),
    }
}

/// Whether a match looks at a part of the packet the model does not track and the sender sets
/// as it likes (TTL/hop limit, lengths, flags, extension headers, options, MAC addresses): such
/// a match lets some packets through and not others, the sender's choice, so both ways are
/// possible without anything being unknown.
fn sender_controlled(left: &Value) -> bool {
    let Some((key, body)) = left.as_object().and_then(|o| o.iter().next()) else {
        return false;
    };
    match key.as_str() {
        "payload" => {
            let known = matches!(
                str_of(body, "field"),
                Some("saddr" | "daddr" | "sport" | "dport" | "protocol" | "nexthdr")
            );
            let header = matches!(
                str_of(body, "protocol"),
                Some(
                    "ip" | "ip6"
                        | "tcp"
                        | "udp"
                        | "udplite"
                        | "sctp"
                        | "dccp"
                        | "icmp"
                        | "icmpv6"
                        | "th"
                        | "ah"
                        | "esp"
                        | "comp"
                        | "ether"
                        | "vlan"
                )
            );
            header && !known
        }
        "exthdr" | "tcp option" | "ip option" | "sctp chunk" => true,
        "meta" => matches!(str_of(body, "key"), Some("pkttype" | "length")),
        _ => false,
    }
}

/// The protocol number of a match on an ICMP header field (`icmp type`, `icmpv6 code` …).
fn icmp_header_match(e: &Value) -> Option<u128> {
    let payload = e.get("match")?.get("left")?.get("payload")?;
    match (str_of(payload, "protocol")?, str_of(payload, "field")?) {
        ("icmp", "type" | "code") => Some(1),
        ("icmpv6", "type" | "code") => Some(58),
        _ => None,
    }
}

fn dnat(body: &Value) -> Option<Nat> {
    let addr = match body.get("addr") {
        None => None,
        Some(a) => Some(a.as_str()?.parse::<IpAddr>().ok()?),
    };
    let port = match body.get("port") {
        None => None,
        Some(p) => Some(u16::try_from(p.as_u64()?).ok()?),
    };
    Some(Nat::Dnat { addr, port })
}

fn set_mark(body: &Value) -> Option<Item> {
    let key = body.get("key")?.get("meta")?;
    if str_of(key, "key") != Some("mark") {
        return None;
    }
    let value = body.get("value")?;
    if let Some(v) = value.as_u64() {
        return Some(Item::SetMark {
            mask: u32::MAX,
            value: u32::try_from(v).ok()?,
        });
    }
    let (op, args) = value.as_object()?.iter().next()?;
    let args = args.as_array()?;
    let is_mark = args.first()?.get("meta").and_then(|m| str_of(m, "key")) == Some("mark");
    let bits = u32::try_from(args.get(1)?.as_u64()?).ok()?;
    match (op.as_str(), is_mark) {
        ("|", true) => Some(Item::SetMark {
            mask: bits,
            value: bits,
        }),
        ("&", true) => Some(Item::SetMark { mask: !bits, value: 0 }),
        ("^", true) => Some(Item::SetMark { mask: 0, value: bits }),
        _ => None,
    }
}

fn vmap(ctx: &Ctx, body: &Value) -> Option<Item> {
    let key = body.get("key")?;
    let data = body.get("data")?;
    let entries: Vec<Value> = match data.get("set").and_then(Value::as_array) {
        Some(e) => e.clone(),
        None => ctx.elements(data)?,
    };
    let mut out = Vec::with_capacity(entries.len());
    // A random or hashed choice (`numgen random mod N`, kube-proxy's endpoint pick): any entry.
    let chance = key.get("numgen").is_some() || key.get("jhash").is_some() || key.get("symhash").is_some();
    for entry in entries {
        let pair = entry.as_array()?;
        let cond = if chance {
            Cond::Chance(format!("{} == {}", render_operand(key), render_operand(pair.first()?)))
        } else {
            cond_for(ctx, key, "==", pair.first()?)?
        };
        let verdict = match pair.get(1)?.as_object()?.iter().next()? {
            (k, _) if k == "accept" => Verdict::Accept,
            (k, _) if k == "drop" || k == "reject" => Verdict::Drop,
            (k, _) if k == "return" => Verdict::Return,
            (k, _) if k == "continue" => Verdict::Continue,
            (k, v) if k == "jump" => Verdict::Jump(str_of(v, "target")?.to_string()),
            (k, v) if k == "goto" => Verdict::Goto(str_of(v, "target")?.to_string()),
            _ => return None,
        };
        out.push((cond, verdict));
    }
    Some(Item::VMap(out))
}

fn match_cond(ctx: &Ctx, body: &Value) -> Option<Cond> {
    cond_for(
        ctx,
        body.get("left")?,
        str_of(body, "op").unwrap_or("=="),
        body.get("right")?,
    )
}

/// A condition `left OP right`, when the model can express it.
fn cond_for(ctx: &Ctx, left: &Value, op: &str, right: &Value) -> Option<Cond> {
    let negate = match op {
        "==" | "in" => false,
        "!=" => true,
        "<" | ">" | "<=" | ">=" => false,
        _ => return None,
    };
    let (lkey, lbody) = left.as_object()?.iter().next()?;
    match lkey.as_str() {
        "concat" if !negate => concat_cond(ctx, lbody.as_array()?, right),
        "meta" => match str_of(lbody, "key")? {
            k @ ("iifname" | "oifname" | "iif" | "oif") => Some(Cond::Iface {
                dir: if k.starts_with('i') { Dir::Src } else { Dir::Dst },
                by_index: !k.ends_with("name"),
                names: strings(ctx, right)?,
                negate,
            }),
            "l4proto" => Some(Cond::Proto {
                set: ints(ctx, right, op, names::protocol)?,
                negate,
            }),
            "nfproto" | "protocol" => {
                let v = strings(ctx, right)?;
                match (v.as_slice(), negate) {
                    ([one], false) if one == "ipv4" || one == "ip" => Some(Cond::Nfproto { v6: false }),
                    ([one], false) if one == "ipv6" || one == "ip6" => Some(Cond::Nfproto { v6: true }),
                    ([one], true) if one == "ipv4" || one == "ip" => Some(Cond::Nfproto { v6: true }),
                    ([one], true) if one == "ipv6" || one == "ip6" => Some(Cond::Nfproto { v6: false }),
                    _ => None,
                }
            }
            "mark" => Some(Cond::Mark {
                mask: u32::MAX,
                value: u32::try_from(right.as_u64()?).ok()?,
                negate,
            }),
            k @ ("skuid" | "skgid") => Some(Cond::Owner {
                gid: k == "skgid",
                set: ints(ctx, right, op, |_| None)?,
                negate,
            }),
            _ => None,
        },
        "payload" => {
            let proto = str_of(lbody, "protocol")?;
            let field = str_of(lbody, "field")?;
            match (proto, field) {
                ("ip" | "ip6", "saddr" | "daddr") => {
                    let v6 = proto == "ip6";
                    let dir = if field == "saddr" { Dir::Src } else { Dir::Dst };
                    Some(Cond::Addr {
                        dir,
                        v6,
                        set: addrs(ctx, right, v6)?,
                        negate,
                    })
                }
                ("ip", "protocol") | ("ip6", "nexthdr") => Some(Cond::Proto {
                    set: ints(ctx, right, op, names::protocol)?,
                    negate,
                }),
                (p, "sport" | "dport") => {
                    let l4 = if p == "th" {
                        None
                    } else {
                        Some(names::protocol(p)? as u8)
                    };
                    let dir = if field == "sport" { Dir::Src } else { Dir::Dst };
                    Some(Cond::Port {
                        dir,
                        proto: l4,
                        set: ints(ctx, right, op, names::service)?,
                        negate,
                    })
                }
                _ => None,
            }
        }
        "ct" => {
            let key = str_of(lbody, "key")?;
            let mut bits = 0;
            for s in strings(ctx, right)? {
                bits |= match (key, s.as_str()) {
                    ("state", "new") => ct::NEW,
                    ("state", "established") => ct::ESTABLISHED,
                    ("state", "related") => ct::RELATED,
                    ("state", "invalid") => ct::INVALID,
                    ("state", "untracked") => ct::UNTRACKED,
                    ("status", "dnat") => ct::STATUS_DNAT,
                    ("status", "snat") => ct::STATUS_SNAT,
                    _ => return None,
                };
            }
            match key {
                "state" => Some(Cond::Ct {
                    states: bits,
                    status: 0,
                    negate,
                }),
                _ => Some(Cond::Ct {
                    states: 0,
                    status: bits,
                    negate,
                }),
            }
        }
        "&" => {
            let args = lbody.as_array()?;
            let inner = args.first()?.get("meta")?;
            if str_of(inner, "key")? != "mark" || !matches!(op, "==" | "!=") {
                return None;
            }
            let mask = u32::try_from(args.get(1)?.as_u64()?).ok()?;
            Some(Cond::Mark {
                mask,
                value: u32::try_from(right.as_u64()?).ok()?,
                negate,
            })
        }
        "fib" => {
            let flags: Vec<&str> = lbody
                .get("flags")?
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            match str_of(lbody, "result")? {
                "type" => {
                    let dir = if flags.contains(&"daddr") {
                        Dir::Dst
                    } else if flags.contains(&"saddr") {
                        Dir::Src
                    } else {
                        return None;
                    };
                    if flags.iter().any(|f| !matches!(*f, "daddr" | "saddr" | "iif")) {
                        return None;
                    }
                    Some(Cond::AddrType {
                        dir,
                        types: strings(ctx, right)?,
                        iface_only: flags.contains(&"iif"),
                        negate,
                    })
                }
                "oif" | "oifname" if flags.contains(&"saddr") && flags.contains(&"iif") => {
                    // `oif missing` is `== false`; `oif exists` is `== true`.
                    let missing = !right.as_bool()?;
                    Some(Cond::RpfMissing {
                        negate: missing == negate,
                    })
                }
                _ => None,
            }
        }
        "socket" if str_of(lbody, "key") == Some("cgroupv2") => Some(Cond::Cgroup {
            path: right.as_str()?.to_string(),
            negate,
        }),
        _ => None,
    }
}

/// A concatenation (`ip daddr . meta l4proto . th dport`) compared with a set, a map's keys or
/// one element: any element whose every component holds.
fn concat_cond(ctx: &Ctx, parts: &[Value], right: &Value) -> Option<Cond> {
    let mut any = Vec::new();
    for element in ctx.elements(right)? {
        let values = element.get("concat")?.as_array()?;
        if values.len() != parts.len() {
            return None;
        }
        let all = parts
            .iter()
            .zip(values)
            .map(|(part, value)| cond_for(ctx, part, "==", value))
            .collect::<Option<Vec<Cond>>>()?;
        any.push(Cond::All(all));
    }
    Some(Cond::Any(any))
}

fn strings(ctx: &Ctx, right: &Value) -> Option<Vec<String>> {
    let elems = ctx.elements(right)?;
    elems
        .iter()
        .map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) if a.len() == 1 => a[0].as_str().map(str::to_string),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .or_else(|| {
            right
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        })
}

/// Integer values (ports, protocols, uids) with names resolved by `name`; comparison operators
/// become ranges.
fn ints(ctx: &Ctx, right: &Value, op: &str, name: fn(&str) -> Option<u32>) -> Option<RangeSet> {
    let one = |v: &Value| -> Option<u128> {
        match v {
            Value::Number(n) => n.as_u64().map(u128::from),
            Value::String(s) => s.parse::<u128>().ok().or_else(|| name(s).map(u128::from)),
            _ => None,
        }
    };
    if matches!(op, "<" | ">" | "<=" | ">=") {
        let v = one(right)?;
        return Some(match op {
            "<" => RangeSet::range(0, v.checked_sub(1)?),
            "<=" => RangeSet::range(0, v),
            ">" => RangeSet::range(v + 1, u32::MAX as u128),
            _ => RangeSet::range(v, u32::MAX as u128),
        });
    }
    let mut ranges = Vec::new();
    for e in ctx.elements(right)? {
        if let Some(r) = e.get("range").and_then(Value::as_array) {
            ranges.push((one(r.first()?)?, one(r.get(1)?)?));
        } else {
            let v = one(&e)?;
            ranges.push((v, v));
        }
    }
    Some(RangeSet::from_ranges(ranges))
}

fn addrs(ctx: &Ctx, right: &Value, v6: bool) -> Option<RangeSet> {
    let ip = |v: &Value| -> Option<IpAddr> {
        let ip: IpAddr = v.as_str()?.parse().ok()?;
        (ip.is_ipv6() == v6).then_some(ip)
    };
    let mut ranges = Vec::new();
    for e in ctx.elements(right)? {
        if let Some(p) = e.get("prefix") {
            let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
            ranges.push(prefix_range(ip(p.get("addr")?)?, len));
        } else if let Some(r) = e.get("range").and_then(Value::as_array) {
            ranges.push((addr_value(ip(r.first()?)?), addr_value(ip(r.get(1)?)?)));
        } else {
            let a = addr_value(ip(&e)?);
            ranges.push((a, a));
        }
    }
    Some(RangeSet::from_ranges(ranges))
}

/// An expression in nft's own syntax, for evidence (statements without effect on the verdict,
/// such as counters, are left out).
pub fn render(e: &Value) -> String {
    let Some((key, body)) = e.as_object().and_then(|o| o.iter().next()) else {
        return short(e);
    };
    match key.as_str() {
        "match" => {
            let left = body.get("left").map(render_operand).unwrap_or_default();
            let right = body.get("right").map(render_operand).unwrap_or_default();
            match str_of(body, "op").unwrap_or("==") {
                "==" | "in" => format!("{left} {right}"),
                op => format!("{left} {op} {right}"),
            }
        }
        "counter" | "comment" => String::new(),
        "accept" | "drop" | "return" | "continue" | "notrack" | "masquerade" | "log" => key.clone(),
        "reject" => "reject".into(),
        "jump" | "goto" => format!("{key} {}", str_of(body, "target").unwrap_or("?")),
        "dnat" | "snat" => {
            let addr = body.get("addr").map(render_operand).unwrap_or_default();
            match body.get("port") {
                Some(p) => format!("{key} to {addr}:{}", render_operand(p)),
                None => format!("{key} to {addr}"),
            }
        }
        "redirect" => match body.get("port") {
            Some(p) => format!("redirect to :{}", render_operand(p)),
            None => "redirect".into(),
        },
        "mangle" => format!(
            "{} set {}",
            body.get("key").map(render_operand).unwrap_or_default(),
            body.get("value").map(render_operand).unwrap_or_default()
        ),
        "vmap" => format!(
            "{} vmap {}",
            body.get("key").map(render_operand).unwrap_or_default(),
            body.get("data").map(render_operand).unwrap_or_default()
        ),
        "ct count" => format!(
            "ct count {}{}",
            if body.get("inv").and_then(Value::as_bool) == Some(true) {
                "over "
            } else {
                ""
            },
            body.get("val").map(render_operand).unwrap_or_default()
        ),
        "limit" => format!(
            "limit rate {}/{}",
            body.get("rate").map(render_operand).unwrap_or_default(),
            str_of(body, "per").unwrap_or("second")
        ),
        _ => short(e),
    }
}

fn render_operand(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => {
            if *b {
                "exists".into()
            } else {
                "missing".into()
            }
        }
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(render_operand).collect::<Vec<_>>().join(","),
        Value::Object(o) => {
            let Some((k, b)) = o.iter().next() else {
                return "{}".into();
            };
            match k.as_str() {
                "meta" => match str_of(b, "key").unwrap_or("?") {
                    k @ ("iifname" | "oifname" | "iif" | "oif") => k.to_string(),
                    k => format!("meta {k}"),
                },
                "payload" => format!(
                    "{} {}",
                    str_of(b, "protocol").unwrap_or("?"),
                    str_of(b, "field").unwrap_or("?")
                ),
                "ct" => format!("ct {}", str_of(b, "key").unwrap_or("?")),
                "prefix" => format!(
                    "{}/{}",
                    b.get("addr").map(render_operand).unwrap_or_default(),
                    b.get("len").map(render_operand).unwrap_or_default()
                ),
                "range" => b
                    .as_array()
                    .map(|r| r.iter().map(render_operand).collect::<Vec<_>>().join("-"))
                    .unwrap_or_default(),
                "set" => match b.as_array() {
                    Some(items) => format!(
                        "{{ {} }}",
                        items.iter().map(render_set_item).collect::<Vec<_>>().join(", ")
                    ),
                    None => render_operand(b),
                },
                "fib" => {
                    let flags = b
                        .get("flags")
                        .map(render_operand)
                        .unwrap_or_default()
                        .replace(',', " . ");
                    format!("fib {flags} {}", str_of(b, "result").unwrap_or("?"))
                }
                "socket" => format!(
                    "socket {} level {}",
                    str_of(b, "key").unwrap_or("?"),
                    b.get("level").map(render_operand).unwrap_or_default()
                ),
                "&" | "|" | "^" => b
                    .as_array()
                    .map(|a| a.iter().map(render_operand).collect::<Vec<_>>().join(&format!(" {k} ")))
                    .unwrap_or_default(),
                _ => short(v),
            }
        }
    }
}

fn render_set_item(v: &Value) -> String {
    match v.as_array() {
        Some(pair) if pair.len() == 2 => format!("{} : {}", render_operand(&pair[0]), render(&pair[1])),
        _ => render_operand(v),
    }
}
