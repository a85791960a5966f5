"""Loaders for public data sets used to measure the pipeline's stages (numpy in, numpy out)."""
