"""Static clipping against Imagen's dynamic thresholding at high guidance (issue 33), on the embedded pixel model."""

from __future__ import annotations

import pytest

from playground.config import Settings
from playground.errors import InputError
from playground.models import ModelLoader
from tests.conftest import has_model

pytestmark = pytest.mark.skipif(not has_model("ddpm-fashion"), reason="embedded DDPM not built")


@pytest.fixture(scope="module")
def loader():
    return ModelLoader(Settings(offline=True, device="cpu"))


def test_dynamic_thresholding_pins_fewer_pixels_white_than_static_clipping_at_high_guidance(loader):
    """The same request and noise: static clipping flattens x̂_0 past 1 to white, dynamic thresholding scales it back;
    no clipping pins the most. Each row starts from the same noise (the unclipped rows differ only by the bound)."""
    from playground.core.diffusion.compare import compare_clipping
    from playground.core.diffusion.run import DiffusionRequest

    lm = loader.load("google/ddpm-cifar10-32", "diffusion")
    c = compare_clipping(lm, DiffusionRequest(prompt="Bag", guidance=15.0, steps=20, seed=0))
    share = dict(zip(c.clippings, c.saturated))
    assert share["dynamic"] < share["clip"] < share["none"]
    assert c.images.shape[:2] == (3, 4)


def test_the_page_compares_and_refuses_latent_models_with_the_reason(loader):
    from playground.ui.diffusion_tab import DenoiseRequest, on_compare_clipping

    items, notes = on_compare_clipping(loader, DenoiseRequest(model="google/ddpm-cifar10-32", prompt="Bag", guidance=15.0, steps=10),
                                       progress=None)
    assert len(items) == 12 and "dynamic thresholding" in notes and "pixels pinned white" in notes
    with pytest.raises(Exception, match="pixel models"):
        on_compare_clipping(loader, DenoiseRequest(model="assets/models/ldm-fashion", prompt="Bag", guidance=15.0, steps=10),
                            progress=None)
    with pytest.raises((InputError, Exception), match="guidance"):
        on_compare_clipping(loader, DenoiseRequest(model="google/ddpm-cifar10-32", prompt="Bag", guidance=99.0, steps=10), progress=None)
