"""Measuring: the tasks a representation is probed for, the features it gives, the probe
protocol and where its classifiers are fitted, the metrics, the verdict rule and the
readouts every output reads."""
