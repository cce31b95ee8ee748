//! HTTP/1.1 as raw bytes: requests written exactly as a browser (or an attacker) would send them,
//! and responses parsed with `httparse`.
//!
//! A client library would normalise the very headers the probes are about (`Host`, `Origin`), so
//! requests are built here byte for byte.

/// The most response head a probe reads before giving up on a service.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most header fields a response may carry to be parsed.
const MAX_HEADERS: usize = 64;

/// An HTTP/1.1 request, written as raw bytes by [`Request::to_bytes`].
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `OPTIONS`, `POST`, `CONNECT`.
    pub method: &'static str,
    /// Request target: `/`, an absolute URI, or `host:port` for CONNECT.
    pub target: String,
    /// Header fields in order, `Host` first.
    pub headers: Vec<(&'static str, String)>,
}

impl Request {
    /// A request with a `Host` field and nothing else yet.
    pub fn new(method: &'static str, target: impl Into<String>, host: impl Into<String>) -> Request {
        Request {
            method,
            target: target.into(),
            headers: vec![("Host", host.into())],
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    /// The wire form: request line, fields, empty line, no body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// One line for logs and evidence: method, target and the fields that matter to the probe.
    pub fn summary(&self) -> String {
        let shown: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| {
                matches!(
                    *n,
                    "Host" | "Origin" | "Upgrade" | "Content-Type" | "Access-Control-Request-Private-Network"
                )
            })
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        format!("{} {} [{}]", self.method, self.target, shown.join(", "))
    }
}

/// A parsed response head plus the prefix of the body that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields in order (names as sent).
    pub headers: Vec<(String, String)>,
    /// The first bytes of the body (bounded), possibly still chunk-framed.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header field, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// `200 OK`.
    pub fn status_line(&self) -> String {
        format!("{} {}", self.status, self.reason).trim_end().to_string()
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the body carries data (a declared non-zero length, or bytes read).
    pub fn has_body(&self) -> bool {
        match self.header("Content-Length").and_then(|v| v.parse::<u64>().ok()) {
            Some(len) => len > 0,
            None => !self.body.is_empty(),
        }
    }

    /// How the body ends, from the head: known length, chunked, or at close.
    pub fn body_framing(&self, request_method: &str) -> BodyFraming {
        if request_method == "HEAD"
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
            || (request_method == "CONNECT" && self.is_success())
        {
            return BodyFraming::None;
        }
        let chunked = self
            .header("Transfer-Encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return BodyFraming::Chunked;
        }
        match self.header("Content-Length").and_then(|v| v.parse::<usize>().ok()) {
            Some(len) => BodyFraming::Length(len),
            None => BodyFraming::UntilClose,
        }
    }
}

/// Where a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (1xx, 204, 304, an accepted CONNECT).
    None,
    /// `Content-Length` bytes.
    Length(usize),
    /// Chunked: ends with the zero-length chunk.
    Chunked,
    /// Until the server closes.
    UntilClose,
}

/// What the first bytes of an answer are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A complete HTTP response head, and how many bytes it took.
    Complete(Response, usize),
    /// Looks like HTTP so far; more bytes needed.
    Partial,
    /// Not HTTP.
    NotHttp,
}

/// Parses a response head from `buf`.
pub fn parse_head(buf: &[u8]) -> Head {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut fields);
    match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let headers = parsed
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect();
            Head::Complete(
                Response {
                    status: parsed.code.unwrap_or(0),
                    reason: parsed.reason.unwrap_or("").to_string(),
                    headers,
                    body: Vec::new(),
                },
                len,
            )
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Head::Partial,
        _ => Head::NotHttp,
    }
}

/// Whether a chunked body prefix already holds its terminating zero-length chunk.
pub fn chunked_complete(body: &[u8]) -> bool {
    body == b"0\r\n\r\n" || body.ends_with(b"\r\n0\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_written_byte_for_byte() {
        let req = Request::new("OPTIONS", "/", "127.0.0.1:80")
            .header("Origin", "http://a.example")
            .header("Access-Control-Request-Private-Network", "true");
        assert_eq!(
            req.to_bytes(),
            b"OPTIONS / HTTP/1.1\r\nHost: 127.0.0.1:80\r\nOrigin: http://a.example\r\n\
              Access-Control-Request-Private-Network: true\r\n\r\n"
                .to_vec()
        );
    }

    #[test]
    fn heads_parse_and_other_protocols_do_not() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\
                    Content-Length: 3\r\n\r\nabc";
        match parse_head(raw) {
            Head::Complete(resp, len) => {
                assert_eq!(resp.status, 401);
                assert_eq!(resp.header("www-authenticate"), Some("Basic realm=\"x\""));
                assert_eq!(&raw[len..], b"abc");
                assert_eq!(resp.body_framing("GET"), BodyFraming::Length(3));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nServer: x"), Head::Partial);
        assert_eq!(parse_head(b"SSH-2.0-OpenSSH_9.2p1\r\n"), Head::NotHttp);
        assert_eq!(parse_head(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x32]), Head::NotHttp);
    }

    #[test]
    fn chunked_end_is_recognised() {
        assert!(chunked_complete(b"3\r\nabc\r\n0\r\n\r\n"));
        assert!(chunked_complete(b"0\r\n\r\n"));
        assert!(!chunked_complete(b"3\r\nabc\r\n"));
    }
}
