"""Download the presets (or given Hub ids) into the Hugging Face cache ahead of an offline workshop.

    python -m playground.prefetch                      # every preset
    python -m playground.prefetch --family causal-lm   # the presets of one family
    python -m playground.prefetch EleutherAI/pythia-70m

Afterwards, with HF_HUB_OFFLINE=1, the presets load from the cache instead of the embedded
teaching models. With no Hub in reach it fails within seconds and says so.
"""

from __future__ import annotations

import argparse
import sys

from playground.config import Settings
from playground.models.hub import HubProbe, download_repo
from playground.models.presets import PRESETS, Family
from playground.models.sources import is_hub_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playground.prefetch", description=__doc__.split("\n")[0])
    parser.add_argument("repo_ids", nargs="*", help="Hub ids to fetch (default: every preset)")
    parser.add_argument("--family", choices=[f.value for f in Family], help="only the presets of this family")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    if args.repo_ids:
        repo_ids = list(dict.fromkeys(args.repo_ids))
    else:
        repo_ids = list(dict.fromkeys(p.hub_id for p in PRESETS if args.family in (None, p.family.value)))
    bad = [r for r in repo_ids if not is_hub_id(r)]
    if bad:
        print(f"error: not Hub ids: {', '.join(bad)} (expected owner/name)", file=sys.stderr)
        return 2

    if settings.offline:
        print("error: HF_HUB_OFFLINE=1 is set; unset it to download.", file=sys.stderr)
        return 2
    status = HubProbe(settings.hub_endpoint, settings.hub_timeout_s).status()
    if not status.reachable:
        print(
            f"error: the Hugging Face Hub cannot be reached: {status.reason}.\n"
            "Prefetch needs the network; the app still runs offline on its embedded models.",
            file=sys.stderr,
        )
        return 2

    failed = 0
    for repo_id in repo_ids:
        try:
            revision = next((p.revision for p in PRESETS if p.hub_id == repo_id and p.revision), None)
            folder = download_repo(repo_id, settings.hf_cache, settings.hub_endpoint, revision)
            print(f"ok   {repo_id} -> {folder}")
        except Exception as exc:  # report every repo, then fail at the end
            failed += 1
            print(f"FAIL {repo_id}: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
