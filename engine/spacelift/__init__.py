"""Spacelift as a place the engine's stacks live and run: settings, the API client, stack sync, compliance.

``settings`` reads ``spacelift.yml``; ``client`` is the API (GraphQL, validated against ``schema.graphql``);
``sync`` reconciles one Spacelift stack per customer × environment; the runner that executes runs through
Spacelift is ``engine/runners/spacelift.py``.
"""
