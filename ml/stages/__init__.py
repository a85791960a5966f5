"""The four pipeline stages. Each runs a trained model when its card is installed and a
classical baseline otherwise, and says which in its :class:`~ml.stages.common.StageSource`."""
