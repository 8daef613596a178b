"""GET /metrics read by the official Prometheus client's text parser
(PyPI prometheus_client), the way a scrape would read it, and its
counters moving with the requests the test makes."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import SERVER, unique


def scrape():
    with urllib.request.urlopen(SERVER + "/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    # Raises on anything that is not the exposition format.
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families, family, suffix="", **labels):
    for s in families[family].samples:
        if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0.0


def test_metrics_parse_and_count_requests_by_route_pattern(rest):
    before = scrape()
    for name in [
        "delega_http_request_duration_seconds",
        "delega_tasks",
        "delega_claims",
        "delega_lease_expiries",
        "delega_queue_depth",
        "delega_long_poll_waiters",
        "delega_webhook_deliveries",
        "delega_sse_subscribers",
        "delega_writer_batch_size",
        "delega_writer_commit_seconds",
        "delega_database_bytes",
    ]:
        assert name in before, f"{name} is exposed"
    # (delega_webhook_oldest_undelivered_seconds has one series per active
    # hook; tests/api/operator.rs checks it with a hook registered.)
    assert before["delega_http_request_duration_seconds"].type == "histogram"
    assert before["delega_claims"].type == "counter"

    route = dict(method="POST", route="/api/tasks", status="201")
    created = value(before, "delega_http_request_duration_seconds", "_count", **route)
    open_before = value(before, "delega_tasks", status="open")
    for _ in range(3):
        rest.task(unique("Counted"))
    after = scrape()
    assert value(after, "delega_http_request_duration_seconds", "_count", **route) == created + 3
    assert value(after, "delega_tasks", status="open") == open_before + 3
    assert value(after, "delega_database_bytes", file="db") > 0
