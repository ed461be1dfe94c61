"""Worked examples written against deploy.client."""
