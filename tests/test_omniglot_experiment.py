"""The Omniglot experiment script end to end on fake zips: resume, outputs, the report."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from helpers import fake_omniglot, load_experiment
from metarl.core import AdamRule
from metarl.learners import load_learner
from metarl.utils import load_checkpoint

LAYOUT = {
    "images_background_small1.zip": {"Greek": 4, "Korean": 4, "Tagalog": 3},
    "images_background_small2.zip": {"Sanskrit": 4},
}


def _run(exp, data, out, iterations, *extra, ways="2"):
    return exp.main(["--learner", "maml", "--ways", ways, "--shots", "1", "--queries", "2",
                     "--meta-batch", "2", "--train-shots", "2", "--augment", "image",
                     "--mix-classes", "0.5", "--within-alphabet", "--channels", "4",
                     "--iterations", str(iterations), "--val-every", "2",
                     "--checkpoint-every", "2", "--val-episodes", "4", "--test-episodes", "4",
                     "--attack-epsilon", "0.1", "--threads", "1", "--data", str(data),
                     "--out", str(out), *extra])  # fmt: skip


def _write_run(runs, name, **fields):
    """``runs/name/results.json``: a finished 5-way 1-shot MAML run unless ``fields`` override;
    a reference run (``method`` in ``fields``) has only the fields given."""
    learner_run = {"learner": "maml", "ways": 5, "shots": 1, "test_accuracy": 0.8, "ci95": 0.01,
                   "test_episodes": 600, "best_iteration": 10, "val_accuracy": 0.9,
                   "train_wall_s": 60.0, "machine": "m", "command": name,
                   "settings": {"iterations": 10}}  # fmt: skip
    (runs / name).mkdir()
    result = fields if "method" in fields else {**learner_run, **fields}
    (runs / name / "results.json").write_text(json.dumps(result))


def _report(runs) -> str:
    """The report's markdown for the runs under ``runs``."""
    table = runs / "table.md"
    load_experiment("omniglot_report").main(["--runs", str(runs), "--out", str(table)])
    return table.read_text()


