"""Model architectures (builders in :mod:`ml.models.build`) and their predictors."""
