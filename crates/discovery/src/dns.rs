//! A minimal DNS client over UDP for locating a domain controller: one SRV query
//! (`_ldap._tcp.dc._msdcs.<domain>`) and one A/AAAA query, against a resolver the caller names.
//!
//! Against off-path spoofing on the LAN: each query has a random transaction id from the
//! operating system's generator and a fresh random source port, the socket is connected (the
//! kernel drops datagrams from any other address), and an answer counts only if it is a
//! response with that id whose question section is exactly the one asked; anything else is
//! ignored and the client keeps waiting until the timeout.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

/// Why a DNS lookup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The UDP exchange with the resolver failed or timed out.
    #[error("DNS query for {name} to {resolver} failed: {reason}")]
    Exchange {
        /// The name queried.
        name: String,
        /// The resolver address.
        resolver: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The resolver answered, but not with a usable record.
    #[error("DNS query for {name} to {resolver} returned no usable record: {reason}")]
    NoRecord {
        /// The name queried.
        name: String,
        /// The resolver address.
        resolver: SocketAddr,
        /// What the answer held instead.
        reason: String,
    },
}

/// A located service: target host name, its address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLocation {
    /// The SRV target (a host name, without the trailing dot).
    pub host: String,
    /// An address of `host`.
    pub address: IpAddr,
    /// The SRV port.
    pub port: u16,
}

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;

/// Looks up the SRV record `name` and resolves its best target (lowest priority, highest weight).
pub async fn locate_service(
    resolver: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<ServiceLocation, DnsError> {
    let answer = query(resolver, name, TYPE_SRV, timeout).await?;
    let mut best: Option<(u16, u16, u16, String)> = None;
    for record in &answer.records {
        if record.rtype != TYPE_SRV {
            continue;
        }
        let Some((priority, weight, port, target)) = parse_srv(&answer.message, record) else {
            continue;
        };
        let better = best
            .as_ref()
            .is_none_or(|(best_priority, best_weight, _, _)| {
                (priority, std::cmp::Reverse(weight))
                    < (*best_priority, std::cmp::Reverse(*best_weight))
            });
        if better {
            best = Some((priority, weight, port, target));
        }
    }
    let Some((_, _, port, host)) = best else {
        return Err(DnsError::NoRecord {
            name: name.to_owned(),
            resolver,
            reason: format!("{} records, none of type SRV", answer.records.len()),
        });
    };
    // Samba and Windows put the target's address in the additional section; ask if they did not.
    let mut address = find_address(&answer, &host);
    if address.is_none() {
        let host_answer = query(resolver, &host, TYPE_A, timeout).await?;
        address = find_address(&host_answer, &host);
    }
    if address.is_none() {
        let host_answer = query(resolver, &host, TYPE_AAAA, timeout).await?;
        address = find_address(&host_answer, &host);
    }
    let address = address.ok_or_else(|| DnsError::NoRecord {
        name: host.clone(),
        resolver,
        reason: "no A or AAAA record for the SRV target".to_owned(),
    })?;
    Ok(ServiceLocation {
        host,
        address,
        port,
    })
}

/// The address of `host` (A, else AAAA) as the site's DNS server (usually the DC) knows it.
pub async fn resolve_host(
    resolver: SocketAddr,
    host: &str,
    timeout: Duration,
) -> Result<IpAddr, DnsError> {
    for rtype in [TYPE_A, TYPE_AAAA] {
        let answer = query(resolver, host, rtype, timeout).await?;
        if let Some(address) = find_address(&answer, host) {
            return Ok(address);
        }
    }
    Err(DnsError::NoRecord {
        name: host.to_owned(),
        resolver,
        reason: "no A or AAAA record".to_owned(),
    })
}

struct Record {
    name: String,
    rtype: u16,
    rdata_offset: usize,
    rdata_len: usize,
}

struct Answer {
    message: Vec<u8>,
    records: Vec<Record>,
}

async fn query(
    resolver: SocketAddr,
    name: &str,
    rtype: u16,
    timeout: Duration,
) -> Result<Answer, DnsError> {
    let fail = |reason: String| DnsError::Exchange {
        name: name.to_owned(),
        resolver,
        reason,
    };
    let mut id_bytes = [0u8; 2];
    getrandom::fill(&mut id_bytes)
        .map_err(|err| fail(format!("no random transaction id: {err}")))?;
    let id = u16::from_be_bytes(id_bytes);
    let request = encode_query(id, name, rtype).ok_or_else(|| fail("invalid name".to_owned()))?;
    let bind: SocketAddr = if resolver.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let exchange = async {
        let socket = UdpSocket::bind(bind).await?;
        socket.connect(resolver).await?;
        socket.send(&request).await?;
        let mut buffer = vec![0u8; 4096];
        loop {
            let n = socket.recv(&mut buffer).await?;
            if answers(&request, &buffer[..n]) {
                buffer.truncate(n);
                return Ok::<_, std::io::Error>(buffer);
            }
        }
    };
    let message = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {timeout:?}")))?
        .map_err(|err| fail(err.to_string()))?;
    // TC: the answer did not fit in UDP; reading it would silently drop records.
    if message[2] & 0x02 != 0 {
        return Err(fail(
            "the answer was truncated (too many records for UDP); set the DC explicitly in the configuration".to_owned(),
        ));
    }
    let rcode = message[3] & 0x0f;
    if rcode != 0 {
        return Err(DnsError::NoRecord {
            name: name.to_owned(),
            resolver,
            reason: format!("response code {rcode} (3 = the name does not exist)"),
        });
    }
    let records = parse_records(&message).ok_or_else(|| fail("malformed response".to_owned()))?;
    Ok(Answer { message, records })
}

/// Whether `message` is a response to `request`: same id, QR set, opcode QUERY, and exactly the
/// request's one question (name compared case-insensitively, type and class equal).
fn answers(request: &[u8], message: &[u8]) -> bool {
    if message.len() < 12 || message[0..2] != request[0..2] {
        return false;
    }
    let is_response = message[2] & 0x80 != 0;
    let opcode = (message[2] >> 3) & 0x0f;
    if !is_response || opcode != 0 || read_u16(message, 4) != Some(1) {
        return false;
    }
    let (Some((asked, asked_end)), Some((got, got_end))) =
        (read_name(request, 12), read_name(message, 12))
    else {
        return false;
    };
    asked.eq_ignore_ascii_case(&got)
        && request.get(asked_end..asked_end + 4).is_some()
        && request.get(asked_end..asked_end + 4) == message.get(got_end..got_end + 4)
}

fn encode_query(id: u16, name: &str, rtype: u16) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 18);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|len| (1..64).contains(len))?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    Some(out)
}

