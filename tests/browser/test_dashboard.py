"""The dashboard in a real browser (headless Debian Chromium via Playwright).

Each test signs in through the form, as a person would, against the real
server; agents act on the other side through the REST API.
"""

import http.server
import threading
import time

import pytest
from playwright.sync_api import expect

from conftest import TOKEN, UI, go, screenshot, settle, sign_in, unique

LIVE = 5_000  # "within a few seconds"


# ------------------------------------------------------------- sign-in


def test_sign_in_with_the_project_token_shows_an_admin_and_keeps_the_token_in_session_storage(page):
    sign_in(page)

    expect(page.locator('[data-testid="who"]')).to_have_text("project token (admin)")
    assert page.evaluate("sessionStorage.getItem('delega.credential')") == TOKEN
    assert page.evaluate("localStorage.length") == 0
    # The API saw the credential as a header, never anywhere else.
    calls = page.recorder.api("GET", "/agent/me")
    assert calls and calls[0][2].get("authorization") == f"Bearer {TOKEN}"


def test_a_wrong_key_is_refused_with_a_clear_message_and_nothing_is_stored(page):
    page.goto(UI)
    page.get_by_label("Agent key or project token").fill("dlg_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("refused (401)")
    assert page.evaluate("sessionStorage.getItem('delega.credential')") is None


def test_sign_out_forgets_the_credential(page):
    sign_in(page)
    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('delega.credential')") is None
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


# ------------------------------------------------------------- the board


def test_a_task_created_over_rest_appears_on_the_board_without_a_reload(page, rest):
    sign_in(page)
    expect(page.locator(".board")).to_be_visible()
    settle(page)
    page.evaluate("window.__sameDocument = true")
    lists_before = len(page.recorder.api("GET", "/tasks"))

    title = unique("Appears live")
    task = rest.task(title, labels=["live"], priority=1)

    card = page.locator(f'.col-open [data-task-id="{task["id"]}"]')
    expect(card).to_contain_text(title, timeout=LIVE)
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    # Live, not polled: the board did not ask for the list again and the tab
    # holds exactly one event stream.
    assert len(page.recorder.api("GET", "/tasks")) == lists_before
    assert len(page.recorder.api("GET", "/events")) == 1

    # A state change moves the card to its new column, again live.
    rest.call("POST", f"/tasks/{task['id']}/complete", {})
    expect(page.locator(f'.col-completed [data-task-id="{task["id"]}"]')).to_be_visible(timeout=LIVE)
    expect(page.locator(f'.col-open [data-task-id="{task["id"]}"]')).to_have_count(0)


def test_board_filters_by_label_and_search_and_applies_them_to_live_updates(page, rest):
    label = unique("lbl")
    keep = rest.task(unique("Keep me"), labels=[label])
    other = rest.task(unique("Not me"))
    sign_in(page)
    page.get_by_label("Label", exact=True).fill(label)
    page.get_by_role("button", name="Apply filters").click()

    expect(page.locator(f'[data-task-id="{keep["id"]}"]')).to_be_visible()
    expect(page.locator(f'[data-task-id="{other["id"]}"]')).to_have_count(0)
    assert f"label={label}" in page.url  # filters are shareable; they are not secrets

    late_match = rest.task(unique("Late match"), labels=[label])
    late_other = rest.task(unique("Late other"))
    expect(page.locator(f'[data-task-id="{late_match["id"]}"]')).to_be_visible(timeout=LIVE)
    page.wait_for_timeout(500)
    expect(page.locator(f'[data-task-id="{late_other["id"]}"]')).to_have_count(0)

    page.get_by_label("Search").fill("Late match")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(f'[data-task-id="{late_match["id"]}"]')).to_be_visible()
    expect(page.locator(f'[data-task-id="{keep["id"]}"]')).to_have_count(0)


# ------------------------------------------------------------- delegation tree


