"""Screenshot of a run's report page (the README's picture): headless Debian Chromium through Playwright.

.venv/bin/python scripts/report-screenshot.py RUN_DIR OUT.png [--height 2200]
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _browser import chromium_page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2200, help="pixels from the top of the page")
    args = parser.parse_args()
    page_file = (args.run_dir / "report" / "index.html").resolve()
    with (
        tempfile.TemporaryDirectory() as profile,
        chromium_page(Path(profile), args.width, args.height) as page,
    ):
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(args.out), clip={"x": 0, "y": 0, "width": args.width, "height": args.height})
    print(args.out)


if __name__ == "__main__":
    main()
