//! `dashboard`: what open dashboards cost the API (issue 13). Create
//! throughput alone, then with 50 browser tabs open — each loaded the
//! page's files once and holds the board's live `/api/events` stream,
//! reading every event as a browser does, at the dashboard's `max_rate`
//! of 20 events a second (past it the server sends one `resync` a second,
//! and each tab reloads the board: the two bounded pages `board.js`
//! loads) — then alone again; the baseline
//! is the mean of the two runs without tabs, so drift over the run does
//! not count against the tabs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use anyhow::{bail, Context, Result};
use tokio::io::AsyncReadExt;

use super::{create_agent, create_burst, open_event_stream, Args, Client, RawConn, Report, Server};

/// Open tabs, each with one event stream.
const TABS: usize = 50;

/// What the page loads before any view is opened (`index.html` and the
/// modules `app.js` imports statically).
const FIRST_LOAD: &[&str] = &[
    "/",
    "/ui/app.css",
    "/ui/app.js",
    "/ui/api.js",
    "/ui/stream.js",
    "/ui/session.js",
    "/ui/dom.js",
    "/ui/board.js",
];

/// The two bounded pages the board loads (`board.js`).
const BOARD_PAGES: &[&str] = &[
    "/api/tasks?include_completed=false&limit=80",
    "/api/tasks?completed=true&limit=25",
];

/// Loads the page's files once; returns the bytes transferred.
fn load_page(base: &str) -> Result<usize> {
    let agent = ureq::AgentBuilder::new().build();
    let mut total = 0;
    for path in FIRST_LOAD {
        let body = agent
            .get(&format!("{base}{path}"))
            .call()
            .with_context(|| format!("GET {path}"))?
            .into_string()?;
        total += body.len();
    }
    Ok(total)
}

/// The tabs' streams, read on a thread of their own until `stop`.
struct Tabs {
    stop: Arc<AtomicBool>,
    bytes_read: Arc<AtomicU64>,
    /// Board reloads the tabs made on a `resync`.
    reloads: Arc<AtomicU64>,
    reader: thread::JoinHandle<Result<()>>,
}

/// Opens the tabs signed in with the project token, as an operator would:
/// every task created reaches every tab.
fn open_tabs(server: &Server) -> Result<Tabs> {
    let addr = server.base.trim_start_matches("http://").to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (opened_tx, opened_rx) = std::sync::mpsc::channel::<Result<()>>();
    let reloads = Arc::new(AtomicU64::new(0));
    let (stop2, read2, reloads2) = (stop.clone(), bytes_read.clone(), reloads.clone());
    let token = server.token.clone();
    let reader = thread::spawn(move || -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let mut streams = Vec::with_capacity(TABS);
            let opened: Result<()> = async {
                for _ in 0..TABS {
                    streams.push(open_event_stream(&addr, &token, "max_rate=20").await?);
                }
                Ok(())
            }
            .await;
            let failed = opened.is_err();
            let _ = opened_tx.send(opened);
            if failed {
                return Ok(());
            }
            let mut readers = Vec::new();
            for mut s in streams {
                let (stop, read, reloads) = (stop2.clone(), read2.clone(), reloads2.clone());
                let mut api = RawConn::open(&addr).await?;
                let token = token.clone();
                readers.push(tokio::spawn(async move {
                    let mut chunk = vec![0u8; 16 * 1024];
                    // The end of the previous read, for a marker split
                    // across two reads.
                    let mut tail = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let n = tokio::time::timeout(
                            std::time::Duration::from_millis(200),
                            s.read(&mut chunk),
                        )
                        .await;
                        let n = match n {
                            Ok(Ok(0)) | Ok(Err(_)) => break,
                            Ok(Ok(n)) => n,
                            Err(_) => continue,
                        };
                        read.fetch_add(n as u64, Ordering::Relaxed);
                        tail.extend_from_slice(&chunk[..n]);
                        let marker = b"event: resync";
                        if tail.windows(marker.len()).any(|w| w == marker) {
                            tail.clear();
                            // What board.js does on a resync.
                            for path in BOARD_PAGES {
                                let status = api.send("GET", path, &token, None).await?;
                                api.expect(status, 200, "GET", path)?;
                            }
                            reloads.fetch_add(1, Ordering::Relaxed);
                        }
                        let keep = tail.len().saturating_sub(marker.len());
                        tail.drain(..keep);
                    }
                    Ok::<_, anyhow::Error>(())
                }));
            }
            for r in readers {
                r.await??;
            }
            Ok(())
        })
    });
    opened_rx
        .recv()
        .context("the tabs' thread ended before opening its streams")??;
    Ok(Tabs {
        stop,
        bytes_read,
        reloads,
        reader,
    })
}

pub fn bench_dashboard(
    admin: &Client,
    server: &Server,
    args: &Args,
    report: &mut Report,
) -> Result<()> {
    let (_, key) = create_agent(admin, "bench-dashboard")?;
    let before = create_burst(&admin.base, &key, args, "no tabs")?;
    report.add("create, no dashboard (before)", &before);

    let mut page_bytes = 0;
    for _ in 0..TABS {
        page_bytes = load_page(&server.base)?;
    }
    let tabs = open_tabs(server)?;
    let with_tabs = create_burst(&admin.base, &key, args, "50 tabs")?;
    tabs.stop.store(true, Ordering::Relaxed);
    let streamed = tabs.bytes_read.load(Ordering::Relaxed);
    let reloads = tabs.reloads.load(Ordering::Relaxed);
    match tabs.reader.join() {
        Ok(r) => r?,
        Err(_) => bail!("the tabs' thread panicked"),
    }
    report.add("create, 50 tabs streaming the board", &with_tabs);

    let after = create_burst(&admin.base, &key, args, "no tabs again")?;
    report.add("create, no dashboard (after)", &after);

    let baseline = (before.rate() + after.rate()) / 2.0;
    report.notes.push(format!(
        "dashboard: create with {TABS} tabs at {:.1} % of the mean without ({:.0} vs {:.0}/s); \
         the tabs read {:.1} MiB of events and reloaded the board {reloads} times; \
         first load {:.1} KB of assets per tab",
        100.0 * with_tabs.rate() / baseline.max(f64::MIN_POSITIVE),
        with_tabs.rate(),
        baseline,
        streamed as f64 / (1024.0 * 1024.0),
        page_bytes as f64 / 1000.0,
    ));
    Ok(())
}
