"""Cold start: `python app.py` until the first page is served, against a bare gr.Blocks app.

    python benchmarks/cold_start.py [--repeats 3]

Both are started the same way, in this one run, alternating; we report medians and the ratio.
The playground must load no model at start-up, so the ratio should stay small.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere, no install needed
BARE = "import gradio as gr\nwith gr.Blocks() as demo:\n    gr.Markdown('bare')\ndemo.launch()\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_first_page(script: Path, timeout: float = 180.0) -> float:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).status == 200:
                    return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{script} served nothing within {timeout} s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare_app.py"
        bare.write_text(BARE)
        app_times, bare_times = [], []
        time_to_first_page(bare)  # warm the OS file cache once
        for _ in range(args.repeats):
            bare_times.append(time_to_first_page(bare))
            app_times.append(time_to_first_page(ROOT / "app.py"))
    a, b = statistics.median(app_times), statistics.median(bare_times)
    print(f"bare gr.Blocks app: {b:.2f} s (median of {args.repeats})")
    print(f"playground app.py:  {a:.2f} s (median of {args.repeats})")
    print(f"ratio: {a / b:.2f}x")
    from benchmarks.report import record

    record(
        "cold_start",
        f"cold start of `python app.py` to the first served page, against a bare `gr.Blocks` app (median of {args.repeats})",
        "python benchmarks/cold_start.py",
        f"{a:.2f} s vs {b:.2f} s: **{a / b:.2f}x** (torch is imported on first use, not before the page is served; no model is loaded)",
    )


if __name__ == "__main__":
    main()
