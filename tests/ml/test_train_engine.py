"""The training engine's pieces on real PBC cells: augmentations, schedule, figures."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.datasets.cells import load_labelled_cells
from ml.train.engine import augment, classification_figures, cosine_schedule, to_input
from tests.ml.data import PBC_DIR

REPO = Path(__file__).resolve().parents[2]


def test_augmentations_keep_shape_and_range_and_follow_the_seed() -> None:
    cells = load_labelled_cells(PBC_DIR, img_size=32, limit_per_class=1)
    x = to_input(torch.from_numpy(cells.images), torch.device("cpu"))
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, x)
    # Flips and rotations move pixels but keep each image's colours (up to brightness/contrast).
    assert torch.allclose(a.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=0.25)


def test_the_schedule_warms_up_then_decays_to_zero() -> None:
    lr_at = cosine_schedule(base_lr=1.0, warmup_steps=10, total_steps=110)
    assert lr_at(0) == pytest.approx(0.1) and lr_at(9) == pytest.approx(1.0)
    assert lr_at(60) == pytest.approx(0.5) and lr_at(110) == pytest.approx(0.0)


def test_figures_count_rows_as_the_true_class() -> None:
    labels = np.array([0, 0, 1, 2])
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]])
    figures = classification_figures(labels, probs, ("a", "b", "c"))
    assert figures["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert figures["accuracy"] == pytest.approx(0.75)
    assert figures["per_class"]["a"]["recall"] == pytest.approx(0.5)
    assert figures["per_class"]["c"]["auroc"] == pytest.approx(1.0)


def test_a_checkpoint_resumes_only_while_its_sha256_matches(tmp_path) -> None:
    from ml.cards import TensorFileError
    from ml.train.engine import FitState, load_checkpoint, save_checkpoint

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    generator = torch.Generator().manual_seed(0)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model=model, optimizer=optimizer, generator=generator, state=FitState(2))
    kwargs = {"model": model, "optimizer": optimizer, "generator": generator}
    assert load_checkpoint(path, device=torch.device("cpu"), **kwargs).epoch == 2
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(TensorFileError, match="does not match checkpoint.pt"):
        load_checkpoint(path, device=torch.device("cpu"), **kwargs)


class _Clock:
    """A stand-in for ``time.perf_counter`` that moves only when an epoch says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _budgeted_fit(
    tmp_path, monkeypatch, *, budget_s: float, epoch_s: float, slower_s: float = 0.0, **kwargs
):
    from ml.train import engine

    clock = _Clock()
    monkeypatch.setattr(engine.time, "perf_counter", clock)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    ran: list[int] = []
    plans: list[int] = []

    def train_epoch(epoch: int) -> dict[str, float]:
        ran.append(epoch)
        clock.now += epoch_s + slower_s * epoch  # each epoch slower than the one before
        return {"loss": 1.0}

    def validate() -> dict[str, float]:
        clock.now += 1.0
        return {"score": float(len(ran))}

    state = engine.fit(
        model,
        optimizer,
        epochs=10,
        train_epoch=train_epoch,
        validate=validate,
        score=lambda val: val["score"],
        out=tmp_path,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        budget=engine.TimeBudget(deadline=clock.now + budget_s, reserve_s=5.0),
        on_plan=plans.append,
        **kwargs,
    )
    return state, ran, plans


def test_a_time_budget_plans_the_epochs_from_the_first_and_tells_the_schedule(
    tmp_path, monkeypatch
) -> None:
    # 100 s: each epoch takes 10 s of training and 1 s of validation; 5 s plus two validations
    # are kept for the final evaluation, so after the first epoch 82 s fit 7 more.
    state, ran, plans = _budgeted_fit(tmp_path, monkeypatch, budget_s=100, epoch_s=10)
    assert ran == list(range(8)) and plans == [8] and state.planned_epochs == 8


def test_a_generous_budget_trains_every_epoch_asked_and_a_tight_one_at_least_one(
    tmp_path, monkeypatch
) -> None:
    state, ran, _ = _budgeted_fit(tmp_path / "a", monkeypatch, budget_s=10_000, epoch_s=10)
    assert len(ran) == 10 and state.planned_epochs == 10
    state, ran, _ = _budgeted_fit(tmp_path / "b", monkeypatch, budget_s=5, epoch_s=10)
    assert ran == [0] and state.planned_epochs == 1


def test_a_machine_that_slows_down_stops_training_before_it_overruns_the_budget(
    tmp_path, monkeypatch
) -> None:
    # Planned after the first (10 s + 1 s): 8 epochs. Then each takes 10 s longer: after the
    # third, 11 + 21 + 31 = 63 s are gone, and a fourth (41 s) would end past the 100 s.
    state, ran, plans = _budgeted_fit(tmp_path, monkeypatch, budget_s=100, epoch_s=10, slower_s=10)
    assert plans == [8] and ran == [0, 1, 2] and state.planned_epochs == 3


