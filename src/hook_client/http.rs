//! The hook side's HTTP client: one HTTP/1.1 request over a plain `TcpStream`, bounded by one deadline.
//!
//! `hivewatch hook` runs once per agent action, so it cannot afford an async runtime or a TLS stack: this client
//! connects, writes the whole request with `Connection: close`, reads the status line and hangs up. The
//! receiver answers only after it has committed the events, so the status line is all the hook needs.
//! Only `http://host[:port][/base]` endpoints are supported; hivewatch listens on loopback by default.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Where the receiver listens: `http://host:port` plus an optional base path (for a reverse proxy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As written in the URL, brackets included for IPv6; this is also the `Host` header.
    authority: String,
    host: String,
    port: u16,
    base_path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let url = url.trim();
        // Messages never echo a URL that could hold a password.
        if url.contains('@') {
            return Err(
                "the endpoint URL must not hold user info: pass a token with --token".into(),
            );
        }
        let Some(rest) = url.strip_prefix("http://") else {
            if url.starts_with("https://") {
                return Err(format!(
                    "endpoint {url} uses https, which the hook client does not support: \
                     use http:// (hivewatch listens on loopback) or a local TLS-terminating proxy"
                ));
            }
            return Err(format!("endpoint {url:?} is not an http:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("endpoint {url:?} has no host"));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("endpoint {url:?} has an invalid port"))?;
        Ok(Endpoint {
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// The URL of `path` on this endpoint, for messages.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}{}", self.authority, self.base_path, path)
    }

    fn addrs(&self) -> Result<Vec<SocketAddr>, HttpError> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|e| HttpError::Resolve(self.host.clone(), e))
    }
}

/// `host:port`, `host`, `[v6]:port` or `[v6]`; port 80 when absent.
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, 80)),
            _ => Some((host, after.strip_prefix(':')?.parse().ok()?)),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, port.parse().ok()?)),
        None => Some((authority, 80)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, #[source] io::Error),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, #[source] io::Error),
    #[error("no answer within {0} ms")]
    Timeout(u128),
    #[error("connection failed: {0}")]
    Io(#[source] io::Error),
    #[error("the answer is not HTTP")]
    NotHttp,
}

pub struct Request<'a> {
    pub method: &'static str,
    /// Path below the endpoint's base path, starting with `/`.
    pub path: &'a str,
    pub token: Option<&'a str>,
    /// A JSON body; `None` sends no body.
    pub json: Option<&'a [u8]>,
}

/// Sends `req` and returns the answer's status code; everything, connecting included, within `timeout`.
pub fn send(endpoint: &Endpoint, req: &Request<'_>, timeout: Duration) -> Result<u16, HttpError> {
    let deadline = Deadline::new(timeout);
    let mut stream = connect(endpoint, &deadline)?;
    let message = encode(endpoint, req);
    if let Err(write_error) = write_all(&mut stream, &message, &deadline) {
        // A receiver may answer (413, say) and close before reading the whole body: its answer, when there is
        // one, says more than the broken pipe.
        return read_status(&mut stream, &deadline).map_err(|_| write_error);
    }
    read_status(&mut stream, &deadline)
}

struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    fn new(total: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + total,
            total,
        }
    }

    /// Time left, or a timeout error once none is (a zero timeout would mean "block forever" to std).
    fn remaining(&self) -> Result<Duration, HttpError> {
        match self.at.checked_duration_since(Instant::now()) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(self.expired()),
        }
    }

    fn expired(&self) -> HttpError {
        HttpError::Timeout(self.total.as_millis())
    }

    fn io_error(&self, e: io::Error) -> HttpError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.expired(),
            _ => HttpError::Io(e),
        }
    }
}

fn connect(endpoint: &Endpoint, deadline: &Deadline) -> Result<TcpStream, HttpError> {
    let mut last = None;
    // `localhost` may resolve to ::1 and 127.0.0.1; a refused address costs microseconds, so try each in turn.
    for addr in endpoint.addrs()? {
        match TcpStream::connect_timeout(&addr, deadline.remaining()?) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut) => return Err(deadline.expired()),
            Err(e) => last = Some(e),
        }
    }
    let err = last.unwrap_or_else(|| io::Error::other("no address"));
    Err(HttpError::Connect(endpoint.authority.clone(), err))
}