fn read_u16(message: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *message.get(offset)?,
        *message.get(offset + 1)?,
    ]))
}

/// Reads a possibly compressed name; returns it and the offset just past it.
fn read_name(message: &[u8], mut offset: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *message.get(offset)?;
        if len == 0 {
            return Some((labels.join("."), end.unwrap_or(offset + 1)));
        }
        if len & 0xc0 == 0xc0 {
            let pointer = usize::from(read_u16(message, offset)? & 0x3fff);
            end.get_or_insert(offset + 2);
            offset = pointer;
            continue;
        }
        let label = message.get(offset + 1..offset + 1 + usize::from(len))?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        offset += 1 + usize::from(len);
    }
    None
}

fn parse_records(message: &[u8]) -> Option<Vec<Record>> {
    let n_questions = read_u16(message, 4)?;
    let n_records = usize::from(read_u16(message, 6)?)
        + usize::from(read_u16(message, 8)?)
        + usize::from(read_u16(message, 10)?);
    let mut offset = 12;
    for _ in 0..n_questions {
        offset = read_name(message, offset)?.1 + 4;
    }
    let mut records = Vec::with_capacity(n_records);
    for _ in 0..n_records {
        let (name, after) = read_name(message, offset)?;
        let rtype = read_u16(message, after)?;
        let rdata_len = usize::from(read_u16(message, after + 8)?);
        let rdata_offset = after + 10;
        message.get(rdata_offset..rdata_offset + rdata_len)?;
        records.push(Record {
            name,
            rtype,
            rdata_offset,
            rdata_len,
        });
        offset = rdata_offset + rdata_len;
    }
    Some(records)
}

fn parse_srv(message: &[u8], record: &Record) -> Option<(u16, u16, u16, String)> {
    let start = record.rdata_offset;
    let priority = read_u16(message, start)?;
    let weight = read_u16(message, start + 2)?;
    let port = read_u16(message, start + 4)?;
    let (target, _) = read_name(message, start + 6)?;
    Some((priority, weight, port, target))
}

