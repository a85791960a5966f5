"""bmadcc's analysis library: pure PyTorch and numpy, never Django.

The web app calls into this package; nothing here may import ``django`` or ``apps``.
"""
