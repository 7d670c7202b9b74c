"""The CLI answers --help instantly: no heavy import at module top level."""

import subprocess
import sys
import time

HEAVY = ("torch", "ray", "mlflow", "diffusers", "transformers", "sam2", "cv2", "pyarrow")


def test_help_is_fast_and_light():
    code = (
        "import sys, time; t=time.perf_counter(); from liwi.cli import build_parser; "
        "build_parser(); print(time.perf_counter()-t); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed, heavy = out.stdout.strip().splitlines() + [""] * (
        2 - len(out.stdout.strip().splitlines())
    )
    assert heavy == "", f"heavy modules imported by the CLI parser: {heavy}"
    assert float(elapsed) < 1.0


def test_help_runs_end_to_end():
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "liwi.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: liwi" in out.stdout
    assert time.perf_counter() - t < 5.0  # generous: interpreter start on a loaded CI box


def test_a_config_error_is_exit_2_with_one_message_for_every_command(tmp_path, capsys):
    from liwi.cli import main

    missing = str(tmp_path / "missing.yaml")
    assert main(["serve", "--config", missing]) == 2
    assert main(["synth", "--config", missing, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"liwi serve: serve config not found: {missing}" in err
    assert "liwi synth: config file not found" in err


def test_table_flags_of_train_and_train_local_read_the_same_way():
    from liwi.cli import build_parser

    parser = build_parser()
    for command in ("train", "train-local"):
        args = parser.parse_args(
            [command, "--config", "c.yaml", "--table", "a", "b", "--table", "c"]
        )
        assert args.table == ["a", "b", "c"], command
