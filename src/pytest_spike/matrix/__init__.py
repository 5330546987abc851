"""The spike matrix: plan cells (python x candidate x version), run them, merge the results."""
