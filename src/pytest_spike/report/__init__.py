"""Renderers and writers for the scorecard: terminal, Markdown, JSON results."""
