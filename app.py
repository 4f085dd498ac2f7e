"""Entry point (also the Hugging Face Space's): assemble the playground and launch it.

    python app.py                    # http://127.0.0.1:7860
    HF_HUB_OFFLINE=1 python app.py   # offline: presets run on the embedded teaching models
"""

from __future__ import annotations

import logging


def main() -> None:
    from playground.config import Settings
    from playground.ui import build_app, launch_options

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    demo = build_app(settings)
    demo.launch(**launch_options(settings))


if __name__ == "__main__":
    main()
