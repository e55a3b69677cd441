"""Trained models shipped with oligolab (versioned files next to their loaders; loaded lazily, offline)."""
