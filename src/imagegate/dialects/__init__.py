"""API dialects: each one translates its own wire format to a ``JobSpec`` and renders a ``Job`` back.

A dialect never calls another dialect and never decides anything the services decide (credits, routing,
storage); it only parses, validates against what the wire protocol defines, and renders.
"""
