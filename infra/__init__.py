"""Deployment: the merge template, and the tools that configure a stage's SSM parameters."""
