"""Presenting: runs read and checked, summarized, and rendered as tables, figures, report.md
and report.html; progress, the published curve, TensorBoard events."""
