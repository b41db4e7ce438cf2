"""Version, the exception hierarchy and signal delivery around blocking calls."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest

import kasm
from kasm import _core


def test_version_comes_from_the_cpp_library() -> None:
    assert kasm.__version__ == _core.version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", kasm.__version__)


EXPECTED = {
    "invalid_argument": kasm.InvalidArgument,
    "not_found": kasm.NotFound,
    "already_exists": kasm.AlreadyExists,
    "failed_precondition": kasm.FailedPrecondition,
    "aborted": kasm.Aborted,
    "resource_exhausted": kasm.ResourceExhausted,
    "permission_denied": kasm.PermissionDenied,
    "unauthenticated": kasm.Unauthenticated,
    "unavailable": kasm.Unavailable,
    "deadline_exceeded": kasm.DeadlineExceeded,
    "data_loss": kasm.DataLoss,
    "internal": kasm.InternalError,
}


def test_every_error_code_has_its_exception_class() -> None:
    assert sorted(_core.error_code_names()) == sorted(EXPECTED)


@pytest.mark.parametrize("code,cls", sorted(EXPECTED.items()))
def test_cpp_errors_arrive_as_their_class_with_code_and_message(code: str, cls: type) -> None:
    with pytest.raises(cls) as info:
        _core._raise_for_testing(code, "what went wrong")
    err = info.value
    assert isinstance(err, kasm.KasmError)
    assert err.code == code
    assert err.message == "what went wrong"
    assert str(err) == f"{code}: what went wrong"


def test_errors_fit_python_idioms_and_know_their_http_status() -> None:
    assert issubclass(kasm.InvalidArgument, ValueError)
    assert issubclass(kasm.NotFound, LookupError)
    assert kasm.NotFound("x").http_status == 404
    assert kasm.ResourceExhausted("x").http_status == 429


def test_keyboard_interrupt_is_delivered_when_a_blocking_call_returns() -> None:
    # SIGINT arrives while C++ blocks with the GIL released; Python raises KeyboardInterrupt as
    # soon as the call returns (documented in kasm.Manager), never losing it and never crashing.
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            _core._block_for_testing(600)
            time.sleep(5)  # Not reached: the interrupt is raised before this line runs.
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 3


def test_other_threads_run_while_a_call_blocks() -> None:
    # The GIL is released during the blocking call, so a Python thread makes progress meanwhile.
    ticks = []
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    t = threading.Thread(target=count)
    t.start()
    _core._block_for_testing(300)
    stop.set()
    t.join()
    assert len(ticks) >= 10
