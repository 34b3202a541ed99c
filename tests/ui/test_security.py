"""The dashboard's security, over HTTP against the real server (and one browser check):
escaping, the Content-Security-Policy, CSRF, signing out, project isolation, the key."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.inference.conftest import Trained
from tests.conftest import Stack
from tests.ui.conftest import csrf_of, session_client, shot, sign_in

HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_LABELS = ["<b>bold</b>", "<img src=x onerror=alert(2)>"]
HOSTILE_TEXT = "<script>alert(3)</script> is a text like any other"
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def hostile_dataset(stack: Stack) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    for i in range(6):
        for label in HOSTILE_LABELS:
            writer.writerow([f"example {i} of {label} with some words", label])
    writer.writerow([HOSTILE_TEXT, HOSTILE_LABELS[0]])
    writer.writerow([HOSTILE_TEXT, HOSTILE_LABELS[1]])  # a conflicting duplicate, shown
    resp = stack.client.post(
        "/v1/datasets",
        headers=stack.headers(),
        files={"file": ("hostile.csv", out.getvalue().encode())},
        data={"task": "text_classification", "name": HOSTILE_NAME},
    )
    assert resp.status_code == 201, resp.text
    dataset_id: str = resp.json()["id"]
    return dataset_id


@pytest.fixture
def client_a(stack: Stack, ui_url: str) -> Any:
    with session_client(ui_url, stack.key_a) as client:
        yield client


def test_user_data_is_escaped(client_a: httpx.Client, hostile_dataset: str) -> None:
    for path in ("/ui/datasets", f"/ui/datasets/{hostile_dataset}", "/ui"):
        html = client_a.get(path).text
        assert HOSTILE_NAME not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        for raw in (*HOSTILE_LABELS, "<script>alert(3)"):
            assert raw not in html, (path, raw)
    page = client_a.get(f"/ui/datasets/{hostile_dataset}").text
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # the label, in the chart and list
    assert "&lt;script&gt;alert(3)&lt;/script&gt; is a text" in page  # the duplicate's text


def test_hostile_data_runs_no_script_in_a_browser(
    page: Any, stack: Stack, hostile_dataset: str, tmp_path: Path
) -> None:
    """The page fixture fails the test on any dialog or console error."""
    sign_in(page, stack.key_a, f"/ui/datasets/{hostile_dataset}")
    assert page.locator('[data-test="dataset-name"]').inner_text() == HOSTILE_NAME
    assert page.locator('[data-test="duplicates"]').inner_text().count("<script>alert(3)") == 2
    shot(page, tmp_path, "13-hostile-names-escaped")


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
_INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
_INLINE_STYLE = re.compile(r"<[^>]*\sstyle\s*=", re.I)


def test_content_security_policy(client_a: httpx.Client, image_model: Trained) -> None:
    pages = [
        "/ui",
        "/ui/datasets",
        "/ui/jobs",
        "/ui/jobs/new",
        "/ui/models",
        f"/ui/models/{image_model.name}",
        f"/ui/models/{image_model.name}/versions/{image_model.version}",
        f"/ui/datasets/{image_model.dataset_id}",
        "/ui/datasets/ds_missing",
    ]
    for path in pages:
        resp = client_a.get(path)
        assert resp.status_code in (200, 404), (path, resp.status_code)
        csp = resp.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert directives["frame-ancestors"] == "'none'"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cache-control"] == "no-store"
        html = resp.text
        # Nothing on a page needs what the policy refuses.
        assert not _INLINE_SCRIPT.search(html), path
        assert not _INLINE_HANDLER.search(html), path
        assert not _INLINE_STYLE.search(html), path
    signin = httpx.get(f"{client_a.base_url}/ui/signin")
    assert "script-src 'self'" in signin.headers["content-security-policy"]


def _job_of(stack: Stack, model: Trained) -> str:
    version = stack.client.get(
        f"/v1/models/{model.name}/versions/{model.version}", headers=stack.headers()
    ).json()
    job_id: str = version["job_id"]
    return job_id


def test_forged_posts_are_refused(
    client_a: httpx.Client, stack: Stack, image_model: Trained, ui_url: str
) -> None:
    token = csrf_of(client_a.get("/ui/jobs").text)
    job_id = _job_of(stack, image_model)
    aliases = f"/ui/models/{image_model.name}/aliases"
    forms: list[tuple[str, dict[str, str]]] = [
        (f"/ui/jobs/{job_id}/cancel", {}),
        (aliases, {"alias": "forged", "version": str(image_model.version)}),
        ("/ui/signout", {}),
    ]
    for path, fields in forms:
        for extra, headers in (
            ({}, {}),  # no token
            ({"csrf_token": "not-the-token"}, {}),
            ({"csrf_token": token}, {"Origin": EVIL}),  # the right token, from another site
            ({"csrf_token": token}, {"Origin": "null"}),
        ):
            resp = client_a.post(path, data={**fields, **extra}, headers=headers)
            assert resp.status_code == 403, (path, extra, headers, resp.text)
    model = stack.client.get(f"/v1/models/{image_model.name}", headers=stack.headers()).json()
    assert "forged" not in model["aliases"]
    assert client_a.get("/ui").status_code == 200  # still signed in

    # Scripts' requests carry the token in a header.
    upload = {"file": ("x.zip", b"PK"), "task": (None, "image_classification")}
    predict = f"/ui/api/v1/models/{image_model.name}/predict?version={image_model.version}"
    for path in ("/ui/api/v1/datasets", predict, "/ui/api/v1/jobs"):
        assert client_a.post(path, files=upload).status_code == 403, path
        assert client_a.post(path, headers={"X-CSRF-Token": "nope"}).status_code == 403
        forged = client_a.post(path, headers={"X-CSRF-Token": token, "Origin": EVIL})
        assert forged.status_code == 403, path
        assert forged.headers["content-type"].startswith("application/problem+json")

    # The token itself works: the refusals above were the CSRF check's, not the handlers'.
    done = client_a.post(f"/ui/jobs/{job_id}/cancel", data={"csrf_token": token})
    assert done.status_code == 409 and "already succeeded" in done.text

    # Signing in is protected too (no login CSRF): the form's own token and our Origin.
    with httpx.Client(base_url=ui_url) as fresh:
        fresh.get("/ui/signin")
        resp = fresh.post("/ui/signin", data={"api_key": stack.key_b, "next": "/ui"})
        assert resp.status_code == 403
        assert "hone_session" not in resp.headers.get("set-cookie", "")


def test_a_cross_site_page_cannot_act_for_the_user(
    page: Any, stack: Stack, image_model: Trained, ui_url: str
) -> None:
    """A form on another site posting to the dashboard: SameSite=Strict keeps the session
    cookie off the request, and the CSRF check refuses it in any case."""
    sign_in(page, stack.key_a)
    target = f"{ui_url}/ui/models/{image_model.name}/aliases"
    attack = (
        f'<form id="f" method="post" action="{target}">'
        f'<input name="alias" value="hijacked"><input name="version" value="1"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    page.route(
        f"{EVIL}/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=attack),
    )
    page.goto(f"{EVIL}/prize")
    page.wait_for_load_state("networkidle")
    # The post arrived without the session cookie: the dashboard asked for a sign-in.
    assert page.url.startswith(f"{ui_url}/ui/signin")
    page.console_errors.clear()  # whatever Chromium says about the other site's request
    model = stack.client.get(f"/v1/models/{image_model.name}", headers=stack.headers()).json()
    assert "hijacked" not in model["aliases"]


def test_signing_out_ends_the_session(stack: Stack, ui_url: str) -> None:
    with session_client(ui_url, stack.key_a) as client:
        cookie = client.cookies.get("hone_session", path="/ui")
        assert cookie and client.get("/ui").status_code == 200
        token = csrf_of(client.get("/ui").text)
        resp = client.post("/ui/signout", data={"csrf_token": token})
        assert resp.status_code == 303 and resp.headers["location"] == "/ui/signin"
        cleared = resp.headers["set-cookie"]
        assert cleared.startswith('hone_session=""') and "Max-Age=0" in cleared
        assert "hone_session" not in client.cookies
        after = client.get("/ui/datasets")
        assert after.status_code == 303 and after.headers["location"].startswith("/ui/signin")
    # A copy of the cookie, replayed, is refused too.
    with httpx.Client(base_url=ui_url, cookies={"hone_session": cookie}) as replay:
        assert replay.get("/ui").status_code == 303
        assert replay.get("/ui/api/v1/jobs/job_x").status_code == 401


def test_another_projects_pages_are_404(
    stack: Stack, ui_url: str, image_model: Trained, text_model: Trained
) -> None:
    job_id = _job_of(stack, image_model)
    name, number = image_model.name, image_model.version
    with session_client(ui_url, stack.key_b) as other:
        token = csrf_of(other.get("/ui").text)
        for path in (
            f"/ui/datasets/{image_model.dataset_id}",
            f"/ui/datasets/{image_model.dataset_id}/examples/0.png",
            f"/ui/jobs/{job_id}",
            f"/ui/models/{name}",
            f"/ui/models/{name}/versions/{number}",
            f"/ui/api/v1/jobs/{job_id}",
            f"/ui/api/v1/jobs/{job_id}/events",
        ):
            assert other.get(path).status_code == 404, path
        headers = {"X-CSRF-Token": token}
        predict = other.post(
            f"/ui/api/v1/models/{text_model.name}/predict?version={text_model.version}",
            json={"inputs": ["hello"]},
            headers=headers,
        )
        assert predict.status_code == 404
        cancel = other.post(f"/ui/jobs/{job_id}/cancel", data={"csrf_token": token})
        assert cancel.status_code == 404
        alias = other.post(
            f"/ui/models/{name}/aliases",
            data={"csrf_token": token, "alias": "theirs", "version": str(number)},
        )
        assert alias.status_code == 404
        for listing in ("/ui/datasets", "/ui/jobs", "/ui/models"):
            html = other.get(listing).text
            assert image_model.dataset_id not in html and job_id not in html
            assert f"/ui/models/{name}" not in html
    model = stack.client.get(f"/v1/models/{name}", headers=stack.headers()).json()
    assert "theirs" not in model["aliases"]


def test_the_key_never_reaches_a_page(
    stack: Stack, ui_url: str, image_model: Trained, hostile_dataset: str
) -> None:
    key = stack.key_a
    with httpx.Client(base_url=ui_url, headers={"Origin": ui_url}) as client:
        token = csrf_of(client.get("/ui/signin").text)
        wrong = client.post(
            "/ui/signin", data={"api_key": key + "x", "csrf_token": token, "next": "/ui"}
        )
        assert wrong.status_code == 401 and key not in wrong.text  # not echoed back
        token = csrf_of(wrong.text)
        resp = client.post("/ui/signin", data={"api_key": key, "csrf_token": token})
        assert resp.status_code == 303 and key not in resp.headers["location"]
        assert key not in resp.headers["set-cookie"]
        for path in (
            "/ui",
            "/ui/datasets",
            f"/ui/datasets/{hostile_dataset}",
            "/ui/jobs",
            "/ui/jobs/new",
            "/ui/models",
            f"/ui/models/{image_model.name}/versions/{image_model.version}",
            f"/ui/api/v1/jobs/{_job_of(stack, image_model)}",
        ):
            answer = client.get(path)
            assert answer.status_code == 200 and key not in answer.text, path
            assert key[5:17] not in answer.text  # not even the key's lookup prefix


def test_session_cookie_flags(stack: Stack, ui_url: str) -> None:
    with httpx.Client(base_url=ui_url, headers={"Origin": ui_url}) as client:
        token = csrf_of(client.get("/ui/signin").text)
        resp = client.post("/ui/signin", data={"api_key": stack.key_a, "csrf_token": token})
        flags = resp.headers["set-cookie"].lower()
        assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
        assert "secure" not in flags  # plain http: a Secure cookie would never come back
    # Behind a TLS-terminating proxy on this host (uvicorn trusts its X-Forwarded-Proto).
    https = {"X-Forwarded-Proto": "https"}
    origin = ui_url.replace("http://", "https://")
    with httpx.Client(base_url=ui_url, headers={**https, "Origin": origin}) as client:
        page = client.get("/ui/signin")
        assert "secure" in page.headers["set-cookie"].lower()
        client.cookies.set("hone_signin", page.cookies["hone_signin"])
        resp = client.post(
            "/ui/signin", data={"api_key": stack.key_a, "csrf_token": csrf_of(page.text)}
        )
        assert resp.status_code == 303, resp.text
        assert "secure" in resp.headers["set-cookie"].lower()


def test_thumbnails(client_a: httpx.Client, image_model: Trained, hostile_dataset: str) -> None:
    """An image dataset's examples answer small PNGs; a text dataset has none."""
    resp = client_a.get(f"/ui/datasets/{image_model.dataset_id}/examples/0.png")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
    assert resp.content.startswith(b"\x89PNG") and resp.headers["x-content-type-options"]
    assert (
        client_a.get(f"/ui/datasets/{image_model.dataset_id}/examples/99999.png").status_code == 404
    )
    assert client_a.get(f"/ui/datasets/{hostile_dataset}/examples/0.png").status_code == 404