@pytest.fixture
def data(tmp_path, monkeypatch):
    """Fake Omniglot zips, and a cache of their own."""
    monkeypatch.setenv("METARL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    return fake_omniglot(tmp_path / "data", LAYOUT, per_character=4)


def test_tiny_run_resumes_exactly_and_writes_a_loadable_learner(tmp_path, data):
    exp = load_experiment("omniglot")

    straight = _run(exp, data, tmp_path / "straight", 4)
    _run(exp, data, tmp_path / "resumed", 2)
    resumed = _run(exp, data, tmp_path / "resumed", 4, "--resume")

    def losses(run):
        rows = list(csv.DictReader((tmp_path / run / "metrics.csv").open()))
        assert rows[0]["step"] == "0" and not rows[0]["loss"]  # the starting point, validated
        assert 0 <= float(rows[0]["val_accuracy"]) <= 1
        return [float(r["loss"]) for r in rows[1:]]

    assert len(losses("straight")) == 4
    assert losses("resumed") == losses("straight")  # bit for bit across the interruption
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    assert "--resume" not in resumed["command"]
    assert 0 <= straight["adversarial_accuracy"] <= 1 and straight["attack_epsilon"] == 0.1
    saved = json.loads((tmp_path / "straight" / "results.json").read_text())
    assert saved["best_iteration"] in (0, 2, 4) and saved["test_episodes"] == 4
    unset = {k: saved["settings"][k] for k in ("inner_lr", "inner_steps", "eval_steps")}
    assert unset == {"inner_lr": 0.4, "inner_steps": 1, "eval_steps": 3}  # MAML 5-way defaults

    classifier = load_learner(tmp_path / "straight" / "learner.pt")
    logits = classifier.predict(torch.rand(2, 1, 28, 28), torch.tensor([0, 1]),
                                torch.rand(5, 1, 28, 28))  # fmt: skip
    assert logits.shape == (5, 2)

    retest = load_experiment("omniglot_retest").main([
        "--run", str(tmp_path / "straight"), "--shots", "2", "--queries", "2",
        "--val-episodes", "4", "--test-episodes", "4", "--threads", "1", "--data", str(data),
        "--out", str(tmp_path / "straight-2shot")])  # fmt: skip
    assert retest["shots"] == 2 and retest["trained_as"]["shots"] == 1
    assert retest["train_wall_s"] == straight["train_wall_s"]
    with pytest.raises(SystemExit, match="2-class output layer"):
        load_experiment("omniglot_retest").main([
            "--run", str(tmp_path / "straight"), "--ways", "3", "--data", str(data),
            "--out", str(tmp_path / "straight-3way")])  # fmt: skip

    report = load_experiment("omniglot_report")
    table = tmp_path / "omniglot.md"
    report.main(["--runs", str(tmp_path), "--out", str(table)])
    text = table.read_text()
    assert "| MAML | `straight` | 2-way 1-shot |" in text  # both runs listed
    assert "| MAML | `resumed` | 2-way 1-shot |" in text
    assert "| MAML | `straight-2shot` | 2-way 2-shot (trained 2-way 1-shot) |" in text
    assert "| MAML | - (published 98.7) |" in text  # the grid: no 5-way 1-shot run yet

    alphabets = load_experiment("omniglot_alphabets").main([
        "--learner", str(tmp_path / "straight" / "learner.pt"), "--ways", "2", "--queries", "2",
        "--episodes", "4", "--threads", "1", "--data", str(data)])  # fmt: skip
    assert all(0 <= alphabets[k]["accuracy"] <= 1 for k in ("within", "across"))
    assert alphabets["seed"] == 0 and "machine" in alphabets  # provenance, from the runner
    assert (tmp_path / "straight" / "alphabets" / "results.json").is_file()
    learner = str(tmp_path / "straight" / "learner.pt")
    with pytest.raises(SystemExit, match="--overwrite"):  # it is not replaced unasked
        load_experiment("omniglot_alphabets").main(
            ["--learner", learner, "--ways", "2", "--data", str(data)]
        )
    with pytest.raises(SystemExit, match="--overwrite"):  # nor is a retest
        load_experiment("omniglot_retest").main([
            "--run", str(tmp_path / "straight"), "--shots", "2", "--data", str(data),
            "--out", str(tmp_path / "straight-2shot")])  # fmt: skip
    _run(exp, data, tmp_path / "straight", 2, "--overwrite")  # a new run in its place ...
    assert not (tmp_path / "straight" / "alphabets").exists()  # ... drops the old one's analysis


def test_more_ways_than_validation_characters_validates_on_their_rotations(tmp_path, data):
    exp = load_experiment("omniglot")
    result = _run(exp, data, tmp_path / "four-way", 2, ways="4")  # Tagalog has 3 characters
    assert result["val_rotated"] and 0 <= result["val_accuracy"] <= 1
    assert result["settings"]["inner_lr"] == 0.4  # the 20-way defaults start at 20 ways
    assert not _run(exp, data, tmp_path / "two-way", 2)["val_rotated"]


def test_reptile_defaults_follow_its_paper_and_the_learner_reloads_its_adam_rule(
    tmp_path, data, capsys
):
    exp = load_experiment("omniglot")
    result = exp.main(["--learner", "reptile", "--ways", "2", "--queries", "2", "--train-shots",
                       "2", "--meta-batch", "2", "--inner-steps", "2", "--eval-steps", "2",
                       "--inner-batch", "2", "--channels", "4", "--iterations", "4",
                       "--val-every", "2", "--val-episodes", "4", "--test-episodes", "4",
                       "--threads", "1", "--data", str(data), "--out", str(tmp_path)])  # fmt: skip
    s = result["settings"]
    assert (s["inner_rule"], s["inner_lr"], s["outer_optimizer"], s["outer_lr"]) == (
        "adam", 0.001, "sgd", 1.0)  # fmt: skip
    # the meta step falls linearly from 1 to 0: 1 - 3/4 at the last of 4 iterations
    optimizer = load_checkpoint(tmp_path / "checkpoint.pt")["state"]["optimizer"]
    assert optimizer["param_groups"][0]["lr"] == pytest.approx(0.25)
    classifier = load_learner(tmp_path / "learner.pt")
    assert isinstance(classifier.rule, AdamRule)
    assert classifier.inner_batch == 2
    twenty = exp.setting_defaults("reptile", 20)  # the paper's 20-way Omniglot settings
    assert (twenty["inner_lr"], twenty["inner_steps"], twenty["inner_batch"]) == (0.0005, 10, 20)
    assert exp.setting_defaults("maml", 20)["inner_steps"] == 5
    with pytest.raises(SystemExit) as e:
        exp.main(["--learner", "maml", "--ways", "2", "--queries", "2", "--inner-rule", "adam",
                  "--data", str(data), "--out", str(tmp_path / "maml")])  # fmt: skip
    assert e.value.code == 2 and "no options" in capsys.readouterr().err


def test_report_grid_shows_the_run_with_the_best_validation_not_test_accuracy(tmp_path):
    for run, val, test in (("long", 0.9, 0.70), ("short", 0.8, 0.75)):
        _write_run(tmp_path, run, val_accuracy=val, test_accuracy=test)
    text = _report(tmp_path)
    assert "| MAML | 70.00 ± 1.00 (published 98.7) |" in text
    assert "| Meta-SGD | - (published 99.53) |" in text  # a main learner without runs is shown
    assert "| CAML |" not in text  # the comparisons only once they have a run
    assert "![The grid against the published figures](table.png)" in text
    assert (tmp_path / "table.png").read_bytes().startswith(b"\x89PNG")


def test_report_marks_pretrained_runs_and_keeps_unmeta_trained_ones_out_of_the_grid(tmp_path):
    runs = (("scratch", 0.92, 0.85, 10, None), ("pretrained", 0.95, 0.90, 10, "model.pt"),
            ("start-only", 0.97, 0.92, 0, "model.pt"))  # fmt: skip
    for run, val, test, kept, init_from in runs:
        _write_run(tmp_path, run, val_accuracy=val, test_accuracy=test, best_iteration=kept,
                   settings={"iterations": 10, "init_from": init_from})  # fmt: skip
    text = _report(tmp_path)
    # the best validation accuracy among meta-trained runs, not the starting point's
    assert "| MAML | 90.00 ± 1.00 (from pretrained blocks) (published 98.7) |" in text
    assert "`start-only` | 5-way 1-shot (pretrained blocks, no meta-training) | 92.00" in text
    assert "`scratch` | 5-way 1-shot | 85.00" in text


def test_report_lists_a_non_episodic_reference_apart_from_the_learners(tmp_path):
    _write_run(tmp_path, "maml")
    _write_run(tmp_path, "baseline", method="m", val_accuracy=0.95, best_epoch=7,
               test={"5-way 1-shot": {"accuracy": 0.9, "ci95": 0.005}},
               train_wall_s=120.0, command="b")  # fmt: skip
    _write_run(tmp_path, "fewer", method="m", val_accuracy=0.9, best_epoch=7,
               test={"5-way 1-shot": {"accuracy": 0.8, "ci95": 0.005}},
               train_wall_s=120.0, command="c", settings={"characters": 46})  # fmt: skip
    text = _report(tmp_path)
    assert "| `baseline` | 90.00 ± 0.50 | - | - | - | 95.00 (7) | 2.0 min | `b` |" in text
    assert "| `fewer` (46 characters) | 80.00 ± 0.50 |" in text
    assert "| MAML | 80.00 ± 1.00 (published 98.7) |" in text


def test_report_pairs_each_variant_with_the_maml_run_of_the_same_budget(tmp_path):
    runs = (
        ("maml-6k", "maml", 6000, 0.80, 0.15),
        ("maml-3k", "maml", 3000, 0.78, None),
        ("adml-6k", "adml", 6000, 0.79, 0.40),
        ("taml-9k", "taml", 9000, 0.81, None),
    )
    for run, learner, iterations, test, attacked in runs:
        attack = {} if attacked is None else {"adversarial_accuracy": attacked}
        _write_run(tmp_path, run, learner=learner, test_accuracy=test, **attack,
                   settings={"iterations": iterations, "augment": "class"})  # fmt: skip
    text = _report(tmp_path).split("## Against MAML at equal iterations")[1]
    assert ("| ADML | `adml-6k` | 79.00 ± 1.00 | 40.00 | 1.0 min | `maml-6k` | 80.00 ± 1.00 "
            "| 15.00 | 1.0 min |") in text  # fmt: skip
    assert "| TAML (entropy) | `taml-9k` | 81.00 ± 1.00 | - | 1.0 min | no MAML run" in text
    assert "maml-3k" not in text


def test_nearest_class_mean_reference_classifies_by_cosine_to_support_means():
    baseline = load_experiment("omniglot_baseline")

    class Pixels(torch.nn.Module):  # features: the flattened image
        def embed(self, x):
            return x.flatten(1)

    prototypes = torch.eye(4).view(4, 1, 2, 2)  # class c lights pixel c ...
    scales = 10 ** (4 * torch.rand(12, 1, 1, 1) - 2)  # ... at brightness 0.01 to 100
    data, labels = prototypes.repeat(3, 1, 1, 1) * scales, torch.arange(4).repeat(3)
    sampler = baseline.EpisodeSampler(data, labels, ways=4, shots=1, queries=2, seed=0)
    # by direction every query is right; by Euclidean distance dim queries would go astray
    assert baseline.episode_accuracies(Pixels(), sampler, 5).tolist() == [1.0] * 5


def test_nearest_class_mean_reference_trains_and_tests_every_setting(tmp_path, data):
    result = load_experiment("omniglot_baseline").main([
        "--ways", "2", "3", "--shots", "1", "2", "--queries", "2", "--epochs", "3",
        "--batch-size", "16", "--val-episodes", "4", "--test-episodes", "4", "--data", str(data),
        "--out", str(tmp_path / "baseline")])  # fmt: skip
    assert sorted(result["test"]) == ["2-way 1-shot", "2-way 2-shot", "3-way 1-shot",
                                      "3-way 2-shot"]  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "baseline" / "metrics.csv").open()))
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])  # the classifier learns
    saved = load_checkpoint(tmp_path / "baseline" / "model.pt")
    assert saved["model"]["ways"] == 4 * 8  # 8 meta-training characters x 4 rotations
    assert 1 <= result["best_epoch"] <= 3
    fewer = load_experiment("omniglot_baseline").main([
        "--ways", "2", "--shots", "1", "--queries", "2", "--epochs", "1", "--characters", "3",
        "--batch-size", "16", "--val-episodes", "2", "--test-episodes", "2", "--data", str(data),
        "--out", str(tmp_path / "fewer")])  # fmt: skip
    assert fewer["settings"]["characters"] == 3
    saved = load_checkpoint(tmp_path / "fewer" / "model.pt")
    assert saved["model"]["ways"] == 4 * 3  # 3 of the 8 characters x 4 rotations


