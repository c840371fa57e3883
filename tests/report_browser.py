"""The run report of a sample run opened in headless Chromium (issue 16 item 4).

usage: report_browser.py REPORT_HTML [SCREENSHOT_PNG]

Chromium is Debian's (/usr/bin/chromium, or $CHROMIUM), driven by playwright
without a browser download. The page must load from file:// without a console
error, a page error or any request other than itself; every chart figure must
hold an SVG with drawn shapes (the bundled job's six charts and the stage
timings); the header shows the run's status. A full-page screenshot is taken
(default /tmp/c360-report.png) and its size checked: a page that rendered its
charts is a few thousand pixels tall, not a blank strip.
"""

import os
import struct
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

report = Path(sys.argv[1]).resolve()
shot = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/c360-report.png")
chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The bundled job's charts, in its order, and the stage timings.
CHARTS = ["chart-1", "chart-2", "chart-3", "chart-4", "chart-5", "chart-6", "chart-stages"]
failures = []


def check(ok, message):
    print(("ok   " if ok else "FAIL ") + message)
    if not ok:
        failures.append(message)


with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path=chromium,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    console_errors, page_errors, requests = [], [], []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri(), wait_until="load")
    page.wait_for_timeout(300)

    check(not console_errors, f"no console errors {console_errors}")
    check(not page_errors, f"no page errors {page_errors}")
    others = [u for u in requests if u != report.as_uri()]
    check(not others, f"the page requests nothing but itself {others}")
    check(page.locator("#status").inner_text() == "succeeded",
          f"status shown: {page.locator('#status').inner_text()!r}")
    check(page.locator("script").count() == 0, "no script element")

    for chart in CHARTS:
        figure = page.locator(f"figure#{chart}")
        if figure.count() != 1:
            check(False, f"{chart}: figure present")
            continue
        title = figure.locator("figcaption").inner_text() if chart != "chart-stages" else "stages"
        svg = figure.locator("svg")
        shapes = figure.locator("svg rect, svg polyline, svg path, svg line").count()
        texts = figure.locator("svg text").count()
        box = svg.first.bounding_box() if svg.count() else None
        check(svg.count() == 1 and box is not None and box["width"] > 300 and box["height"] > 100,
              f"{chart} ({title}): one SVG drawn at {box and (round(box['width']), round(box['height']))}")
        check(shapes >= 5 and texts >= 3, f"{chart} ({title}): {shapes} shapes, {texts} texts")
        check(figure.locator(".chart-error").count() == 0, f"{chart} ({title}): no chart error")
    # The value-segment chart compares with the previous snapshot: two bar colours.
    fills = page.eval_on_selector_all(
        "figure#chart-1 svg rect", "els => [...new Set(els.map(e => e.getAttribute('fill')))]")
    check(len(fills) >= 3, f"chart-1 draws this and the previous snapshot ({fills})")

    page.screenshot(path=str(shot), full_page=True)
    browser.close()

# PNG header: width and height are the two big-endian u32 after the IHDR tag.
data = shot.read_bytes()
width, height = struct.unpack(">II", data[16:24])
check(data[:8] == b"\x89PNG\r\n\x1a\n", f"screenshot is a PNG: {shot}")
check(width == 1200 and 2500 < height < 20000, f"screenshot {width}x{height} px")
check(len(data) > 100_000, f"screenshot holds a drawn page ({len(data)} bytes)")

if failures:
    print(f"{len(failures)} failed")
    sys.exit(1)
print("report renders in Chromium")
