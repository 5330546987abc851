"""Upgrade spikes: the project's own tests before and after moving one package to a new version."""
