"""The web playground (``/ui``) in a real browser: Playwright drives the system Chromium against a gateway in a thread.

The gateway serves two models under the default guardrails policy: ``echo``, the fake OpenAI upstream that replies
with the user's text (the word MADEUP becomes an e-mail address the output guard masks), and ``tiny``, the random
CPU checkpoint, for a generation long enough to stop. Every test waits on conditions (Playwright's auto-waiting
expectations, generous timeouts: the machine is loaded) and saves a screenshot under ``tests/artifacts/ui/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from guardserve.app.auth.settings import AuthSettings
from guardserve.app.feedback.settings import FeedbackSettings
from guardserve.app.limits.settings import LimitSettings
from guardserve.app.main import create_app
from guardserve.app.settings import GuardrailSettings, Settings
from guardserve.models.registry import ModelEntry
from tests.conftest import TINY, cpu_settings
from tests.support.access import ADMIN_KEY, PEPPER
from tests.support.openai_upstream import OpenAIUpstream
from tests.support.requirements import require
from tests.support.servers import LiveServer, serve_in_thread, wait_until

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("GUARDSERVE_TEST_CHROMIUM", "/usr/bin/chromium")  # the system package (.ci/run)
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui"
WAIT_MS = 60_000  # every expectation: the machine is loaded, and a cold guard screening takes seconds
ECHO = "echo"
TOXIC = "You are a worthless idiot and I hate you, you stupid moron."

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require(sync_playwright is not None, "the playwright package", "pip install -e '.[dev]'")
    require(os.path.exists(CHROMIUM), f"Chromium at {CHROMIUM}", "apt-get install -y chromium")
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[LiveServer]:
    server = serve_in_thread(OpenAIUpstream("x"))  # type: ignore[arg-type]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def feedback_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-feedback") / "feedback.jsonl"


@pytest.fixture(scope="module")
def gateway(tiny_checkpoint: Path, echo_upstream: LiveServer, feedback_file: Path) -> Iterator[LiveServer]:
    """The default guardrails policy; auth off (the suite's default), so the page's key field stays empty."""
    entries = [
        ModelEntry(name=ECHO, engine="openai", url=echo_upstream.v1, context_length=4096),
        ModelEntry(name=TINY, engine="cpu", checkpoint=tiny_checkpoint),
    ]
    settings = Settings(models=entries, feedback=FeedbackSettings(file=feedback_file))
    server = serve_in_thread(create_app(settings))
    yield server
    server.stop()


@contextmanager
def opened(browser: Browser, url: str, name: str) -> Iterator[Page]:
    """The playground in a fresh browser context; a screenshot at the end; no CSP violation or script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{url}/ui/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        yield page
    finally:
        snap(page, name)
        context.close()
    unexpected = [e for e in errors if "Content Security Policy" in e or "Uncaught" in e]
    assert not unexpected, unexpected


@pytest.fixture
def page(browser: Browser, gateway: LiveServer, request: pytest.FixtureRequest) -> Iterator[Page]:
    with opened(browser, gateway.url, request.node.name) as page:
        yield page


def snap(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def ask(page: Page, text: str, model: str = ECHO, policy: str = "", **settings: Any) -> None:
    page.get_by_label("Model").select_option(model)
    page.get_by_label("Guardrails policy").select_option(policy)
    if "max_tokens" in settings:
        page.get_by_label("Max tokens", exact=True).fill(str(settings["max_tokens"]))
    if settings.get("ignore_eos"):
        page.get_by_label("Generate to max tokens (ignore_eos)").check()
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def last_answer(page: Page) -> Any:
    return page.locator("li.msg-assistant").last


def test_the_page_is_static_with_a_strict_csp(gateway: LiveServer) -> None:
    for path in ("/ui/", "/ui/app.js", "/ui/ui.css"):
        response = httpx.get(f"{gateway.url}{path}", timeout=30)
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    html = httpx.get(f"{gateway.url}/ui/", timeout=30).text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert "http://" not in html and "https://" not in html, "no CDN"
    assert httpx.get(f"{gateway.url}/ui/../app/main.py", timeout=30).status_code == 404
    assert httpx.get(f"{gateway.url}/ui/nothing.js", timeout=30).status_code == 404
    info = httpx.get(f"{gateway.url}/ui/api/guardrails", timeout=30).json()
    assert info["default_policy"] == "default" and {"default", "strict"} <= {p["name"] for p in info["policies"]}
    assert set(info["moderation_thresholds"]) == {"pii", "toxicity", "harmful_request", "prompt_injection"}


def test_a_message_gets_a_streamed_answer(page: Page) -> None:
    # long enough that the output guard's rolling buffer releases it in several pieces
    text = " ".join(f"Sentence {i} of the playground answer, streamed word by word." for i in range(8))
    ask(page, text)
    answer = last_answer(page)
    expect(answer.locator(".msg-text")).to_have_text(text)
    assert int(answer.get_attribute("data-deltas") or 0) > 1, "the answer arrived in one piece: not streamed"
    expect(page.locator("#chat-status")).to_have_text("Done (stop).")
    panel = answer.locator("details.guard-panel")
    panel.locator("summary").click()
    expect(panel).to_contain_text("Time to first token")
    expect(panel).to_contain_text("Policy: default")
    expect(panel.locator("dd").first).to_have_text(re.compile(r"^\d+ ms$"))


def test_a_masked_email_is_highlighted_by_type(page: Page) -> None:
    ask(page, "Please write to MADEUP about the invoice")  # the echo model answers with an e-mail address
    answer = last_answer(page)
    masked = answer.locator("mark.entity-EMAIL_ADDRESS")
    expect(masked).to_be_visible()
    expect(masked).to_contain_text("*****")  # the default policy masks answers
    expect(masked.locator(".entity-tag")).to_have_text("EMAIL_ADDRESS")
    expect(answer).not_to_contain_text("carol.white")
    expect(answer.locator(".chips")).to_contain_text("pii: mask (EMAIL_ADDRESS×1)")

    ask(page, "Now again MADEUP please", policy="strict")  # strict puts a typed placeholder
    answer = last_answer(page)
    placeholder = answer.locator("mark.entity-EMAIL_ADDRESS")
    expect(placeholder).to_contain_text("<EMAIL_ADDRESS>")
    expect(answer.locator("details.guard-panel caption")).to_have_text("Policy: strict")


def test_input_pii_is_reported_and_only_stricter_policies_offered(page: Page) -> None:
    ask(page, "My address is jane.roe@example.com, reply to MADEUP")
    sent = page.locator("li.msg-user").last
    # the model saw a pseudonym (the answer gets the caller's own address back); the prompt says what was replaced
    expect(sent.locator(".chips")).to_contain_text("pii: pseudonymize (EMAIL_ADDRESS×1)")
    # and marks it in the prompt, by type, where the model saw a pseudonym (the offsets the gateway reported)
    mark = sent.locator("mark.entity-EMAIL_ADDRESS")
    expect(mark).to_have_count(1)
    expect(mark).to_contain_text("jane.roe@example.com")
    expect(last_answer(page).locator(".msg-text")).to_contain_text("jane.roe@example.com")
    expect(last_answer(page).locator("mark.entity-EMAIL_ADDRESS")).to_have_count(1)  # the made-up one, masked

    picker = page.get_by_label("Guardrails policy")
    expect(picker.locator("option[value=strict]")).to_have_count(1)
    for weaker in ("observe", "unguarded"):  # flag-only / none: weaker than the key's (the default), never offered
        expect(picker.locator(f"option[value={weaker}]")).to_have_count(0)


def test_feedback_is_submitted_and_stored(page: Page, gateway: LiveServer, feedback_file: Path) -> None:
    ask(page, "Tell me something to rate")
    answer = last_answer(page)
    expect(answer.locator(".msg-text")).to_have_text("Tell me something to rate")
    answer.get_by_role("button", name="Bad answer").click()
    answer.get_by_label("Inaccurate").check()
    answer.get_by_label("Unhelpful").check()
    answer.get_by_label("Comment").fill("It only repeated me")
    answer.get_by_label("A better answer (optional)").fill("Here is something worth rating.")
    answer.get_by_role("button", name="Send feedback").click()
    status = answer.locator(".feedback-status")
    expect(status).to_have_text(re.compile(r"Thank you: feedback fb-\S+ stored\."))
    feedback_id = re.search(r"fb-\S+", status.inner_text() or "").group(0).rstrip(".")  # type: ignore[union-attr]
    stored = httpx.get(f"{gateway.v1}/feedback/{feedback_id}", timeout=30).json()
    assert stored["rating"] == "down" and stored["categories"] == ["inaccurate", "unhelpful"]
    assert stored["comment"] == "It only repeated me" and stored["preferred"] == "Here is something worth rating."
    assert stored["response_id"].startswith("chatcmpl-") and stored["record_kept"] is True
    assert feedback_id in feedback_file.read_text()


def test_a_toxic_prompt_is_blocked_and_explained(page: Page, gateway: LiveServer) -> None:
    moderation = httpx.post(f"{gateway.v1}/moderations", json={"input": TOXIC}, timeout=60).json()
    assert moderation["results"][0]["categories"]["toxicity"] is True, moderation

    ask(page, TOXIC)
    notice = page.locator("li.msg-user").last.locator(".notice-blocked")
    expect(notice).to_contain_text("Blocked (content_filter)")
    expect(notice).to_contain_text("toxicity")
    expect(notice).to_contain_text("The guardrails blocked this prompt before the model saw it.")
    expect(page.locator("li.msg-assistant")).to_have_count(0)
    snap(page, "test_a_toxic_prompt_is_blocked_in_chat")

    page.get_by_role("button", name="Moderation").click()
    page.get_by_label("Text to moderate").fill(TOXIC)
    page.get_by_role("button", name="Moderate", exact=True).click()
    expect(page.locator(".verdict")).to_have_text("Flagged")
    row = page.locator("tr[data-category=toxicity]")
    expect(row.locator("td").last).to_have_text("yes")
    expect(row.locator("td").nth(1)).to_have_text(re.compile(r"^0\.\d{3}$"))  # the threshold


def _sse(*events: dict[str, Any] | str) -> str:
    return "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\r\n\r\n" for e in events)


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "choices": [choice], **extra}