fn encode(endpoint: &Endpoint, req: &Request<'_>) -> Vec<u8> {
    let body = req.json.unwrap_or_default();
    let mut head = format!(
        "{} {}{} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nuser-agent: hivewatch-hook/{}\r\n",
        req.method,
        endpoint.base_path,
        req.path,
        endpoint.authority,
        env!("CARGO_PKG_VERSION"),
    );
    if req.json.is_some() {
        head.push_str("content-type: application/json\r\n");
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    if let Some(token) = req.token {
        head.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    let mut message = Vec::with_capacity(head.len() + body.len());
    message.extend_from_slice(head.as_bytes());
    message.extend_from_slice(body);
    message
}

/// Writes in a loop so that the deadline, not a per-call timeout, bounds a large body.
fn write_all(stream: &mut TcpStream, mut buf: &[u8], deadline: &Deadline) -> Result<(), HttpError> {
    while !buf.is_empty() {
        stream
            .set_write_timeout(Some(deadline.remaining()?))
            .map_err(HttpError::Io)?;
        match stream.write(buf) {
            Ok(0) => return Err(HttpError::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.io_error(e)),
        }
    }
    Ok(())
}

/// Reads up to the end of the status line (`HTTP/1.1 200 OK`) and returns the code.
fn read_status(stream: &mut TcpStream, deadline: &Deadline) -> Result<u16, HttpError> {
    let mut buf = [0u8; 256];
    let mut len = 0;
    loop {
        if let Some(end) = buf[..len].iter().position(|&b| b == b'\n') {
            let code = parse_status(&buf[..end]).ok_or(HttpError::NotHttp)?;
            if !(100..200).contains(&code) {
                return Ok(code);
            }
            // An interim answer (103 Early Hints, …): skip its head and read the final status line.
            skip_head(stream, &mut buf, &mut len, deadline)?;
            continue;
        }
        if len == buf.len() {
            return Err(HttpError::NotHttp);
        }
        len += read_some(stream, &mut buf[len..], deadline)?;
    }
}

/// Drops an interim answer's head (up to its blank line) from `buf`, reading more as needed.
fn skip_head(
    stream: &mut TcpStream,
    buf: &mut [u8; 256],
    len: &mut usize,
    deadline: &Deadline,
) -> Result<(), HttpError> {
    loop {
        if let Some(end) = buf[..*len].windows(4).position(|w| w == b"\r\n\r\n") {
            buf.copy_within(end + 4..*len, 0);
            *len -= end + 4;
            return Ok(());
        }
        // Keep the last 3 bytes: the blank line may straddle two reads.
        let keep = (*len).min(3);
        buf.copy_within(*len - keep..*len, 0);
        *len = keep;
        *len += read_some(stream, &mut buf[*len..], deadline)?;
    }
}

/// One read within the deadline: the number of bytes read, never 0 (a closed connection is an error).
fn read_some(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: &Deadline,
) -> Result<usize, HttpError> {
    loop {
        stream
            .set_read_timeout(Some(deadline.remaining()?))
            .map_err(HttpError::Io)?;
        match stream.read(buf) {
            Ok(0) => return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.io_error(e)),
        }
    }
}

fn parse_status(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_ascii_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// What a delivery attempt means for the data it carried.
#[derive(Debug)]
pub enum Outcome {
    /// 2xx: the receiver has it.
    Delivered,
    /// A 4xx that retrying cannot fix (the payload itself is bad or too large): drop it.
    Rejected(u16),
    /// Unreachable, too slow, 5xx, or a 4xx that a later attempt may pass (auth, rate limit, wrong path):
    /// keep it for later.
    Retry(String),
}

impl Outcome {
    pub fn of(result: Result<u16, HttpError>) -> Outcome {
        match result {
            Ok(code) if (200..300).contains(&code) => Outcome::Delivered,
            // 401/403: the token is wrong or missing, 404: the endpoint path is wrong; both are fixed by
            // configuration, after which the kept events can still be delivered.
            Ok(code @ (401 | 403 | 404 | 408 | 425 | 429)) => {
                Outcome::Retry(format!("the receiver answered HTTP {code}"))
            }
            Ok(code) if (400..500).contains(&code) => Outcome::Rejected(code),
            Ok(code) => Outcome::Retry(format!("the receiver answered HTTP {code}")),
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }
}

/// A receiver to deliver to: where, with which token, and how long one request may take.
pub struct Target {
    pub endpoint: Endpoint,
    pub token: Option<String>,
    pub timeout: Duration,
}

impl Target {
    pub fn post_json(&self, path: &str, body: &[u8]) -> Outcome {
        Outcome::of(self.send("POST", path, Some(body)))
    }

    pub fn get(&self, path: &str) -> Result<u16, HttpError> {
        self.send("GET", path, None)
    }

    fn send(
        &self,
        method: &'static str,
        path: &str,
        json: Option<&[u8]>,
    ) -> Result<u16, HttpError> {
        let req = Request {
            method,
            path,
            token: self.token.as_deref(),
            json,
        };
        send(&self.endpoint, &req, self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("http://127.0.0.1:4318").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.base_path.as_str()),
            ("127.0.0.1", 4318, "")
        );
        let e = Endpoint::parse("http://localhost/hw/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.base_path.as_str()),
            ("localhost", 80, "/hw")
        );
        assert_eq!(e.url("/healthz"), "http://localhost/hw/healthz");
        let e = Endpoint::parse("http://[::1]:9000").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9000));
        assert!(
            Endpoint::parse("https://x:1")
                .unwrap_err()
                .contains("https")
        );
        assert!(Endpoint::parse("http://x:notaport").is_err());
        assert!(Endpoint::parse("http://u:p@x:1").is_err());
        assert!(Endpoint::parse("ftp://x").is_err());
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status(b"HTTP/1.1 20 OK"), None);
    }

    #[test]
    fn outcomes_classify() {
        assert!(matches!(Outcome::of(Ok(204)), Outcome::Delivered));
        assert!(matches!(Outcome::of(Ok(400)), Outcome::Rejected(400)));
        assert!(matches!(Outcome::of(Ok(413)), Outcome::Rejected(413)));
        assert!(matches!(Outcome::of(Ok(401)), Outcome::Retry(_)));
        assert!(matches!(Outcome::of(Ok(503)), Outcome::Retry(_)));
        assert!(matches!(
            Outcome::of(Err(HttpError::Timeout(250))),
            Outcome::Retry(_)
        ));
    }
}
