"""Strict fake vendor APIs for the importers, written from the vendors' API references."""