fn find_address(answer: &Answer, host: &str) -> Option<IpAddr> {
    answer.records.iter().find_map(|record| {
        if !record.name.eq_ignore_ascii_case(host) {
            return None;
        }
        let rdata = answer
            .message
            .get(record.rdata_offset..record.rdata_offset + record.rdata_len)?;
        match (record.rtype, rdata.len()) {
            (TYPE_A, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(rdata).ok()?)),
            (TYPE_AAAA, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(rdata).ok()?)),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::dns::*;

    #[test]
    fn parses_a_compressed_srv_answer_with_additional_address() {
        let mut message = encode_query(7, "_ldap._tcp.lab.example", TYPE_SRV).unwrap_or_default();
        message[7] = 1; // One answer.
        message[11] = 1; // One additional record.
        // Answer: name pointer to the question (offset 12), SRV, IN, TTL, rdata.
        message.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
        let target_offset = message.len() + 2 + 6;
        let rdata = [0, 0, 0, 100, 1, 133, 3, b'd', b'c', b'1', 0xc0, 23];
        message.extend_from_slice(&[0, rdata.len() as u8]);
        message.extend_from_slice(&rdata);
        // Additional: pointer to the target name, A, IN, TTL, 10.78.0.2.
        message.extend_from_slice(&[0xc0, target_offset as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        message.extend_from_slice(&[10, 78, 0, 2]);
        let records = parse_records(&message).unwrap_or_default();
        assert_eq!(records.len(), 2);
        let srv = parse_srv(&message, &records[0]);
        assert_eq!(srv, Some((0, 100, 389, "dc1.lab.example".to_owned())));
        let answer = Answer { message, records };
        assert_eq!(
            find_address(&answer, "DC1.lab.example"),
            Some(IpAddr::from([10, 78, 0, 2]))
        );
    }

    #[test]
    fn rejects_truncated_and_looping_messages() {
        let message = encode_query(7, "a.b", TYPE_SRV).unwrap_or_default();
        let mut truncated = message.clone();
        truncated[7] = 1;
        assert!(parse_records(&truncated).is_none());
        // A name that points at itself must not loop forever.
        let looping = [0xc0u8, 0];
        assert!(read_name(&looping, 0).is_none());
        assert!(encode_query(1, "bad..name", TYPE_A).is_none());
    }

    /// A DNS name in wire form, without compression.
    fn wire_name(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    /// A response with header `id` and `flags`, question (`question`, A), and one A record
    /// `owner` -> `ip`.
    fn response(id: u16, flags: u8, question: &str, owner: &str, ip: [u8; 4]) -> Vec<u8> {
        let mut message = encode_query(id, question, TYPE_A).unwrap_or_default();
        message[2] = flags;
        message[7] = 1;
        message.extend_from_slice(&wire_name(owner));
        message.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        message.extend_from_slice(&ip);
        message
    }

    /// Issue 14: a LAN host that sees (or guesses) the transaction id answers first with its
    /// own address for the asked name, but for another question, as a query, or with another
    /// id; only the real answer may be taken.
    #[tokio::test]
    async fn spoofed_answers_with_another_question_flag_or_id_are_ignored() {
        let resolver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = resolver.local_addr().unwrap();
        let host = "ws1.lab.example";
        let server = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for _ in 0..2 {
                let mut buffer = [0u8; 512];
                let (_, client) = resolver.recv_from(&mut buffer).unwrap();
                let id = u16::from_be_bytes([buffer[0], buffer[1]]);
                ids.push(id);
                let attacker = [10, 66, 6, 6];
                for spoof in [
                    // Right id, answer for the host, but the question was another name.
                    response(id, 0x81, "other.lab.example", host, attacker),
                    // Right id and question, but not a response.
                    response(id, 0x01, host, host, attacker),
                    // Right question, wrong id.
                    response(id ^ 0x5a5a, 0x81, host, host, attacker),
                    // Right id, no question at all.
                    {
                        let mut bare = response(id, 0x81, host, host, attacker);
                        bare[5] = 0;
                        let question_len = wire_name(host).len() + 4;
                        bare.drain(12..12 + question_len);
                        bare
                    },
                ] {
                    resolver.send_to(&spoof, client).unwrap();
                }
                // The real answer, its question in another letter case.
                let real = response(id, 0x81, "WS1.lab.EXAMPLE", host, [10, 77, 0, 2]);
                resolver.send_to(&real, client).unwrap();
            }
            ids
        });
        for _ in 0..2 {
            let ip = resolve_host(address, host, Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(ip, IpAddr::from([10, 77, 0, 2]));
        }
        let ids = server.join().unwrap();
        assert_ne!(ids[0], ids[1], "transaction ids repeat");
    }

    #[test]
    fn only_a_response_to_the_exact_question_answers() {
        let request = encode_query(0x1234, "dc.lab.example", TYPE_SRV).unwrap_or_default();
        let mut reply = request.clone();
        reply[2] |= 0x80;
        assert!(answers(&request, &reply));
        let mut other_type = reply.clone();
        let end = other_type.len();
        other_type[end - 3] = TYPE_A as u8;
        assert!(!answers(&request, &other_type));
        assert!(!answers(&request, &reply[..11]));
        let mut two_questions = reply.clone();
        two_questions[5] = 2;
        assert!(!answers(&request, &two_questions));
    }
}
