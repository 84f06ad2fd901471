"""Write SVG screenshots of the TUI's main screens to screenshots/.

    .venv/bin/python scripts/screenshots.py            # 120x40, every scene
    .venv/bin/python scripts/screenshots.py --size 80x24 --out /tmp/shots main help

Each scene runs the real app headless against the XAPI simulator's "lab" pool (in this
process, on loopback) through the real Xen backend, driven by the keys a user would press
(see tests/tui/scenes.py, which the snapshot tests share).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from poolctl.sim.xapi.simulator import Simulator  # noqa: E402
from tests.tui.scenes import SCENES  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 120x40, not {text!r}") from None
    return w, h


async def shoot(names: list[str], size: tuple[int, int], out: Path) -> list[Path]:
    written = []
    for name in names:
        scene = SCENES[name]
        # a fresh pool per scene: one scene's migration must not move the next one's VM
        sim = Simulator.from_scenario("lab", password="demo", migration_seconds=8.0)
        try:
            app = scene.app(sim.serve(host="127.0.0.1", port=0).url)
            async with app.run_test(size=size) as pilot:
                await scene.prepare(pilot)
                await pilot.pause(0.2)
                path = Path(app.save_screenshot(f"{name}.svg", str(out)))
        finally:
            sim.close()
        written.append(path)
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {scene.description}")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenes", nargs="*", metavar="SCENE", help=f"which to take (default: all): {', '.join(SCENES)}")
    p.add_argument("--size", type=_size, default=(120, 40), help="terminal size, WxH (default 120x40)")
    p.add_argument("--out", type=Path, default=ROOT / "screenshots", help="directory (default screenshots/)")
    args = p.parse_args(argv)
    unknown = [s for s in args.scenes if s not in SCENES]
    if unknown:
        p.error(f"unknown scene(s) {', '.join(unknown)}; choose from {', '.join(SCENES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(args.scenes or list(SCENES), args.size, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
