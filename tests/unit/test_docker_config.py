"""The container image's config (examples/docker.yaml, used by the Dockerfile): it listens
off loopback, so it must pass the secure-default check with its tokens, and without them
fail loudly naming the variables."""

from __future__ import annotations

from pathlib import Path

from baton.config import check_config, config_warnings, load_config, open_api_refusal

DOCKER = Path(__file__).parents[2] / "examples" / "docker.yaml"


def test_the_image_config_starts_off_loopback_with_its_tokens() -> None:
    config = load_config(DOCKER, {"BATON_API_TOKEN": "a" * 32, "BATON_INGEST_TOKEN": "b" * 32})
    assert config.server.listen == "0.0.0.0:8080"
    assert open_api_refusal(config) is None
    assert config_warnings(config) == []
    assert "Dockerfile" in DOCKER.read_text("utf-8")
    assert "examples/docker.yaml" in (DOCKER.parents[1] / "Dockerfile").read_text("utf-8")


def test_without_tokens_the_image_config_names_what_is_missing() -> None:
    problems = check_config(DOCKER, {})
    assert any("BATON_API_TOKEN is not set" in p for p in problems), problems
    assert any("BATON_INGEST_TOKEN is not set" in p for p in problems), problems
