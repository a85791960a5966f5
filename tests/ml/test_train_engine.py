"""The training engine's pieces on real PBC cells: augmentations, schedule, figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.datasets.cells import load_labelled_cells
from ml.train.engine import augment, classification_figures, cosine_schedule, to_input
from tests.ml.data import PBC_DIR


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
