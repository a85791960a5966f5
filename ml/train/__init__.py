"""Training commands (``python -m ml train ...``): each writes weights and a model card."""
