"""The command line: synth, train, evaluate, and clear errors with exit status 2."""
import json
import subprocess
import sys
import textwrap

from comemory.cli import main


def test_cli_synth_train_evaluate(tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["synth", "--out", str(data), "--seed", "4"]) == 0
    assert (data / "frame_labels_synth.npy").exists()
    config = tmp_path / "small.yaml"
    config.write_text("train: {epochs: 1}\nmodel: {image_size: 32}\n")
    assert main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny",
                 "--config", str(config), "--set", "score.patch_stride=2",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "image_size: 32" in (run / "config.yaml").read_text()
    assert main(["evaluate", "--checkpoint", str(run / "checkpoint.pt"), "--data", str(data),
                 "--out", str(tmp_path / "eval"), "--cache-dir", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "micro AUC" in printed and "video_max" in printed
    assert "macro AUC: the mean over the 6 test videos that hold both" in printed
    assert "of normal and" in printed and "of anomalous test frames above it" in printed
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["frames_scored"] > 0


def test_cli_errors_name_the_problem(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("train: {epochs: 1, learning_rate: 0.1}\n")
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--config", str(config)]) == 2
    assert "bad.yaml: unknown key train.learning_rate" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 2
    assert "nowhere: dataset folder not found" in capsys.readouterr().err
    assert main(["train", "--root", str(tmp_path), "--dataset", "shanghaitech",
                 "--out", str(tmp_path / "run")]) == 2
    assert "training/videos: folder not found" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(tmp_path),
                 "--out", str(tmp_path / "eval")]) == 2
    assert "none.pt: checkpoint not found" in capsys.readouterr().err


def test_resume_into_a_folder_without_a_run_writes_nothing(tmp_path, capsys):
    for out in (tmp_path / "typo", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        assert main(["train", "--data", str(tmp_path), "--out", str(out), "--resume"]) == 2
        assert f"{out / 'checkpoint.pt'}: no run to resume here" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists() and not any((tmp_path / "empty").iterdir())


HEAVY = ("torch", "cv2", "sklearn")


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=300)


def test_version_and_help_load_neither_pytorch_nor_opencv():
    for argv in (["--version"], ["--help"], ["train", "--help"], ["prepare", "--help"],
                 ["serve", "--help"]):
        result = run_python(f"""
            import sys
            from comemory.cli import main
            try:
                main({argv!r})
            except SystemExit:
                pass
            print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
        """)
        assert result.stderr.strip().splitlines()[-1] == "[]", (argv, result.stderr)
    assert "0.1.0" in run_python("from comemory.cli import main; main(['--version'])").stdout


def test_ctrl_c_while_pytorch_loads_is_one_line_and_status_130(tmp_path):
    result = run_python("""
        import builtins, os, signal, sys
        # as in a terminal: a shell starts background jobs with Ctrl-C ignored, and Python
        # then leaves it ignored, so a suite run with `&` would not test anything
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from comemory.cli import main
        real_import = builtins.__import__
        def interrupting_import(name, *args, **kwargs):  # Ctrl-C as PyTorch starts to load
            if name == "torch" and "torch" not in sys.modules:
                os.kill(os.getpid(), signal.SIGINT)
            return real_import(name, *args, **kwargs)
        builtins.__import__ = interrupting_import
        sys.exit(main(["train", "--root", sys.argv[1], "--out", sys.argv[2]]))
    """, str(tmp_path), str(tmp_path / "run"))
    assert result.returncode == 130, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("comemory: interrupted;")


def test_every_described_layout_has_a_reader():
    from comemory.data.datasets import READERS
    from comemory.data.layouts import LAYOUTS

    assert set(READERS) == set(LAYOUTS)


def test_counts_are_written_with_their_noun_in_the_right_number():
    from comemory.progress import counted

    assert counted(1, "camera") == "1 camera" and counted(2, "camera") == "2 cameras"
    assert counted(1, "event was", "events were") == "1 event was"
    assert counted(0, "event was", "events were") == "0 events were"


def test_pictures_name_scores_and_normalisations_as_the_readme_does():
    from comemory.evaluate.metrics import (
        NORMALISATION_NAMES,
        NORMALISATIONS,
        score_name,
    )

    assert score_name("comemory") == "co-memory"
    assert score_name("comemory_causal") == "co-memory, causal"
    assert score_name("flow_floor_centred") == "flow floor, centred"
    assert set(NORMALISATION_NAMES) == set(NORMALISATIONS)
    assert NORMALISATION_NAMES["video_max"] == "per-video max (thesis)"
