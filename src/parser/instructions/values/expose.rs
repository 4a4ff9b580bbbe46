//! `EXPOSE` port specs to the image config's `ExposedPorts` keys.
//!
//! Mirrors BuildKit's `parsePortSpecs` (`dockerfile2llb/convert_expose.go`, a fork of
//! Docker's `nat.ParsePortSpec`). The accepted syntax is `docker run -p`'s
//! `[ip:][hostPort:]containerPort[/proto]`, of which only the container port and protocol
//! are kept:
//!
//! * the spec is split on `:`; with more than three parts, the last two are the host and
//!   container ports and the rest is the IP, so bare IPv6 addresses work (`::1:80:80`);
//! * a bracketed IP (`[::1]`) loses its brackets; any IP must parse as IPv4 or IPv6 (a
//!   hostname is an error);
//! * the protocol is case-insensitive, defaults to `tcp`, and must be tcp, udp or sctp;
//! * ports are decimal `0..=65535`, ranges are `start-end` with `start <= end`, and a host
//!   range must have the container range's length unless the container port is single;
//! * a range expands to one key per port, in order.
//!
//! Every error reads `invalid port: "<spec>": <reason>`; BuildKit's vectors pin the
//! `no port specified` reason, the other reasons keep BuildKit's older wording.

use std::fmt;
use std::net::IpAddr;

use super::error::{Error, PortError, Result};
use super::golang::parse_uint;

/// A transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The lowercase name used in `ExposedPorts` keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One exposed port; displays as the image config key, e.g. `80/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortKey {
    pub port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol.as_str())
    }
}

/// Parses several specs in order, concatenating their keys (duplicates are kept, as in
/// BuildKit; the image config map removes them).
pub fn parse_ports<S: AsRef<str>>(specs: &[S]) -> Result<Vec<PortKey>> {
    let mut keys = Vec::new();
    for spec in specs {
        keys.extend(parse_port_spec(spec.as_ref())?);
    }
    Ok(keys)
}

/// Parses one `[ip:][hostPort:]containerPort[/proto]` spec into its exposed ports.
pub fn parse_port_spec(spec: &str) -> Result<Vec<PortKey>> {
    parse_parts(spec).map_err(|reason| Error::InvalidPort {
        spec: spec.to_owned(),
        reason,
    })
}

fn parse_parts(spec: &str) -> Result<Vec<PortKey>, PortError> {
    let (ip, host_port, container) = split_parts(spec);
    let (container, protocol) = split_proto(container)?;
    check_ip(ip)?;
    let (start, end) = parse_range(container)
        .ok_or_else(|| PortError::InvalidContainerPort(container.to_owned()))?;
    if !host_port.is_empty() {
        let (host_start, host_end) = parse_range(host_port)
            .ok_or_else(|| PortError::InvalidHostPort(host_port.to_owned()))?;
        // A host range may differ only when the container port is a single port (the host
        // range is then a pool to allocate from).
        if end - start != host_end - host_start && end != start {
            return Err(PortError::RangeMismatch {
                container: container.to_owned(),
                host: host_port.to_owned(),
            });
        }
    }
    Ok((start..=end)
        .map(|port| PortKey { port, protocol })
        .collect())
}

/// Splits `ip:host:container`, giving the IP every part but the last two.
fn split_parts(spec: &str) -> (&str, &str, &str) {
    let Some((head, container)) = spec.rsplit_once(':') else {
        return ("", "", spec);
    };
    match head.rsplit_once(':') {
        Some((ip, host)) => (ip, host, container),
        None => ("", head, container),
    }
}

/// Splits `port[/proto]`, lowercasing and checking the protocol.
fn split_proto(raw: &str) -> Result<(&str, Protocol), PortError> {
    let (port, proto) = raw.split_once('/').unwrap_or((raw, ""));
    if port.is_empty() {
        return Err(PortError::NoPort);
    }
    let protocol = match proto.to_lowercase().as_str() {
        "" | "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => return Err(PortError::InvalidProto(other.to_owned())),
    };
    Ok((port, protocol))
}

