"""`grade serve` in headless Chromium: two students and the staff, as a course would use it.

A real `grade serve` process (SQLite, 127.0.0.1, a free port) grades real (tiny) notebooks; Playwright drives
Debian's Chromium (no browser download). Each student signs in with their personal link, uploads, watches the
status change without a reload and reads their report; student A is refused B's report; staff see both.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.service.conftest import course_rubric, running, tiny_notebook, tokens, write_roster

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not installed at {CHROMIUM}"),
]
GRADING_TIMEOUT_MS = 900_000
STEP_TIMEOUT_MS = 30_000


def test_two_students_and_the_staff_in_a_browser(tmp_path: Path, small_dataset: Path, cache_dir: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    rubric = course_rubric(tmp_path)
    roster = write_roster(tmp_path, ["ada", "bob"])
    data = tmp_path / "data"
    links = tokens(data, roster)
    staff_token = tokens(data, None, "--staff")["staff"]
    notebooks = {}
    for n, student in enumerate(("ada", "bob")):
        notebooks[student] = tmp_path / f"{student}-hw.ipynb"
        notebooks[student].write_bytes(tiny_notebook(100 + n))
    console_errors: list[tuple[str, str]] = []
    with (
        running(data, rubric, roster, small_dataset, cache_dir, "--jobs", "2") as server,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        pages = {}
        reports = {}
        for student in ("ada", "bob"):
            page = browser.new_context().new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.on(
                "console",
                lambda msg: console_errors.append((msg.location["url"], msg.text)) if msg.type == "error" else None,
            )
            page.on("pageerror", lambda error: console_errors.append(("", str(error))))
            page.goto(f"{server.url}/login#{links[student]}")
            page.wait_for_url(f"{server.url}/")
            assert "#" not in page.url  # the token left the address bar
            sync_api.expect(page.locator("#student")).to_have_text(student)
            page.set_input_files("input[name=notebook]", str(notebooks[student]))
            page.click("#upload button[type=submit]")
            sync_api.expect(page.locator("#notice")).to_contain_text("received")
            sync_api.expect(page.locator("#submissions tbody tr .status")).to_contain_text(re.compile("queued|running"))
            page.evaluate("window.notReloaded = true")
            pages[student] = page
        for student, page in pages.items():
            status = page.locator("#submissions tbody tr .status")
            sync_api.expect(status).to_have_text("graded", timeout=GRADING_TIMEOUT_MS)
            assert page.evaluate("window.notReloaded === true")  # the page updated itself
            link = page.locator("#submissions tbody tr .report a")
            reports[student] = link.get_attribute("href")
            link.click()
            sync_api.expect(page).to_have_title(re.compile(rf"^{student}: [0-9.]+ / 100 \(Image Classification"))
            assert "How the notebook ran" in page.content()

        # Student A opens B's report: refused, as if it did not exist.
        answer = pages["ada"].goto(f"{server.url}{reports['bob']}")
        assert answer is not None and answer.status == 404
        assert "bob" not in pages["ada"].content()

        staff = browser.new_context().new_page()
        staff.set_default_timeout(STEP_TIMEOUT_MS)
        staff.goto(f"{server.url}/login#{staff_token}")
        staff.wait_for_url(f"{server.url}/staff")
        rows = staff.locator("#submissions tbody tr")
        sync_api.expect(rows).to_have_count(2)
        sync_api.expect(rows.nth(0)).to_contain_text("ada")
        sync_api.expect(rows.nth(1)).to_contain_text("bob")
        for student in ("ada", "bob"):
            answer = staff.goto(f"{server.url}{reports[student]}")
            assert answer is not None and answer.status == 200
        staff.goto(f"{server.url}/staff/class/index.html")
        sync_api.expect(staff.locator("table").first).to_contain_text("ada")
        sync_api.expect(staff.locator("table").first).to_contain_text("bob")
        browser.close()
    refused = f"{server.url}{reports['bob']}"  # the one 404 expected: A's look at B's report
    assert [error for error in console_errors if error[0] != refused] == []
