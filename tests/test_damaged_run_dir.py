"""Damage each file of a run directory (truncate, random bytes, wrong type, empty) and run every
subcommand against it: the exit status is 0 or 2, never a traceback, and a command that
refuses changes nothing; one that succeeds changes only the files it writes by contract."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from helpers_runs import TINY, run_cli, snapshot, train_argv

FILES = ("config.yaml", "model.safetensors", "checkpoint/last.pt", "checkpoint/previous.pt",
         "log.jsonl", "results.json")
DAMAGES = ("truncate", "random", "wrong_type", "empty")
WRONG_TYPE = {  # a valid file of another kind
    "config.yaml": lambda run: b"- seed\n- data\n",
    "results.json": lambda run: b"[1, 2]\n",
    "log.jsonl": lambda run: b'[1]\n"step"\n5\n{"kind": "epoch", "step": "x"}\n',
    "model.safetensors": lambda run: (run / "checkpoint/last.pt").read_bytes(),
    "checkpoint/last.pt": lambda run: (run / "model.safetensors").read_bytes(),
    "checkpoint/previous.pt": lambda run: (run / "results.json").read_bytes(),
}
# what each command may write when it succeeds (every other file must stay as it was)
COMMANDS = {
    "evaluate": (["evaluate", "{run}", "--metrics", "recon"],
                 ("results.json", "results.json.damaged", "figures/")),
    "sample": (["sample", "{run}", "--n", "4", "--out", "{out}/s.png"], ()),
    "resume": (["train", "--resume", "{run}"], ("model.safetensors", "results.json", "log.jsonl",
                                                "results.json.damaged",
                                                "checkpoint/")),
    "restart": (["train", "--resume", "{run}", "--restart"], ("*",)),
    "new run": (["train", "--model", "vae", "--out", "{run}", *TINY], ()),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny run with two checkpoints and results."""
    from mtvae.cli import main

    run = tmp_path_factory.mktemp("damaged") / "run"
    assert main(train_argv(run)) == 0
    assert all((run / name).is_file() for name in FILES)
    return run


def damage(run: Path, name: str, kind: str, rng: random.Random) -> bytes:
    """Damage ``run/name`` in place; return its new bytes."""
    path = run / name
    data = path.read_bytes()
    new = {
        "truncate": lambda: data[: rng.randrange(1, max(len(data) - 1, 2))],
        "random": lambda: rng.randbytes(rng.randrange(1, 2048)),
        "wrong_type": lambda: WRONG_TYPE[name](run),
        "empty": lambda: b"",
    }[kind]()
    path.write_bytes(new)
    return new


def may_write(allowed: tuple[str, ...], relative: str) -> bool:
    return "*" in allowed or any(
        relative == a or (a.endswith("/") and relative.startswith(a)) for a in allowed
    )


@pytest.mark.parametrize("kind", DAMAGES)
@pytest.mark.parametrize("name", FILES)
def test_every_subcommand_on_a_damaged_file_exits_0_or_2_and_keeps_the_other_files(
    capsys, tmp_path, trained, name, kind
):
    rng = random.Random(f"{name}/{kind}")
    statuses = {}
    for command, (template, allowed) in COMMANDS.items():
        run = Path(shutil.copytree(trained, tmp_path / command.replace(" ", "_") / "run"))
        damage(run, name, kind, rng)
        before = snapshot(run)
        argv = [a.format(run=run, out=run.parent) for a in template]
        status, _, err = run_cli(capsys, *argv)  # asserts: no traceback, no internal error
        statuses[command] = status
        assert status in (0, 2), (command, err)
        after = snapshot(run)
        if status == 2:
            assert err.startswith("mtvae: error: ") and err.strip().count("\n") == 0, err
            assert after == before, command  # a refusal changes nothing
        else:
            changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
            assert all(may_write(allowed, k) for k in changed), (command, changed)
    if name == "config.yaml":  # a resume needs the config its checkpoint was written with
        assert statuses["resume"] == 2, statuses
    if name == "results.json":  # evaluate writes it anew, keeping the damaged one aside
        assert statuses["evaluate"] == 0
    assert statuses["restart"] == 0 or name == "config.yaml"  # recovery always ends