def test_a_content_filter_ending_and_a_stream_error_are_explained(page: Page) -> None:
    """The gateway's stream answers are scripted here (the page's fetch is intercepted): the output toxicity guard
    ending an answer cannot be provoked on demand with the echo model, whose input guards see the same text first."""
    explanation = {
        "policy": "default",
        "input": [],
        "output": [{"guard": "toxicity", "action": "block", "score": 0.99}],
    }
    ended = _sse(
        _chunk({"role": "assistant", "content": ""}, guardrails={"policy": "default", "input": [], "output": []}),
        _chunk({"content": "The first part was fine, "}),
        _chunk({"content": "and then"}),
        _chunk({}, "content_filter"),
        {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "choices": [], "guardrails": explanation},
        "[DONE]",
    )
    failed = _sse(
        _chunk({"role": "assistant", "content": "Half an ans"}),
        {"error": {"message": "upstream went away", "type": "server_error", "code": "upstream_error"}},
        "[DONE]",
    )
    bodies = iter([ended, failed])
    page.route(
        "**/v1/chat/completions",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=next(bodies)),
    )
    ask(page, "Say something that ends badly")
    answer = last_answer(page)
    expect(answer.locator(".msg-text")).to_have_text("The first part was fine, and then")
    expect(answer.locator(".notice-blocked")).to_contain_text("finish_reason: content_filter")
    expect(answer.locator(".notice-blocked")).to_contain_text("(toxicity)")
    ask(page, "And now an error")
    answer = last_answer(page)
    expect(answer.locator(".msg-text")).to_have_text("Half an ans")
    expect(answer.locator(".notice-error")).to_contain_text("upstream_error")
    expect(answer.locator(".notice-error")).to_contain_text("upstream went away")


