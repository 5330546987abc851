"""The report view, the formats' registry and the renderers: terminal, Markdown, JSON, HTML, SARIF."""
