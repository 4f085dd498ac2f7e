"""ZeroGPU: handlers are wrapped in spaces.GPU on a ZeroGPU Space, and left alone elsewhere."""

from __future__ import annotations

import sys
import types

from playground.models.zerogpu import gpu_task, on_zerogpu


def handler(x):
    return x + 1


def test_no_op_off_zerogpu():
    assert not on_zerogpu({})
    assert gpu_task(handler, env={}) is handler


def test_flag_without_spaces_package_is_a_no_op(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # makes `import spaces` fail
    assert not on_zerogpu({"SPACES_ZERO_GPU": "true"})


def test_wrapped_in_spaces_gpu_on_zerogpu(monkeypatch):
    seen = {}
    fake = types.ModuleType("spaces")

    def GPU(duration=60):
        def decorate(fn):
            seen["duration"] = duration

            def wrapped(*args, **kwargs):
                seen["called"] = True
                return fn(*args, **kwargs)

            return wrapped

        return decorate

    fake.GPU = GPU
    monkeypatch.setitem(sys.modules, "spaces", fake)
    env = {"SPACES_ZERO_GPU": "true"}
    assert on_zerogpu(env)
    wrapped = gpu_task(handler, duration=30, env=env)
    assert wrapped is not handler and wrapped(1) == 2
    assert seen == {"duration": 30, "called": True}
