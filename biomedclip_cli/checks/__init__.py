"""Preflight: every `auto` value resolved and every problem of a TrainConfig found before anything launches.

Composes the checks that the domains below define (data, models, hub, launch, runs) and adds the
ones that belong to no domain (hardware, loggers). Each check returns problems; none raises or
exits. May import launch, runs, models, data, hub, envinfo and the leaves; nothing below imports it.
"""
