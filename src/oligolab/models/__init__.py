"""Trained models shipped with oligolab: versioned weights next to their loaders, loaded lazily and offline."""
