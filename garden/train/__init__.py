"""Training: ``fit`` any garden model on any data source, and the ``garden train`` command."""

from garden.train.fit import MODEL_DEFAULTS, Settings, fit, settings_for

__all__ = ["MODEL_DEFAULTS", "Settings", "fit", "settings_for"]
