"""``kubectl scim`` argument parsing and error exits (no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scim_kubectl.cli import main, parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--kubeconfig", "k", "--context", "c", "status"],
        ["status", "--kubeconfig", "k", "--context", "c"],
        ["--kubeconfig", "k", "status", "--context", "c"],
    ],
)
def test_kubeconfig_and_context_before_or_after_the_command(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    assert (args.kubeconfig, args.context, args.command, args.output) == ("k", "c", "status", "table")


def test_preview_defaults_are_the_operators() -> None:
    args = parser().parse_args(["preview", "ws", "-f", "m.yaml", "--allowed-roles", " a, b,,"])
    assert args.allowed_cluster_roles == frozenset({"view", "edit"})
    assert args.allowed_roles == frozenset({"a", "b"})
    assert not hasattr(args, "kubeconfig")


def test_a_missing_kubeconfig_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--kubeconfig", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
