"""Classification stage: crops of real cells are batched; labels, probabilities, review flags."""

from __future__ import annotations

import numpy as np
import torch

from ml.cards import ModelCard, Normalisation
from ml.classes import DEFAULT_CLASSES, class_keys
from ml.count import UNCLASSIFIED
from ml.datasets.bccd import load_bccd
from ml.models.build import build_model
from ml.models.predictors import CellClassifier
from ml.stages.cells import Cell, MaskCrop
from ml.stages.classify import ClassifyStage
from tests.ml.data import BCCD_DIR

KEYS = class_keys(DEFAULT_CLASSES)


def _classifier(favourite: int, margin: float) -> CellClassifier:
    """ViT-Tiny whose head prefers class ``favourite`` by ``margin`` logits over the rest."""
    torch.manual_seed(0)
    model = build_model("mae_vit_tiny", {"num_classes": len(KEYS)})
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[favourite] = margin
    card = ModelCard(
        path=BCCD_DIR / "unused.json",
        name="mae-test",
        task="cell_classification",
        architecture="mae_vit_tiny",
        config={"num_classes": len(KEYS)},
        weights=BCCD_DIR / "unused.pt",
        classes=KEYS,
        input_size=224,
        normalisation=Normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        provenance={"source": "test"},
        metrics={},
    )
    return CellClassifier(model, card, torch.device("cpu"), box_offset=0.15)


def _real_cells(n_images: int = 3) -> list[tuple[np.ndarray, list[tuple[Cell, MaskCrop]]]]:
    """White cells of real photos as (image, [(cell, crop)]) in image px."""
    out = []
    for sample in load_bccd(BCCD_DIR)[:n_images]:
        found = []
        for box in np.floor(sample.boxes["WBC"]).astype(np.int64):
            mask = np.ones((box[3] - box[1], box[2] - box[0]), dtype=bool)
            cell = Cell(
                np.zeros((4, 2)),
                box.astype(float),
                (box[:2] + box[2:]) / 2,
                float(mask.sum()),
                1.0,
                (0, 0),
            )
            found.append((cell, MaskCrop(box, mask, 1.0)))
        out.append((sample.image(), found))
    return out


def test_without_a_classifier_every_cell_is_unclassified() -> None:
    stage = ClassifyStage(None)
    image, found = _real_cells(1)[0]
    stage.add(image, found)
    stage.flush()
    assert stage.source.kind == "baseline" and stage.classes is None
    assert all(
        c.label == UNCLASSIFIED and c.probabilities is None and not c.review for c, _ in found
    )


def test_confident_predictions_label_cells_by_the_cards_class_order() -> None:
    stage = ClassifyStage(_classifier(favourite=11, margin=20.0), batch_size=2)
    cells = []
    for image, found in _real_cells():
        stage.add(image, found)
        cells += [c for c, _ in found]
    stage.flush()
    assert len(cells) >= 3
    for cell in cells:
        assert cell.label == KEYS[11] == "lymphocyte"
        assert cell.probabilities is not None and np.isclose(
            cell.probabilities.sum(), 1.0, atol=1e-5
        )
        assert not cell.review


def test_unsure_predictions_are_flagged_for_review_below_the_threshold() -> None:
    stage = ClassifyStage(
        _classifier(favourite=0, margin=0.5), batch_size=64, review_threshold=0.60
    )
    image, found = _real_cells(1)[0]
    stage.add(image, found)
    assert found[0][0].probabilities is None, "queued until the batch fills or flush()"
    stage.flush()
    for cell, _ in found:
        assert cell.probabilities is not None and cell.probabilities.max() < 0.60
        assert cell.review and cell.label == KEYS[0]