def test_a_two_hop_delegation_is_drawn_as_a_tree_with_names_and_times(page, rest):
    boss = rest.agent("orchestrator", role="coordinator")
    researcher = rest.agent("research")
    writer = rest.agent("writer")
    root = rest.task(unique("Ship the launch post"), cred=boss["api_key"])
    child = rest.call("POST", f"/tasks/{root['id']}/delegate",
                      {"content": "Research competitors", "agent_id": researcher["name"]}, cred=boss["api_key"])
    grandchild = rest.call("POST", f"/tasks/{child['id']}/delegate",
                           {"content": "Collect pricing pages", "agent_id": writer["name"]},
                           cred=researcher["api_key"])

    sign_in(page)
    go(page, f"#/tasks/{grandchild['id']}")

    tree = page.locator(".tree")
    expect(tree).to_be_visible()
    root_node = tree.locator(f':scope > li[data-task-id="{root["id"]}"]')
    child_node = root_node.locator(f':scope > ul > li[data-task-id="{child["id"]}"]')
    leaf_node = child_node.locator(f':scope > ul > li[data-task-id="{grandchild["id"]}"]')
    expect(leaf_node).to_be_visible()
    expect(leaf_node).to_have_attribute("aria-current", "true")

    first_hop = child_node.locator(":scope > .hop")
    second_hop = leaf_node.locator(":scope > .hop")
    expect(first_hop).to_contain_text(f"{boss['name']} → {researcher['name']}")
    expect(second_hop).to_contain_text(f"{researcher['name']} → {writer['name']}")
    for hop in (first_hop, second_hop):
        stamp = hop.locator("time")
        expect(stamp).to_have_text(__import__("re").compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"))
        assert stamp.get_attribute("datetime").endswith("Z")
    expect(root_node.locator(":scope > .node-task a")).to_have_attribute("href", f"#/tasks/{root['id']}")


# ------------------------------------------------------------- task page


def test_the_task_page_shows_context_provenance_history_comments_links_evidence_and_inputs(page, rest):
    agent = rest.agent("researcher")
    dep = rest.task(unique("Research"), cred=agent["api_key"])
    rest.call("POST", f"/tasks/{dep['id']}/complete",
              {"context": {"findings": "three competitors"},
               "evidence": [{"kind": "commit", "ref": "abc1234", "summary": "notes"}]}, cred=agent["api_key"])
    task = rest.task(unique("Write"), depends_on=[dep["id"]], context={"audience": "developers"},
                     assigned_to_agent_id=agent["id"])
    rest.call("PATCH", f"/tasks/{task['id']}/context", {"tone": "plain"}, cred=TOKEN)
    rest.call("POST", f"/tasks/{task['id']}/comments", {"content": "Keep it short <b>please</b>"}, cred=agent["api_key"])
    rest.call("POST", f"/tasks/{task['id']}/links", {"kind": "pr", "ref": "#7", "url": "https://git.example/pr/7", "repo": "acme/site"})
    rest.call("POST", f"/tasks/{task['id']}/links", {"kind": "url", "ref": "x", "url": "javascript:alert(1)"})

    sign_in(page)
    go(page, f"#/tasks/{task['id']}")

    ctx = page.locator(".sec-context")
    expect(ctx.locator('[data-testid="context-version"]')).to_have_text("2")
    expect(ctx.locator("tr", has_text="audience")).to_contain_text("developers")
    expect(ctx.locator("tr", has_text="tone")).to_contain_text("agent_inferred")
    expect(page.locator(".sec-history li")).to_have_count(2)
    # Comments are text, not markup.
    expect(page.locator(".sec-comments")).to_contain_text("Keep it short <b>please</b>")
    expect(page.locator(".sec-comments")).to_contain_text(agent["name"])
    expect(page.locator(".sec-links a[href='https://git.example/pr/7']")).to_be_visible()
    expect(page.locator(".sec-links a[href^='javascript']")).to_have_count(0)
    expect(page.locator(".sec-deps")).to_contain_text("three competitors")

    go(page, f"#/tasks/{dep['id']}")
    expect(page.locator(".sec-evidence")).to_contain_text("abc1234")


def test_keyboard_navigation_reaches_every_action_on_the_task_page(page, rest):
    task = rest.task(unique("Keyboard task"), context={"k": 1})
    rest.call("POST", f"/tasks/{task['id']}/comments", {"content": "first"})
    sign_in(page)
    go(page, f"#/tasks/{task['id']}")
    expect(page.locator(".sec-chain .tree")).to_be_visible()
    settle(page)

    # Tag every visible, focusable element, then Tab through the page once.
    total = page.evaluate("""() => {
        const sel = 'a[href], button:not([disabled]), input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])';
        const els = [...document.querySelectorAll(sel)].filter(e => e.getClientRects().length && !e.closest('[hidden]'));
        els.forEach((e, i) => e.dataset.kbd = String(i));
        document.activeElement?.blur();
        return els.length;
    }""")
    reached = set()
    for _ in range(total + 20):
        page.keyboard.press("Tab")
        k = page.evaluate("document.activeElement && document.activeElement.dataset.kbd")
        if k is not None:
            reached.add(int(k))
    missing = page.evaluate("""(reached) => [...document.querySelectorAll('[data-kbd]')]
        .filter(e => !reached.includes(Number(e.dataset.kbd)))
        .map(e => e.outerHTML.slice(0, 120))""", sorted(reached))
    assert not missing, f"not reachable with Tab: {missing}"
    for action in ("comment", "complete", "fail", "reassign", "release"):
        assert page.locator(f'button[data-action="{action}"]').count() == 1

    # And an action done with the keyboard alone: focus the comment box by
    # tabbing to it, type, Tab to its button, Enter.
    page.evaluate("document.activeElement?.blur()")
    for _ in range(total + 5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.tagName === 'TEXTAREA'"):
            break
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "comment"
    page.keyboard.press("Enter")
    expect(page.locator(".sec-comments")).to_contain_text("Typed without a mouse", timeout=LIVE)

    # Focus is visible: the focused button has an outline.
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_task_actions_complete_fail_reassign_release_and_show_server_errors(page, rest):
    worker = rest.agent("worker")
    task = rest.task(unique("Act on me"))
    sign_in(page)
    go(page, f"#/tasks/{task['id']}")
    expect(page.locator(".sec-chain .tree")).to_be_visible()

    # Releasing an unclaimed task is refused: the server's reason is shown.
    page.locator('button[data-action="release"]').click()
    alert = page.locator(".action-release [role=alert]")
    expect(alert).to_contain_text("409")
    expect(alert).to_contain_text("not claimed")

    # Reassign to the worker, who claims it; then release works.
    page.get_by_label("New assignee (name or id)").fill(worker["name"])
    page.locator('button[data-action="reassign"]').click()
    expect(page.locator(".summary")).to_contain_text(worker["name"], timeout=LIVE)
    rest.call("POST", f"/tasks/{task['id']}/claim", {}, cred=worker["api_key"])
    expect(page.locator(".summary .badge")).to_have_text("claimed", timeout=LIVE)
    page.get_by_label("Hand-off note").fill("over to a person")
    page.locator('button[data-action="release"]').click()
    expect(page.locator(".action-release [role=status]")).to_contain_text("released")
    expect(page.locator(".summary")).to_contain_text("over to a person", timeout=LIVE)

    # Unknown assignee: a 422 naming the problem.
    page.get_by_label("New assignee (name or id)").fill("nobody-by-this-name")
    page.locator('button[data-action="reassign"]').click()
    expect(page.locator(".action-reassign [role=alert]")).to_contain_text("422")

    page.get_by_label("Reason").fill("the source was gone")
    page.locator('button[data-action="fail"]').click()
    expect(page.locator(".summary .badge")).to_have_text("failed", timeout=LIVE)
    expect(page.locator(".summary")).to_contain_text("the source was gone")

    page.get_by_role("button", name="Reopen task").click()
    expect(page.locator(".summary .badge").first).to_have_text("open", timeout=LIVE)
    page.get_by_label("Evidence kind").select_option("commit")
    page.get_by_label("Evidence reference").fill("deadbeef")
    page.locator('button[data-action="complete"]').click()
    expect(page.locator(".summary .badge").first).to_have_text("completed", timeout=LIVE)
    expect(page.locator(".sec-evidence")).to_contain_text("deadbeef")


# ------------------------------------------------------------- agents


def test_creating_an_agent_shows_its_key_once_with_a_copy_button(page, rest):
    sign_in(page)
    go(page, "#/agents")
    name = unique("new-agent")
    page.get_by_label("Name (unique slug)").fill(name)
    page.get_by_label("Role").select_option("worker")
    page.get_by_role("button", name="Create agent").click()

    box = page.locator(".secret-once")
    expect(box).to_contain_text("Shown only this once")
    key = box.locator("input").input_value()
    assert key.startswith("dlg_") and len(key) == 47
    assert rest.call("GET", "/agent/me", cred=key)["name"] == name  # it is the real key
    box.get_by_role("button", name="Copy").click()
    expect(box).to_contain_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == key
    expect(page.locator(f'tr[data-agent="{name}"]')).to_contain_text(key[:12])

    box.get_by_role("button", name="Done, hide it").click()
    expect(page.locator(".secret-once")).to_have_count(0)
    go(page, "#/board")
    go(page, "#/agents")
    expect(page.locator(f'tr[data-agent="{name}"]')).to_be_visible()
    assert key not in page.content()
    assert key not in page.evaluate("JSON.stringify(sessionStorage) + JSON.stringify(localStorage)")


def test_rotating_and_deactivating_an_agent(page, rest):
    agent = rest.agent("rotate-me")
    sign_in(page)
    page.on("dialog", lambda d: d.accept())
    go(page, "#/agents")
    row = page.locator(f'tr[data-agent="{agent["name"]}"]')
    row.get_by_role("button", name="Rotate key").click()
    new_key = page.locator(".secret-once input").input_value()
    assert new_key.startswith("dlg_") and new_key != agent["api_key"]
    with pytest.raises(Exception):
        rest.call("GET", "/agent/me", cred=agent["api_key"])

    row.get_by_role("button", name="Deactivate").click()
    expect(row).to_contain_text("deactivated", timeout=LIVE)
    with pytest.raises(Exception):
        rest.call("GET", "/agent/me", cred=new_key)


# ------------------------------------------------------------- scope


def test_a_workers_dashboard_shows_only_its_tasks(page, rest):
    worker = rest.agent("scoped-worker")
    other = rest.agent("someone-else")
    mine = rest.task(unique("Mine"), cred=worker["api_key"])
    given = rest.task(unique("Given to me"), assigned_to_agent_id=worker["id"])
    # Assigned to the other agent, so not even in this worker's claim queue
    # (a worker may read queued tasks by id, SPEC §3).
    theirs = rest.task(unique("Theirs"), cred=other["api_key"], assigned_to_agent_id=other["id"])

    sign_in(page, worker["api_key"])
    expect(page.locator('[data-testid="who"]')).to_contain_text(worker["name"])
    expect(page.locator(f'[data-task-id="{mine["id"]}"]')).to_be_visible()
    expect(page.locator(f'[data-task-id="{given["id"]}"]')).to_be_visible()
    expect(page.locator(f'[data-task-id="{theirs["id"]}"]')).to_have_count(0)
    ids = {int(x) for x in page.locator(".board [data-task-id]").evaluate_all("els => els.map(e => e.dataset.taskId)")}
    visible = {t["id"] for t in rest.call("GET", "/tasks?include_completed=true", cred=worker["api_key"])}
    assert ids <= visible, "the board shows tasks the API would not list for this worker"

    # Live updates are scoped too: another agent's new task never appears.
    theirs_later = rest.task(unique("Theirs later"), cred=other["api_key"], assigned_to_agent_id=other["id"])
    mine_later = rest.task(unique("Mine later"), assigned_to_agent_id=worker["id"])
    expect(page.locator(f'[data-task-id="{mine_later["id"]}"]')).to_be_visible(timeout=LIVE)
    expect(page.locator(f'[data-task-id="{theirs_later["id"]}"]')).to_have_count(0)

    # Their task page is simply not there for this worker.
    go(page, f"#/tasks/{theirs['id']}")
    expect(page.get_by_role("alert")).to_contain_text("does not exist or is not visible")
    go(page, "#/agents")
    expect(page.locator("main")).to_contain_text("may not list agents")
    # The worker's key went out as X-Agent-Key.
    assert all(h.get("x-agent-key") == worker["api_key"] for _, _, h in page.recorder.api())


def test_no_credential_appears_in_any_url_or_request_line(page, rest):
    worker = rest.agent("url-check")
    task = rest.task(unique("URL check"), assigned_to_agent_id=worker["id"])
    sign_in(page, worker["api_key"])
    for route in ("#/board", f"#/tasks/{task['id']}", "#/attention", "#/events", "#/agents", "#/webhooks"):
        go(page, route)
        page.wait_for_timeout(300)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page)  # and the project token
    go(page, "#/agents")
    page.wait_for_timeout(300)

    urls = [u for _, u, _ in page.recorder.requests] + page.recorder.page_urls
    assert urls
    for u in urls:
        assert worker["api_key"] not in u and TOKEN not in u and "dlg_" not in u and "dlp_" not in u, u
    api_calls = page.recorder.api()
    assert api_calls and all(("x-agent-key" in h) or ("authorization" in h) for _, _, h in api_calls)
    # (The page fixture also checks every test's URLs and that no cookie is set.)


# ------------------------------------------------------------- webhooks


@pytest.fixture
def receiver():
    """A webhook receiver on loopback: answers 500 to the first delivery,
    then 204 (the server under test runs with allow_private_webhooks)."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hits.append(self.headers.get("X-Delega-Event"))
            self.send_response(500 if len(hits) == 1 else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", hits
    srv.shutdown()


def test_webhooks_secret_once_delivery_log_redeliver_and_recover(page, rest, receiver):
    url, hits = receiver
    sign_in(page)
    go(page, "#/webhooks")
    page.get_by_label("Target URL").fill(url)
    page.get_by_label("Events (comma-separated)").fill("task.created, task.completed")
    page.get_by_role("button", name="Register webhook").click()
    secret = page.locator(".secret-once input").input_value()
    assert secret.startswith("whsec_")
    row = page.locator("tr[data-webhook]", has_text=url)
    expect(row).to_be_visible()
    hook_id = row.get_attribute("data-webhook")

    rest.task(unique("Hooked"))
    deadline = time.time() + 10
    while len(hits) < 1 and time.time() < deadline:
        time.sleep(0.1)
    row.get_by_role("link", name="Deliveries").click()
    expect(page.locator("h1")).to_have_text(f"Webhook #{hook_id}")
    failed = page.locator("table.deliveries tr.failed").first
    expect(failed.locator(".status-code")).to_have_text("500")
    assert secret not in page.content()

    failed.get_by_role("button", name="Redeliver").click()
    expect(page.get_by_role("status").filter(has_text="Redelivery queued")).to_be_visible()
    expect(page.locator("table.deliveries tr.ok .status-code").first).to_have_text("204", timeout=LIVE)

    page.get_by_label("Since (RFC 3339 time or event id)").fill("2000-01-01T00:00:00Z")
    page.get_by_role("button", name="Recover").click()
    expect(page.get_by_role("status").filter(has_text="Queued")).to_be_visible()


# ------------------------------------------------------------- attention, events


def test_fleet_attention_updates_live(page, rest):
    worker = rest.agent("stuck")
    task = rest.task(unique("Needs a human"), assigned_to_agent_id=worker["id"])
    rest.call("POST", f"/tasks/{task['id']}/claim", {}, cred=worker["api_key"])
    sign_in(page)
    go(page, "#/attention")
    expect(page.locator('[data-bucket="errored"]')).to_be_visible()
    expect(page.locator(f'[data-bucket="errored"] [data-task-id="{task["id"]}"]')).to_have_count(0)

    rest.call("POST", f"/tasks/{task['id']}/state", {"state": "errored", "detail": "disk full"}, cred=worker["api_key"])
    item = page.locator(f'[data-bucket="errored"] [data-task-id="{task["id"]}"]')
    expect(item).to_be_visible(timeout=LIVE)
    assert len(page.recorder.api("GET", "/events")) == 1


def test_the_event_feed_shows_events_as_they_happen(page, rest):
    sign_in(page)
    go(page, "#/events")
    title = unique("Feed me")
    task = rest.task(title)
    rest.call("POST", f"/tasks/{task['id']}/comments", {"content": "hello"})
    feed = page.locator("ol.feed")
    expect(feed.locator("li", has_text=title).first).to_be_visible(timeout=LIVE)
    expect(feed.locator("li", has_text="task.commented").first).to_be_visible(timeout=LIVE)
    page.get_by_label("Filter by type").fill("task.commented")
    expect(feed.locator("li", has_text="task.created")).to_have_count(0)


# ------------------------------------------------------------- weight, layout


@pytest.mark.parametrize("route", ["#/board", "#/tasks/{id}", "#/agents", "#/webhooks", "#/attention", "#/events"])
def test_readable_at_phone_width(phone, rest, route):
    if "{id}" in route:
        root = rest.task(unique("Phone root"), context={"a": "b" * 60}, labels=["one", "two"])
        child = rest.call("POST", f"/tasks/{root['id']}/delegate", {"content": unique("Phone child " + "word " * 12)})
        route = route.format(id=child["id"])
    sign_in(phone)
    go(phone, route)
    settle(phone)
    phone.wait_for_timeout(300)
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{route} scrolls sideways by {overflow}px at 390px wide"


# ------------------------------------------------------------- README screenshots


def test_readme_screenshots_of_the_board_and_the_task_page(page, rest):
    """Builds a small, realistic scene in its own project and photographs it."""
    # Plain names (the other tests use numbered ones), for a readable picture.
    project = rest.call("POST", "/projects", {"name": "Launch v2"})
    boss = rest.agent("orchestrator", role="coordinator", exact=True)
    research = rest.agent("research-agent", exact=True)
    writer = rest.agent("writer", exact=True)
    editor = rest.agent("editor", exact=True)
    p = {"project_id": project["id"]}
    root = rest.task("Publish the v2 launch post", cred=boss["api_key"], labels=["launch"], priority=1, **p)
    r = rest.call("POST", f"/tasks/{root['id']}/delegate",
                  {"content": "Research competitor pricing", "agent_id": research["name"], **p}, cred=boss["api_key"])
    leaf = rest.call("POST", f"/tasks/{r['id']}/delegate",
                     {"content": "Collect pricing pages", "agent_id": writer["name"], **p}, cred=research["api_key"])
    rest.call("PATCH", f"/tasks/{leaf['id']}/context", {"sources": ["acme.example/pricing"], "confidence": 0.8},
              cred=writer["api_key"])
    rest.call("POST", f"/tasks/{leaf['id']}/comments", {"content": "Two of five pages done."}, cred=writer["api_key"])
    rest.call("POST", f"/tasks/{leaf['id']}/claim", {}, cred=writer["api_key"])
    draft = rest.task("Draft the post", assigned_to_agent_id=writer["id"], depends_on=[r["id"]], labels=["writing"], **p)
    rest.task("Proofread the draft", assigned_to_agent_id=editor["id"], depends_on=[draft["id"]], **p)
    done = rest.task("Pick the launch date", assigned_to_agent_id=editor["id"], **p)
    rest.call("POST", f"/tasks/{done['id']}/complete", {}, cred=editor["api_key"])
    failed = rest.task("Book a podcast slot", assigned_to_agent_id=research["id"], **p)
    rest.call("POST", f"/tasks/{failed['id']}/fail", {"reason": "no slots this month"}, cred=research["api_key"])
    rest.task("Translate the post", labels=["writing"], priority=3, **p)
    started = rest.task("Prepare social snippets", assigned_to_agent_id=writer["id"], **p)
    rest.call("PUT", f"/tasks/{started['id']}", {"status": "in_progress"}, cred=writer["api_key"])

    sign_in(page)
    go(page, f"#/board?project={project['id']}")
    expect(page.locator(f'[data-task-id="{root["id"]}"]')).to_be_visible()
    settle(page)
    page.wait_for_timeout(1600)  # let the "just changed" highlight fade
    screenshot(page, "board.png")

    go(page, f"#/tasks/{leaf['id']}")
    expect(page.locator(".sec-chain .tree")).to_be_visible()
    expect(page.locator(".sec-context tr", has_text="sources")).to_be_visible()
    settle(page)
    page.evaluate("document.activeElement?.blur()")
    screenshot(page, "task.png")


def test_after_a_dropped_stream_it_reconnects_with_last_event_id_and_misses_nothing(page, rest):
    sign_in(page)
    first = rest.task(unique("Before the drop"))
    expect(page.locator(f'[data-task-id="{first["id"]}"]')).to_be_visible(timeout=LIVE)
    lists_before = len(page.recorder.api("GET", "/tasks"))

    page.context.set_offline(True)
    expect(page.locator(".live")).not_to_have_attribute("data-state", "live", timeout=LIVE)
    missed = rest.task(unique("While offline"))
    page.context.set_offline(False)

    expect(page.locator(f'[data-task-id="{missed["id"]}"]')).to_be_visible(timeout=15_000)
    streams = page.recorder.api("GET", "/events")
    assert len(streams) >= 2
    assert "last-event-id" not in streams[0][2]
    assert int(streams[-1][2]["last-event-id"]) > 0
    # No list reloads: the board caught up from the stream, not by polling.
    assert len(page.recorder.api("GET", "/tasks")) == lists_before


def test_a_deactivated_agent_is_signed_out_with_a_reason(page, rest):
    agent = rest.agent("short-lived")
    sign_in(page, agent["api_key"])
    rest.call("PATCH", f"/agents/{agent['id']}", {"active": False})
    go(page, "#/attention")  # the next request is refused (or the stream is cut)

    expect(page.get_by_role("alert")).to_contain_text("no longer accepts", timeout=LIVE)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('delega.credential')") is None


# Last: it fills the database with bulk tasks.
def test_initial_page_load_is_under_300_kb_and_opens_one_stream(page, rest):
    # A board fuller than one screen: more unfinished and finished tasks than
    # the board's first pages hold, each with some context.
    project = rest.call("POST", "/projects", {"name": unique("Weight")})
    for i in range(130):
        t = rest.task(f"Bulk task {i} " + "lorem ipsum " * 8, priority=4, labels=["bulk", f"b{i % 7}"],
                      project_id=project["id"], context={"note": "x" * 200, "step": i})
        if i % 3 == 0:
            rest.call("POST", f"/tasks/{t['id']}/complete", {})
    responses = []
    page.on("response", lambda r: responses.append(r))
    sign_in(page)
    expect(page.locator(".board .column")).to_have_count(7)
    expect(page.locator(".board .card").first).to_be_visible()
    settle(page)
    # What went over the wire: the encoded body (compressed, if the server
    # compresses) plus headers; the event stream never ends and is left out.
    sizes = {}
    for resp in responses:
        if "/api/events" in resp.url:
            continue
        resp.finished()
        s = resp.request.sizes()
        sizes[resp.url] = s["responseBodySize"] + s["responseHeadersSize"]
    total = sum(sizes.values())
    print(f"\ninitial load: {total} bytes in {len(sizes)} responses")
    for u, n in sorted(sizes.items(), key=lambda x: -x[1]):
        print(f"  {n:7d}  {u}")
    assert sum("/api/tasks?" in u for u in sizes) == 2, "the board's two task pages were not measured"
    assert total < 300_000
    assert len(page.recorder.api("GET", "/events")) == 1

    # The rest of the board is one click away (the server's Link: next cursors).
    before = page.locator(".board .card").count()
    page.get_by_role("button", name="Load more tasks").click()
    expect(page.locator(".board .card")).not_to_have_count(before)
    assert page.locator(".board .card").count() > before
    # Visiting every view still uses that one stream.
    for route in ("#/attention", "#/events", "#/agents", "#/webhooks", "#/board"):
        go(page, route)
        page.wait_for_timeout(200)
    assert len(page.recorder.api("GET", "/events")) == 1
