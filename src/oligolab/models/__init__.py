"""Shipped, versioned prediction models (weights in this folder, inference in numpy, loaded lazily, offline)."""