/// Checks the optional host IP, accepting `[ipv6]` as Go's `net.SplitHostPort` does.
fn check_ip(ip: &str) -> Result<(), PortError> {
    if ip.is_empty() {
        return Ok(());
    }
    let invalid = || PortError::InvalidIp(ip.to_owned());
    let bare = match ip.strip_prefix('[') {
        // The first `]` must end the text and no other bracket may appear.
        Some(inner) => inner
            .strip_suffix(']')
            .filter(|i| !i.contains(['[', ']']))
            .ok_or_else(invalid)?,
        None => ip,
    };
    if bare.is_empty() || bare.parse::<IpAddr>().is_err() {
        return Err(invalid());
    }
    Ok(())
}

/// Parses `port` or `start-end` (Go `strconv.ParseUint(s, 10, 16)` for each).
fn parse_range(ports: &str) -> Option<(u16, u16)> {
    let port = |s: &str| parse_uint(s, 10, 16).and_then(|v| u16::try_from(v).ok());
    match ports.split_once('-') {
        None => port(ports).map(|p| (p, p)),
        Some((_, end)) if end.contains('-') => None,
        Some((start, end)) => {
            let (start, end) = (port(start)?, port(end)?);
            (start <= end).then_some((start, end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(spec: &str) -> Vec<String> {
        match parse_port_spec(spec) {
            Ok(keys) => keys.iter().map(ToString::to_string).collect(),
            Err(e) => panic!("{spec}: {e}"),
        }
    }

    fn reason(spec: &str) -> PortError {
        match parse_port_spec(spec) {
            Err(Error::InvalidPort { reason, .. }) => reason,
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn plain_ports_and_protocols() {
        assert_eq!(keys("80"), ["80/tcp"]);
        assert_eq!(keys("53/UDP"), ["53/udp"]);
        assert_eq!(keys("9/sctp"), ["9/sctp"]);
        assert_eq!(keys("0"), ["0/tcp"]);
        assert_eq!(keys("0080/tcp"), ["80/tcp"]);
        assert_eq!(keys("80/"), ["80/tcp"]);
    }

    #[test]
    fn ranges_and_mappings() {
        assert_eq!(keys("7-9/udp"), ["7/udp", "8/udp", "9/udp"]);
        assert_eq!(keys("8080-8081:80"), ["80/tcp"]);
        assert_eq!(keys("1.2.3.4::80-81"), ["80/tcp", "81/tcp"]);
        assert_eq!(keys("[fe80::1]:80:80"), ["80/tcp"]);
        assert_eq!(keys("65535"), ["65535/tcp"]);
    }

    #[test]
    fn rejects_bad_specs() {
        assert_eq!(
            reason("80/icmp"),
            PortError::InvalidProto("icmp".to_owned())
        );
        assert_eq!(reason("/tcp"), PortError::NoPort);
        assert_eq!(reason("80:"), PortError::NoPort);
        assert_eq!(
            reason("host:80:80"),
            PortError::InvalidIp("host".to_owned())
        );
        assert_eq!(
            reason("[::1:80:80"),
            PortError::InvalidIp("[::1".to_owned())
        );
        assert_eq!(reason("[]:80:80"), PortError::InvalidIp("[]".to_owned()));
        assert_eq!(
            reason("65536"),
            PortError::InvalidContainerPort("65536".to_owned())
        );
        assert_eq!(
            reason("9-7"),
            PortError::InvalidContainerPort("9-7".to_owned())
        );
        assert_eq!(
            reason("1-2-3"),
            PortError::InvalidContainerPort("1-2-3".to_owned())
        );
        assert_eq!(
            reason("+80"),
            PortError::InvalidContainerPort("+80".to_owned())
        );
        assert_eq!(reason("x:80"), PortError::InvalidHostPort("x".to_owned()));
        assert_eq!(
            reason("1-3:80-81"),
            PortError::RangeMismatch {
                container: "80-81".to_owned(),
                host: "1-3".to_owned()
            }
        );
    }

    #[test]
    fn error_message_quotes_the_spec() {
        let err = parse_port_spec("a\"b:80/x").map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(r#"invalid port: "a\"b:80/x": invalid proto: x"#.to_owned())
        );
    }

    #[test]
    fn parse_ports_concatenates_in_order() {
        let all = parse_ports(&["2/udp", "1"])
            .map(|k| k.iter().map(ToString::to_string).collect::<Vec<_>>());
        assert_eq!(all, Ok(vec!["2/udp".to_owned(), "1/tcp".to_owned()]));
        assert!(parse_ports(&["1", "nope"]).is_err());
    }
}
