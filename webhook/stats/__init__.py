"""Anonymised contact statistics for the plan's indicators d and đ (docs/indicators.md):
``profile`` (labels from a message), ``episodes`` (one per person per month), ``report``
(indicators and tables), ``suppress`` (small cells), ``export``."""
