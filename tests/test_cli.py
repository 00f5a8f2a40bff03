"""The command line: synth, train, evaluate, and clear errors with exit status 2."""
import json

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
