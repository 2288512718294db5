"""The collector settings charter uses for long runs restore what they change."""

from __future__ import annotations

import gc

import pytest
from charter.engine._internal.collector import collector_paused


def test_collector_paused_disables_and_restores() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("an error inside still restores the collector")
    assert gc.isenabled()


def test_collector_paused_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