def test_a_resumed_training_keeps_the_plan_its_checkpoint_holds(tmp_path, monkeypatch) -> None:
    from ml.train.engine import TrainingPaused

    with pytest.raises(TrainingPaused):
        _budgeted_fit(tmp_path, monkeypatch, budget_s=100, epoch_s=10, stop_after=3)
    # Resumed with a fresh 100 s: planning again would allow all 10 epochs asked, but the plan
    # made in the first epoch (8) holds, so the schedule still ends where it was set to.
    state, ran, plans = _budgeted_fit(tmp_path, monkeypatch, budget_s=100, epoch_s=10, resume=True)
    assert ran == [3, 4, 5, 6, 7] and plans == [8] and state.planned_epochs == 8


def test_a_negative_budget_is_refused_and_zero_means_none() -> None:
    from ml.train.engine import TimeBudget

    assert TimeBudget.minutes(0, started=0.0) is None
    assert TimeBudget.minutes(15, started=10.0) == TimeBudget(deadline=910.0)
    with pytest.raises(ValueError, match="negative"):
        TimeBudget.minutes(-1, started=0.0)


def test_a_command_counts_its_time_from_its_process_start() -> None:
    from ml.train.engine import process_started

    # This process started before the test did, so its start lies in the past.
    assert process_started() < time.perf_counter()
    # A fresh interpreter that sleeps 1.5 s before it imports anything sees its start at least
    # that long ago: the imports and the sleep are counted, as /usr/bin/time counts them.
    code = (
        "import time; time.sleep(1.5); from ml.train.engine import process_started; "
        "print(time.perf_counter() - process_started())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert 1.5 <= float(done.stdout) < 60


def _batchnormed() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def test_a_weight_average_follows_the_weights_and_the_batchnorm_statistics() -> None:
    from ml.train.engine import weight_average

    model = _batchnormed()
    average = weight_average(model, 0.9)
    average.update_parameters(model)  # the first update copies the model
    before = {k: v.clone() for k, v in average.module.state_dict().items()}
    with torch.no_grad():
        model[0].weight += 1.0
        model(torch.randn(8, 3))  # train mode: the running statistics move
    average.update_parameters(model)
    after, now = average.module.state_dict(), model.state_dict()
    for key in ("0.weight", "1.running_mean", "1.running_var"):
        assert torch.allclose(after[key], 0.9 * before[key] + 0.1 * now[key]), key
    assert not torch.allclose(after["0.weight"], now["0.weight"])


def test_a_weight_average_decay_lies_between_zero_and_one() -> None:
    from ml.train.engine import check_decay, weight_average

    for decay in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            weight_average(_batchnormed(), decay)
    check_decay(0.99)


def _averaged_fit(out: Path, **kwargs):
    """Three epochs of two steps each on a tiny model, with a weight average; the validation
    score rises with every epoch, so the best epoch is the last one run."""
    from ml.train import engine

    torch.manual_seed(0)
    model = _batchnormed()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    average = engine.weight_average(model, 0.5)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3), torch.randn(16, 4)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(x[idx]), y[idx])

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        return engine.train_steps(
            loss_of, 16, optimizer=optimizer, batch_size=8, lr_at=lambda step: 0.1,
            epoch=epoch, generator=generator, progress=False,
            after_step=lambda: average.update_parameters(model),
        )  # fmt: skip

    state = engine.fit(
        model, optimizer, epochs=3, train_epoch=train_epoch,
        validate=lambda: {"score": float(average.n_averaged)}, score=lambda val: val["score"],
        out=out, generator=generator, device=torch.device("cpu"), average=average, **kwargs,
    )  # fmt: skip
    return state, model, average


def test_with_a_weight_average_the_kept_state_is_the_average_and_a_resume_restores_it(
    tmp_path,
) -> None:
    from ml.train.engine import TrainingPaused

    whole, model, average = _averaged_fit(tmp_path / "whole")
    assert int(average.n_averaged) == 6  # every step updated it
    kept = average.module.state_dict()
    assert all(torch.equal(whole.best_state[k], kept[k]) for k in kept)
    assert not torch.equal(whole.best_state["0.weight"], model.state_dict()["0.weight"])
    # Paused after one epoch and resumed: the average picks up where it stood, so the run ends
    # on the same average as the uninterrupted one.
    with pytest.raises(TrainingPaused):
        _averaged_fit(tmp_path / "paused", stop_after=1)
    resumed, _, again = _averaged_fit(tmp_path / "paused", resume=True)
    assert int(again.n_averaged) == 6
    assert all(torch.equal(resumed.best_state[k], whole.best_state[k]) for k in kept)


def test_a_checkpoint_without_an_average_does_not_resume_one(tmp_path) -> None:
    from ml.cards import TensorFileError
    from ml.train.engine import FitState, load_checkpoint, save_checkpoint, weight_average

    model = _batchnormed()
    optimizer = torch.optim.AdamW(model.parameters())
    generator = torch.Generator().manual_seed(0)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model=model, optimizer=optimizer, generator=generator, state=FitState(0))
    with pytest.raises(TensorFileError, match="holds no weight average"):
        load_checkpoint(
            path, model=model, optimizer=optimizer, generator=generator,
            device=torch.device("cpu"), average=weight_average(model, 0.9),
        )  # fmt: skip
