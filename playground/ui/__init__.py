"""The UI: one module per tab (`build_*_tab`), assembled by `shell.build_app`."""

from playground.ui.common import launch_options
from playground.ui.shell import build_app

__all__ = ["build_app", "launch_options"]
