"""The dashboard in a real browser (Debian's Chromium, headless), against the real system:
log in, live workers, a workload fed through the drop zone, thumbnails, the archive, an
escaped name, the users page, another user's view, log out. A screenshot of each step goes
to artifacts/dashboard/ (gitignored)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.conftest import ADMIN_PASSWORD, Cluster, image_bytes

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
XSS_NAME = "<img src=x onerror=alert(1)>"
WAIT_MS = 15_000  # the longest any one step may take

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"
)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Debian's Chromium: Playwright's own browser download cannot reach the internet."""
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": ["--no-sandbox"],
    }


@pytest.fixture
def tab(browser: Browser, cluster: Cluster) -> Iterator[Page]:
    context = browser.new_context(base_url=cluster.url, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("#who")).to_have_text(username)


def log_out(page: Page) -> None:
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/ui/login$"))


def create_workload(page: Page, name: str) -> None:
    page.fill("input[name=workload_name]", name)
    page.click("form.create button[type=submit]")
    expect(page.locator("#workloads .name a", has_text=name)).to_have_count(1)


def test_the_dashboard_in_a_browser(tab: Page, cluster: Cluster) -> None:
    dialogs: list[Dialog] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog), dialog.dismiss()))
    refused = []  # what the Content-Security-Policy blocked: the pages need nothing inline
    tab.on("console", lambda m: "Content Security Policy" in m.text and refused.append(m.text))

    log_in(tab, "admin", ADMIN_PASSWORD)
    workers = tab.locator("#workers .state")
    expect(workers).to_have_text(["alive", "alive"])
    cpu = tab.locator("#workers .cpu")
    first = cpu.all_inner_texts()
    expect(cpu).not_to_have_text(first)  # live: the figures move without a reload
    shot(tab, "01-overview")

    create_workload(tab, "dashboard-first")
    tab.click("#workloads .name a >> text=dashboard-first")
    expect(tab.locator("#workload-name")).to_have_text("dashboard-first")
    first_workload_path = urlsplit(tab.url).path
    images = [
        {"name": f"dropped-{seed}.png", "mimeType": "image/png", "buffer": image_bytes(seed=seed)}
        for seed in range(3)
    ]
    tab.set_input_files("#files", images)
    expect(tab.locator("#upload-status")).to_have_text("3 of 3 uploaded")
    assert tab.eval_on_selector("#upload-progress", "bar => bar.value") == 1
    expect(tab.locator("#workload-count")).to_have_text("3 / 3")
    expect(tab.locator("#workload-status")).to_have_text("completed")
    expect(tab.locator("#thumbs img")).to_have_count(3)
    tab.wait_for_function(
        "() => [...document.querySelectorAll('#thumbs img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    shot(tab, "02-workload")

    with tab.expect_download() as download:
        tab.click("#archive")
    with zipfile.ZipFile(download.value.path()) as archive:
        assert sorted(archive.namelist()) == [
            "000000.png",
            "000001.png",
            "000002.png",
            "manifest.json",
        ]

    tab.click("#thumbs a >> nth=0")
    expect(tab.locator(".side-by-side img")).to_have_count(2)
    shot(tab, "03-image")

    tab.goto("/")
    create_workload(tab, XSS_NAME)
    expect(tab.locator("#workloads .name a", has_text=XSS_NAME)).to_have_text(XSS_NAME)
    assert tab.locator("#workloads img").count() == 0 and dialogs == []
    shot(tab, "04-escaped-name")

    tab.goto("/ui/users")
    tab.fill("input[name=username]", "dashboard-second")
    tab.fill("input[name=password]", "dashboard-second-password")
    tab.click("form.create button[type=submit]")
    expect(tab.locator('#users tr[data-user="dashboard-second"]')).to_have_count(1)
    tab.fill("input[name=username]", "dashboard-doomed")
    tab.fill("input[name=password]", "dashboard-doomed-password")
    tab.click("form.create button[type=submit]")
    doomed = tab.locator('#users tr[data-user="dashboard-doomed"]')
    expect(doomed).to_have_count(1)
    doomed.locator("button").click()
    expect(doomed).to_have_count(0)
    shot(tab, "05-users")
    log_out(tab)

    log_in(tab, "dashboard-second", "dashboard-second-password")
    expect(tab.locator("#workloads")).to_contain_text("No workload")
    expect(tab.locator("#workloads")).not_to_contain_text("dashboard-first")
    assert tab.goto(first_workload_path).status == 404
    tab.goto("/")
    shot(tab, "06-second-user")
    log_out(tab)
    shot(tab, "07-logged-out")
    assert dialogs == [] and refused == []
