//! JSON bodies for the errors actix-http answers by itself (SPEC §2:
//! "every error is JSON, including those raised below the handlers").
//!
//! Some requests never reach a handler: a request line with a raw 0xff
//! byte, more headers than the parser holds, a head that does not arrive
//! in time. actix-http's HTTP/1 codec answers those itself — 400, 431,
//! 408 — with an empty body and `connection: close`, and offers no hook to
//! change that answer. [`JsonErrors`] wraps each connection's stream and
//! gives such an answer the JSON error body on its way out. It recognises
//! only that shape (an error status, `content-length: 0`, no
//! `content-type`, the last bytes of a write): every answer a handler
//! produces carries a typed body already and passes through untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's stream whose codec-level error answers get JSON bodies.
pub struct JsonErrors<T> {
    io: T,
    /// A rewritten answer being written: its bytes, how many are written,
    /// and how many bytes of the caller's buffer it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> JsonErrors<T> {
    pub fn new(io: T) -> Self {
        JsonErrors { io, pending: None }
    }
}

/// What the codec's bare error answers mean to a client.
fn explain(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => (
            "bad_request",
            "malformed HTTP request: the request line, the path's bytes or a header could not be parsed",
        ),
        408 => ("request_timeout", "the request head did not arrive in time"),
        413 => ("payload_too_large", "request too large"),
        431 => (
            "request_header_fields_too_large",
            "too many or too large request headers",
        ),
        505 => ("http_version_not_supported", "HTTP version not supported"),
        _ => ("http_error", "the request could not be handled"),
    }
}

/// If `buf` ends with a bare error answer of the codec, `buf` with that
/// answer given a JSON body.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let start = buf.windows(9).rposition(|w| w == b"HTTP/1.1 ")?;
    let head = std::str::from_utf8(&buf[start..]).ok()?;
    let status: u16 = head.get(9..12)?.parse().ok()?;
    if status < 400 {
        return None;
    }
    let lower = head.to_ascii_lowercase();
    if !lower.contains("\r\ncontent-length: 0\r\n") || lower.contains("\r\ncontent-type:") {
        return None;
    }
    let (code, message) = explain(status);
    let body =
        json!({ "error": message, "code": code, "status": status, "detail": message }).to_string();
    // The head as the codec wrote it, with the body's type and length.
    let head = head
        .strip_suffix("\r\n\r\n")?
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let mut out = buf[..start].to_vec();
    out.extend_from_slice(
        format!(
            "{head}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    Some(out)
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> JsonErrors<T> {
    /// Writes what is pending; `Ready(Ok(n))` with the caller's byte count
    /// once all of it is written.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        while let Some((bytes, written, stands_for)) = &mut self.pending {
            if *written == bytes.len() {
                let n = *stands_for;
                self.pending = None;
                return Poll::Ready(Ok(Some(n)));
            }
            match Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(None))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            match rewrite(buf) {
                Some(bytes) => self.pending = Some((bytes, 0, buf.len())),
                None => return Pin::new(&mut self.io).poll_write(cx, buf),
            }
        }
        // The caller retries with the same buffer until it is written.
        match self.drain(cx) {
            Poll::Ready(Ok(Some(n))) => Poll::Ready(Ok(n)),
            Poll::Ready(Ok(None)) => Poll::Ready(Ok(0)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.drain(cx) {
            Poll::Ready(Ok(_)) => Pin::new(&mut self.io).poll_flush(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.drain(cx) {
            Poll::Ready(Ok(_)) => Pin::new(&mut self.io).poll_shutdown(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_codec_error_gets_a_json_body_and_handler_answers_pass() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\
            connection: close\r\ndate: Mon, 30 Nov 2026 13:56:05 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(bare).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(!head.contains("content-length: 0"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], 431);
        // A pipelined answer before it stays as it was.
        let mut two = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        two.extend_from_slice(bare);
        let out = rewrite(&two).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 431"));
        // So does one after a pipelined answer (the codec leaves out
        // `connection: close` there).
        let after = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(after).is_some());
        // Answers with a typed body are not touched.
        let json = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}";
        assert!(rewrite(json).is_none());
        let typed =
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ncontent-type: text/plain\r\n\r\n";
        assert!(rewrite(typed).is_none());
        assert!(
            rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").is_none()
        );
    }
}