def test_nearest_class_mean_reference_resumes_exactly(tmp_path, data):
    baseline = load_experiment("omniglot_baseline")
    common = ["--ways", "2", "--shots", "1", "--queries", "2", "--batch-size", "16",
              "--val-episodes", "2", "--test-episodes", "2", "--data", str(data)]  # fmt: skip
    straight = baseline.main([*common, "--epochs", "2", "--out", str(tmp_path / "straight")])
    baseline.main([*common, "--epochs", "1", "--out", str(tmp_path / "resumed")])
    resumed = baseline.main([*common, "--epochs", "2", "--out", str(tmp_path / "resumed"),
                             "--resume"])  # fmt: skip
    assert resumed["test"] == straight["test"] and "--resume" not in resumed["command"]

    def rows(run):
        with (tmp_path / run / "metrics.csv").open() as f:
            return [(r["step"], r["loss"]) for r in csv.DictReader(f)]

    assert rows("resumed") == rows("straight")
    with pytest.raises(SystemExit, match="--overwrite"):
        baseline.main([*common, "--epochs", "1", "--out", str(tmp_path / "straight")])


def test_init_from_copies_a_reference_classifiers_conv_blocks_and_zeroes_the_head(tmp_path, data):
    exp = load_experiment("omniglot")
    reference = exp.Conv4(ways=12, channels=4, downsample="stride")
    path = tmp_path / "model.pt"
    spec = {"ways": 12, "channels": 4, "downsample": "stride"}
    torch.save({"model": spec, "state_dict": reference.state_dict()}, path)

    model = exp.Conv4(ways=2, channels=4, downsample="stride")
    exp.init_blocks_from_reference(model, path)
    for name, tensor in reference.features.state_dict().items():
        assert torch.equal(model.features.state_dict()[name], tensor), name
    assert model.head.weight.shape == (2, 4) and not model.head.weight.any()
    assert not model.head.bias.any()  # every class equally likely before adaptation

    with pytest.raises(SystemExit, match="conv blocks differ"):  # pooled against strided
        _run(exp, data, tmp_path / "run", 2, "--init-from", str(path), "--downsample", "maxpool")
    result = _run(exp, data, tmp_path / "run", 0, "--init-from", str(path))  # no meta-training
    assert result["settings"]["init_from"] == str(path) and result["best_iteration"] == 0
    kept = load_learner(tmp_path / "run" / "learner.pt").model
    assert torch.equal(kept.features[0].weight, reference.features[0].weight)


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--queries", "0"), ("--meta-batch", "0"), ("--iterations", "-3"),
     ("--checkpoint-every", "0"), ("--checkpoint-every", "-1"), ("--val-every", "0"),
     ("--ways", "1"), ("--shots", "0"), ("--eval-steps", "-1"), ("--test-episodes", "1"),
     ("--mix-classes", "2")],
)  # fmt: skip
def test_bad_values_exit_2_naming_the_flag_before_any_work(tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:  # no data there: parsing must stop it first
        load_experiment("omniglot").main([flag, value, "--data", str(tmp_path / "none"),
                                          "--out", str(out)])  # fmt: skip
    assert e.value.code == 2
    assert flag in capsys.readouterr().err
    assert not out.exists()


def test_missing_data_names_both_ways_to_give_it(tmp_path, monkeypatch):
    exp = load_experiment("omniglot")
    with pytest.raises(SystemExit) as e:
        exp.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert "--data" in str(e.value) and "METARL_DATA" in str(e.value)
    monkeypatch.delenv("METARL_DATA", raising=False)
    with pytest.raises(SystemExit) as e:
        exp.main(["--out", str(tmp_path / "run")])
    assert "--data" in str(e.value) and "METARL_DATA" in str(e.value)
    assert not (tmp_path / "run").exists()  # nothing written for a run that could not start


def test_a_second_run_into_the_same_folder_is_refused_until_overwrite(tmp_path, data):
    exp = load_experiment("omniglot")
    first = _run(exp, data, tmp_path / "run", 0)
    assert (tmp_path / "run" / "settings.json").is_file()
    with pytest.raises(SystemExit, match="--overwrite") as e:
        _run(exp, data, tmp_path / "run", 0)
    assert "--resume" in str(e.value)
    again = _run(exp, data, tmp_path / "run", 0, "--overwrite")
    assert again["test_accuracy"] == first["test_accuracy"]
    with pytest.raises(SystemExit, match="nothing to resume"):  # iterations 0: no checkpoint
        _run(exp, data, tmp_path / "run", 0, "--resume")


def test_a_run_from_before_the_runner_resumes_from_its_old_checkpoint(tmp_path, data):
    """The committed runs' checkpoints: one flat dict with the settings they recorded (fewer
    than there are now) and no settings.json beside them."""
    exp = load_experiment("omniglot")
    straight = _run(exp, data, tmp_path / "straight", 4)
    _run(exp, data, tmp_path / "old", 2)
    ckpt = load_checkpoint(tmp_path / "old" / "checkpoint.pt")
    settings = json.loads((tmp_path / "old" / "settings.json").read_text())["settings"]
    for added_later in ("init_from", "overwrite", "mirror_classes"):
        del settings[added_later]
    legacy = {**ckpt["state"], "torch_rng": ckpt["torch_rng"], "iteration": 2,
              "elapsed": ckpt["elapsed"], "settings": settings}  # fmt: skip
    torch.save(legacy, tmp_path / "old" / "checkpoint.pt")
    (tmp_path / "old" / "settings.json").unlink()
    with pytest.raises(SystemExit, match=r"seed: 0 -> 1"):  # recorded settings still count
        _run(exp, data, tmp_path / "old", 4, "--resume", "--seed", "1")
    resumed = _run(exp, data, tmp_path / "old", 4, "--resume")
    assert resumed["test_accuracy"] == straight["test_accuracy"]

    def losses(run):
        return [r["loss"] for r in csv.DictReader((tmp_path / run / "metrics.csv").open())]

    assert losses("old") == losses("straight")
    assert (tmp_path / "old" / "settings.json").is_file()  # from now on a run like the others
