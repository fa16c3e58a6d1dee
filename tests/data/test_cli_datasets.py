"""The command line and data: `mtvae datasets` lists every source; bad data exits 2, writes nothing."""

import numpy as np

from mtvae.cli import main


def test_datasets_lists_every_source_with_tasks_and_sizes(capsys):
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == ["shapes", "fashion-mnist", "mnist", "digits", "npz:PATH", "celeba:DIR",
                     "folder:PATH"]
    for line in lines:
        assert "tasks" in line and "/" in line  # tasks and train/val/test sizes
    assert "thickness, slant" in lines[2] and "group (4" in lines[1]


def test_npz_with_nan_exits_2_with_the_message_and_writes_nothing(tmp_path, capsys):
    x = np.zeros((20, 8))
    x[4, 2] = np.nan
    np.savez(tmp_path / "bad.npz", x=x, y_c=np.arange(20) % 2)
    out = tmp_path / "run"
    status = main(["train", "--model", "vae", "--data", f"npz:{tmp_path / 'bad.npz'}",
                   "--out", str(out), "--set", "train.epochs=1"])
    err = capsys.readouterr().err
    assert status == 2
    assert "Array 'x' in" in err and "bad.npz" in err and "1 NaN" in err and "Traceback" not in err
    assert not out.exists()


def test_data_root_flag_sets_data_root(tmp_path, capsys):
    assert main(["config", "--model", "vae", "--data", "mnist", "--data-root", str(tmp_path)]) == 0
    assert f"root: {tmp_path}" in capsys.readouterr().out


def test_flat_npz_with_a_conv_body_says_to_use_the_mlp(tmp_path, capsys):
    np.savez(tmp_path / "flat.npz", x=np.random.default_rng(0).random((30, 12)))
    out = tmp_path / "run"
    assert main(["train", "--model", "vae", "--data", f"npz:{tmp_path / 'flat.npz'}",
                 "--out", str(out)]) == 2
    assert "model.encoder.arch=mlp" in capsys.readouterr().err
    assert not out.exists()
