"""Measurement: storage, latency, int8, the metrics of one model, the machine that measured."""
