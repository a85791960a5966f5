"""Classical (non-learned) baselines that run while no trained model is installed.

Modules are imported on demand (``from ml.baselines.cells import segment_cells``) so that using
one baseline does not load the others.
"""
