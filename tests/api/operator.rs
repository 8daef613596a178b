//! The operator's view (SPEC §13): the embedded dashboard's files and
//! `GET /metrics`, read with a Prometheus text parser written by others.

use serde_json::json;

use crate::helpers::{id_of, TestServer};

#[test]
fn the_dashboard_is_served_at_the_root_and_under_ui_with_a_strict_policy() {
    let server = TestServer::start();
    let anon = server.anonymous();
    for path in ["/", "/ui", "/ui/", "/ui/index.html"] {
        let r = anon.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert!(r
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/html"));
        assert!(r.text.contains("app.js"), "{path} is the page: {}", r.text);
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    let js = anon.get("/ui/app.js");
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let css = anon.get("/ui/app.css");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));

    // A reload with the entity tag costs nothing.
    let tag = js.header("etag").expect("an ETag").to_string();
    let again = anon.raw("GET", "/ui/app.js", None, &[("If-None-Match", &tag)]);
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());

    // Unknown files are the API's JSON 404, and nothing outside assets/
    // can be named.
    anon.get("/ui/nope.js").assert_error(404);
    anon.get("/ui/..%2FCargo.toml").assert_error(404);
    anon.get("/ui/a/b.js").assert_error(404);
}

#[test]
fn the_page_needs_no_credentials_but_the_data_behind_it_does() {
    let server = TestServer::start();
    assert_eq!(server.anonymous().get("/").status, 200);
    server.anonymous().get("/api/tasks").assert_error(401);
}

/// The exposition text. (Its grammar is checked by the official Python
/// parser, `prometheus_client`, in `tests/browser/test_metrics.py`; the
/// Rust crates that parse it choke on `}` inside a label value such as
/// `route="/api/tasks/{id}"`.)
fn scrape(server: &TestServer) -> String {
    let r = server.anonymous().get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain; version=0.0.4"));
    r.text
}

/// The value of the first sample named `metric` whose labels include
/// `labels` (each `key="value"`).
fn sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (name, rest) = series.split_once('{').unwrap_or((series, ""));
            name == metric
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

