"""Inter-observer agreement between annotators of one slide and stage (SPEC §5), and its project
aggregate: ROI overlap, TOI tile labels, cell masks and cell classes.

Frames and inputs. Geometry is in level-0 slide pixels (any frame works as long as both sets share
it). A polygon is a shapely ``Polygon``/``MultiPolygon``, a GeoJSON ``Polygon``/``MultiPolygon``
mapping (exterior ring first, then holes), or an ``(N, 2)`` array of ``(x, y)`` exterior vertices.
Self-intersecting rings are repaired with GEOS ``make_valid`` (structure method), so a bow-tie
counts as the area it encloses. Labels are strings; ``None`` or ``""`` means "not labelled".

Cell matching. A's cells are matched one-to-one to B's. Candidate pairs come from an STRtree over
B's bounding boxes, are pruned by an exact upper bound (``min(area_a, area_b, box overlap)``), and
only then intersected exactly. A pair is *eligible* when its IoU >= the threshold. Eligible pairs
form a bipartite graph; each connected component is solved on its own with the Hungarian method
(``linear_sum_assignment``) on weights ``C + IoU`` with ``C`` larger than the component, which
yields the largest number of matched pairs and, among those, the largest total IoU. Greedy
"best IoU first" loses pairs in crowded clusters; this does not. No dense n x m matrix is built.

More than two annotators. Pairwise figures are computed for every pair. Fleiss' kappa is taken
over the *cliques* of the pairwise matchings: a group of one cell per annotator in which every
pair of annotators matched those two cells to each other. Pairwise matchings are one-to-one, so a
cell belongs to at most one clique and the groups do not depend on annotator order. Cells outside
a full clique, or unlabelled by anyone in it, are left out (their disagreement already shows in
the pairwise detection figures). TOI tiles enter Fleiss' kappa when every annotator labelled them.

Degenerate cases give a defined value, never NaN and never an exception:

======================  =====================================================  ==================
figure                  case                                                   result
======================  =====================================================  ==================
ROI IoU / Dice          both annotators drew no ROI                            1.0 (agree: none)
ROI IoU / Dice          exactly one drew no ROI, or the ROIs do not overlap    0.0
kappa (TOI, classes)    no item labelled by both                               ``None``
kappa                   both raters gave every item one and the same class     1.0 (sklearn: NaN)
kappa                   one rater used one class, the other several            as scikit-learn
percent agreement       no item                                                ``None``
cell mean IoU / Dice    no matched pair                                        ``None``
detection F1            neither annotator drew a cell                          1.0
detection F1            exactly one drew cells, or no pair matches             0.0
per-class agreement     class used by neither annotator                        ``None``
Fleiss' kappa           no item rated by every annotator                       ``None``
any 95% CI              fewer than 2 items (pairs, tiles; slides for project)  ``None``
project mean            no slide with a defined value                          ``None``
======================  =====================================================  ==================

Confidence intervals are 95% percentile bootstraps with a fixed seed (reports are reproducible).
Resampling items with replacement is done as a multinomial draw over the distinct outcomes
(confusion cells; matched / A-only / B-only), which has exactly the same distribution and makes a
2,000-resample kappa CI cost a few milliseconds. Project CIs resample slides (a cluster
bootstrap), so cells of one slide move together. Project figures come two ways: the mean of the
per-slide values, and the figure of the pooled counts (sum of intersections over sum of unions,
kappa of the summed confusion, mean IoU over every matched pair of every slide).

Every result is a frozen dataclass with ``to_dict()`` (JSON-safe: no NaN, tuples become lists);
per-slide results also have ``from_dict()`` so a stored report can be pooled again.

Modules: ``shapes`` (parsing), ``estimates`` (CIs), ``roi``, ``labels`` (kappa, TOI),
``cells`` (matching), ``multi`` (Fleiss), ``disagreements`` (the lists a reviewer
adjudicates), ``project``.
"""

from __future__ import annotations

from ml.agreement.cells import CellAgreement, CellMatch, cell_agreement, compare_cells, match_cells
from ml.agreement.disagreements import (
    Disagreement,
    cell_disagreements,
    roi_disagreement,
    toi_disagreements,
)
from ml.agreement.estimates import CONFIDENCE, N_RESAMPLES, Estimate
from ml.agreement.labels import (
    TOI_LABELS,
    ClassRow,
    Label,
    LabelAgreement,
    TileKey,
    ToiAgreement,
    label_agreement,
    toi_agreement,
)
from ml.agreement.multi import MultiRater, cell_cliques, fleiss_cells, fleiss_tiles, match_all
from ml.agreement.project import (
    Aggregate,
    ProjectCells,
    ProjectLabels,
    ProjectRoi,
    ProjectToi,
    aggregate_cells,
    aggregate_labels,
    aggregate_roi,
    aggregate_toi,
)
from ml.agreement.roi import RoiAgreement, roi_agreement
from ml.agreement.shapes import PolygonLike, to_geometries
from ml.metrics import kappa_from_confusions

__all__ = [
    "CONFIDENCE",
    "N_RESAMPLES",
    "TOI_LABELS",
    "Aggregate",
    "CellAgreement",
    "CellMatch",
    "ClassRow",
    "Disagreement",
    "Estimate",
    "Label",
    "LabelAgreement",
    "MultiRater",
    "PolygonLike",
    "ProjectCells",
    "ProjectLabels",
    "ProjectRoi",
    "ProjectToi",
    "RoiAgreement",
    "TileKey",
    "ToiAgreement",
    "aggregate_cells",
    "aggregate_labels",
    "aggregate_roi",
    "aggregate_toi",
    "cell_agreement",
    "cell_cliques",
    "cell_disagreements",
    "compare_cells",
    "fleiss_cells",
    "fleiss_tiles",
    "kappa_from_confusions",
    "label_agreement",
    "match_all",
    "match_cells",
    "roi_agreement",
    "roi_disagreement",
    "to_geometries",
    "toi_agreement",
    "toi_disagreements",
]
