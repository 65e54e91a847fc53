"""`disinfo-clf serve`: its options, and the pip hint when the serve extra is missing."""
from __future__ import annotations

import sys

import pytest

from disinfo_clf.cli import build_parser, main


def test_serve_options_and_loopback_default() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.model, args.token, args.max_body_mb, args.cors, args.narratives) == \
        ("127.0.0.1", 8000, None, None, 10.0, None, None)
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9000", "--model", "fast",
                                      "--token", "t", "--max-body-mb", "2.5", "--cors", "https://a.example"])
    assert (args.host, args.port, args.model, args.token, args.max_body_mb, args.cors) == \
        ("0.0.0.0", 9000, "fast", "t", 2.5, "https://a.example")


def test_missing_extra_gives_the_pip_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "disinfo_clf.serve.server", None)  # import fails as without fastapi/uvicorn
    assert main(["serve"]) == 2
    assert 'pip install "disinfo-clf[serve]"' in capsys.readouterr().err
