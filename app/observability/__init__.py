"""Observability: Prometheus metrics, structured logs, traces. See README "Observability".

``core.Observability`` ties them together for one app; features record through ``recorder.MetricsRecorder`` and
``tracing.Tracer`` (both in ``Services``).
"""