def _inflight(gateway: LiveServer) -> int:
    return int(httpx.get(f"{gateway.url}/ready", timeout=30).json()["models"][TINY]["inflight"])


def _cancelled(gateway: LiveServer) -> float:
    """Chat requests the gateway counted as abandoned by the client (status 499)."""
    text = httpx.get(f"{gateway.url}/metrics", timeout=30).text
    pattern = r'^guardserve_requests_total\{[^}]*model="tiny"[^}]*status="499"[^}]*\} ([0-9.e+]+)$'
    return sum(float(v) for v in re.findall(pattern, text, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def unguarded_gateway(tiny_checkpoint: Path) -> Iterator[LiveServer]:
    """The tiny model with guardrails off: its random text would now and then be blocked as toxic (a
    ``content_filter`` ending), and this test is about stopping, not about the guards."""
    server = serve_in_thread(create_app(cpu_settings(tiny_checkpoint)))
    yield server
    server.stop()


def test_stop_aborts_the_stream_and_the_generation(browser: Browser, unguarded_gateway: LiveServer) -> None:
    gateway = unguarded_gateway
    before = _cancelled(gateway)
    with opened(browser, gateway.url, "test_stop_aborts_the_stream_and_the_generation") as page:
        ask(page, "Write for a long time", model=TINY, max_tokens=1900, ignore_eos=True)
        answer = last_answer(page)
        expect(answer.locator(".msg-text")).not_to_be_empty()  # text is streaming
        expect(page.get_by_role("button", name="Stop")).to_be_enabled()
        assert _inflight(gateway) == 1
        page.get_by_role("button", name="Stop").click()
        expect(answer.locator(".notice-stopped")).to_contain_text("Stopped")
        expect(page.locator("#chat-status")).to_have_text("Stopped.")
        wait_until(lambda: _inflight(gateway) == 0, timeout=60, what="the engine's in-flight count back to 0")
        wait_until(lambda: _cancelled(gateway) > before, timeout=60, what="the request counted as abandoned (499)")
        expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()


def test_narrow_window_and_keyboard_use(page: Page) -> None:
    page.set_viewport_size({"width": 380, "height": 900})
    page.get_by_label("Model").select_option(ECHO)
    page.get_by_label("Message").focus()
    page.keyboard.type("Sent from the keyboard")
    page.keyboard.press("Control+Enter")
    expect(last_answer(page).locator(".msg-text")).to_have_text("Sent from the keyboard")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 380, f"the page scrolls sideways in a narrow window ({width} px)"


def serious_violations(page: Page, where: str) -> list[tuple[str, str, str, str]]:
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [(where, v["id"], v["impact"], v["help"]) for v in violations if v["impact"] in ("serious", "critical")]


def test_no_serious_accessibility_violations(page: Page) -> None:
    page.get_by_role("button", name="Moderation", exact=True).click()
    page.get_by_label("Text to moderate").fill("Is this fine?")
    page.get_by_role("button", name="Moderate", exact=True).click()
    expect(page.locator("table.moderation")).to_be_visible()
    found = serious_violations(page, "moderation")
    page.get_by_role("button", name="Chat", exact=True).click()
    ask(page, "Write to MADEUP for the accessibility scan")
    answer = last_answer(page)
    expect(answer.locator("mark.entity")).to_be_visible()
    answer.locator("details.guard-panel summary").click()
    answer.get_by_role("button", name="Good answer").click()
    expect(answer.locator(".feedback-form")).to_be_visible()
    ask(page, TOXIC)  # a blocked prompt's notice too
    expect(page.locator(".notice-blocked")).to_be_visible()
    found += serious_violations(page, "chat")
    page.set_viewport_size({"width": 380, "height": 900})
    found += serious_violations(page, "chat, narrow")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 380, f"the page scrolls sideways in a narrow window ({width} px)"
    assert not found, found


@pytest.fixture(scope="module")
def keyed_gateway(echo_upstream: LiveServer) -> Iterator[LiveServer]:
    """API keys and limits on, kept in process memory (no Redis): the bootstrap admin key opens the keys page."""
    settings = Settings(
        models=[ModelEntry(name=ECHO, engine="openai", url=echo_upstream.v1, context_length=4096)],
        guardrails=GuardrailSettings(enabled=False),
        auth=AuthSettings(enabled=True, pepper=PEPPER, admin_key=ADMIN_KEY, dev_key=False),  # type: ignore[arg-type]
        limits=LimitSettings(enabled=True),  # in process memory too: the usage view reads them
    )
    server = serve_in_thread(create_app(settings))
    yield server
    server.stop()


def test_admin_keys_page_creates_rotates_and_revokes(browser: Browser, keyed_gateway: LiveServer) -> None:
    with opened(browser, keyed_gateway.url, "test_admin_keys_page_usage") as page:
        expect(page.locator("#key-status")).to_contain_text("Cannot list models")  # no key yet: 401
        page.get_by_label("API key", exact=True).fill(ADMIN_KEY)
        page.get_by_role("button", name="Use key").click()
        expect(page.locator("#key-status")).to_have_text("1 model available.")
        assert page.evaluate("sessionStorage.length") == 1 and page.evaluate("localStorage.length") == 0
        assert page.context.cookies() == []
        page.get_by_role("button", name="Keys").click()
        page.get_by_label("Tenant", exact=True).fill("acme")
        page.get_by_label("Name", exact=True).fill("ui test")
        page.get_by_role("button", name="Create key").click()
        expect(page.locator("#new-key code")).to_have_text(re.compile(r"^gs-[0-9a-f]{12}-"))
        row = page.locator("#keys-table tbody tr", has_text="ui test")
        expect(row).to_contain_text("active")
        key_id = row.locator("td").first.inner_text()
        row.get_by_role("button", name=f"Rotate key {key_id}").click()
        expect(page.locator("#new-key")).to_contain_text("rotated")
        rows = page.locator("#keys-table tbody tr", has_text="acme")
        expect(rows).to_have_count(2)
        fresh = rows.filter(has_not_text=key_id).locator("td").first.inner_text()
        page.get_by_role("button", name=f"Revoke key {fresh}").click()
        expect(page.locator("#keys-table tbody tr", has_text=fresh)).to_contain_text("revoked")
        snap(page, "test_admin_keys_page")
        assert not serious_violations(page, "keys")
        page.get_by_label("Name", exact=True).fill("usage test")
        page.get_by_role("button", name="Create key").click()
        expect(page.locator("#keys-table tbody tr", has_text="usage test")).to_contain_text("active")
        used_key = page.locator("#new-key code").inner_text()
        chat = {"model": ECHO, "messages": [{"role": "user", "content": "count me"}], "max_tokens": 8}
        for _ in range(2):
            sent = httpx.post(
                f"{keyed_gateway.v1}/chat/completions",
                json=chat,
                headers={"Authorization": f"Bearer {used_key}"},
                timeout=60,
            )
            assert sent.status_code == 200, sent.text
        page.get_by_role("button", name="Usage").click()
        used = page.locator("#usage-limits tbody tr", has_text="usage test")
        expect(used).to_contain_text("acme")
        expect(used).to_contain_text("2 / 600")  # its two requests, of the default 600 per minute
        expect(page.locator("#usage-result table")).to_have_count(2)  # the limits, then the counters
        snap(page, "test_usage_page")
        assert not serious_violations(page, "usage")
