"""Settings: how the inference session follows the number of jobs a process runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cleancut.config import Settings


def test_one_job_at_a_time_is_latency_mode_with_one_request() -> None:
    cfg = Settings().runtime_config()
    assert (cfg.requests, cfg.mode) == (1, "latency")


def test_several_jobs_get_a_request_each_in_throughput_mode() -> None:
    cfg = Settings().runtime_config(jobs=2)
    assert (cfg.requests, cfg.mode) == (2, "throughput")


def test_explicit_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANCUT_INFERENCE__MODE", "latency")
    assert Settings().runtime_config(jobs=2).mode == "latency"
    monkeypatch.delenv("CLEANCUT_INFERENCE__MODE")
    monkeypatch.setenv("CLEANCUT_INFERENCE__REQUESTS", "1")
    cfg = Settings().runtime_config(jobs=4)
    assert (cfg.requests, cfg.mode) == (1, "latency")  # one request cannot overlap anything
    monkeypatch.setenv("CLEANCUT_INFERENCE__REQUESTS", "3")
    monkeypatch.setenv("CLEANCUT_INFERENCE__MODE", "throughput")
    cfg = Settings().runtime_config()
    assert (cfg.requests, cfg.mode) == (3, "throughput")


def test_a_bad_mode_is_a_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANCUT_INFERENCE__MODE", "fastest")
    with pytest.raises(ValidationError, match="mode"):
        Settings()