#[test]
fn metrics_parse_and_move_with_requests_tasks_claims_and_streams() {
    let server = TestServer::start();
    let admin = server.admin();
    let (worker, _) = server.agent("metrics-worker", "worker");

    let before = scrape(&server);
    let gets = |s: &str| {
        sample(
            s,
            "delega_http_request_duration_seconds_count",
            &[
                ("route", "/api/tasks/{id}"),
                ("method", "GET"),
                ("status", "200"),
            ],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(gets(&before), 0.0);

    let a = id_of(&admin.create_task(json!({"content": "queued work"})));
    admin.create_task(json!({"content": "more queued work"}));
    for _ in 0..3 {
        assert_eq!(admin.get(&format!("/api/tasks/{a}")).status, 200);
    }
    admin.get("/api/tasks/999999").assert_error(404);
    let claimed = worker.post("/api/tasks/claim", json!({}));
    assert_eq!(claimed.status, 200, "{}", claimed.text);

    let after = scrape(&server);
    // Requests by route pattern (never the raw path), method and status.
    assert_eq!(gets(&after), 3.0);
    assert_eq!(
        sample(
            &after,
            "delega_http_request_duration_seconds_count",
            &[("route", "/api/tasks/{id}"), ("status", "404")],
        ),
        Some(1.0)
    );
    assert!(
        !after.contains("route=\"/api/tasks/999999\""),
        "raw paths never become labels"
    );
    // Tasks by status and the queue, read from the database.
    assert_eq!(
        sample(&after, "delega_tasks", &[("status", "open")]),
        Some(1.0)
    );
    assert_eq!(sample(&after, "delega_queue_depth", &[]), Some(1.0));
    assert_eq!(sample(&after, "delega_claims_total", &[]), Some(1.0));
    // Every write went through a committed writer batch.
    assert!(sample(&after, "delega_writer_batch_size_count", &[]).unwrap_or(0.0) >= 3.0);
    assert!(sample(&after, "delega_writer_commit_seconds_count", &[]).unwrap_or(0.0) >= 3.0);
    assert!(sample(&after, "delega_database_bytes", &[("file", "db")]).unwrap_or(0.0) > 0.0);
    for name in [
        "delega_lease_expiries_total",
        "delega_long_poll_waiters",
        "delega_sse_subscribers",
    ] {
        assert!(sample(&after, name, &[]).is_some(), "{name} is exposed");
    }
}

#[test]
fn webhook_metrics_count_attempts_and_the_oldest_undelivered_event() {
    let server = TestServer::start_with(&[("DELEGA_ALLOW_PRIVATE_WEBHOOKS", "true")]);
    let admin = server.admin();
    let receiver = crate::helpers::receiver::Receiver::start();
    let hook = admin.post(
        "/api/webhooks",
        json!({"url": receiver.url, "events": ["task.created"]}),
    );
    assert_eq!(hook.status, 201, "{}", hook.text);
    let hook_id = id_of(&hook.body).to_string();
    admin.create_task(json!({"content": "announce me"}));
    receiver.wait_for(1, std::time::Duration::from_secs(20));

    // The outcome is counted once the attempt is recorded.
    let mut delivered = 0.0;
    for _ in 0..100 {
        let s = scrape(&server);
        delivered = sample(
            &s,
            "delega_webhook_deliveries_total",
            &[("outcome", "delivered")],
        )
        .unwrap_or(0.0);
        if delivered >= 1.0 {
            let age = sample(
                &s,
                "delega_webhook_oldest_undelivered_seconds",
                &[("webhook_id", &hook_id)],
            );
            assert!(age.is_some(), "an age per active hook:\n{s}");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(delivered, 1.0);
}

#[test]
fn metrics_bind_serves_the_metrics_and_nothing_else_on_its_own_address() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = free.local_addr().expect("address").to_string();
    drop(free);
    let server = TestServer::start_with(&[("DELEGA_METRICS_BIND", &addr)]);
    server.admin().create_task(json!({"content": "counted"}));

    let metrics = crate::helpers::Client::new(
        &format!("http://{addr}"),
        crate::helpers::Auth::Bearer(server.token.clone()),
    );
    let r = metrics.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        sample(&r.text, "delega_tasks", &[("status", "open")]),
        Some(1.0)
    );
    // The API, the dashboard and the health check stay on the API's port.
    metrics.get("/api/tasks").assert_error(404);
    metrics.get("/").assert_error(404);
    // The API's own /metrics is still there for loopback.
    assert_eq!(server.anonymous().get("/metrics").status, 200);
}

#[test]
fn metrics_refuse_requests_a_proxy_forwarded_or_a_page_sent_under_another_host_name() {
    let server = TestServer::start();
    let anon = server.anonymous();
    for (header, value) in [
        ("X-Forwarded-For", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9"),
        ("Host", "attacker.example"),
    ] {
        let r = anon.raw("GET", "/metrics", None, &[(header, value)]);
        r.assert_error(403);
    }
    assert_eq!(anon.get("/metrics").status, 200);
}

#[test]
fn the_dashboard_answers_head_and_weak_entity_tags() {
    let server = TestServer::start();
    let anon = server.anonymous();
    let head = anon.raw("HEAD", "/ui/app.js", None, &[]);
    assert_eq!(head.status, 200);
    assert!(head.text.is_empty());
    let tag = head.header("etag").expect("an ETag").to_string();
    let weak = format!("W/{tag}");
    let again = anon.raw("GET", "/ui/app.js", None, &[("If-None-Match", &weak)]);
    assert_eq!(again.status, 304);
    assert_eq!(anon.raw("HEAD", "/", None, &[]).status, 200);
}

#[test]
fn a_410_counts_as_given_up_and_the_metrics_listener_answers_other_methods_with_json() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = free.local_addr().expect("address").to_string();
    drop(free);
    let server = TestServer::start_with(&[
        ("DELEGA_ALLOW_PRIVATE_WEBHOOKS", "true"),
        ("DELEGA_METRICS_BIND", &addr),
    ]);
    let receiver = crate::helpers::receiver::Receiver::start();
    receiver.set_default(crate::helpers::receiver::Reply::Status(410));
    let admin = server.admin();
    let hook = admin.post(
        "/api/webhooks",
        json!({"url": receiver.url, "events": ["task.created"]}),
    );
    assert_eq!(hook.status, 201, "{}", hook.text);
    admin.create_task(json!({"content": "nobody wants this"}));
    receiver.wait_for(1, std::time::Duration::from_secs(20));

    let metrics =
        crate::helpers::Client::new(&format!("http://{addr}"), crate::helpers::Auth::None);
    let mut given_up = None;
    for _ in 0..100 {
        let text = metrics.get("/metrics").text;
        given_up = sample(
            &text,
            "delega_webhook_deliveries_total",
            &[("outcome", "given_up")],
        );
        if given_up == Some(1.0) {
            let retrying = sample(
                &text,
                "delega_webhook_deliveries_total",
                &[("outcome", "retrying")],
            );
            assert_eq!(retrying, Some(0.0), "a 410 is not retried");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(given_up, Some(1.0));
    metrics.post("/metrics", json!({})).assert_error(405);
}
