//! A real HTTP receiver for webhook tests: a std TcpListener on loopback
//! that records every request and answers with scripted behaviour.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// Waits this long before answering 200.
    Hang(Duration),
    /// Answers 200 with a body of this many bytes.
    Big(usize),
    /// Closes the connection without answering (a receiver that is down).
    Drop,
    /// Answers with this 3xx status and `Location`.
    Redirect(u16, &'static str),
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let shared = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                thread::spawn(move || handle(stream, &shared));
            }
        });
        Receiver { url, state }
    }

    /// Answers the next requests with these replies, then with the default.
    pub fn script(&self, replies: &[Reply]) {
        self.state
            .0
            .lock()
            .unwrap()
            .script
            .extend(replies.iter().cloned());
    }

    pub fn set_default(&self, reply: Reply) {
        self.state.0.lock().unwrap().default = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.0.lock().unwrap().received.clone()
    }

    /// Waits (at most `timeout`) until `n` requests arrived; returns them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.state;
        let mut st = lock.lock().unwrap();
        while st.received.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = cv.wait_timeout(st, left).unwrap().0;
        }
        st.received.clone()
    }
}

fn handle(stream: TcpStream, shared: &(Mutex<State>, Condvar)) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = {
            let (lock, cv) = shared;
            let mut st = lock.lock().unwrap();
            st.received.push(Received {
                headers,
                body,
                at: Instant::now(),
            });
            cv.notify_all();
            let default = st.default.clone().unwrap_or(Reply::Status(200));
            st.script.pop_front().unwrap_or(default)
        };
        let mut location = String::new();
        let (status, extra) = match reply {
            Reply::Status(s) => (s, 0),
            Reply::Hang(d) => {
                thread::sleep(d);
                (200, 0)
            }
            Reply::Big(n) => (200, n),
            Reply::Drop => return,
            Reply::Redirect(s, to) => {
                location = format!("Location: {to}\r\n");
                (s, 0)
            }
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {extra}\r\n{location}Content-Type: text/plain\r\n\r\n"
        );
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = extra;
        while left > 0 {
            let n = left.min(chunk.len());
            if writer.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
    }
}
