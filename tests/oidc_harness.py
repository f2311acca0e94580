"""npm's oidc-provider (OpenID certified) for tests, on 127.0.0.1, and a person who
approves a device login in it by following its pages' forms, as a browser would."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from tests.process_harness import stop, wait_for_ports

FIXTURE = Path(__file__).parent / "fixtures" / "oidc" / "provider.mjs"


def oidc_dir() -> Path:
    """Where scripts/bootstrap.sh installed oidc-provider."""
    return Path(
        os.environ.get("MOORAGE_OIDC_DIR")
        or Path(os.environ.get("MOORAGE_CACHE", "/var/cache/moorage")) / "oidc"
    )


class OidcServer:
    def __init__(self, folder: Path, accounts: dict[str, list[str]], id_token_ttl: int = 3600,
                 console_redirect: str = "") -> None:  # fmt: skip
        self.console_redirect = console_redirect
        self.folder = folder
        self.accounts = accounts
        self.ttl = id_token_ttl
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        home = oidc_dir()
        if not (home / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(f"oidc-provider is not installed in {home}: run the README's test command")
        self.folder.mkdir(parents=True, exist_ok=True)
        script = home / "provider.mjs"  # beside node_modules, where node resolves the import
        shutil.copy(FIXTURE, script)
        accounts = self.folder / "accounts.json"
        accounts.write_text(json.dumps({k: {"groups": v} for k, v in self.accounts.items()}))
        log = open(self.folder / "oidc.log", "wb")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            ["node", str(script), str(self.port), str(accounts)],
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ID_TOKEN_TTL": str(self.ttl), "CONSOLE_REDIRECT": self.console_redirect},
        )
        wait_for_ports(self.proc, [self.port], self.folder / "oidc.log", "oidc-provider")

    def stop(self) -> None:
        stop(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = {"action": a.get("action", ""), "id": a.get("id"), "inputs": {}, "buttons": []}
            self.forms.append(self._open)
            return
        target = a.get("form")
        form = next((f for f in self.forms if target and f["id"] == target), self._open)
        if form is None and self.forms:
            form = self.forms[-1]
        if form is None or not a.get("name"):
            return
        if tag == "input":
            form["inputs"][a["name"]] = a.get("value", "")
        elif tag == "button":
            form["buttons"].append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def _next_form(page: requests.Response, login: str, password: str) -> tuple[str, dict[str, str]] | None:
    """The page's first form as a person would submit it (signed in as ``login``,
    confirming, never aborting): (action URL, fields), or None without a form."""
    parser = _Forms()
    parser.feed(page.text)
    forms = [f for f in parser.forms if f["inputs"] or f["buttons"]]
    if not forms:
        return None
    form = forms[0]
    data = dict(form["inputs"])
    if "login" in data:
        data["login"] = login
    if "password" in data:
        data["password"] = password
    data.update({name: value for name, value in form["buttons"] if name != "abort"})
    return urljoin(page.url, form["action"]), data


def approve(uri: str, login: str, password: str = "any") -> str:
    """Open ``uri`` and submit each page's form (confirm the code, sign in as
    ``login``, consent) until one has none; the last page's text."""
    session = requests.Session()
    page = session.get(uri, timeout=30)
    for _ in range(10):
        step = _next_form(page, login, password)
        if step is None:
            return page.text
        page = session.post(step[0], data=step[1], timeout=30)
    raise AssertionError("the device login pages did not end")


def follow_to(uri: str, login: str, until: str, password: str = "any") -> str:
    """Open ``uri`` as a browser would, submitting each page's form, until a redirect
    leads to ``until`` (a client's redirect URI): that URL, with its query."""
    session = requests.Session()
    method, url, data = "GET", uri, None
    for _ in range(20):
        page = session.request(method, url, data=data, timeout=30, allow_redirects=False)
        if page.is_redirect:
            url, method, data = urljoin(url, page.headers["location"]), "GET", None
            if url.startswith(until):
                return url
            continue
        step = _next_form(page, login, password)
        if step is None:
            raise AssertionError(f"no form and no redirect at {url}")
        method, url, data = "POST", step[0], step[1]
    raise AssertionError("the login pages did not end")
